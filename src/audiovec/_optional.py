"""Optional dependencies: import on first use, or fail with the exact ``pip install`` that fixes it."""

from __future__ import annotations

import importlib
from types import ModuleType

from audiovec.errors import MissingDependencyError

__all__ = ["require"]


def require(module: str, extra: str, feature: str, package: str | None = None) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming the extra to install.

    Args:
        module: The import name (``"faiss"``).
        extra: The audiovec extra that provides it (``"faiss"``).
        feature: What needs it, for the message (``"FaissStore"``).
        package: The PyPI distribution name when it differs from ``module``.

    Returns:
        The imported module.

    Raises:
        MissingDependencyError: The module (or one of its own dependencies) cannot be imported.
    """
    try:
        return importlib.import_module(module)
    except ImportError as err:
        dist = package or module
        raise MissingDependencyError(
            f"{feature} needs the optional package '{dist}', which is not installed or failed to import "
            f"({err}). Install it with: pip install 'audiovec[{extra}]'"
        ) from err

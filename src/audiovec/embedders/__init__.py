"""Embedders: the protocol, the registry, and the built-in implementations (imported lazily).

Built-ins and third-party embedders are all declared in the ``audiovec.embedders`` entry-point group::

    [project.entry-points."audiovec.embedders"]
    mymodel = "my_package.module:MyEmbedder"

:func:`list_embedders` reads names without importing anything; :func:`get_embedder` imports the class on first
use. A class whose optional dependency is missing raises :class:`~audiovec.errors.MissingDependencyError` naming
the ``pip install 'audiovec[extra]'`` to run.
"""

from __future__ import annotations

import inspect
from typing import Any

from audiovec._registry import PluginInfo, Registry
from audiovec.embedders.base import Embedder, EmbedderConfig, EmbedderSpec, FramedEmbedder, WindowedEmbedder
from audiovec.embedders.framing import FrameGeometry, frame_count

__all__ = [
    "Embedder",
    "EmbedderConfig",
    "EmbedderSpec",
    "FrameGeometry",
    "FramedEmbedder",
    "WindowedEmbedder",
    "embedder_info",
    "frame_count",
    "get_embedder",
    "list_embedders",
    "register_embedder",
    "registry",
]

_REQUIRED = ("embed", "embed_batch", "embed_file", "spec")


def _check_embedder_class(obj: object) -> str | None:
    if not inspect.isclass(obj):
        return f"expected an embedder class, got {type(obj).__name__}"
    missing = [m for m in _REQUIRED if not callable(getattr(obj, m, None))]
    if missing:
        return f"{obj.__qualname__} lacks {', '.join(missing)} (see audiovec.Embedder)"
    if not isinstance(getattr(obj, "name", None), str):
        return f"{obj.__qualname__} has no string attribute 'name'"
    return None


#: The embedder registry (entry-point group ``audiovec.embedders``).
registry: Registry[Embedder] = Registry("audiovec.embedders", "embedder", _check_embedder_class)


def list_embedders() -> list[str]:
    """Names of every registered embedder, built-in and plugin (imports nothing)."""
    return registry.names()


def embedder_info(name: str) -> PluginInfo:
    """Where the embedder ``name`` is defined (import string and distribution)."""
    return registry.info(name)


def register_embedder(name: str, target: type[Any] | str, *, clobber: bool = False) -> None:
    """Register an embedder class or ``"module:Class"`` import string under ``name``.

    Raises:
        DuplicatePluginError: The name is taken and ``clobber`` is false.
        PluginLoadError: The class does not look like an embedder.
    """
    registry.register(name, target, clobber=clobber)


def get_embedder(name: str, config: EmbedderConfig | dict[str, Any] | None = None, **params: Any) -> Embedder:
    """Build the embedder registered as ``name``.

    Args:
        name: Registry name (see :func:`list_embedders`).
        config: A config object or dict for the embedder.
        **params: Config fields as keyword arguments.

    Raises:
        UnknownPluginError: No such embedder.
        MissingDependencyError: Its optional extra is not installed (the message says which).
        PluginLoadError: The plugin failed to import.
        ConfigError: Invalid parameters.

    Example:
        >>> from audiovec import get_embedder
        >>> get_embedder("mfcc", n_mfcc=13)
        MFCCEmbedder(sample_rate=16000, n_mels=64, window_s=0.025, hop_s=0.01, fmin=0.0, fmax=None, n_mfcc=13)
    """
    cls = registry.load(name)
    if config is None:
        return cls(**params)
    return cls(config, **params)  # type: ignore[call-arg]

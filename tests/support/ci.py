"""Whether the tests run in CI, and the one rule for a missing prerequisite: skip here, fail there."""

from __future__ import annotations

import os
from types import ModuleType
from typing import NoReturn

import pytest


def in_ci() -> bool:
    """True in CI (``CI`` set, or ``AUDIOVEC_REQUIRE_SHARED=1``), where every prerequisite is installed."""
    return bool(os.environ.get("CI")) or os.environ.get("AUDIOVEC_REQUIRE_SHARED") == "1"


def skip_or_fail(reason: str) -> NoReturn:
    """Skip the test for ``reason`` on a development machine; fail it in CI, where it must run."""
    if in_ci():
        pytest.fail(f"{reason} (required in CI)")
    pytest.skip(reason)


def require_module(name: str, install: str) -> ModuleType:
    """Import ``name`` (usable at module level): skip without it on a development machine, fail in CI.

    For packages the install script adds on purpose (wheels installed with ``--no-deps``...): if CI lacks one,
    its tests must fail, not quietly skip.
    """
    if in_ci():
        try:
            return __import__(name, fromlist=["_"])
        except ImportError as err:
            pytest.fail(f"{name} is not installed ({install}; required in CI): {err}")
    return pytest.importorskip(name, reason=f"{name} is not installed ({install})")

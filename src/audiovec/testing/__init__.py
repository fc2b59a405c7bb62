"""Conformance kits for embedders (and, later, vector stores), for built-ins and plugin authors alike.

Every built-in embedder runs :func:`check_embedder` in audiovec's own test suite; a plugin author runs the same
checks on theirs::

    from audiovec.testing import check_embedder
    check_embedder(MyEmbedder())            # raises AssertionError listing every failed check

or one pytest case per check::

    @pytest.mark.parametrize("name, check", embedder_checks())
    def test_conformance(name, check):
        check(MyEmbedder())
"""

from __future__ import annotations

from audiovec.testing._embedder_checks import (
    CheckResult,
    check_embedder,
    embedder_checks,
    synthetic_signal,
)

__all__ = ["CheckResult", "check_embedder", "embedder_checks", "synthetic_signal"]

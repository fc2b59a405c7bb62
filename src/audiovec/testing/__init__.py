"""Conformance kits for embedders and vector stores, for built-ins and plugin authors alike.

Every built-in embedder runs :func:`check_embedder` in audiovec's own test suite; a plugin author runs the same
checks on theirs::

    from audiovec.testing import check_embedder
    check_embedder(MyEmbedder())            # raises AssertionError listing every failed check

or one pytest case per check::

    @pytest.mark.parametrize("name, check", embedder_checks())
    def test_conformance(name, check):
        check(MyEmbedder())

and the same for a vector store, given a factory that creates (or reopens) a store at a path::

    check_vector_store(lambda path, dim, metric: MyStore(path, dim=dim, metric=metric))
"""

from __future__ import annotations

from audiovec.metrics import recall_at_k
from audiovec.testing._embedder_checks import (
    EXTREME_AMPLITUDES,
    CheckResult,
    check_embedder,
    embedder_checks,
    synthetic_signal,
)
from audiovec.testing._store_checks import (
    StoreFactory,
    check_vector_store,
    clustered_vectors,
    store_checks,
)

__all__ = [
    "EXTREME_AMPLITUDES",
    "CheckResult",
    "StoreFactory",
    "check_embedder",
    "check_vector_store",
    "clustered_vectors",
    "embedder_checks",
    "recall_at_k",
    "store_checks",
    "synthetic_signal",
]

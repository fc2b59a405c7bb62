"""Vector sets built straight from arrays, for tests of the benchmark's evaluation stages."""

from __future__ import annotations

from typing import Any

import numpy as np

from audiovec.benchmark.vectors import VectorSet, codes, n_relevant


def make_vector_set(
    x: Any, labels: Any, groups: Any, items: Any = None, metric: str = "cosine", name: str = "e"
) -> VectorSet:
    """A :class:`VectorSet` of ``x`` (normalised for cosine) with these labels and groups; ids ``f<item>#0``."""
    x = np.asarray(x, dtype=np.float32)
    if metric == "cosine":
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
    labels = np.asarray(labels, dtype=object)
    groups = np.asarray(groups, dtype=object)
    items = np.arange(len(x)) if items is None else np.asarray(items)
    lc, gc = codes(labels), codes(groups)
    ids = [f"f{i}#0" for i in items]
    return VectorSet(name, "p", metric, x, items, ids, [{}] * len(x), labels, groups, lc, gc, n_relevant(lc, gc))

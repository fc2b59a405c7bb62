"""The exact-search kernel: brute-force top-k whose results never depend on how the work was batched.

:func:`exact_search` is the one exact search in audiovec: :class:`~audiovec.stores.ExactStore` searches with it,
:class:`~audiovec.stores.FaissStore` answers with it when an ANN index cannot, and the benchmark computes its
ground truth and quality metrics with it.

**Why it is shape-independent.** A ``float32`` matrix product does not give the same last bits for the same pair
of vectors in every call: BLAS picks kernels and blockings by matrix shape (and by CPU), so a query searched alone
and the same query in a batch of 300, or a vector in a filtered subset and in the whole store, can score a few
ulps apart, and near-ties can swap. The kernel therefore works in two steps:

1. a ``float32`` matrix product (BLAS, fast) ranks every vector approximately and keeps, per query, every
   vector whose approximate value is within twice a rigorous rounding-error bound of the ``k``-th best;
2. for those candidates only, the value is computed again from the two vectors alone: products (or differences)
   in ``float64``, which are exact for ``float32`` inputs, summed pairwise in an order that depends only on
   ``dim``, then rounded to ``float32``. The result is ranked by that value, ties to the lower row.

So the returned values and rows are a function of each (query, vector) pair and the row order only: the same on
every CPU and BLAS, whatever the batch size, block size, filter subset or thread count. The bound of step 1 is
the worst case for a ``float32`` dot product of length ``dim`` summed in any order, about ``dim * 2**-24`` times
``|q| |x|`` (``(|q| + |x|)**2`` for l2, whose value is assembled from norms), taken twice over; it costs a few
extra candidates per query, never a missed one. The cost is one ``float32`` matrix product plus ``O(k * dim)``
``float64`` work per query (so a very large ``k`` costs more than the product itself).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from audiovec.stores.config import Metric

__all__ = ["exact_search", "merge_topk", "raw_to_score_distance"]

_PAIR_ELEMS = 1 << 17  # float64 elements per step when recomputing candidate values (1 MiB: stays in cache)
_EPS32 = float(np.finfo(np.float32).eps)


def raw_to_score_distance(metric: Metric, raw: float) -> tuple[float, float]:
    """Convert a backend's native value (inner product for cosine/ip, squared L2 for l2) to (score, distance)."""
    if metric == "cosine":
        return raw, 1.0 - raw
    if metric == "ip":
        return raw, raw
    d = raw if raw > 0.0 else 0.0
    return -d, d


def _row_sums(a: NDArray[np.float64]) -> NDArray[np.float64]:
    """Row sums of a C-contiguous ``a`` in an order that depends only on the row length, never on the row count.

    NumPy sums each contiguous row on its own with its pairwise summation (blocks of 8 partial sums, halved
    recursively above 128 elements): a fixed sequence of IEEE 754 additions for a given length, so the same
    on every CPU. The shape-independence tests of the kernel check that this holds.
    """
    out: NDArray[np.float64] = np.add.reduce(np.ascontiguousarray(a), axis=1)
    return out


def _pair_values(
    queries: NDArray[np.float32], vectors: NDArray[np.float32], qi: NDArray[np.intp], vi: NDArray[np.intp], l2: bool
) -> NDArray[np.float32]:
    """The raw value of each pair ``(queries[qi[p]], vectors[vi[p]])``, computed from the two vectors alone."""
    out = np.empty(len(qi), np.float32)
    step = max(1, _PAIR_ELEMS // max(queries.shape[1], 1))
    one = queries[0].astype(np.float64) if len(queries) == 1 else None  # one query: broadcast, no gather
    for s in range(0, len(qi), step):
        terms = vectors[vi[s : s + step]].astype(np.float64)
        q = one if one is not None else queries[qi[s : s + step]].astype(np.float64)
        if l2:
            np.subtract(terms, q, out=terms)  # exact or correctly rounded, like every step below
            np.multiply(terms, terms, out=terms)
        else:
            np.multiply(terms, q, out=terms)  # exact: a float32 x float32 product fits in a float64
        out[s : s + len(terms)] = _row_sums(terms)
    return out


def _round_up(x: NDArray[np.float64]) -> NDArray[np.float32]:
    """``float32`` values not below ``x`` (one ulp above its rounding), so comparing against them drops nothing."""
    out: NDArray[np.float32] = np.nextafter(x.astype(np.float32), np.float32(np.inf))
    return out


def _search_one(
    queries: NDArray[np.float32], vectors: NDArray[np.float32], k: int, l2: bool, sqnorms: NDArray[np.float32] | None
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """:func:`exact_search` for one query (``queries`` is ``[1, dim]``), without groups, in fewer array passes.

    The same two steps with the same rounding-error bound, on a matrix-vector product instead of a
    ``[1, n]`` matrix product: the candidates are a superset of every vector that can rank in the top ``k``,
    and the values and order come from step 2, so the results are those of the general path.
    """
    n = len(vectors)
    key = vectors @ queries[0]  # approximate values, [n]
    qsq = np.einsum("ij,ij->i", queries, queries).astype(np.float64)
    tol = 2.0 * (queries.shape[1] + 4) * _EPS32
    xmax = 1.0 if sqnorms is None else float(np.sqrt(np.max(sqnorms.astype(np.float64))))
    if k >= n:
        rows = np.arange(n)
    elif l2:  # smaller is better: keep every vector not above the k-th smallest plus the margin
        key *= -2.0
        key += qsq.astype(np.float32)
        assert sqnorms is not None
        key += sqnorms
        kth = float(np.partition(key, k - 1)[k - 1])
        limit = _round_up(np.array([kth + tol * (math.sqrt(qsq[0]) + xmax) ** 2]))[0]
        rows = np.flatnonzero(~(key > limit))  # NaN (overflow) stays a candidate
    else:  # larger is better: the same with the signs turned
        kth = float(np.partition(key, n - k)[n - k])
        limit = -_round_up(np.array([-kth + tol * math.sqrt(qsq[0]) * xmax]))[0]
        rows = np.flatnonzero(~(key < limit))
    raw = _pair_values(queries, vectors, np.zeros(len(rows), np.intp), rows, l2)
    order = np.lexsort((rows, raw if l2 else -raw))[:k]
    return raw[order][None, :], rows[order].astype(np.int64)[None, :]


def exact_search(
    queries: NDArray[np.float32],
    vectors: NDArray[np.float32],
    k: int,
    metric: Metric,
    *,
    sqnorms: NDArray[np.float32] | None = None,
    query_groups: NDArray[np.int64] | None = None,
    vector_groups: NDArray[np.int64] | None = None,
    block_elems: int = 1 << 24,
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """Brute-force top-``k`` (the reference every store is measured against); see the module docs.

    Args:
        queries: ``float32[q, dim]`` (unit length for cosine).
        vectors: ``float32[n, dim]`` (unit length for cosine, as every store and the benchmark keep them; the
            rounding bound of the first step relies on it).
        k: Results per query (clipped to ``n``).
        metric: ``cosine``/``ip`` rank by inner product (higher first), ``l2`` by squared distance (lower first).
        sqnorms: Squared L2 norms of ``vectors`` if the caller has them (they bound the first step's rounding
            error); computed when ``None``.
        query_groups: ``int64[q]`` group of each query; with ``vector_groups``, vector ``j`` is never a result for
            query ``i`` when ``vector_groups[j] == query_groups[i]`` (e.g. segments of the query's own file).
        vector_groups: ``int64[n]`` group of each vector (give both group arrays or neither).
        block_elems: Size of the ``queries x vectors`` block computed at once (bounds memory; the results do not
            depend on it).

    Returns:
        ``(raw, rows)``, both ``[q, min(k, n)]``, best first; equal values go to the lower row. ``raw`` holds
        inner products (cosine/ip) or squared L2 distances (l2), rounded to ``float32`` from an accurate
        ``float64`` computation. With groups, a query with fewer than ``min(k, n)`` allowed vectors gets them all,
        then padding: row ``-1`` with raw ``-inf`` (cosine/ip) or ``+inf`` (l2).

    Raises:
        ValueError: Only one of ``query_groups`` and ``vector_groups`` is given, or their lengths differ from
            ``q`` and ``n``.

    Example:
        >>> import numpy as np
        >>> x = np.array([[1, 0], [0, 1], [1, 0]], np.float32)
        >>> raw, rows = exact_search(np.array([[1, 0]], np.float32), x, 2, "ip")
        >>> rows.tolist(), raw.tolist()
        ([[0, 2]], [[1.0, 1.0]])
        >>> exact_search(np.array([[1, 0]], np.float32), x, 2, "ip",
        ...              query_groups=np.array([7]), vector_groups=np.array([7, 3, 3]))[1].tolist()
        [[2, 1]]
    """
    if (query_groups is None) != (vector_groups is None):
        raise ValueError("exact_search: give both query_groups and vector_groups, or neither")
    n, nq = len(vectors), len(queries)
    k = min(k, n)
    l2 = metric == "l2"
    pad = np.float32(np.inf if l2 else -np.inf)
    if k == 0 or nq == 0:
        return np.full((nq, k), pad, np.float32), np.full((nq, k), -1, np.int64)
    qg = vg = None
    if query_groups is not None and vector_groups is not None:
        qg, vg = np.asarray(query_groups), np.asarray(vector_groups)
        if qg.shape != (nq,) or vg.shape != (n,):
            raise ValueError(f"exact_search: groups of shape {qg.shape} and {vg.shape} for {nq} queries, {n} vectors")
    if sqnorms is None and metric != "cosine":
        sqnorms = np.einsum("ij,ij->i", vectors, vectors)
    if nq == 1 and qg is None:
        return _search_one(queries, vectors, k, l2, sqnorms)
    raw_out = np.full((nq, k), pad, np.float32)
    idx_out = np.full((nq, k), -1, np.int64)
    # the largest vector norm bounds the first step's rounding error; cosine vectors have unit length
    xmax = 1.0 if sqnorms is None else float(np.sqrt(np.max(sqnorms.astype(np.float64))))
    qsq = np.einsum("ij,ij->i", queries, queries).astype(np.float64)
    # twice the rounding-error bound between the two steps, itself taken with a factor of 2 (eps = 2 * 2**-24)
    tol = 2.0 * (queries.shape[1] + 4) * _EPS32
    step = max(1, block_elems // max(n, 1))
    for s in range(0, nq, step):
        q = queries[s : s + step]
        key = q @ vectors.T  # approximate: smaller is better from here on
        if l2:
            key *= -2.0
            assert sqnorms is not None
            key += qsq[s : s + len(q), None].astype(np.float32)
            key += sqnorms[None, :]
            margin = tol * (np.sqrt(qsq[s : s + len(q)]) + xmax) ** 2
        else:
            np.negative(key, out=key)
            margin = tol * np.sqrt(qsq[s : s + len(q)]) * xmax
        excluded = None
        if qg is not None and vg is not None:
            excluded = qg[s : s + len(q), None] == vg[None, :]
            key[excluded] = np.inf
        if k < n:
            kth = np.partition(key, k - 1, axis=1)[:, k - 1].astype(np.float64)
            limit = _round_up(kth + margin)
            keep = ~(key > limit[:, None])  # NaN (overflow) stays a candidate
        else:
            keep = np.ones(key.shape, bool)
        if excluded is not None:
            keep &= ~excluded
        qi, vi = np.nonzero(keep)
        raw = _pair_values(q, vectors, qi, vi, l2)
        order = np.lexsort((vi, raw if l2 else -raw, qi))
        qi, vi, raw = qi[order], vi[order], raw[order]
        counts = np.bincount(qi, minlength=len(q))
        if counts.min() == counts.max():  # as many candidates per query (always so for one query): reshape
            c = int(counts[0])
            idx_out[s : s + len(q), : min(c, k)] = vi.reshape(len(q), c)[:, :k]
            raw_out[s : s + len(q), : min(c, k)] = raw.reshape(len(q), c)[:, :k]
            continue
        pos = np.arange(len(qi)) - (np.cumsum(counts) - counts)[qi]
        top = pos < k
        idx_out[s + qi[top], pos[top]] = vi[top]
        raw_out[s + qi[top], pos[top]] = raw[top]
    return raw_out, idx_out


def merge_topk(
    raw_a: NDArray[np.float32],
    ids_a: NDArray[np.int64],
    raw_b: NDArray[np.float32],
    ids_b: NDArray[np.int64],
    k: int,
    metric: Metric,
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """Merge two per-query result lists (``[q, *]`` each, ``-1`` ids for empty slots) into the best ``k``.

    Equal values go to the lower id, so merging the blocks of :func:`exact_search` over consecutive vectors gives
    what one call over all of them gives.
    """
    raw = np.concatenate([raw_a, raw_b], axis=1)
    ids = np.concatenate([ids_a, ids_b], axis=1)
    key = raw.astype(np.float64) if metric == "l2" else -raw.astype(np.float64)
    key[ids < 0] = np.inf
    order = np.lexsort((ids, key), axis=-1)[:, :k]
    return np.take_along_axis(raw, order, axis=1), np.take_along_axis(ids, order, axis=1)

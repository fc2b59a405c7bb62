"""Retrieval quality of a :class:`~audiovec.benchmark.vectors.VectorSet`, as pure functions.

Neighbours come from :func:`audiovec.stores.exact_search`, the same exact kernel every vector store is measured
against, with the query's own group excluded; relevance from :func:`audiovec.metrics.relevance_matrix`; the
metrics from :mod:`audiovec.metrics`. Only valid queries count (:attr:`VectorSet.queries`: a relevant vector
exists outside the query's group); this policy lives in the vector set, not here.

:func:`quality` scores a vector set against itself; :func:`quality_against` scores *other* query vectors (e.g. the
same items after a degradation) against a clean index under the same group rule and the same query rule. Both
return the same metric names, their per-query values and 95 % bootstrap intervals.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from audiovec.benchmark.vectors import VectorSet
from audiovec.errors import AudiovecError, ConfigError
from audiovec.metrics import (
    average_precision_at_k,
    bootstrap_ci,
    knn_vote_accuracy,
    linear_probe_predictions,
    precision_at_k,
    relevance_matrix,
    separation_auc,
    top_k_accuracy,
)
from audiovec.projections import cluster_agreement
from audiovec.stores import exact_search

__all__ = [
    "PER_QUERY_METRICS",
    "QualityScores",
    "neighbours",
    "pair_similarities",
    "per_query_scores",
    "quality",
    "quality_against",
    "similarity",
    "summarise",
    "topk_names",
]


def neighbours(vs: VectorSet, k: int) -> list[list[int]]:
    """The ``k`` nearest allowed neighbours of every vector (own group excluded), best first; ties → lower row.

    Rows are ragged when fewer than ``k`` vectors lie outside a query's group.
    """
    if len(vs) == 0:
        return []
    _, rows = exact_search(vs.x, vs.x, k, vs.metric, query_groups=vs.group_codes, vector_groups=vs.group_codes)  # type: ignore[arg-type]
    return [[int(j) for j in r if j >= 0] for r in rows]


def similarity(vs: VectorSet, a: NDArray[np.int64], b: NDArray[np.int64]) -> NDArray[np.float64]:
    """Similarity of vector pairs ``(a[i], b[i])``: inner product (cosine on the unit vectors), or ``-L2²``."""
    if len(a) == 0:
        return np.zeros(0)
    xa, xb = vs.x[a].astype(np.float64), vs.x[b].astype(np.float64)
    out: NDArray[np.float64] = -((xa - xb) ** 2).sum(1) if vs.metric == "l2" else (xa * xb).sum(1)
    return out


def pair_similarities(
    vs: VectorSet, rng: np.random.Generator, n_pairs: int = 20000
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Similarities of random in-class and out-of-class pairs of valid queries from different groups.

    Both vectors of every pair are valid queries (:attr:`VectorSet.queries`: a same-label vector lies outside
    their group), the population the retrieval metrics score, so a class that can never have an in-class pair
    under the group rule adds no out-of-class pairs either. In-class pairs are also drawn directly (a random valid
    query, then a random valid query of its label) when random pairs find too few (many classes).
    """
    lab, grp = vs.label_codes, vs.group_codes
    valid = np.flatnonzero(vs.queries)
    if len(valid) == 0:
        return np.zeros(0), np.zeros(0)
    a = valid[rng.integers(0, len(valid), size=n_pairs * 3)]
    b = valid[rng.integers(0, len(valid), size=n_pairs * 3)]
    ok = grp[a] != grp[b]
    a, b = a[ok], b[ok]
    same = lab[a] == lab[b]
    ia = np.flatnonzero(same)[:n_pairs]
    ob = np.flatnonzero(~same)[:n_pairs]
    pa, pb = a[ia], b[ia]
    if len(ia) < n_pairs // 4:
        vlab = lab[valid]
        by_label = valid[np.argsort(vlab, kind="stable")]  # valid queries grouped by label code
        counts = np.bincount(vlab)
        starts = np.cumsum(counts) - counts
        i = valid[rng.integers(0, len(valid), size=n_pairs)]
        c = lab[i]
        j = by_label[starts[c] + rng.integers(0, counts[c])]
        keep = grp[i] != grp[j]
        pa, pb = np.concatenate([pa, i[keep]]), np.concatenate([pb, j[keep]])
    return similarity(vs, pa, pb), similarity(vs, a[ob], b[ob])


#: The metrics scored per query, besides ``top{n}_acc`` for every ``n`` of ``ks``.
PER_QUERY_METRICS = ("top1_acc", "topk_acc", "precision_at_k", "map_at_k", "knn_acc")


@dataclass
class QualityScores:
    """Retrieval quality of one (embedder, pooling): the table row and the per-query values behind it.

    Attributes:
        row: ``embedder``, ``pooling``, ``n_vectors``, ``n_queries``, ``k``, and for every per-query metric its
            mean with the 95 % bootstrap interval (``<metric>``, ``<metric>_lo``, ``<metric>_hi``); :func:`quality`
            adds separation AUC, similarity means and the linear probe.
        per_query: Metric → ``float64[n_queries]``, one value per valid query, in ``query_rows`` order.
        query_rows: Rows of the query vectors that were scored (the valid queries).
        query_ids: Id (``<path>#<segment>``) of each scored query, for pairing queries across models.
        similarities: (in-class, out-of-class) similarity samples (:func:`quality` only), or ``None``.
    """

    row: dict[str, Any]
    per_query: dict[str, NDArray[np.float64]] = field(default_factory=dict)
    query_rows: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    query_ids: list[str] = field(default_factory=list)
    similarities: tuple[NDArray[np.float64], NDArray[np.float64]] | None = None


def topk_names(ks: Sequence[int]) -> list[str]:
    """Column names of the top-``n`` hit rates: ``top{n}_acc`` for every ``n`` of ``ks`` (sorted, unique)."""
    return [f"top{n}_acc" for n in sorted(set(ks))]


def per_query_scores(
    x: NDArray[np.float32],
    labels: Sequence[Any] | NDArray[Any],
    groups: NDArray[np.int64],
    index: VectorSet,
    k: int,
    ks: Sequence[int] = (),
) -> dict[str, NDArray[np.float64]]:
    """Score query vectors against an index: neighbours by exact search with the query's group excluded.

    Args:
        x: ``float32[q, dim]`` query vectors (unit length for cosine, like the index).
        labels: Label of each query.
        groups: Group of each query, as codes of ``index.group_codes`` (a code no index vector has excludes none).
        index: The vectors searched.
        k: Neighbours for ``topk_acc``, precision@k, mAP@k and the kNN vote.
        ks: Ranks of the extra hit rates ``top{n}_acc``.

    Returns:
        Metric → ``float64[q]``: :data:`PER_QUERY_METRICS` and ``top{n}_acc`` for every ``n`` of ``ks``. A query
        whose label has no vector outside its group scores 0 everywhere: leave such queries out before.
    """
    if len(x) == 0:
        return {name: np.zeros(0) for name in (*PER_QUERY_METRICS, *topk_names(ks))}
    depth = max(k, *ks) if ks else k
    metric: Any = index.metric
    _, rows = exact_search(x, index.x, depth, metric, query_groups=groups, vector_groups=index.group_codes)
    nb_labels = [[index.labels[j] for j in r if j >= 0] for r in rows]
    q_labels = list(labels)
    rel = relevance_matrix(q_labels, nb_labels)
    if rel.shape[1] < depth:
        rel = np.pad(rel, ((0, 0), (0, depth - rel.shape[1])))
    lab_code = {str(v): c for v, c in zip(index.labels, index.label_codes, strict=True) if v is not None}
    out = {
        "top1_acc": top_k_accuracy(rel, 1),
        "topk_acc": top_k_accuracy(rel, k),
        "precision_at_k": precision_at_k(rel, k),
        "map_at_k": average_precision_at_k(rel, _n_relevant(index, q_labels, groups, lab_code), k),
        "knn_acc": knn_vote_accuracy(q_labels, nb_labels, k),
    }
    for n in sorted(set(ks)):
        out[f"top{n}_acc"] = top_k_accuracy(rel, n)
    return out


def _n_relevant(
    index: VectorSet, labels: Sequence[Any], groups: NDArray[np.int64], lab_code: dict[str, int]
) -> NDArray[np.int64]:
    """Per query: index vectors sharing its label outside its group."""
    ok = index.label_codes >= 0
    n_groups = int(max(index.group_codes.max(initial=0), groups.max(initial=0))) + 1
    per_label = np.bincount(index.label_codes[ok], minlength=1)
    pair_counts: dict[int, int] = {}
    for key in (index.label_codes[ok] * n_groups + index.group_codes[ok]).tolist():
        pair_counts[key] = pair_counts.get(key, 0) + 1
    out = np.zeros(len(labels), dtype=np.int64)
    for i, (lab, g) in enumerate(zip(labels, groups.tolist(), strict=True)):
        c = lab_code.get(str(lab)) if lab is not None else None
        if c is not None:
            out[i] = int(per_label[c]) - pair_counts.get(c * n_groups + g, 0)
    return out


def summarise(
    row: dict[str, Any], per_query: dict[str, NDArray[np.float64]], bootstrap: int, seed: int
) -> dict[str, Any]:
    """Add each per-query metric's mean and 95 % bootstrap interval to ``row`` (``m``, ``m_lo``, ``m_hi``)."""
    for name, vals in per_query.items():
        mean, lo, hi = bootstrap_ci(vals, bootstrap, seed=seed)
        row[name], row[f"{name}_lo"], row[f"{name}_hi"] = mean, lo, hi
    return row


def quality_against(
    queries: VectorSet,
    index: VectorSet,
    k: int,
    *,
    ks: Sequence[int] = (),
    bootstrap: int = 1000,
    seed: int = 0,
) -> QualityScores:
    """Retrieval quality of *query* vectors searched in a clean *index*, under the group rule of :func:`quality`.

    Made for robustness: ``queries`` holds the same dataset items as ``index`` after a degradation (noise, a codec,
    a shorter excerpt...), built with :func:`~audiovec.benchmark.vectors.pool_vectors` from the same dataset, so a
    query's item and group are those of its clean version. Every query is searched in the whole clean index with
    its own group excluded, so its clean version (which lies in that group) is never a match and neither is any
    other vector of its group. The query rule is that of :func:`quality`: a query counts when the index holds a
    vector with its label outside its group; the others are left out (``n_queries`` says how many counted).

    Args:
        queries: The query vectors (e.g. degraded), with their labels and groups. May hold a subset of the items.
        index: The clean vector set searched (same metric and dimension).
        k: Neighbours for ``topk_acc``, precision@k, mAP@k and the kNN vote.
        ks: Ranks of the extra hit rates ``top{n}_acc``.
        bootstrap: Resamples of the queries for the 95 % intervals.
        seed: Seed of the bootstrap.

    Returns:
        A :class:`QualityScores` whose row has the metric names of :func:`quality` (without separation AUC and
        linear probe): ``top1_acc``, ``topk_acc``, ``precision_at_k``, ``map_at_k``, ``knn_acc`` and ``top{n}_acc``,
        each with ``_lo`` / ``_hi``, plus ``n_queries``; and the per-query values behind them.

    Raises:
        ConfigError: Different metric or dimension, or a query item whose group differs from the index's.

    Example:
        >>> scores = quality_against(noisy_set, clean_set, k=10, ks=[1, 3])  # doctest: +SKIP
        >>> scores.row["map_at_k"], scores.row["map_at_k_lo"], scores.row["n_queries"]  # doctest: +SKIP
    """
    if queries.metric != index.metric:
        raise ConfigError(f"queries use metric {queries.metric!r}, the index {index.metric!r}")
    if len(queries) and queries.x.shape[1] != index.x.shape[1]:
        raise ConfigError(f"queries have dimension {queries.x.shape[1]}, the index {index.x.shape[1]}")
    item_group = {int(i): str(g) for i, g in zip(index.item, index.groups, strict=True)}
    for i, g in zip(queries.item.tolist(), queries.groups, strict=True):
        if item_group.get(int(i), str(g)) != str(g):
            raise ConfigError(f"item {i} is in group {g!r} among the queries but {item_group[i]!r} in the index")
    code = {str(g): int(c) for g, c in zip(index.groups, index.group_codes, strict=True)}
    fresh = int(index.group_codes.max(initial=-1)) + 1
    q_groups = np.asarray([code.get(str(g), fresh) for g in queries.groups], dtype=np.int64)
    lab_code = {str(v): int(c) for v, c in zip(index.labels, index.label_codes, strict=True) if v is not None}
    n_rel = _n_relevant(index, list(queries.labels), q_groups, lab_code)
    q = np.flatnonzero(n_rel > 0).astype(np.int64)
    row: dict[str, Any] = {
        "embedder": queries.embedder,
        "pooling": queries.pooling,
        "n_vectors": len(index),
        "n_queries": len(q),
        "dim": int(index.x.shape[1]),
        "k": k,
    }
    pq = per_query_scores(queries.x[q], queries.labels[q], q_groups[q], index, k, ks)
    return QualityScores(
        row=summarise(row, pq, bootstrap, seed),
        per_query=pq,
        query_rows=q,
        query_ids=[queries.ids[i] for i in q],
    )


def quality(
    vs: VectorSet,
    k: int,
    *,
    ks: Sequence[int] = (),
    bootstrap: int = 1000,
    seed: int = 0,
    linear_probe: bool = True,
    rng: np.random.Generator | None = None,
) -> QualityScores:
    """Retrieval quality of a vector set under the group rule: every valid query against all the other vectors.

    One query rule for every metric: a vector counts as a query when a vector with its label lies outside its group
    (:attr:`VectorSet.queries`); the linear probe scores only the items whose class has a training example in their
    fold (:func:`audiovec.metrics.linear_probe_predictions`), and separation AUC draws its pairs from valid queries.

    Returns:
        A :class:`QualityScores`: the table row (top-1, ``topk_acc`` at ``k``, ``top{n}_acc`` for ``ks``, kNN vote,
        precision@k, mAP@k with 95 % bootstrap intervals, separation AUC, linear probe with the number of items it
        scored), the per-query values, and the (in-class, out-of-class) similarity samples (``None`` without two
        labels).
    """
    rng = rng if rng is not None else np.random.default_rng(seed)
    row: dict[str, Any] = {
        "embedder": vs.embedder,
        "pooling": vs.pooling,
        "n_vectors": len(vs),
        "dim": int(vs.x.shape[1]),
        "k": k,
    }
    labelled = vs.labelled
    if labelled.sum() < 2 or len(np.unique(vs.label_codes[labelled])) < 2:
        row["note"] = "quality needs at least two labels"
        return QualityScores(row=row)
    q = np.flatnonzero(vs.queries).astype(np.int64)
    row["n_queries"] = len(q)
    pq = per_query_scores(vs.x[q], vs.labels[q], vs.group_codes[q], vs, k, ks)
    summarise(row, pq, bootstrap, seed)
    inn, outc = pair_similarities(vs, rng)
    row["separation_auc"] = separation_auc(inn, outc)
    row["in_class_sim_mean"] = float(inn.mean()) if inn.size else math.nan
    row["out_class_sim_mean"] = float(outc.mean()) if outc.size else math.nan
    row["bytes_per_vector"] = int(vs.x.shape[1]) * 4
    row["kmeans_purity"], row["kmeans_nmi"] = cluster_agreement(vs.x[labelled], list(vs.labels[labelled]), seed=seed)
    if linear_probe:
        try:
            correct, fold_of = linear_probe_predictions(
                vs.x[labelled], list(vs.labels[labelled]), list(vs.groups[labelled]), seed=seed
            )
            scored = np.isfinite(correct)
            folds = np.asarray([correct[fold_of == f].mean() for f in np.unique(fold_of[scored])])
            row["linear_probe_acc"] = float(correct[scored].mean()) if scored.any() else math.nan
            row["linear_probe_n"] = int(scored.sum())
            row["linear_probe_folds"] = len(folds)
            row["linear_probe_std"] = float(folds.std()) if folds.size else math.nan
        except (AudiovecError, ValueError) as err:
            row["linear_probe_acc"], row["note"] = math.nan, f"linear probe: {err}"
    return QualityScores(
        row=row, per_query=pq, query_rows=q, query_ids=[vs.ids[i] for i in q], similarities=(inn, outc)
    )

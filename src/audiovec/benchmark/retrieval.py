"""Retrieval quality of a :class:`~audiovec.benchmark.vectors.VectorSet`, as pure functions.

Neighbours come from :func:`audiovec.stores.exact_search`, the same exact kernel every vector store is measured
against, with the query's own group excluded; relevance from :func:`audiovec.metrics.relevance_matrix`; the
metrics from :mod:`audiovec.metrics`. Only valid queries count (:attr:`VectorSet.queries`: a relevant vector
exists outside the query's group); this policy lives in the vector set, not here.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from audiovec.benchmark.vectors import VectorSet
from audiovec.errors import AudiovecError
from audiovec.metrics import (
    average_precision_at_k,
    bootstrap_ci,
    knn_vote_accuracy,
    linear_probe_accuracy,
    precision_at_k,
    relevance_matrix,
    separation_auc,
    top_k_accuracy,
)
from audiovec.stores import exact_search

__all__ = ["neighbours", "pair_similarities", "quality", "similarity"]


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
    """Similarities of random in-class and out-of-class pairs of labelled vectors from different groups.

    In-class pairs are also drawn directly (a random vector, then a random vector of its label) when random pairs
    find too few (many classes).
    """
    n = len(vs)
    lab, grp = vs.label_codes, vs.group_codes
    a = rng.integers(0, n, size=n_pairs * 3)
    b = rng.integers(0, n, size=n_pairs * 3)
    ok = (a != b) & (grp[a] != grp[b]) & (lab[a] >= 0) & (lab[b] >= 0)
    a, b = a[ok], b[ok]
    same = lab[a] == lab[b]
    ia = np.flatnonzero(same)[:n_pairs]
    ob = np.flatnonzero(~same)[:n_pairs]
    pa, pb = a[ia], b[ia]
    if len(ia) < n_pairs // 4:
        by_label = np.argsort(lab, kind="stable")  # rows grouped by label code (-1, unlabelled, first)
        counts = np.bincount(lab + 1)
        starts = np.cumsum(counts) - counts
        i = rng.integers(0, n, size=n_pairs)
        c = lab[i] + 1
        j = by_label[starts[c] + rng.integers(0, counts[c])]
        keep = (i != j) & (grp[i] != grp[j]) & (lab[i] >= 0)
        pa, pb = np.concatenate([pa, i[keep]]), np.concatenate([pb, j[keep]])
    return similarity(vs, pa, pb), similarity(vs, a[ob], b[ob])


def quality(
    vs: VectorSet,
    k: int,
    *,
    bootstrap: int = 1000,
    seed: int = 0,
    linear_probe: bool = True,
    rng: np.random.Generator | None = None,
) -> tuple[dict[str, Any], tuple[NDArray[np.float64], NDArray[np.float64]] | None]:
    """Retrieval quality of a vector set under the group rule.

    Returns:
        The table row (top-1 / top-k / kNN vote / precision@k / mAP@k with bootstrap intervals, separation AUC,
        linear probe) and the (in-class, out-of-class) similarity samples, or ``None`` without two labels.
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
        return row, None
    q = np.flatnonzero(vs.queries)
    row["n_queries"] = len(q)
    nb = neighbours(vs, k)
    nb_labels = [[vs.labels[j] for j in nb[i]] for i in q]
    q_labels = [vs.labels[i] for i in q]
    rel = relevance_matrix(q_labels, nb_labels)
    if rel.shape[1] < k:
        rel = np.pad(rel, ((0, 0), (0, k - rel.shape[1])))
    per_query = {
        "top1_acc": top_k_accuracy(rel, 1),
        "topk_acc": top_k_accuracy(rel, k),
        "precision_at_k": precision_at_k(rel, k),
        "map_at_k": average_precision_at_k(rel, vs.n_relevant[q], k),
        "knn_acc": knn_vote_accuracy(q_labels, nb_labels, k),
    }
    for name, vals in per_query.items():
        mean, lo, hi = bootstrap_ci(vals, bootstrap, seed=seed)
        row[name], row[f"{name}_lo"], row[f"{name}_hi"] = mean, lo, hi
    inn, outc = pair_similarities(vs, rng)
    row["separation_auc"] = separation_auc(inn, outc)
    row["in_class_sim_mean"] = float(inn.mean()) if inn.size else math.nan
    row["out_class_sim_mean"] = float(outc.mean()) if outc.size else math.nan
    if linear_probe:
        try:
            acc, folds = linear_probe_accuracy(
                vs.x[labelled], list(vs.labels[labelled]), list(vs.groups[labelled]), seed=seed
            )
            row["linear_probe_acc"], row["linear_probe_folds"] = acc, len(folds)
            row["linear_probe_std"] = float(folds.std()) if folds.size else math.nan
        except (AudiovecError, ValueError) as err:
            row["linear_probe_acc"], row["note"] = math.nan, f"linear probe: {err}"
    return row, (inn, outc)

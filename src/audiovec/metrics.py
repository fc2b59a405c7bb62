"""Benchmark metrics as pure functions (tested against scikit-learn and NumPy references).

Retrieval metrics take a *relevance matrix*: ``relevant[q, r]`` is true when the item retrieved at rank ``r``
(0-based, best first) for query ``q`` shares the query's label. Build it with :func:`relevance_matrix` from
neighbour labels. Every metric is registered in :data:`METRICS` with ``higher_is_better``, which drives the
ranking (:func:`weighted_score`) instead of ad-hoc sign flips.

Example:
    >>> import numpy as np
    >>> rel = np.array([[True, False, True], [False, False, False]])
    >>> float(precision_at_k(rel, 3).mean())
    0.3333333333333333
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from audiovec.errors import ConfigError

__all__ = [
    "DEFAULT_PRESET",
    "DEFAULT_WEIGHTS",
    "METRICS",
    "WEIGHT_PRESETS",
    "GrowthFit",
    "MetricInfo",
    "average_precision_at_k",
    "bootstrap_ci",
    "fit_growth",
    "group_folds",
    "knn_vote_accuracy",
    "latency_percentiles",
    "linear_probe_accuracy",
    "linear_probe_predictions",
    "metric_info",
    "precision_at_k",
    "recall_at_k",
    "relevance_matrix",
    "resolve_weights",
    "separation_auc",
    "top_k_accuracy",
    "weighted_score",
]


@dataclass(frozen=True)
class MetricInfo:
    """What a metric means and which direction is better."""

    name: str
    higher_is_better: bool
    unit: str
    description: str


#: Every metric the benchmark reports, by column name.
METRICS: dict[str, MetricInfo] = {
    m.name: m
    for m in [
        MetricInfo("extract_s", False, "s", "extraction wall time per file"),
        MetricInfo("rtf", True, "x", "real-time factor: audio seconds embedded per wall second"),
        MetricInfo("peak_mem_mb", False, "MB", "peak traced (tracemalloc) memory during extraction"),
        MetricInfo("peak_rss_mb", False, "MB", "peak resident memory of the whole process during the memory probe"),
        MetricInfo(
            "rss_mb",
            False,
            "MB",
            "peak resident memory above the process's pre-model baseline: import, load and embedding the largest files",
        ),
        MetricInfo("import_s", False, "s", "time to import the model's code and libraries (0 when already imported)"),
        MetricInfo("load_s", False, "s", "time to build the model (weights read, graph set up), import excluded"),
        MetricInfo("cpu_percent", False, "%", "process CPU use during extraction (100 = one core)"),
        MetricInfo("ram_percent", False, "%", "process RSS as a share of machine memory"),
        MetricInfo("insert_s", False, "s", "time to insert all vectors"),
        MetricInfo("insert_per_vector_ms", False, "ms", "insertion time per vector"),
        MetricInfo("insert_vps", True, "vectors/s", "insertion throughput"),
        MetricInfo("search_p50_ms", False, "ms", "single-query search latency, median"),
        MetricInfo("search_p95_ms", False, "ms", "single-query search latency, 95th percentile"),
        MetricInfo("search_p99_ms", False, "ms", "single-query search latency, 99th percentile"),
        MetricInfo("search_qps", True, "queries/s", "batched search throughput"),
        MetricInfo("ann_recall", True, "", "recall@k of the index against exact search"),
        MetricInfo("top1_acc", True, "", "top-1 kNN accuracy (label of the nearest allowed neighbour)"),
        MetricInfo("topk_acc", True, "", "top-k hit rate (a same-label item among the k nearest)"),
        MetricInfo("knn_acc", True, "", "k-nearest-neighbour majority-vote accuracy"),
        MetricInfo("precision_at_k", True, "", "share of the k nearest that share the query's label"),
        MetricInfo("map_at_k", True, "", "mean average precision at k"),
        MetricInfo("separation_auc", True, "", "ROC-AUC of in-class vs out-of-class similarity"),
        MetricInfo("linear_probe_acc", True, "", "logistic-regression accuracy with group-aware folds"),
        MetricInfo("kmeans_purity", True, "", "k-means (k = labels) cluster purity against the labels"),
        MetricInfo("kmeans_nmi", True, "", "normalised mutual information of k-means clusters and labels"),
        MetricInfo("bytes_per_vector", False, "B", "storage per vector"),
        MetricInfo("disk_mb", False, "MB", "on-disk size of the store"),
    ]
}


# --------------------------------------------------------------------------------------------- retrieval
def relevance_matrix(query_labels: Sequence[Any], neighbour_labels: Sequence[Sequence[Any]]) -> NDArray[np.bool_]:
    """``relevant[q, r] = neighbour_labels[q][r] == query_labels[q]``; ragged rows are padded with False."""
    k = max((len(row) for row in neighbour_labels), default=0)
    out = np.zeros((len(query_labels), k), dtype=bool)
    for q, (lab, row) in enumerate(zip(query_labels, neighbour_labels, strict=True)):
        out[q, : len(row)] = [n == lab for n in row]
    return out


def _k(relevant: NDArray[np.bool_], k: int | None) -> tuple[NDArray[np.bool_], int]:
    rel = np.asarray(relevant, dtype=bool)
    if rel.ndim != 2:
        raise ConfigError(f"relevance must be [queries, ranks], got shape {rel.shape}")
    kk = rel.shape[1] if k is None else k
    if kk < 1:
        raise ConfigError(f"k must be >= 1, got {kk}")
    return rel[:, :kk], kk


def precision_at_k(relevant: NDArray[np.bool_], k: int | None = None) -> NDArray[np.float64]:
    """Per-query precision@k: relevant items among the first k, divided by k (missing ranks count as misses)."""
    rel, kk = _k(relevant, k)
    out: NDArray[np.float64] = rel.sum(axis=1) / kk
    return out


def top_k_accuracy(relevant: NDArray[np.bool_], k: int | None = None) -> NDArray[np.float64]:
    """Per-query hit: 1.0 when any of the first k items is relevant."""
    rel, _ = _k(relevant, k)
    out: NDArray[np.float64] = np.asarray(rel.any(axis=1), dtype=np.float64)
    return out


def average_precision_at_k(
    relevant: NDArray[np.bool_], n_relevant: Sequence[int] | NDArray[np.int64] | None = None, k: int | None = None
) -> NDArray[np.float64]:
    """Per-query average precision at k.

    ``AP@k = sum_r P@r * rel_r / min(k, n_relevant)``, the usual definition (as in torchmetrics'
    ``retrieval_average_precision`` with ``top_k``). With ``n_relevant=None`` the denominator is the number of
    relevant items retrieved (AP over the returned list). A query with no relevant item scores 0.
    """
    rel, kk = _k(relevant, k)
    ranks = np.arange(1, rel.shape[1] + 1)
    prec = np.cumsum(rel, axis=1) / ranks
    num = (prec * rel).sum(axis=1)
    if n_relevant is None:
        den = rel.sum(axis=1).astype(np.float64)
    else:
        den = np.minimum(np.asarray(n_relevant, dtype=np.float64), kk)
    with np.errstate(invalid="ignore", divide="ignore"):
        out: NDArray[np.float64] = np.where(den > 0, num / np.maximum(den, 1e-12), 0.0)
    return out


def knn_vote_accuracy(
    query_labels: Sequence[Any], neighbour_labels: Sequence[Sequence[Any]], k: int
) -> NDArray[np.float64]:
    """Per-query correctness of a k-nearest-neighbour majority vote.

    Ties between labels are broken by the best (lowest) rank among the tied labels' votes, so the result is
    deterministic. A query with no neighbour counts as wrong.
    """
    if k < 1:
        raise ConfigError(f"k must be >= 1, got {k}")
    out = np.zeros(len(query_labels))
    for q, (lab, row) in enumerate(zip(query_labels, neighbour_labels, strict=True)):
        votes: dict[Any, list[int]] = {}
        for r, n in enumerate(list(row)[:k]):
            votes.setdefault(n, []).append(r)
        if not votes:
            continue
        winner = min(votes, key=lambda v: (-len(votes[v]), votes[v][0]))
        out[q] = float(winner == lab)
    return out


def recall_at_k(
    found: Sequence[Sequence[Any]],
    truth: Sequence[Sequence[Any]],
    k: int = 10,
    ties: Sequence[Collection[Any]] | None = None,
) -> float:
    """ANN recall@k: the share of the true ``k`` nearest ids that the index returned, averaged over queries.

    Per query, the true ``k`` nearest ids (exact search) are compared with the index's own top ``k``; queries
    without a ground truth are left out (``nan`` when none has one). With ``ties``, an id returned by the index that
    lies at the same distance as the true ``k``-th neighbour counts as a hit too (an exact index that breaks a tie
    the other way still scores 1.0); a query scores at most 1.

    Args:
        found: Ids returned by the index, best first, one list per query.
        truth: Ids of the exact nearest neighbours, best first, one list per query.
        k: Ranks compared (the first ``k`` of each list).
        ties: Per query, ids whose distance equals the true ``k``-th distance (outside ``truth``'s first ``k``).

    Raises:
        ConfigError: ``k < 1``.

    Example:
        >>> recall_at_k([[1, 2, 3]], [[1, 3, 4]], k=3)
        0.6666666666666666
        >>> recall_at_k([[1, 2, 3]], [[1, 3, 4]], k=3, ties=[{2}])  # 2 is as near as 4
        1.0
    """
    if k < 1:
        raise ConfigError(f"k must be >= 1, got {k}")
    per_query = []
    for i, (f, t) in enumerate(zip(found, truth, strict=True)):
        tk = set(list(t)[:k])
        if tk:
            ok = tk | set(ties[i]) if ties is not None else tk
            per_query.append(min(len(set(list(f)[:k]) & ok), len(tk)) / len(tk))
    return float(np.mean(per_query)) if per_query else float("nan")


def separation_auc(in_class: NDArray[np.float64], out_class: NDArray[np.float64]) -> float:
    """ROC-AUC that a random in-class pair is more similar than a random out-of-class pair (ties count half).

    Inputs are similarities (higher = closer); pass ``-distance`` for distances. Equal to scikit-learn's
    ``roc_auc_score`` with in-class pairs as the positive class.
    """
    pos = np.asarray(in_class, dtype=np.float64).ravel()
    neg = np.asarray(out_class, dtype=np.float64).ravel()
    if pos.size == 0 or neg.size == 0:
        return float("nan")
    allv = np.concatenate([pos, neg])
    order = np.argsort(allv, kind="mergesort")
    ranks = np.empty(len(allv))
    sorted_v = allv[order]
    # average ranks of ties (1-based), the Mann-Whitney U statistic
    _, first, counts = np.unique(sorted_v, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    u = ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2.0
    return float(u / (len(pos) * len(neg)))


def group_folds(
    labels: Sequence[Any] | NDArray[Any], groups: Sequence[Any] | None = None, n_splits: int = 5, seed: int = 0
) -> NDArray[np.int64]:
    """The fold of every item for group-aware cross-validation: no group is split across folds.

    The one fold rule of the benchmark (the linear probe, fitted projections): scikit-learn's
    ``StratifiedGroupKFold`` when groups are given (``min(n_splits, groups)`` folds, at least 2), else
    ``StratifiedKFold`` with at most as many folds as the rarest label has items. Needs scikit-learn (``bench``).

    Returns:
        ``int64[n]``: the fold of each item, ``0 .. folds - 1``.
    """
    from audiovec._optional import require

    require("sklearn", extra="bench", feature="group-aware folds", package="scikit-learn")
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    lab = np.asarray([str(v) for v in labels])
    x = np.zeros((len(lab), 1))
    splits: Any
    if groups is not None:
        k = max(2, min(n_splits, len(set(groups))))
        splits = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed).split(x, lab, list(groups))
    else:
        k = max(2, min(n_splits, int(min(np.unique(lab, return_counts=True)[1]))))
        splits = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(x, lab)
    fold_of = np.full(len(lab), -1, dtype=np.int64)
    with warnings.catch_warnings():
        # "the least populated class has only N members": expected with small classes, and visible in the fold count
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        for f, (_, test) in enumerate(splits):
            fold_of[test] = f
    return fold_of


def linear_probe_predictions(
    x: NDArray[np.float32],
    y: Sequence[Any],
    groups: Sequence[Any] | None = None,
    n_splits: int = 5,
    seed: int = 0,
    max_iter: int = 2000,
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Per-item correctness of a standardised logistic regression, cross-validated with group-aware folds.

    Folds come from scikit-learn's ``StratifiedGroupKFold`` when groups are given (no group is split across
    train and test), else ``StratifiedKFold``. **Query rule:** an item whose class has no training example in its
    fold cannot be predicted and is left out (``nan``), as a kNN query with no same-label vector outside its group
    is; a fold whose training part holds fewer than two classes scores nothing. Needs the ``bench`` extra
    (scikit-learn).

    Returns:
        ``correct`` (``float64[n]``: 1.0 right, 0.0 wrong, ``nan`` not scored) and the fold of each item
        (``int64[n]``, ``-1`` when not scored).
    """
    from audiovec._optional import require

    require("sklearn", extra="bench", feature="linear_probe_accuracy", package="scikit-learn")
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    labels = np.asarray(y)
    folds = group_folds(labels, groups, n_splits, seed)
    correct = np.full(len(labels), np.nan)
    fold_of = np.full(len(labels), -1, dtype=np.int64)
    for f in range(int(folds.max()) + 1):
        train, test = np.flatnonzero(folds != f), np.flatnonzero(folds == f)
        seen = np.unique(labels[train])
        test = test[np.isin(labels[test], seen)]
        if len(seen) < 2 or len(test) == 0:
            continue
        clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter))
        clf.fit(x[train], labels[train])
        correct[test] = (clf.predict(x[test]) == labels[test]).astype(np.float64)
        fold_of[test] = f
    return correct, fold_of


def linear_probe_accuracy(
    x: NDArray[np.float32],
    y: Sequence[Any],
    groups: Sequence[Any] | None = None,
    n_splits: int = 5,
    seed: int = 0,
    max_iter: int = 2000,
) -> tuple[float, NDArray[np.float64]]:
    """Accuracy of :func:`linear_probe_predictions` over the items it scored, and per fold.

    Returns:
        Accuracy over every scored item (``nan`` when none is) and the accuracy of each fold that scored items.
    """
    correct, fold_of = linear_probe_predictions(x, y, groups, n_splits, seed, max_iter)
    scored = np.isfinite(correct)
    per_fold = np.asarray([correct[fold_of == f].mean() for f in np.unique(fold_of[scored])], dtype=np.float64)
    return (float(correct[scored].mean()) if scored.any() else float("nan")), per_fold


# --------------------------------------------------------------------------------------------- statistics
def bootstrap_ci(
    values: NDArray[np.float64] | Sequence[float], n_boot: int = 1000, alpha: float = 0.05, seed: int = 0
) -> tuple[float, float, float]:
    """Mean of per-query values and its percentile bootstrap confidence interval ``(mean, low, high)``."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return (float("nan"),) * 3
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, v.size, size=(n_boot, v.size))].mean(axis=1)
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(v.mean()), float(lo), float(hi)


def latency_percentiles(seconds: Sequence[float] | NDArray[np.float64]) -> dict[str, float]:
    """p50/p95/p99 and mean of latencies, returned in milliseconds."""
    ms = np.asarray(seconds, dtype=np.float64) * 1000.0
    if ms.size == 0:
        return {"p50_ms": math.nan, "p95_ms": math.nan, "p99_ms": math.nan, "mean_ms": math.nan}
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return {"p50_ms": float(p50), "p95_ms": float(p95), "p99_ms": float(p99), "mean_ms": float(ms.mean())}


@dataclass(frozen=True)
class GrowthFit:
    """How a cost grows with data size: ``y ≈ intercept + slope * n`` and ``y ≈ c * n ** exponent``."""

    slope: float
    intercept: float
    exponent: float
    coefficient: float
    r2_linear: float


def fit_growth(sizes: Sequence[float], values: Sequence[float]) -> GrowthFit:
    """Fit linear and power-law growth of ``values`` against ``sizes`` (least squares; power law in log-log).

    The exponent says how a cost scales: about 1 for linear work (extraction, insertion), below 1 for
    sub-linear search (ANN indexes), about 0 for constant cost.
    """
    n = np.asarray(sizes, dtype=np.float64)
    y = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(n) & np.isfinite(y)
    n, y = n[ok], y[ok]
    if n.size < 2 or np.ptp(n) == 0:
        return GrowthFit(math.nan, math.nan, math.nan, math.nan, math.nan)
    slope, intercept = np.polyfit(n, y, 1)
    pred = intercept + slope * n
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float(((y - pred) ** 2).sum()) / ss_tot if ss_tot > 0 else 1.0
    pos = (n > 0) & (y > 0)
    if pos.sum() >= 2 and np.ptp(n[pos]) > 0:
        exponent, logc = np.polyfit(np.log(n[pos]), np.log(y[pos]), 1)
        coef = float(np.exp(logc))
    else:
        exponent, coef = math.nan, math.nan
    return GrowthFit(float(slope), float(intercept), float(exponent), coef, r2)


def weighted_score(
    rows: Sequence[Mapping[str, float]],
    weights: Mapping[str, float],
    higher_is_better: Mapping[str, bool] | None = None,
) -> list[float]:
    """A weighted ranking: min-max normalise each weighted metric across rows, weight, and scale to 0-100.

    A metric where lower is better is flipped (``1 - normalised``), so 100 is always best. A metric that is
    equal across rows contributes its full weight to every row; a row missing a metric gets 0 for it. Weights
    are renormalised to sum to 1.

    Args:
        rows: One mapping of metric values per candidate (model, model × store...).
        weights: Metric name → weight, e.g. ``{"map_at_k": 35, "top1_acc": 25, "extract_s": 15, ...}``.
        higher_is_better: Direction per metric; defaults to :data:`METRICS`.

    Raises:
        ConfigError: An unknown metric without a direction, or non-positive total weight.
    """
    total = float(sum(weights.values()))
    if total <= 0:
        raise ConfigError(f"weights must sum to a positive number, got {dict(weights)}")
    direction = dict(higher_is_better or {})
    scores = np.zeros(len(rows))
    for metric, w in weights.items():
        if metric not in direction:
            info = metric_info(metric)
            if info is None:
                raise ConfigError(f"unknown metric {metric!r}: give its direction in higher_is_better")
            direction[metric] = info.higher_is_better
        vals = np.array([float(r.get(metric, math.nan)) for r in rows], dtype=np.float64)
        finite = np.isfinite(vals)
        norm = np.zeros(len(rows))
        if finite.any():
            lo, hi = vals[finite].min(), vals[finite].max()
            norm[finite] = 1.0 if hi == lo else (vals[finite] - lo) / (hi - lo)
            if not direction[metric] and hi != lo:
                norm[finite] = 1.0 - norm[finite]
        scores += (w / total) * norm
    return [float(s * 100.0) for s in scores]


#: Ranking weight presets by name (metric → weight; weights are renormalised to sum to 1):
#:
#: * ``quality`` (the default): retrieval quality first (mAP@k 35, top-1 accuracy 25), then speed (extraction time
#:   per file 15), memory (peak resident memory above the pre-model baseline 10), storage (bytes per vector 10) and
#:   search latency (5).
#: * ``resources``: resources only: extraction 35, peak memory 25, CPU 20, insertion 15, RAM 5 (the weighting of a
#:   published six-model audio-embedding comparison on Milvus; memory is the resident peak above the baseline).
#: * ``balanced``: quality 50 (mAP@k 30, top-1 20), resources 50 (extraction 20, memory 15, bytes per vector 10,
#:   search latency 5).
WEIGHT_PRESETS: dict[str, dict[str, float]] = {
    "quality": {
        "map_at_k": 35.0,
        "top1_acc": 25.0,
        "extract_s": 15.0,
        "rss_mb": 10.0,
        "bytes_per_vector": 10.0,
        "search_p50_ms": 5.0,
    },
    "resources": {
        "extract_s": 35.0,
        "rss_mb": 25.0,
        "cpu_percent": 20.0,
        "insert_s": 15.0,
        "ram_percent": 5.0,
    },
    "balanced": {
        "map_at_k": 30.0,
        "top1_acc": 20.0,
        "extract_s": 20.0,
        "rss_mb": 15.0,
        "bytes_per_vector": 10.0,
        "search_p50_ms": 5.0,
    },
}

#: The preset used when a configuration names none.
DEFAULT_PRESET = "quality"

#: Default ranking weights: the ``quality`` preset of :data:`WEIGHT_PRESETS`.
DEFAULT_WEIGHTS: dict[str, float] = dict(WEIGHT_PRESETS[DEFAULT_PRESET])


def metric_info(name: str) -> MetricInfo | None:
    """The :class:`MetricInfo` of a column: :data:`METRICS`, or ``top{n}_acc`` for any ``n``; ``None`` if unknown."""
    if name in METRICS:
        return METRICS[name]
    m = re.fullmatch(r"top(\d+)_acc", name)
    if m and int(m.group(1)) >= 1:
        n = int(m.group(1))
        return MetricInfo(name, True, "", f"top-{n} hit rate (a same-label item among the {n} nearest)")
    return None


def resolve_weights(weights: str | Mapping[str, float]) -> tuple[dict[str, float], str | None]:
    """The weights a preset name or a mapping stands for, and the preset's name (``None`` for a mapping).

    Raises:
        ConfigError: An unknown preset or metric, a negative weight, or weights that do not sum to a positive number.

    Example:
        >>> resolve_weights("resources")[0]["extract_s"]
        35.0
    """
    if isinstance(weights, str):
        if weights not in WEIGHT_PRESETS:
            raise ConfigError(f"unknown weights preset {weights!r}; presets: {sorted(WEIGHT_PRESETS)}")
        return dict(WEIGHT_PRESETS[weights]), weights
    out = {str(k): float(v) for k, v in weights.items()}
    unknown = [m for m in out if metric_info(m) is None]
    if unknown:
        raise ConfigError(f"unknown metrics in weights: {unknown}; known: {sorted(METRICS)} and top<N>_acc")
    if any(v < 0 for v in out.values()) or sum(out.values()) <= 0:
        raise ConfigError(f"weights must be non-negative and sum to a positive number, got {out}")
    return out, None

r"""The verdict of a benchmark run: which configuration to pick, and how sure that is.

A *configuration* is an (embedder, pooling). The verdict is built from the result tables and the per-query quality
values the quality stage keeps (``per_query.npz``), so it can be rebuilt from a saved result folder without running
anything again (:func:`verdict_from_dir`). It names:

* **best**: the configuration with the highest mean of the verdict metric (``map_at_k`` by default) over its valid
  queries, with its 95 % bootstrap interval;
* **tied**: the configurations statistically tied with the best. **Rule:** for each other configuration the
  per-query differences ``best − other`` are taken over the queries both scored (the same vectors, matched by id),
  the queries are resampled with replacement (paired bootstrap, ``n_boot`` times), and the configuration is *tied*
  when the two-sided ``1 − alpha`` (95 %) percentile interval of the mean difference contains 0 — equivalently,
  the one-sided bootstrap p-value of "the best is better" is at least ``alpha / 2``. Overlapping intervals of the
  two means are *not* the test;
* **fastest**: the embedder that embeds the most seconds of audio per wall second (median real-time factor over
  files; mean extraction time per file when no real-time factor is known);
* **smallest**: the configuration with the fewest bytes per stored vector (``bytes_per_vector``: ``dim × 4`` for
  float32 vectors, the code size for a quantised projection; what a store holds before its own index overhead);
* **pareto**: the configurations no other one beats on quality, speed and bytes per vector together (another is at
  least as good on all three and better on one);
* **sentences**: one plain sentence per finding, with the figures.

Example:
    >>> from audiovec.benchmark.verdict import verdict_from_dir
    >>> v = verdict_from_dir("results/drums")  # doctest: +SKIP
    >>> print("\n".join(v.sentences))  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from audiovec.errors import ConfigError
from audiovec.metrics import bootstrap_ci

__all__ = [
    "BestConfig",
    "Fastest",
    "ParetoPoint",
    "Smallest",
    "TiedConfig",
    "Verdict",
    "build_verdict",
    "load_per_query",
    "metric_label",
    "paired_bootstrap",
    "paired_values",
    "pareto_front",
    "save_per_query",
    "verdict_from_dir",
]

#: Per-query values of one configuration: ``{"ids": str[n], <metric>: float64[n], ...}``.
PerQuery = Mapping[str, NDArray[Any]]


@dataclass(frozen=True)
class BestConfig:
    """The configuration with the best mean quality, and its 95 % bootstrap interval ``[lo, hi]``."""

    embedder: str
    pooling: str
    value: float
    ci: list[float]


@dataclass(frozen=True)
class TiedConfig:
    """A configuration statistically tied with the best (see the module docs for the rule).

    Attributes:
        value / ci: Its own mean quality and 95 % interval.
        diff: Mean of ``best − this`` over the queries both scored.
        diff_ci: Paired-bootstrap interval of ``diff``; it contains 0.
    """

    embedder: str
    pooling: str
    value: float
    ci: list[float]
    diff: float
    diff_ci: list[float]


@dataclass(frozen=True)
class Fastest:
    """The fastest embedder (with its best-quality pooling): real-time factor and mean extraction time per file."""

    embedder: str
    pooling: str
    rtf: float | None
    extract_s: float | None


@dataclass(frozen=True)
class Smallest:
    """The configuration with the fewest bytes per vector (float32: ``dim × 4``)."""

    embedder: str
    pooling: str
    bytes_per_vector: int


@dataclass(frozen=True)
class ParetoPoint:
    """A Pareto-optimal configuration on quality (higher), real-time factor (higher), bytes per vector (lower)."""

    embedder: str
    pooling: str
    quality: float
    rtf: float | None
    bytes_per_vector: int


@dataclass
class Verdict:
    """What to pick, and how sure that is; :meth:`to_dict` is the ``verdict`` entry of ``summary.json``.

    Attributes:
        metric: The per-query quality metric compared (a column of the quality table, e.g. ``map_at_k``).
        metric_label: Its display name (``mAP@10``).
        alpha: Significance level of the tie test (0.05: 95 % intervals).
        best / tied / fastest / smallest / pareto: The findings (see the module docs).
        sentences: One plain sentence per finding.
        weights: The ranking's effective weights (metric → weight).
        preset: The weights preset's name, ``None`` for custom weights.
    """

    metric: str
    metric_label: str
    alpha: float
    best: BestConfig
    tied: list[TiedConfig] = field(default_factory=list)
    fastest: Fastest | None = None
    smallest: Smallest | None = None
    pareto: list[ParetoPoint] = field(default_factory=list)
    sentences: list[str] = field(default_factory=list)
    weights: dict[str, float] = field(default_factory=dict)
    preset: str | None = None

    def standing(self, embedder: str, pooling: str) -> str:
        """``"best"``, ``"tied"`` (statistically tied with the best) or ``""`` for a configuration."""
        if (embedder, pooling) == (self.best.embedder, self.best.pooling):
            return "best"
        return "tied" if any((t.embedder, t.pooling) == (embedder, pooling) for t in self.tied) else ""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data with exactly the keys of the dataclass (``None`` for a missing finding)."""
        out: dict[str, Any] = _jsonable(asdict(self))
        return out


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, (float, np.floating)):
        return None if not math.isfinite(float(v)) else float(v)
    if isinstance(v, np.integer):
        return int(v)
    return v


def metric_label(metric: str, k: int) -> str:
    """Display name of a quality metric: ``map_at_k`` → ``mAP@10``, ``top3_acc`` → ``top-3 accuracy``."""
    if metric == "map_at_k":
        return f"mAP@{k}"
    if metric == "precision_at_k":
        return f"precision@{k}"
    if metric == "topk_acc":
        return f"top-{k} accuracy"
    if metric == "knn_acc":
        return f"{k}-NN vote accuracy"
    if metric.startswith("top") and metric.endswith("_acc") and metric[3:-4].isdigit():
        return f"top-{metric[3:-4]} accuracy"
    return metric


# --------------------------------------------------------------------------------------------- statistics
def paired_bootstrap(
    a: NDArray[np.float64], b: NDArray[np.float64], n_boot: int = 2000, alpha: float = 0.05, seed: int = 0
) -> tuple[float, float, float]:
    """Mean of ``a − b`` over paired queries and its percentile bootstrap interval ``(diff, lo, hi)``.

    The pairs (query ``i`` scored by both configurations) are resampled together, with replacement. Non-finite
    pairs are left out; with no pair, every figure is NaN.
    """
    return bootstrap_ci(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64), n_boot, alpha, seed)


def paired_values(best: PerQuery, other: PerQuery, metric: str) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The two configurations' values on the queries both scored, matched by query id."""
    ids_a = [str(s) for s in best["ids"]]
    pos_b = {str(s): i for i, s in enumerate(other["ids"])}
    ia = [i for i, s in enumerate(ids_a) if s in pos_b]
    ib = [pos_b[ids_a[i]] for i in ia]
    va = np.asarray(best[metric], dtype=np.float64)[ia]
    vb = np.asarray(other[metric], dtype=np.float64)[ib]
    return va, vb


def pareto_front(points: Sequence[tuple[float, float, float]]) -> list[int]:
    """Indices of the Pareto-optimal points, every coordinate *higher is better*; NaN counts as the worst value.

    A point is dominated when another is at least as good on every coordinate and strictly better on one; equal
    points are all kept.

    Example:
        >>> pareto_front([(1, 1, 1), (0, 0, 0), (2, 0, 1)])
        [0, 2]
    """
    arr = np.asarray(points, dtype=np.float64).reshape(len(points), -1)
    arr = np.where(np.isfinite(arr), arr, -np.inf)
    keep = []
    for i in range(len(arr)):
        dominated = np.any(np.all(arr >= arr[i], axis=1) & np.any(arr > arr[i], axis=1))
        if not dominated:
            keep.append(i)
    return keep


# --------------------------------------------------------------------------------------------- building
def _num(v: Any) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return math.nan
    return f


def _opt(v: float) -> float | None:
    return v if math.isfinite(v) else None


def _fmt(v: float | None) -> str:
    """Three significant figures, written out (``1,410``, ``0.000386``), never in exponent notation."""
    if v is None or not math.isfinite(v):
        return "unknown"
    if v == 0:
        return "0"
    decimals = 2 - math.floor(math.log10(abs(v)))
    r = round(v, decimals)
    decimals = 2 - math.floor(math.log10(abs(r)))  # rounding may have reached the next power of ten (99.96 -> 100)
    return f"{r:,.0f}" if decimals <= 0 else f"{r:.{decimals}f}"


def _name(embedder: str, pooling: str) -> str:
    return f"{embedder} with {pooling} pooling"


def build_verdict(
    quality: Any,
    models: Any,
    per_query: Mapping[str, PerQuery],
    *,
    metric: str = "map_at_k",
    k: int = 10,
    weights: Mapping[str, float] | None = None,
    preset: str | None = None,
    alpha: float = 0.05,
    n_boot: int = 2000,
    seed: int = 0,
) -> Verdict | None:
    """Build the verdict from the quality and models tables and the per-query values (see the module docs).

    Args:
        quality: The quality table (a DataFrame or a list of row mappings): ``embedder``, ``pooling``, ``dim``,
            ``n_queries``, ``<metric>``, ``<metric>_lo``, ``<metric>_hi``.
        models: The models table: ``embedder``, ``rtf_median``, ``extract_s_mean`` (missing columns: unknown speed).
        per_query: ``"embedder|pooling"`` → ``{"ids": ..., <metric>: ...}`` (:func:`load_per_query`).
        metric: The quality metric compared.
        k: The ``k`` of the run (for the metric's display name).
        weights: The ranking's effective weights, recorded with the verdict.
        preset: The weights preset's name (``None`` for custom weights), recorded with the verdict.
        alpha: Significance level of the tie test.
        n_boot: Paired-bootstrap resamples.
        seed: Seed of the bootstrap.

    Returns:
        The verdict, or ``None`` when no configuration has a quality value.
    """
    q_rows = _rows(quality)
    rows = [r for r in q_rows if math.isfinite(_num(r.get(metric)))]
    if not rows:
        return None
    label = metric_label(metric, k)
    speed = {str(m["embedder"]): m for m in _rows(models)}

    def key(r: Mapping[str, Any]) -> str:
        return f"{r['embedder']}|{r['pooling']}"

    best_row = max(rows, key=lambda r: _num(r[metric]))  # first of equals (table order)
    best = BestConfig(
        str(best_row["embedder"]),
        str(best_row["pooling"]),
        _num(best_row[metric]),
        [_num(best_row.get(f"{metric}_lo")), _num(best_row.get(f"{metric}_hi"))],
    )
    sentences = [
        f"Best {label}: {_name(best.embedder, best.pooling)}, {_fmt(best.value)} (95 % interval "
        f"{_fmt(best.ci[0])} to {_fmt(best.ci[1])}) over {_count(best_row.get('n_queries'))} queries."
    ]
    tied: list[TiedConfig] = []
    not_tested: list[str] = []
    best_pq = per_query.get(key(best_row))
    for r in rows:
        if r is best_row:
            continue
        other_pq = per_query.get(key(r))
        if best_pq is None or other_pq is None or metric not in best_pq or metric not in other_pq:
            not_tested.append(_name(str(r["embedder"]), str(r["pooling"])))
            continue
        va, vb = paired_values(best_pq, other_pq, metric)
        diff, lo, hi = paired_bootstrap(va, vb, n_boot, alpha, seed)
        if not math.isfinite(diff):
            not_tested.append(_name(str(r["embedder"]), str(r["pooling"])))
        elif lo <= 0.0 <= hi:
            tied.append(
                TiedConfig(
                    str(r["embedder"]),
                    str(r["pooling"]),
                    _num(r[metric]),
                    [_num(r.get(f"{metric}_lo")), _num(r.get(f"{metric}_hi"))],
                    diff,
                    [lo, hi],
                )
            )
    if tied:
        listed = "; ".join(
            f"{_name(t.embedder, t.pooling)} ({_fmt(t.value)}; on the same queries the best is ahead by "
            f"{_fmt(t.diff)}, 95 % interval {_fmt(t.diff_ci[0])} to {_fmt(t.diff_ci[1])})"
            for t in tied
        )
        sentences.append(
            f"As good within the measurement's uncertainty (the 95 % interval of the difference on the same queries "
            f"includes zero): {listed}."
        )
    elif len(rows) > 1 and len(not_tested) < len(rows) - 1:
        sentences.append(
            "Every other configuration scores lower on the same queries, beyond the uncertainty of the measurement "
            "(the 95 % interval of each difference excludes zero)."
        )
    if not_tested:
        sentences.append(
            "Not compared with the best for lack of per-query values on shared queries: " + ", ".join(not_tested) + "."
        )

    # the best pooling of each embedder carries its speed
    best_of: dict[str, Mapping[str, Any]] = {}
    for r in rows:
        e = str(r["embedder"])
        if e not in best_of or _num(r[metric]) > _num(best_of[e][metric]):
            best_of[e] = r

    def rtf_of(e: str) -> float:
        return _num(speed.get(e, {}).get("rtf_median"))

    def extract_of(e: str) -> float:
        return _num(speed.get(e, {}).get("extract_s_mean"))

    fastest: Fastest | None = None
    with_rtf = [e for e in best_of if math.isfinite(rtf_of(e))]
    with_time = [e for e in best_of if math.isfinite(extract_of(e))]
    if with_rtf or with_time:
        e = max(with_rtf, key=rtf_of) if with_rtf else min(with_time, key=extract_of)
        fastest = Fastest(e, str(best_of[e]["pooling"]), _opt(rtf_of(e)), _opt(extract_of(e)))
        what = (
            f"embeds {_fmt(fastest.rtf)} seconds of audio per second"
            if fastest.rtf is not None
            else "takes the least time"
        )
        sentences.append(
            f"Fastest: {fastest.embedder} {what} ({_fmt(fastest.extract_s)} s per file on average, median over files)."
        )

    def nbytes(r: Mapping[str, Any]) -> int:
        b = _num(r.get("bytes_per_vector"))
        if math.isfinite(b) and b > 0:
            return math.ceil(b)
        d = _num(r.get("dim"))
        return int(d) * 4 if math.isfinite(d) else 0

    smallest: Smallest | None = None
    sized = [r for r in rows if nbytes(r) > 0]
    if sized:
        s = min(sized, key=lambda r: (nbytes(r), -_num(r[metric])))
        smallest = Smallest(str(s["embedder"]), str(s["pooling"]), nbytes(s))
        as_float = " as float32" if smallest.bytes_per_vector == int(_num(s["dim"])) * 4 else ""
        sentences.append(
            f"Smallest vectors: {_name(smallest.embedder, smallest.pooling)}, {int(_num(s['dim']))} dimensions "
            f"({smallest.bytes_per_vector} bytes{as_float}) per vector, {label} {_fmt(_num(s[metric]))}."
        )

    pts = [(_num(r[metric]), rtf_of(str(r["embedder"])), -float(nbytes(r) or math.inf)) for r in rows]
    front = [rows[i] for i in pareto_front(pts)]
    pareto = [
        ParetoPoint(str(r["embedder"]), str(r["pooling"]), _num(r[metric]), _opt(rtf_of(str(r["embedder"]))), nbytes(r))
        for r in sorted(front, key=lambda r: -_num(r[metric]))
    ]
    if pareto:
        sentences.append(
            f"Best trade-offs of {label}, speed and vector size (no other configuration is at least as good on all "
            "three and better on one): "
            + "; ".join(
                f"{_name(p.embedder, p.pooling)} ({label} {_fmt(p.quality)}, {_fmt(p.rtf)}× real time, "
                f"{p.bytes_per_vector} bytes)"
                for p in pareto
            )
            + "."
        )
    return Verdict(
        metric=metric,
        metric_label=label,
        alpha=alpha,
        best=best,
        tied=tied,
        fastest=fastest,
        smallest=smallest,
        pareto=pareto,
        sentences=sentences,
        weights=dict(weights or {}),
        preset=preset,
    )


def _count(v: Any) -> str:
    n = _num(v)
    return str(int(n)) if math.isfinite(n) else "an unknown number of"


def _rows(table: Any) -> list[dict[str, Any]]:
    if table is None:
        return []
    if hasattr(table, "to_dict"):
        return list(table.to_dict("records")) if len(table) else []
    return [dict(r) for r in table]


# --------------------------------------------------------------------------------------------- files
#: File of the per-query values in a result folder.
PER_QUERY_FILE = "per_query.npz"


def save_per_query(path: str | Path, per_query: Mapping[str, PerQuery]) -> None:
    """Write per-query values: arrays ``<name>::<embedder|pooling>`` (``ids`` and one per metric) in one ``.npz``."""
    arrays: dict[str, NDArray[Any]] = {}
    for key, values in per_query.items():
        for name, arr in values.items():
            if name == "ids":
                arrays[f"ids::{key}"] = np.asarray([str(s) for s in arr])
            else:
                arrays[f"{name}::{key}"] = np.asarray(arr, dtype=np.float64)
    np.savez_compressed(path, **arrays)  # type: ignore[arg-type]


def load_per_query(path: str | Path) -> dict[str, dict[str, NDArray[Any]]]:
    """Read :func:`save_per_query`'s file: ``"embedder|pooling"`` → ``{"ids": ..., <metric>: ...}``."""
    out: dict[str, dict[str, NDArray[Any]]] = {}
    with np.load(path, allow_pickle=False) as z:
        for name in z.files:
            metric, _, key = name.partition("::")
            out.setdefault(key, {})[metric] = z[name]
    return out


def verdict_from_dir(directory: str | Path, *, metric: str | None = None, alpha: float = 0.05) -> Verdict | None:
    """Rebuild the verdict of a saved result folder (``quality.csv``, ``models.csv``, ``per_query.npz``).

    Raises:
        ConfigError: The folder is not a benchmark result.
    """
    from audiovec.benchmark.result import BenchmarkResult

    d = Path(directory)
    result = BenchmarkResult.load(d)
    if not (d / PER_QUERY_FILE).is_file():
        raise ConfigError(f"{d} has no {PER_QUERY_FILE}: the verdict needs the per-query values of a newer run")
    cfg = result.config
    weights, preset = cfg.ranking_weights
    return build_verdict(
        result.quality,
        result.models,
        load_per_query(d / PER_QUERY_FILE),
        metric=metric or cfg.verdict_metric,
        k=cfg.k,
        weights=weights,
        preset=preset,
        alpha=alpha,
        seed=cfg.seed,
    )

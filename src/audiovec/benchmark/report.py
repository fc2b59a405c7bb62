"""Plots (PNG, matplotlib) and one self-contained HTML report (plotly, its JavaScript inlined) of a benchmark.

The page opens with the ranking weights and the verdict (best quality with its interval, the models tied with it,
the fastest, the smallest per vector, the Pareto-optimal set), then a quality × speed chart with the Pareto front,
the ranking, retrieval quality, per-model small multiples of the similarity distributions and of a 2-D t-SNE map,
robustness curves (when the results folder has ``robustness.csv``), extraction speed, scaling and the stores.

Every HTML chart sits in ``<div class="chart" id="chart-NAME">`` so it can be checked automatically. Numbers are
shown to three significant figures (:func:`format_number`); real-time factors as ``"0.4× RT"`` or ``"2,300× RT"``
(:func:`rt_label`).

The 2-D maps are the slow part (t-SNE): each model's map is sampled to at most :data:`MAP_POINTS` points and cached
in ``embedding_map.npz`` beside the report, keyed by a fingerprint of the vectors and settings, so ``audiovec
report DIR`` redraws a results folder in seconds.
"""

from __future__ import annotations

import hashlib
import html
import inspect
import json
import logging
import math
import re
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from audiovec._optional import require
from audiovec.benchmark.result import COLUMNS, BenchmarkResult
from audiovec.benchmark.vectors import stratified_sample
from audiovec.metrics import METRICS

__all__ = [
    "CHARTS",
    "MAP_CACHE",
    "MAP_POINTS",
    "TSNE_ITERATIONS",
    "check_report_dependencies",
    "embedding_map",
    "error_free",
    "format_number",
    "pareto_front",
    "rt_label",
    "write_report",
]

log = logging.getLogger(__name__)

#: The charts the report draws, in page order (each only when the data for it exists: ``robustness`` needs
#: ``robustness.csv``).
CHARTS = (
    "quality_speed",
    "ranking",
    "quality",
    "distances",
    "embedding_map",
    "robustness",
    "extraction",
    "extraction_box",
    "duration_scatter",
    "scaling",
    "recall_latency",
)

#: t-SNE iterations of the embedding map (early exaggeration included): enough for a readable map of 1000 points.
TSNE_ITERATIONS = 500

#: Most points drawn in each model's 2-D map (fewer when the configuration's ``embedding_map_points`` is lower).
MAP_POINTS = 500

#: The file, in the report's folder, that keeps the 2-D map coordinates between redraws.
MAP_CACHE = "embedding_map.npz"

#: Most files per model drawn in the duration × extraction-time scatter (the slowest files are always kept).
SCATTER_POINTS = 1000

_TEXT_POSITIONS = ("top center", "bottom center", "middle right", "middle left")

#: The quality metrics the report can put on the quality axis, in order of preference.
_QUALITY_PREFERENCE = ("map_at_k", "top1_acc", "topk_acc", "knn_acc", "precision_at_k")

_PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
    "#393b79", "#e7ba52", "#637939", "#ad494a", "#7b4173", "#3182bd", "#e6550d", "#31a354", "#756bb1", "#636363",
)  # fmt: skip


# --------------------------------------------------------------------------------------------------- numbers


def format_number(v: Any, digits: int = 3) -> str:
    """``v`` to ``digits`` significant figures, without exponent between 1e-4 and 1e15, thousands separated.

    Integers (and integral floats) are shown whole; ``NaN`` and ``None`` as an empty string.

    Example:
        >>> [format_number(x) for x in (0.123456, 12345.6, 7, 0.5, float("nan"))]
        ['0.123', '12,300', '7', '0.500', '']
    """
    if v is None or isinstance(v, bool | str):
        return "" if v is None else str(v)
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    if math.isnan(f):
        return ""
    if math.isinf(f):
        return "∞" if f > 0 else "−∞"
    if f == 0:
        return "0"
    if f.is_integer() and abs(f) < 1e15:
        return f"{int(f):,}"
    mag = math.floor(math.log10(abs(f)))
    if mag < -4 or mag >= 15:
        return f"{f:.{digits - 1}e}"
    if mag >= digits - 1:
        return f"{round(f, digits - 1 - mag):,.0f}"
    return f"{f:.{digits - 1 - mag}f}"


def rt_label(rtf: Any) -> str:
    """A real-time factor (audio seconds per wall second) as ``"0.4× RT"``, ``"220× RT"`` or ``"2,300× RT"``.

    Two significant figures, never ``"0× RT"``; an empty string when unknown.
    """
    try:
        f = float(rtf)
    except (TypeError, ValueError):
        return ""
    if not math.isfinite(f) or f <= 0:
        return ""
    s = format_number(f, 2)
    if "." in s and "e" not in s:
        s = s.rstrip("0").rstrip(".")
    return f"{s}× RT"


def _ci_text(lo: Any, hi: Any) -> str:
    lo_s, hi_s = format_number(lo), format_number(hi)
    return f"[{lo_s}, {hi_s}]" if lo_s and hi_s else ""


def pareto_front(points: Sequence[Sequence[float]]) -> list[int]:
    """Indices of the points no other point dominates (every coordinate higher is better; ties are kept).

    A point with a missing (NaN) coordinate is never on the front.

    Example:
        >>> pareto_front([(0.9, 1.0), (0.8, 5.0), (0.7, 2.0)])
        [0, 1]
    """
    p = np.asarray(points, dtype=np.float64).reshape(len(points), -1)
    ok = np.all(np.isfinite(p), axis=1)
    front = []
    for i in range(len(p)):
        if not ok[i]:
            continue
        others = p[ok]
        dominated = np.any(np.all(others >= p[i], axis=1) & np.any(others > p[i], axis=1))
        if not dominated:
            front.append(i)
    return front


# ------------------------------------------------------------------------------------------------ 2-D map


def embedding_map(
    x: NDArray[np.float32], seed: int = 0, max_points: int = 1000, strata: NDArray[Any] | None = None
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """2-D t-SNE coordinates of at most ``max_points`` rows of ``x`` (scikit-learn; PCA initialisation).

    Larger inputs are sampled with :func:`~audiovec.benchmark.vectors.stratified_sample` over ``strata`` (groups
    or labels; default: uniformly), seeded, so the map's cost does not grow with the dataset.

    Returns:
        The coordinates ``[points, 2]`` and the rows of ``x`` they belong to.
    """
    require("sklearn", extra="bench", feature="embedding_map", package="scikit-learn")
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    rows = stratified_sample(strata if strata is not None else np.arange(len(x)), max_points, seed)
    pts = np.asarray(x[rows], dtype=np.float64)
    if len(pts) < 5:
        return np.zeros((len(pts), 2)), rows
    perplexity = float(min(30.0, (len(pts) - 1) / 3.0))
    # scikit-learn < 1.5 names the iteration count n_iter
    iters = "max_iter" if "max_iter" in inspect.signature(TSNE).parameters else "n_iter"
    tsne = TSNE(2, perplexity=perplexity, init="pca", random_state=seed, **{iters: TSNE_ITERATIONS})
    # One thread: scikit-learn's OpenMP gradient loop slows down several-fold when its threads compete for busy
    # cores (measured 3 s on one thread against 25-30 s on two, for 500 points on a loaded 2-core machine).
    with threadpool_limits(limits=1):
        out: NDArray[np.float64] = tsne.fit_transform(pts)
    return out, rows


def _fingerprint(x: NDArray[Any], labels: NDArray[Any], seed: int, points: int) -> str:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(x).tobytes())
    h.update(str(x.shape).encode())
    h.update("\x00".join(str(v) for v in labels).encode())
    h.update(f"{seed}|{points}|{TSNE_ITERATIONS}".encode())
    return h.hexdigest()


def _cached_maps(
    result: BenchmarkResult, out: Path
) -> dict[str, tuple[NDArray[np.float64], NDArray[np.int64], NDArray[Any]]]:
    """The 2-D map of every vector set: key → (coordinates, sampled rows, their labels); cached in :data:`MAP_CACHE`."""
    points = min(result.config.embedding_map_points, MAP_POINTS)
    if not result.embeddings or points <= 0:
        return {}
    path = out / MAP_CACHE
    cached: dict[str, NDArray[Any]] = {}
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                cached = {k: z[k] for k in z.files}
        except (OSError, ValueError, zipfile.BadZipFile) as err:
            log.warning("ignoring the unreadable map cache %s: %s", path, err)
    maps = {}
    fresh: dict[str, NDArray[Any]] = {}
    for key, (x, labels) in result.embeddings.items():
        fp = _fingerprint(x, labels, result.config.seed, points)
        stored = all(f"{part}::{key}" in cached for part in ("fp", "xy", "rows"))
        if stored and str(cached[f"fp::{key}"]) == fp:
            xy, rows = cached[f"xy::{key}"], cached[f"rows::{key}"].astype(np.int64)
        else:
            xy, rows = embedding_map(x, result.config.seed, points, labels)
        maps[key] = (xy, rows, np.asarray(labels)[rows])
        fresh.update({f"fp::{key}": np.asarray(fp), f"xy::{key}": xy, f"rows::{key}": rows})
    if set(fresh) != set(cached) or any(not np.array_equal(fresh[k], cached[k]) for k in fresh if k.startswith("fp::")):
        try:
            np.savez_compressed(path, **fresh)  # type: ignore[arg-type]
        except OSError as err:  # a read-only results folder: draw anyway
            log.warning("could not cache the 2-D maps in %s: %s", path, err)
    return maps


# ------------------------------------------------------------------------------------------ inputs of the page


def error_free(df: Any) -> Any:
    """Boolean mask of rows without an error (an all-empty error column reloads from CSV as NaN floats)."""
    col = df["error"]
    return col.isna() | (col.astype(str) == "")


def _summary(out: Path) -> dict[str, Any]:
    path = out / "summary.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        log.warning("could not read %s: %s", path, err)
        return {}
    return data if isinstance(data, dict) else {}


def _verdict(result: BenchmarkResult, summary: Mapping[str, Any]) -> dict[str, Any] | None:
    v: Any = getattr(result, "verdict", None)
    if v is not None and not isinstance(v, Mapping) and callable(getattr(v, "to_dict", None)):
        v = v.to_dict()
    if not isinstance(v, Mapping):
        v = summary.get("verdict")
    return dict(v) if isinstance(v, Mapping) else None


def _weights(
    result: BenchmarkResult, summary: Mapping[str, Any], verdict: Mapping[str, Any] | None
) -> tuple[dict[str, float], str | None]:
    """The effective ranking weights and their preset's name: from the verdict, ``summary.json`` or the config."""
    for src in (verdict or {}, summary):
        w = src.get("weights")
        if isinstance(w, Mapping) and w:
            preset = src.get("preset", src.get("weights_preset"))
            return {str(k): float(x) for k, x in w.items()}, preset if isinstance(preset, str) else None
    cfg: Any = result.config
    resolved = getattr(cfg, "ranking_weights", None)
    if isinstance(resolved, tuple) and len(resolved) == 2 and isinstance(resolved[0], Mapping):
        return {str(k): float(x) for k, x in resolved[0].items()}, resolved[1]
    w = getattr(cfg, "weights", None)
    preset = getattr(cfg, "preset", None)
    if isinstance(w, str):
        return {}, w
    if isinstance(w, Mapping):
        return {str(k): float(x) for k, x in w.items()}, preset if isinstance(preset, str) else None
    return {}, None


def _robustness(result: BenchmarkResult, out: Path) -> Any:
    df = getattr(result, "robustness", None)
    if df is not None and len(df):
        return df
    path = out / "robustness.csv"
    if path.is_file() and path.stat().st_size > 1:
        pd = require("pandas", extra="bench", feature="the HTML report")
        return pd.read_csv(path)
    return None


def _quality_metric(result: BenchmarkResult, verdict: Mapping[str, Any] | None) -> str | None:
    q = result.quality
    if q is None or len(q) == 0:
        return None
    if verdict and isinstance(verdict.get("metric"), str) and verdict["metric"] in q.columns:
        return str(verdict["metric"])
    return next((m for m in _QUALITY_PREFERENCE if m in q.columns), None)


def _metric_label(metric: str, verdict: Mapping[str, Any] | None) -> str:
    if verdict and verdict.get("metric") == metric and isinstance(verdict.get("metric_label"), str):
        return str(verdict["metric_label"])
    return metric


def _name(row: Mapping[str, Any]) -> str:
    pooling = row.get("pooling")
    return f"{row.get('embedder', '?')} | {pooling}" if isinstance(pooling, str) and pooling else str(row["embedder"])


def _grid(n: int, cols: int = 3) -> tuple[int, int]:
    c = max(1, min(cols, n))
    return math.ceil(n / c), c


def _height(rows: int, panel_px: int) -> int:
    """Height in pixels of a grid of small multiples: ``panel_px`` per row plus the title and the axes."""
    return panel_px * rows + 160


def _vspace(rows: int, panel_px: int) -> float:
    """Vertical gap between rows (a fraction of the plot height) worth about 70 pixels, room for a panel title."""
    return 0.1 if rows < 2 else min(0.9 / (rows - 1), 70 / (_height(rows, panel_px) - 180))


# ------------------------------------------------------------------------------------------------- figures


def _figures(
    result: BenchmarkResult,
    maps: Mapping[str, tuple[NDArray[np.float64], NDArray[np.int64], NDArray[Any]]],
    verdict: Mapping[str, Any] | None,
    robustness: Any,
) -> dict[str, Any]:
    """Plotly figures by chart name (only those with data), in :data:`CHARTS` order."""
    go = require("plotly.graph_objects", extra="bench", feature="the HTML report", package="plotly")
    subplots = require("plotly.subplots", extra="bench", feature="the HTML report", package="plotly")
    figs: dict[str, Any] = {}
    metric = _quality_metric(result, verdict)
    if metric is not None:
        fig = _quality_speed(go, result, metric, verdict)
        if fig is not None:
            figs["quality_speed"] = fig
    if len(result.ranking) and "score" in result.ranking:
        r = result.ranking
        labels = [" | ".join(str(x) for x in t) for t in zip(r["embedder"], r["pooling"], r["store"], strict=True)]
        figs["ranking"] = go.Figure(
            [go.Bar(x=r["score"], y=labels, orientation="h", text=[format_number(s) for s in r["score"]])],
            layout={
                "title": "Weighted score (0–100, higher is better)",
                "yaxis": {"autorange": "reversed", "automargin": True},
                "xaxis": {"range": [0, 100]},
                "height": max(320, 26 * len(r) + 120),
            },
        )
    q = result.quality
    qmetrics = [m for m in _quality_columns(q) if f"{m}_lo" in q and f"{m}_hi" in q] if len(q) else []
    if qmetrics:
        q = q.dropna(subset=[qmetrics[0]])
        names = [_name(row) for row in q.to_dict("records")]
        fig = go.Figure()
        for m in qmetrics:
            fig.add_trace(
                go.Bar(
                    x=names,
                    y=q[m],
                    name=m,
                    error_y={
                        "type": "data",
                        "symmetric": False,
                        "array": np.clip(q[f"{m}_hi"] - q[m], 0, None),
                        "arrayminus": np.clip(q[m] - q[f"{m}_lo"], 0, None),
                    },
                )
            )
        if "linear_probe_acc" in q:
            fig.add_trace(go.Bar(x=names, y=q["linear_probe_acc"], name="linear_probe_acc"))
        fig.update_layout(
            barmode="group",
            title="Retrieval quality (exact search, group rule) with 95 % bootstrap intervals",
            yaxis={"range": [0, 1]},
            xaxis={"automargin": True},
        )
        figs["quality"] = fig
    if result.distances:
        figs["distances"] = _distances(go, subplots, result.distances)
    if maps:
        figs["embedding_map"] = _maps(go, subplots, maps)
    if robustness is not None and len(robustness):
        fig = _robustness_curves(go, subplots, robustness, metric, verdict)
        if fig is not None:
            figs["robustness"] = fig
    figs.update(_speed_figures(go, subplots, result))
    st = result.stores
    if len(st) and "search_p50_ms" in st and "ann_recall" in st:
        s = st[error_free(st)] if "error" in st else st
        if len(s):
            fig = go.Figure()
            for i, (store, part) in enumerate(s.groupby("store", sort=False)):
                fig.add_trace(
                    go.Scatter(
                        x=part["search_p50_ms"],
                        y=part["ann_recall"],
                        mode="markers",
                        name=str(store),
                        marker={"size": 10, "color": _PALETTE[i % len(_PALETTE)]},
                        text=[_name(row) for row in part.to_dict("records")],
                        hovertemplate="%{text}<br>p50 %{x:.3g} ms<br>recall@k %{y:.3g}<extra>%{fullData.name}</extra>",
                        cliponaxis=False,
                    )
                )
            low = float(np.nanmin(s["ann_recall"])) if s["ann_recall"].notna().any() else 0.0
            fig.update_layout(
                title="ANN recall@k against exact search vs single-query latency (p50)",
                xaxis={"title": "latency p50 (ms)", "type": "log"},
                yaxis={"title": "recall@k", "range": [max(0.0, min(low - 0.05, 0.9)), 1.0]},
            )
            figs["recall_latency"] = fig
    return {name: figs[name] for name in CHARTS if name in figs}


def _quality_columns(q: Any) -> list[str]:
    """Quality metrics with intervals in the quality table: top-n accuracies, top-k, mAP (in that order)."""
    cols = sorted((c for c in q.columns if re.fullmatch(r"top\d+_acc", c)), key=lambda c: int(c[3:-4]))
    return cols + [c for c in ("topk_acc", "map_at_k") if c in q.columns]


def _speeds(result: BenchmarkResult) -> dict[str, float]:
    m = result.models
    if m is None or len(m) == 0 or "rtf_median" not in m:
        return {}
    return {str(e): float(v) for e, v in zip(m["embedder"], m["rtf_median"], strict=True)}


def _quality_speed(go: Any, result: BenchmarkResult, metric: str, verdict: Mapping[str, Any] | None) -> Any:
    """Quality (with intervals) against real-time factor, one point per embedder × pooling; the Pareto front."""
    speeds = _speeds(result)
    q = result.quality
    rows = [r for r in q.to_dict("records") if math.isfinite(float(r.get(metric, math.nan)))]
    pts = [(float(r[metric]), speeds.get(str(r["embedder"]), math.nan)) for r in rows]
    if not any(math.isfinite(s) and s > 0 for _, s in pts):
        return None
    label = _metric_label(metric, verdict)
    pareto3 = {
        (p.get("embedder"), p.get("pooling")) for p in (verdict or {}).get("pareto") or [] if isinstance(p, dict)
    }
    front = pareto_front(pts)
    fig = go.Figure()
    embedders = list(dict.fromkeys(str(r["embedder"]) for r in rows))
    for i, emb in enumerate(embedders):
        idx = [j for j, r in enumerate(rows) if str(r["embedder"]) == emb]
        lo = [rows[j].get(f"{metric}_lo", math.nan) for j in idx]
        hi = [rows[j].get(f"{metric}_hi", math.nan) for j in idx]
        fig.add_trace(
            go.Scatter(
                x=[pts[j][1] for j in idx],
                y=[pts[j][0] for j in idx],
                mode="markers+text" if len(rows) <= 12 else "markers",
                name=emb,
                text=[str(rows[j].get("pooling", "")) for j in idx],
                textposition=[_TEXT_POSITIONS[k % len(_TEXT_POSITIONS)] for k in range(len(idx))],
                customdata=[
                    [
                        _name(rows[j]),
                        rt_label(pts[j][1]),
                        _ci_text(lo[k], hi[k]),
                        "yes" if j in front else "no",
                        "yes" if (rows[j]["embedder"], rows[j].get("pooling")) in pareto3 else "no",
                    ]
                    for k, j in enumerate(idx)
                ],
                hovertemplate=(
                    "%{customdata[0]}<br>" + html.escape(label) + " %{y:.3g} %{customdata[2]}<br>%{customdata[1]}"
                    "<br>on the quality × speed front: %{customdata[3]}"
                    + ("<br>Pareto-optimal (quality, speed, bytes): %{customdata[4]}" if pareto3 else "")
                    + "<extra></extra>"
                ),
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": [max(0.0, float(h) - pts[j][0]) for h, j in zip(hi, idx, strict=True)],
                    "arrayminus": [max(0.0, pts[j][0] - float(lv)) for lv, j in zip(lo, idx, strict=True)],
                    "thickness": 1,
                },
                marker={
                    "size": [14 if j in front else 9 for j in idx],
                    "color": _PALETTE[i % len(_PALETTE)],
                    "symbol": ["diamond" if j in front else "circle" for j in idx],
                    "line": {"width": [2 if j in front else 0 for j in idx], "color": "#222"},
                },
                cliponaxis=False,
            )
        )
    order = sorted(front, key=lambda j: pts[j][1])
    fig.add_trace(
        go.Scatter(
            x=[pts[j][1] for j in order],
            y=[pts[j][0] for j in order],
            mode="lines",
            line={"dash": "dash", "color": "#222", "width": 1.5, "shape": "hv"},
            name="Pareto front",
            hoverinfo="skip",
        )
    )
    xs = [s for _, s in pts if math.isfinite(s) and s > 0]
    ticks = [10.0**e for e in range(math.floor(math.log10(min(xs))), math.ceil(math.log10(max(xs))) + 1)]
    fig.update_layout(
        title=f"Quality × speed: {label} against real-time factor (right is faster, up is better)",
        xaxis={
            "title": "real-time factor (audio seconds embedded per second, log scale)",
            "type": "log",
            "tickvals": ticks,
            "ticktext": [rt_label(t) for t in ticks],
        },
        yaxis={"title": label, "range": [0, 1.0]},
        height=480,
    )
    return fig


def _distances(go: Any, subplots: Any, distances: Mapping[str, tuple[NDArray[Any], NDArray[Any]]]) -> Any:
    """Small multiples: in-class and out-of-class similarity densities, one panel per vector set (binned here)."""
    keys = list(distances)
    finite = [a[np.isfinite(a)] for pair in distances.values() for a in pair]
    lo = min((float(a.min()) for a in finite if len(a)), default=0.0)
    hi = max((float(a.max()) for a in finite if len(a)), default=1.0)
    edges = np.linspace(lo, hi if hi > lo else lo + 1.0, 41)
    centres = (edges[:-1] + edges[1:]) / 2
    rows, cols = _grid(len(keys))
    fig = subplots.make_subplots(
        rows=rows, cols=cols, subplot_titles=keys, vertical_spacing=_vspace(rows, 240), horizontal_spacing=0.05
    )
    for n, key in enumerate(keys):
        for kind, values, color in (
            ("in-class", distances[key][0], "#1f77b4"),
            ("out-of-class", distances[key][1], "#ff7f0e"),
        ):
            v = values[np.isfinite(values)]
            dens = np.histogram(v, edges, density=True)[0] if len(v) else np.zeros(len(centres))
            fig.add_trace(
                go.Scatter(
                    x=centres,
                    y=dens,
                    mode="lines",
                    line={"shape": "hvh", "color": color, "width": 1},
                    fill="tozeroy",
                    opacity=0.5,
                    name=kind,
                    legendgroup=kind,
                    showlegend=n == 0,
                    hovertemplate=f"{html.escape(key)}<br>{kind}: similarity %{{x:.3g}}<extra></extra>",
                ),
                row=n // cols + 1,
                col=n % cols + 1,
            )
    fig.update_yaxes(showticklabels=False)
    fig.update_xaxes(range=[float(edges[0]), float(edges[-1])])
    fig.update_layout(
        title="Similarity of in-class vs out-of-class pairs (other groups only): the less overlap, the better",
        height=_height(rows, 240),
    )
    return fig


def _maps(
    go: Any, subplots: Any, maps: Mapping[str, tuple[NDArray[np.float64], NDArray[np.int64], NDArray[Any]]]
) -> Any:
    """Small multiples: the 2-D t-SNE map of each vector set, coloured by label (same colour, same label)."""
    keys = list(maps)
    all_labels = sorted({str(v) for _, _, labels in maps.values() for v in labels})
    colour = {lab: _PALETTE[i % len(_PALETTE)] for i, lab in enumerate(all_labels)}
    rows, cols = _grid(len(keys))
    fig = subplots.make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=[f"{k} ({len(maps[k][0])} points)" for k in keys],
        vertical_spacing=_vspace(rows, 300),
        horizontal_spacing=0.04,
    )
    for n, key in enumerate(keys):
        xy, _, labels = maps[key]
        text = [str(v) for v in labels]
        fig.add_trace(
            go.Scatter(
                x=xy[:, 0],
                y=xy[:, 1],
                mode="markers",
                marker={"size": 5, "color": [colour[t] for t in text], "opacity": 0.8},
                text=text,
                name=key,
                showlegend=False,
                hovertemplate="%{text}<extra></extra>",
            ),
            row=n // cols + 1,
            col=n % cols + 1,
        )
    fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False)
    fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False)
    fig.update_layout(
        title="2-D t-SNE map of each model's vectors, coloured by label (hover for the label)",
        height=_height(rows, 300),
    )
    return fig


def _robustness_columns(df: Any, metric: str | None) -> list[str]:
    """Quality metrics of the robustness table, the verdict's metric first."""
    known = [c for c in df.columns if c in METRICS or re.fullmatch(r"top\d+_acc", c)]
    if metric in known:
        known.remove(metric)
        known.insert(0, metric)
    return known


def _bounds(row: Mapping[str, Any], m: str) -> tuple[float, float]:
    """The interval of ``m`` in a row: ``m_lo``/``m_hi`` or ``m_ci_low``/``m_ci_high``."""
    for lo, hi in (("_lo", "_hi"), ("_ci_low", "_ci_high")):
        if f"{m}{lo}" in row and f"{m}{hi}" in row:
            return _float(row[f"{m}{lo}"]), _float(row[f"{m}{hi}"])
    return math.nan, math.nan


def _float(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _is_clean(row: Mapping[str, Any]) -> bool:
    return str(row.get("degradation", "")).lower() in ("clean", "none")


def _by_degradation(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows grouped by degradation (first-seen order), each from its mildest to its harshest level.

    Levels go by ``level_value``, descending (SNR, bit rate and excerpt length fall as a degradation grows), or
    keep the given order when a level has no value.
    """
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault(str(r["degradation"]), []).append(r)
    out = []
    for part in groups.values():
        if all(math.isfinite(_float(r.get("level_value"))) for r in part):
            part = sorted(part, key=lambda r: -_float(r.get("level_value")))
        out.extend(part)
    return out


def _robustness_curves(go: Any, subplots: Any, df: Any, metric: str | None, verdict: Mapping[str, Any] | None) -> Any:
    """One panel per degradation: quality from the clean queries to the harshest level, one line per configuration.

    The x-axis lists the levels as categories: ``clean`` (the baseline row, ``degradation = "clean"``) first, then
    the levels from mildest to harshest (:func:`_by_degradation`).
    """
    cols_q = _robustness_columns(df, metric)
    if not cols_q or "degradation" not in df:
        return None
    m = cols_q[0]
    label = _metric_label(m, verdict)
    records = df.to_dict("records")
    clean = {_name(r): r for r in records if _is_clean(r)}
    records = [r for r in records if not _is_clean(r)]
    degradations = list(dict.fromkeys(str(r["degradation"]) for r in records))
    if not degradations:
        return None
    rows, cols = _grid(len(degradations))
    fig = subplots.make_subplots(rows=rows, cols=cols, subplot_titles=degradations, vertical_spacing=_vspace(rows, 300))
    series = list(dict.fromkeys(_name(r) for r in df.to_dict("records")))
    colour = {s: _PALETTE[i % len(_PALETTE)] for i, s in enumerate(series)}
    records = _by_degradation(records)
    for n, deg in enumerate(degradations):
        part = [r for r in records if str(r["degradation"]) == deg]
        for s in series:
            rec = [r for r in part if _name(r) == s]
            if not rec:
                continue
            if s in clean:
                rec.insert(0, {**clean[s], "level": "clean"})
            ys = [_float(r.get(m)) for r in rec]
            bounds = [_bounds(r, m) for r in rec]
            fig.add_trace(
                go.Scatter(
                    x=[str(r.get("level", "")) for r in rec],
                    y=ys,
                    mode="lines+markers",
                    name=s,
                    legendgroup=s,
                    showlegend=n == 0,
                    line={"color": colour[s]},
                    hovertemplate=f"{html.escape(s)}<br>%{{x}}: {html.escape(label)} %{{y:.3g}}<extra></extra>",
                    error_y={
                        "type": "data",
                        "symmetric": False,
                        "array": [
                            max(0.0, h - y) if math.isfinite(h) else 0.0 for (_, h), y in zip(bounds, ys, strict=True)
                        ],
                        "arrayminus": [
                            max(0.0, y - lo) if math.isfinite(lo) else 0.0
                            for (lo, _), y in zip(bounds, ys, strict=True)
                        ],
                        "thickness": 1,
                    },
                ),
                row=n // cols + 1,
                col=n % cols + 1,
            )
    fig.update_xaxes(type="category")
    fig.update_yaxes(range=[0, 1.0])
    fig.update_layout(
        title=f"Robustness: {label} of degraded queries against the clean index, from clean to the harshest level",
        height=_height(rows, 300),
    )
    return fig


def _speed_figures(go: Any, subplots: Any, result: BenchmarkResult) -> dict[str, Any]:
    figs: dict[str, Any] = {}
    files = result.files
    ok = files[error_free(files)] if len(files) and "error" in files else files
    m = result.models
    if len(m) and "extract_s_mean" in m:
        m = m.dropna(subset=["extract_s_mean"])
        figs["extraction"] = go.Figure(
            [
                go.Bar(
                    x=m["embedder"],
                    y=m["extract_s_mean"] * 1000,
                    text=[rt_label(v) for v in m["rtf_median"]] if "rtf_median" in m else None,
                    textposition="outside",
                    cliponaxis=False,
                )
            ],
            layout={
                "title": "Mean extraction time per file (ms); label: median real-time factor",
                "yaxis_title": "ms",
            },
        )
    if len(ok) and "extract_s" in ok:
        pd = require("pandas", extra="bench", feature="the HTML report")
        box = go.Figure()
        scatter = go.Figure()
        rng = np.random.default_rng(result.config.seed)
        sampled = False
        for i, (emb, part) in enumerate(ok.groupby("embedder", sort=False)):
            ms = part["extract_s"].to_numpy(dtype=np.float64) * 1000
            ms = ms[np.isfinite(ms)]
            if not len(ms):
                continue
            q1, med, q3 = np.percentile(ms, [25, 50, 75])
            iqr = q3 - q1
            lowf = float(ms[ms >= q1 - 1.5 * iqr].min())
            upf = float(ms[ms <= q3 + 1.5 * iqr].max())
            c = _PALETTE[i % len(_PALETTE)]
            box.add_trace(
                go.Box(
                    x=[str(emb)],
                    q1=[q1],
                    median=[med],
                    q3=[q3],
                    lowerfence=[lowf],
                    upperfence=[upf],
                    mean=[float(ms.mean())],
                    name=str(emb),
                    marker_color=c,
                    showlegend=False,
                )
            )
            out = part[(part["extract_s"] * 1000 > upf) | (part["extract_s"] * 1000 < lowf)]
            if len(out) > 200:
                out = out.nlargest(200, "extract_s")
            if len(out):
                box.add_trace(
                    go.Scatter(
                        x=[str(emb)] * len(out),
                        y=out["extract_s"] * 1000,
                        mode="markers",
                        marker={"color": c, "size": 4},
                        text=out["path"].astype(str) if "path" in out else None,
                        hovertemplate="%{text}<br>%{y:.3g} ms<extra></extra>",
                        showlegend=False,
                    )
                )
            if "duration_s" in part:
                pick = part
                if len(part) > SCATTER_POINTS:
                    sampled = True
                    slow = part.nlargest(SCATTER_POINTS // 20, "extract_s")
                    rest = part.drop(slow.index)
                    keep = rng.choice(len(rest), SCATTER_POINTS - len(slow), replace=False)
                    pick = pd.concat([rest.iloc[np.sort(keep)], slow])
                scatter.add_trace(
                    go.Scatter(
                        x=pick["duration_s"],
                        y=pick["extract_s"],
                        mode="markers",
                        name=str(emb),
                        marker={"color": c, "size": 5},
                        text=pick["path"].astype(str) if "path" in pick else None,
                        hovertemplate="%{text}<br>%{x:.3g} s of audio in %{y:.3g} s<extra>%{fullData.name}</extra>",
                    )
                )
        box.update_layout(
            title="Extraction time per file (ms): quartiles, 1.5 IQR whiskers, outliers", yaxis_title="ms"
        )
        figs["extraction_box"] = box
        if scatter.data:
            note = f" (at most {SCATTER_POINTS} files per model, the slowest kept)" if sampled else ""
            scatter.update_layout(
                title=f"Audio duration vs extraction time{note}",
                xaxis_title="duration (s)",
                yaxis_title="extraction (s)",
            )
            figs["duration_scatter"] = scatter
    if len(result.scaling):
        sc = result.scaling.copy()
        sc["series"] = sc["embedder"] + " | " + sc["pooling"] + " | " + sc["store"]
        quantities = [q for q in ("extract_s_total", "insert_s", "search_p50_ms") if q in sc]
        if quantities:
            fig = subplots.make_subplots(rows=1, cols=len(quantities), subplot_titles=quantities)
            for col, quantity in enumerate(quantities, start=1):
                for j, (name, part) in enumerate(sc.groupby("series", sort=False)):
                    fig.add_trace(
                        go.Scatter(
                            x=part["size"],
                            y=part[quantity],
                            mode="lines+markers",
                            name=str(name),
                            legendgroup=str(name),
                            showlegend=col == 1,
                            line={"color": _PALETTE[j % len(_PALETTE)]},
                        ),
                        row=1,
                        col=col,
                    )
                fig.update_xaxes(title_text="files", row=1, col=col)
            fig.update_layout(
                title="Scaling with the number of files: extraction (s), insertion (s), search p50 (ms)",
                legend={"font": {"size": 10}},
            )
            figs["scaling"] = fig
    return figs


# ------------------------------------------------------------------------------------------------------ PNG


def _png(result: BenchmarkResult, out: Path) -> list[Path]:
    """Matplotlib versions of the main charts."""
    require("matplotlib", extra="bench", feature="PNG plots")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths: list[Path] = []

    def save(fig: Any, name: str) -> None:
        p = out / f"{name}.png"
        fig.tight_layout()
        fig.savefig(p, dpi=110)
        plt.close(fig)
        paths.append(p)

    files = result.files
    ok = files[error_free(files)] if len(files) and "error" in files else files
    if len(ok) and "extract_s" in ok:
        models = list(dict.fromkeys(ok["embedder"]))
        fig, ax = plt.subplots(1, 2, figsize=(11, 4))
        means = [ok[ok["embedder"] == m]["extract_s"].mean() * 1000 for m in models]
        ax[0].bar(models, means)
        ax[0].set_ylabel("mean extraction per file (ms)")
        ax[1].boxplot([ok[ok["embedder"] == m]["extract_s"] * 1000 for m in models], tick_labels=models)
        ax[1].set_ylabel("extraction per file (ms)")
        save(fig, "extraction")
        fig, ax = plt.subplots(figsize=(6, 4))
        for m in models:
            part = ok[ok["embedder"] == m]
            if len(part) > SCATTER_POINTS:
                part = part.sample(SCATTER_POINTS, random_state=result.config.seed)
            ax.scatter(part["duration_s"], part["extract_s"], s=10, label=m)
        ax.set_xlabel("duration (s)")
        ax.set_ylabel("extraction (s)")
        ax.legend()
        save(fig, "duration_scatter")
    q = result.quality
    qmetrics = [m for m in _quality_columns(q) if f"{m}_lo" in q and f"{m}_hi" in q] if len(q) else []
    if qmetrics:
        q = q.dropna(subset=[qmetrics[0]])
        names = [_name(r).replace(" | ", "\n") for r in q.to_dict("records")]
        xs = np.arange(len(q))
        width = 0.8 / len(qmetrics)
        fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(q)), 4))
        for j, metric in enumerate(qmetrics):
            err = np.clip(np.vstack([q[metric] - q[f"{metric}_lo"], q[f"{metric}_hi"] - q[metric]]), 0, None)
            ax.bar(xs + (j - (len(qmetrics) - 1) / 2) * width, q[metric], width, yerr=err, capsize=3, label=metric)
        ax.set_xticks(xs, names, fontsize=8)
        ax.set_ylim(0, 1)
        ax.legend()
        ax.set_title("retrieval quality, 95 % bootstrap CI")
        save(fig, "quality")
    if len(result.ranking):
        r = result.ranking
        fig, ax = plt.subplots(figsize=(7, 0.35 * len(r) + 1))
        ax.barh(list(r["embedder"] + " | " + r["pooling"] + " | " + r["store"])[::-1], list(r["score"])[::-1])
        ax.set_xlabel("score (0-100)")
        save(fig, "ranking")
    if len(result.scaling) and "insert_s" in result.scaling:
        sc = result.scaling
        fig, ax = plt.subplots(1, 3, figsize=(13, 4))
        for (e, p, s), part in sc.groupby(["embedder", "pooling", "store"]):
            for a, quantity in zip(ax, ("extract_s_total", "insert_s", "search_p50_ms"), strict=True):
                if quantity in part:
                    a.plot(part["size"], part[quantity], marker="o", label=f"{e}|{p}|{s}")
                    a.set_title(quantity)
                    a.set_xlabel("files")
        ax[0].legend(fontsize=6)
        save(fig, "scaling")
    return paths


# ------------------------------------------------------------------------------------------------------ HTML


def _esc(v: Any) -> str:
    return html.escape(str(v))


def _cell(v: Any) -> str:
    if isinstance(v, float | int | np.floating | np.integer) and not isinstance(v, bool):
        return f'<td class="num">{format_number(v)}</td>'
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "<td></td>"
    text = str(v)
    return f'<td class="{"long" if len(text) > 40 else "text"}">{_esc(text)}</td>'


def _table(
    df: Any,
    cols: Sequence[str],
    title: str | None = None,
    ci: tuple[str, str] = ("_lo", "_hi"),
    anchor: str | None = None,
) -> str:
    """An HTML table (in a scrolling box) of ``cols``; ``m`` with ``m_lo``/``m_hi`` columns shows as "v [lo, hi]"."""
    if df is None or len(df) == 0:
        return ""
    present = set(df.columns)
    keep = [c for c in dict.fromkeys(cols) if c in present and not _is_ci(c, present, ci)]
    if not keep:
        return ""

    def header(c: str) -> str:
        info = METRICS.get(c)
        tip = f' title="{_esc(info.description)}"' if info else ""
        with_ci = f"{c}{ci[0]}" in present and f"{c}{ci[1]}" in present
        return f"<th{tip}>{_esc(c)}" + (' <span class="ci">[95 % CI]</span>' if with_ci else "") + "</th>"

    body = []
    for row in df.to_dict("records"):
        cells = []
        for c in keep:
            lo, hi = row.get(f"{c}{ci[0]}"), row.get(f"{c}{ci[1]}")
            if lo is not None and hi is not None and format_number(row[c]):
                interval = _ci_text(lo, hi)
                cells.append(f'<td class="num">{format_number(row[c])} <span class="ci">{interval}</span></td>')
            else:
                cells.append(_cell(row[c]))
        body.append("<tr>" + "".join(cells) + "</tr>")
    head = "".join(header(c) for c in keep)
    h = (
        f'<h3 id="{_esc(anchor)}">{_esc(title)}</h3>'
        if title and anchor
        else (f"<h3>{_esc(title)}</h3>" if title else "")
    )
    return (
        f'{h}<div class="table-wrap"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'
    )


def _is_ci(c: str, present: set[str], ci: tuple[str, str]) -> bool:
    return any(c.endswith(s) and c[: -len(s)] in present for s in ci)


def _weights_html(weights: Mapping[str, float], preset: str | None) -> str:
    if not weights and not preset:
        return ""
    total = sum(w for w in weights.values() if w > 0)
    parts = [
        f'<span class="weight" title="{_esc(METRICS[k].description) if k in METRICS else ""}">'
        f"{_esc(k)} <b>{format_number(100 * w / total, 2)} %</b></span>"
        for k, w in sorted(weights.items(), key=lambda kv: -kv[1])
        if total > 0 and w > 0
    ]
    name = f"preset <b>{_esc(preset)}</b>" if preset else "custom weights"
    listed = ": " + " · ".join(parts) if parts else ""
    return (
        f'<p class="weights">Ranking weights ({name}){listed}. The score normalises each metric across the '
        "candidates (better is higher) and adds them with these weights.</p>"
    )


def _verdict_html(verdict: Mapping[str, Any] | None) -> str:
    if verdict is None:
        return (
            '<section id="verdict"><h2>Verdict</h2><p class="muted">This results folder has no verdict '
            "(it was written by an older version of audiovec). Run the benchmark again to get one; meanwhile read "
            "the quality × speed chart and the quality intervals below.</p></section>"
        )
    label = str(verdict.get("metric_label") or verdict.get("metric") or "quality")
    alpha = verdict.get("alpha")
    level = f"{100 * (1 - float(alpha)):.0f} %" if isinstance(alpha, int | float) else "95 %"
    parts = ['<section id="verdict"><h2>Verdict</h2>']
    sentences = [s for s in verdict.get("sentences") or [] if isinstance(s, str)]
    if sentences:
        parts.append('<ul class="sentences">' + "".join(f"<li>{_esc(s)}</li>" for s in sentences) + "</ul>")
    facts = []
    best = verdict.get("best")
    if isinstance(best, Mapping):
        ci = best.get("ci") or [None, None]
        facts.append(
            f"<dt>Best {_esc(label)}</dt><dd><b>{_esc(_name(best))}</b>: {format_number(best.get('value'))} "
            f'<span class="ci">{_ci_text(*ci[:2]) if len(ci) >= 2 else ""} ({level} interval)</span></dd>'
        )
    tied = [t for t in verdict.get("tied") or [] if isinstance(t, Mapping)]
    if isinstance(best, Mapping):
        tied_text = (
            ", ".join(f"<b>{_esc(_name(t))}</b>" for t in tied)
            if tied
            else "none: every other model is measurably worse"
        )
        facts.append(f"<dt>Statistically tied with the best</dt><dd>{tied_text}</dd>")
    fastest = verdict.get("fastest")
    if isinstance(fastest, Mapping):
        per_file = format_number(1000 * float(fastest["extract_s"])) if _finite(fastest.get("extract_s")) else ""
        facts.append(
            f"<dt>Fastest</dt><dd><b>{_esc(_name(fastest))}</b>: {rt_label(fastest.get('rtf')) or 'n/a'}"
            + (f", {per_file} ms per file" if per_file else "")
            + "</dd>"
        )
    smallest = verdict.get("smallest")
    if isinstance(smallest, Mapping):
        facts.append(
            f"<dt>Smallest per vector</dt><dd><b>{_esc(_name(smallest))}</b>: "
            f"{format_number(smallest.get('bytes_per_vector'))} bytes per vector</dd>"
        )
    if facts:
        parts.append('<dl class="facts">' + "".join(facts) + "</dl>")
    pd = require("pandas", extra="bench", feature="the HTML report")
    if tied:
        t = pd.DataFrame(
            [
                {
                    "embedder": r.get("embedder"),
                    "pooling": r.get("pooling"),
                    label: r.get("value"),
                    f"{label}_lo": (r.get("ci") or [math.nan, math.nan])[0],
                    f"{label}_hi": (r.get("ci") or [math.nan, math.nan])[-1],
                    "difference to the best": r.get("diff"),
                    "difference to the best_lo": (r.get("diff_ci") or [math.nan, math.nan])[0],
                    "difference to the best_hi": (r.get("diff_ci") or [math.nan, math.nan])[-1],
                }
                for r in tied
            ]
        )
        parts.append(
            _table(t, ["embedder", "pooling", label, "difference to the best"], "Tied with the best")
            + f'<p class="muted">Paired bootstrap over the same queries: the interval of the difference covers 0 '
            f"at the {level} level.</p>"
        )
    pareto = [p for p in verdict.get("pareto") or [] if isinstance(p, Mapping)]
    if pareto:
        p = pd.DataFrame(
            [
                {
                    "embedder": r.get("embedder"),
                    "pooling": r.get("pooling"),
                    label: r.get("quality"),
                    "speed": rt_label(r.get("rtf")),
                    "bytes_per_vector": r.get("bytes_per_vector"),
                }
                for r in pareto
            ]
        )
        parts.append(
            _table(p, list(p.columns), "Pareto-optimal set (quality, speed, bytes per vector)")
            + '<p class="muted">No other model is at least as good on all three and better on one.</p>'
        )
    parts.append("</section>")
    return "".join(parts)


def _finite(v: Any) -> bool:
    try:
        return math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def _robustness_table(df: Any, result: BenchmarkResult, metric: str | None, verdict: Mapping[str, Any] | None) -> str:
    """Models × (degradation, level): the metric with its interval, the clean baseline first."""
    cols_q = _robustness_columns(df, metric)
    if not cols_q:
        return _table(df, list(df.columns), None)
    m = cols_q[0]
    records = df.to_dict("records")
    clean = {_name(r): r for r in records if _is_clean(r)}
    if not clean and result.quality is not None and len(result.quality) and m in result.quality:
        clean = {_name(r): r for r in result.quality.to_dict("records")}
    records = _by_degradation([r for r in records if not _is_clean(r)])
    steps = list(dict.fromkeys((str(r["degradation"]), str(r.get("level", ""))) for r in records))
    head = "<th>model</th><th>clean</th>" + "".join(
        f'<th>{_esc(d)}<br><span class="ci">{_esc(lv)}</span></th>' for d, lv in steps
    )

    def cell(r: Mapping[str, Any] | None) -> str:
        if r is None or not format_number(r.get(m)):
            return "<td></td>"
        return f'<td class="num">{format_number(r.get(m))} <span class="ci">{_ci_text(*_bounds(r, m))}</span></td>'

    cells_by = {(_name(r), str(r["degradation"]), str(r.get("level", ""))): r for r in records}
    body = []
    for s in dict.fromkeys(_name(r) for r in df.to_dict("records")):
        tds = [f'<td class="text">{_esc(s)}</td>', cell(clean.get(s))]
        tds += [cell(cells_by.get((s, d, lv))) for d, lv in steps]
        body.append("<tr>" + "".join(tds) + "</tr>")
    n = [v for v in (_float(x) for x in df["n_queries"]) if math.isfinite(v)] if "n_queries" in df else []
    nq = f" over up to {format_number(max(n))} queries" if n else ""
    return (
        f'<p class="muted">{_esc(_metric_label(m, verdict))} [95 % CI] of degraded queries searched against the clean '
        f"index{nq}, next to the same queries undegraded (clean).</p>"
        f'<div class="table-wrap"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'
    )


_CSS = """
body{font-family:system-ui,-apple-system,sans-serif;margin:0 auto;padding:1.5em 2em;max-width:1400px;color:#222}
h1{margin-bottom:.2em}h2{margin-top:2em;border-bottom:1px solid #ddd;padding-bottom:.2em}h3{margin-top:1.4em}
nav{font-size:14px;margin:.5em 0 1em}nav a{margin-right:1em}
.table-wrap{overflow-x:auto;max-width:100%;margin-bottom:1.2em}
table{border-collapse:collapse;font-size:13px}
td,th{border:1px solid #ccc;padding:3px 6px;vertical-align:top}
th{background:#f3f3f3;text-align:center;font-weight:600}
td.num{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
td.text{text-align:left;white-space:nowrap}td.long{text-align:left;min-width:16em;max-width:40em;overflow-wrap:anywhere}
th .ci{white-space:nowrap}
.ci{color:#777;font-size:11px;font-weight:normal}
.muted{color:#666;font-size:14px}
.weights{background:#f6f8fa;border:1px solid #e1e4e8;padding:.6em .9em;border-radius:4px}
.weight{white-space:nowrap}
#verdict{background:#f4faf4;border:1px solid #cfe3cf;border-radius:4px;padding:.2em 1.2em 1em}
#verdict h2{border:none;margin-top:.6em}
.sentences li{margin:.3em 0;font-size:16px}
dl.facts{display:grid;grid-template-columns:max-content auto;gap:.3em 1em}dl.facts dt{font-weight:600}
dl.facts dd{margin:0}
.chart{margin:1em 0;max-width:100%;overflow-x:auto}
pre{background:#f6f8fa;padding:1em;overflow-x:auto;font-size:12px}
"""


def write_report(result: BenchmarkResult, directory: str | Path | None = None, png: bool = True) -> Path:
    """Write ``report.html`` (self-contained) and the PNG plots into the results folder; returns the HTML path.

    The verdict, the effective weights and their preset come from ``summary.json`` in ``directory`` (when present);
    the robustness section from ``robustness.csv`` there. The 2-D map coordinates are cached in :data:`MAP_CACHE`.
    """
    plotly_offline = require("plotly.offline", extra="bench", feature="the HTML report", package="plotly")
    out = Path(directory or result.config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = _summary(out)
    verdict = _verdict(result, summary)
    weights, preset = _weights(result, summary, verdict)
    robustness = _robustness(result, out)
    metric = _quality_metric(result, verdict)
    maps = _cached_maps(result, out)
    figs = _figures(result, maps, verdict, robustness)
    pngs = _png(result, out) if png else []

    def chart(name: str, intro: str = "") -> str:
        if name not in figs:
            return ""
        body = figs[name].to_html(
            full_html=False, include_plotlyjs=False, div_id=f"plot-{name}", config={"responsive": True}
        )
        text = f'<p class="muted">{intro}</p>' if intro else ""
        return f'{text}<div class="chart" id="chart-{name}">{body}</div>'

    sections: list[tuple[str, str, str]] = []
    sections.append(("verdict", "Verdict", ""))  # drawn apart, first
    trade = chart(
        "quality_speed",
        "Each point is an embedder × pooling; bars are 95 % intervals. Diamonds sit on the Pareto front: no other "
        "point is both faster and better.",
    )
    if trade:
        sections.append(("tradeoff", "Quality × speed", trade))
    ranking_cols = ["rank", "embedder", "pooling", "store", "score", *weights]
    ranking_cols += [c for c in COLUMNS["ranking"] if c not in ranking_cols]
    sections.append(("ranking", "Ranking", _table(result.ranking, ranking_cols) + chart("ranking")))
    quality_cols = ["embedder", "pooling", "n_vectors", "n_queries", *_quality_columns(result.quality)]
    quality_cols += [c for c in COLUMNS["quality"] if not c.endswith(("_lo", "_hi")) and c not in quality_cols]
    sections.append(
        (
            "quality",
            "Retrieval quality",
            _table(result.quality, quality_cols)
            + chart("quality")
            + chart(
                "distances",
                "Similarities of pairs with the same label (in-class, blue) and different labels (out-of-class, "
                "orange), pairs within a group left out. Well separated curves make a good search space.",
            )
            + chart(
                "embedding_map",
                f"Up to {min(MAP_POINTS, result.config.embedding_map_points)} vectors per model, sampled evenly "
                "across labels. Same-coloured points that cluster mean the model separates the labels; distances "
                "between clusters mean little in t-SNE.",
            ),
        )
    )
    if robustness is not None and len(robustness):
        sections.append(
            (
                "robustness",
                "Robustness",
                _robustness_table(robustness, result, metric, verdict)
                + chart("robustness", "The flatter a line, the less the degradation hurts the model."),
            )
        )
    sections.append(
        (
            "speed",
            "Extraction speed",
            _table(result.models, COLUMNS["models"])
            + chart("extraction")
            + chart("extraction_box")
            + chart("duration_scatter")
            + chart("scaling"),
        )
    )
    sections.append(("stores", "Vector stores", _table(result.stores, COLUMNS["stores"]) + chart("recall_latency")))
    if len(result.growth):
        sections.append(("growth", "Growth", _table(result.growth, COLUMNS["growth"])))
    failed = (
        result.files[~error_free(result.files)] if len(result.files) and "error" in result.files else result.files[:0]
    )
    if len(failed):
        sections.append(("failures", "Failures", _table(failed, ["embedder", "path", "error"])))
    if pngs:
        sections.append(("png", "PNG plots", "".join(f'<p><a href="{p.name}">{p.name}</a></p>' for p in pngs)))
    cfg = html.escape(result.config.model_dump_json(indent=2))
    sections.append(
        (
            "config",
            "Configuration",
            f"<details><summary>The run's settings (config.json)</summary><pre>{cfg}</pre></details>",
        )
    )

    nav = "".join(f'<a href="#{a}">{_esc(t)}</a>' for a, t, _ in sections)
    body = "".join(
        _verdict_html(verdict) if a == "verdict" else f'<section id="{a}"><h2>{_esc(t)}</h2>{c}</section>'
        for a, t, c in sections
    )
    k = getattr(result.config, "k", "")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>audiovec benchmark: {_esc(result.config.name)}</title>
<style>{_CSS}</style>
<script type="text/javascript">{plotly_offline.get_plotlyjs()}</script></head>
<body><h1>audiovec benchmark: {_esc(result.config.name)}</h1>
<p class="muted">Wall time {format_number(result.wall_s)} s. Similarity: {_esc(result.config.metric)}, k = {_esc(k)}.
Quality excludes neighbours from the query's own group.</p>
{_weights_html(weights, preset)}
<nav>{nav}</nav>
{body}
</body></html>"""
    path = out / "report.html"
    path.write_text(page, encoding="utf-8")
    return path


def check_report_dependencies(png: bool = True, embedding_map: bool = True) -> None:
    """Import what :func:`write_report` needs now, so a long run does not end on a missing package.

    Args:
        png: The PNG plots will be drawn (matplotlib).
        embedding_map: The t-SNE map will be drawn (scikit-learn).

    Raises:
        MissingDependencyError: A package is missing; the message names the extra to install.
    """
    for module in ("plotly.offline", "plotly.graph_objects", "plotly.subplots", "pandas"):
        require(module, extra="bench", feature="the HTML report", package="plotly" if "plotly" in module else None)
    if png:
        require("matplotlib", extra="bench", feature="PNG plots")
    if embedding_map:
        require("sklearn.manifold", extra="bench", feature="the report's embedding map", package="scikit-learn")

"""Plots (PNG, matplotlib) and one self-contained HTML report (plotly, its JavaScript inlined) of a benchmark.

Charts: extraction time per model (bars) and per file (box plots), duration vs extraction time (scatter), scaling
curves, the recall/latency trade-off of the stores, retrieval quality with bootstrap confidence intervals,
in-class vs out-of-class similarity distributions, the ranking, and a 2-D t-SNE map of the embeddings coloured by
label. Every HTML chart sits in ``<div class="chart" id="chart-NAME">`` so it can be checked automatically.
"""

from __future__ import annotations

import html
import inspect
import math
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from audiovec._optional import require
from audiovec.benchmark.result import BenchmarkResult
from audiovec.benchmark.vectors import stratified_sample

__all__ = ["CHARTS", "TSNE_ITERATIONS", "check_report_dependencies", "embedding_map", "error_free", "write_report"]

#: The charts the report draws (when the data for them exists).
CHARTS = (
    "extraction",
    "extraction_box",
    "duration_scatter",
    "scaling",
    "recall_latency",
    "quality",
    "distances",
    "ranking",
    "embedding_map",
)


#: t-SNE iterations of the embedding map (early exaggeration included): enough for a readable map of 1000 points.
TSNE_ITERATIONS = 500


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

    rows = stratified_sample(strata if strata is not None else np.arange(len(x)), max_points, seed)
    pts = np.asarray(x[rows], dtype=np.float64)
    if len(pts) < 5:
        return np.zeros((len(pts), 2)), rows
    perplexity = float(min(30.0, (len(pts) - 1) / 3.0))
    # scikit-learn < 1.5 names the iteration count n_iter
    iters = "max_iter" if "max_iter" in inspect.signature(TSNE).parameters else "n_iter"
    tsne = TSNE(2, perplexity=perplexity, init="pca", random_state=seed, **{iters: TSNE_ITERATIONS})
    out: NDArray[np.float64] = tsne.fit_transform(pts)
    return out, rows


def check_report_dependencies(png: bool = True, embedding_map: bool = True) -> None:
    """Import what :func:`write_report` needs now, so a long run does not end on a missing package.

    Args:
        png: The PNG plots will be drawn (matplotlib).
        embedding_map: The t-SNE map will be drawn (scikit-learn).

    Raises:
        MissingDependencyError: A package is missing; the message names the extra to install.
    """
    for module in ("plotly.offline", "plotly.graph_objects", "plotly.express", "plotly.subplots"):
        require(module, extra="bench", feature="the HTML report", package="plotly")
    if png:
        require("matplotlib", extra="bench", feature="PNG plots")
    if embedding_map:
        require("sklearn.manifold", extra="bench", feature="the report's embedding map", package="scikit-learn")


def error_free(df: Any) -> Any:
    """Boolean mask of rows without an error (an all-empty error column reloads from CSV as NaN floats)."""
    col = df["error"]
    return col.isna() | (col.astype(str) == "")


def _figures(result: BenchmarkResult) -> dict[str, Any]:
    """Plotly figures by chart name (only those with data)."""
    go = require("plotly.graph_objects", extra="bench", feature="the HTML report", package="plotly")
    px = require("plotly.express", extra="bench", feature="the HTML report", package="plotly")
    figs: dict[str, Any] = {}
    files = result.files
    ok = files[error_free(files)] if len(files) else files
    if len(result.models) and "extract_s_mean" in result.models:
        m = result.models.dropna(subset=["extract_s_mean"])
        figs["extraction"] = go.Figure(
            [
                go.Bar(
                    x=m["embedder"],
                    y=m["extract_s_mean"] * 1000,
                    name="extraction",
                    text=[f"{v:.0f}x RT" for v in m["rtf_median"]],
                )
            ],
            layout={"title": "Mean extraction time per file (ms); label: median real-time factor", "yaxis_title": "ms"},
        )
    if len(ok) and "extract_s" in ok:
        figs["extraction_box"] = px.box(
            ok,
            x="embedder",
            y=ok["extract_s"] * 1000,
            points="outliers",
            title="Extraction time per file (ms)",
            labels={"y": "ms"},
        )
        figs["duration_scatter"] = px.scatter(
            ok,
            x="duration_s",
            y="extract_s",
            color="embedder",
            hover_data=["path"],
            title="Audio duration vs extraction time",
            labels={"duration_s": "duration (s)", "extract_s": "extraction (s)"},
        )
    if len(result.scaling):
        sc = result.scaling.copy()
        sc["series"] = sc["embedder"] + " | " + sc["pooling"] + " | " + sc["store"]
        quantities = [q for q in ("extract_s_total", "insert_s", "search_p50_ms") if q in sc]
        subplots = require("plotly.subplots", extra="bench", feature="the HTML report", package="plotly")
        fig = subplots.make_subplots(rows=1, cols=len(quantities), subplot_titles=quantities)
        for col, quantity in enumerate(quantities, start=1):
            for name, part in sc.groupby("series"):
                fig.add_trace(
                    go.Scatter(
                        x=part["size"],
                        y=part[quantity],
                        mode="lines+markers",
                        name=str(name),
                        legendgroup=str(name),
                        showlegend=col == 1,
                    ),
                    row=1,
                    col=col,
                )
            fig.update_xaxes(title_text="files", row=1, col=col)
        fig.update_layout(title="Scaling with the number of files: extraction (s), insertion (s), search p50 (ms)")
        figs["scaling"] = fig
    st = result.stores
    if len(st) and "search_p50_ms" in st:
        s = st[error_free(st)]
        if len(s):
            figs["recall_latency"] = px.scatter(
                s,
                x="search_p50_ms",
                y="ann_recall",
                color="store",
                symbol="embedder",
                hover_data=["pooling", "search_qps"],
                title="ANN recall@k vs single-query latency (p50)",
                labels={"search_p50_ms": "latency p50 (ms)", "ann_recall": "recall@k"},
            )
    q = result.quality
    if len(q) and "top1_acc" in q:
        q = q.dropna(subset=["top1_acc"])
        names = q["embedder"] + " | " + q["pooling"]
        fig = go.Figure()
        for metric in ("top1_acc", "topk_acc", "map_at_k"):
            fig.add_trace(
                go.Bar(
                    x=names,
                    y=q[metric],
                    name=metric,
                    error_y={
                        "type": "data",
                        "symmetric": False,
                        "array": q[f"{metric}_hi"] - q[metric],
                        "arrayminus": q[metric] - q[f"{metric}_lo"],
                    },
                )
            )
        if "linear_probe_acc" in q:
            fig.add_trace(go.Bar(x=names, y=q["linear_probe_acc"], name="linear_probe_acc"))
        fig.update_layout(
            barmode="group", title="Retrieval quality (group rule) with 95 % bootstrap intervals", yaxis_range=[0, 1]
        )
        figs["quality"] = fig
    if result.distances:
        fig = go.Figure()
        for key, (inn, outc) in list(result.distances.items())[:6]:
            fig.add_trace(go.Histogram(x=inn, name=f"in-class: {key}", opacity=0.6, histnorm="probability density"))
            fig.add_trace(
                go.Histogram(x=outc, name=f"out-of-class: {key}", opacity=0.6, histnorm="probability density")
            )
        fig.update_layout(barmode="overlay", title="Similarity of in-class vs out-of-class pairs (other groups only)")
        figs["distances"] = fig
    if len(result.ranking):
        r = result.ranking
        figs["ranking"] = go.Figure(
            [go.Bar(x=r["score"], y=r["embedder"] + " | " + r["pooling"] + " | " + r["store"], orientation="h")],
            layout={"title": "Weighted score (0-100, higher is better)", "yaxis": {"autorange": "reversed"}},
        )
    if result.embeddings and result.config.embedding_map_points:
        key, (x, labels) = next(iter(result.embeddings.items()))
        xy, rows = embedding_map(x, result.config.seed, result.config.embedding_map_points, labels)
        figs["embedding_map"] = px.scatter(
            x=xy[:, 0],
            y=xy[:, 1],
            color=[str(v) for v in labels[rows]],
            title=f"t-SNE map of {key}, coloured by label",
        )
    return figs


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
    ok = files[error_free(files)] if len(files) else files
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
            ax.scatter(part["duration_s"], part["extract_s"], s=10, label=m)
        ax.set_xlabel("duration (s)")
        ax.set_ylabel("extraction (s)")
        ax.legend()
        save(fig, "duration_scatter")
    q = result.quality
    if len(q) and "top1_acc" in q:
        q = q.dropna(subset=["top1_acc"])
        names = list(q["embedder"] + "\n" + q["pooling"])
        xs = np.arange(len(q))
        fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(q)), 4))
        for j, metric in enumerate(("top1_acc", "topk_acc", "map_at_k")):
            err = np.vstack([q[metric] - q[f"{metric}_lo"], q[f"{metric}_hi"] - q[metric]])
            ax.bar(xs + (j - 1) * 0.27, q[metric], 0.27, yerr=err, capsize=3, label=metric)
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


def _table(df: Any, cols: list[str], title: str) -> str:
    if df is None or len(df) == 0:
        return ""
    keep = [c for c in cols if c in df.columns]

    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return "" if math.isnan(v) else f"{v:.4g}"
        return html.escape(str(v))

    head = "".join(f"<th>{html.escape(c)}</th>" for c in keep)
    body = "".join(
        "<tr>" + "".join(f"<td>{fmt(v)}</td>" for v in row) + "</tr>" for row in df[keep].itertuples(index=False)
    )
    return f"<h2>{html.escape(title)}</h2><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def write_report(result: BenchmarkResult, directory: str | Path | None = None, png: bool = True) -> Path:
    """Write ``report.html`` (self-contained) and the PNG plots into the results folder; returns the HTML path."""
    plotly_offline = require("plotly.offline", extra="bench", feature="the HTML report", package="plotly")
    out = Path(directory or result.config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    figs = _figures(result)
    pngs = _png(result, out) if png else []
    ci = [f"{m}{s}" for m in ("top1_acc", "topk_acc", "map_at_k") for s in ("", "_lo", "_hi")]
    tables = "".join(
        [
            _table(
                result.ranking,
                [
                    "rank",
                    "embedder",
                    "pooling",
                    "store",
                    "score",
                    "extract_s",
                    "peak_mem_mb",
                    "cpu_percent",
                    "insert_s",
                    "search_p50_ms",
                    "top1_acc",
                    "map_at_k",
                ],
                "Ranking",
            ),
            _table(
                result.models,
                [
                    "embedder",
                    "dim",
                    "load_s",
                    "files_ok",
                    "files_failed",
                    "files_cached",
                    "rtf_median",
                    "extract_s_mean",
                    "peak_mem_mb_max",
                    "peak_rss_mb_max",
                    "cpu_percent_mean",
                    "error",
                ],
                "Embedders",
            ),
            _table(
                result.quality,
                [
                    "embedder",
                    "pooling",
                    "n_vectors",
                    "n_queries",
                    *ci,
                    "knn_acc",
                    "precision_at_k",
                    "separation_auc",
                    "linear_probe_acc",
                    "note",
                ],
                "Retrieval quality (exact search, group rule)",
            ),
            _table(
                result.stores,
                [
                    "embedder",
                    "pooling",
                    "store",
                    "insert_s",
                    "insert_vps",
                    "search_p50_ms",
                    "search_p95_ms",
                    "search_p99_ms",
                    "search_qps",
                    "ann_recall",
                    "store_top1_acc",
                    "bytes_per_vector",
                    "disk_mb",
                    "error",
                ],
                "Vector stores",
            ),
            _table(
                result.growth,
                ["embedder", "pooling", "store", "quantity", "slope_per_file", "exponent", "r2_linear"],
                "Growth",
            ),
        ]
    )
    failed = result.files[~error_free(result.files)] if len(result.files) else result.files
    tables += _table(failed, ["embedder", "path", "error"], "Failures") if len(failed) else ""
    charts = "".join(
        f'<div class="chart" id="chart-{name}">'
        + fig.to_html(full_html=False, include_plotlyjs=False, div_id=f"plot-{name}")
        + "</div>"
        for name, fig in figs.items()
    )
    imgs = "".join(f'<p><a href="{p.name}">{p.name}</a></p>' for p in pngs)
    cfg = html.escape(result.config.model_dump_json(indent=2))
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>audiovec benchmark: {html.escape(result.config.name)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:1400px}}table{{border-collapse:collapse;font-size:13px;margin-bottom:1.5em}}
td,th{{border:1px solid #ccc;padding:3px 6px;text-align:right}}th{{background:#f3f3f3}}.chart{{margin:1em 0}}</style>
<script type="text/javascript">{plotly_offline.get_plotlyjs()}</script></head>
<body><h1>audiovec benchmark: {html.escape(result.config.name)}</h1>
<p>Wall time {result.wall_s:.1f} s. Metric: {html.escape(result.config.metric)}, k = {result.config.k}.
Quality excludes neighbours from the query's own group.</p>
{tables}
<h2>Charts</h2>{charts}
<h2>PNG plots</h2>{imgs}
<h2>Configuration</h2><pre>{cfg}</pre>
</body></html>"""
    path = out / "report.html"
    path.write_text(page, encoding="utf-8")
    return path

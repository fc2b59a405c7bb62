"""The result of a benchmark run: its tables (pandas DataFrames), the arrays behind the plots, and their I/O.

:data:`COLUMNS` names the columns shown of each table, in order, for the terminal summary and the HTML report.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from audiovec._optional import require
from audiovec.benchmark.config import BenchmarkConfig
from audiovec.benchmark.verdict import PER_QUERY_FILE, Verdict, build_verdict, load_per_query, save_per_query
from audiovec.errors import ConfigError
from audiovec.metrics import METRICS, metric_info

__all__ = ["COLUMNS", "TABLES", "BenchmarkResult"]

log = logging.getLogger(__name__)

#: The tables of a result, in the order they are written.
TABLES = ("files", "models", "quality", "stores", "scaling", "growth", "ranking", "robustness")

_CI = [f"{m}{s}" for m in ("top1_acc", "topk_acc", "map_at_k") for s in ("", "_lo", "_hi")]

#: The columns shown of each table (the report shows all of them; the terminal summary leaves out intervals).
#: ``top{n}_acc`` columns (one per ``ks``) follow ``top1_acc`` where present.
COLUMNS: dict[str, list[str]] = {
    "ranking": ["rank", "embedder", "pooling", "store", "score", "map_at_k", "top1_acc", "extract_s", "rss_mb",
                "bytes_per_vector", "search_p50_ms", "cpu_percent", "insert_s"],
    "models": ["embedder", "dim", "import_s", "load_s", "model_rss_mb", "rss_mb", "files_ok", "files_failed",
               "files_cached", "rtf_median", "extract_s_mean", "peak_mem_mb_max", "peak_rss_mb_max",
               "cpu_percent_mean", "error"],
    "quality": ["embedder", "pooling", "n_vectors", "n_queries", *_CI, "knn_acc", "precision_at_k",
                "separation_auc", "linear_probe_acc", "linear_probe_n", "note"],
    "stores": ["embedder", "pooling", "store", "insert_s", "insert_vps", "search_p50_ms", "search_p95_ms",
               "search_p99_ms", "search_qps", "n_latency_queries", "ann_recall", "store_top1_acc", "store_n_queries",
               "exact_top1_acc",
               "bytes_per_vector", "disk_mb", "error"],
    "growth": ["embedder", "pooling", "store", "quantity", "slope_per_file", "exponent", "r2_linear", "points"],
    "robustness": ["embedder", "pooling", "degradation", "level", "n_queries", "map_at_k", "map_at_k_lo",
                   "map_at_k_hi", "top1_acc", "top1_acc_lo", "top1_acc_hi"],
}  # fmt: skip


@dataclass
class BenchmarkResult:
    """Tables of one benchmark run (pandas DataFrames) plus the data behind the plots.

    Attributes:
        config: The configuration that produced it.
        files: One row per (file, embedder): extraction measurements and errors.
        models: One row per embedder: load time and extraction summary.
        quality: One row per (embedder, pooling): retrieval quality (exact search) with confidence intervals.
        stores: One row per (embedder, pooling, store): insertion, search, recall, storage, quality via store.
        scaling: One row per (embedder, pooling, store, size).
        growth: Fitted growth (slope, exponent) per (embedder, pooling, store, quantity).
        ranking: Weighted 0–100 score per (embedder, pooling, store), best first.
        robustness: Quality of degraded queries against the clean index per (embedder, pooling, degradation, level)
            (empty when the stage is off).
        per_query: ``"embedder|pooling"`` → per-query quality values (``ids`` and one array per metric), saved as
            ``per_query.npz``; the verdict's paired comparisons use them.
        verdict: What to pick (:class:`~audiovec.benchmark.verdict.Verdict`), or ``None`` without quality figures.
        distances: ``"embedder|pooling"`` → (in-class, out-of-class) similarity samples.
        embeddings: ``"embedder|pooling"`` → (vectors, labels) sample for the 2-D map.
        wall_s: Wall time of the whole run.
    """

    config: BenchmarkConfig
    files: Any
    models: Any
    quality: Any
    stores: Any
    scaling: Any
    growth: Any
    ranking: Any
    robustness: Any = None
    per_query: dict[str, dict[str, NDArray[Any]]] = field(default_factory=dict)
    verdict: Verdict | None = None
    distances: dict[str, tuple[NDArray[np.float64], NDArray[np.float64]]] = field(default_factory=dict)
    embeddings: dict[str, tuple[NDArray[np.float32], NDArray[Any]]] = field(default_factory=dict)
    wall_s: float = float("nan")

    def save(self, directory: str | Path | None = None) -> Path:
        """Write every table as CSV, Parquet and JSON, plus the summary, config and arrays.

        Besides the tables: ``config.json``, ``summary.json``, ``arrays.npz`` (plot data) and ``per_query.npz``.

        ``summary.json`` holds ``wall_s``, ``metrics`` (unit, direction and meaning of every column), ``weights``
        (the ranking's effective weights), ``weights_preset`` (the preset's name, ``null`` for custom weights) and
        ``verdict`` (:meth:`Verdict.to_dict <audiovec.benchmark.verdict.Verdict.to_dict>`, ``null`` without quality).
        """
        pd = require("pandas", extra="bench", feature="BenchmarkResult.save")
        out = Path(directory or self.config.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        for name in TABLES:
            df = getattr(self, name)
            if df is None:
                df = pd.DataFrame()
            df.to_csv(out / f"{name}.csv", index=False)
            df.to_json(out / f"{name}.json", orient="records", indent=1)
            try:
                df.to_parquet(out / f"{name}.parquet", index=False)
            except (ImportError, ValueError) as err:  # pyarrow missing, or a column it cannot store
                log.warning("parquet export of %s skipped: %s", name, err)
        (out / "config.json").write_text(self.config.model_dump_json(indent=2))
        weights, preset = self.config.ranking_weights
        summary = {
            "wall_s": self.wall_s if math.isfinite(self.wall_s) else None,
            "metrics": _metric_meta(_with_topn([], self.quality)),
            "weights": weights,
            "weights_preset": preset,
            "verdict": self.verdict.to_dict() if self.verdict is not None else None,
        }
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
        save_per_query(out / PER_QUERY_FILE, self.per_query)
        arrays: dict[str, NDArray[Any]] = {}
        for key, (inn, outc) in self.distances.items():
            arrays[f"dist_in::{key}"] = inn
            arrays[f"dist_out::{key}"] = outc
        for key, (x, labels) in self.embeddings.items():
            arrays[f"emb_x::{key}"] = x
            arrays[f"emb_labels::{key}"] = np.asarray([str(v) for v in labels])
        np.savez_compressed(out / "arrays.npz", **arrays)  # type: ignore[arg-type]
        return out

    @classmethod
    def load(cls, directory: str | Path) -> BenchmarkResult:
        """Read a result written by :meth:`save`."""
        pd = require("pandas", extra="bench", feature="BenchmarkResult.load")
        d = Path(directory)
        if not (d / "config.json").is_file():
            raise ConfigError(f"{d} is not a benchmark results folder (no config.json)")
        config = BenchmarkConfig.model_validate_json((d / "config.json").read_text())
        tables = {}
        for name in TABLES:
            path = d / f"{name}.csv"
            tables[name] = pd.read_csv(path) if path.is_file() and path.stat().st_size > 1 else pd.DataFrame()
        distances: dict[str, tuple[NDArray[np.float64], NDArray[np.float64]]] = {}
        embeddings: dict[str, tuple[NDArray[np.float32], NDArray[Any]]] = {}
        if (d / "arrays.npz").is_file():
            with np.load(d / "arrays.npz", allow_pickle=False) as z:
                for k in z.files:
                    kind, _, key = k.partition("::")
                    if kind == "dist_in":
                        distances[key] = (z[k], z[f"dist_out::{key}"])
                    elif kind == "emb_x":
                        embeddings[key] = (z[k], z[f"emb_labels::{key}"])
        summary = json.loads((d / "summary.json").read_text()) if (d / "summary.json").exists() else {}
        wall = summary.get("wall_s")
        per_query = load_per_query(d / PER_QUERY_FILE) if (d / PER_QUERY_FILE).is_file() else {}
        result = cls(
            config=config,
            distances=distances,
            embeddings=embeddings,
            per_query=per_query,
            wall_s=math.nan if wall is None else float(wall),
            **tables,
        )
        result.verdict = result.build_verdict() if per_query else None
        return result

    def build_verdict(self) -> Verdict | None:
        """The verdict of these tables and per-query values (:func:`~audiovec.benchmark.verdict.build_verdict`)."""
        cfg = self.config
        weights, preset = cfg.ranking_weights
        return build_verdict(
            self.quality,
            self.models,
            self.per_query,
            metric=cfg.verdict_metric,
            k=cfg.k,
            weights=weights,
            preset=preset,
            seed=cfg.seed,
        )

    def summary(self) -> str:
        """A plain-text overview: extraction, quality, stores and ranking."""
        parts = [f"benchmark {self.config.name!r}: {self.wall_s:.1f} s wall"]
        views = [("models", COLUMNS["models"]), ("quality", _with_topn(COLUMNS["quality"], self.quality))]
        views += [("stores", COLUMNS["stores"]), ("robustness", COLUMNS["robustness"])]
        views.append(("ranking", ["rank", "embedder", "pooling", "store", "score"]))
        for name, cols in views:
            df = getattr(self, name)
            if df is None or len(df) == 0:
                continue
            shown = [c for c in cols if not c.endswith(("_lo", "_hi")) and c not in ("note", "error")]
            keep = [c for c in shown if c in df.columns]
            parts.append(f"\n[{name}]\n" + df[keep].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        if self.verdict is not None:
            parts.append("\n[verdict]\n" + "\n".join(self.verdict.sentences))
        return "\n".join(parts)


def _with_topn(cols: list[str], df: Any) -> list[str]:
    """``cols`` with the table's ``top{n}_acc`` columns (and bounds) after ``top1_acc``."""
    extra = [c for c in getattr(df, "columns", []) if re.fullmatch(r"top\d+(_acc)(_lo|_hi)?", str(c)) and c not in cols]
    at = cols.index("top1_acc_hi") + 1 if "top1_acc_hi" in cols else len(cols)
    return [*cols[:at], *extra, *cols[at:]]


def _metric_meta(extra: list[str]) -> dict[str, dict[str, Any]]:
    infos = [*METRICS.values(), *(i for c in extra if (i := metric_info(c)) is not None and c not in METRICS)]
    return {
        m.name: {"higher_is_better": m.higher_is_better, "unit": m.unit, "description": m.description} for m in infos
    }

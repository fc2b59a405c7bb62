"""The ranking: every (embedder, pooling, store) scored on the metrics the configuration weighs.

The candidates' values come from the stores table (insertion, search, storage), the quality table (retrieval) and
the models table (extraction cost, summarised per model by :data:`MODEL_SUMMARY`). Which direction is better comes
from :data:`audiovec.metrics.METRICS`, and the score from :func:`audiovec.metrics.weighted_score`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from audiovec._optional import require
from audiovec.benchmark.result import BenchmarkResult
from audiovec.metrics import METRICS, weighted_score

__all__ = ["MODEL_SUMMARY", "rank"]

#: Where each per-model figure comes from: metric → (models-table column, source). The source is an aggregate of
#: the per-file rows (``mean``, ``median``, ``max``), ``probe``: measured once per model, in full, on the largest
#: files (:func:`audiovec.benchmark.measure.probe_models`), or ``model``: measured when the model is imported and
#: built (``rss_mb`` spans import, build and the probe: the peak resident memory above the pre-model baseline).
MODEL_SUMMARY: dict[str, tuple[str, str]] = {
    "extract_s": ("extract_s_mean", "mean"),
    "rtf": ("rtf_median", "median"),
    "peak_mem_mb": ("peak_mem_mb_max", "probe"),
    "peak_rss_mb": ("peak_rss_mb_max", "probe"),
    "rss_mb": ("rss_mb", "model"),
    "import_s": ("import_s", "model"),
    "load_s": ("load_s", "model"),
    "cpu_percent": ("cpu_percent_mean", "mean"),
    "ram_percent": ("ram_percent_max", "probe"),
}


def _records(df: Any, *keys: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    if df is None or len(df) == 0:
        return {}
    return {tuple(r[k] for k in keys): r for r in df.to_dict("records")}


def rank(result: BenchmarkResult, weights: Mapping[str, float]) -> Any:
    """The ranking table: one row per error-free store row, its metrics and ``score``, best first.

    Each row has every metric of :data:`METRICS`, the ``top{n}_acc`` columns of the quality table, ``score``
    (:func:`audiovec.metrics.weighted_score` of ``weights``) and, when the result has a verdict, ``quality_standing``:
    ``best`` or ``tied`` (statistically tied with the best quality, see :mod:`audiovec.benchmark.verdict`), else
    empty. A higher score does not mean better quality between two configurations both ``best``/``tied``.
    """
    pd = require("pandas", extra="bench", feature="the benchmark ranking")
    if result.stores is None or len(result.stores) == 0:
        return pd.DataFrame()
    models = _records(result.models, "embedder")
    quality = _records(result.quality, "embedder", "pooling")
    topn = [c for c in getattr(result.quality, "columns", []) if re.fullmatch(r"top\d+_acc", str(c))]
    rows = []
    for s in result.stores.to_dict("records"):
        if isinstance(s.get("error"), str) and s["error"]:
            continue
        m = models.get((s["embedder"],), {})
        q = quality.get((s["embedder"], s["pooling"]), {})
        row: dict[str, Any] = {"embedder": s["embedder"], "pooling": s["pooling"], "store": s["store"]}
        for name in METRICS:
            if name in MODEL_SUMMARY:
                row[name] = m.get(MODEL_SUMMARY[name][0], math.nan)
            else:
                row[name] = s.get(name, q.get(name, math.nan))
        for name in topn:
            row.setdefault(name, q.get(name, math.nan))
        if result.verdict is not None:
            row["quality_standing"] = result.verdict.standing(s["embedder"], s["pooling"])
        rows.append(row)
    if not rows:
        return pd.DataFrame()
    for r, score in zip(rows, weighted_score(rows, weights), strict=True):
        r["score"] = score
    df = pd.DataFrame(rows).sort_values("score", ascending=False, kind="stable").reset_index(drop=True)
    df.insert(0, "rank", np.arange(1, len(df) + 1))
    return df

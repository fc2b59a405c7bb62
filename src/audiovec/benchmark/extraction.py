"""Extraction: every embedder on every file, through the ingest path, with per-file timings and per-model resources.

Each embedder is imported and built once (import time and load time recorded apart), and its memory use measured
once, in full, on a small sample (:func:`~audiovec.benchmark.measure.probe_models` on the ``resource_files``
largest files): ``rss_mb`` is the process's peak resident memory from the import to the end of that probe, above
the baseline read just before the import. Then every file goes once through :class:`~audiovec.ingest.Ingest` with
all of them: read once, decoded once and resampled once per model sample rate, each model call timed by a
:class:`~audiovec.benchmark.measure.CallTimer` (wall and CPU time, a few clock reads), and cached by content, so a
second run re-extracts nothing and an interrupted run resumes (cached rows keep the measurements taken when they
were computed, flagged ``cached``). A model that cannot be built, or a file that cannot be read, is recorded with
its error; nothing is replaced by a dummy.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import psutil

from audiovec.audio import Audio, load
from audiovec.benchmark.config import BenchmarkConfig
from audiovec.benchmark.datasets import Dataset
from audiovec.benchmark.measure import CallTimer, Measurement, ResourceMonitor, probe_models
from audiovec.benchmark.ranking import MODEL_SUMMARY
from audiovec.embedders import Embedder
from audiovec.embedders import registry as embedder_registry
from audiovec.embeddings import FrameEmbeddings
from audiovec.errors import AudiovecError
from audiovec.ingest import STREAM_ABOVE_S, EmbeddingCache, Ingest, ItemResult, Source
from audiovec.progress import Callback

__all__ = ["Extraction", "extract_dataset", "resource_sample"]

log = logging.getLogger(__name__)

_MB = 1024.0 * 1024.0


@dataclass
class Extraction:
    """What extraction produced.

    Attributes:
        file_rows: One row per (file, embedder): measurements or the error.
        model_rows: One row per embedder: load time, memory, extraction summary (or the error).
        frames: Frame embeddings by embedder label, then dataset index (failed items absent).
        models: The embedders that were built, by label (later stages, such as robustness, reuse them).
    """

    file_rows: list[dict[str, Any]] = field(default_factory=list)
    model_rows: list[dict[str, Any]] = field(default_factory=list)
    frames: dict[str, dict[int, FrameEmbeddings]] = field(default_factory=dict)
    models: dict[str, Embedder] = field(default_factory=dict)


def _build(
    config: BenchmarkConfig, rows: list[dict[str, Any]], sample: Sequence[Audio]
) -> tuple[dict[str, Embedder], dict[str, Any], dict[str, Measurement]]:
    """Import, build and probe every embedder, one after the other (errors recorded in ``rows``, not raised).

    For each embedder, in config order: the process's resident memory is read (its *baseline*), the embedder's
    module is imported (``import_s``: the code and the libraries it imports; 0 when this process imported them
    before), the model is built (``load_s``: weights read, graph set up), and its memory probe runs on ``sample``
    (:func:`~audiovec.benchmark.measure.probe_models`). ``rss_mb`` is the peak resident memory seen from the
    import to the end of the probe, minus the baseline: what this model costs the process, including the libraries
    it brings. Models stay loaded for extraction, so a later model's baseline includes the earlier ones; memory an
    earlier model freed and the allocator reuses can make a later model's figure smaller than it would be alone.

    Returns:
        The models by label, their load rows (``name``, ``import_s``, ``load_s``, ``model_rss_mb``, ``rss_mb``) and
        their probe measurements.
    """
    proc = psutil.Process()
    models: dict[str, Embedder] = {}
    loads: dict[str, Any] = {}
    probes: dict[str, Measurement] = {}
    for entry in config.embedders:
        label = config.embedder_label(entry)
        rss0 = proc.memory_info().rss
        try:
            with ResourceMonitor(trace_memory=False, process=proc) as whole:
                t0 = time.perf_counter()
                cls = embedder_registry.load(entry.name)
                t1 = time.perf_counter()
                emb = cls(**entry.params)
                t2 = time.perf_counter()
                rss_loaded = proc.memory_info().rss
                probes[label] = probe_models({label: emb}, sample, config.trace_memory)[label]
        except (AudiovecError, ValueError) as err:  # pydantic's ValidationError is a ValueError
            log.error("embedder %s cannot be built: %s", label, err)
            rows.append({"embedder": label, "name": entry.name, "error": f"{type(err).__name__}: {err}"})
            continue
        probed = probes[label].calls > 0
        loads[label] = {
            "name": entry.name,
            "import_s": t1 - t0,
            "load_s": t2 - t1,
            "model_rss_mb": (rss_loaded - rss0) / _MB,
            "rss_mb": max(0.0, whole.result.peak_rss_mb - rss0 / _MB) if probed else math.nan,
        }
        models[label] = emb
    return models, loads, probes


def _file_row(label: str, index: int, item: ItemResult, dataset: Dataset) -> dict[str, Any]:
    it = dataset[index]
    row: dict[str, Any] = {
        "embedder": label,
        "item": index,
        "path": it.path,
        "label": it.label,
        "group": it.group,
        "size_bytes": item.size_bytes,
        "error": "",
        "cached": False,
    }
    failure = item.failures.get(label)
    if failure is not None:
        row["error"] = f"{failure.error}: {failure.message}"
        return row
    fe, st = item.frames[label], item.stats[label]
    extract_s = st.decode_s + st.embed_s
    row.update(
        cached=st.cached,
        duration_s=fe.duration,
        decode_s=st.decode_s,
        embed_s=st.embed_s,
        extract_s=extract_s,
        rtf=fe.duration / extract_s if extract_s > 0 else math.nan,
        frames=len(fe),
        dim=fe.dim,
    )
    for key in _FILE_RESOURCES:
        row[key] = st.resources.get(key, math.nan)
    return row


def _model_row(
    label: str,
    emb: Embedder,
    spec_key: str,
    load: dict[str, Any],
    probe: Measurement,
    rows: Sequence[dict[str, Any]],
) -> dict[str, Any]:
    ok = [r for r in rows if not r["error"]]

    def col(name: str) -> list[float]:
        return [r[name] for r in ok]

    probed = probe.as_dict()
    return {
        "embedder": label,
        **load,
        "spec_key": spec_key,
        "dim": emb.dim,
        "sample_rate": emb.sample_rate,
        "window_s": emb.window_s,
        "hop_s": emb.hop_s,
        "files_ok": len(ok),
        "files_failed": len(rows) - len(ok),
        "files_cached": sum(bool(r["cached"]) for r in ok),
        "audio_s_total": float(sum(col("duration_s"))),
        "extract_s_total": float(sum(col("extract_s"))),
        **{
            column: probed[metric] if how == "probe" else _AGGREGATES[how](col(metric))
            for metric, (column, how) in _SUMMARY.items()
            if how != "model"  # in ``load``
        },
        "resource_files": probe.calls,
        "error": "",
    }


def resource_sample(dataset: Dataset, n: int, max_seconds: float = STREAM_ABOVE_S) -> list[Audio]:
    """The ``n`` largest files of ``dataset`` (by size on disk), decoded (at most ``max_seconds`` of each).

    These are the inputs :func:`~audiovec.benchmark.measure.probe_models` measures each model on: the largest files
    are those whose embedding needs the most memory. Files that cannot be read are left out.
    """
    if n < 1:
        return []
    sizes = []
    for i, it in enumerate(dataset):
        try:
            sizes.append((os.stat(it.path).st_size, i))
        except OSError:
            continue
    out = []
    for _, i in sorted(sizes, reverse=True)[:n]:
        try:
            out.append(load(dataset[i].path, duration=max_seconds))
        except AudiovecError as err:
            log.info("resource sample: %s left out (%s)", dataset[i].path, err)
    return out


def extract_dataset(
    dataset: Dataset,
    config: BenchmarkConfig,
    cache: EmbeddingCache | None,
    progress: bool | Callback | None = None,
) -> Extraction:
    """Run every configured embedder on every item of ``dataset`` (see the module docs); ``cache=None``: no cache."""
    out = Extraction()
    models, loads, probes = _build(config, out.model_rows, resource_sample(dataset, config.resource_files))
    out.models = models
    if not models:
        return out
    ingest = Ingest(models, cache=cache, batch_size=8, monitor=CallTimer, workers=config.workers)
    sources = [Source(it.path, path=it.path) for it in dataset]
    per_label: dict[str, list[dict[str, Any]]] = {label: [] for label in models}
    out.frames = {label: {} for label in models}
    for index, item in enumerate(ingest.run(sources, progress=progress)):
        for label in models:
            per_label[label].append(_file_row(label, index, item, dataset))
            if label in item.frames:
                out.frames[label][index] = item.frames[label]
    for label, emb in models.items():
        rows = per_label[label]
        out.file_rows.extend(rows)
        out.model_rows.append(_model_row(label, emb, ingest.spec(label).key(), loads[label], probes[label], rows))
    order = [config.embedder_label(e) for e in config.embedders]
    out.model_rows.sort(key=lambda r: order.index(r["embedder"]))
    return out


def _aggregate(how: str) -> Callable[[Sequence[float]], float]:
    def agg(values: Sequence[float]) -> float:
        arr = np.asarray([v for v in values if v is not None], dtype=np.float64)
        arr = arr[np.isfinite(arr)]
        return float(getattr(np, how)(arr)) if arr.size else math.nan

    return agg


_AGGREGATES = {how: _aggregate(how) for how in ("mean", "median", "max")}
#: The per-model summaries: those the ranking reads, plus the GPU peak.
_SUMMARY = {**MODEL_SUMMARY, "gpu_peak_mb": ("gpu_peak_mb_max", "max")}
#: The resource columns of a file row (from :class:`~audiovec.benchmark.measure.CallTimer`).
_FILE_RESOURCES = ("cpu_s", "cpu_percent", "gpu_peak_mb")

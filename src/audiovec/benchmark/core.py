"""The :class:`Benchmark` runner and its :class:`BenchmarkResult`.

A run has five stages, each recorded in its own table:

1. **extraction** — every embedder on every file, one row per (file, embedder): wall time, real-time factor,
   duration, file size, tracemalloc and RSS peaks, CPU %, GPU memory, dimension, and any error. Frames are cached
   on disk by (embedder spec, file content), so a second run re-extracts nothing and an interrupted run resumes
   (cached rows keep the measurements taken when they were computed, flagged ``cached``).
2. **quality** — for every (embedder, pooling): exact search with the group rule (a query's own group is never a
   valid neighbour): top-1, top-k, kNN vote, precision@k, mAP@k with bootstrap confidence intervals, the
   in-class vs out-of-class separation (ROC-AUC and the two distributions), and a group-aware linear probe.
3. **stores** — every (embedder, pooling, store): batched insertion time and throughput, single-query latency
   percentiles, batched queries/s, ANN recall@k against exact search, quality through the store, bytes per
   vector and on-disk size.
4. **scaling** — the same costs at growing data sizes (nested, stratified subsets), with fitted linear slope and
   power-law exponent.
5. **ranking** — the seed-000 weighted, min-max-normalised 0–100 score over any metrics.

Failures (a model that cannot load, a file that cannot be decoded, a store that cannot be reached) are recorded
in the tables with their error and the run goes on; nothing is replaced by a dummy.
"""

from __future__ import annotations

import inspect
import json
import logging
import math
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from audiovec._optional import require
from audiovec.audio import info as audio_info
from audiovec.audio import load
from audiovec.benchmark.config import BenchmarkConfig, DatasetConfig, StoreEntry
from audiovec.benchmark.measure import ResourceMonitor
from audiovec.cache import EmbeddingCache, file_sha256
from audiovec.datasets import (
    Dataset,
    FolderDataset,
    Item,
    ListDataset,
    ManifestDataset,
    demo_dataset,
    fsdd_dataset,
)
from audiovec.embedders import get_embedder
from audiovec.embedders.base import Embedder
from audiovec.embeddings import FrameEmbeddings
from audiovec.errors import AudiovecError, ConfigError
from audiovec.metrics import (
    METRICS,
    average_precision_at_k,
    bootstrap_ci,
    fit_growth,
    knn_vote_accuracy,
    latency_percentiles,
    linear_probe_accuracy,
    precision_at_k,
    recall_at_k,
    separation_auc,
    top_k_accuracy,
    weighted_score,
)

__all__ = ["Benchmark", "BenchmarkResult", "build_dataset"]

log = logging.getLogger(__name__)

_TABLES = ("files", "models", "quality", "stores", "scaling", "growth", "ranking")


def build_dataset(cfg: DatasetConfig, seed: int = 0) -> Dataset:
    """Build the dataset a config describes (and apply its ``limit``)."""
    ds: Dataset
    if cfg.kind == "demo":
        ds = demo_dataset()
    elif cfg.kind == "folder":
        ds = FolderDataset(str(cfg.path), group_pattern=cfg.group_pattern)
    elif cfg.kind == "manifest":
        ds = ManifestDataset(str(cfg.path), cfg.path_col, cfg.label_col, cfg.group_col)
    elif cfg.kind == "fsdd":
        ds = fsdd_dataset(str(cfg.path), cfg.label)
    else:
        ds = ListDataset(cfg.paths or [], cfg.labels, cfg.groups)
    return ds.subset(cfg.limit, seed) if cfg.limit else ds


@dataclass
class _Vectors:
    """Pooled vectors of one (embedder, pooling) with what the evaluation needs per vector."""

    embedder: str
    pooling: str
    x: NDArray[np.float32]
    item: NDArray[np.int64]  # dataset index of each vector
    labels: NDArray[Any]
    groups: NDArray[Any]
    starts: NDArray[np.float64]
    n_relevant: NDArray[np.int64]  # same-label vectors outside the query's group (0: not a valid query)


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
    distances: dict[str, tuple[NDArray[np.float64], NDArray[np.float64]]] = field(default_factory=dict)
    embeddings: dict[str, tuple[NDArray[np.float32], NDArray[Any]]] = field(default_factory=dict)
    wall_s: float = float("nan")

    def save(self, directory: str | Path | None = None) -> Path:
        """Write every table as CSV, Parquet and JSON, plus ``config.json``, ``summary.json`` and ``arrays.npz``."""
        out = Path(directory or self.config.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        for name in _TABLES:
            df = getattr(self, name)
            df.to_csv(out / f"{name}.csv", index=False)
            df.to_json(out / f"{name}.json", orient="records", indent=1)
            try:
                df.to_parquet(out / f"{name}.parquet", index=False)
            except (ImportError, ValueError) as err:  # pyarrow missing, or a column it cannot store
                log.warning("parquet export of %s skipped: %s", name, err)
        (out / "config.json").write_text(self.config.model_dump_json(indent=2))
        (out / "summary.json").write_text(json.dumps({"wall_s": self.wall_s, "metrics": _metric_meta()}, indent=2))
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
        for name in _TABLES:
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
        wall = (
            json.loads((d / "summary.json").read_text()).get("wall_s", math.nan)
            if (d / "summary.json").exists()
            else math.nan
        )
        return cls(config=config, distances=distances, embeddings=embeddings, wall_s=wall, **tables)

    def summary(self) -> str:
        """A plain-text overview: extraction, quality, stores and ranking."""
        parts = [f"benchmark {self.config.name!r}: {self.wall_s:.1f} s wall"]
        views = [
            (
                "models",
                [
                    "embedder",
                    "dim",
                    "load_s",
                    "files_ok",
                    "files_failed",
                    "rtf_median",
                    "extract_s_mean",
                    "peak_mem_mb_max",
                ],
            ),
            (
                "quality",
                [
                    "embedder",
                    "pooling",
                    "n_vectors",
                    "top1_acc",
                    "topk_acc",
                    "map_at_k",
                    "separation_auc",
                    "linear_probe_acc",
                ],
            ),
            (
                "stores",
                [
                    "embedder",
                    "pooling",
                    "store",
                    "insert_vps",
                    "search_p50_ms",
                    "search_qps",
                    "ann_recall",
                    "store_top1_acc",
                    "bytes_per_vector",
                ],
            ),
            ("ranking", ["rank", "embedder", "pooling", "store", "score"]),
        ]
        for name, cols in views:
            df = getattr(self, name)
            if df is None or len(df) == 0:
                continue
            keep = [c for c in cols if c in df.columns]
            parts.append(f"\n[{name}]\n" + df[keep].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        return "\n".join(parts)


def _metric_meta() -> dict[str, dict[str, Any]]:
    return {
        m.name: {"higher_is_better": m.higher_is_better, "unit": m.unit, "description": m.description}
        for m in METRICS.values()
    }


class Benchmark:
    """Compare embedders and vector stores on speed, memory, search and retrieval quality.

    Args:
        config: A :class:`~audiovec.benchmark.config.BenchmarkConfig` (or its fields as keyword arguments).
        dataset: Use this dataset instead of the config's.

    Example:
        >>> from audiovec.benchmark import Benchmark
        >>> result = Benchmark(output_dir="/tmp/av-bench", progress=False).run()  # doctest: +SKIP
        >>> print(result.summary())  # doctest: +SKIP
    """

    def __init__(self, config: BenchmarkConfig | None = None, *, dataset: Dataset | None = None, **fields: Any) -> None:
        if config is not None and fields:
            config = config.model_copy(update=fields)
        self.config = config or BenchmarkConfig(**fields)
        self._dataset = dataset
        self._pd = require("pandas", extra="bench", feature="Benchmark")

    @classmethod
    def from_file(cls, path: str | Path, **overrides: Any) -> Benchmark:
        """Build from a TOML/JSON config file."""
        from audiovec.benchmark.config import load_config

        return cls(load_config(path, **overrides))

    # ------------------------------------------------------------------------------------------- run
    def run(self) -> BenchmarkResult:
        """Run every stage, save the results to ``config.output_dir`` and return them."""
        cfg = self.config
        out = Path(cfg.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(out / "benchmark.log", mode="w", encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger("audiovec")
        root.addHandler(handler)
        old_level = root.level
        root.setLevel(min(old_level or logging.INFO, logging.INFO))
        t0 = time.perf_counter()
        try:
            dataset = self._dataset if self._dataset is not None else build_dataset(cfg.dataset, cfg.seed)
            log.info("benchmark %r on %s: %d items", cfg.name, dataset.name, len(dataset))
            cache = EmbeddingCache(cfg.cache_dir or out / "cache")
            file_rows, model_rows, frames = self._extract(dataset, cache)
            vector_sets = self._pool(dataset, frames)
            quality_rows, distances, embeddings = self._quality(vector_sets)
            store_rows = self._stores(vector_sets)
            scaling_rows, growth_rows = self._scaling(dataset, vector_sets, file_rows)
            pd = self._pd
            result = BenchmarkResult(
                config=cfg,
                files=pd.DataFrame(file_rows),
                models=pd.DataFrame(model_rows),
                quality=pd.DataFrame(quality_rows),
                stores=pd.DataFrame(store_rows),
                scaling=pd.DataFrame(scaling_rows),
                growth=pd.DataFrame(growth_rows),
                ranking=pd.DataFrame(),
                distances=distances,
                embeddings=embeddings,
            )
            result.ranking = self._rank(result)
            result.wall_s = time.perf_counter() - t0
            result.save(out)
            log.info("benchmark done in %.1f s; results in %s", result.wall_s, out)
            return result
        finally:
            root.removeHandler(handler)
            root.setLevel(old_level)
            handler.close()

    def _bar(self, total: int, desc: str) -> Any:
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, unit="file", disable=not self.config.progress, leave=False)

    # ------------------------------------------------------------------------------------------- 1. extraction
    def _extract(
        self, dataset: Dataset, cache: EmbeddingCache
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, dict[int, FrameEmbeddings]]]:
        cfg = self.config
        file_rows: list[dict[str, Any]] = []
        model_rows: list[dict[str, Any]] = []
        frames: dict[str, dict[int, FrameEmbeddings]] = {}
        digests: dict[int, str | BaseException] = {}
        for i, item in enumerate(dataset):
            try:
                digests[i] = file_sha256(item.path)
            except OSError as err:
                digests[i] = err
        for entry in cfg.embedders:
            label = cfg.embedder_label(entry)
            frames[label] = {}
            t0 = time.perf_counter()
            try:
                emb = get_embedder(entry.name, **entry.params)
            except AudiovecError as err:
                log.error("embedder %s cannot be built: %s", label, err)
                model_rows.append({"embedder": label, "name": entry.name, "error": f"{type(err).__name__}: {err}"})
                continue
            load_s = time.perf_counter() - t0
            spec = emb.spec()
            bar = self._bar(len(dataset), f"extract {label}")
            rows: list[dict[str, Any]] = []
            for i, item in enumerate(dataset):
                row = self._extract_one(emb, label, spec, cache, i, item, digests[i])
                rows.append(row)
                if "_frames" in row:
                    frames[label][i] = row.pop("_frames")
                bar.update(1)
            bar.close()
            file_rows.extend(rows)
            ok = [r for r in rows if not r.get("error")]
            model_rows.append(
                {
                    "embedder": label,
                    "name": entry.name,
                    "spec_key": spec.key(),
                    "dim": emb.dim,
                    "sample_rate": emb.sample_rate,
                    "window_s": emb.window_s,
                    "hop_s": emb.hop_s,
                    "load_s": load_s,
                    "files_ok": len(ok),
                    "files_failed": len(rows) - len(ok),
                    "files_cached": sum(bool(r.get("cached")) for r in ok),
                    "audio_s_total": float(sum(r["duration_s"] for r in ok)),
                    "extract_s_total": float(sum(r["extract_s"] for r in ok)),
                    "extract_s_mean": _mean([r["extract_s"] for r in ok]),
                    "rtf_median": float(np.median([r["rtf"] for r in ok])) if ok else math.nan,
                    "peak_mem_mb_max": _max([r["peak_mem_mb"] for r in ok]),
                    "peak_rss_mb_max": _max([r["peak_rss_mb"] for r in ok]),
                    "cpu_percent_mean": _mean([r["cpu_percent"] for r in ok]),
                    "ram_percent_max": _max([r["ram_percent"] for r in ok]),
                    "gpu_peak_mb_max": _max([r["gpu_peak_mb"] for r in ok]),
                    "error": "",
                }
            )
        return file_rows, model_rows, frames

    def _extract_one(
        self,
        emb: Embedder,
        label: str,
        spec: Any,
        cache: EmbeddingCache,
        i: int,
        item: Item,
        digest: str | BaseException,
    ) -> dict[str, Any]:
        row: dict[str, Any] = {
            "embedder": label,
            "item": i,
            "path": item.path,
            "label": item.label,
            "group": item.group,
            "size_bytes": _size(item.path),
            "error": "",
            "cached": False,
        }
        if isinstance(digest, BaseException):
            row["error"] = f"{type(digest).__name__}: {digest}"
            return row
        hit = cache.get(spec, digest)
        if hit is not None:
            fe, meta = hit
            row.update(meta)
            row.update(cached=True, _frames=fe, frames=len(fe), dim=fe.dim, duration_s=fe.duration)
            return row
        try:
            with ResourceMonitor(trace_memory=self.config.trace_memory) as mon:
                t0 = time.perf_counter()
                duration = audio_info(item.path).duration
                if duration > 300 and hasattr(emb, "embed_file"):  # stream long files: bounded memory
                    fe = emb.embed_file(item.path)
                    decode_s = math.nan
                else:
                    audio = load(item.path)
                    decode_s = time.perf_counter() - t0
                    fe = emb.embed(audio)
        except AudiovecError as err:
            log.warning("%s failed on %s: %s", label, item.path, err)
            row["error"] = f"{type(err).__name__}: {err}"
            return row
        m = mon.result
        meas = {
            "duration_s": fe.duration,
            "decode_s": decode_s,
            "extract_s": m.wall_s,
            "rtf": fe.duration / m.wall_s if m.wall_s > 0 else math.nan,
            "peak_mem_mb": m.peak_traced_mb,
            "peak_rss_mb": m.peak_rss_mb,
            "cpu_percent": m.cpu_percent,
            "ram_percent": m.ram_percent,
            "gpu_peak_mb": m.gpu_peak_mb,
            "frames": len(fe),
            "dim": fe.dim,
        }
        cache.put(spec, digest, fe, meas)
        row.update(meas)
        row["_frames"] = fe
        return row

    # ------------------------------------------------------------------------------------------- 2. pooling
    def _pool(self, dataset: Dataset, frames: dict[str, dict[int, FrameEmbeddings]]) -> list[_Vectors]:
        sets = []
        for entry in self.config.embedders:
            label = self.config.embedder_label(entry)
            got = frames.get(label) or {}
            if not got:
                continue
            for pipe in entry.pipelines():
                vecs, items, starts = [], [], []
                for i in sorted(got):
                    pooled = pipe(got[i])
                    vecs.append(pooled.vectors)
                    items.extend([i] * len(pooled))
                    starts.extend(pooled.starts.tolist())
                idx = np.asarray(items, dtype=np.int64)
                labels = np.asarray([dataset[i].label for i in idx], dtype=object)
                # the group rule: a query's own group (or, without groups, its own file) is never a valid match
                groups = np.asarray([dataset[i].group or f"file:{dataset[i].path}" for i in idx], dtype=object)
                n_rel = _n_relevant(labels, groups)
                sets.append(
                    _Vectors(
                        label,
                        pipe.describe(),
                        np.concatenate(vecs).astype(np.float32),
                        idx,
                        labels,
                        groups,
                        np.asarray(starts, dtype=np.float64),
                        n_rel,
                    )
                )
        return sets

    # ------------------------------------------------------------------------------------------- 3. quality
    def _similarity(self, q: NDArray[np.float32], x: NDArray[np.float32]) -> NDArray[np.float32]:
        metric = self.config.metric
        if metric == "cosine":
            qn = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
            xn = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
            out: NDArray[np.float32] = qn @ xn.T
            return out
        if metric == "ip":
            ip: NDArray[np.float32] = q @ x.T
            return ip
        d2 = (q * q).sum(1)[:, None] - 2 * q @ x.T + (x * x).sum(1)[None, :]
        neg: NDArray[np.float32] = -np.maximum(d2, 0)
        return neg

    def _neighbours(self, v: _Vectors, k: int) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """Top-k allowed neighbours of every vector (own group excluded), exact, in blocks."""
        n = len(v.x)
        kk = min(k, n)
        idx = np.zeros((n, kk), dtype=np.int64)
        sims = np.full((n, kk), -np.inf, dtype=np.float32)
        gcodes = _codes(v.groups)
        for s in range(0, n, 512):
            e = min(n, s + 512)
            sim = self._similarity(v.x[s:e], v.x)
            sim[gcodes[s:e, None] == gcodes[None, :]] = -np.inf
            part = np.argpartition(-sim, kk - 1, axis=1)[:, :kk]
            psim = np.take_along_axis(sim, part, 1)
            order = np.argsort(-psim, axis=1, kind="stable")
            idx[s:e] = np.take_along_axis(part, order, 1)
            sims[s:e] = np.take_along_axis(psim, order, 1)
        return idx, sims

    def _quality(
        self, sets: list[_Vectors]
    ) -> tuple[
        list[dict[str, Any]],
        dict[str, tuple[NDArray[np.float64], NDArray[np.float64]]],
        dict[str, tuple[NDArray[np.float32], NDArray[Any]]],
    ]:
        cfg = self.config
        rows: list[dict[str, Any]] = []
        distances = {}
        embeddings = {}
        rng = np.random.default_rng(cfg.seed)
        for v in sets:
            key = f"{v.embedder}|{v.pooling}"
            row: dict[str, Any] = {
                "embedder": v.embedder,
                "pooling": v.pooling,
                "n_vectors": len(v.x),
                "dim": v.x.shape[1],
                "k": cfg.k,
            }
            labelled = np.array([lab is not None for lab in v.labels])
            if labelled.sum() < 2 or len(set(v.labels[labelled])) < 2:
                row["note"] = "quality needs at least two labels"
                rows.append(row)
                continue
            nb, nb_sim = self._neighbours(v, cfg.k)
            valid = np.isfinite(nb_sim)
            nb_labels = [
                [v.labels[j] for j, ok in zip(r, vr, strict=True) if ok] for r, vr in zip(nb, valid, strict=True)
            ]
            # valid queries have at least one allowed relevant item (same label, other group)
            n_rel = v.n_relevant
            q = n_rel > 0
            row["n_queries"] = int(q.sum())
            rel = np.zeros((len(v.x), nb.shape[1]), dtype=bool)
            for i, r in enumerate(nb_labels):
                rel[i, : len(r)] = [lab == v.labels[i] for lab in r]
            per_query = {
                "top1_acc": top_k_accuracy(rel[q], 1),
                "topk_acc": top_k_accuracy(rel[q], cfg.k),
                "precision_at_k": precision_at_k(rel[q], cfg.k),
                "map_at_k": average_precision_at_k(rel[q], n_rel[q], cfg.k),
                "knn_acc": knn_vote_accuracy(list(v.labels[q]), [nb_labels[i] for i in np.flatnonzero(q)], cfg.k),
            }
            for name, vals in per_query.items():
                mean, lo, hi = bootstrap_ci(vals, cfg.bootstrap, seed=cfg.seed)
                row[name], row[f"{name}_lo"], row[f"{name}_hi"] = mean, lo, hi
            inn, outc = self._pair_samples(v, rng)
            distances[key] = (inn, outc)
            row["separation_auc"] = separation_auc(inn, outc)
            row["in_class_sim_mean"] = float(inn.mean()) if inn.size else math.nan
            row["out_class_sim_mean"] = float(outc.mean()) if outc.size else math.nan
            if cfg.linear_probe:
                try:
                    acc, folds = linear_probe_accuracy(
                        v.x[labelled], list(v.labels[labelled]), list(v.groups[labelled]), seed=cfg.seed
                    )
                    row["linear_probe_acc"], row["linear_probe_folds"] = acc, len(folds)
                    row["linear_probe_std"] = float(folds.std()) if folds.size else math.nan
                except (AudiovecError, ValueError) as err:
                    row["linear_probe_acc"], row["note"] = math.nan, f"linear probe: {err}"
            take = rng.permutation(len(v.x))[:2000]
            embeddings[key] = (v.x[take], v.labels[take])
            rows.append(row)
        return rows, distances, embeddings

    def _pair_samples(
        self, v: _Vectors, rng: np.random.Generator, n_pairs: int = 20000
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Similarities of random in-class and out-of-class pairs from different groups."""
        n = len(v.x)
        a = rng.integers(0, n, size=n_pairs * 3)
        b = rng.integers(0, n, size=n_pairs * 3)
        lab, grp = _codes(v.labels), _codes(v.groups)
        ok = (
            (a != b)
            & (grp[a] != grp[b])
            & np.array([v.labels[i] is not None for i in a])
            & np.array([v.labels[i] is not None for i in b])
        )
        a, b = a[ok], b[ok]
        same = lab[a] == lab[b]
        # also sample in-class pairs directly (they are rare when there are many classes)
        ia = np.flatnonzero(same)[:n_pairs]
        ob = np.flatnonzero(~same)[:n_pairs]
        extra_a, extra_b = [], []
        if len(ia) < n_pairs // 4:
            by_label: dict[int, NDArray[np.int64]] = {c: np.flatnonzero(lab == c) for c in np.unique(lab)}
            for _ in range(n_pairs):
                i = int(rng.integers(0, n))
                cands = by_label[int(lab[i])]
                j = int(cands[rng.integers(0, len(cands))])
                if i != j and grp[i] != grp[j] and v.labels[i] is not None:
                    extra_a.append(i)
                    extra_b.append(j)
        pa = np.concatenate([a[ia], np.asarray(extra_a, dtype=np.int64)])
        pb = np.concatenate([b[ia], np.asarray(extra_b, dtype=np.int64)])
        sim_in = self._pair_sim(v.x, pa, pb)
        sim_out = self._pair_sim(v.x, a[ob], b[ob])
        return sim_in.astype(np.float64), sim_out.astype(np.float64)

    def _pair_sim(self, x: NDArray[np.float32], a: NDArray[np.int64], b: NDArray[np.int64]) -> NDArray[np.float32]:
        if len(a) == 0:
            return np.zeros(0, np.float32)
        xa, xb = x[a], x[b]
        if self.config.metric == "cosine":
            out: NDArray[np.float32] = (xa * xb).sum(1) / np.maximum(
                np.linalg.norm(xa, axis=1) * np.linalg.norm(xb, axis=1), 1e-12
            )
            return out
        res: NDArray[np.float32] = (xa * xb).sum(1) if self.config.metric == "ip" else -((xa - xb) ** 2).sum(1)
        return res

    # ------------------------------------------------------------------------------------------- 4. stores
    def _open_store(self, entry: StoreEntry, dim: int, workdir: Path) -> Any:
        from audiovec.stores import get_store, registry

        cls = registry.load(entry.name)
        params = dict(entry.params)
        accepted = inspect.signature(cls).parameters
        if "path" in accepted and "path" not in params:
            params["path"] = str(workdir / "store")
        if "uri" in accepted and "uri" not in params:
            params["uri"] = str(workdir / "milvus.db")
        if entry.index is not None:
            params["index"] = entry.index
        return get_store(entry.name, params, dim=dim, metric=self.config.metric)

    def _stores(self, sets: list[_Vectors]) -> list[dict[str, Any]]:
        cfg = self.config
        rows = []
        rng = np.random.default_rng(cfg.seed)
        for v in sets:
            n = len(v.x)
            q_idx = np.sort(rng.permutation(n)[: min(cfg.n_latency_queries, n)])
            exact_top = self._exact_topk(v.x[q_idx], v.x, min(cfg.k, n))
            for entry in cfg.stores:
                row: dict[str, Any] = {
                    "embedder": v.embedder,
                    "pooling": v.pooling,
                    "store": entry.display(),
                    "n_vectors": n,
                    "dim": v.x.shape[1],
                    "k": cfg.k,
                    "error": "",
                }
                workdir = Path(tempfile.mkdtemp(prefix="audiovec-bench-"))
                try:
                    row.update(self._measure_store(entry, v, q_idx, exact_top, workdir))
                except AudiovecError as err:
                    log.error("store %s failed for %s/%s: %s", entry.display(), v.embedder, v.pooling, err)
                    row["error"] = f"{type(err).__name__}: {err}"
                finally:
                    shutil.rmtree(workdir, ignore_errors=True)
                rows.append(row)
        return rows

    def _exact_topk(self, q: NDArray[np.float32], x: NDArray[np.float32], k: int) -> NDArray[np.int64]:
        sim = self._similarity(q, x)
        part = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sim, part, 1), axis=1, kind="stable")
        out: NDArray[np.int64] = np.take_along_axis(part, order, 1)
        return out

    def _insert(self, store: Any, v: _Vectors, rows: NDArray[np.int64], batch: int = 10000) -> float:
        meta = [
            {
                "label": _jsonable(v.labels[i]),
                "group": str(v.groups[i]),
                "item": int(v.item[i]),
                "start": float(v.starts[i]),
            }
            for i in rows
        ]
        t0 = time.perf_counter()
        for s in range(0, len(rows), batch):
            sl = rows[s : s + batch]
            store.add(v.x[sl], ids=[int(i) for i in sl], metadata=meta[s : s + batch])
        if hasattr(store, "save"):
            store.save()
        return time.perf_counter() - t0

    def _measure_store(
        self, entry: StoreEntry, v: _Vectors, q_idx: NDArray[np.int64], exact_top: NDArray[np.int64], workdir: Path
    ) -> dict[str, Any]:
        from audiovec.stores import Eq, Not

        cfg = self.config
        n = len(v.x)
        k = min(cfg.k, n)
        store = self._open_store(entry, v.x.shape[1], workdir)
        closed = False
        try:
            insert_s = self._insert(store, v, np.arange(n, dtype=np.int64))
            sp = entry.search_params or None
            store.search(v.x[q_idx[:1]], k=k, params=sp)  # warm-up (lazy loads, caches)
            lat = []
            found = []
            for qi in q_idx:
                t0 = time.perf_counter()
                hits = store.search(v.x[qi : qi + 1], k=k, params=sp)[0]
                lat.append(time.perf_counter() - t0)
                found.append([h.id for h in hits])
            t0 = time.perf_counter()
            store.search(v.x[q_idx], k=k, params=sp)
            batch_s = time.perf_counter() - t0
            truth = [[int(j) for j in row] for row in exact_top]
            recall = recall_at_k(found, truth, k)
            # quality through the store: the query's own group excluded by a metadata filter
            top1 = []
            for qi in q_idx[v.n_relevant[q_idx] > 0]:
                hits = store.search(v.x[qi : qi + 1], k=1, filter=Not(Eq("group", str(v.groups[qi]))), params=sp)[0]
                top1.append(float(bool(hits) and hits[0].metadata.get("label") == _jsonable(v.labels[qi])))
            store.close()
            closed = True
            disk = _dir_size(workdir)
        finally:
            if not closed:
                store.close()
        lp = latency_percentiles(lat)
        return {
            "insert_s": insert_s,
            "insert_per_vector_ms": 1000 * insert_s / n,
            "insert_vps": n / insert_s if insert_s > 0 else math.nan,
            "search_p50_ms": lp["p50_ms"],
            "search_p95_ms": lp["p95_ms"],
            "search_p99_ms": lp["p99_ms"],
            "search_qps": len(q_idx) / batch_s if batch_s > 0 else math.nan,
            "n_queries": len(q_idx),
            "ann_recall": recall,
            "store_top1_acc": _mean(top1),
            "disk_mb": disk / 2**20,
            "bytes_per_vector": disk / n,
        }

    # ------------------------------------------------------------------------------------------- 5. scaling
    def _scaling(
        self, dataset: Dataset, sets: list[_Vectors], file_rows: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        cfg = self.config
        sizes = [s for s in cfg.sizes if s <= len(dataset)]
        if len(dataset) not in sizes and cfg.sizes:
            sizes.append(len(dataset))
        if not sizes:
            return [], []
        rows: list[dict[str, Any]] = []
        path_index = {it.path: i for i, it in enumerate(dataset)}
        extract_by = {}
        for r in file_rows:
            if not r.get("error"):
                extract_by[(r["embedder"], path_index[r["path"]])] = float(r["extract_s"])
        subsets = {s: {path_index[it.path] for it in dataset.subset(s, cfg.seed)} for s in sizes}
        for v in sets:
            for entry in cfg.stores:
                for s in sizes:
                    keep = subsets[s]
                    rows_idx = np.flatnonzero(np.isin(v.item, list(keep)))
                    row: dict[str, Any] = {
                        "embedder": v.embedder,
                        "pooling": v.pooling,
                        "store": entry.display(),
                        "size": s,
                        "n_vectors": len(rows_idx),
                    }
                    row["extract_s_total"] = float(sum(extract_by.get((v.embedder, i), 0.0) for i in keep))
                    if len(rows_idx) == 0:
                        rows.append(row)
                        continue
                    workdir = Path(tempfile.mkdtemp(prefix="audiovec-scale-"))
                    try:
                        store = self._open_store(entry, v.x.shape[1], workdir)
                        try:
                            row["insert_s"] = self._insert(store, v, rows_idx)
                            qs = rows_idx[: min(50, len(rows_idx))]
                            store.search(v.x[qs[:1]], k=min(cfg.k, len(rows_idx)))
                            lat = []
                            for qi in qs:
                                t0 = time.perf_counter()
                                store.search(
                                    v.x[qi : qi + 1], k=min(cfg.k, len(rows_idx)), params=entry.search_params or None
                                )
                                lat.append(time.perf_counter() - t0)
                            row["search_p50_ms"] = latency_percentiles(lat)["p50_ms"]
                        finally:
                            store.close()
                    except AudiovecError as err:
                        row["error"] = f"{type(err).__name__}: {err}"
                    finally:
                        shutil.rmtree(workdir, ignore_errors=True)
                    rows.append(row)
        growth = []
        keys = sorted({(r["embedder"], r["pooling"], r["store"]) for r in rows})
        for key in keys:
            sub = [r for r in rows if (r["embedder"], r["pooling"], r["store"]) == key]
            for quantity in ("extract_s_total", "insert_s", "search_p50_ms"):
                pts = [(r["size"], r[quantity]) for r in sub if quantity in r and np.isfinite(r[quantity])]
                if len(pts) < 2:
                    continue
                fit = fit_growth([p[0] for p in pts], [p[1] for p in pts])
                growth.append(
                    {
                        "embedder": key[0],
                        "pooling": key[1],
                        "store": key[2],
                        "quantity": quantity,
                        "slope_per_file": fit.slope,
                        "exponent": fit.exponent,
                        "r2_linear": fit.r2_linear,
                        "points": len(pts),
                    }
                )
        return rows, growth

    # ------------------------------------------------------------------------------------------- 6. ranking
    def _rank(self, result: BenchmarkResult) -> Any:
        cfg = self.config
        pd = self._pd
        if len(result.stores) == 0:
            return pd.DataFrame()
        models = {r["embedder"]: r for r in result.models.to_dict("records")}
        quality = {(r["embedder"], r["pooling"]): r for r in result.quality.to_dict("records")}
        rows = []
        for s in result.stores.to_dict("records"):
            if s.get("error"):
                continue
            m = models.get(s["embedder"], {})
            q = quality.get((s["embedder"], s["pooling"]), {})
            row = {
                "embedder": s["embedder"],
                "pooling": s["pooling"],
                "store": s["store"],
                "extract_s": m.get("extract_s_mean", math.nan),
                "rtf": m.get("rtf_median", math.nan),
                "peak_mem_mb": m.get("peak_mem_mb_max", math.nan),
                "peak_rss_mb": m.get("peak_rss_mb_max", math.nan),
                "cpu_percent": m.get("cpu_percent_mean", math.nan),
                "ram_percent": m.get("ram_percent_max", math.nan),
            }
            for col in (
                "insert_s",
                "insert_per_vector_ms",
                "insert_vps",
                "search_p50_ms",
                "search_p95_ms",
                "search_p99_ms",
                "search_qps",
                "ann_recall",
                "bytes_per_vector",
                "disk_mb",
            ):
                row[col] = s.get(col, math.nan)
            for col in (
                "top1_acc",
                "topk_acc",
                "knn_acc",
                "precision_at_k",
                "map_at_k",
                "separation_auc",
                "linear_probe_acc",
            ):
                row[col] = q.get(col, math.nan)
            rows.append(row)
        if not rows:
            return pd.DataFrame()
        scores = weighted_score(rows, cfg.weights)
        for r, sc in zip(rows, scores, strict=True):
            r["score"] = sc
        df = pd.DataFrame(rows).sort_values("score", ascending=False, kind="stable").reset_index(drop=True)
        df.insert(0, "rank", np.arange(1, len(df) + 1))
        return df


# ------------------------------------------------------------------------------------------- helpers
def _codes(values: NDArray[Any] | Sequence[Any]) -> NDArray[np.int64]:
    _, inv = np.unique(np.asarray([str(v) for v in values]), return_inverse=True)
    out: NDArray[np.int64] = inv.astype(np.int64)
    return out


def _n_relevant(labels: NDArray[Any], groups: NDArray[Any]) -> NDArray[np.int64]:
    """Per vector: how many vectors share its label outside its group (0 for unlabelled vectors)."""
    lab, grp = _codes(labels), _codes(groups)
    has = np.array([v is not None for v in labels], dtype=bool)
    per_label = np.bincount(lab[has], minlength=lab.max() + 1 if lab.size else 0)
    pair = lab * (grp.max() + 1 if grp.size else 1) + grp
    _, inv, counts = np.unique(pair[has], return_inverse=True, return_counts=True)
    out = np.zeros(len(labels), dtype=np.int64)
    out[has] = per_label[lab[has]] - counts[inv]
    return out


def _jsonable(v: Any) -> Any:
    return v if v is None or isinstance(v, (str, int, float, bool)) else str(v)


def _size(path: str) -> int | None:
    try:
        return Path(path).stat().st_size
    except OSError:
        return None


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _mean(values: Sequence[float]) -> float:
    arr = np.asarray([v for v in values if v is not None], dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    return float(arr.mean()) if arr.size else math.nan


def _max(values: Sequence[float]) -> float:
    arr = np.asarray([v for v in values if v is not None], dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    return float(arr.max()) if arr.size else math.nan

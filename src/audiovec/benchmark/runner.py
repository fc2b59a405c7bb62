"""The :class:`Benchmark` runner: the stages of a run, in order, each in its own module.

1. **extraction** (:mod:`~audiovec.benchmark.extraction`) — every embedder on every file through the ingest path:
   one row per (file, embedder) with wall and CPU time, real-time factor, or the error (cached by content); one row
   per embedder with its load cost and its memory, measured once in full on the largest files.
2. **vectors** (:mod:`~audiovec.benchmark.vectors`) — each (embedder, pooling) pooled into a vector set, the group
   rule and the normalisation decided once.
3. **quality** (:mod:`~audiovec.benchmark.retrieval`) — exact search with the query's own group excluded: top-1,
   top-k, kNN vote, precision@k, mAP@k with bootstrap intervals, separation AUC, a group-aware linear probe.
   With ``projections`` set, every fitted projection (:mod:`audiovec.projections`) of every vector set is scored
   the same way, each fold of groups with a fit on the other folds (:mod:`~audiovec.benchmark.projected`).
4. **stores** (:mod:`~audiovec.benchmark.stores`) — every (embedder, pooling, store): insertion, latency
   percentiles, batched queries/s, ANN recall@k against the exact kernel, quality through the store, storage.
5. **robustness** (:mod:`~audiovec.benchmark.robustness`, when ``robustness`` lists degradations) — the valid
   queries degraded (noise, codecs, band-pass, excerpts, gain) and scored against the clean vectors with the same
   group rule, one row per (embedder, pooling, condition) with the clean baseline.
6. **scaling** — the same costs at growing data sizes (nested, stratified subsets), with fitted growth.
7. **ranking** (:mod:`~audiovec.benchmark.ranking`) — a weighted, min-max-normalised 0–100 score (quality first by
   default; see :data:`audiovec.metrics.WEIGHT_PRESETS`).
8. **verdict** (:mod:`~audiovec.benchmark.verdict`) — the best configuration with the ones statistically tied with
   it (paired bootstrap over the same queries), the fastest, the smallest, the Pareto set, in plain sentences.

Failures (a model that cannot load, a file that cannot be decoded, a store that cannot be reached) are recorded
in the tables with their error and the run goes on; nothing is replaced by a dummy.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from audiovec._optional import require
from audiovec.benchmark.config import BenchmarkConfig
from audiovec.benchmark.datasets import Dataset, build_dataset
from audiovec.benchmark.extraction import extract_dataset
from audiovec.benchmark.ranking import rank
from audiovec.benchmark.result import BenchmarkResult
from audiovec.benchmark.retrieval import QualityScores, quality
from audiovec.benchmark.stores import exact_truth, growth_rows, measure_store, scaling_row
from audiovec.benchmark.vectors import VectorSet, pool_vectors, stratified_sample
from audiovec.embedders import Embedder
from audiovec.errors import AudiovecError
from audiovec.ingest import EmbeddingCache
from audiovec.progress import as_callback

__all__ = ["Benchmark"]

log = logging.getLogger(__name__)


class Benchmark:
    """Compare embedders and vector stores on speed, memory, search and retrieval quality.

    Args:
        config: A :class:`~audiovec.benchmark.config.BenchmarkConfig` (or its fields as keyword arguments).
        dataset: Use this dataset instead of the config's.

    Example:
        >>> from audiovec import Benchmark
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
            result = self._run(out)
            result.wall_s = time.perf_counter() - t0
            result.save(out)
            log.info("benchmark done in %.1f s; results in %s", result.wall_s, out)
            return result
        finally:
            root.removeHandler(handler)
            root.setLevel(old_level)
            handler.close()

    def _run(self, out: Path) -> BenchmarkResult:
        cfg = self.config
        pd = self._pd
        dataset = self._dataset if self._dataset is not None else build_dataset(cfg.dataset, cfg.seed, cfg.data_root)
        log.info("benchmark %r on %s: %d items", cfg.name, dataset.name, len(dataset))
        cache = EmbeddingCache(cfg.cache_dir or out / "cache") if cfg.cache else None
        with as_callback(cfg.progress, len(dataset), "extract", "file", leave=False) as cb:
            extraction = extract_dataset(dataset, cfg, cache, cb)
        sets: list[VectorSet] = []
        for entry in cfg.embedders:
            label = cfg.embedder_label(entry)
            if extraction.frames.get(label):
                frames = extraction.frames[label]
                sets.extend(pool_vectors(dataset, frames, p, label, cfg.metric) for p in entry.pipelines())
        rng = np.random.default_rng(cfg.seed)
        probe = {cfg.embedder_label(e): cfg.probe_for(e) for e in cfg.embedders}
        quality_rows, distances, embeddings = [], {}, {}
        per_query: dict[str, dict[str, Any]] = {}
        for vs in sets:
            scores = quality(
                vs,
                cfg.k,
                ks=cfg.ks,
                bootstrap=cfg.bootstrap,
                seed=cfg.seed,
                linear_probe=probe.get(vs.embedder, cfg.linear_probe),
                rng=rng,
            )
            quality_rows.append(scores.row)
            if scores.per_query:
                per_query[vs.key] = {"ids": np.asarray(scores.query_ids), **scores.per_query}
            pairs = scores.similarities
            if pairs is not None:
                distances[vs.key] = pairs
                if cfg.embedding_map_points:
                    take = stratified_sample(vs.groups, cfg.embedding_map_points, cfg.seed)
                    embeddings[vs.key] = (vs.x[take], vs.labels[take])
        n_fits = len(sets) * len(cfg.projections)
        with as_callback(cfg.progress if n_fits else False, n_fits, "projections", "fit", leave=False) as fits:
            for vs in sets:
                for spec in cfg.projections:
                    projected = self._projected(vs, spec, dataset.name, out)
                    fits.relative_update()
                    key = f"{vs.embedder}|{projected.row['pooling']}"
                    quality_rows.append(projected.row)
                    if projected.per_query:
                        per_query[key] = {"ids": np.asarray(projected.query_ids), **projected.per_query}
                    if projected.similarities is not None:
                        distances[key] = projected.similarities
        robust = self._robustness(dataset, sets, extraction.models) if cfg.robustness is not None else []
        scaling = self._scaling(dataset, sets, extraction.file_rows)
        result = BenchmarkResult(
            config=cfg,
            files=pd.DataFrame(extraction.file_rows),
            models=pd.DataFrame(extraction.model_rows),
            quality=pd.DataFrame(quality_rows),
            stores=pd.DataFrame(self._stores(sets)),
            scaling=pd.DataFrame(scaling),
            growth=pd.DataFrame(growth_rows(scaling)),
            ranking=pd.DataFrame(),
            robustness=pd.DataFrame(robust),
            per_query=per_query,
            distances=distances,
            embeddings=embeddings,
        )
        result.verdict = result.build_verdict()
        result.ranking = rank(result, cfg.ranking_weights[0])
        return result

    def _projected(self, vs: VectorSet, spec: str, dataset: str, out: Path) -> QualityScores:
        """One projection of one vector set, cross-fitted over folds of groups; its full fit saved under ``out``."""
        from audiovec.benchmark.projected import cross_fitted_quality, projected_name, save_projection

        cfg = self.config
        t0 = time.perf_counter()
        try:
            scores, fitted = cross_fitted_quality(
                vs,
                spec,
                cfg.k,
                ks=cfg.ks,
                folds=cfg.projection_folds,
                bootstrap=cfg.bootstrap,
                seed=cfg.seed,
                dataset=dataset,
            )
        except AudiovecError as err:
            log.error("projection %s of %s/%s failed: %s", spec, vs.embedder, vs.pooling, err)
            row = {"embedder": vs.embedder, "pooling": projected_name(vs.pooling, spec), "projection": spec}
            return QualityScores(row={**row, "note": f"{type(err).__name__}: {err}"})
        if fitted.fitted:
            save_projection(fitted, out, vs.embedder, vs.pooling)
        log.info(
            "projection %s of %s/%s: %s %.3f over %s queries, %s folds, %.1f s",
            spec,
            vs.embedder,
            vs.pooling,
            cfg.verdict_metric,
            float(scores.row.get(cfg.verdict_metric, float("nan"))),
            scores.row.get("n_queries"),
            scores.row.get("folds"),
            time.perf_counter() - t0,
        )
        return scores

    def _robustness(self, dataset: Dataset, sets: list[VectorSet], models: dict[str, Embedder]) -> list[dict[str, Any]]:
        """The robustness stage: every embedder's poolings with degraded queries against its clean vectors."""
        from audiovec.benchmark.robustness import robustness

        cfg = self.config
        rows: list[dict[str, Any]] = []
        for entry in cfg.embedders:
            label = cfg.embedder_label(entry)
            pairs = [
                (p, vs) for p in entry.pipelines() for vs in sets if vs.embedder == label and vs.pooling == p.describe()
            ]
            if not pairs or label not in models:
                continue  # the embedder failed: no clean vectors
            try:
                res = robustness(
                    dataset,
                    models[label],
                    [p for p, _ in pairs],
                    [vs for _, vs in pairs],
                    cfg.robustness,
                    k=cfg.k,
                    ks=cfg.ks,
                    bootstrap=cfg.bootstrap,
                    seed=cfg.seed,
                    max_queries=cfg.robustness_queries,
                    workers=cfg.workers,
                    progress=cfg.progress,
                )
            except AudiovecError as err:
                log.error("robustness of %s failed: %s", label, err)
                rows.append({"embedder": label, "error": f"{type(err).__name__}: {err}"})
                continue
            rows.extend(res.rows)
        return rows

    def _stores(self, sets: list[VectorSet]) -> list[dict[str, Any]]:
        cfg = self.config
        rows = []
        rng = np.random.default_rng(cfg.seed)
        for vs in sets:
            n = len(vs)
            q_idx = np.sort(rng.permutation(n)[: min(cfg.n_latency_queries, n)])
            truth = exact_truth(vs, q_idx, cfg.k)
            valid = np.flatnonzero(vs.queries)
            if cfg.store_quality_queries is not None:
                valid = valid[stratified_sample(vs.groups[valid], cfg.store_quality_queries, cfg.seed)]
            for entry in cfg.stores:
                row: dict[str, Any] = {
                    "embedder": vs.embedder,
                    "pooling": vs.pooling,
                    "store": entry.display(),
                    "n_vectors": n,
                    "dim": int(vs.x.shape[1]),
                    "k": cfg.k,
                    "error": "",
                }
                workdir = Path(tempfile.mkdtemp(prefix="audiovec-bench-"))
                try:
                    row.update(measure_store(entry, vs, q_idx, truth, cfg.k, workdir, valid))
                except AudiovecError as err:
                    log.error("store %s failed for %s/%s: %s", entry.display(), vs.embedder, vs.pooling, err)
                    row["error"] = f"{type(err).__name__}: {err}"
                finally:
                    shutil.rmtree(workdir, ignore_errors=True)
                rows.append(row)
        return rows

    def _scaling(
        self, dataset: Dataset, sets: list[VectorSet], file_rows: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        cfg = self.config
        sizes = [s for s in cfg.sizes if s <= len(dataset)]
        if len(dataset) not in sizes and cfg.sizes:
            sizes.append(len(dataset))
        if not sizes:
            return []
        extract_s = {(r["embedder"], r["item"]): float(r["extract_s"]) for r in file_rows if not r["error"]}
        path_index = {it.path: i for i, it in enumerate(dataset)}
        subsets = {s: {path_index[it.path] for it in dataset.subset(s, cfg.seed)} for s in sizes}
        rows: list[dict[str, Any]] = []
        for vs in sets:
            for entry in cfg.stores:
                for s in sizes:
                    keep = subsets[s]
                    vec_rows = np.flatnonzero(np.isin(vs.item, list(keep)))
                    row: dict[str, Any] = {
                        "embedder": vs.embedder,
                        "pooling": vs.pooling,
                        "store": entry.display(),
                        "size": s,
                        "n_vectors": len(vec_rows),
                        "extract_s_total": float(sum(extract_s.get((vs.embedder, i), 0.0) for i in keep)),
                    }
                    if len(vec_rows):
                        row.update(scaling_row(entry, vs, vec_rows, cfg.k))
                    rows.append(row)
        return rows

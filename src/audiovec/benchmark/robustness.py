"""Robustness: retrieval quality when the queries are degraded (noise, codecs, band-pass, excerpts, gain).

A search engine indexes clean recordings, but its queries come from phones, rooms and uploads. This stage takes the
valid queries of a dataset (those the quality table scores), degrades each with every condition of
:mod:`audiovec.audio.degrade` (``"noise:10"``, ``"mp3:64"``, ``"gsm"``, ``"bandpass:300-3400"``, ``"excerpt:2"``,
``"gain:-20"``...), embeds and pools the degraded audio through the same ingest path and pooling as the clean
vectors, and scores the degraded vectors against the **clean** vectors with
:func:`~audiovec.benchmark.retrieval.quality_against`: the group rule and the query rule of the quality table (a
degraded query never matches its own clean version, nor anything else of its group). The clean queries scored the
same way give the baseline row (``degradation = "clean"``), so every condition is compared with the clean score on
the same queries.

One row per (embedder, pooling, condition): ``embedder``, ``pooling``, ``degradation`` (the family, one curve per
family), ``condition`` (the spec), ``level`` (readable), ``level_value`` (the curve's x-axis), ``n_items`` (query
files degraded), ``n_failed`` (of those, the ones that could not be embedded), ``n_queries`` (query vectors scored)
and the quality table's per-query metrics with their 95 % bootstrap bounds (``top1_acc``, ``topk_acc``,
``precision_at_k``, ``map_at_k``, ``knn_acc``, ``top{n}_acc`` for ``ks``; each with ``_lo`` and ``_hi``).

Each query file is decoded once, mixed to mono at its own sample rate, and degraded there (so a codec sees the
audio a recorder would have produced); the ingest path then resamples it for the model. The noise is seeded per
item by ``seed`` and the file's path relative to the dataset's common folder, so a run is reproducible on any
machine. To keep the stage affordable, ``max_queries`` takes a stratified (by label), seeded subset of the query
files; every condition and the baseline use the same subset.

In a benchmark config the stage is ``robustness = ["noise:10", "mp3:32", ...]`` (with ``robustness_queries``);
:func:`robustness` is the stage itself, for one embedder.

Example:
    >>> from audiovec.benchmark.robustness import robustness
    >>> res = robustness(dataset, mfcc, pipelines, clean_sets, ["noise:0", "mp3:32"], k=10)  # doctest: +SKIP
    >>> [(r["condition"], round(r["map_at_k"], 2)) for r in res.rows]  # doctest: +SKIP
    [('clean', 0.26), ('noise:0', 0.22), ('mp3:32', 0.23)]
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from audiovec.audio import Audio, load
from audiovec.audio.degrade import Clean, Degradation, parse_conditions
from audiovec.benchmark.datasets import Dataset
from audiovec.benchmark.retrieval import QualityScores, quality_against
from audiovec.benchmark.vectors import VectorSet, pool_vectors, stratified_sample
from audiovec.embedders import Embedder
from audiovec.embeddings import FrameEmbeddings
from audiovec.errors import AudiovecError, ConfigError
from audiovec.ingest import Ingest, Source
from audiovec.pooling import Pipeline
from audiovec.progress import Callback, as_callback

__all__ = ["ROW_KEYS", "Robustness", "query_items", "robustness", "subset_rows"]

log = logging.getLogger(__name__)

#: The leading columns of a robustness row (the metric columns follow).
ROW_KEYS = (
    "embedder",
    "pooling",
    "degradation",
    "condition",
    "level",
    "level_value",
    "n_items",
    "n_failed",
    "n_queries",
)


@dataclass
class Robustness:
    """What :func:`robustness` produced for one embedder.

    Attributes:
        rows: One row per (pooling, condition), the clean baseline first (see the module docs for the columns).
        scores: The :class:`~audiovec.benchmark.retrieval.QualityScores` behind each row (per-query values, query
            ids), by ``(pooling, condition spec)``; paired comparisons between conditions use these.
        items: The dataset indices of the query files that were degraded.
        failures: One record per (item, condition) that could not be degraded or embedded: ``item``, ``path``,
            ``condition``, ``error``.
    """

    rows: list[dict[str, Any]] = field(default_factory=list)
    scores: dict[tuple[str, str], QualityScores] = field(default_factory=dict)
    items: list[int] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)


def query_items(clean: Sequence[VectorSet], max_queries: int | None = None, seed: int = 0) -> list[int]:
    """Dataset indices of the files whose vectors are valid queries in any of ``clean``, sorted.

    With ``max_queries``, a subset of at most that many files, stratified by label and seeded
    (:func:`~audiovec.benchmark.vectors.stratified_sample`).
    """
    label_of: dict[int, Any] = {}
    for vs in clean:
        for i, lab in zip(vs.item[vs.queries].tolist(), vs.labels[vs.queries], strict=True):
            label_of[int(i)] = lab
    items = sorted(label_of)
    if max_queries is not None:
        if max_queries < 1:
            raise ConfigError(f"max_queries must be at least 1, got {max_queries}")
        take = stratified_sample([label_of[i] for i in items], max_queries, seed)
        items = [items[j] for j in take.tolist()]
    return items


def subset_rows(vs: VectorSet, rows: Sequence[int] | np.ndarray[Any, Any]) -> VectorSet:
    """The vectors of ``vs`` at ``rows`` as a vector set of their own (``n_relevant`` kept from ``vs``)."""
    r = np.asarray(rows, dtype=np.int64)
    return replace(
        vs,
        x=vs.x[r],
        item=vs.item[r],
        ids=[vs.ids[j] for j in r.tolist()],
        records=[vs.records[j] for j in r.tolist()],
        labels=vs.labels[r],
        groups=vs.groups[r],
        label_codes=vs.label_codes[r],
        group_codes=vs.group_codes[r],
        n_relevant=vs.n_relevant[r],
    )


def _item_keys(dataset: Dataset, items: Sequence[int]) -> dict[int, str]:
    """Each item's noise key: its path relative to the folder that holds every file (the same on any machine)."""
    paths = {i: os.path.abspath(dataset[i].path) for i in items}
    if not paths:
        return {}
    base = os.path.commonpath([os.path.dirname(p) for p in paths.values()])
    return {i: os.path.relpath(p, base).replace(os.sep, "/") for i, p in paths.items()}


def _row(vs: VectorSet, cond: Degradation, n_items: int, n_failed: int, scores: QualityScores | None) -> dict[str, Any]:
    row: dict[str, Any] = {
        "embedder": vs.embedder,
        "pooling": vs.pooling,
        "degradation": cond.family,
        "condition": cond.spec,
        "level": cond.level,
        "level_value": cond.level_value,
        "n_items": n_items,
        "n_failed": n_failed,
        "n_queries": 0,
    }
    if scores is not None:
        extra = {k: v for k, v in scores.row.items() if k not in ("embedder", "pooling", "n_vectors", "dim", "k")}
        row.update(extra)
        row["k"] = scores.row.get("k")
    return row


def robustness(
    dataset: Dataset,
    embedder: Embedder,
    pipelines: Sequence[Pipeline],
    clean: Sequence[VectorSet],
    conditions: Sequence[str | Degradation] | str | None = None,
    *,
    k: int = 10,
    ks: Sequence[int] = (),
    bootstrap: int = 1000,
    seed: int = 0,
    max_queries: int | None = None,
    workers: int | None = 1,
    progress: bool | Callback | None = None,
) -> Robustness:
    """Retrieval quality of one embedder's poolings with degraded queries against the clean vectors.

    The benchmark runner calls it once per embedder, after pooling, with the clean vector sets of that embedder::

        from audiovec.benchmark.robustness import robustness

        if cfg.robustness is not None:
            for entry in cfg.embedders:
                label = cfg.embedder_label(entry)
                pairs = [(p, vs) for p in entry.pipelines() for vs in sets
                         if vs.embedder == label and vs.pooling == p.describe()]
                if not pairs:
                    continue  # the embedder failed: no clean vectors
                res = robustness(dataset, embedder_of[label], [p for p, _ in pairs], [vs for _, vs in pairs],
                                 cfg.robustness, k=cfg.k, ks=cfg.ks, bootstrap=cfg.bootstrap, seed=cfg.seed,
                                 max_queries=..., workers=cfg.workers, progress=cb)
                robustness_rows.extend(res.rows)

    where ``embedder_of[label]`` is the embedder extraction built for that label (or
    ``get_embedder(entry.name, **entry.params)``).

    Args:
        dataset: The benchmark's dataset (the clean vectors' items index into it).
        embedder: The model that made ``clean`` (the same parameters: the degraded audio goes through it).
        pipelines: The pooling of each clean vector set, in the same order as ``clean``.
        clean: The clean vector sets of this embedder (:func:`~audiovec.benchmark.vectors.pool_vectors`), one per
            pooling: the index searched, and the source of the query files and their labels and groups.
        conditions: Degradation specs or objects (:mod:`audiovec.audio.degrade`; a comma-separated string is
            split); ``None``: :data:`~audiovec.audio.degrade.DEFAULT_CONDITIONS`. ``"clean"`` may be listed; the
            baseline row is there in any case.
        k: Neighbours for ``topk_acc``, precision@k, mAP@k and the kNN vote (as in the quality table).
        ks: Ranks of the extra hit rates ``top{n}_acc``.
        bootstrap: Resamples for the 95 % intervals.
        seed: Seed of the noise, of the query subset and of the bootstrap.
        max_queries: Degrade at most this many query files (stratified by label, seeded); ``None``: all of them.
        workers: Processes the degraded audio is embedded in (see :class:`~audiovec.ingest.Ingest`; 1: this one).
        progress: Progress per degraded file (see :func:`audiovec.progress.as_callback`).

    Returns:
        A :class:`Robustness`: the rows (the clean baseline first, then every condition in the order given, for
        each pooling in turn), the scores behind them, the query files and the failures.

    Raises:
        ConfigError: A malformed condition, ``pipelines`` and ``clean`` that do not match, or vector sets of
            several embedders.
        MissingDependencyError: A codec condition the installed libsndfile cannot encode (raised before any work).
    """
    conds = [c for c in parse_conditions(conditions) if not isinstance(c, Clean)]
    if len(pipelines) != len(clean):
        raise ConfigError(f"{len(pipelines)} pipelines for {len(clean)} clean vector sets")
    for p, vs in zip(pipelines, clean, strict=True):
        if p.describe() != vs.pooling:
            raise ConfigError(f"pipeline {p.describe()!r} does not match the vector set pooled with {vs.pooling!r}")
    labels = {vs.embedder for vs in clean}
    if len(labels) > 1:
        raise ConfigError(f"robustness takes the vector sets of one embedder, got {sorted(labels)}")
    out = Robustness()
    if not clean:
        return out
    label = clean[0].embedder
    metric = clean[0].metric
    _check_codecs(conds)
    out.items = query_items(clean, max_queries, seed)
    item_set = set(out.items)

    # the clean baseline: the same query files' clean vectors, scored the same way
    for vs in clean:
        rows = np.flatnonzero(np.isin(vs.item, out.items))
        base = quality_against(subset_rows(vs, rows), vs, k, ks=ks, bootstrap=bootstrap, seed=seed)
        out.scores[(vs.pooling, "clean")] = base
        out.rows.append(_row(vs, Clean(), len(out.items), 0, base))
    if not conds or not out.items:
        return out

    frames = _embed_degraded(dataset, embedder, label, out.items, conds, seed, workers, progress, out.failures)
    failed = {c.spec: sum(f["condition"] == c.spec for f in out.failures) for c in conds}
    for p, vs in zip(pipelines, clean, strict=True):
        for cond in conds:
            got = {i: fe for i, fe in frames[cond.spec].items() if i in item_set}
            scores: QualityScores | None = None
            if got:
                degraded = pool_vectors(dataset, got, p, label, metric)
                scores = quality_against(degraded, vs, k, ks=ks, bootstrap=bootstrap, seed=seed)
                out.scores[(vs.pooling, cond.spec)] = scores
            out.rows.append(_row(vs, cond, len(out.items), failed[cond.spec], scores))
    order = {p.describe(): n for n, p in enumerate(pipelines)}
    out.rows.sort(key=lambda r: order[r["pooling"]])  # stable: per pooling, the baseline then the conditions
    return out


def _check_codecs(conds: Sequence[Degradation]) -> None:
    """Fail before any work when a codec condition cannot run here (one tiny call of each codec)."""
    probe = Audio.from_array(np.zeros(1600, dtype=np.float32), 16000, "codec check")
    for cond in conds:
        if cond.family in ("mp3", "gsm"):
            cond(probe)


def _embed_degraded(
    dataset: Dataset,
    embedder: Embedder,
    label: str,
    items: Sequence[int],
    conds: Sequence[Degradation],
    seed: int,
    workers: int | None,
    progress: bool | Callback | None,
    failures: list[dict[str, Any]],
) -> dict[str, dict[int, FrameEmbeddings]]:
    """Frame embeddings of every (condition, item), through the ingest path; failures are recorded, not raised."""
    keys = _item_keys(dataset, items)
    jobs: list[tuple[str, int]] = []  # (condition, item) of each source, in the order the sources are made

    def sources() -> Iterator[Source]:
        for i in items:
            path = dataset[i].path
            try:
                audio = load(path).to_mono()
            except AudiovecError as err:
                for cond in conds:
                    failures.append({"item": i, "path": path, "condition": cond.spec, "error": _text(err)})
                continue
            for cond in conds:
                try:
                    degraded = cond(audio, seed=seed, key=keys[i])
                except AudiovecError as err:
                    failures.append({"item": i, "path": path, "condition": cond.spec, "error": _text(err)})
                    continue
                jobs.append((cond.spec, i))
                yield Source(f"{path}|{cond.spec}", audio=degraded, name=f"{path} ({cond.spec})")

    frames: dict[str, dict[int, FrameEmbeddings]] = {c.spec: {} for c in conds}
    ingest = Ingest({label: embedder}, cache=None, batch_size=8, workers=workers)
    total = len(items) * len(conds)
    cb = as_callback(progress, total, f"robustness of {label}", "file", leave=False)
    for n, result in enumerate(ingest.run(sources(), total=total, progress=cb)):
        spec, i = jobs[n]
        if label in result.frames:
            frames[spec][i] = result.frames[label]
        else:
            failure = result.failures.get(label) or next(iter(result.failures.values()), None)
            error = f"{failure.error}: {failure.message}" if failure is not None else "not embedded"
            failures.append({"item": i, "path": dataset[i].path, "condition": spec, "error": error})
    for f in failures:
        log.warning("robustness: %s under %s: %s", f["path"], f["condition"], f["error"])
    return frames


def _text(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"

"""Benchmark configuration: pydantic models, validated early, loaded from TOML/JSON and saved with the results.

A complete config in TOML::

    name = "drums"
    output_dir = "results/drums"
    k = 10                               # mAP@10, precision@10, the 10-NN vote, ANN recall@10
    ks = [1, 3, 10]                      # top-1, top-3, top-10 accuracy
    sizes = [25, 100, 250, 869]          # growth is fitted from four sizes or more
    weights = "quality"                  # a preset (quality, resources, balanced) or a [weights] table
    robustness = ["noise:10", "mp3:32"]  # optional: degraded queries against the clean index
    projections = ["center", "center+lda"]  # optional: fitted on other folds, scored on held-out groups

    [dataset]
    kind = "manifest"                    # demo | folder | manifest | fsdd | list
    path = "drums/metadata.tsv"          # relative: read from the data root (--data-root DIR or $AUDIOVEC_DATA)
    group_col = "kit"

    [[embedders]]
    name = "mfcc"
    poolings = ["mean_std+l2", "linear_concat:16"]

    [[embedders]]
    name = "yamnet"
    params = { model = "../shared/models/yamnet.tflite" }

    [[stores]]
    name = "faiss"
    index = "hnsw"

    [[stores]]
    name = "milvus"
    params = { uri = "milvus.db" }

A header-less manifest names its columns in the config::

    [dataset]
    kind = "manifest"
    path = "drums/metadata.tsv"
    header = false
    columns = ["path", "label", "kit"]
    group_col = "kit"

Custom weights (a table, in place of the preset name) weigh any column of the tables::

    [weights]
    map_at_k = 50
    extract_s = 30
    rss_mb = 20
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from audiovec.benchmark.datasets import PATH_KINDS, fields_pattern
from audiovec.errors import ConfigError
from audiovec.metrics import DEFAULT_PRESET, resolve_weights
from audiovec.pooling import Pipeline

__all__ = ["DEMO_ROBUSTNESS", "BenchmarkConfig", "DatasetConfig", "EmbedderEntry", "StoreEntry", "load_config"]

#: A small set of query degradations for demo runs: noise at two SNRs, a low-bitrate MP3, telephone band, a short
#: excerpt (``robustness = DEMO_ROBUSTNESS``).
DEMO_ROBUSTNESS: tuple[str, ...] = ("noise:20", "noise:0", "mp3:32", "bandpass:300-3400", "excerpt:1")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DatasetConfig(_Model):
    """Which audio to benchmark on.

    Attributes:
        kind: ``demo`` (bundled drums), ``folder`` (label = sub-folder), ``manifest`` (CSV/TSV), ``fsdd``
            (Free Spoken Digit Dataset folder) or ``list`` (explicit paths).
        path: Folder or manifest (not for ``demo``/``list``); a relative path is read from the data root
            (:attr:`BenchmarkConfig.data_root`).
        paths / labels / groups: For ``list`` (relative paths: from the data root as well).
        label_col / group_col / path_col: Manifest columns.
        group_pattern: For ``folder``: regex whose first group, applied to the file stem, is the group.
        fields_from: For ``folder``: a path pattern over each file's path relative to ``path`` naming ``{label}``
            and/or ``{group}`` (e.g. ``"{group}/{fsid}-{label}-*"`` for ``fold3/7061-6-0-0.wav``); the syntax of
            ``audiovec index --label-from`` (:mod:`audiovec.ingest.paths`). Every file must match it.
        columns: For ``manifest``: the column names in file order (required when ``header`` is false; with a header
            line, they replace its names).
        header: For ``manifest``: whether the first line names the columns.
        label: For ``fsdd``: ``digit`` (group = speaker) or ``speaker`` (group = digit).
        limit: Use only this many items (stratified subset) — handy for quick runs.
    """

    kind: Literal["demo", "folder", "manifest", "fsdd", "list"] = "demo"
    path: str | None = None
    paths: list[str] | None = None
    labels: list[str] | None = None
    groups: list[str] | None = None
    path_col: str = "path"
    label_col: str | None = "label"
    group_col: str | None = None
    group_pattern: str | None = None
    fields_from: str | None = None
    columns: list[str] | None = None
    header: bool = True
    label: Literal["digit", "speaker"] = "digit"
    limit: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _check(self) -> DatasetConfig:
        if self.kind in PATH_KINDS and not self.path:
            raise ValueError(f"dataset kind {self.kind!r} needs 'path'")
        if self.kind == "list" and not self.paths:
            raise ValueError("dataset kind 'list' needs 'paths'")
        if self.fields_from is not None:
            if self.kind != "folder":
                raise ValueError(f"'fields_from' is only for dataset kind 'folder', not {self.kind!r}")
            fields_pattern(self.fields_from, self.group_pattern)  # a bad pattern fails when the config is read
        if self.kind != "manifest" and (self.columns is not None or not self.header):
            raise ValueError(f"'columns' and 'header' are only for dataset kind 'manifest', not {self.kind!r}")
        if not self.header and not self.columns:
            raise ValueError("a manifest without a header line ('header = false') needs 'columns'")
        if self.columns is not None:
            named = [c for c in (self.path_col, self.label_col, self.group_col) if c is not None]
            missing = [c for c in named if c not in self.columns]
            if missing:
                raise ValueError(f"columns {self.columns} lack {missing} (path_col / label_col / group_col)")
        return self


class EmbedderEntry(_Model):
    """One embedder to compare, with the poolings to evaluate its frames with.

    Attributes:
        name: Registry name.
        params: Embedder parameters.
        label: Display name (default: the name, plus parameters when the same name appears twice).
        poolings: Pooling specs (``MODE[:N][+l2]``, see :meth:`audiovec.Pipeline.parse`); each is evaluated.
        segments: Optional ``"WINDOW[:HOP]"`` applied with every pooling (one vector per segment).
        probe: Run the linear probe on this embedder's vectors (``None``: the config's ``linear_probe``); a probe
            on very wide vectors (e.g. 16,384 dimensions) can take long.
    """

    name: str
    params: dict[str, Any] = Field(default_factory=dict)
    label: str | None = None
    poolings: list[str] = Field(default_factory=lambda: ["mean+l2"])
    segments: str | None = None
    probe: bool | None = None

    @field_validator("poolings")
    @classmethod
    def _poolings(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("at least one pooling")
        for p in v:
            Pipeline.parse(p)  # raises ConfigError (a ValueError) on a bad spec
        return v

    def pipelines(self) -> list[Pipeline]:
        """The pooling pipelines to evaluate."""
        return [Pipeline.parse(p, self.segments) for p in self.poolings]


class StoreEntry(_Model):
    """One vector store (and index) to compare.

    Attributes:
        name: Registry name (``exact``, ``faiss``, ``milvus``...).
        index: Index kind or config (``flat``, ``hnsw``, ``{"kind": "ivf", "nlist": 64}``...).
        params: Other constructor arguments (``uri`` for Milvus, ``threads`` for FAISS...).
        search_params: Per-query search parameters (``ef_search``, ``nprobe``).
        label: Display name.
    """

    name: str
    index: str | dict[str, Any] | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    search_params: dict[str, Any] = Field(default_factory=dict)
    label: str | None = None

    def display(self) -> str:
        """Display name, e.g. ``faiss/hnsw``."""
        if self.label:
            return self.label
        if self.index is None:
            return self.name
        kind = self.index if isinstance(self.index, str) else str(self.index.get("kind", "custom"))
        return f"{self.name}/{kind}"


class BenchmarkConfig(_Model):
    """Everything a benchmark run needs; saved as ``config.json`` next to the results.

    Attributes:
        name: Run name.
        dataset: The audio.
        embedders: Embedders to compare (default: MFCC).
        stores: Vector stores to compare (default: FAISS flat).
        metric: Similarity for search and quality: ``cosine`` (default), ``ip`` or ``l2``.
        k: Neighbours for precision@k, mAP@k, the kNN vote (``topk_acc``) and ANN recall.
        ks: Ranks of the top-n hit rates, reported as ``top{n}_acc`` (e.g. ``[1, 3, 10]``), set apart from ``k``.
        sizes: Data sizes (number of files) for the scaling sweep; empty = no sweep.
        n_latency_queries: Single-query searches timed per store.
        store_quality_queries: Queries of the quality measured through each store (``store_top1_acc``, a filtered
            search per query): ``None`` (default) uses every valid query, the queries of the quality table; a number
            takes a subset spread evenly over groups (seeded), reported as ``store_n_queries`` with exact search's
            figure on the same queries (``exact_top1_acc``).
        linear_probe: Also report a group-aware logistic-regression probe (each embedder may override it with
            ``probe``).
        bootstrap: Resamples for confidence intervals.
        weights: Ranking weights: a preset name of :data:`audiovec.metrics.WEIGHT_PRESETS` (``quality``, the default:
            mAP@k 35, top-1 25, extraction 15, memory 10, bytes per vector 10, search latency 5; ``resources``:
            extraction 35, memory 25, CPU 20, insertion 15, RAM 5; ``balanced``) or a table of metric → weight.
        verdict_metric: The per-query quality metric the verdict compares configurations on (``map_at_k``,
            ``top1_acc``, ``top{n}_acc`` for an ``n`` of ``ks``...).
        robustness: Degradations applied to the queries for the robustness stage (specs such as ``"noise:10"``,
            ``"mp3:64"``, ``"bandpass:300-3400"``, ``"excerpt:2"``, ``"gain:-20"``; see :mod:`audiovec.audio.degrade`
            and :mod:`audiovec.benchmark.robustness`); ``None`` (the default) leaves the stage out.
            :data:`DEMO_ROBUSTNESS` is a small set that runs in seconds on the demo data.
        robustness_queries: Degrade at most this many query files (stratified by label, seeded); ``None``: all.
        projections: Fitted projections scored on every (embedder, pooling), e.g. ``["center", "center+lda",
            "pca:64+sq8"]`` (:mod:`audiovec.projections`). Each is fitted on the other folds of whole groups and
            scored on the held-out fold's queries (:mod:`audiovec.benchmark.projected`); its row in the quality
            table is named ``"<pooling> -> <projection>"``, with its bytes per vector, and the verdict compares it
            with the raw vectors query by query. The fit on every vector is saved under ``projections/``.
        projection_folds: Folds of groups for those fits (fewer when the dataset has fewer groups).
        output_dir: Where results and the report go.
        data_root: The folder relative dataset paths are read from (``audiovec bench CONFIG --data-root DIR``
            sets it); when unset, the ``AUDIOVEC_DATA`` environment variable, else the working directory. Keep it
            out of shared configs and pass it per machine, so the same config works from any checkout.
        cache: Keep the frame embeddings on disk, keyed by content, so a second run re-extracts nothing and an
            interrupted run resumes; ``false`` computes everything and writes no cache (a one-off run).
        cache_dir: Embedding cache (default ``<output_dir>/cache``; set to share across runs).
        trace_memory: Include the tracemalloc peak (Python and NumPy allocations) in each model's memory probe.
        resource_files: How many of the largest files each model's memory is measured on, in full (peak RSS,
            tracemalloc peak), before extraction; 0 skips the probe (the memory columns are then empty). Every file
            is timed either way (wall and CPU time).
        embedding_map_points: Points of the report's t-SNE map per vector set, sampled evenly across groups (seeded);
            0 leaves the map out.
        workers: Processes the extraction embeds in (``None``: one per core; 1: this process only). Each file's
            time and CPU are measured in the process that embeds it, so per-file figures mean the same either way;
            the run as a whole finishes sooner with more.
        progress: Show progress bars.
        seed: Random seed (subsets, bootstrap, t-SNE sample).
    """

    name: str = "benchmark"
    dataset: DatasetConfig = Field(default_factory=DatasetConfig)
    embedders: list[EmbedderEntry] = Field(default_factory=lambda: [EmbedderEntry(name="mfcc")])
    stores: list[StoreEntry] = Field(default_factory=lambda: [StoreEntry(name="faiss", index="flat")])
    metric: Literal["cosine", "ip", "l2"] = "cosine"
    k: int = Field(10, ge=1, le=1000)
    ks: list[int] = Field(default_factory=lambda: [1, 3, 10])
    sizes: list[int] = Field(default_factory=list)
    n_latency_queries: int = Field(200, ge=1)
    store_quality_queries: int | None = Field(None, ge=1)
    linear_probe: bool = True
    bootstrap: int = Field(1000, ge=10)
    weights: str | dict[str, float] = DEFAULT_PRESET
    verdict_metric: str = "map_at_k"
    robustness: list[str] | None = None
    robustness_queries: int | None = Field(200, ge=1)
    projections: list[str] = Field(default_factory=list)
    projection_folds: int = Field(5, ge=2, le=100)
    output_dir: str = "audiovec-results"
    data_root: str | None = None
    cache: bool = True
    cache_dir: str | None = None
    trace_memory: bool = True
    resource_files: int = Field(3, ge=0)
    embedding_map_points: int = Field(1000, ge=0, le=20000)
    workers: int | None = Field(None, ge=1, le=1024)
    progress: bool = True
    seed: int = 0

    @field_validator("weights")
    @classmethod
    def _weights(cls, v: str | dict[str, float]) -> str | dict[str, float]:
        resolve_weights(v)  # raises ConfigError (a ValueError) on an unknown preset or metric
        return v

    @field_validator("robustness")
    @classmethod
    def _robustness(cls, v: list[str] | None) -> list[str] | None:
        if v is not None:
            from audiovec.audio.degrade import parse_conditions

            parse_conditions(v)  # raises ConfigError (a ValueError) on a malformed or repeated condition
        return v

    @field_validator("projections")
    @classmethod
    def _projections(cls, v: list[str]) -> list[str]:
        from audiovec.projections import Projection

        specs = [Projection(p).describe() for p in v]  # raises ConfigError (a ValueError) on a bad spec
        if len(set(specs)) != len(specs):
            raise ValueError(f"projections repeat a spec: {specs}")
        return specs

    @field_validator("ks")
    @classmethod
    def _ks(cls, v: list[int]) -> list[int]:
        if not v or any(n < 1 or n > 1000 for n in v):
            raise ValueError(f"ks must be ranks from 1 to 1000, got {v}")
        return sorted(set(v))

    @field_validator("verdict_metric")
    @classmethod
    def _verdict_metric(cls, v: str) -> str:
        if v not in ("top1_acc", "topk_acc", "precision_at_k", "map_at_k", "knn_acc") and not re.fullmatch(
            r"top\d+_acc", v
        ):
            raise ValueError(f"verdict_metric must be a per-query quality metric (map_at_k, top1_acc...), got {v!r}")
        return v

    @property
    def ranking_weights(self) -> tuple[dict[str, float], str | None]:
        """The effective ranking weights (metric → weight) and the preset's name (``None`` for custom weights)."""
        return resolve_weights(self.weights)

    def probe_for(self, entry: EmbedderEntry) -> bool:
        """Whether the linear probe runs on an embedder's vectors (its ``probe``, else ``linear_probe``)."""
        return self.linear_probe if entry.probe is None else entry.probe

    @field_validator("sizes")
    @classmethod
    def _sizes(cls, v: list[int]) -> list[int]:
        if any(s < 2 for s in v):
            raise ValueError("sizes must be >= 2")
        return sorted(set(v))

    @model_validator(mode="after")
    def _labels_unique(self) -> BenchmarkConfig:
        if re.fullmatch(r"top\d+_acc", self.verdict_metric) and self.verdict_metric != "top1_acc":
            n = int(self.verdict_metric[3:-4])
            if n not in self.ks:
                raise ValueError(f"verdict_metric {self.verdict_metric!r} needs {n} in ks {self.ks}")
        for entries, what in ((self.embedders, "embedder"), (self.stores, "store")):
            if not entries:
                raise ValueError(f"at least one {what}")
        names = [_embedder_label(e, self.embedders) for e in self.embedders]
        if len(set(names)) != len(names):
            raise ValueError(f"embedder labels must be unique, got {names}; set 'label'")
        stores = [s.display() for s in self.stores]
        if len(set(stores)) != len(stores):
            raise ValueError(f"store labels must be unique, got {stores}; set 'label'")
        return self

    def embedder_label(self, entry: EmbedderEntry) -> str:
        """Display name of an embedder entry."""
        return _embedder_label(entry, self.embedders)


def _embedder_label(entry: EmbedderEntry, all_entries: list[EmbedderEntry]) -> str:
    if entry.label:
        return entry.label
    if sum(e.name == entry.name for e in all_entries) > 1 and entry.params:
        return entry.name + "(" + ",".join(f"{k}={v}" for k, v in sorted(entry.params.items())) + ")"
    return entry.name


def load_config(path: str | os.PathLike[str], **overrides: Any) -> BenchmarkConfig:
    """Read a benchmark config from ``.toml`` or ``.json``.

    Relative dataset paths are read from the data root (``data_root=`` here, ``--data-root`` on the command line,
    else ``$AUDIOVEC_DATA``, else the working directory); other relative paths (``output_dir``, model files) from
    the working directory.

    Raises:
        ConfigError: Unreadable file or invalid config (the message lists every problem).
    """
    p = Path(path)
    try:
        text = p.read_bytes()
    except OSError as err:
        raise ConfigError(f"cannot read config {p}: {err}") from err
    try:
        if p.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            if sys.version_info >= (3, 11):
                import tomllib
            else:  # pragma: no cover
                import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]
            data = tomllib.loads(text.decode())
    except ValueError as err:
        raise ConfigError(f"cannot parse config {p}: {err}") from err
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return BenchmarkConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(f"invalid benchmark config {p}:\n{err}") from None

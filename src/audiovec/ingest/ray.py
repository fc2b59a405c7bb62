"""Index audio files on a Ray cluster: the ingest path in a pool of actors, with Ray Data feeding it.

:func:`ray_index` runs the one ingest path (:class:`~audiovec.ingest.Ingest` → :class:`~audiovec.Pipeline` →
:func:`~audiovec.ingest.vector_records`) over a list of files on a Ray cluster:

* the file list becomes a Ray Dataset (``ray.data.from_items``), one small block per ``batch_size`` files;
* ``map_batches`` hands the blocks to a pool of actors; each actor builds the embedder, the :class:`Ingest` and
  the pipeline **once**, in its constructor, then reads, hashes, embeds and pools ``batch_size`` files per call;
* the vectors go either **straight from the actors into a Milvus server or cluster** (:class:`MilvusSink`), or
  **back to the driver**, which streams them (``iter_batches``, bounded memory) into any
  :class:`~audiovec.stores.VectorStore` in batches of ``write_batch`` vectors.

**Ids come from the content.** Every file is hashed (SHA-256) and its vectors are stored as
``<content key>#<segment>`` (:func:`~audiovec.ingest.records.content_key`: the first 32 hex digits of the hash, as
``audiovec index`` keys items) with the record fields of :mod:`audiovec.ingest.records` (``_item``, ``_segment``,
``_start``..., ``_sha256``, and the file's ``_file`` and ``_path``). So a rerun, a retried task
or a renamed copy writes the same ids again: with ``skip_existing=True`` (the default) the driver skips ids the
store already holds, and a Milvus sink's actors skip whole files whose vectors are all stored before embedding
them; every Milvus write is an upsert, so a batch written twice (an actor killed after writing) never duplicates.
Files with identical content share one set of vectors (and the path of the first one written).

**Failures are records, not exceptions.** A file that cannot be read, decoded or embedded, or whose vectors the
sink refused, comes back in :attr:`RayIndexResult.failures` (a :class:`~audiovec.ingest.Failure`: path, error
type, message) and the job goes on.

**Worker deaths.** Ray Data (2.60) creates its actors with ``max_restarts=-1`` and ``max_task_retries=-1``: an
actor whose process dies (killed, out of memory, a node lost) is restarted and the batch it held is run again,
so the job completes with every file and, ids being content-derived, no duplicate. A file that *itself* kills
its worker (a crash in a native decoder) would be retried forever, so each batch's attempts are counted: after
``max_attempts`` the batch is run one file at a time, and a file whose worker dies while it is processed alone
is reported as a ``WorkerDiedError`` failure instead of being retried again.

Example:
    >>> from audiovec.data import demo_dir
    >>> from audiovec.ingest.ray import MilvusSink, ray_index
    >>> sink = MilvusSink("http://milvus:19530", collection="sounds")
    >>> result = ray_index([demo_dir()], "mfcc", pipeline="mean+l2", store=sink, address="auto")  # doctest: +SKIP
    >>> result.summary()  # doctest: +SKIP
    '42 files: 42 indexed, 0 already stored, 0 failed; 42 vectors written in 9.1 s'
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from audiovec._hashing import sha256_bytes, sha256_file
from audiovec._optional import require
from audiovec.embedders import get_embedder
from audiovec.embedders.base import Embedder
from audiovec.errors import AudiovecError, ConfigError, DimensionMismatchError
from audiovec.ingest.engine import READ_WHOLE_BELOW_BYTES, Ingest
from audiovec.ingest.records import (
    PATH,
    SEGMENTS,
    check_user_metadata,
    content_key,
    file_fields,
    parse_vector_id,
    vector_id,
    vector_records,
)
from audiovec.ingest.results import Failure
from audiovec.ingest.sources import Source, find_audio_files
from audiovec.pooling import Pipeline
from audiovec.progress import Callback, as_callback
from audiovec.stores.config import IndexArg, Metric

if TYPE_CHECKING:  # pragma: no cover
    from audiovec.stores.milvus import MilvusStore
    from audiovec.stores.protocol import VectorStore

__all__ = ["PATH_FIELD", "MilvusSink", "RayIndexResult", "ray_index"]

log = logging.getLogger(__name__)

#: The record field that holds the file's path (ids derive from the content, so the path is metadata).
PATH_FIELD = PATH

_INDEXED, _SKIPPED, _FAILED = "indexed", "skipped", "failed"
_MAX_BLOCKS = 4096  # input blocks of the dataset (one per batch up to this many)


# ------------------------------------------------------------------------------------------- public types
@dataclass(frozen=True)
class MilvusSink:
    """A Milvus server or cluster that the actors write into directly (see :func:`ray_index`).

    The driver creates (or checks) the collection once, as a string-id :class:`~audiovec.stores.milvus.MilvusStore`;
    every actor then opens it and upserts its vectors. The driver and every node must reach ``uri``.

    Attributes:
        uri: The server, ``http://host:19530`` (Milvus Lite paths are refused: one process holds them).
        collection: Collection name; one collection per embedder and pipeline.
        metric: ``"cosine"``, ``"ip"`` or ``"l2"`` (checked against an existing collection).
        index: Index config, kind name or dict (default: the store's, HNSW).
        token: Server token (``"user:password"`` or an API key).
        db_name: Server database (default: the server's default database).
        timeout: Seconds for the connection and each request.
    """

    uri: str
    collection: str = "audiovec"
    metric: Metric = "cosine"
    index: IndexArg = None
    token: str = field(default="", repr=False)
    db_name: str = ""
    timeout: float = 60.0

    def __post_init__(self) -> None:
        if not isinstance(self.uri, str) or not self.uri.lower().startswith(("http://", "https://", "tcp://")):
            raise ConfigError(f"MilvusSink needs a server uri (http://host:19530), got {self.uri!r}")

    def open(self, dim: int | None = None) -> MilvusStore:
        """The collection as a store with string ids (created with ``dim`` when missing).

        Raises:
            StoreConnectionError: The server cannot be reached.
            DimensionMismatchError: The collection exists with another dimension.
            ConfigError: It exists with another metric, index structure or id kind.
        """
        from audiovec.stores.milvus import MilvusStore

        return MilvusStore(
            self.uri,
            dim=dim,
            metric=self.metric,
            index=self.index,
            id_type="str",
            collection=self.collection,
            token=self.token,
            db_name=self.db_name,
            timeout=self.timeout,
        )


@dataclass
class RayIndexResult:
    """What :func:`ray_index` did.

    Attributes:
        files: Files given (after expanding folders).
        indexed: Files whose vectors were written by this run.
        skipped: Files whose vectors were all in the store already (a rerun, or a copy of another file).
        vectors: Vectors written by this run.
        failures: One :class:`~audiovec.ingest.Failure` per file that could not be indexed (``source`` is the
            path, ``key`` the content hash when it was read, ``error`` the error type, ``message`` why).
        dim: Dimension of the vectors.
        spec: The embedder spec and pipeline steps that made the vectors.
        seconds: Wall time of the run.
    """

    files: int
    indexed: int = 0
    skipped: int = 0
    vectors: int = 0
    failures: list[Failure] = field(default_factory=list)
    dim: int = 0
    spec: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """No file failed."""
        return not self.failures

    def summary(self) -> str:
        """One line: files indexed, skipped and failed, vectors written and the time taken."""
        return (
            f"{self.files} files: {self.indexed} indexed, {self.skipped} already stored, {len(self.failures)} failed; "
            f"{self.vectors} vectors written in {self.seconds:.1f} s"
        )


# ------------------------------------------------------------------------------------------- the driver
def ray_index(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    embedder: str | Embedder,
    params: Mapping[str, Any] | None = None,
    pipeline: Pipeline | str = "mean",
    *,
    store: VectorStore | MilvusSink,
    address: str | None = None,
    actors: int | tuple[int, int] | None = None,
    cpus_per_actor: float = 1.0,
    gpus_per_actor: float = 0.0,
    batch_size: int = 16,
    write_batch: int = 1024,
    metadata: Callable[[str], Mapping[str, Any]] | None = None,
    cache: str | os.PathLike[str] | None = None,
    skip_existing: bool = True,
    max_attempts: int = 3,
    progress: bool | Callback | None = True,
) -> RayIndexResult:
    """Embed, pool and store audio files on a Ray cluster (see the module docs).

    The files are read by the actors, so every node must see them under the same path (shared storage: NFS, a
    cluster file system, or the same mount everywhere). Folders are expanded here, on the driver.

    Args:
        paths: Audio files and/or folders (searched recursively for the formats the decoder reads).
        embedder: A registered embedder name (built on the cluster, never on the driver), or an embedder object
            (sent to each actor as its class and configuration; the actor loads the model itself).
        params: The embedder's parameters, with a name.
        pipeline: A :class:`~audiovec.Pipeline` or its short form (``"mean+l2"``, see
            :meth:`~audiovec.Pipeline.parse`).
        store: Where the vectors go: a :class:`MilvusSink` (the actors write into the server) or any
            :class:`~audiovec.stores.VectorStore` (the vectors come back to this process and are added in batches;
            it must hold string ids, or none yet).
        address: The Ray cluster: ``"auto"`` (one started with ``ray start`` on this machine), ``"ray://head:10001"``
            (Ray Client) or ``"head:6379"``; ``None`` uses ``$RAY_ADDRESS`` or starts Ray on this machine. When Ray is
            already initialised in this process, that connection is used and ``address`` is ignored; otherwise
            this function connects and disconnects.
        actors: Actor pool size: a number, ``(min, max)`` for an autoscaling pool, or ``None`` for one actor per
            ``cpus_per_actor`` CPUs of the cluster.
        cpus_per_actor: CPUs reserved by each actor.
        gpus_per_actor: GPUs reserved by each actor.
        batch_size: Files per actor call (short files of a call share ``embed_batch`` calls); also the unit that is
            retried when an actor dies.
        write_batch: Vectors per store write (in the actors for a Milvus sink, here otherwise).
        metadata: A function of the path (run here, on the driver) that returns the metadata stored with every
            vector of that file; its keys must not start with ``_``.
        cache: A frame cache folder that every node sees (:class:`~audiovec.ingest.EmbeddingCache`): files already
            embedded with the same embedder are not embedded again, whatever the pipeline.
        skip_existing: Leave vectors already in the store as they are (and, with a Milvus sink, do not embed
            files whose vectors are all stored). ``False`` writes everything again (upsert).
        max_attempts: Runs of a batch whose actor died before its files are processed one at a time (a file that
            kills its worker while processed alone is then reported, not retried).
        progress: Report progress in files (``True``: a bar on a terminal, log lines otherwise; or a
            :class:`~audiovec.progress.Callback`).

    Returns:
        Counts, failures, the vector dimension and the spec.

    Raises:
        MissingDependencyError: Ray is not installed (``pip install 'audiovec[ray]'``).
        ConfigError: Invalid arguments (an unknown embedder, bad metadata, a store with int ids).
        DimensionMismatchError: The store or collection holds vectors of another dimension.
        StoreConnectionError: The Milvus sink cannot be reached from the driver.
    """
    started = time.monotonic()
    if batch_size < 1 or write_batch < 1 or max_attempts < 1:
        raise ConfigError(
            f"batch_size, write_batch and max_attempts must be >= 1, got {batch_size}, {write_batch}, {max_attempts}"
        )
    if cpus_per_actor < 0 or gpus_per_actor < 0:
        raise ConfigError("cpus_per_actor and gpus_per_actor must be >= 0")
    if not isinstance(embedder, str) and params:
        raise ConfigError("params go with an embedder name, not an embedder object")
    pipe = Pipeline.parse(pipeline) if isinstance(pipeline, str) else pipeline
    files = [os.fspath(p) for p in find_audio_files([paths] if isinstance(paths, (str, os.PathLike)) else paths)]
    metas = [_metadata_json(p, metadata) for p in files]
    ray = require("ray", "ray", "ray_index")
    require("ray.data", "ray", "ray_index")
    result = RayIndexResult(files=len(files))
    with _connected(ray, address):
        blocks = max(1, min(math.ceil(len(files) / batch_size), _MAX_BLOCKS))
        compute = _pool(ray, actors, cpus_per_actor, gpus_per_actor, blocks)
        spec, frame_dim = _describe(ray, embedder, dict(params or {}), cpus_per_actor, gpus_per_actor)
        result.dim = pipe.output_dim(frame_dim)
        result.spec = {"embedder": spec, "pipeline": pipe.model_dump(mode="json")}
        if isinstance(store, MilvusSink):
            sink, writer = store, None
            sink.open(result.dim).close()  # create or check the collection once, before the actors race for it
        else:
            _check_store(store, result.dim)
            sink, writer = None, _DriverWriter(store, write_batch, skip_existing)
        if files:
            ledger = _start_ledger(ray)
            try:
                job = _Job(
                    embedder=embedder,
                    params=dict(params or {}),
                    pipeline=pipe,
                    dim=result.dim,
                    sink=sink,
                    cache=os.fspath(cache) if cache is not None else None,
                    skip_existing=skip_existing,
                    write_batch=write_batch,
                    max_attempts=max_attempts,
                    ledger=ledger,
                )
                _run(
                    ray,
                    job,
                    files,
                    metas,
                    blocks=blocks,
                    compute=compute,
                    resources=(cpus_per_actor, gpus_per_actor),
                    batch_size=batch_size,
                    writer=writer,
                    result=result,
                    progress=progress,
                )
            finally:
                with contextlib.suppress(Exception):
                    ray.kill(ledger)
    result.seconds = time.monotonic() - started
    log.info("ray_index: %s", result.summary())
    return result


def _run(
    ray: Any,
    job: _Job,
    files: list[str],
    metas: list[str],
    *,
    blocks: int,
    compute: Any,
    resources: tuple[float, float],
    batch_size: int,
    writer: _DriverWriter | None,
    result: RayIndexResult,
    progress: bool | Callback | None,
) -> None:
    """The Ray Data pipeline: the file list → the actor pool → per-file rows, streamed into ``result``."""
    rows = ray.data.from_items(
        [{"i": i, "path": p, "metadata": m} for i, (p, m) in enumerate(zip(files, metas, strict=True))],
        override_num_blocks=blocks,
    )
    out = rows.map_batches(
        _IndexWorker,
        fn_constructor_kwargs={"job": job},
        batch_size=batch_size,
        batch_format="pyarrow",
        compute=compute,
        num_cpus=resources[0],
        num_gpus=resources[1] or None,
    )
    remaining = set(range(len(files)))
    description = f"index with {result.spec['embedder']['name']} on Ray"
    with as_callback(progress, len(files), description, unit="file") as cb:
        with _quiet_ray_data(ray):
            for table in out.iter_batches(batch_format="pyarrow", batch_size=None):
                cb.relative_update(_collect(table, result, writer, remaining))
        if writer is not None:
            writer.flush(result)
    for i in sorted(remaining):  # not expected (every file comes back as a row): a safety net
        result.failures.append(
            Failure(files[i], files[i], None, "NotProcessedError", "the cluster returned no result for it")
        )


def _metadata_json(path: str, fn: Callable[[str], Mapping[str, Any]] | None) -> str:
    meta = check_user_metadata(fn(path) if fn is not None else None)
    try:
        return json.dumps(meta, default=_plain)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"metadata for {path!r} is not JSON-serialisable: {err}") from err


def _plain(value: Any) -> Any:
    """NumPy scalars and paths as plain JSON values (as the stores take them)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


@contextlib.contextmanager
def _connected(ray: Any, address: str | None) -> Iterator[None]:
    """Use this process's Ray connection, or open one for the duration of the block."""
    if ray.is_initialized():
        yield
        return
    ray.init(address=address)
    try:
        yield
    finally:
        ray.shutdown()


def _embedder_of(embedder: str | Embedder, params: Mapping[str, Any]) -> Embedder:
    return get_embedder(embedder, dict(params)) if isinstance(embedder, str) else embedder


def _spec_and_dim(embedder: str | Embedder, params: Mapping[str, Any]) -> tuple[dict[str, Any], int]:
    emb = _embedder_of(embedder, params)
    return emb.spec().model_dump(mode="json"), int(emb.dim)


def _describe(
    ray: Any, embedder: str | Embedder, params: Mapping[str, Any], cpus: float, gpus: float
) -> tuple[dict[str, Any], int]:
    """The embedder's spec and frame dimension: from the object, or built once on the cluster (not here)."""
    if not isinstance(embedder, str):
        return _spec_and_dim(embedder, params)
    probe = ray.remote(num_cpus=cpus, num_gpus=gpus or None, max_retries=3)(_spec_and_dim)
    # an error raised there (ConfigError, MissingDependencyError...) comes back as an instance of its own class
    spec, dim = ray.get(probe.remote(embedder, dict(params)))
    return spec, int(dim)


def _check_store(store: VectorStore, dim: int) -> None:
    if store.dim != dim:
        raise DimensionMismatchError(f"the store holds {store.dim}-d vectors; this embedder and pipeline make {dim}-d")
    if store.id_type not in (None, "str"):
        raise ConfigError(f"ray_index stores content-hash ids (str); the store holds {store.id_type} ids")


def _pool(ray: Any, actors: int | tuple[int, int] | None, cpus: float, gpus: float, blocks: int) -> Any:
    """The actor pool: never more actors than batches (an actor would start for nothing)."""
    if actors is None:
        total = ray.cluster_resources()
        fits = min(
            total.get("CPU", 1.0) / cpus if cpus else math.inf, total.get("GPU", 0.0) / gpus if gpus else math.inf
        )
        return ray.data.ActorPoolStrategy(size=min(blocks, max(1, int(fits) if math.isfinite(fits) else 1)))
    if isinstance(actors, tuple):
        lo, hi = actors
        if not 1 <= lo <= hi:
            raise ConfigError(f"actors=(min, max) needs 1 <= min <= max, got {actors}")
        return ray.data.ActorPoolStrategy(min_size=min(lo, blocks), max_size=min(hi, blocks))
    if actors < 1:
        raise ConfigError(f"actors must be >= 1, got {actors}")
    return ray.data.ActorPoolStrategy(size=min(actors, blocks))


@contextlib.contextmanager
def _quiet_ray_data(ray: Any) -> Iterator[None]:
    """Ray Data's own progress bars off while it runs (progress is reported through ``progress=``)."""
    ctx = ray.data.DataContext.get_current()
    saved = ctx.enable_progress_bars
    ctx.enable_progress_bars = False
    try:
        yield
    finally:
        ctx.enable_progress_bars = saved


def _collect(table: Any, result: RayIndexResult, writer: _DriverWriter | None, remaining: set[int]) -> int:
    """Account for one block of per-file rows, handing their vectors to the writer; returns the new files."""
    col = {name: table.column(name).to_pylist() for name in ("i", "path", "sha256", "status", "ids", "error")}
    messages = table.column("message").to_pylist()
    embedders = table.column("embedder").to_pylist()
    vectors: NDArray[np.float32] | None = None
    if writer is not None:
        flat = table.column("vectors").combine_chunks().flatten()
        vectors = np.asarray(flat, dtype=np.float32).reshape(-1, result.dim)
    offset = new = 0
    for row, i in enumerate(col["i"]):
        ids: list[str] = col["ids"][row]
        start, offset = offset, offset + (len(ids) if writer is not None else 0)
        if i not in remaining:  # a file that came back twice (a retried task): counted once
            continue
        remaining.discard(i)
        new += 1
        status = col["status"][row]
        if status == _FAILED:
            key = col["sha256"][row] or col["path"][row]
            result.failures.append(Failure(key, col["path"][row], embedders[row], col["error"][row], messages[row]))
        elif status == _SKIPPED:
            result.skipped += 1
        elif writer is not None and vectors is not None:
            metas = json.loads(table.column("metadata")[row].as_py())
            writer.add(col["path"][row], col["sha256"][row], ids, vectors[start:offset], metas)
        else:
            result.indexed += 1
            result.vectors += len(ids)
    if writer is not None:
        writer.maybe_flush(result)
    return new


class _DriverWriter:
    """Vectors of finished files, written into a local store in batches (ids already stored are skipped)."""

    def __init__(self, store: VectorStore, write_batch: int, skip_existing: bool) -> None:
        self.store = store
        self.write_batch = write_batch
        self.skip_existing = skip_existing
        self.items: list[tuple[str, str, list[str], NDArray[np.float32], list[dict[str, Any]]]] = []
        self.pending = 0

    def add(
        self, path: str, sha: str, ids: list[str], vectors: NDArray[np.float32], metas: list[dict[str, Any]]
    ) -> None:
        self.items.append((path, sha, ids, vectors, metas))
        self.pending += len(ids)

    def maybe_flush(self, result: RayIndexResult) -> None:
        if self.pending >= self.write_batch:
            self.flush(result)

    def flush(self, result: RayIndexResult) -> None:
        """Write the pending files; a write the store refuses makes their files failures (the job goes on)."""
        if not self.items:
            return
        items, self.items, self.pending = self.items, [], 0
        try:
            self._write(items, result)
        except AudiovecError as err:
            log.warning("the store refused %d files: %s", len(items), err)
            result.failures += [Failure(sha, path, None, type(err).__name__, str(err)) for path, sha, *_ in items]

    def _write(
        self, items: list[tuple[str, str, list[str], NDArray[np.float32], list[dict[str, Any]]]], result: RayIndexResult
    ) -> None:
        taken: set[str] = set()
        if self.skip_existing:
            taken = {str(r.id) for r in self.store.get([i for _, _, ids, _, _ in items for i in ids])}
        ids_out: list[str] = []
        vecs_out: list[NDArray[np.float32]] = []
        metas_out: list[dict[str, Any]] = []
        indexed = skipped = 0
        for _, _, ids, vectors, metas in items:
            keep = [k for k, vid in enumerate(ids) if vid not in taken]
            taken.update(ids)  # a copy of this file later in the batch is skipped
            if not keep:
                skipped += 1
                continue
            indexed += 1
            ids_out += [ids[k] for k in keep]
            vecs_out.append(vectors[keep])
            metas_out += [metas[k] for k in keep]
        if ids_out:
            stacked = np.concatenate(vecs_out)
            if self.skip_existing:
                self.store.add(stacked, ids=ids_out, metadata=metas_out)
            else:
                self.store.upsert(stacked, ids=ids_out, metadata=metas_out)
        result.indexed += indexed
        result.skipped += skipped
        result.vectors += len(ids_out)


# ------------------------------------------------------------------------------------------- the actors
@dataclass(frozen=True)
class _Job:
    """Everything an actor needs, sent once to its constructor."""

    embedder: str | Embedder
    params: dict[str, Any]
    pipeline: Pipeline
    dim: int
    sink: MilvusSink | None
    cache: str | None
    skip_existing: bool
    write_batch: int
    max_attempts: int
    ledger: Any = None  # the _Ledger actor (None: no attempt counting)


class _Ledger:
    """Counts attempts per batch (and per file, when a batch is run one file at a time) across actor restarts."""

    def __init__(self) -> None:
        self.attempts: dict[str, int] = {}

    def begin(self, key: str) -> int:
        n = self.attempts.get(key, 0) + 1
        self.attempts[key] = n
        return n

    def end(self, key: str) -> None:
        self.attempts.pop(key, None)


def _start_ledger(ray: Any) -> Any:
    """The attempt ledger, an actor on the driver's node that restarts (empty) if it dies."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=True)
    return ray.remote(num_cpus=0, max_restarts=-1, scheduling_strategy=here)(_Ledger).remote()


@dataclass
class _Row:
    """One file's outcome, as the actors send it back."""

    i: int
    path: str
    status: str
    sha256: str | None = None
    ids: list[str] = field(default_factory=list)
    vectors: NDArray[np.float32] | None = None
    metadata: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    message: str | None = None
    embedder: str | None = None


class _IndexWorker:
    """The callable class of the actor pool: the model, the ingest path and the pipeline, built once per actor."""

    def __init__(self, job: _Job) -> None:
        self.job = job
        emb = _embedder_of(job.embedder, job.params)
        self.label = emb.name
        # one process per actor: the pool is the parallelism (Ray reserved cpus_per_actor for it)
        self.ingest = Ingest(emb, cache=job.cache, hash_content=True, workers=1)
        self.store = job.sink.open(job.dim) if job.sink is not None else None

    def __call__(self, batch: Any) -> Any:
        """Index one batch of files (a ``pyarrow.Table`` of ``i``, ``path``, ``metadata``) into per-file rows."""
        todo = [
            (int(i), str(p), str(m))
            for i, p, m in zip(
                batch.column("i").to_pylist(),
                batch.column("path").to_pylist(),
                batch.column("metadata").to_pylist(),
                strict=True,
            )
        ]
        if not todo:
            return _table([], self.job.dim)
        key = f"batch:{todo[0][0]}:{len(todo)}"
        if self._begin(key) <= self.job.max_attempts:
            rows = self._index(todo)
        else:  # this batch's actor died max_attempts times: find the file that kills it
            rows = []
            for item in todo:
                ikey = f"file:{item[0]}"
                if self._begin(ikey) > 1:
                    rows.append(_died(item))
                else:
                    rows += self._index([item])
                self._end(ikey)
        self._end(key)
        return _table(rows, self.job.dim)

    def __del__(self) -> None:
        """Close the sink (Ray Data drops the callable when the pool shuts down)."""
        store = getattr(self, "store", None)
        if store is not None:
            with contextlib.suppress(Exception):
                store.close()

    # ---------------------------------------------------------------- the steps
    def _index(self, todo: Sequence[tuple[int, str, str]]) -> list[_Row]:
        rows: list[_Row] = []
        sources: list[tuple[int, str, str, Source]] = []
        seen: set[str] = set()
        for i, path, meta in todo:
            source = _read(path)
            if source.digest is not None and source.digest in seen:  # a copy of a file of this batch: same ids
                rows.append(_Row(i, path, _SKIPPED, source.digest))
                continue
            if source.digest is not None:
                seen.add(source.digest)
            sources.append((i, path, meta, source))
        if self.store is not None and self.job.skip_existing:
            stored = self._stored(seen)
            rows += [_Row(i, path, _SKIPPED, s.digest) for i, path, _, s in sources if s.digest in stored]
            sources = [x for x in sources if x[3].digest not in stored]
        made: list[_Row] = []
        for (i, path, meta, _), item in zip(sources, self.ingest.process([s for *_, s in sources]), strict=True):
            failure = item.failures.get(self.label)
            if failure is None:
                try:
                    frames = item.frames[self.label]
                    pooled = self.job.pipeline(frames)
                    ids, metas = vector_records(
                        content_key(item.digest) if item.digest else path,
                        pooled,
                        duration=frames.duration,
                        metadata=json.loads(meta),
                        digest=item.digest,
                        extra=file_fields(path),
                    )
                except AudiovecError as err:
                    failure = Failure.of(item.source, self.label, err)
            if failure is not None:
                rows.append(_failed(i, path, item.digest, failure.error, failure.message, failure.embedder))
                continue
            made.append(_Row(i, path, _INDEXED, item.digest, ids, pooled.vectors, metas))
        if self.store is not None:
            made = self._write(made)
        return rows + made

    def _stored(self, digests: set[str]) -> set[str]:
        """The digests whose every segment is in the sink already."""
        assert self.store is not None
        if not digests:
            return set()
        try:
            keys = {content_key(d): d for d in digests}
            heads = self.store.get([vector_id(k, 0) for k in sorted(keys)])
            need = {parse_vector_id(str(r.id))[0]: int(r.metadata.get(SEGMENTS, 1)) for r in heads if r.metadata}
            rest = [vector_id(k, s) for k, n in need.items() for s in range(1, n)]
            have = {str(r.id) for r in self.store.get(rest)} if rest else set()
        except AudiovecError as err:  # the check is an optimisation: embed again and upsert
            log.warning("could not check the sink for stored files (%s); embedding them again", err)
            return set()
        return {keys[k] for k, n in need.items() if all(vector_id(k, s) in have for s in range(1, n))}

    def _write(self, made: list[_Row]) -> list[_Row]:
        """Upsert the vectors into the sink, ``write_batch`` at a time; files of a refused write become failures."""
        assert self.store is not None
        out: list[_Row] = []
        group: list[_Row] = []
        size = 0
        for row in [*made, None]:
            if row is not None:
                group.append(row)
                size += len(row.ids)
            if group and (row is None or size >= self.job.write_batch):
                try:
                    self.store.upsert(
                        np.concatenate([r.vectors for r in group if r.vectors is not None]),
                        ids=[i for r in group for i in r.ids],
                        metadata=[m for r in group for m in r.metadata],
                    )
                    out += [_Row(r.i, r.path, _INDEXED, r.sha256, r.ids) for r in group]
                except AudiovecError as err:
                    out += [_failed(r.i, r.path, r.sha256, type(err).__name__, str(err), None) for r in group]
                group, size = [], 0
        return out

    def _begin(self, key: str) -> int:
        if self.job.ledger is None:
            return 1
        import ray

        try:
            n: int = ray.get(self.job.ledger.begin.remote(key))
        except Exception as err:  # no ledger: count this as a first attempt
            log.warning("attempt ledger unavailable (%s)", err)
            return 1
        return n

    def _end(self, key: str) -> None:
        if self.job.ledger is None:
            return
        with contextlib.suppress(Exception):
            self.job.ledger.end.remote(key)


def _read(path: str) -> Source:
    """The file as a source keyed by its content hash: bytes in memory up to the engine's limit, else its path.

    A file that cannot be read is left to the ingest path, which reports it the usual way.
    """
    try:
        p = Path(path)
        if p.stat().st_size <= READ_WHOLE_BELOW_BYTES:
            data = p.read_bytes()
            digest = sha256_bytes(data)
            return Source(digest, data=data, name=path, digest=digest)
        digest = sha256_file(p)
        return Source(digest, path=path, name=path, digest=digest)
    except OSError:
        return Source(path, path=path)


def _failed(i: int, path: str, sha: str | None, error: str, message: str, embedder: str | None) -> _Row:
    return _Row(i, path, _FAILED, sha, error=error, message=message, embedder=embedder)


def _died(item: tuple[int, str, str]) -> _Row:
    i, path, _ = item
    return _failed(
        i, path, None, "WorkerDiedError", "the worker process died while processing this file alone; not retried", None
    )


def _table(rows: list[_Row], dim: int) -> Any:
    """Per-file rows as a ``pyarrow.Table`` (vectors flattened per file; metadata as one JSON list per file)."""
    import pyarrow as pa  # type: ignore[import-untyped]

    rows.sort(key=lambda r: r.i)
    empty = np.zeros(0, np.float32)
    return pa.table(
        {
            "i": pa.array([r.i for r in rows], pa.int64()),
            "path": pa.array([r.path for r in rows], pa.string()),
            "status": pa.array([r.status for r in rows], pa.string()),
            "sha256": pa.array([r.sha256 for r in rows], pa.string()),
            "ids": pa.array([r.ids for r in rows], pa.list_(pa.string())),
            "vectors": pa.array(
                [(r.vectors.reshape(-1) if r.vectors is not None else empty) for r in rows], pa.list_(pa.float32())
            ),
            "metadata": pa.array([json.dumps(r.metadata) for r in rows], pa.string()),
            "error": pa.array([r.error for r in rows], pa.string()),
            "message": pa.array([r.message for r in rows], pa.string()),
            "embedder": pa.array([r.embedder for r in rows], pa.string()),
        }
    )

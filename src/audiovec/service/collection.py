"""A collection: an embedder preset, a pooling pipeline and a vector store, with the uploaded audio kept beside them.

The service's state lives in one folder (``ServiceSettings.data_dir``)::

    data_dir/collections/<name>/collection.json   the collection's config (written last when creating)
    data_dir/collections/<name>/store/            the FAISS / exact store (or milvus.db for Milvus Lite)
    data_dir/collections/<name>/audio/<id>.<ext>  the uploaded files, for playback (when keep_audio is on)

An *item* is one uploaded file. It goes through the ingest path (:class:`~audiovec.ingest.Ingest`) and is stored
as one vector (whole-file pooling) or one vector per segment (``segments="10:5"``), with the ids and record fields of
:mod:`audiovec.ingest.records` (``<item id>#<segment>``; ``_item``, ``_segment``, ``_start``...) plus the service's
own ``_file``, ``_format`` and ``_added``, and the client's metadata. Metadata lives in the vector store itself: no
second database to keep consistent.

Collections are created, opened and dropped by :class:`~audiovec.service.manager.CollectionManager`, which serves the
HTTP API and the ``audiovec collection`` admin commands alike.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, TypeVar, cast

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, field_validator

from audiovec._files import GroupSync, fsync_dir
from audiovec._hashing import sha256_bytes
from audiovec.audio.formats import FORMATS, AudioFormat, sniff
from audiovec.embedders import Embedder
from audiovec.embeddings import PooledEmbeddings
from audiovec.errors import (
    AudioFileNotFoundError,
    CollectionNotFoundError,
    ConfigError,
    InvalidVectorError,
    ItemNotFoundError,
    StoreError,
    UnsupportedUploadError,
)
from audiovec.ingest import Ingest, ItemResult, Source
from audiovec.ingest.records import SEGMENT, SHA256, vector_id, vector_records
from audiovec.pooling import Pipeline
from audiovec.progress import Callback
from audiovec.service.settings import EmbedderPreset, ServiceSettings
from audiovec.stores import Hit, Record, VectorStore, get_store, parse_index
from audiovec.stores.filters import Filter, parse_filter

if TYPE_CHECKING:
    from audiovec.service.indexer import IndexReport

__all__ = ["FORMAT", "NAME_PATTERN", "Collection", "CollectionConfig", "StoreSpec", "Timings"]

log = logging.getLogger(__name__)

NAME_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
"""Collection names: lower-case letters, digits and ``_``, starting with a letter (safe for files and Milvus)."""

_ITEM_ID_RE = re.compile(r"[0-9a-f]{32}\Z")
#: ``collection.json`` format written by this version (2: the ids and record fields of :mod:`audiovec.ingest.records`).
FORMAT = 2
_USER_KEY_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}\Z")


# ------------------------------------------------------------------------------------------------ configs
class StoreSpec(BaseModel):
    """Which vector store a collection uses. Where it lives is the service's choice, never the request's.

    Attributes:
        backend: A store backend the service allows (``ServiceSettings.stores``).
        index: Index kind or parameters, e.g. ``"hnsw"`` or ``{"kind": "ivf", "nlist": 256}``.
        metric: ``cosine``, ``ip`` or ``l2``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: str = Field("faiss", max_length=64)
    index: str | dict[str, Any] = "flat"
    metric: Literal["cosine", "ip", "l2"] = "cosine"

    @field_validator("index")
    @classmethod
    def _check_index(cls, value: str | dict[str, Any]) -> str | dict[str, Any]:
        try:
            parse_index(value)
        except ConfigError as err:
            raise ValueError(str(err)) from None
        return value


class CollectionConfig(BaseModel):
    """How a collection turns audio into vectors and where it keeps them.

    Attributes:
        name: Collection name (``^[a-z][a-z0-9_]{0,62}$``).
        embedder: An embedder preset name from the service settings.
        pooling: ``MODE[:N][+l2]`` (see :meth:`audiovec.Pipeline.parse`), e.g. ``"mean+l2"``.
        segments: ``"WINDOW[:HOP]"`` seconds: one vector per segment; ``None`` = one vector per file.
        store: The vector store.
        keep_audio: Keep uploaded files for playback.
        description: Free text.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME_PATTERN)
    embedder: str = Field("mfcc", max_length=64)
    pooling: str = Field("mean+l2", max_length=64)
    segments: str | None = Field(None, max_length=32)
    store: StoreSpec = Field(default_factory=StoreSpec)
    keep_audio: bool = True
    description: str = Field("", max_length=2000)

    @field_validator("pooling")
    @classmethod
    def _check_pooling(cls, value: str) -> str:
        try:
            Pipeline.parse(value)
        except ConfigError as err:
            raise ValueError(str(err)) from None
        return value

    @field_validator("segments")
    @classmethod
    def _check_segments(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                seg = Pipeline.parse("mean", value).steps[0]
            except ConfigError as err:
                raise ValueError(str(err)) from None
            window = getattr(seg, "window_s", 0.0)
            if not (0.1 <= window <= 600.0):
                raise ValueError(f"segment window must be within [0.1, 600] s, got {window}")
        return value


@dataclass(frozen=True)
class Timings:
    """Milliseconds spent in each step of a request (reported to clients and to ``/metrics``)."""

    decode_ms: float = 0.0
    queue_ms: float = 0.0  # waiting for the (shared, one-at-a-time) embedder
    embed_ms: float = 0.0
    search_ms: float = 0.0
    store_ms: float = 0.0

    def as_dict(self) -> dict[str, float]:
        """Non-zero steps, rounded to microseconds."""
        return {k: round(v, 3) for k, v in self.__dict__.items() if v}


class Upload(NamedTuple):
    """An upload after the ingest path: the result (keyed by a fresh item id), its pooled vectors, its container."""

    item: ItemResult
    pooled: PooledEmbeddings
    kind: AudioFormat
    timings: Timings


# --------------------------------------------------------------------------------------------- helpers
def now() -> str:
    """The current UTC time, ISO 8601 with milliseconds."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _clean_filename(name: str | None) -> str:
    """A display name: the base name only, printable, at most 200 characters."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = "".join(ch for ch in base if ch.isprintable()).strip()
    return base[:200] or "upload"


def check_item_id(item_id: str) -> str:
    """Validate an item id (32 lower-case hex digits).

    Raises:
        ItemNotFoundError: Anything else (such an item cannot exist).
    """
    if not isinstance(item_id, str) or not _ITEM_ID_RE.match(item_id):
        raise ItemNotFoundError(f"no item {item_id!r} (item ids are 32 hex digits)")
    return item_id


def check_user_metadata(metadata: Any) -> dict[str, Any]:
    """Validate client metadata: a JSON object whose keys are identifiers not starting with ``_``.

    Raises:
        ConfigError: Not an object, or a reserved / invalid key.
    """
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise ConfigError("metadata must be a JSON object")
    for key in metadata:
        if not isinstance(key, str) or not _USER_KEY_RE.match(key):
            raise ConfigError(
                f"invalid metadata key {key!r}: use letters, digits and '_', starting with a letter "
                "(keys starting with '_' are the service's own)"
            )
    return dict(metadata)


def _public_item(meta: Mapping[str, Any], collection: str, keep_audio: bool) -> dict[str, Any]:
    item_id = str(meta["_item"])
    return {
        "id": item_id,
        "filename": meta.get("_file"),
        "path": meta.get("_path"),
        "duration": meta.get("_duration"),
        "format": meta.get("_format"),
        "sha256": meta.get("_sha256"),
        "added": meta.get("_added"),
        "segments": int(meta.get("_segments", 1)),
        "metadata": {k: v for k, v in meta.items() if not k.startswith("_")},
        "audio_url": f"/api/v1/collections/{collection}/items/{item_id}/audio" if keep_audio else None,
    }


_F = TypeVar("_F", bound=Callable[..., Any])


def _dropped_is_not_found(method: _F) -> _F:
    """Turn "store is closed" into CollectionNotFoundError when the collection was dropped during the call."""

    @functools.wraps(method)
    def wrapper(self: Collection, *args: Any, **kwargs: Any) -> Any:
        if self._closed:
            raise CollectionNotFoundError(f"no collection {self.name!r} (it was dropped)")
        try:
            return method(self, *args, **kwargs)
        except StoreError:
            if self._closed:
                raise CollectionNotFoundError(f"no collection {self.name!r} (it was dropped)") from None
            raise

    return cast(_F, wrapper)


class SharedEmbedder:
    """One loaded embedder, shared by every collection using the same preset; calls are serialised."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder
        self.lock = threading.Lock()


# ------------------------------------------------------------------------------------------------ collection
class Collection:
    """One collection: embed uploads, store and search their vectors, keep their audio.

    Thread-safe: the embedder is called by one thread at a time, the store serialises its own writes, and
    vector ids are fresh UUIDs, so parallel adds never collide.
    """

    def __init__(
        self,
        root: Path,
        config: CollectionConfig,
        settings: ServiceSettings,
        shared: SharedEmbedder,
        format: int = FORMAT,
    ) -> None:
        self.root = root
        self.format = format
        self.config = config
        self.settings = settings
        self._shared = shared
        self.pipeline = Pipeline.parse(config.pooling, config.segments)
        self.dim = self.pipeline.output_dim(shared.embedder.dim)
        self.audio_dir = root / "audio"
        self._audio_sync = GroupSync(functools.partial(fsync_dir, self.audio_dir))  # new names in audio/, at once
        self.created = ""
        #: The embedder preset recorded in ``collection.json`` (``None`` for collections that did not record one).
        self.preset: EmbedderPreset | None = None
        self._dirty = False
        self._closed = False
        self._add_lock = threading.Lock()
        embedder, lock = shared.embedder, shared.lock
        self._items = Ingest(embedder, lock=lock, max_duration_s=settings.max_duration_s, hash_content=True)
        self._queries = Ingest(embedder, lock=lock, max_duration_s=settings.max_query_duration_s)
        self.store = self._open_store()
        self._remove_orphan_audio()

    # ------------------------------------------------------------------ on its own
    @classmethod
    def open(cls, folder: str | os.PathLike[str]) -> Collection:
        """Open the collection in ``folder`` (made by :meth:`create`, ``audiovec index`` or the service).

        Raises:
            CollectionNotFoundError: No collection there.
        """
        from audiovec.service.folder import open_collection

        return open_collection(folder)

    @classmethod
    def create(
        cls,
        folder: str | os.PathLike[str],
        embedder: str = "mfcc",
        params: Mapping[str, Any] | None = None,
        *,
        pooling: str = "mean+l2",
        segments: str | None = None,
        store: str = "faiss",
        index: str | dict[str, Any] = "flat",
        metric: str = "cosine",
        milvus_uri: str | None = None,
        keep_audio: bool = False,
    ) -> Collection:
        """Create a collection in ``folder`` — or open the one there, if it was made with the same settings.

        Args:
            folder: Its folder (its name is the collection's name; ``audiovec serve`` serves collections kept
                under ``DATA_DIR/collections/``).
            embedder: Registry name (``audiovec list``), e.g. ``"mfcc"``, ``"yamnet"``, ``"clap"``.
            params: The embedder's parameters, e.g. ``{"n_mfcc": 40}``.
            pooling: ``MODE[:N][+l2]`` (:meth:`audiovec.Pipeline.parse`).
            segments: ``"WINDOW[:HOP]"`` seconds: one vector per segment; ``None``: one per file.
            store: ``faiss`` (default), ``exact`` or ``milvus`` (Milvus Lite in the folder, or ``milvus_uri``).
            index: Index kind or parameters: ``"flat"``, ``"hnsw"``, ``{"kind": "ivf_pq", "nlist": 1024, "m": 16}``.
            metric: ``cosine``, ``ip`` or ``l2``.
            milvus_uri: A Milvus server or cluster (``store="milvus"``); token from ``$AUDIOVEC_MILVUS_TOKEN``.
            keep_audio: Copy the indexed files into the collection (for playback in the service).

        Raises:
            ConfigError: Invalid settings, or a collection with other settings is already in ``folder``.
        """
        from audiovec.service.folder import create_collection

        return create_collection(
            folder,
            embedder=embedder,
            params=dict(params or {}),
            pooling=pooling,
            segments=segments,
            store=store,
            index=index,
            metric=metric,
            milvus_uri=milvus_uri,
            keep_audio=keep_audio,
        )

    def index(
        self,
        paths: Iterable[str | os.PathLike[str]],
        *,
        workers: int | None = None,
        label_from: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        recursive: bool = True,
        checkpoint_s: float = 60.0,
        ray: str | None = None,
        progress: bool | Callback | None = True,
    ) -> IndexReport:
        """Add the audio files under ``paths``: skips content already stored, records failures, resumable.

        See :func:`audiovec.service.indexer.index_paths` for the details.

        Args:
            paths: Files and folders.
            workers: Embedding processes (``None``: one per core).
            label_from: Metadata fields from each file's path, e.g. ``"{label}/*"`` or ``"{digit}_{speaker}_*"``.
            metadata: Metadata stored with every item.
            recursive: Search folders recursively.
            checkpoint_s: Seconds between saves of the store.
            ray: Embed on a Ray cluster (its address, or ``"auto"``) instead of local processes (``audiovec[ray]``).
            progress: Report progress (a bar on a terminal, log lines otherwise).
        """
        from audiovec.service.indexer import index_paths

        return index_paths(
            self,
            paths,
            workers=workers,
            label_from=label_from,
            metadata=metadata,
            recursive=recursive,
            checkpoint_s=checkpoint_s,
            ray=ray,
            progress=progress,
        )

    def search(
        self,
        query: str | os.PathLike[str] | bytes,
        k: int = 10,
        filter: Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """The ``k`` items most similar to an audio file (a path, or its bytes), or to a text (CLAP collections).

        Every hit has ``score``, ``id``, ``filename``, ``path``, ``start``/``end`` (the best segment), and the
        item's ``metadata``.

        Raises:
            AudioError: The query file cannot be read.
            ConfigError: A text query on a collection without a text tower.
        """
        if isinstance(query, bytes):
            return self.search_audio(query, "query", k, filter)[0]
        path = Path(query)
        if path.is_file():
            return self.search_audio(path.read_bytes(), path.name, k, filter)[0]
        if isinstance(query, str) and self.supports_text:
            return self.search_text(query, k, filter)[0]
        raise AudioFileNotFoundError("no such audio file", str(query))

    # ------------------------------------------------------------------ setup
    @property
    def name(self) -> str:
        """The collection's name."""
        return self.config.name

    @property
    def embedder(self) -> Embedder:
        """The (shared) embedder."""
        return self._shared.embedder

    @property
    def segmented(self) -> bool:
        """Whether items are stored as one vector per segment."""
        return self.config.segments is not None

    def _open_store(self) -> VectorStore:
        spec, s = self.config.store, self.settings
        if spec.backend not in s.stores:
            raise ConfigError(f"store backend {spec.backend!r} is not enabled on this service (enabled: {s.stores})")
        params: dict[str, Any] = {"dim": self.dim, "metric": spec.metric, "index": spec.index, "id_type": "str"}
        directory = self.root / "store"
        if spec.backend == "milvus":
            params["collection"] = self.name
            if s.milvus_uri:
                token = s.milvus_token.get_secret_value() if s.milvus_token else ""
                params.update(uri=s.milvus_uri, token=token, collection=s.milvus_prefix + self.name)
            elif self.format < 2:  # format 1 kept the Milvus Lite file beside the config
                directory = self.root
        return get_store(spec.backend, params, directory=directory)

    def _remove_orphan_audio(self) -> None:
        """Remove stored audio that no item owns.

        Such files are left by uploads a crash interrupted before their vectors were stored, or deletes it
        interrupted after the vectors were gone: the store is the record of what exists.
        """
        if not self.audio_dir.is_dir():
            return
        files: dict[str, list[Path]] = {}
        for f in self.audio_dir.iterdir():
            if f.name.endswith(".part"):  # a copy that never finished
                f.unlink(missing_ok=True)
            elif f.is_file() and _ITEM_ID_RE.match(f.stem):
                files.setdefault(f.stem, []).append(f)
        ids = list(files)
        kept: set[str] = set()
        for s in range(0, len(ids), 4096):
            kept |= self.stored_items(ids[s : s + 4096])
        orphans = [f for item, paths in files.items() if item not in kept for f in paths]
        for f in orphans:
            f.unlink(missing_ok=True)
        if orphans:
            log.warning(
                "collection %r: removed %d audio file(s) of items that were never stored", self.name, len(orphans)
            )

    @_dropped_is_not_found
    def describe(self) -> dict[str, Any]:
        """Name, config, dimension, item and vector counts, embedder identity."""
        vectors = self.store.count()
        items = self.store.count({SEGMENT: 0}) if self.segmented else vectors
        return {
            "name": self.name,
            "config": self.config.model_dump(),
            "dim": self.dim,
            "items": items,
            "vectors": vectors,
            "embedder": self.embedder.spec().model_dump(mode="json"),
            "sample_rate": self.embedder.sample_rate,
            "pipeline": self.pipeline.describe(),
            "text_search": self.supports_text,
            "created": self.created,
        }

    @property
    def supports_text(self) -> bool:
        """Whether the embedder has a text tower whose space matches the stored vectors (CLAP, mean/max pooling)."""
        return callable(getattr(self.embedder, "embed_text", None)) and self.dim == self.embedder.dim

    # ------------------------------------------------------------------ audio in
    def embed(self, data: bytes, filename: str, *, query: bool = False) -> Upload:
        """Recognise an upload from its bytes, then run it through the ingest path and pool it.

        The container is checked from the bytes (whatever the name says) and the duration from the header before
        anything is decoded.

        Returns:
            The ingest result (keyed by a fresh item id; content hash, duration), the pooled vectors, the
            container and the step times.

        Raises:
            UnsupportedUploadError: Not a supported audio container.
            AudioTooLongError: Longer than the service accepts (``max_duration_s``, or ``max_query_duration_s``).
            AudioError: Corrupt, truncated, empty, NaN... (the message names ``filename``).
            EmbeddingError: The model failed.
        """
        t0 = time.perf_counter()
        try:
            kind = sniff(data)
        except UnsupportedUploadError as err:
            raise UnsupportedUploadError(str(err), filename, what=err.what) from None
        ingest = self._queries if query else self._items
        item = ingest.process([Source(uuid.uuid4().hex, data=data, name=filename)])[0]
        label = self.embedder.name
        frames = item.frames_of(label)
        stats = item.stats[label]
        pooled = self.pipeline(frames)
        t_all = time.perf_counter() - t0
        decode_s = max(0.0, t_all - stats.wait_s - stats.embed_s)  # sniffing, reading the header, decoding, pooling
        timings = Timings(decode_ms=decode_s * 1e3, queue_ms=stats.wait_s * 1e3, embed_ms=stats.embed_s * 1e3)
        return Upload(item, pooled, kind, timings)

    # ------------------------------------------------------------------ items
    @_dropped_is_not_found
    def add(
        self,
        data: bytes,
        filename: str | None,
        metadata: Mapping[str, Any] | None = None,
        if_exists: Literal["add", "skip"] = "add",
    ) -> dict[str, Any]:
        """Embed and store one uploaded file as a new item.

        Nothing is stored when any step fails (the store's batch is atomic; a written audio file is removed).

        Args:
            data: The file's bytes.
            filename: Its name, for display (directories are stripped).
            metadata: Client metadata (a JSON object; keys may not start with ``_``).
            if_exists: ``"skip"``: when an item with exactly these bytes is stored, return it (with
                ``existing: true``) instead of adding a copy. Makes retried uploads safe; checked and added
                atomically, so parallel identical uploads store one item.

        Returns:
            The item (see ``GET /items/{id}``) with ``timings`` and ``existing``.
        """
        name = _clean_filename(filename)
        user = check_user_metadata(metadata)
        upload = self.embed(data, name)
        if if_exists == "skip":
            with self._add_lock:
                flt = {SHA256: upload.item.digest, SEGMENT: 0}
                hits = self.store.search(upload.pooled.vectors[:1], k=1, filter=flt)[0]
                if hits:
                    out = _public_item(hits[0].metadata, self.name, self.config.keep_audio)
                    out["existing"] = True
                    return out
                return self._store_item(data, name, user, upload)
        return self._store_item(data, name, user, upload)

    def _store_item(self, data: bytes, name: str, user: dict[str, Any], upload: Upload) -> dict[str, Any]:
        item, pooled, kind, timings = upload
        item_id = item.source.key
        extra = {"_file": name, "_format": kind.name, "_added": now()}
        ids, metas = vector_records(
            item_id, pooled, duration=item.duration or 0.0, metadata=user, digest=item.digest, extra=extra
        )
        if self.format < 2:
            ids = self.vector_ids(item_id, len(ids))
        path = self.audio_dir / f"{item_id}{kind.extension}"
        t0 = time.perf_counter()
        if self.config.keep_audio:  # on disk before the vectors: an acknowledged item always has its audio
            self.audio_dir.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(path.suffix + ".part")
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fdatasync(fh.fileno())
            os.replace(tmp, path)
            self._audio_sync.wait(self._audio_sync.ticket())
        try:
            self.store.add(pooled.vectors, ids=ids, metadata=metas)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        self._dirty = True
        t_store = time.perf_counter() - t0
        out = _public_item(metas[0], self.name, self.config.keep_audio)
        out["timings"] = replace(timings, store_ms=t_store * 1e3).as_dict()
        out["existing"] = False
        return out

    @_dropped_is_not_found
    def contains_audio(self, data: bytes) -> bool:
        """Whether an item with exactly these bytes is stored (by SHA-256)."""
        flt: dict[str, Any] = {SHA256: sha256_bytes(data), SEGMENT: 0}
        return self.store.count(flt) > 0

    @_dropped_is_not_found
    def stored_items(self, item_ids: Sequence[str]) -> set[str]:
        """Which of these item ids are stored (one store lookup for all of them)."""
        if not item_ids:
            return set()
        first = {self.vector_ids(i, 1)[0]: i for i in item_ids}
        return {first[r.id] for r in self.store.get(list(first)) if r.id in first}

    @_dropped_is_not_found
    def add_vectors(self, vectors: NDArray[np.float32], ids: Sequence[str], metadata: Sequence[dict[str, Any]]) -> None:
        """Store ready-made vectors with their ids and records, in one atomic batch (what indexing writes)."""
        self.store.add(vectors, ids=list(ids), metadata=list(metadata))
        self._dirty = True

    def vector_ids(self, item_id: str, n: int) -> list[str]:
        """Vector ids of an item with ``n`` vectors: ``<item id>#<segment>``.

        Collections written by audiovec 0.1 keep their ids: the item id, or ``<item id>/<segment>``.
        """
        if self.format < 2:
            return [item_id] if not self.segmented else [f"{item_id}/{i}" for i in range(n)]
        return [vector_id(item_id, i) for i in range(n)]

    def _first_record(self, item_id: str) -> Record:
        check_item_id(item_id)
        recs = self.store.get(self.vector_ids(item_id, 1))
        if not recs:
            raise ItemNotFoundError(f"no item {item_id!r} in collection {self.name!r}")
        return recs[0]

    def _records(self, item_id: str) -> list[Record]:
        """Every stored vector of an item, in segment order."""
        first = self._first_record(item_id)
        rest = self.vector_ids(item_id, int(first.metadata.get("_segments", 1)))[1:]
        return [first, *self.store.get(rest)] if rest else [first]

    @_dropped_is_not_found
    def get(self, item_id: str) -> dict[str, Any]:
        """An item's public description.

        Raises:
            ItemNotFoundError: No such item.
        """
        return _public_item(self._first_record(item_id).metadata, self.name, self.config.keep_audio)

    @_dropped_is_not_found
    def delete(self, item_id: str) -> None:
        """Delete an item's vectors and stored audio.

        Raises:
            ItemNotFoundError: No such item.
        """
        meta = self._first_record(item_id).metadata
        self.store.delete(self.vector_ids(item_id, int(meta.get("_segments", 1))))
        self._dirty = True
        kind = FORMATS.get(str(meta.get("_format")))
        if kind is not None:
            (self.audio_dir / f"{item_id}{kind.extension}").unlink(missing_ok=True)

    @_dropped_is_not_found
    def audio_file(self, item_id: str) -> tuple[Path, str]:
        """The stored file of an item and its media type; only ever a file inside this collection's audio folder.

        Raises:
            ItemNotFoundError: No such item, or its audio was not kept.
        """
        meta = self._first_record(item_id).metadata
        kind = FORMATS.get(str(meta.get("_format")))
        path = self.audio_dir / f"{check_item_id(item_id)}{kind.extension if kind else ''}"
        if kind is None or not self.config.keep_audio or not path.is_file():
            raise ItemNotFoundError(f"item {item_id!r} has no stored audio")
        resolved = path.resolve()
        if not resolved.is_relative_to(self.audio_dir.resolve()):  # defence in depth: ids are hex only
            raise ItemNotFoundError(f"item {item_id!r} has no stored audio")
        return resolved, kind.media_type

    # ------------------------------------------------------------------ search
    @_dropped_is_not_found
    def search_vectors(
        self,
        queries: NDArray[np.float32],
        k: int,
        filter: Mapping[str, Any] | Filter | None = None,
        exclude: str | None = None,
    ) -> list[dict[str, Any]]:
        """The ``k`` best items for one or more query vectors (best segment per item, best first).

        Several query vectors (a segmented query clip) are searched together; an item's score is its best.
        """
        flt = parse_filter(filter) if filter else None
        # whole-file collections hold one vector per item; segmented ones may return several per item
        fetch = k + (1 if exclude else 0)
        if self.segmented or len(queries) > 1:
            fetch = min(max(4 * fetch, fetch + 32), 16384)
        best: dict[str, tuple[Hit, int]] = {}
        for q, hits in enumerate(self.store.search(queries, k=fetch, filter=flt)):
            for h in hits:
                item = str(h.metadata.get("_item", h.id))
                if item == exclude:
                    continue
                if item not in best or h.score > best[item][0].score:
                    best[item] = (h, q)
        ranked = sorted(best.values(), key=lambda hq: -hq[0].score)[:k]
        out = []
        for h, q in ranked:
            d = _public_item(h.metadata, self.name, self.config.keep_audio)
            d.update(
                score=float(h.score),
                distance=float(h.distance),
                start=h.metadata.get("_start"),
                end=h.metadata.get("_end"),
                query_segment=q,
            )
            out.append(d)
        return out

    @_dropped_is_not_found
    def search_audio(
        self, data: bytes, filename: str | None, k: int, filter: Mapping[str, Any] | None = None
    ) -> tuple[list[dict[str, Any]], Timings]:
        """Search with an uploaded clip."""
        _, pooled, _, timings = self.embed(data, _clean_filename(filename), query=True)
        t0 = time.perf_counter()
        hits = self.search_vectors(pooled.vectors, k, filter)
        return hits, replace(timings, search_ms=(time.perf_counter() - t0) * 1e3)

    @_dropped_is_not_found
    def search_text(
        self, text: str, k: int, filter: Mapping[str, Any] | None = None
    ) -> tuple[list[dict[str, Any]], Timings]:
        """Search with a text query (embedders with a text tower only)."""
        if not self.supports_text:
            raise ConfigError(
                f"collection {self.name!r} cannot be searched by text: its embedder "
                f"{self.config.embedder!r} has no text tower in the same space as its {self.pipeline.describe()} "
                "vectors (use a CLAP preset with mean or max pooling)"
            )
        t_wait = time.perf_counter()
        with self._shared.lock:
            t0 = time.perf_counter()
            vec = self.embedder.embed_text([text])  # type: ignore[attr-defined]
        vec = np.asarray(vec, dtype=np.float32).reshape(1, -1)
        t1 = time.perf_counter()
        hits = self.search_vectors(vec, k, filter)
        return hits, Timings(
            queue_ms=(t0 - t_wait) * 1e3, embed_ms=(t1 - t0) * 1e3, search_ms=(time.perf_counter() - t1) * 1e3
        )

    @_dropped_is_not_found
    def search_item(
        self, item_id: str, k: int, filter: Mapping[str, Any] | None = None, exclude_self: bool = True
    ) -> tuple[list[dict[str, Any]], Timings]:
        """Items similar to a stored item (its stored vectors are the query; no embedding)."""
        t0 = time.perf_counter()
        vectors = np.stack([r.vector for r in self._records(item_id)])
        hits = self.search_vectors(vectors, k, filter, exclude=item_id if exclude_self else None)
        return hits, Timings(search_ms=(time.perf_counter() - t0) * 1e3)

    @_dropped_is_not_found
    def search_vector(
        self, vector: Iterable[float], k: int, filter: Mapping[str, Any] | None = None
    ) -> tuple[list[dict[str, Any]], Timings]:
        """Search with a vector the client computed (must have this collection's dimension)."""
        t0 = time.perf_counter()
        q64 = np.asarray(list(vector), dtype=np.float64).reshape(1, -1)
        if not np.isfinite(q64).all() or np.abs(q64).max() > np.finfo(np.float32).max:
            raise InvalidVectorError("the query vector has values that are not finite float32 numbers")
        q = q64.astype(np.float32)
        hits = self.search_vectors(q, k, filter)
        return hits, Timings(search_ms=(time.perf_counter() - t0) * 1e3)

    # ------------------------------------------------------------------ lifecycle
    def save(self, force: bool = False) -> None:
        """Persist the store when something changed (or always with ``force``)."""
        if self._dirty or force:
            self._dirty = False
            self.store.save()

    def __enter__(self) -> Collection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Save and close the store."""
        if not self._closed:
            self._closed = True
            self.store.close()

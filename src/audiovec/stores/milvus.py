"""MilvusStore: vectors and metadata in a Milvus collection, on Milvus Lite (a local ``.db`` path) or a server.

``uri`` picks the deployment:

* a local path ending in ``.db`` opens **Milvus Lite** in this process (no server; ``pip install 'audiovec[milvus]'``).
  Milvus Lite keeps a *directory* at that path and locks it against other processes;
* ``http://host:19530`` (or ``https://``, ``tcp://``, ``unix:``) connects to a **Milvus server or cluster**
  (``token=``, ``user=``/``password=`` and ``db_name=`` are passed through);
* ``None`` makes a throw-away Milvus Lite database in a temporary directory, removed at :meth:`~MilvusStore.close`.

**Collection layout.** One collection per store (``collection=``, default ``"audiovec"``)::

    id        INT64 or VARCHAR(512) primary key   (the store's id kind; see "Ids")
    vector    FLOAT_VECTOR(dim)                    (unit-normalised in a cosine store)
    metadata  JSON                                 (the record's metadata object)
    metadata_types  JSON                           (Milvus Lite only; see "Filters")

The collection's properties hold ``audiovec.manifest`` (the same :class:`~audiovec.stores.persistence.StoreManifest`
FAISS stores write to ``manifest.json``: dim, metric, index config, audiovec version) and ``audiovec.next_id``.
Reopening the same ``uri`` + ``collection`` finds everything; a different ``dim`` raises
:class:`~audiovec.errors.DimensionMismatchError`, a different metric or index structure
:class:`~audiovec.errors.ConfigError`. A collection not created by audiovec is refused with a
:class:`~audiovec.errors.StoreError`.

**Ids.** Milvus fixes the primary-key type when a collection is created, and a new audiovec store takes its id kind
from the first batch, so the collection is created on the first write unless ``id_type=`` is given (then at once).
Generated int ids continue from ``audiovec.next_id``, which is reserved ahead in blocks of 1024 (one metadata
update per block, not per insert) and written exactly at :meth:`~MilvusStore.save`/:meth:`~MilvusStore.close`; after
a crash the next generated id may skip up to 1024 values but never reuses one. Generation is per store object: with
several writers on one collection, pass your own ids (or use str ids, generated as UUIDs).

**Indexes** (:mod:`audiovec.stores.config` configs): ``flat`` → ``FLAT``, ``hnsw`` → ``HNSW`` (``M``,
``efConstruction``; searched with ``ef = max(ef_search, k)``), ``ivf`` → ``IVF_FLAT``, ``ivf_sq8`` → ``IVF_SQ8``,
``ivf_pq`` → ``IVF_PQ`` (``nlist``, ``m``, ``nbits``; searched with ``nprobe``; server only, Milvus Lite does not
implement it). Build parameters are always sent both flat and nested (``params={**p, "params": p}``): pymilvus 3
flattens them, and Milvus Lite silently ignores flat ones. ``M`` and ``efConstruction`` are always sent, because the
server rejects an HNSW index without them. ``train_size`` does not apply: Milvus trains IVF indexes per sealed
segment and searches growing segments exactly, so with an approximate index a ranking can change when a segment is
sealed (:meth:`~MilvusStore.flush`, the server on its own, Milvus Lite on reopening). Milvus Lite builds HNSW and
IVF indexes with ``faiss-cpu``, which is checked up front (without it Lite fails only later, when a segment is
sealed).

**Consistency.** Milvus reads are *Bounded* by default: a write becomes visible to searches up to
``common.gracefulTime`` (5 s) later, and on Milvus 2.3 a delete is not covered by *Session* consistency either.
*Strong* fixes both but waits for the next time tick on every read (~200 ms per search, measured). With the default
``consistency="auto"`` the store gets read-your-writes without paying that on every search: after a write (and
once after opening) the next read allocates a server timestamp and reads with ``guarantee_timestamp`` set to it,
paying one time-tick wait; later reads reuse that timestamp and answer in milliseconds until the next write. Id
lookups (the duplicate check of ``add``, delete counts) always get read-your-writes, without even that wait: they
read the server at the last allocated timestamp and take this store's own later writes from a local record, so a
loop of one-vector ``add`` calls does not wait for a time tick per call. ``consistency="strong"``,
``"bounded"``, ``"session"`` or ``"eventually"`` sets the level of :meth:`~MilvusStore.search`,
:meth:`~MilvusStore.get` and :meth:`~MilvusStore.count` instead (use ``"strong"`` to see other clients' writes
immediately). Milvus Lite is always immediately consistent and ignores all of this.

**Filters** are translated to Milvus expressions over the ``metadata`` JSON field. On a server that is
:func:`~audiovec.stores.filters.to_milvus_expr`, with mixed-type ``In`` lists split per type (Milvus 2.3 cannot
evaluate them, not even ints mixed with floats). Milvus Lite evaluates JSON paths in Python, where ``true == 1`` and
missing keys are NULL (so ``not (x == 1)`` drops records without ``x``), and it does not support
``metadata["x"] in [...]``. So on Lite every record also stores the JSON type of each top-level value in
``metadata_types``, and a leaf that Python could get wrong is rendered with a type guard,
``(metadata_types["x"] is not null and metadata_types["x"] == "n" and metadata["x"] == 1)``: exactly the
reference semantics of :func:`~audiovec.stores.filters.matches`. One compiler renders all three forms
(:func:`~audiovec.stores.filters.to_milvus_expr`, :func:`server_filter_expr`, :func:`lite_filter_expr`).

**In a directory**: ``get_store("milvus", directory=d, ...)`` (:meth:`MilvusStore.open_in`) keeps a Milvus Lite
database at ``d/milvus.db``, or, given a server ``uri``, uses the server.

**Deletes** are counted exactly: ids are looked up (or the filter is counted) before deleting, because Milvus reports
the number of ids *sent*, or a list of keys on Lite, not the number removed.

**Errors.** An unreachable server raises :class:`~audiovec.errors.StoreConnectionError` within ``timeout``; a Milvus
Lite path held by another process raises :class:`~audiovec.errors.StoreLockedError` at once, before Lite is started,
naming the database and the holder (its pid and command line when ``/proc`` shows them); a dimension above 32768
(the server's limit, which Lite does not enforce) raises :class:`~audiovec.errors.DimensionMismatchError` before
anything is contacted.

**Milvus Lite** releases its in-process server (and the directory lock) when the last store on that path in this
process closes, so another process can open it afterwards. Lite pays tens of milliseconds per search at 100k rows
whatever the index, and evaluates filters row by row in Python: use it for development and small collections, a
server (or :class:`~audiovec.stores.faiss.FaissStore`) for speed.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
from numpy.typing import NDArray
from pydantic import ValidationError

from audiovec._optional import require
from audiovec.errors import (
    ConfigError,
    DimensionMismatchError,
    StoreConnectionError,
    StoreError,
)
from audiovec.stores import _milvus_lite as lite
from audiovec.stores._milvus_errors import is_connection_error, is_unimplemented, message, redact
from audiovec.stores._milvus_expr import TYPES_FIELD, lite_filter_expr, literal, server_filter_expr, value_types
from audiovec.stores.base import BaseVectorStore, ReadOnly, construct_store
from audiovec.stores.config import (
    INDEX_KINDS,
    FlatIndex,
    HNSWIndex,
    IndexArg,
    IVFFlatIndex,
    IVFPQIndex,
    IVFSQ8Index,
    SearchParams,
)
from audiovec.stores.filters import Filter
from audiovec.stores.persistence import StoreManifest
from audiovec.stores.records import INT64_MAX, MAX_K, MAX_STR_ID_BYTES, Id, IdType, RawHit
from audiovec.stores.validation import cap_k

__all__ = ["MAX_DIM", "Consistency", "MilvusStore", "lite_filter_expr", "server_filter_expr"]

log = logging.getLogger(__name__)

MAX_DIM = 32768
"""Largest vector dimension a Milvus server accepts (Milvus Lite accepts more; audiovec enforces it everywhere)."""

_M = TypeVar("_M", bound="MilvusStore")

Consistency = Literal["auto", "strong", "bounded", "session", "eventually"]
"""Read consistency of a :class:`MilvusStore` (see the module docs)."""

_LEVELS = {"strong": "Strong", "bounded": "Bounded", "session": "Session", "eventually": "Eventually"}
_MANIFEST_KEY = "audiovec.manifest"
_NEXT_ID_KEY = "audiovec.next_id"
_ID_BLOCK = 1024
_PK, _VEC, _META, _TYPES = "id", "vector", "metadata", TYPES_FIELD
_COLLECTION_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}\Z")
_SERVER_SCHEMES = ("http://", "https://", "tcp://", "unix:")
_BATCH_BYTES = 16 << 20  # request size cap for inserts (the server's gRPC limit is 64 MiB)
_BATCH_ROWS = 10_000
_IDS_PER_EXPR = 4096  # ids per `id in [...]` expression
_QUERY_WINDOW = 16384  # the server's offset+limit cap
_NQ_PER_SEARCH = 1024
_RECENT_MAX = 200_000  # ids remembered between two timestamp allocations (see MilvusStore._existing)
_STRONG_WINDOW = 6.0  # servers without AllocTimestamp: Strong reads this long after a write (gracefulTime 5 s)
_INDEX_TYPES = {"flat": "FLAT", "hnsw": "HNSW", "ivf": "IVF_FLAT", "ivf_sq8": "IVF_SQ8", "ivf_pq": "IVF_PQ"}
_METRICS = {"cosine": "COSINE", "ip": "IP", "l2": "L2"}


# ------------------------------------------------------------------------------------------- helpers
def _ids_expr(ids: Sequence[Id]) -> str:
    return f"{_PK} in [{', '.join(literal(i) for i in ids)}]"


def _chunks(seq: Sequence[Id], n: int) -> Iterator[Sequence[Id]]:
    for s in range(0, len(seq), n):
        yield seq[s : s + n]


# ------------------------------------------------------------------------------------------- the store
class MilvusStore(BaseVectorStore):
    """A vector store in a Milvus collection, on Milvus Lite or a Milvus server (see the module docs).

    Args:
        uri: A local path ending in ``.db`` (Milvus Lite, created if missing), ``http://host:19530`` for a server
            or cluster, or ``None`` for a temporary Milvus Lite database removed at :meth:`close`.
        dim: Vector dimension (1 to 32768); required for a new store, checked against an existing one.
        metric: ``"cosine"`` (default for new stores), ``"ip"`` or ``"l2"``; checked against an existing store.
        index: Index config, kind name or dict (``flat``, ``hnsw``, ``ivf``, ``ivf_sq8``, ``ivf_pq``); default
            :class:`~audiovec.stores.config.HNSWIndex`. When reopening, only search-time fields (``ef_search``,
            ``nprobe``) may differ.
        id_type: ``"int"`` or ``"str"``: create the collection at once with that primary-key type. By default the
            first batch decides and the collection is created then.
        collection: Collection name (letters, digits, ``_``; not starting with a digit).
        token: Server token (``"user:password"`` or an API key).
        user: Server user name (with ``password``; ignored when ``token`` is given).
        password: Server password.
        db_name: Server database (default: the server's default database).
        consistency: Read consistency (see the module docs): ``"auto"`` (read-your-writes at Bounded cost),
            ``"strong"``, ``"bounded"``, ``"session"`` or ``"eventually"``.
        timeout: Seconds to wait for the connection and for each request (loading a collection gets at least
            120 s).

    Raises:
        DimensionMismatchError: ``dim`` above 32768 (checked before connecting), or an existing collection opened
            with another ``dim``.
        ConfigError: Invalid arguments; an existing store opened with another metric, index structure or
            ``id_type``; ``ivf_pq`` on Milvus Lite.
        StoreConnectionError: The server cannot be reached within ``timeout``.
        StoreLockedError: Another process has the Milvus Lite database open (the message names it).
        StoreError: The Milvus Lite path is a file, or a directory that is not a Milvus Lite database; the
            collection was not created by audiovec or does not match its manifest.
        MissingDependencyError: ``pymilvus`` (or ``milvus-lite`` for a local path, or ``faiss-cpu`` for an HNSW/IVF
            index on Milvus Lite) is not installed.

    Example:
        >>> import numpy as np
        >>> from audiovec.stores.milvus import MilvusStore
        >>> with MilvusStore("clips.db", dim=4, metric="l2", index="flat") as store:  # doctest: +SKIP
        ...     store.add(np.eye(4, dtype=np.float32), ids=["a", "b", "c", "d"])
        ...     store.search(np.array([0, 1, 0, 0], np.float32), k=1)[0][0].id
        ['a', 'b', 'c', 'd']
        'b'
    """

    name = "milvus"
    supported_indexes = INDEX_KINDS
    default_index = "hnsw"

    def __init__(
        self,
        uri: str | os.PathLike[str] | None = None,
        *,
        dim: int | None = None,
        metric: str | None = None,
        index: IndexArg = None,
        id_type: str | None = None,
        collection: str = "audiovec",
        token: str = "",
        user: str = "",
        password: str = "",
        db_name: str = "",
        consistency: Consistency = "auto",
        timeout: float = 30.0,
    ) -> None:
        super().__init__()
        self._client: Any = None
        self._lite_path: str | None = None
        self._tmpdir: str | None = None
        self._has_collection = False
        self._typed_meta = False
        self._reserved_next = 0
        self._saved_next = 0
        self._read_ts = 0  # guarantee timestamp covering all our writes; 0 = allocate one at the next read
        self._check_ts = 0  # timestamp id lookups read at; our writes since then are in _recent
        self._recent: dict[Id, bool] = {}  # id -> exists, for ids this store wrote after _check_ts
        self._ts_supported = True
        self._strong_until = 0.0
        # ---- validation that needs no connection (dimension limit first: the issue asks for it before any call)
        if dim is not None and not isinstance(dim, bool) and isinstance(dim, (int, np.integer)) and dim > MAX_DIM:
            raise DimensionMismatchError(f"dim={int(dim)} exceeds Milvus' maximum vector dimension of {MAX_DIM}")
        if not isinstance(collection, str) or not _COLLECTION_RE.match(collection):
            raise ConfigError(
                f"collection must be a Milvus name ([A-Za-z_][A-Za-z0-9_]*, at most 255 characters), got {collection!r}"
            )
        if consistency not in ("auto", *_LEVELS):
            raise ConfigError(f"consistency must be one of auto, {', '.join(_LEVELS)}; got {consistency!r}")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise ConfigError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self._check_arguments(dim, metric, index, id_type)
        self._collection = collection
        self._consistency: Consistency = consistency
        self._timeout = float(timeout)
        self._pymilvus = require("pymilvus", "milvus", "MilvusStore")
        target = self._resolve_uri(uri)
        self.uri = redact(target)
        """The Milvus Lite ``.db`` path or the server address (credentials in the uri are masked)."""
        try:
            self._connect(target, token=token, user=user, password=password, db_name=db_name)
            self._open(dim, metric, index, id_type)
        except BaseException:
            self._closed = True
            self._release()
            raise

    @classmethod
    def open_in(cls: type[_M], directory: str | os.PathLike[str], **params: Any) -> _M:
        """Create or open the store kept in ``directory`` (what ``get_store("milvus", directory=...)`` calls).

        Without a ``uri`` the store is a Milvus Lite database at ``directory/milvus.db``. With a server ``uri``
        (``http://``, ``https://``, ``tcp://``, ``unix:``) the server holds everything and ``directory`` is not used
        (the store keeps no local files).

        Args:
            directory: The folder that holds the Milvus Lite database (created when missing).
            **params: The other constructor arguments (``dim``, ``collection``, ``uri`` of a server...).

        Raises:
            ConfigError: ``params`` holds a Milvus Lite ``uri`` (a local path) too, or arguments the constructor
                does not take.
        """
        uri = params.get("uri")
        if uri is not None and not os.fsdecode(uri).lower().startswith(_SERVER_SCHEMES):
            raise ConfigError(
                f"milvus: give directory= or a Milvus Lite uri={os.fsdecode(uri)!r}, not both (a server uri may be "
                "combined with directory=)"
            )
        if uri is None:
            params = {**params, "uri": Path(directory) / "milvus.db"}
        return construct_store(cls, params, cls.name)

    # ------------------------------------------------------------------ properties
    collection: ReadOnly[str] = ReadOnly("_collection", "The Milvus collection name.")

    @property
    def is_lite(self) -> bool:
        """Whether this store runs on Milvus Lite (a local path) rather than a server."""
        return self._lite_path is not None

    # ------------------------------------------------------------------ connection
    def _resolve_uri(self, uri: str | os.PathLike[str] | None) -> str:
        if uri is None:
            self._tmpdir = tempfile.mkdtemp(prefix="audiovec-milvus-")
            return str(Path(self._tmpdir) / "milvus.db")
        if not isinstance(uri, (str, os.PathLike)):
            raise ConfigError(f"uri must be a str or path, got {type(uri).__name__}")
        text = os.fsdecode(uri)
        if text.lower().startswith(_SERVER_SCHEMES):
            return text
        if "://" in text:
            raise ConfigError(f"unsupported uri scheme in {text!r}; use http://, https://, tcp://, unix: or a .db path")
        return lite.check_path(text)

    def _connect(self, target: str, *, token: str, user: str, password: str, db_name: str) -> None:
        pymilvus = self._pymilvus
        is_lite = not target.lower().startswith(_SERVER_SCHEMES)
        if is_lite:
            require("milvus_lite", "milvus", "MilvusStore on a local .db path (Milvus Lite)", package="milvus-lite")
            lite.check_unlocked(target)
            Path(target).parent.mkdir(parents=True, exist_ok=True)
        kwargs: dict[str, Any] = {"uri": target, "timeout": self._timeout, "dedicated": True}
        if not is_lite:
            kwargs.update(token=token, user=user, password=password, db_name=db_name)
        t0 = time.monotonic()
        try:
            self._client = pymilvus.MilvusClient(**kwargs)
        except Exception as err:
            if is_lite:
                raise lite.open_error(target, message(err)) from err
            raise StoreConnectionError(
                f"cannot connect to the Milvus server at {self.uri} (waited {time.monotonic() - t0:.1f} s, "
                f"timeout={self._timeout:g} s): {message(err)}"
            ) from err
        if is_lite:
            self._lite_path = target
            lite.acquire(target)
            self.path = Path(target)

    # ------------------------------------------------------------------ calls and errors
    @contextlib.contextmanager
    def _calling(self, what: str) -> Iterator[None]:
        try:
            yield
        except (ConfigError, StoreError):
            raise
        except Exception as err:
            if is_connection_error(err):
                raise StoreConnectionError(
                    f"Milvus {what} failed: the {'Milvus Lite database' if self.is_lite else 'server'} at "
                    f"{self.uri} is unreachable or did not answer within {self._timeout:g} s ({message(err)})"
                ) from err
            raise StoreError(f"Milvus {what} on collection {self._collection!r} failed: {message(err)}") from err

    def _alloc_ts(self) -> int | None:
        """A fresh server timestamp; None (and Strong-window mode from now on) without AllocTimestamp."""
        try:
            with self._calling("timestamp allocation"):
                return int(self._client._get_connection().alloc_timestamp(timeout=self._timeout))
        except StoreError as err:
            if not is_unimplemented(err):
                raise
            log.info("Milvus AllocTimestamp is not available (%s); using Strong reads after writes", err)
            self._ts_supported = False
            self._strong_until = time.monotonic() + _STRONG_WINDOW
            return None

    def _read_kwargs(self, user_facing: bool) -> dict[str, Any]:
        """Consistency arguments for one read (see the module docs)."""
        if self.is_lite:
            return {}
        if user_facing and self._consistency != "auto":
            return {"consistency_level": _LEVELS[self._consistency]}
        if self._ts_supported and self._read_ts == 0:
            ts = self._alloc_ts()
            if ts is not None:  # it covers every write so far: id lookups can use it too
                self._read_ts = self._check_ts = ts
                self._recent.clear()
        if self._ts_supported:
            return {"consistency_level": "Customized", "guarantee_timestamp": self._read_ts}
        if time.monotonic() < self._strong_until:
            return {"consistency_level": "Strong"}
        return {"consistency_level": "Bounded"}

    def _wrote(self, ids: Sequence[Id] | None = None, *, exist: bool = True) -> None:
        """Record a write: the next read needs a new timestamp; id lookups remember ``ids`` (None: unknown ids)."""
        self._read_ts = 0
        self._strong_until = time.monotonic() + _STRONG_WINDOW
        if ids is None:
            self._check_ts = 0
            self._recent.clear()
        else:
            for i in ids:
                self._recent[i] = exist

    # ------------------------------------------------------------------ open / create
    def _open(self, dim: int | None, metric: str | None, index: IndexArg, id_type: str | None) -> None:
        c = self._client
        with self._calling("describe_collection"):
            exists = bool(c.has_collection(self._collection, timeout=self._timeout))
            desc = c.describe_collection(self._collection, timeout=self._timeout) if exists else None
        if desc is None:
            self._configure(dim, metric, index, id_type)
            self._check_backend_support()
            if id_type is not None:
                self._create_collection(id_type)  # type: ignore[arg-type]
            return
        manifest = self._read_manifest(desc)
        effective = self._check_reopen(f"collection {self._collection!r} at {self.uri}", manifest, dim, metric, index)
        self._configure(manifest.dim, manifest.metric, effective, None)
        self._check_backend_support()
        stored_kind, typed = self._check_schema(desc, manifest)
        if id_type is not None and id_type != stored_kind:
            raise ConfigError(
                f"collection {self._collection!r} holds {stored_kind} ids; it was opened with id_type={id_type!r}"
            )
        self._id_type = stored_kind
        self._typed_meta = typed
        props = desc.get("properties") or {}
        try:
            self._next_id = int(props.get(_NEXT_ID_KEY, 0))
        except (TypeError, ValueError):
            raise StoreError(f"collection {self._collection!r} has an invalid {_NEXT_ID_KEY} property") from None
        self._reserved_next = self._saved_next = self._next_id
        self._has_collection = True
        self._ensure_loaded()

    def _read_manifest(self, desc: dict[str, Any]) -> StoreManifest:
        props = desc.get("properties") or {}
        text = props.get(_MANIFEST_KEY)
        if text is None:
            raise StoreError(
                f"collection {self._collection!r} at {self.uri} exists but was not created by audiovec (it has no "
                f"{_MANIFEST_KEY!r} property); pick another collection= name"
            )
        try:
            manifest = StoreManifest.model_validate(json.loads(text))
        except (ValueError, ValidationError) as err:
            raise StoreError(f"collection {self._collection!r} has an unreadable {_MANIFEST_KEY}: {err}") from None
        if manifest.store != self.name:
            raise StoreError(f"collection {self._collection!r} holds a {manifest.store!r} store, not a milvus store")
        return manifest

    def _check_schema(self, desc: dict[str, Any], manifest: StoreManifest) -> tuple[IdType, bool]:
        fields = {f["name"]: f for f in desc.get("fields", [])}
        dt = self._pymilvus.DataType
        pk, vec, meta = fields.get(_PK), fields.get(_VEC), fields.get(_META)
        problems = []
        if pk is None or not pk.get("is_primary") or pk.get("type") not in (dt.INT64, dt.VARCHAR):
            problems.append(f"no INT64/VARCHAR primary key {_PK!r}")
        if (
            vec is None
            or vec.get("type") != dt.FLOAT_VECTOR
            or int(vec.get("params", {}).get("dim", -1)) != manifest.dim
        ):
            problems.append(f"no {manifest.dim}-d FLOAT_VECTOR field {_VEC!r}")
        if meta is None or meta.get("type") != dt.JSON:
            problems.append(f"no JSON field {_META!r}")
        if problems:
            raise StoreError(
                f"collection {self._collection!r} does not match its audiovec manifest: {'; '.join(problems)}"
            )
        assert pk is not None
        kind: IdType = "int" if pk["type"] == dt.INT64 else "str"
        typed = _TYPES in fields
        if self.is_lite and not typed:
            raise StoreError(f"collection {self._collection!r} lacks the {_TYPES!r} field Milvus Lite filters need")
        return kind, typed

    def _check_backend_support(self) -> None:
        if not self.is_lite:
            return
        kind = self._index.kind
        if kind == "ivf_pq":
            raise ConfigError("Milvus Lite does not implement IVF_PQ; use ivf_sq8 or hnsw, or a Milvus server")
        if kind != "flat" and importlib.util.find_spec("faiss") is None:
            require("faiss", "faiss", f"Milvus Lite's {kind} index", package="faiss-cpu")

    def _index_params(self) -> tuple[str, dict[str, Any]]:
        cfg = self._index
        if isinstance(cfg, HNSWIndex):
            return "HNSW", {"M": cfg.m, "efConstruction": cfg.ef_construction}
        if isinstance(cfg, IVFPQIndex):
            return "IVF_PQ", {"nlist": cfg.nlist, "m": cfg.resolved_m(self._dim), "nbits": cfg.pq_nbits}
        if isinstance(cfg, (IVFFlatIndex, IVFSQ8Index)):
            return _INDEX_TYPES[cfg.kind], {"nlist": cfg.nlist}
        assert isinstance(cfg, FlatIndex)
        return "FLAT", {}

    def _create_collection(self, kind: IdType) -> None:
        pm = self._pymilvus
        dt = pm.DataType
        schema = pm.MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        if kind == "int":
            schema.add_field(_PK, dt.INT64, is_primary=True)
        else:
            schema.add_field(_PK, dt.VARCHAR, is_primary=True, max_length=MAX_STR_ID_BYTES)
        schema.add_field(_VEC, dt.FLOAT_VECTOR, dim=self._dim)
        schema.add_field(_META, dt.JSON)
        if self.is_lite:
            schema.add_field(_TYPES, dt.JSON)
        index_type, build = self._index_params()
        index_params = pm.MilvusClient.prepare_index_params()
        # pymilvus 3 flattens params; Milvus Lite reads only the nested "params" key: send both.
        index_params.add_index(
            _VEC, index_type=index_type, metric_type=_METRICS[self._metric], params={**build, "params": dict(build)}
        )
        manifest = self._new_manifest().model_dump(mode="json")
        props = {_MANIFEST_KEY: json.dumps(manifest, separators=(",", ":"))}
        props[_NEXT_ID_KEY] = str(self._next_id)
        c = self._client
        timeout = max(self._timeout, 120.0)
        try:
            with self._calling("create_collection"):
                if self.is_lite:
                    # pymilvus waits for a new index with AllocTimestamp, which Milvus Lite's in-process gRPC server
                    # does not implement (it logs a traceback); Lite builds the index of an empty collection at once
                    c.create_collection(self._collection, schema=schema, properties=props, timeout=timeout)
                    c.create_index(self._collection, index_params, timeout=timeout, sync=False)
                    c.load_collection(self._collection, timeout=timeout)
                else:
                    c.create_collection(
                        self._collection, schema=schema, index_params=index_params, properties=props, timeout=timeout
                    )
        except BaseException:
            # create_collection is create + index + load, not atomic: do not leave an index-less collection behind
            with contextlib.suppress(Exception):
                if c.has_collection(self._collection, timeout=self._timeout):
                    c.drop_collection(self._collection, timeout=self._timeout)
            raise
        self._id_type = kind
        self._typed_meta = self.is_lite
        self._reserved_next = self._saved_next = self._next_id
        self._has_collection = True
        self._wrote()

    def _ensure_loaded(self) -> None:
        c = self._client
        with self._calling("load_collection"):
            state = c.get_load_state(self._collection, timeout=self._timeout)
            loaded = "Loaded" in str(state.get("state", "")) if isinstance(state, dict) else False
            if not loaded:
                c.load_collection(self._collection, timeout=max(self._timeout, 120.0))
        self._wrote()  # the first read after opening waits for everything written before

    # ------------------------------------------------------------------ ids
    def _set_next_id(self, value: int) -> None:
        with self._calling("alter_collection_properties"):
            self._client.alter_collection_properties(
                self._collection, properties={_NEXT_ID_KEY: str(value)}, timeout=self._timeout
            )

    def _reserve(self, ids: list[Id]) -> None:
        """Persist ``audiovec.next_id`` ahead of the ids about to be written (never reuse a generated id)."""
        if self._id_type != "int" or not ids:
            return
        need = max(max(i for i in ids if isinstance(i, int)) + 1, self._next_id)
        if need <= self._reserved_next:
            return
        reserve = min(need + _ID_BLOCK, INT64_MAX + 1)
        self._set_next_id(reserve)
        self._reserved_next = reserve

    # ------------------------------------------------------------------ hooks
    def _create_files(self, directory: Path) -> None:  # pragma: no cover - MilvusStore has no directory layout
        raise NotImplementedError

    def _load(self, directory: Path | None) -> None:  # pragma: no cover - opening is done by _open
        raise NotImplementedError

    def _query(self, expr: str, fields: list[str], *, user_facing: bool = False) -> list[dict[str, Any]]:
        with self._calling("query"):
            rows = self._client.query(
                self._collection,
                filter=expr,
                output_fields=fields,
                timeout=self._timeout,
                **self._read_kwargs(user_facing),
            )
        return list(rows)

    def _existing(self, ids: list[Id]) -> list[Id]:
        """Which ``ids`` exist, without a time-tick wait after each of this store's own writes.

        The server is read at ``_check_ts`` (allocated once), and this store's writes since then come from
        ``_recent``: so a loop of one-vector ``add`` calls does not wait ~200 ms per call for its duplicate check.
        """
        if not self._has_collection or not ids:
            return []
        read: dict[str, Any] | None = None
        if not self.is_lite and self._ts_supported:
            if self._check_ts == 0 or len(self._recent) > _RECENT_MAX:
                ts = self._alloc_ts()
                if ts is not None:
                    self._check_ts = self._read_ts = ts
                    self._recent.clear()
            if self._ts_supported:
                read = {"consistency_level": "Customized", "guarantee_timestamp": self._check_ts}
        ask = [i for i in ids if i not in self._recent]
        found: set[Id] = set()
        for chunk in _chunks(ask, _IDS_PER_EXPR):
            if read is None:
                rows = self._query(_ids_expr(chunk), [_PK])
            else:
                with self._calling("query"):
                    rows = self._client.query(
                        self._collection, filter=_ids_expr(chunk), output_fields=[_PK], timeout=self._timeout, **read
                    )
            found.update(self._pk(r[_PK]) for r in rows)
        return [i for i in ids if self._recent.get(i, i in found)]

    def _pk(self, value: Any) -> Id:
        return int(value) if self._id_type == "int" else str(value)

    def _rows(self, vectors: NDArray[np.float32], ids: list[Id], metas: list[str]) -> Iterator[list[dict[str, Any]]]:
        batch: list[dict[str, Any]] = []
        size = 0
        row_bytes = 4 * self._dim + 32
        for j, id_ in enumerate(ids):
            row: dict[str, Any] = {_PK: id_, _VEC: vectors[j].tolist(), _META: metas[j]}
            if self._typed_meta:
                row[_TYPES] = value_types(metas[j])
            batch.append(row)
            size += row_bytes + len(metas[j])
            if size >= _BATCH_BYTES or len(batch) >= _BATCH_ROWS:
                yield batch
                batch, size = [], 0
        if batch:
            yield batch

    def _insert(self, vectors: NDArray[np.float32], ids: list[Id], metas: list[str], *, replace: bool) -> None:
        if not self._has_collection:
            self._create_collection("str" if isinstance(ids[0], str) else "int")
        self._reserve(ids)
        c = self._client
        done: list[Id] = []
        try:
            for batch in self._rows(vectors, ids, metas):
                with self._calling("upsert" if replace else "insert"):
                    if replace:
                        c.upsert(self._collection, batch, timeout=self._timeout)
                    else:
                        c.insert(self._collection, batch, timeout=self._timeout)
                done.extend(r[_PK] for r in batch)
                self._wrote(done[-len(batch) :])
        except BaseException:
            if done and not replace:  # keep add atomic: take back the batches that went in
                with contextlib.suppress(Exception):
                    self._delete_ids(done)
            raise

    def _search_params(self, k: int, params: SearchParams) -> dict[str, Any]:
        cfg = self._index
        sp: dict[str, Any] = {}
        if isinstance(cfg, HNSWIndex):
            sp["ef"] = max(params.ef_search or cfg.ef_search, k)
        elif isinstance(cfg, (IVFFlatIndex, IVFSQ8Index, IVFPQIndex)):
            sp["nprobe"] = min(params.nprobe or cfg.nprobe, cfg.nlist)
        return {"metric_type": _METRICS[self._metric], "params": sp}

    def _filter_expr(self, flt: Filter) -> str:
        return lite_filter_expr(flt) if self._typed_meta else server_filter_expr(flt)

    def _search(
        self, queries: NDArray[np.float32], k: int, flt: Filter | None, params: SearchParams
    ) -> list[list[RawHit]]:
        if not self._has_collection:
            return [[] for _ in range(len(queries))]
        k = cap_k(k, MAX_K, lambda: self._count_rows(flt, user_facing=True), "a Milvus search")
        expr = "" if flt is None else self._filter_expr(flt)
        search_params = self._search_params(k, params)
        read = self._read_kwargs(True)
        out: list[list[RawHit]] = []
        for s in range(0, len(queries), _NQ_PER_SEARCH):
            block = queries[s : s + _NQ_PER_SEARCH]
            with self._calling("search"):
                res = self._client.search(
                    self._collection,
                    data=[q.tolist() for q in block],
                    filter=expr,
                    limit=k,
                    output_fields=[_META],
                    search_params=search_params,
                    anns_field=_VEC,
                    timeout=self._timeout,
                    **read,
                )
            for row in res:
                hits: list[RawHit] = []
                for h in row:
                    meta = (h.get("entity") or {}).get(_META)
                    hits.append((self._pk(h["id"]), float(h["distance"]), meta if meta is not None else {}))
                out.append(hits)
        return out

    def _get(self, ids: list[Id]) -> list[tuple[Id, NDArray[np.float32], str | dict[str, Any]]]:
        if not self._has_collection:
            return []
        found: dict[Id, tuple[NDArray[np.float32], dict[str, Any]]] = {}
        for chunk in _chunks(ids, _IDS_PER_EXPR):
            for r in self._query(_ids_expr(chunk), [_PK, _VEC, _META], user_facing=True):
                found.setdefault(self._pk(r[_PK]), (np.asarray(r[_VEC], dtype=np.float32), r.get(_META) or {}))
        return [(i, found[i][0], found[i][1]) for i in ids if i in found]

    def _delete_ids(self, ids: Sequence[Id]) -> None:
        for chunk in _chunks(ids, _IDS_PER_EXPR):
            with self._calling("delete"):
                self._client.delete(self._collection, filter=_ids_expr(chunk), timeout=self._timeout)
            self._wrote(chunk, exist=False)

    def _delete(self, ids: list[Id]) -> int:
        present = self._existing(ids)
        if present:
            self._delete_ids(present)
        return len(present)

    def _delete_where(self, flt: Filter) -> int:
        n = self._count_rows(flt, user_facing=False)
        if n:
            with self._calling("delete"):
                self._client.delete(self._collection, filter=self._filter_expr(flt), timeout=self._timeout)
            self._wrote()
        return n

    def _count(self, flt: Filter | None) -> int:
        return self._count_rows(flt, user_facing=True)

    def _count_rows(self, flt: Filter | None, *, user_facing: bool) -> int:
        if not self._has_collection:
            return 0
        expr = "" if flt is None else self._filter_expr(flt)
        rows = self._query(expr, ["count(*)"], user_facing=user_facing)
        return int(rows[0]["count(*)"]) if rows else 0

    def _save(self) -> None:
        # Every acknowledged write is already durable (Milvus Lite's WAL, the server's log); what remains is the
        # exact next generated id.
        if self._has_collection and self._next_id != self._saved_next and self._client is not None:
            self._set_next_id(self._next_id)
            self._saved_next = self._reserved_next = self._next_id

    def save(self) -> None:
        """Record the exact next generated id (every acknowledged write is already durable).

        Raises:
            StoreError: The store is closed.
            StoreConnectionError: The server cannot be reached.
        """
        with self._lock:
            self._check_open()
            self._save()

    def close(self) -> None:
        """Save, disconnect, and release the Milvus Lite database when this was its last store in the process.

        Closing never fails because the server is gone: the data is already durable, and the generated ids reserved
        so far stay unused (the next generated id may then skip a few values).
        """
        with self._lock:
            if self._closed:
                return
            try:
                self._save()
            except StoreConnectionError as err:
                log.warning("closing %r without recording the next generated id: %s", self._collection, err)
            finally:
                self._closed = True
                self._release()

    def _release(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()
        if self._lite_path is not None:
            lite.release(self._lite_path)
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    # ------------------------------------------------------------------ extras
    def flush(self, *, wait_for_index: bool = True, timeout: float = 600.0) -> None:
        """Seal the collection's growing segments and (by default) wait until the index covers every row.

        Not needed for durability. A server seals segments and builds their index on its own; flush before a
        benchmark or a bulk search so that searches use the index rather than the brute-force path for growing
        segments. On Milvus Lite it turns the write-ahead log into indexed segments.

        Args:
            wait_for_index: Poll ``describe_index`` until no rows are pending.
            timeout: Seconds to wait for the flush and the index build.

        Raises:
            StoreError: The store is closed, the flush failed, or the index was still building after ``timeout``.
            StoreConnectionError: The server cannot be reached.
        """
        with self._lock:
            self._check_open()
            if not self._has_collection:
                return
            deadline = time.monotonic() + timeout
            with self._calling("flush"):
                self._client.flush(self._collection, timeout=timeout)
            while wait_for_index:
                with self._calling("describe_index"):
                    info = self._client.describe_index(self._collection, _VEC, timeout=self._timeout)
                pending, indexed = int(info.get("pending_index_rows", 0)), int(info.get("indexed_rows", 0))
                if pending == 0 and indexed >= int(info.get("total_rows", 0)):
                    break
                if time.monotonic() > deadline:
                    raise StoreError(
                        f"the index of {self._collection!r} was still building after {timeout:g} s "
                        f"({indexed} rows indexed, {pending} pending)"
                    )
                time.sleep(0.5)

    def drop(self) -> None:
        """Delete the collection with everything in it, then close the store.

        Raises:
            StoreError: The store is closed, or the drop failed.
        """
        with self._lock:
            self._check_open()
            try:
                if self._has_collection:
                    with self._calling("drop_collection"):
                        self._client.drop_collection(self._collection, timeout=self._timeout)
                    self._has_collection = False
            finally:
                self._closed = True
                self._release()

    def __repr__(self) -> str:
        if self._closed:
            state = "closed"
        else:
            try:
                state = f"count={self._count(None)}"
            except StoreError:
                state = "count=?"
        return (
            f"MilvusStore({self.uri!r}, collection={self._collection!r}, dim={self._dim}, metric={self._metric!r}, "
            f"index={self._index.kind!r}, {state})"
        )

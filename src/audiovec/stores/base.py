"""The template every built-in store extends: :class:`BaseVectorStore` implements the public API once.

The protocol and the contract it keeps are in :mod:`audiovec.stores.protocol`; the pieces the template is built
from live beside it: value types (:mod:`~audiovec.stores.records`), metric and index configs
(:mod:`~audiovec.stores.config`), input validation (:mod:`~audiovec.stores.validation`), the exact-search kernel
(:mod:`~audiovec.stores.kernel`) and store files (:mod:`~audiovec.stores.persistence`).
"""

from __future__ import annotations

import inspect
import os
import shutil
import threading
import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Generic, TypeVar, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from audiovec._files import fsync_dir
from audiovec.errors import ConfigError, DimensionMismatchError, DuplicateIdError, InvalidIdError, StoreError
from audiovec.stores.config import (
    FlatIndex,
    IndexArg,
    IndexConfig,
    IVFPQIndex,
    Metric,
    SearchParams,
    parse_index,
    parse_metric,
    parse_search_params,
)
from audiovec.stores.filters import Filter, FilterLike, parse_filter
from audiovec.stores.journal import Journal, JournalRecord
from audiovec.stores.kernel import raw_to_score_distance
from audiovec.stores.persistence import StoreManifest, new_manifest, read_manifest, write_manifest
from audiovec.stores.records import INT64_MAX, Hit, Id, IdsArg, IdType, MetadataArg, RawHit, Record, new_hit
from audiovec.stores.validation import check_k, load_metadata, prepare_ids, prepare_metadata, prepare_vectors

__all__ = ["BaseVectorStore", "ReadOnly", "construct_store"]

_S = TypeVar("_S")
_T = TypeVar("_T")


class ReadOnly(Generic[_T]):
    """A read-only public attribute backed by a private one: ``dim: ReadOnly[int] = ReadOnly("_dim", "doc")``.

    What a ``@property`` that only returns ``self._dim`` does, in one line; assigning to it raises AttributeError.
    """

    def __init__(self, attr: str, doc: str) -> None:
        self._attr = attr
        self.__doc__ = doc

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self._name = name

    @overload
    def __get__(self, obj: None, owner: type[Any] | None = None) -> ReadOnly[_T]: ...

    @overload
    def __get__(self, obj: object, owner: type[Any] | None = None) -> _T: ...

    def __get__(self, obj: object | None, owner: type[Any] | None = None) -> ReadOnly[_T] | _T:
        if obj is None:
            return self
        value: _T = getattr(obj, self._attr)
        return value

    def __set__(self, obj: object, value: Any) -> None:
        raise AttributeError(f"{type(obj).__name__}.{self._name} is read-only")


def construct_store(cls: type[_S], kwargs: Mapping[str, Any], label: str) -> _S:
    """``cls(**kwargs)``, with arguments the constructor does not take reported as a ConfigError.

    Raises:
        ConfigError: ``kwargs`` do not fit the constructor's signature (``label`` names the store in the message).
    """
    try:
        inspect.signature(cls).bind(**kwargs)
    except TypeError as err:
        raise ConfigError(f"invalid arguments for store {label!r}: {err}") from None
    return cls(**kwargs)


class BaseVectorStore(ABC):
    """Shared implementation of the :class:`~audiovec.stores.VectorStore` API; backends implement the ``_`` hooks.

    The public methods validate everything (vectors, ids, metadata, ``k``, filters, search params) and take a
    re-entrant lock, so backends receive clean input: ``float32[n, dim]`` arrays (unit-normalised for cosine),
    lists of plain ``int``/``str`` ids without repeats, metadata as compact JSON text, parsed filters.

    Directory-backed stores call :meth:`_open_or_create` from their constructor, which reads or writes the
    manifest, checks a reopened store against the ``dim``/``metric``/``index`` given, and creates new stores in
    a temporary sibling directory renamed into place (a crash never leaves a half-created store).
    :meth:`open_in` (what ``get_store(name, directory=...)`` calls) passes the directory as ``path``; a backend
    whose constructor names its location otherwise overrides it.

    Class attributes:
        name: Registry name.
        supported_indexes: Index kinds the backend implements.
        default_index: Index kind used when none is given.
    """

    name: ClassVar[str] = ""
    supported_indexes: ClassVar[tuple[str, ...]] = ("flat",)
    default_index: ClassVar[str] = "flat"
    _insert_rejects_duplicates: ClassVar[bool] = False
    """Whether :meth:`_insert` itself refuses, atomically, ids that are already stored (raising
    :meth:`_duplicates_error`); then :meth:`add` skips its own lookup of the batch's ids beforehand."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._closed = False
        self._dim = 0
        self._metric: Metric = "cosine"
        self._index: IndexConfig = FlatIndex()
        self._id_type: IdType | None = None
        self._next_id = 0
        self.path: Path | None = None
        self._journal: Journal | None = None

    @classmethod
    def open_in(cls: type[_S], directory: str | os.PathLike[str], **params: Any) -> _S:
        """Create or open the store kept in ``directory`` (what ``get_store(name, directory=...)`` calls).

        The default passes ``path=directory`` to the constructor, which suits every store whose constructor
        takes its directory as ``path`` (:class:`~audiovec.stores.ExactStore`,
        :class:`~audiovec.stores.FaissStore`). A backend that names its location otherwise overrides this.

        Args:
            directory: The store's directory (created when missing).
            **params: The other constructor arguments (``dim``, ``metric``, ``index``...).

        Raises:
            ConfigError: ``params`` names a ``path`` too, the constructor takes no ``path``, or other arguments
                do not fit the constructor.
        """
        label = str(getattr(cls, "name", "") or cls.__qualname__)
        if "path" in params:
            raise ConfigError(f"store {label!r}: give directory= or path=, not both")
        if "path" not in inspect.signature(cls).parameters:
            raise ConfigError(
                f"store {label!r} ({cls.__qualname__}) takes no 'path' argument; it must override the "
                "classmethod open_in(directory, **params) to say where it keeps its files"
            )
        return construct_store(cls, {**params, "path": Path(directory)}, label)

    # ------------------------------------------------------------------ properties
    dim: ReadOnly[int] = ReadOnly("_dim", "Vector dimension.")
    metric: ReadOnly[Metric] = ReadOnly("_metric", "``cosine``, ``ip`` or ``l2``.")
    id_type: ReadOnly[IdType | None] = ReadOnly("_id_type", "``int`` or ``str``; ``None`` while no kind is fixed.")
    index: ReadOnly[IndexConfig] = ReadOnly("_index", "The index configuration.")
    closed: ReadOnly[bool] = ReadOnly("_closed", "Whether :meth:`close` was called.")

    # ------------------------------------------------------------------ setup
    def _check_arguments(
        self, dim: int | None, metric: str | None, index: IndexArg, id_type: str | None
    ) -> tuple[int | None, Metric | None, IndexConfig | None]:
        """Validate the constructor's store arguments without touching the store; ``None`` means "not given".

        Returns:
            ``(dim, metric, index)`` parsed. The index is checked against this backend's supported kinds and,
            when ``dim`` is given, against the dimension (an IVF-PQ ``pq_m`` must divide it).

        Raises:
            ConfigError: An invalid ``dim``, metric, index or ``id_type``.
        """
        if dim is not None and (isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or int(dim) < 1):
            raise ConfigError(f"dim must be a positive int, got {dim!r}")
        if id_type is not None and id_type not in ("int", "str"):
            raise ConfigError(f"id_type must be 'int' or 'str', got {id_type!r}")
        parsed_metric = None if metric is None else parse_metric(metric)
        idx = None if index is None else parse_index(index, self.default_index)
        if idx is not None:
            if idx.kind not in self.supported_indexes:
                raise ConfigError(
                    f"{type(self).__name__} does not support index {idx.kind!r}; "
                    f"supported: {', '.join(self.supported_indexes)}"
                )
            if dim is not None and isinstance(idx, IVFPQIndex):
                idx.resolved_m(int(dim))
        return (None if dim is None else int(dim)), parsed_metric, idx

    def _configure(self, dim: int | None, metric: str | None, index: IndexArg, id_type: str | None) -> None:
        if dim is None:
            raise ConfigError(f"{type(self).__name__}: dim is required to create a new store")
        given = index if index is not None else self.default_index
        checked_dim, parsed_metric, idx = self._check_arguments(dim, metric, given, id_type)
        assert checked_dim is not None and idx is not None
        self._dim = checked_dim
        self._metric = parsed_metric or "cosine"
        self._validate_index(idx)
        self._index = idx
        self._id_type = id_type  # type: ignore[assignment]

    def _validate_index(self, index: IndexConfig) -> None:  # noqa: B027 - optional hook
        """Backend-specific checks of an index config against ``self.dim`` (raise ConfigError)."""

    def _check_reopen(
        self, where: str, manifest: StoreManifest, dim: int | None, metric: str | None, index: IndexArg
    ) -> IndexConfig:
        """Check the arguments a store is reopened with against its manifest.

        Args:
            where: What holds the store, for messages (a path, ``collection 'x' at uri``).
            manifest: The stored manifest.
            dim: The ``dim`` given, or ``None``.
            metric: The metric given, or ``None``.
            index: The index given, or ``None``.

        Returns:
            The index config to use: the stored one, with the search-time fields of ``index`` when given.

        Raises:
            DimensionMismatchError: Another ``dim``.
            ConfigError: Another metric or index structure.
        """
        if dim is not None and int(dim) != manifest.dim:
            raise DimensionMismatchError(f"{where} holds {manifest.dim}-d vectors; it was opened with dim={dim}")
        if metric is not None and parse_metric(metric) != manifest.metric:
            raise ConfigError(f"{where} uses metric {manifest.metric!r}; it was opened with metric={metric!r}")
        if index is None:
            return manifest.index
        given = parse_index(index, self.default_index)
        built, asked = manifest.index.structure(), given.structure()
        if built != asked:
            differ = sorted(k for k in built.keys() | asked.keys() if built.get(k) != asked.get(k))
            raise ConfigError(
                f"{where} was built with index {built}; it was opened with {asked} ({', '.join(differ)} cannot "
                f"change after creation; only {', '.join(manifest.index.tunable_fields) or 'nothing'} may change)"
            )
        return given

    def _new_manifest(self) -> StoreManifest:
        """The manifest of this store, created now (after :meth:`_configure`)."""
        return new_manifest(self.name, self._dim, self._metric, self._index)

    def _open_or_create(
        self,
        path: str | os.PathLike[str] | None,
        *,
        dim: int | None,
        metric: str | None,
        index: IndexArg,
        id_type: str | None,
        journal: bool = True,
    ) -> bool:
        """Open the store at ``path`` or create it; ``path=None`` makes an in-memory store.

        With ``journal`` (the default), every change is also written to the directory's write-ahead journal
        (:mod:`audiovec.stores.journal`) before the call returns, and an existing journal is replayed on open.

        Returns:
            Whether an existing store was opened.

        Raises:
            DimensionMismatchError: Reopened with another ``dim``.
            ConfigError: Reopened with another metric, index structure or ``id_type``; or invalid arguments.
            StoreError: ``path`` is not a store of this backend.
        """
        if path is None:
            self._configure(dim, metric, index, id_type)
            self._load(None)
            return False
        p = Path(path)
        manifest = read_manifest(p)
        if manifest is None:
            self._configure(dim, metric, index, id_type)
            p.parent.mkdir(parents=True, exist_ok=True)
            tmp = p.parent / f".{p.name}.creating-{uuid.uuid4().hex[:8]}"
            tmp.mkdir()
            try:
                self._create_files(tmp)
                write_manifest(tmp, self._new_manifest())
                if p.exists():  # an empty directory: replace it
                    p.rmdir()
                os.replace(tmp, p)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            fsync_dir(p.parent)
            self.path = p
            self._load(p)
            self._start_journal(p, journal)
            return False
        if manifest.store != self.name:
            raise StoreError(f"{p} holds a {manifest.store!r} store, not a {self.name!r} store")
        effective = self._check_reopen(str(p), manifest, dim, metric, index)
        self._configure(manifest.dim, manifest.metric, effective, None)
        self.path = p
        self._load(p)
        if id_type is not None and self._id_type is not None and id_type != self._id_type:
            raise ConfigError(f"{p} holds {self._id_type} ids; it was opened with id_type={id_type!r}")
        if id_type is not None and self._id_type is None:
            self._id_type = id_type  # type: ignore[assignment]
        self._start_journal(p, journal)
        return True

    def _start_journal(self, directory: Path, enabled: bool) -> None:
        """Remove interrupted writes' temporary files, replay the journal, and keep it open for writing."""
        for leftover in directory.glob(".*.tmp"):  # atomic writes that never finished (see audiovec._files)
            leftover.unlink(missing_ok=True)
        journal = Journal(directory)
        replayed = 0
        for record in journal.records():
            self._replay(record)
            replayed += 1
        if replayed and not enabled:  # fold the journal into the saved state before writing without it
            self._save()
            journal.reset()
        self._journal = journal if enabled else None
        if not enabled:
            journal.close()

    def _replay(self, record: JournalRecord) -> None:
        """Apply one journaled change, per id (add if absent, replace, remove): idempotent by construction."""
        ids = record.ids
        if not ids:
            return
        kind: IdType = "str" if isinstance(ids[0], str) else "int"
        if record.op == "delete":
            if self._id_type is not None:
                self._delete(ids)
            return
        assert record.vectors is not None and record.metas is not None
        vectors, metas = record.vectors, record.metas
        if record.op == "add" and self._id_type is not None:
            taken = set(self._existing(ids))
            if taken:
                keep = [i for i, id_ in enumerate(ids) if id_ not in taken]
                ids, vectors, metas = [ids[i] for i in keep], vectors[keep], [metas[i] for i in keep]
                if not ids:
                    return
        self._insert(vectors, ids, metas, replace=record.op == "upsert" and self._id_type is not None)
        self._commit_ids(ids, kind)

    def _log(self, record: JournalRecord) -> int:
        """Journal a change already applied (under the lock); the ticket to wait on, 0 without a journal."""
        return 0 if self._journal is None else self._journal.append(record)

    def _durable(self, ticket: int) -> None:
        """Wait (outside the lock) until the journaled change ``ticket`` is on disk."""
        if ticket and self._journal is not None:
            self._journal.wait(ticket)

    @property
    def journaled(self) -> bool:
        """Whether each change is on disk (in the store's journal) before the call that made it returns."""
        return self._journal is not None

    # ------------------------------------------------------------------ helpers for subclasses
    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"{type(self).__name__} is closed")

    def _prepare(self, vectors: ArrayLike, what: str = "vectors") -> NDArray[np.float32]:
        return prepare_vectors(vectors, self._dim, normalize=self._metric == "cosine", what=what)

    def _lookup_ids(self, ids: IdsArg, what: str = "ids") -> list[Id]:
        values, kind = prepare_ids(ids, what=what)
        if kind is not None and self._id_type is not None and kind != self._id_type:
            raise InvalidIdError(f"this store holds {self._id_type} ids; got {kind} {what}")
        if kind is not None and self._id_type is None:
            return []  # nothing stored yet
        return list(dict.fromkeys(values))

    def _new_ids(self, ids: IdsArg | None, n: int) -> tuple[list[Id], IdType]:
        if ids is None:
            if self._id_type == "str":
                return [uuid.uuid4().hex for _ in range(n)], "str"
            if self._next_id + n - 1 > INT64_MAX:
                raise InvalidIdError("no int ids left to generate (the store holds an id near 2**63)")
            return list(range(self._next_id, self._next_id + n)), "int"
        values, kind = prepare_ids(ids, n)
        if kind is None:
            return values, self._id_type or "int"
        if self._id_type is not None and kind != self._id_type:
            raise InvalidIdError(f"this store holds {self._id_type} ids; got {kind} ids")
        if len(set(values)) != len(values):
            seen: set[Id] = set()
            dup = [v for v in values if v in seen or seen.add(v)]  # type: ignore[func-returns-value]
            raise DuplicateIdError(
                f"{len(dup)} id(s) repeat within the batch, e.g. {dup[:5]}; nothing from this batch was stored"
            )
        return values, kind

    def _batch(
        self, vectors: ArrayLike, ids: IdsArg | None, metadata: MetadataArg
    ) -> tuple[NDArray[np.float32], list[Id], IdType, list[str]]:
        """Validate a whole batch of ``add``/``upsert``: vectors, ids (generated when ``None``), metadata."""
        x = self._prepare(vectors)
        new_ids, kind = self._new_ids(ids, len(x))
        return x, new_ids, kind, prepare_metadata(metadata, len(x))

    @staticmethod
    def _duplicates_error(taken: list[Id]) -> DuplicateIdError:
        """The error :meth:`add` raises for a batch whose ids ``taken`` are already stored."""
        return DuplicateIdError(
            f"{len(taken)} id(s) are already stored, e.g. {taken[:5]}; nothing from this batch was stored "
            "(use upsert to replace records)"
        )

    def _commit_ids(self, ids: list[Id], kind: IdType) -> None:
        if self._id_type is None:
            self._id_type = kind
        if kind == "int" and ids:
            top = max(ids)  # every id is an int for kind "int"
            if isinstance(top, int):
                self._next_id = max(self._next_id, top + 1)

    def _hits(self, rows: list[list[RawHit]]) -> list[list[Hit]]:
        metric, make, decode = self._metric, new_hit, load_metadata
        if metric == "cosine":
            return [
                [make(i, (score := float(v)), 1.0 - score, decode(m) if isinstance(m, str) else m) for i, v, m in row]
                for row in rows
            ]
        out: list[list[Hit]] = []
        for row in rows:
            hits = []
            for id_, raw, meta in row:
                score, distance = raw_to_score_distance(metric, float(raw))
                hits.append(make(id_, score, distance, decode(meta) if isinstance(meta, str) else meta))
            out.append(hits)
        return out

    # ------------------------------------------------------------------ public API
    def add(self, vectors: ArrayLike, ids: IdsArg | None = None, metadata: MetadataArg = None) -> list[Id]:
        """Insert new records.

        Args:
            vectors: ``float32[n, dim]`` (or one ``[dim]`` vector).
            ids: One id per vector, or ``None`` to generate them (see :mod:`audiovec.stores.protocol`).
            metadata: One JSON-able mapping per vector (or ``None``).

        Returns:
            The ids of the new records, in order.

        Raises:
            DuplicateIdError: An id is already stored or repeats in the batch; nothing was stored.
            DimensionMismatchError: Wrong vector width.
            InvalidVectorError: NaN/Inf, a zero vector in a cosine store, or a non-numeric array.
            InvalidIdError: Invalid ids, or ids of the other kind.
            InvalidMetadataError: Invalid metadata.
            StoreError: The store is closed.
        """
        with self._lock:
            self._check_open()
            x, new_ids, kind, metas = self._batch(vectors, ids, metadata)
            if len(x) == 0:
                return []
            if self._id_type is not None and not self._insert_rejects_duplicates:
                taken = self._existing(new_ids)
                if taken:
                    raise self._duplicates_error(taken)
            self._insert(x, new_ids, metas, replace=False)
            self._commit_ids(new_ids, kind)
            ticket = self._log(JournalRecord("add", new_ids, x, metas))
        self._durable(ticket)
        return new_ids

    def upsert(self, vectors: ArrayLike, ids: IdsArg, metadata: MetadataArg = None) -> list[Id]:
        """Insert records, replacing (vector and metadata) those whose id already exists.

        Args:
            vectors: ``float32[n, dim]`` (or one ``[dim]`` vector).
            ids: One id per vector (required).
            metadata: One mapping per vector; ``None`` gives replaced records empty metadata.

        Returns:
            The ids, in order.

        Raises:
            DuplicateIdError: An id repeats within the batch.
            DimensionMismatchError: Wrong vector width.
            InvalidVectorError: NaN/Inf or zero vectors (cosine).
            InvalidIdError: Missing or invalid ids.
            InvalidMetadataError: Invalid metadata.
            StoreError: The store is closed.
        """
        with self._lock:
            self._check_open()
            if ids is None:
                raise InvalidIdError("upsert needs ids (use add to generate them)")
            x, new_ids, kind, metas = self._batch(vectors, ids, metadata)
            if len(x) == 0:
                return []
            self._insert(x, new_ids, metas, replace=self._id_type is not None)
            self._commit_ids(new_ids, kind)
            ticket = self._log(JournalRecord("upsert", new_ids, x, metas))
        self._durable(ticket)
        return new_ids

    def search(
        self,
        queries: ArrayLike,
        k: int = 10,
        filter: FilterLike | None = None,
        *,
        params: SearchParams | Mapping[str, Any] | None = None,
    ) -> list[list[Hit]]:
        """Find the ``k`` most similar records for each query.

        Args:
            queries: ``float32[q, dim]`` or one ``[dim]`` query (the result then has one list).
            k: Hits per query, any int from 1: a search returns ``min(k, matching records)`` hits (Milvus returns
                at most :data:`~audiovec.stores.records.MAX_K`; see :func:`~audiovec.stores.validation.cap_k`).
            filter: A filter node or its dict form (see :mod:`audiovec.stores.filters`).
            params: Per-query search parameters (``ef_search``, ``nprobe``); inapplicable ones are ignored.

        Returns:
            One list of :class:`Hit` per query, best first (score descending).

        Raises:
            DimensionMismatchError: Wrong query width.
            InvalidVectorError: NaN/Inf or zero queries (cosine).
            FilterError: Invalid filter.
            ConfigError: Invalid ``k`` or params.
            StoreError: The store is closed.
        """
        with self._lock:
            self._check_open()
            q = self._prepare(queries, what="queries")
            kk = check_k(k)
            flt = None if filter is None else parse_filter(filter)
            sp = parse_search_params(params)
            if len(q) == 0:
                return []
            return self._hits(self._search(q, kk, flt, sp))

    def get(self, ids: IdsArg) -> list[Record]:
        """Fetch records by id.

        Args:
            ids: Ids to fetch (one id or a sequence).

        Returns:
            A :class:`Record` for each id that exists, in the order asked (missing ids are skipped, repeats
            returned once).

        Raises:
            InvalidIdError: Invalid ids or ids of the other kind.
            StoreError: The store is closed.
        """
        with self._lock:
            self._check_open()
            wanted = self._lookup_ids(ids)
            if not wanted:
                return []
            return [Record(i, v, load_metadata(m) if isinstance(m, str) else m) for i, v, m in self._get(wanted)]

    def delete(self, ids: IdsArg | None = None, *, filter: FilterLike | None = None) -> int:
        """Delete records by id or by filter (exactly one of the two).

        Args:
            ids: Ids to delete; ids that do not exist are ignored.
            filter: Delete every record that matches.

        Returns:
            The number of records deleted.

        Raises:
            ConfigError: Both or neither of ``ids`` and ``filter``.
            InvalidIdError: Invalid ids.
            FilterError: Invalid filter.
            StoreError: The store is closed.
        """
        with self._lock:
            self._check_open()
            if (ids is None) == (filter is None):
                raise ConfigError("delete needs exactly one of ids= or filter=")
            if filter is not None:
                flt = parse_filter(filter)
                if self._journal is None:
                    return self._delete_where(flt)
                wanted = self._ids_where(flt)
            else:
                wanted = self._lookup_ids(ids)  # type: ignore[arg-type]
            if not wanted:
                return 0
            n = self._delete(wanted)
            ticket = self._log(JournalRecord("delete", wanted)) if n else 0
        self._durable(ticket)
        return n

    def count(self, filter: FilterLike | None = None) -> int:
        """The number of records (that match ``filter``, when given).

        Raises:
            FilterError: Invalid filter.
            StoreError: The store is closed.
        """
        with self._lock:
            self._check_open()
            return self._count(None if filter is None else parse_filter(filter))

    def save(self) -> None:
        """Make every change durable (atomically); a no-op for in-memory stores.

        Raises:
            StoreError: The store is closed.
        """
        with self._lock:
            self._check_open()
            self._checkpoint()

    def _checkpoint(self) -> None:
        """Save the whole state, then remove the journal it now contains (under the lock)."""
        if self.path is not None:
            self._save()
            if self._journal is not None:
                self._journal.reset()

    def close(self) -> None:
        """Save (for stores with a path) and release resources. Closing twice is harmless."""
        with self._lock:
            if self._closed:
                return
            try:
                self._checkpoint()
            finally:
                self._closed = True
                if self._journal is not None:
                    self._journal.close()
                self._release()

    def __enter__(self) -> BaseVectorStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __len__(self) -> int:
        return self.count()

    def __contains__(self, id_: object) -> bool:
        if not isinstance(id_, (int, str)) or isinstance(id_, bool):
            return False
        if self._id_type is not None and self._id_type != ("int" if isinstance(id_, int) else "str"):
            return False
        try:
            return bool(self.get([id_]))
        except InvalidIdError:  # e.g. an int beyond int64: such an id cannot be stored
            return False

    def __repr__(self) -> str:
        where = str(self.path) if self.path is not None else "memory"
        state = "closed" if self._closed else f"count={self._count(None)}"
        return (
            f"{type(self).__name__}({where!r}, dim={self._dim}, metric={self._metric!r}, "
            f"index={self._index.kind!r}, {state})"
        )

    # ------------------------------------------------------------------ backend hooks
    @abstractmethod
    def _create_files(self, directory: Path) -> None:
        """Write the files of a new, empty store into ``directory`` (renamed into place afterwards)."""

    @abstractmethod
    def _load(self, directory: Path | None) -> None:
        """Open the store in ``directory`` (``None``: start an empty in-memory store)."""

    @abstractmethod
    def _existing(self, ids: list[Id]) -> list[Id]:
        """Which of ``ids`` are stored."""

    @abstractmethod
    def _insert(self, vectors: NDArray[np.float32], ids: list[Id], metas: list[str], *, replace: bool) -> None:
        """Store a validated batch; with ``replace``, existing ids are replaced (otherwise none exist)."""

    @abstractmethod
    def _search(
        self, queries: NDArray[np.float32], k: int, flt: Filter | None, params: SearchParams
    ) -> list[list[RawHit]]:
        """Per query, up to ``k`` hits best first, with the backend's native (raw) metric value."""

    @abstractmethod
    def _get(self, ids: list[Id]) -> list[tuple[Id, NDArray[np.float32], str | dict[str, Any]]]:
        """Records of the ``ids`` that exist, in the order given."""

    @abstractmethod
    def _delete(self, ids: list[Id]) -> int:
        """Delete the ``ids`` that exist; return how many."""

    @abstractmethod
    def _delete_where(self, flt: Filter) -> int:
        """Delete every record matching ``flt``; return how many."""

    def _ids_where(self, flt: Filter) -> list[Id]:
        """The ids of every record matching ``flt`` (journaled stores delete by filter through these ids)."""
        raise NotImplementedError(f"{type(self).__name__} cannot list the ids matching a filter")

    @abstractmethod
    def _count(self, flt: Filter | None) -> int:
        """Number of records (matching ``flt``)."""

    @abstractmethod
    def _save(self) -> None:
        """Persist atomically (only called when ``self.path`` is set)."""

    @abstractmethod
    def _release(self) -> None:
        """Free resources after the final save."""

"""FaissStore: an embedded, in-process FAISS index with SQLite metadata (the default store).

Index kinds (see :mod:`audiovec.stores.config` for the config models):

=========== ============================================= ===========================================
kind        faiss index                                   notes
=========== ============================================= ===========================================
``flat``    ``IndexIDMap2(IndexFlat)``                    exact
``hnsw``    ``IndexIDMap2(IndexHNSWFlat)``                default; deletes are tombstones (below)
``ivf``     ``IndexIVFFlat`` with its own ids             trains itself (below)
``ivf_pq``  ``IndexIVFPQ`` with its own ids               ``pq_m`` bytes per vector at 8 bits
``ivf_sq8`` ``IndexIVFScalarQuantizer(QT_8bit)``          1 byte per dimension
=========== ============================================= ===========================================

The IVF kinds store ids natively (``add_with_ids``) with a hash-table direct map, not behind ``IndexIDMap2``:
``IndexIDMap2.remove_ids`` assumes the wrapped index renumbers its entries like a flat index does, which IVF
indexes do not, and removing through the wrapper corrupts the mapping.

**Ids.** FAISS knows only int64 labels. Every stored vector gets a fresh internal label (``fid``, a counter that
is never reused); SQLite maps it to the user's id (``int`` or ``str``) and metadata. An upsert therefore adds the
new vector under a new ``fid`` and retires the old one, which is what makes HNSW upserts possible.

**Deletes in HNSW.** ``IndexHNSWFlat`` cannot remove vectors. Deleted (and replaced) ``fid`` s become
*tombstones*: the record leaves SQLite at once, the vector stays in the graph (it keeps the graph connected) and
every search excludes tombstones with an ``IDSelectorNot(IDSelectorBatch)``. :meth:`FaissStore.compact` rebuilds
the graph from the live vectors; :meth:`FaissStore.save` does so automatically once tombstones exceed
``compact_ratio`` of the index. Flat and IVF indexes remove vectors immediately.

**Training (IVF kinds).** Until ``index.train_threshold()`` vectors (default 39 per IVF cell) have been added,
vectors wait in an exact flat buffer, which is searched exactly, so a young IVF store already gives correct
results. When the threshold is reached (within one ``add`` or over many), the index trains on a random sample
of ``train_threshold()`` buffered vectors (seeded, so reproducible) and moves the whole buffer into the IVF lists.
:meth:`FaissStore.train` trains earlier, on everything buffered or on a sample you pass.

**Filters** are translated to SQL (:func:`audiovec.stores.filters.to_sqlite`) and evaluated by SQLite over the
metadata column, giving the set of matching ``fid`` s; it is cached per filter until the next write. When no more
than ``exact_threshold`` records match, the store searches their vectors exactly (with
:func:`~audiovec.stores.kernel.exact_search`), whatever the index; the filter keeps those vectors too (up to 64 MiB
over all cached filters), so repeated searches with one filter do not read them from the index again. Otherwise
the index runs with ``SearchParameters(sel=IDSelectorBatch(matches))``, so only matching vectors are candidates;
an ANN index can return fewer than ``k`` hits under a selective filter (HNSW runs out of graph, IVF out of probed
cells), and those queries are answered exactly. A search therefore returns ``min(k, matches)`` hits.

**Persistence** (a directory)::

    store/
      manifest.json       format, store="faiss", dim, metric, index config (written once)
      meta.sqlite         records(fid, uid, meta), tombstones(fid), state(generation, next ids, trained...)
      index-000007.faiss  the index of the committed generation named in meta.sqlite

Writes go to SQLite inside one open transaction. :meth:`FaissStore.save` writes the index of the next generation
to a temporary file, fsyncs it, renames it to ``index-<gen>.faiss``, then commits SQLite (which records the new
generation) and removes the old index file. A crash at any point leaves a consistent store: the last committed
generation with its own index file (files of other generations are removed when the store is next opened).
Changes not yet saved are lost in a crash, never half-applied.

**Threads.** ``threads=`` calls ``faiss.omp_set_num_threads`` (the process default). Calls with at most four
vectors or queries run on one thread: faiss parallelises over rows, so a single-vector call only pays OpenMP's
fork/join, which costs milliseconds when the cores are busy.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import sqlite3
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from audiovec._files import atomic_write, fsync_dir
from audiovec._optional import require
from audiovec.errors import ConfigError, DuplicateIdError, StoreError
from audiovec.stores.base import BaseVectorStore, ReadOnly
from audiovec.stores.config import INDEX_KINDS, HNSWIndex, IndexArg, IVFIndexBase, IVFPQIndex, SearchParams
from audiovec.stores.filters import Filter, filter_key, to_sqlite
from audiovec.stores.kernel import exact_search, merge_topk
from audiovec.stores.records import Id, RawHit

faiss = require("faiss", "faiss", "FaissStore", package="faiss-cpu")

__all__ = ["FaissStore", "set_threads"]

log = logging.getLogger(__name__)

_DB = "meta.sqlite"
_INDEX_RE = re.compile(r"index-(\d{6,})\.faiss\Z")
_CHUNK = 16384
_SERIAL_MAX = 4  # batches up to this size run on one OpenMP thread (see _serial_if_small)
_IN_CHUNK = 500  # fids per "fid IN (?, ...)" lookup
_FILTER_CACHE = 16  # filters whose matching fids (and selector) are kept until the next write
_VECTOR_CACHE_BYTES = 64 << 20  # matching vectors of small filters kept for exact filtered search
_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (fid INTEGER PRIMARY KEY, uid NOT NULL UNIQUE, meta TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tombstones (fid INTEGER PRIMARY KEY);
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def set_threads(n: int) -> None:
    """Set the number of OpenMP threads FAISS uses (process-wide).

    Raises:
        ConfigError: ``n`` is not a positive int.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"threads must be a positive int, got {n!r}")
    faiss.omp_set_num_threads(n)


@contextmanager
def _serial_if_small(n: int) -> Iterator[None]:
    """Run faiss on one OpenMP thread for batches of at most ``_SERIAL_MAX`` rows.

    faiss parallelises adds and searches over rows, so a one-vector call gains nothing from threads but still
    pays the fork/join of an OpenMP region: microseconds on an idle machine, milliseconds when the cores are
    oversubscribed (measured: a one-vector IVF add took 13 ms with 2 threads, 0.45 ms with 1).
    ``omp_set_num_threads`` sets the calling thread's own setting, so other threads are not affected.
    """
    if n > _SERIAL_MAX:
        yield
        return
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


@functools.lru_cache(maxsize=64)
def _lookup_sql(n: int) -> str:
    """The query fetching ``n`` records by fid."""
    return f"SELECT fid, uid, meta FROM records WHERE fid IN ({','.join('?' * n)})"


def _index_name(gen: int) -> str:
    return f"index-{gen:06d}.faiss"


@dataclass(slots=True)
class _Matches:
    """The records matching one filter, kept until the next write.

    Attributes:
        fids: Their fids, sorted.
        sel: An ``IDSelectorBatch`` over ``fids`` (``None`` when nothing matches).
        vectors: ``float32[len(fids), dim]``, their vectors in ``fids`` order, once an exact search needed them.
    """

    fids: NDArray[np.int64]
    sel: Any
    vectors: NDArray[np.float32] | None = None


class FaissStore(BaseVectorStore):
    """Vectors in a FAISS index, ids and metadata in SQLite, in one directory (see the module docs).

    Args:
        path: Store directory. An existing store is opened; a missing path (or an empty directory) gets a new
            store. ``None`` keeps everything in memory.
        dim: Vector dimension; required for a new store, checked against an existing one.
        metric: ``"cosine"`` (default for new stores), ``"ip"`` or ``"l2"``.
        index: Index config, kind name or dict; default :class:`~audiovec.stores.config.HNSWIndex`. When reopening,
            only ``ef_search``, ``nprobe`` and ``train_size`` may differ from the stored config.
        id_type: Fix the id kind (``"int"`` or ``"str"``) up front; by default the first batch decides.
        threads: FAISS OpenMP threads (process-wide), or ``None`` to leave the setting alone.
        compact_ratio: :meth:`save` rebuilds an HNSW index when tombstones exceed this fraction of it.
        exact_threshold: A filtered search is done exactly, over the matching vectors, when at most this many
            records match.
        journal: Write every change to the directory's write-ahead journal, flushed to disk, before the call
            returns (see :mod:`audiovec.stores.journal`); ``False`` makes changes durable only at
            :meth:`save` / :meth:`close` (faster bulk loads, at the price of losing unsaved work in a crash).

    Raises:
        ConfigError: Invalid arguments, or an existing store opened with another metric or index structure.
        DimensionMismatchError: An existing store opened with another ``dim``.
        StoreError: ``path`` is not a faiss store, or its files are inconsistent.
        MissingDependencyError: ``faiss-cpu`` is not installed.

    Example:
        >>> import numpy as np
        >>> from audiovec.stores import FaissStore
        >>> with FaissStore(dim=4, metric="l2", index="flat") as store:
        ...     store.add(np.eye(4, dtype=np.float32), ids=["a", "b", "c", "d"])
        ...     store.search(np.array([0, 1, 0, 0], np.float32), k=1)[0][0].id
        ['a', 'b', 'c', 'd']
        'b'
    """

    name = "faiss"
    supported_indexes = INDEX_KINDS
    default_index = "hnsw"
    _insert_rejects_duplicates = True  # the UNIQUE uid column refuses them inside the batch's savepoint

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        dim: int | None = None,
        metric: str | None = None,
        index: IndexArg = None,
        id_type: str | None = None,
        threads: int | None = None,
        compact_ratio: float = 0.2,
        exact_threshold: int = 4096,
        journal: bool = True,
    ) -> None:
        super().__init__()
        if threads is not None:
            set_threads(threads)
        if not 0.0 < compact_ratio <= 1.0:
            raise ConfigError(f"compact_ratio must be in (0, 1], got {compact_ratio!r}")
        if isinstance(exact_threshold, bool) or not isinstance(exact_threshold, int) or exact_threshold < 0:
            raise ConfigError(f"exact_threshold must be a non-negative int, got {exact_threshold!r}")
        self._compact_ratio = float(compact_ratio)
        self._exact_threshold = exact_threshold
        self._db: sqlite3.Connection | None = None
        self._fx: Any = None
        self._trained = True
        self._next_fid = 0
        self._gen = 0
        self._n_live = 0
        self._tomb: set[int] = set()
        self._tomb_sel: Any = None
        self._fcache: OrderedDict[str, _Matches] = OrderedDict()
        self._fcache_bytes = 0
        self._fkeys: OrderedDict[int, tuple[Filter, str]] = OrderedDict()
        self._pcache: dict[tuple[int, int], tuple[Any, Any]] = {}
        self._dirty = False
        self._open_or_create(path, dim=dim, metric=metric, index=index, id_type=id_type, journal=journal)

    # ------------------------------------------------------------------ properties
    is_trained: ReadOnly[bool] = ReadOnly(
        "_trained", "False while an IVF store still buffers its vectors (searched exactly) before training."
    )

    @property
    def tombstones(self) -> int:
        """Deleted vectors still inside an HNSW graph (see :meth:`compact`)."""
        return len(self._tomb)

    @property
    def ntotal(self) -> int:
        """Vectors inside the faiss index, tombstones included."""
        return int(self._fx.ntotal) if self._fx is not None else 0

    # ------------------------------------------------------------------ index construction
    def _faiss_metric(self) -> Any:
        return faiss.METRIC_L2 if self._metric == "l2" else faiss.METRIC_INNER_PRODUCT

    def _is_ivf(self) -> bool:
        return self._index.kind in ("ivf", "ivf_pq", "ivf_sq8")

    def _new_index(self) -> Any:
        """An empty index: the final index for flat/HNSW, the exact buffer for (untrained) IVF kinds."""
        d, mt = self._dim, self._faiss_metric()
        cfg = self._index
        if isinstance(cfg, HNSWIndex):
            hnsw = faiss.IndexHNSWFlat(d, cfg.m, mt)
            hnsw.hnsw.efConstruction = cfg.ef_construction
            hnsw.hnsw.efSearch = cfg.ef_search
            return faiss.IndexIDMap2(hnsw)
        return faiss.IndexIDMap2(faiss.IndexFlat(d, mt))

    def _new_ivf(self) -> Any:
        d, mt = self._dim, self._faiss_metric()
        cfg = self._index
        assert isinstance(cfg, IVFIndexBase)
        quantizer = faiss.IndexFlat(d, mt)
        if cfg.kind == "ivf":
            ivf = faiss.IndexIVFFlat(quantizer, d, cfg.nlist, mt)
        elif cfg.kind == "ivf_pq":
            assert isinstance(cfg, IVFPQIndex)
            ivf = faiss.IndexIVFPQ(quantizer, d, cfg.nlist, cfg.resolved_m(d), cfg.pq_nbits, mt)
        else:
            ivf = faiss.IndexIVFScalarQuantizer(quantizer, d, cfg.nlist, faiss.ScalarQuantizer.QT_8bit, mt)
        ivf.nprobe = cfg.nprobe
        ivf.set_direct_map_type(faiss.DirectMap.Hashtable)
        return ivf

    # ------------------------------------------------------------------ SQLite
    def _connect(self, file: Path | None) -> sqlite3.Connection:
        db = sqlite3.connect(":memory:" if file is None else str(file), isolation_level=None, check_same_thread=False)
        if file is not None:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA temp_store=MEMORY")
        db.execute("PRAGMA cache_size=-65536")
        db.executescript(_SCHEMA)
        return db

    @property
    def _conn(self) -> sqlite3.Connection:
        assert self._db is not None
        return self._db

    def _begin(self) -> None:
        if not self._conn.in_transaction:
            self._conn.execute("BEGIN")

    def _state(self) -> dict[str, str]:
        return {
            "generation": str(self._gen),
            "next_fid": str(self._next_fid),
            "next_id": str(self._next_id),
            "id_type": self._id_type or "",
            "trained": "1" if self._trained else "0",
        }

    def _write_state(self, db: sqlite3.Connection) -> None:
        db.executemany("INSERT OR REPLACE INTO state(key, value) VALUES (?, ?)", list(self._state().items()))

    # ------------------------------------------------------------------ hooks: files
    def _create_files(self, directory: Path) -> None:
        self._trained = not self._is_ivf()
        fx = self._new_index()
        faiss.write_index(fx, str(directory / _index_name(0)))
        db = self._connect(directory / _DB)
        try:
            db.execute("BEGIN")
            self._write_state(db)
            db.execute("COMMIT")
        finally:
            db.close()

    def _load(self, directory: Path | None) -> None:
        if directory is None:
            self._db = self._connect(None)
            self._trained = not self._is_ivf()
            self._fx = self._new_index()
            return
        self._db = self._connect(directory / _DB)
        state = dict(self._conn.execute("SELECT key, value FROM state").fetchall())
        try:
            self._gen = int(state["generation"])
            self._next_fid = int(state["next_fid"])
            self._next_id = int(state["next_id"])
            self._trained = state["trained"] == "1"
            self._id_type = (state["id_type"] or None) if self._id_type is None else self._id_type
        except (KeyError, ValueError) as err:
            raise StoreError(f"{directory / _DB} has no valid state table ({err})") from err
        file = directory / _index_name(self._gen)
        if not file.exists():
            raise StoreError(f"{directory} is missing {file.name}, the index of its committed generation")
        self._fx = faiss.read_index(str(file))
        self._tomb = {int(f) for (f,) in self._conn.execute("SELECT fid FROM tombstones")}
        (self._n_live,) = self._conn.execute("SELECT COUNT(*) FROM records").fetchone()
        if self._fx.d != self._dim or self._fx.ntotal != self._n_live + len(self._tomb):
            raise StoreError(
                f"{directory} is inconsistent: the index holds {self._fx.ntotal} {self._fx.d}-d vectors, the "
                f"metadata {self._n_live} records and {len(self._tomb)} tombstones"
            )
        for leftover in directory.iterdir():  # files of generations that never committed
            m = _INDEX_RE.match(leftover.name)
            if m and int(m.group(1)) != self._gen:
                leftover.unlink(missing_ok=True)

    # ------------------------------------------------------------------ helpers
    def _changed(self) -> None:
        self._dirty = True
        self._drop_caches()

    def _drop_caches(self) -> None:
        """Forget filter matches and search parameters (after a write, or when the index is replaced)."""
        self._fcache.clear()
        self._fcache_bytes = 0
        self._pcache.clear()

    def _fids_of(self, ids: list[Id]) -> dict[Id, int]:
        rows = self._conn.execute(
            "SELECT uid, fid FROM records WHERE uid IN (SELECT value FROM json_each(?))", (json.dumps(ids),)
        ).fetchall()
        return {u: f for u, f in rows}

    def _remove_fids(self, fids: NDArray[np.int64]) -> None:
        """Take vectors out of the index (tombstones for HNSW); their records are already gone from SQLite."""
        if len(fids) == 0:
            return
        if isinstance(self._index, HNSWIndex):
            self._conn.executemany("INSERT INTO tombstones(fid) VALUES (?)", [(int(f),) for f in fids])
            self._tomb.update(int(f) for f in fids)
            self._tomb_sel = None
        elif self._is_ivf() and self._trained:
            arr = np.ascontiguousarray(fids, dtype=np.int64)
            self._fx.remove_ids(faiss.IDSelectorArray(arr))
        else:
            self._fx.remove_ids(faiss.IDSelectorBatch(np.ascontiguousarray(fids, dtype=np.int64)))

    def _reconstruct(self, fids: NDArray[np.int64]) -> NDArray[np.float32]:
        out = np.empty((len(fids), self._dim), np.float32)
        for s in range(0, len(fids), _CHUNK):
            chunk = np.ascontiguousarray(fids[s : s + _CHUNK], dtype=np.int64)
            out[s : s + len(chunk)] = self._fx.reconstruct_batch(chunk)
        return out

    def _live_fids(self) -> NDArray[np.int64]:
        return np.fromiter((f for (f,) in self._conn.execute("SELECT fid FROM records ORDER BY fid")), np.int64)

    def _filter_key(self, flt: Filter) -> str:
        """:func:`filter_key` of ``flt``, remembered for the last filter objects seen (searches often reuse one)."""
        seen = self._fkeys.get(id(flt))
        if seen is not None and seen[0] is flt:
            return seen[1]
        key = filter_key(flt)
        self._fkeys[id(flt)] = (flt, key)  # holding flt keeps its id from being reused
        if len(self._fkeys) > 64:
            self._fkeys.popitem(last=False)
        return key

    def _matching(self, flt: Filter) -> _Matches:
        """The records matching ``flt``: sorted fids and an IDSelectorBatch over them; cached until a write."""
        key = self._filter_key(flt)
        hit = self._fcache.get(key)
        if hit is not None:
            self._fcache.move_to_end(key)
            return hit
        sql, params = to_sqlite(flt, "meta")
        fids = np.fromiter(
            (f for (f,) in self._conn.execute(f"SELECT fid FROM records WHERE {sql} ORDER BY fid", params)),
            np.int64,
        )
        entry = _Matches(fids, faiss.IDSelectorBatch(fids) if len(fids) else None)
        self._fcache[key] = entry
        if len(self._fcache) > _FILTER_CACHE:
            self._evict_match()
        return entry

    def _evict_match(self) -> None:
        """Drop the least recently used filter (its selector may be inside cached search parameters)."""
        _, old = self._fcache.popitem(last=False)
        if old.vectors is not None:
            self._fcache_bytes -= old.vectors.nbytes
        self._pcache.clear()

    def _matched_vectors(self, m: _Matches) -> NDArray[np.float32]:
        """The vectors of ``m.fids``, kept with the filter while they fit the cache's byte budget."""
        if m.vectors is not None:
            return m.vectors
        vectors = self._reconstruct(m.fids)
        if vectors.nbytes <= _VECTOR_CACHE_BYTES:
            while self._fcache_bytes + vectors.nbytes > _VECTOR_CACHE_BYTES:
                for other in self._fcache.values():  # least recently used first
                    if other.vectors is not None:
                        self._fcache_bytes -= other.vectors.nbytes
                        other.vectors = None
                        break
            m.vectors = vectors
            self._fcache_bytes += vectors.nbytes
        return vectors

    def _tombstone_selector(self) -> Any:
        if not self._tomb:
            return None
        if self._tomb_sel is None:
            batch = faiss.IDSelectorBatch(np.fromiter(self._tomb, np.int64, count=len(self._tomb)))
            sel = faiss.IDSelectorNot(batch)
            sel.referenced_objects = [batch]  # keep the wrapped selector alive
            self._tomb_sel = sel
            self._pcache.clear()
        return self._tomb_sel

    def _exact_over(
        self, queries: NDArray[np.float32], fids: NDArray[np.int64], k: int
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """Exact top-k over the (reconstructed) vectors of ``fids``, in blocks."""
        nq = len(queries)
        best_raw = np.zeros((nq, 0), np.float32)
        best_ids = np.zeros((nq, 0), np.int64)
        for s in range(0, len(fids), _CHUNK):
            chunk = fids[s : s + _CHUNK]
            raw, rows = exact_search(queries, self._reconstruct(chunk), k, self._metric)
            best_raw, best_ids = merge_topk(best_raw, best_ids, raw, chunk[rows], k, self._metric)
        return best_raw, best_ids

    def _search_parameters(self, k: int, sel: Any, params: SearchParams) -> Any:
        """The faiss search parameters for ``k``, ``sel`` and ``params``, built once per combination.

        Cached until the next write or selector change, so a query does not build SWIG objects; each cached
        entry holds its selector, which keeps it alive (faiss parameters only point to it).
        """
        cfg = self._index
        if isinstance(cfg, HNSWIndex):
            value = max(params.ef_search or cfg.ef_search, k)
        elif isinstance(cfg, IVFIndexBase) and self._trained:
            value = min(params.nprobe or cfg.nprobe, cfg.nlist)
        else:
            value = 0
        key = (value, id(sel))
        cached = self._pcache.get(key)
        if cached is not None and cached[1] is sel:
            return cached[0]
        if isinstance(cfg, HNSWIndex):
            p = faiss.SearchParametersHNSW()
            p.efSearch = value
        elif isinstance(cfg, IVFIndexBase) and self._trained:
            p = faiss.SearchParametersIVF()
            p.nprobe = value
        else:
            p = faiss.SearchParameters()
        if sel is not None:
            p.sel = sel
        if len(self._pcache) >= 64:
            self._pcache.clear()
        self._pcache[key] = (p, sel)
        return p

    def _ann(
        self, queries: NDArray[np.float32], k: int, sel: Any, params: SearchParams
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        p = self._search_parameters(k, sel, params)
        before = faiss.omp_get_max_threads() if len(queries) <= _SERIAL_MAX else 1  # see _serial_if_small
        if before == 1:
            dist, labels = self._fx.search(queries, k, params=p)
            return dist, labels
        faiss.omp_set_num_threads(1)
        try:
            dist, labels = self._fx.search(queries, k, params=p)
        finally:
            faiss.omp_set_num_threads(before)
        return dist, labels

    # ------------------------------------------------------------------ hooks: records
    def _existing(self, ids: list[Id]) -> list[Id]:
        found = self._fids_of(ids)
        return [i for i in ids if i in found]

    def _insert(self, vectors: NDArray[np.float32], ids: list[Id], metas: list[str], *, replace: bool) -> None:
        n = len(ids)
        fids = np.arange(self._next_fid, self._next_fid + n, dtype=np.int64)
        db = self._conn
        self._begin()
        db.execute("SAVEPOINT batch")
        try:
            old = np.zeros(0, np.int64)
            if replace:
                found = self._fids_of(ids)
                if found:
                    old = np.fromiter(found.values(), np.int64, count=len(found))
                    db.execute(
                        "DELETE FROM records WHERE fid IN (SELECT value FROM json_each(?))", (json.dumps(old.tolist()),)
                    )
            if metas.count("{}") == n:  # no metadata: a constant instead of n bound strings
                db.executemany(
                    "INSERT INTO records(fid, uid, meta) VALUES (?, ?, '{}')", zip(fids.tolist(), ids, strict=True)
                )
            else:
                db.executemany(
                    "INSERT INTO records(fid, uid, meta) VALUES (?, ?, ?)", zip(fids.tolist(), ids, metas, strict=True)
                )
            with _serial_if_small(n):
                self._fx.add_with_ids(vectors, fids)
        except sqlite3.IntegrityError as err:
            db.execute("ROLLBACK TO batch")
            db.execute("RELEASE batch")
            taken = self._existing(ids)
            if taken:
                raise self._duplicates_error(taken) from None
            raise DuplicateIdError(f"an id of this batch is already stored ({err}); nothing was stored") from err
        except BaseException:
            db.execute("ROLLBACK TO batch")
            db.execute("RELEASE batch")
            raise
        db.execute("RELEASE batch")
        self._next_fid += n
        self._remove_fids(old)
        self._n_live += n - len(old)
        self._changed()
        cfg = self._index
        if not self._trained and isinstance(cfg, IVFIndexBase) and self._fx.ntotal >= cfg.train_threshold():
            self._train_buffer(None, limit=cfg.train_threshold())

    def _search(
        self, queries: NDArray[np.float32], k: int, flt: Filter | None, params: SearchParams
    ) -> list[list[RawHit]]:
        nq = len(queries)
        if self._n_live == 0:
            return [[] for _ in range(nq)]
        if flt is None:
            kk = min(k, self._n_live)
            dist, labels = self._ann(queries, kk, self._tombstone_selector(), params)
            label_rows = labels.tolist()
            if min(map(min, label_rows)) < 0:  # the ANN index ran out of candidates: answer those queries exactly
                short = (labels < 0).any(axis=1)
                d2, l2 = self._exact_over(queries[short], self._live_fids(), kk)
                dist[short], labels[short] = d2, l2
                label_rows = labels.tolist()
            return self._resolve(dist.tolist(), label_rows)
        m = self._matching(flt)
        allowed = m.fids
        if len(allowed) == 0:
            return [[] for _ in range(nq)]
        kk = min(k, len(allowed))
        if len(allowed) <= self._exact_threshold:  # few matches: exact over their (cached) vectors
            vectors = self._matched_vectors(m)
            raw, rows = exact_search(queries, vectors, kk, self._metric)
            return self._resolve(raw.tolist(), allowed[rows].tolist())
        dist, labels = self._ann(queries, kk, m.sel, params)
        if (labels < 0).any():  # the ANN index ran out of matching candidates: answer those queries exactly
            short = (labels < 0).any(axis=1)
            d2, l2 = self._exact_over(queries[short], allowed, kk)
            dist[short], labels[short] = d2, l2
        return self._resolve(dist.tolist(), labels.tolist())

    def _resolve(self, dist: list[list[float]], labels: list[list[int]]) -> list[list[RawHit]]:
        """Hits for faiss results: ids and metadata of the fids in ``labels`` (``-1`` and unknown fids dropped)."""
        if len(labels) == 1:  # one query: its fids are distinct already
            wanted = [f for f in labels[0] if f >= 0]
        else:
            wanted = sorted({f for row in labels for f in row if f >= 0})
        found: dict[int, tuple[Id, str]] = {}
        execute = self._conn.execute
        for s in range(0, len(wanted), _IN_CHUNK):
            chunk = wanted[s : s + _IN_CHUNK]
            rows = execute(_lookup_sql(len(chunk)), chunk).fetchall()
            found.update({f: (u, m) for f, u, m in rows})
        return [
            [(rec[0], d, rec[1]) for f, d in zip(lrow, drow, strict=True) if (rec := found.get(f)) is not None]
            for lrow, drow in zip(labels, dist, strict=True)
        ]

    def _get(self, ids: list[Id]) -> list[tuple[Id, NDArray[np.float32], str | dict[str, Any]]]:
        rows = self._conn.execute(
            "SELECT uid, fid, meta FROM records WHERE uid IN (SELECT value FROM json_each(?))", (json.dumps(ids),)
        ).fetchall()
        by_id = {u: (f, m) for u, f, m in rows}
        present = [i for i in ids if i in by_id]
        if not present:
            return []
        vecs = self._reconstruct(np.array([by_id[i][0] for i in present], np.int64))
        return [(i, vecs[j], by_id[i][1]) for j, i in enumerate(present)]

    def _delete_fids(self, fids: NDArray[np.int64]) -> int:
        if len(fids) == 0:
            return 0
        self._begin()
        self._conn.execute(
            "DELETE FROM records WHERE fid IN (SELECT value FROM json_each(?))", (json.dumps(fids.tolist()),)
        )
        self._remove_fids(fids)
        self._n_live -= len(fids)
        self._changed()
        return len(fids)

    def _delete(self, ids: list[Id]) -> int:
        found = self._fids_of(ids)
        return self._delete_fids(np.fromiter(found.values(), np.int64, count=len(found)))

    def _delete_where(self, flt: Filter) -> int:
        return self._delete_fids(self._matching(flt).fids.copy())

    def _ids_where(self, flt: Filter) -> list[Id]:
        fids = self._matching(flt).fids.tolist()
        rows = self._conn.execute(
            "SELECT uid FROM records WHERE fid IN (SELECT value FROM json_each(?)) ORDER BY fid", (json.dumps(fids),)
        )
        return [u for (u,) in rows]

    def _count(self, flt: Filter | None) -> int:
        if flt is None:
            return self._n_live
        return len(self._matching(flt).fids)

    # ------------------------------------------------------------------ training and compaction
    def _train_buffer(self, sample: NDArray[np.float32] | None, limit: int | None = None) -> None:
        """Train the IVF index on ``sample`` (or on the buffer, at most ``limit`` random buffered vectors)."""
        buf = self._fx
        n = int(buf.ntotal)
        fids = faiss.vector_to_array(buf.id_map).astype(np.int64)
        vecs = buf.index.reconstruct_n(0, n) if n else np.zeros((0, self._dim), np.float32)
        ivf = self._new_ivf()
        training = sample if sample is not None else vecs
        if sample is None and limit is not None and n > limit:
            training = vecs[np.sort(np.random.default_rng(0).choice(n, size=limit, replace=False))]
        cfg = self._index
        assert isinstance(cfg, IVFIndexBase)
        # faiss prints a warning to stderr below 39 training points per centroid; say it once, in our log
        per_cell = len(training) // cfg.nlist
        ivf.cp.min_points_per_centroid = min(39, max(1, per_cell))
        if isinstance(cfg, IVFPQIndex):
            per_code = len(training) // (1 << cfg.pq_nbits)
            ivf.pq.cp.min_points_per_centroid = min(39, max(1, per_code))
            per_cell = min(per_cell, per_code)
        if per_cell < 39:
            log.warning(
                "training %s on %d vectors (%d per centroid; 39 or more is recommended): recall may suffer",
                cfg.kind,
                len(training),
                per_cell,
            )
        ivf.train(training)
        if n:
            ivf.add_with_ids(vecs, fids)
        self._fx = ivf
        self._trained = True
        self._changed()

    def train(self, vectors: Any = None) -> None:
        """Train an IVF index now instead of waiting for ``index.train_threshold()`` vectors.

        Args:
            vectors: A training sample ``float32[n, dim]`` (not added to the store), or ``None`` to train on the
                vectors added so far. Either way, buffered vectors then move into the IVF lists.

        Raises:
            StoreError: Fewer training vectors than the index needs (``nlist``, and ``2**pq_nbits`` for
                IVF-PQ), or the store is closed.
            DimensionMismatchError: The sample has the wrong dimension.
            InvalidVectorError: The sample contains NaN/Inf.

        A no-op for flat and HNSW indexes and for an IVF index that is already trained.
        """
        with self._lock:
            self._check_open()
            cfg = self._index
            if self._trained or not isinstance(cfg, IVFIndexBase):
                return
            sample = None if vectors is None else self._prepare(vectors, what="training vectors")
            have = len(sample) if sample is not None else int(self._fx.ntotal)
            need = cfg.min_train_points()
            if have < need:
                raise StoreError(
                    f"training a {cfg.kind} index (nlist={cfg.nlist}) needs at least {need} vectors; {have} available"
                )
            self._begin()
            self._train_buffer(sample)

    def compact(self) -> None:
        """Rebuild an HNSW graph without its tombstones (a no-op for other indexes or without tombstones).

        Raises:
            StoreError: The store is closed.
        """
        with self._lock:
            self._check_open()
            if not self._tomb or not isinstance(self._index, HNSWIndex):
                return
            live = self._live_fids()
            new = self._new_index()
            for s in range(0, len(live), _CHUNK):
                chunk = live[s : s + _CHUNK]
                new.add_with_ids(self._reconstruct(chunk), chunk)
            self._begin()
            self._conn.execute("DELETE FROM tombstones")
            self._fx = new
            self._tomb.clear()
            self._tomb_sel = None
            self._changed()

    # ------------------------------------------------------------------ hooks: lifecycle
    def _save(self) -> None:
        assert self.path is not None
        if self._tomb and len(self._tomb) > self._compact_ratio * max(self.ntotal, 1):
            self.compact()
        if not self._dirty and not self._conn.in_transaction:
            return
        gen = self._gen + 1
        fx = self._fx
        atomic_write(self.path / _index_name(gen), lambda tmp: faiss.write_index(fx, str(tmp)))
        old_gen = self._gen
        self._gen = gen
        try:
            self._begin()
            self._write_state(self._conn)
            self._conn.execute("COMMIT")
        except BaseException:
            self._gen = old_gen
            (self.path / _index_name(gen)).unlink(missing_ok=True)
            raise
        (self.path / _index_name(old_gen)).unlink(missing_ok=True)
        fsync_dir(self.path)
        self._dirty = False

    def _release(self) -> None:
        if self._db is not None:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            self._db.close()
            self._db = None
        self._fx = None
        self._tomb_sel = None
        self._drop_caches()
        self._fkeys.clear()

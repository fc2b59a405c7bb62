"""ExactStore: brute-force NumPy search, the reference for correctness and for measuring ANN recall.

Every search compares the query with every stored vector through :func:`audiovec.stores.exact_search`, so results
are exact, and they are the same whatever the batch of queries or the filter: each score is computed from the query
and the vector alone (see :mod:`audiovec.stores.kernel`). Equal scores are broken by insertion order. Filters are
evaluated in Python with :func:`audiovec.stores.filters.compile_filter`, the reference semantics of the filter
language.

On-disk layout (a directory)::

    store/
      manifest.json   format, store="exact", dim, metric, index (written once, at creation)
      data.npz        vectors float32[n, dim], ids (int64 or unicode), metadata (one JSON array), state

``data.npz`` is rewritten as a whole on :meth:`~ExactStore.save` through a temporary file and an atomic
rename, so a crash leaves the previous complete version.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from audiovec._files import atomic_write
from audiovec.errors import StoreError
from audiovec.stores.base import BaseVectorStore
from audiovec.stores.config import IndexArg, SearchParams
from audiovec.stores.filters import Filter, compile_filter
from audiovec.stores.kernel import exact_search
from audiovec.stores.records import Id, RawHit

__all__ = ["ExactStore"]

_DATA = "data.npz"


class ExactStore(BaseVectorStore):
    """Exact nearest-neighbour search in NumPy, in memory, optionally persisted to a directory.

    Args:
        path: Store directory. An existing store is opened; a missing path (or an empty directory) gets a new
            store. ``None`` keeps everything in memory.
        dim: Vector dimension; required for a new store, checked against an existing one.
        metric: ``"cosine"`` (default for new stores), ``"ip"`` or ``"l2"``; checked against an existing one.
        index: Only ``"flat"`` (the default) is accepted.
        id_type: Fix the id kind (``"int"`` or ``"str"``) up front; by default the first batch decides.
        journal: Write every change to the directory's write-ahead journal, flushed to disk, before the call
            returns (see :mod:`audiovec.stores.journal`); ``False`` makes changes durable only at
            :meth:`save` / :meth:`close` (faster bulk loads, at the price of losing unsaved work in a crash).

    Raises:
        ConfigError: Missing ``dim`` for a new store, an unknown metric, an index other than flat, or an
            existing store opened with another metric.
        DimensionMismatchError: An existing store opened with another ``dim``.
        StoreError: ``path`` is not an exact store.

    Example:
        >>> import numpy as np
        >>> from audiovec.stores import ExactStore
        >>> store = ExactStore(dim=3, metric="cosine")
        >>> store.add(np.eye(3, dtype=np.float32), metadata=[{"label": "a"}, {"label": "b"}, {"label": "c"}])
        [0, 1, 2]
        >>> store.search(np.array([1.0, 0.1, 0.0], dtype=np.float32), k=1)[0][0].id
        0
    """

    name = "exact"
    supported_indexes = ("flat",)
    default_index = "flat"

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        dim: int | None = None,
        metric: str | None = None,
        index: IndexArg = None,
        id_type: str | None = None,
        journal: bool = True,
    ) -> None:
        super().__init__()
        self._vecs: NDArray[np.float32] = np.zeros((0, 0), np.float32)
        self._sq: NDArray[np.float32] = np.zeros(0, np.float32)
        self._n = 0
        self._ids: list[Id] = []
        self._row: dict[Id, int] = {}
        self._meta_text: list[str] = []
        self._meta: list[dict[str, Any]] = []
        self._dirty = False
        self._open_or_create(path, dim=dim, metric=metric, index=index, id_type=id_type, journal=journal)

    # ------------------------------------------------------------------ storage
    def _reserve(self, extra: int) -> None:
        need = self._n + extra
        if need <= len(self._vecs):
            return
        cap = max(need, 2 * len(self._vecs), 64)
        vecs = np.empty((cap, self._dim), np.float32)
        vecs[: self._n] = self._vecs[: self._n]
        sq = np.empty(cap, np.float32)
        sq[: self._n] = self._sq[: self._n]
        self._vecs, self._sq = vecs, sq

    def _set_rows(self, vectors: NDArray[np.float32], ids: list[Id], metas: list[str]) -> None:
        self._reserve(len(ids))
        s, e = self._n, self._n + len(ids)
        self._vecs[s:e] = vectors
        self._sq[s:e] = np.einsum("ij,ij->i", vectors, vectors)
        for i, id_ in enumerate(ids, start=s):
            self._row[id_] = i
        self._ids.extend(ids)
        self._meta_text.extend(metas)
        self._meta.extend(json.loads(m) for m in metas)
        self._n = e

    def _mask(self, flt: Filter) -> NDArray[np.bool_]:
        pred = compile_filter(flt)
        return np.fromiter((pred(m) for m in self._meta), dtype=bool, count=self._n)

    # ------------------------------------------------------------------ hooks
    def _create_files(self, directory: Path) -> None:
        self._write(directory / _DATA)

    def _load(self, directory: Path | None) -> None:
        self._vecs = np.zeros((0, self._dim), np.float32)
        self._sq = np.zeros(0, np.float32)
        if directory is None:
            return
        try:
            with np.load(directory / _DATA, allow_pickle=False) as z:
                vectors = np.asarray(z["vectors"], dtype=np.float32)
                ids: list[Id] = z["ids"].tolist()
                metas = json.loads(str(z["metadata"]))
                state = json.loads(str(z["state"]))
        except (OSError, KeyError, ValueError) as err:
            raise StoreError(f"cannot read {directory / _DATA}: {err}") from err
        if vectors.ndim != 2 or vectors.shape[1] != self._dim or not len(ids) == len(vectors) == len(metas):
            raise StoreError(f"{directory / _DATA} is inconsistent with its manifest (shape {vectors.shape})")
        texts = [json.dumps(m, ensure_ascii=False, separators=(",", ":")) for m in metas]
        self._set_rows(vectors, ids, texts)
        self._id_type = state.get("id_type")
        self._next_id = int(state.get("next_id", 0))

    def _write(self, target: Path) -> None:
        n = self._n
        if self._id_type == "str":
            ids: NDArray[Any] = np.array(self._ids, dtype=str) if n else np.zeros(0, dtype="<U1")
        else:
            ids = np.array(self._ids, dtype=np.int64)
        state = json.dumps({"id_type": self._id_type, "next_id": self._next_id})

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as fh:
                np.savez(
                    fh,
                    vectors=self._vecs[:n] if n else np.zeros((0, self._dim), np.float32),
                    ids=ids,
                    metadata=np.array("[" + ",".join(self._meta_text) + "]"),
                    state=np.array(state),
                )

        atomic_write(target, write)

    def _existing(self, ids: list[Id]) -> list[Id]:
        return [i for i in ids if i in self._row]

    def _insert(self, vectors: NDArray[np.float32], ids: list[Id], metas: list[str], *, replace: bool) -> None:
        fresh = list(range(len(ids)))
        if replace:
            fresh = []
            for j, id_ in enumerate(ids):
                r = self._row.get(id_)
                if r is None:
                    fresh.append(j)
                    continue
                self._vecs[r] = vectors[j]
                self._sq[r] = float(vectors[j] @ vectors[j])
                self._meta_text[r] = metas[j]
                self._meta[r] = json.loads(metas[j])
        if fresh:
            sel = np.asarray(fresh)
            self._set_rows(vectors[sel], [ids[j] for j in fresh], [metas[j] for j in fresh])
        self._dirty = True

    def _search(
        self, queries: NDArray[np.float32], k: int, flt: Filter | None, params: SearchParams
    ) -> list[list[RawHit]]:
        rows: NDArray[np.int64] | None = None
        vecs, sq = self._vecs[: self._n], self._sq[: self._n]
        if flt is not None:
            rows = np.flatnonzero(self._mask(flt))
            vecs, sq = vecs[rows], sq[rows]
        if len(vecs) == 0:
            return [[] for _ in range(len(queries))]
        raw, idx = exact_search(queries, vecs, k, self._metric, sqnorms=sq)
        if rows is not None:
            idx = rows[idx]
        ids, metas = self._ids, self._meta_text
        return [
            [(ids[i], r, metas[i]) for i, r in zip(irow.tolist(), rrow.tolist(), strict=True)]
            for irow, rrow in zip(idx, raw, strict=True)
        ]

    def _get(self, ids: list[Id]) -> list[tuple[Id, NDArray[np.float32], str | dict[str, Any]]]:
        out: list[tuple[Id, NDArray[np.float32], str | dict[str, Any]]] = []
        for id_ in ids:
            r = self._row.get(id_)
            if r is not None:
                out.append((id_, self._vecs[r].copy(), self._meta_text[r]))
        return out

    def _drop_rows(self, rows: NDArray[np.int64]) -> int:
        if len(rows) == 0:
            return 0
        keep = np.ones(self._n, bool)
        keep[rows] = False
        m = int(keep.sum())
        self._vecs[:m] = self._vecs[: self._n][keep]
        self._sq[:m] = self._sq[: self._n][keep]
        kept = np.flatnonzero(keep).tolist()
        self._ids = [self._ids[i] for i in kept]
        self._meta_text = [self._meta_text[i] for i in kept]
        self._meta = [self._meta[i] for i in kept]
        self._row = {id_: i for i, id_ in enumerate(self._ids)}
        self._n = m
        self._dirty = True
        return len(rows)

    def _delete(self, ids: list[Id]) -> int:
        rows = [self._row[i] for i in ids if i in self._row]
        return self._drop_rows(np.asarray(rows, dtype=np.int64))

    def _delete_where(self, flt: Filter) -> int:
        return self._drop_rows(np.flatnonzero(self._mask(flt)))

    def _ids_where(self, flt: Filter) -> list[Id]:
        return [self._ids[r] for r in np.flatnonzero(self._mask(flt)).tolist()]

    def _count(self, flt: Filter | None) -> int:
        return self._n if flt is None else int(self._mask(flt).sum())

    def _save(self) -> None:
        if self._dirty and self.path is not None:
            self._write(self.path / _DATA)
            self._dirty = False

    def _release(self) -> None:
        self._vecs = np.zeros((0, self._dim), np.float32)
        self._sq = np.zeros(0, np.float32)
        self._ids, self._row, self._meta_text, self._meta = [], {}, [], []
        self._n = 0

"""The :class:`VectorStore` protocol: what every vector store provides, and the contract every backend keeps.

Contract (the same for every backend; :func:`audiovec.testing.check_vector_store` checks it):

* **Vectors** are ``float32[n, dim]`` batches (any real float or integer array is converted; one vector may be
  passed as ``[dim]``). NaN/Inf (also after the conversion to ``float32``) raise
  :class:`~audiovec.errors.InvalidVectorError`, a wrong width raises
  :class:`~audiovec.errors.DimensionMismatchError`, and nothing from a rejected batch is stored.
* **Metric** is fixed at creation: ``"cosine"``, ``"ip"`` (inner product) or ``"l2"``. A cosine store
  normalises every vector (and query) to unit length itself, so :meth:`VectorStore.get` returns the normalised
  vector; any finite vector is accepted, however large or small its components (``3e38``, ``1e-30``), except a
  zero vector, whose direction is undefined. An ``ip`` or ``l2`` store refuses a vector longer than
  :data:`~audiovec.stores.records.MAX_VECTOR_NORM` (``1e18``), whose scores could overflow ``float32``.
* **Scores**: every :class:`~audiovec.stores.Hit` has ``score`` (higher = more similar, whatever the metric) and
  ``distance`` (in the metric's own units):

  ============  ===============================  ==========================
  metric        score                            distance
  ============  ===============================  ==========================
  ``cosine``    cosine similarity in [-1, 1]     ``1 - cosine`` in [0, 2]
  ``ip``        inner product                    inner product (same value)
  ``l2``        ``-distance``                    **squared** Euclidean distance
  ============  ===============================  ==========================

  Squared L2 is what FAISS and the Milvus server report natively, so no backend converts it. Scores are
  ``float32`` values; two backends (or two index kinds) may differ in the last bits of the same score.
* **k** is any int of at least 1 (a bool, float or str raises :class:`~audiovec.errors.ConfigError`). A search
  returns ``min(k, matching records)`` hits per query, so a ``k`` above the store's size returns every record. A
  Milvus search returns at most :data:`~audiovec.stores.records.MAX_K` (16,384) hits: there a larger ``k`` raises
  ConfigError when more records than that match.
* **Ids** are either ``int`` (any int64) or ``str`` (1-512 UTF-8 bytes, valid Unicode, no NUL); a store holds
  one kind, fixed by ``id_type=`` at creation or by the first batch. Anything else raises
  :class:`~audiovec.errors.InvalidIdError`: floats, bools, bytes, ``None``, nested lists, ints beyond int64,
  ids of the other kind or a batch mixing kinds, a length other than the number of vectors, an unordered
  collection (a set) for ``add``/``upsert``, an array that is not 1-D. With ``ids=None`` a store generates them:
  sequential ints (never reused, always above every int id stored so far) in an int store or one whose kind is
  not fixed yet, and ``uuid4().hex`` strings in a str store. Ids come back as plain Python ``int``/``str``.
* **Batches are atomic**: ``add`` validates every vector, id and metadata record first; if any id already
  exists (or repeats inside the batch) it raises :class:`~audiovec.errors.DuplicateIdError` and stores nothing.
  ``upsert`` replaces existing ids (vector *and* metadata) and inserts new ones.
* **Metadata** is one JSON object per vector (nested lists/objects allowed; ``numpy`` scalars and arrays and
  ``os.PathLike`` values are converted to plain JSON values). Anything else raises
  :class:`~audiovec.errors.InvalidMetadataError` naming the record and the value: a record that is not a
  mapping, non-str keys, NaN/Inf, ints beyond int64, lone surrogates, sets, bytes and other objects, a record
  that contains itself, nesting deeper than :data:`~audiovec.stores.records.MAX_METADATA_DEPTH` (32) levels, or
  more than :data:`~audiovec.stores.records.MAX_METADATA_BYTES` (64 KiB) of compact JSON. Filters address its
  top-level keys (see :mod:`audiovec.stores.filters`).
* **Filters** that are malformed (unknown operators, fields that are not identifiers, values that are not JSON
  scalars, NaN, ints beyond int64, a mapping that contains itself) raise :class:`~audiovec.errors.FilterError`;
  filters beyond the limits of :mod:`audiovec.stores.filters` (32 levels deep, 1,024 comparisons, 100,000 values,
  1 MiB of strings) raise :class:`~audiovec.errors.FilterTooLargeError`, a FilterError. Every filter within the
  limits works on every backend, wide ``$in`` lists included (a Milvus server refuses, with
  FilterTooLargeError, a filter both deep and wide whose expression would nest beyond its parser's depth).
* **Persistence**: a store opened with a location (a ``path``, a Milvus ``uri``, or
  ``get_store(name, directory=...)``) is durable at :meth:`VectorStore.save` and :meth:`VectorStore.close` (also at
  the end of a ``with`` block); reopening the same location finds everything.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any, Protocol, runtime_checkable

from numpy.typing import ArrayLike

from audiovec.stores.config import IndexConfig, Metric, SearchParams
from audiovec.stores.filters import FilterLike
from audiovec.stores.records import Hit, Id, IdsArg, IdType, MetadataArg, Record

__all__ = ["VectorStore"]


@runtime_checkable
class VectorStore(Protocol):
    """What every vector store provides (see the module docs for the shared contract).

    Attributes:
        name: Registry name of the backend (``"exact"``, ``"faiss"``, ``"milvus"``).
    """

    @property
    def name(self) -> str:
        """Registry name of the backend (a class attribute in implementations)."""
        ...

    @property
    def dim(self) -> int:
        """Vector dimension."""
        ...

    @property
    def metric(self) -> Metric:
        """``cosine``, ``ip`` or ``l2``."""
        ...

    @property
    def id_type(self) -> IdType | None:
        """``int`` or ``str``; ``None`` while the store is empty and no kind was given."""
        ...

    @property
    def index(self) -> IndexConfig:
        """The index configuration."""
        ...

    def add(self, vectors: ArrayLike, ids: IdsArg | None = None, metadata: MetadataArg = None) -> list[Id]:
        """Insert new records; returns their ids. A rejected batch stores nothing.

        Raises:
            DuplicateIdError: An id is already stored or repeats in the batch.
            InvalidVectorError: Vectors that are not finite real numbers of shape ``[n, dim]``, a zero vector
                (cosine), or one longer than ``MAX_VECTOR_NORM`` (ip, l2).
            DimensionMismatchError: Vectors of another width.
            InvalidIdError: Invalid ids (see the module docs).
            InvalidMetadataError: Invalid metadata (see the module docs).
            StoreError: The store is closed.
        """
        ...

    def upsert(self, vectors: ArrayLike, ids: IdsArg, metadata: MetadataArg = None) -> list[Id]:
        """Insert or replace records (vector and metadata); returns their ids. A rejected batch stores nothing.

        Raises:
            DuplicateIdError: An id repeats in the batch.
            InvalidVectorError: As :meth:`add`.
            DimensionMismatchError: Vectors of another width.
            InvalidIdError: Missing (``None``) or invalid ids.
            InvalidMetadataError: Invalid metadata.
            StoreError: The store is closed.
        """
        ...

    def search(
        self,
        queries: ArrayLike,
        k: int = 10,
        filter: FilterLike | None = None,
        *,
        params: SearchParams | Mapping[str, Any] | None = None,
    ) -> list[list[Hit]]:
        """The ``k`` best hits per query, best first: ``min(k, matching records)`` of them.

        Raises:
            ConfigError: ``k`` is not an int of at least 1 (or, on Milvus, above ``MAX_K`` while more records
                match), or invalid ``params``.
            FilterTooLargeError: A filter beyond the limits of :mod:`audiovec.stores.filters`.
            FilterError: A malformed filter.
            InvalidVectorError: Queries that are not finite, or zero (cosine) or too long (ip, l2).
            DimensionMismatchError: Queries of another width.
            StoreError: The store is closed.
        """
        ...

    def get(self, ids: IdsArg) -> list[Record]:
        """Records for the ids that exist, in the order asked.

        Raises:
            InvalidIdError: Invalid ids, or ids of the other kind.
            StoreError: The store is closed.
        """
        ...

    def delete(self, ids: IdsArg | None = None, *, filter: FilterLike | None = None) -> int:
        """Delete by ids or by filter; returns how many records were deleted.

        Raises:
            ConfigError: Both or neither of ``ids`` and ``filter``.
            InvalidIdError: Invalid ids, or ids of the other kind.
            FilterTooLargeError: A filter beyond the limits.
            FilterError: A malformed filter.
            StoreError: The store is closed.
        """
        ...

    def count(self, filter: FilterLike | None = None) -> int:
        """Number of records (matching ``filter`` when given).

        Raises:
            FilterTooLargeError: A filter beyond the limits.
            FilterError: A malformed filter.
            StoreError: The store is closed.
        """
        ...

    def save(self) -> None:
        """Make every change durable (no-op for in-memory stores)."""
        ...

    def close(self) -> None:
        """Save and release resources; further calls raise StoreError. Closing twice is harmless."""
        ...

    def __enter__(self) -> VectorStore: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

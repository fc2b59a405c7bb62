"""The :class:`VectorStore` protocol: what every vector store provides, and the contract every backend keeps.

Contract (the same for every backend; :func:`audiovec.testing.check_vector_store` checks it):

* **Vectors** are ``float32[n, dim]`` batches (any real float or integer array is converted; one vector may be
  passed as ``[dim]``). NaN/Inf raise :class:`~audiovec.errors.InvalidVectorError`, a wrong width raises
  :class:`~audiovec.errors.DimensionMismatchError`, and nothing from a rejected batch is stored.
* **Metric** is fixed at creation: ``"cosine"``, ``"ip"`` (inner product) or ``"l2"``. A cosine store
  normalises every vector (and query) to unit length itself, so :meth:`VectorStore.get` returns the normalised
  vector; a zero vector is rejected because its direction is undefined.
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
* **Ids** are either ``int`` (any int64) or ``str`` (1-512 UTF-8 bytes); a store holds one kind, fixed by
  ``id_type=`` at creation or by the first batch. A batch that mixes kinds, or ids of the other kind, raises
  :class:`~audiovec.errors.ConfigError`. With ``ids=None`` a store generates them: sequential ints (never reused,
  always above every int id stored so far) in an int store or one whose kind is not fixed yet, and
  ``uuid4().hex`` strings in a str store. Ids come back as plain Python ``int``/``str``.
* **Batches are atomic**: ``add`` validates every vector, id and metadata record first; if any id already
  exists (or repeats inside the batch) it raises :class:`~audiovec.errors.DuplicateIdError` and stores nothing.
  ``upsert`` replaces existing ids (vector *and* metadata) and inserts new ones.
* **Metadata** is one JSON object per vector (nested lists/objects allowed; ``numpy`` scalars and
  ``os.PathLike`` values are converted to plain JSON values; at most 64 KiB of JSON per record). Filters address
  its top-level keys (see :mod:`audiovec.stores.filters`).
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
        """Insert new records; returns their ids. Raises DuplicateIdError (storing nothing) on a taken id."""
        ...

    def upsert(self, vectors: ArrayLike, ids: IdsArg, metadata: MetadataArg = None) -> list[Id]:
        """Insert or replace records (vector and metadata); returns their ids."""
        ...

    def search(
        self,
        queries: ArrayLike,
        k: int = 10,
        filter: FilterLike | None = None,
        *,
        params: SearchParams | Mapping[str, Any] | None = None,
    ) -> list[list[Hit]]:
        """The ``k`` best hits per query, best first (fewer only when fewer records match)."""
        ...

    def get(self, ids: IdsArg) -> list[Record]:
        """Records for the ids that exist, in the order asked."""
        ...

    def delete(self, ids: IdsArg | None = None, *, filter: FilterLike | None = None) -> int:
        """Delete by ids or by filter; returns how many records were deleted."""
        ...

    def count(self, filter: FilterLike | None = None) -> int:
        """Number of records (matching ``filter`` when given)."""
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

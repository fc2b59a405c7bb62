"""The values a vector store takes and returns: ids, hits, records, and the limits every backend enforces."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "MAX_K",
    "MAX_METADATA_BYTES",
    "MAX_METADATA_DEPTH",
    "MAX_STR_ID_BYTES",
    "MAX_VECTOR_NORM",
    "Hit",
    "Id",
    "IdType",
    "IdsArg",
    "MetadataArg",
    "RawHit",
    "Record",
    "new_hit",
]

IdType = Literal["int", "str"]
"""The kind of ids a store holds."""

Id = int | str
"""A record id."""

IdsArg = Sequence[Id] | NDArray[Any] | Id
"""Ids as the store methods accept them: a sequence, a 1-D array, or one id."""

MetadataArg = Sequence[Mapping[str, Any] | None] | Mapping[str, Any] | None
"""Metadata as ``add``/``upsert`` accept it: one mapping (or ``None``) per vector, or one mapping for one vector."""

MAX_STR_ID_BYTES = 512
"""Longest string id, in UTF-8 bytes."""

MAX_METADATA_BYTES = 65536
"""Largest metadata record, as compact UTF-8 JSON (Milvus' JSON field limit)."""

MAX_METADATA_DEPTH = 32
"""Deepest nesting of lists and objects inside one metadata record."""

MAX_VECTOR_NORM = 1e18
"""Longest vector (L2 norm) an ``ip`` or ``l2`` store accepts, so that no score or distance overflows ``float32``.

A cosine store normalises every vector itself and accepts any finite vector other than zero."""

MAX_K = 16384
"""The most hits one Milvus search returns (the server's top-k limit).

``k`` itself has no upper bound: every store returns ``min(k, matching records)`` hits. A Milvus store asks the
server for ``min(k, MAX_K)``, and refuses a ``k`` above ``MAX_K`` (ConfigError) only when more than ``MAX_K``
records match, since it could not return them all."""

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
"""The range of int ids (and of integers in metadata)."""


@dataclass(frozen=True)
class Hit:
    """One search result.

    Attributes:
        id: The record id.
        score: Higher = more similar, for every metric (cosine similarity, inner product, or ``-distance``).
        distance: In the metric's own units (``1 - cosine``, the inner product, or squared L2).
        metadata: The record's metadata.
    """

    id: Id
    score: float
    distance: float
    metadata: dict[str, Any] = field(default_factory=dict)


_make_object = object.__new__


def new_hit(id_: Id, score: float, distance: float, metadata: dict[str, Any]) -> Hit:
    """``Hit(id_, score, distance, metadata)`` without the frozen dataclass's per-field ``__setattr__`` calls.

    For stores that build many hits per query; the result is an ordinary, equal :class:`Hit`.
    """
    hit: Hit = _make_object(Hit)
    fields = hit.__dict__
    fields["id"] = id_
    fields["score"] = score
    fields["distance"] = distance
    fields["metadata"] = metadata
    return hit


@dataclass(frozen=True)
class Record:
    """A stored record, as returned by :meth:`~audiovec.stores.VectorStore.get`.

    Attributes:
        id: The record id.
        vector: ``float32[dim]`` as stored: unit-normalised in a cosine store, decoded (approximate) in a
            compressed index (``ivf_pq``, ``ivf_sq8``).
        metadata: The record's metadata.
    """

    id: Id
    vector: NDArray[np.float32]
    metadata: dict[str, Any] = field(default_factory=dict)


RawHit = tuple[Id, float, str | dict[str, Any]]
"""What a backend's ``_search`` returns per hit: id, raw metric value, metadata (JSON text or dict)."""

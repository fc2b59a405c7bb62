"""Store records: one id scheme and one set of metadata keys for every vector audiovec stores.

An *item* (a file, an upload, a track) becomes one vector per segment — one segment for whole-file pooling.
Every vector gets:

* the id ``<item key>#<segment>`` (:func:`vector_id`; segments count from 0), so a rerun of the same item writes
  the same ids;
* the caller's metadata, whose keys never start with ``_``;
* audiovec's own fields, which always do (:data:`RESERVED_KEYS`): ``_item`` (the item key), ``_segment``,
  ``_segments`` (how many the item has), ``_start`` / ``_end`` (seconds into the item), ``_duration`` (of the
  item, seconds) and, when the content was hashed, ``_sha256``; items indexed from files also carry ``_file``
  (the file's name) and ``_path`` (its absolute path).

Items indexed from files (``audiovec index``, :func:`audiovec.ingest.ray.ray_index`) are keyed by their content:
:func:`content_key` (the first 32 hex digits of the SHA-256), so the same content always gets the same ids.

Filters use the same names: ``{"_item": "song.mp3"}`` selects every segment of one item.

Example:
    >>> vector_id("song.mp3", 3)
    'song.mp3#3'
    >>> parse_vector_id("dir/a#b.wav#12")
    ('dir/a#b.wav', 12)
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from audiovec.embeddings import PooledEmbeddings
from audiovec.errors import ConfigError

__all__ = [
    "DURATION",
    "END",
    "FILE",
    "ITEM",
    "PATH",
    "RESERVED_KEYS",
    "SEGMENT",
    "SEGMENTS",
    "SHA256",
    "START",
    "check_user_metadata",
    "content_key",
    "file_fields",
    "parse_vector_id",
    "vector_id",
    "vector_records",
]

ITEM = "_item"
SEGMENT = "_segment"
SEGMENTS = "_segments"
START = "_start"
END = "_end"
DURATION = "_duration"
SHA256 = "_sha256"
FILE = "_file"
PATH = "_path"
#: The metadata keys audiovec writes with every vector (callers' keys never start with ``_``).
RESERVED_KEYS: tuple[str, ...] = (ITEM, SEGMENT, SEGMENTS, START, END, DURATION, SHA256)

_SEP = "#"
#: Hex digits of the SHA-256 in a content key (128 bits: collisions are not a practical concern).
_CONTENT_KEY_HEX = 32


def content_key(digest: str) -> str:
    """The item key of content whose SHA-256 is ``digest``: its first 32 hex digits."""
    return digest[:_CONTENT_KEY_HEX]


def file_fields(path: str) -> dict[str, str]:
    """The record fields of an item indexed from a file: ``_file`` (its name) and ``_path`` (its absolute path)."""
    p = Path(path)
    return {FILE: p.name, PATH: str(p.resolve())}


def vector_id(key: str, segment: int) -> str:
    """The id of segment ``segment`` of item ``key``: ``<key>#<segment>``."""
    return f"{key}{_SEP}{segment}"


def parse_vector_id(vid: str) -> tuple[str, int]:
    """Split a vector id into (item key, segment) (keys may themselves contain ``#``).

    Raises:
        ConfigError: Not an id made by :func:`vector_id`.
    """
    key, sep, seg = vid.rpartition(_SEP)
    if not sep or not key or not seg.isdigit():
        raise ConfigError(f"{vid!r} is not a vector id of the form '<item>#<segment>'")
    return key, int(seg)


def check_user_metadata(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    """The caller's metadata as a dict, refusing keys that start with ``_`` (audiovec's own).

    Raises:
        ConfigError: A key that is not a string or starts with ``_``.
    """
    out = dict(metadata or {})
    for k in out:
        if not isinstance(k, str) or k.startswith("_"):
            raise ConfigError(f"invalid metadata key {k!r}: keys starting with '_' are audiovec's own")
    return out


def vector_records(
    key: str,
    pooled: PooledEmbeddings,
    *,
    duration: float,
    metadata: Mapping[str, Any] | None = None,
    digest: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> tuple[list[str], list[dict[str, Any]]]:
    """Ids and metadata for the pooled vectors of one item.

    Args:
        key: The item key.
        pooled: Its pooled vectors (one per segment).
        duration: The item's duration in seconds.
        metadata: The caller's metadata (keys must not start with ``_``), copied onto every vector.
        digest: The SHA-256 of the item's content, stored as ``_sha256`` when given.
        extra: More reserved fields of the caller's own (keys must start with ``_``), e.g. a service's upload
            time.

    Returns:
        ``(ids, metadata)``, one entry per vector, in segment order.

    Raises:
        ConfigError: A metadata key in the wrong namespace.
    """
    user = check_user_metadata(metadata)
    own = dict(extra or {})
    for k in own:
        if not k.startswith("_") or k in RESERVED_KEYS:
            raise ConfigError(f"extra record field {k!r} must start with '_' and not be one of {RESERVED_KEYS}")
    n = len(pooled)
    base: dict[str, Any] = {**user, **own, ITEM: key, SEGMENTS: n, DURATION: round(float(duration), 6)}
    if digest is not None:
        base[SHA256] = digest
    ids = [vector_id(key, i) for i in range(n)]
    metas = [
        {**base, SEGMENT: i, START: round(float(pooled.starts[i]), 6), END: round(float(pooled.ends[i]), 6)}
        for i in range(n)
    ]
    return ids, metas

"""The ingest path: audio sources → frame embeddings → pooled vectors → store records.

Every part of audiovec that turns audio into stored vectors goes through this package, so the same rules hold
everywhere: files are read once, decoded once per model sample rate, streamed when longer than
:data:`STREAM_ABOVE_S`, cached by content, and stored under one id scheme with one set of metadata keys.

* :class:`Source` and :func:`sources_from_paths` / :func:`find_audio_files` — what goes in;
* :class:`Ingest` — sources to frame embeddings (:class:`ItemResult`, :class:`Failure`, :class:`EmbedStats`);
* :class:`EmbeddingCache` — frames on disk, keyed by embedder spec and content hash;
* :mod:`audiovec.ingest.records` — vector ids (``<item>#<segment>``) and the ``_``-prefixed record fields;
* :class:`PathPattern` (:mod:`audiovec.ingest.paths`) — metadata fields (label, group...) parsed from a file's path;
* :func:`extract` / :class:`ExtractResult` / :func:`load_vectors` — many files into one array (``audiovec embed``).

Example:
    >>> from audiovec import Pipeline, get_embedder
    >>> from audiovec.data import demo_dir
    >>> from audiovec.ingest import extract
    >>> extract([demo_dir()], get_embedder("mfcc"), Pipeline.parse("mean+l2"), progress=False).records[0]["id"][-2:]
    '#0'
"""

from __future__ import annotations

from audiovec.ingest.cache import EmbeddingCache
from audiovec.ingest.engine import READ_WHOLE_BELOW_BYTES, STREAM_ABOVE_S, Ingest
from audiovec.ingest.extract import ExtractResult, extract, load_vectors
from audiovec.ingest.paths import PathPattern
from audiovec.ingest.records import parse_vector_id, vector_id, vector_records
from audiovec.ingest.results import EmbedStats, Failure, ItemResult, Monitor
from audiovec.ingest.sources import Source, find_audio_files, sources_from_paths

__all__ = [
    "READ_WHOLE_BELOW_BYTES",
    "STREAM_ABOVE_S",
    "EmbedStats",
    "EmbeddingCache",
    "ExtractResult",
    "Failure",
    "Ingest",
    "ItemResult",
    "Monitor",
    "PathPattern",
    "Source",
    "extract",
    "find_audio_files",
    "load_vectors",
    "parse_vector_id",
    "sources_from_paths",
    "vector_id",
    "vector_records",
]

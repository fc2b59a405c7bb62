"""audiovec: audio embeddings, vector stores and a benchmark harness for audio similarity search.

Importing ``audiovec`` is cheap: it loads NumPy, soundfile and pydantic, never torch, tensorflow, faiss, pymilvus
or pandas. Models and store backends are imported when :func:`get_embedder` / :func:`get_store` build them, and
the heavier names below (``Benchmark``, ``Identifier``, ``FaissStore``...) when first used.

The layers, from the bottom: ``audio`` (decode, formats) → ``embedders`` and ``pooling`` → ``stores`` →
``ingest`` (the one path from audio to stored vectors) → ``benchmark``, ``identify``, ``service`` → ``cli``.

Example:
    >>> import audiovec
    >>> "mfcc" in audiovec.list_embedders()
    True
"""

from __future__ import annotations

from audiovec import errors
from audiovec._version import __version__
from audiovec.audio import Audio, AudioInfo, info, load, stream
from audiovec.embedders import (
    Embedder,
    EmbedderConfig,
    EmbedderSpec,
    FramedEmbedder,
    embedder_info,
    get_embedder,
    list_embedders,
    register_embedder,
)
from audiovec.embeddings import FrameEmbeddings, PooledEmbeddings
from audiovec.pooling import L2Normalize, Pipeline, Pool, Segments
from audiovec.stores import (
    And,
    Eq,
    ExactStore,
    Hit,
    In,
    Not,
    Or,
    Range,
    Record,
    VectorStore,
    get_store,
    list_stores,
    parse_filter,
    register_store,
    store_info,
)

__all__ = [
    "And",
    "Audio",
    "AudioInfo",
    "Benchmark",
    "BenchmarkConfig",
    "BenchmarkResult",
    "Collection",
    "Embedder",
    "EmbedderConfig",
    "EmbedderSpec",
    "Eq",
    "ExactStore",
    "FaissStore",
    "FrameEmbeddings",
    "FramedEmbedder",
    "Hit",
    "Identifier",
    "In",
    "Ingest",
    "L2Normalize",
    "Not",
    "Or",
    "Pipeline",
    "Pool",
    "PooledEmbeddings",
    "Range",
    "Record",
    "Segments",
    "VectorStore",
    "__version__",
    "embedder_info",
    "errors",
    "extract",
    "get_embedder",
    "get_store",
    "info",
    "list_embedders",
    "list_stores",
    "load",
    "parse_filter",
    "register_embedder",
    "register_store",
    "store_info",
    "stream",
]


#: Names imported on first use: ``name`` → ``module`` (they need optional packages or are heavier to import).
_LAZY: dict[str, str] = {
    "Benchmark": "audiovec.benchmark",
    "BenchmarkConfig": "audiovec.benchmark",
    "BenchmarkResult": "audiovec.benchmark",
    "Collection": "audiovec.service.collection",
    "FaissStore": "audiovec.stores.faiss",
    "Identifier": "audiovec.identify",
    "Ingest": "audiovec.ingest",
    "extract": "audiovec.ingest",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'audiovec' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))

"""audiovec: audio embeddings, vector stores and a benchmark harness for audio similarity search.

Importing ``audiovec`` loads nothing: every name below is imported when first used (``audiovec.load`` loads the
audio layer, ``audiovec.Benchmark`` the benchmark...), so a script or command pays only for what it uses, and
never for torch, tensorflow, faiss, pymilvus or pandas until a model or store backend needs them.

The layers, from the bottom: ``audio`` (decode, formats) → ``embedders`` and ``pooling`` → ``stores`` →
``ingest`` (the one path from audio to stored vectors) → ``benchmark``, ``identify``, ``service`` → ``cli``.

Example:
    >>> import audiovec
    >>> "mfcc" in audiovec.list_embedders()
    True
"""

from __future__ import annotations

from typing import TYPE_CHECKING as _TYPE_CHECKING

if _TYPE_CHECKING:  # the names below, for type checkers; at run time each is imported on first use
    from audiovec import errors
    from audiovec._version import __version__
    from audiovec.audio import Audio, AudioInfo, info, load, stream
    from audiovec.benchmark import Benchmark, BenchmarkConfig, BenchmarkResult
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
    from audiovec.identify import Identifier
    from audiovec.ingest import Ingest, extract
    from audiovec.pooling import L2Normalize, Pipeline, Pool, Segments
    from audiovec.service.collection import Collection
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
    from audiovec.stores.faiss import FaissStore

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


#: Every public name, imported on first use: ``name`` → ``module``. ``import audiovec`` itself loads nothing
#: else, so a command that needs one corner of the library (``audiovec identify``) pays only for that corner.
_LAZY: dict[str, str] = {
    "errors": "audiovec",
    "__version__": "audiovec._version",
    **dict.fromkeys(("Audio", "AudioInfo", "info", "load", "stream"), "audiovec.audio"),
    **dict.fromkeys(
        (
            "Embedder",
            "EmbedderConfig",
            "EmbedderSpec",
            "FramedEmbedder",
            "embedder_info",
            "get_embedder",
            "list_embedders",
            "register_embedder",
        ),
        "audiovec.embedders",
    ),
    **dict.fromkeys(("FrameEmbeddings", "PooledEmbeddings"), "audiovec.embeddings"),
    **dict.fromkeys(("L2Normalize", "Pipeline", "Pool", "Segments"), "audiovec.pooling"),
    **dict.fromkeys(
        (
            "And",
            "Eq",
            "ExactStore",
            "Hit",
            "In",
            "Not",
            "Or",
            "Range",
            "Record",
            "VectorStore",
            "get_store",
            "list_stores",
            "parse_filter",
            "register_store",
            "store_info",
        ),
        "audiovec.stores",
    ),
    **dict.fromkeys(("Benchmark", "BenchmarkConfig", "BenchmarkResult"), "audiovec.benchmark"),
    "Collection": "audiovec.service.collection",
    "FaissStore": "audiovec.stores.faiss",
    "Identifier": "audiovec.identify",
    **dict.fromkeys(("Ingest", "extract"), "audiovec.ingest"),
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'audiovec' has no attribute {name!r}")
    import importlib

    if name == "errors":
        value: object = importlib.import_module("audiovec.errors")
    else:
        value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))

"""audiovec: audio embeddings, vector stores and a benchmark harness for audio similarity search.

Importing ``audiovec`` is cheap: it loads NumPy, soundfile and pydantic, never torch, tensorflow, faiss or
pymilvus. Models and store backends are imported when :func:`get_embedder` / :func:`get_store` build them.

Example:
    >>> import audiovec
    >>> "mfcc" in audiovec.list_embedders()
    True
"""

from __future__ import annotations

from audiovec import errors
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

__version__ = "0.1.0"

__all__ = [
    "And",
    "Audio",
    "AudioInfo",
    "Embedder",
    "EmbedderConfig",
    "EmbedderSpec",
    "Eq",
    "ExactStore",
    "FaissStore",
    "FrameEmbeddings",
    "FramedEmbedder",
    "Hit",
    "In",
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


def __getattr__(name: str) -> object:
    if name == "FaissStore":  # needs faiss: imported on first use
        from audiovec.stores.faiss import FaissStore

        return FaissStore
    raise AttributeError(f"module 'audiovec' has no attribute {name!r}")

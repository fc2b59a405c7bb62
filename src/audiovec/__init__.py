"""audiovec: audio embeddings, vector stores and a benchmark harness for audio similarity search.

Importing ``audiovec`` is cheap: it loads NumPy, soundfile and pydantic, never torch or tensorflow. Models are
imported when :func:`get_embedder` builds them.

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

__version__ = "0.1.0"

__all__ = [
    "Audio",
    "AudioInfo",
    "Embedder",
    "EmbedderConfig",
    "EmbedderSpec",
    "FrameEmbeddings",
    "FramedEmbedder",
    "L2Normalize",
    "Pipeline",
    "Pool",
    "PooledEmbeddings",
    "Segments",
    "__version__",
    "embedder_info",
    "errors",
    "get_embedder",
    "info",
    "list_embedders",
    "load",
    "register_embedder",
    "stream",
]

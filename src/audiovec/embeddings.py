"""Containers for embeddings: frame-level output of an embedder and pooled (per file or per segment) vectors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["FrameEmbeddings", "PooledEmbeddings"]


class _Rows:
    """What both containers share: ``vectors`` as ``[rows, dim]``."""

    vectors: NDArray[np.float32]

    @property
    def dim(self) -> int:
        """Vector dimension."""
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return int(self.vectors.shape[0])


@dataclass(frozen=True, eq=False)
class FrameEmbeddings(_Rows):
    """Frame-level embeddings of one audio input.

    Attributes:
        vectors: ``float32[frames, dim]``, one row per analysis frame.
        timestamps: ``float64[frames]``, the centre time of each frame in seconds (centre of the part of the
            window that lies inside the audio), strictly increasing.
        duration: Duration of the embedded audio in seconds.
        window_s: Length of one analysis frame in seconds.
        hop_s: Step between frames in seconds.
        source: Name of the input (path...), when known.
        model: Name of the embedder that produced them.
    """

    vectors: NDArray[np.float32]
    timestamps: NDArray[np.float64]
    duration: float
    window_s: float
    hop_s: float
    source: str | None = None
    model: str | None = None

    def __post_init__(self) -> None:
        if self.vectors.ndim != 2:
            raise ValueError(f"vectors must be [frames, dim], got shape {self.vectors.shape}")
        if self.timestamps.shape != (self.vectors.shape[0],):
            raise ValueError(f"timestamps shape {self.timestamps.shape} does not match {self.vectors.shape[0]} frames")

    def __repr__(self) -> str:
        return (
            f"FrameEmbeddings(model={self.model!r}, frames={len(self)}, dim={self.dim}, "
            f"duration={self.duration:.3f}s, source={self.source!r})"
        )


@dataclass(frozen=True, eq=False)
class PooledEmbeddings(_Rows):
    """Fixed-size vectors made from frame embeddings: one per file, or one per segment of a long file.

    Attributes:
        vectors: ``float32[segments, dim]`` (one row for whole-file pooling).
        starts: ``float64[segments]``, segment start times in seconds.
        ends: ``float64[segments]``, segment end times in seconds.
        source: Name of the input, when known.
        model: Name of the embedder.
        steps: Description of the pooling steps applied, for provenance.
    """

    vectors: NDArray[np.float32]
    starts: NDArray[np.float64]
    ends: NDArray[np.float64]
    source: str | None = None
    model: str | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)

    def __repr__(self) -> str:
        return f"PooledEmbeddings(model={self.model!r}, vectors={len(self)}, dim={self.dim}, source={self.source!r})"

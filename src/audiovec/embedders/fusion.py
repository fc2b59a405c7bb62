"""Fusion: one embedder made of several, each pooled, L2-normalised, weighted and concatenated.

Models trained for different things see different aspects of a sound (YAMNet's AudioSet classes, BirdNET's
bird and environment classes, MFCC's timbre); concatenating their pooled vectors lets one search use all of them.
A :class:`FusionEmbedder` is an ordinary registered embedder (``fusion``), so it works wherever an embedder
does: the :class:`~audiovec.Benchmark`, ``audiovec index``, collections and service presets::

    from audiovec import get_embedder

    fused = get_embedder("fusion", members=[
        {"name": "yamnet", "pooling": "mean"},
        {"name": "birdnet", "pooling": "mean", "weight": 0.5},
    ])

For every window of ``window_s`` seconds (every ``hop_s``; one window for shorter audio), each member's frames
whose centres lie in the window are pooled with the member's ``pooling``, L2-normalised, multiplied by
``sqrt(weight / total weight)`` and concatenated: one "frame" per window, of dimension the sum of the members'
pooled dimensions. The cosine similarity of two fused vectors is therefore the weighted mean of the members'
cosine similarities, and a fused vector has unit length. With the default window (10 s), a clip shorter than
10 s gives one vector, the pooled fusion of the whole clip; pool the windows of longer files as usual
(``mean+l2``).

The spec records every member's own spec (name, version, parameters), pooling and weight, so caches and results
tell fusions apart.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from audiovec.audio import Audio, AudioSource
from audiovec.embedders.base import EmbedderConfig, EmbedderSpec, validated_config
from audiovec.embeddings import FrameEmbeddings
from audiovec.pooling import Pipeline, l2_normalize, pool, segment_bounds, segment_frames

__all__ = ["FusionConfig", "FusionEmbedder", "FusionMember"]


class FusionMember(BaseModel):
    """One model of a fusion.

    Attributes:
        name: Registry name of the embedder (``audiovec list``).
        params: Its parameters.
        pooling: How its frames are pooled in each window (``mean``, ``max``, ``mean_std``, ``linear_concat:N``);
            the result is always L2-normalised.
        weight: Its share of the fused cosine similarity (relative to the other members' weights).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    params: dict[str, Any] = Field(default_factory=dict)
    pooling: str = "mean"
    weight: float = Field(1.0, gt=0, allow_inf_nan=False)

    @field_validator("pooling")
    @classmethod
    def _pooling(cls, v: str) -> str:
        Pipeline.parse(v)  # raises ConfigError (a ValueError) on a malformed pooling
        return v.removesuffix("+l2")


class FusionConfig(EmbedderConfig):
    """Configuration of :class:`FusionEmbedder`.

    Attributes:
        members: The models, each a :class:`FusionMember` (or just its registry name).
        window_s: Length of the windows fused into one vector, in seconds.
        hop_s: Step between windows (default: ``window_s``, no overlap).
    """

    members: list[FusionMember] = Field(min_length=1)
    window_s: float = Field(10.0, gt=0, allow_inf_nan=False)
    hop_s: float | None = Field(None, gt=0, allow_inf_nan=False)

    @field_validator("members", mode="before")
    @classmethod
    def _names(cls, v: Any) -> Any:
        if isinstance(v, (list, tuple)):
            return [{"name": m} if isinstance(m, str) else m for m in v]
        return v


class FusionEmbedder:
    """Several embedders fused into one (see the module docs).

    Args:
        config: A :class:`FusionConfig`, a dict of its fields, or ``None``.
        **params: Its fields as keyword arguments, e.g. ``members=["mfcc", "logmel"]``.

    Raises:
        ConfigError: Invalid parameters, or a member that cannot be built (its own error, named).
        MissingDependencyError / ModelLoadError: A member's model cannot be had (raised by that member).
    """

    name: ClassVar[str] = "fusion"
    version: ClassVar[str] = "1"
    Config: ClassVar[type[FusionConfig]] = FusionConfig

    def __init__(self, config: FusionConfig | dict[str, Any] | None = None, **params: Any) -> None:
        self.config = validated_config(self.name, FusionConfig, config, params)
        from audiovec.embedders import get_embedder

        self.members = [get_embedder(m.name, m.params) for m in self.config.members]
        total = sum(m.weight for m in self.config.members)
        self._scales = [math.sqrt(m.weight / total) for m in self.config.members]
        self._poolings = [Pipeline.parse(m.pooling).pool_step for m in self.config.members]
        self._dims = [p.output_dim(e.dim) for p, e in zip(self._poolings, self.members, strict=True)]

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as its configuration: a worker process builds its own members (and loads their models)."""
        return (type(self), (self.config,))

    # ------------------------------------------------------------------ geometry
    @property
    def sample_rate(self) -> int:
        """The highest of the members' rates: audio is decoded at it and each member resamples to its own."""
        return max(e.sample_rate for e in self.members)

    @property
    def dim(self) -> int:
        """Sum of the members' pooled dimensions."""
        return sum(self._dims)

    @property
    def window_s(self) -> float:
        """Length of a fused window."""
        return self.config.window_s

    @property
    def hop_s(self) -> float:
        """Step between fused windows."""
        return self.config.hop_s or self.config.window_s

    # ------------------------------------------------------------------ identity
    def spec(self) -> EmbedderSpec:
        """Every member's own spec, pooling and weight, and the window."""
        members = [
            {**e.spec().model_dump(mode="json"), "pooling": m.pooling, "weight": m.weight}
            for m, e in zip(self.config.members, self.members, strict=True)
        ]
        params = {"members": members, "window_s": self.window_s, "hop_s": self.hop_s}
        return EmbedderSpec(name=self.name, version=self.version, params=params)

    def __repr__(self) -> str:
        names = "+".join(f"{m.name}:{m.pooling}" for m in self.config.members)
        return f"FusionEmbedder({names}, window_s={self.window_s:g})"

    # ------------------------------------------------------------------ embedding
    def embed(self, audio: Audio) -> FrameEmbeddings:
        """Embed one input with every member and fuse (see the module docs)."""
        return self._fuse([e.embed(audio) for e in self.members])

    def embed_batch(self, audios: Sequence[Audio]) -> list[FrameEmbeddings]:
        """Embed several inputs, each member batching its own model calls."""
        per_member = [e.embed_batch(audios) for e in self.members]
        return [self._fuse(list(parts)) for parts in zip(*per_member, strict=True)]

    def embed_file(self, source: AudioSource, block_s: float = 60.0) -> FrameEmbeddings:
        """Embed a file with bounded memory: each member streams it in turn."""
        return self._fuse([e.embed_file(source, block_s) for e in self.members])

    def _fuse(self, parts: list[FrameEmbeddings]) -> FrameEmbeddings:
        duration = max(p.duration for p in parts)
        starts, ends = segment_bounds(duration, self.window_s, self.hop_s)
        out = np.empty((len(starts), self.dim), dtype=np.float32)
        col = 0
        for frames, step, scale, dim in zip(parts, self._poolings, self._scales, self._dims, strict=True):
            windows = [segment_frames(frames, s, e) for s, e in zip(starts, ends, strict=True)]
            block = np.stack([pool(w, step.mode, step.n) for w in windows])
            out[:, col : col + dim] = l2_normalize(block, axis=1) * np.float32(scale)
            col += dim
        return FrameEmbeddings(
            vectors=out,
            timestamps=(starts + ends) / 2.0,
            duration=duration,
            window_s=self.window_s,
            hop_s=self.hop_s,
            source=parts[0].source,
            model=self.name,
        )

"""Windowing and pooling: frame embeddings → one vector per file, or one vector per segment.

Pure functions do the arithmetic (:func:`mean_pool`, :func:`max_pool`, :func:`mean_std_pool`,
:func:`linear_concat`, :func:`l2_normalize`, :func:`segment_bounds`); small pydantic steps compose them into a
serialisable :class:`Pipeline`::

    Pipeline(steps=[Segments(window_s=10, hop_s=5), Pool(mode="mean"), L2Normalize()])

turns a 10-minute track into 119 searchable vectors with their start/end times, and round-trips through JSON
(``Pipeline.model_validate_json(p.model_dump_json())``) so a run records exactly how its vectors were made.

Pooling modes:

* ``mean``: average of the frames, ``[dim]``.
* ``max``: element-wise maximum, ``[dim]``.
* ``mean_std``: statistics pooling, mean then standard deviation, ``[2 * dim]``.
* ``linear_concat``: ``n`` frames sampled evenly along the input (first and last included, nearest index),
  concatenated and L2-normalised, ``[n * dim]`` — the scheme of the ESC-50 vector-search experiment (64 frames ×
  512 = 32768). With fewer than ``n`` frames, frames are repeated (each of the ``n`` evenly spaced positions takes
  its nearest frame), so the dimension is always ``n * dim`` and the order of frames is kept.

No pooled vector is ever NaN or infinite: a :class:`Pipeline` refuses non-finite frames and a non-finite result
with :class:`~audiovec.errors.NonFiniteEmbeddingError` (naming the source), and the arithmetic is done so that
finite frames never overflow (means and deviations in float64, L2 norms of vectors scaled to a largest magnitude
of 1).
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, model_validator

from audiovec.embedders.framing import check_finite_frames, nonfinite_rows
from audiovec.embeddings import FrameEmbeddings, PooledEmbeddings
from audiovec.errors import ConfigError, NonFiniteEmbeddingError

__all__ = [
    "POOLING_MODES",
    "L2Normalize",
    "Pipeline",
    "Pool",
    "PoolingMode",
    "Segments",
    "l2_normalize",
    "linear_concat",
    "max_pool",
    "mean_pool",
    "mean_std_pool",
    "pool",
    "segment_bounds",
    "segment_frames",
]

PoolingMode = Literal["mean", "max", "mean_std", "linear_concat"]
#: The accepted pooling modes.
POOLING_MODES: tuple[str, ...] = ("mean", "max", "mean_std", "linear_concat")


# --------------------------------------------------------------------------------------------- pure functions
def _frames(vectors: NDArray[np.float32]) -> NDArray[np.float32]:
    v = np.asarray(vectors, dtype=np.float32)
    if v.ndim != 2 or v.shape[0] == 0:
        raise ConfigError(f"pooling needs a non-empty [frames, dim] array, got shape {v.shape}")
    return v


def mean_pool(vectors: NDArray[np.float32]) -> NDArray[np.float32]:
    """Mean over frames: ``[frames, dim] → [dim]``."""
    out: NDArray[np.float32] = _frames(vectors).mean(axis=0, dtype=np.float64).astype(np.float32)
    return out


def max_pool(vectors: NDArray[np.float32]) -> NDArray[np.float32]:
    """Element-wise maximum over frames: ``[frames, dim] → [dim]``."""
    out: NDArray[np.float32] = _frames(vectors).max(axis=0)
    return out


def mean_std_pool(vectors: NDArray[np.float32]) -> NDArray[np.float32]:
    """Statistics pooling, mean then (population) standard deviation: ``[frames, dim] → [2 * dim]``.

    A single frame has a standard deviation of zero.
    """
    v = _frames(vectors).astype(np.float64)
    return np.concatenate([v.mean(axis=0), v.std(axis=0)]).astype(np.float32)


def linear_concat(vectors: NDArray[np.float32], n: int = 64, normalize: bool = True) -> NDArray[np.float32]:
    """Sample ``n`` frames evenly (first and last included), concatenate, and L2-normalise.

    Args:
        vectors: ``float32[frames, dim]``.
        n: Frames to keep; the output has ``n * dim`` values whatever ``frames`` is (frames are repeated when
            there are fewer than ``n``).
        normalize: L2-normalise the concatenation (the published scheme does).

    Returns:
        ``float32[n * dim]``.
    """
    if n < 1:
        raise ConfigError(f"linear_concat needs n >= 1, got {n}")
    v = _frames(vectors)
    idx = np.rint(np.linspace(0, v.shape[0] - 1, n)).astype(np.int64)
    out: NDArray[np.float32] = v[idx].reshape(-1)
    return l2_normalize(out) if normalize else out


def l2_normalize(x: NDArray[np.floating[Any]], axis: int = -1, eps: float = 1e-12) -> NDArray[np.float32]:
    """Divide by the L2 norm along ``axis``; an all-zero vector stays zero.

    Every vector is first divided by its largest magnitude (in float64), so the norm neither overflows nor
    underflows: any finite non-zero vector, however large or tiny its values, comes out with unit length.

    Args:
        x: Vectors, e.g. ``[rows, dim]``.
        axis: The axis along which vectors lie.
        eps: Smallest norm divided by (after the scaling, only an all-zero vector has a norm below 1).

    Returns:
        ``float32``, the shape of ``x``.
    """
    a = np.array(x, dtype=np.float64)  # a copy, scaled in place
    if a.size == 0:
        return a.astype(np.float32)
    peak = np.maximum(a.max(axis=axis, keepdims=True), -a.min(axis=axis, keepdims=True))
    a /= np.where(peak > 0, peak, 1.0)
    a /= np.maximum(np.linalg.norm(a, axis=axis, keepdims=True), eps)
    out: NDArray[np.float32] = a.astype(np.float32)
    return out


def pool(vectors: NDArray[np.float32], mode: str, n: int = 64) -> NDArray[np.float32]:
    """Apply the pooling ``mode`` (one of :data:`POOLING_MODES`) to ``[frames, dim]``."""
    if mode == "mean":
        return mean_pool(vectors)
    if mode == "max":
        return max_pool(vectors)
    if mode == "mean_std":
        return mean_std_pool(vectors)
    if mode == "linear_concat":
        return linear_concat(vectors, n)
    raise ConfigError(f"unknown pooling mode {mode!r}; choose one of {', '.join(POOLING_MODES)}")


def segment_bounds(
    duration: float, window_s: float, hop_s: float | None = None
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Start and end times of the segments that cover ``duration`` seconds.

    Segments start every ``hop_s`` seconds (default: ``window_s``, no overlap) and last ``window_s``; the last one
    is the first that reaches the end, clipped to ``duration``. Audio shorter than one window is one segment.
    """
    hop = window_s if hop_s is None else hop_s
    if window_s <= 0 or hop <= 0:
        raise ConfigError(f"segment window and hop must be > 0, got window_s={window_s}, hop_s={hop}")
    if duration <= window_s:
        n = 1
    else:
        n = 1 + math.ceil((duration - window_s) / hop - 1e-9)
    starts = np.arange(n, dtype=np.float64) * hop
    ends = np.minimum(starts + window_s, duration)
    return starts, ends


# --------------------------------------------------------------------------------------------- steps
class _Step(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Segments(_Step):
    """Split the input into windows of ``window_s`` seconds every ``hop_s`` seconds; pool each separately.

    A frame belongs to every segment that contains its centre time; a segment that contains no frame centre
    (possible when the segment is shorter than the embedder's hop) takes the frame nearest to its middle.
    """

    kind: Literal["segments"] = "segments"
    window_s: float = Field(gt=0)
    hop_s: float | None = Field(None, gt=0, description="Default: window_s (no overlap).")


class Pool(_Step):
    """Pool frames into one vector with ``mode`` (``n`` is the frame count of ``linear_concat``)."""

    kind: Literal["pool"] = "pool"
    mode: PoolingMode = "mean"
    n: int = Field(64, ge=1, le=4096)

    def output_dim(self, dim: int) -> int:
        """Output dimension for frame vectors of ``dim``."""
        return {"mean": dim, "max": dim, "mean_std": 2 * dim, "linear_concat": self.n * dim}[self.mode]


class L2Normalize(_Step):
    """Scale every pooled vector to unit L2 norm (needed for cosine/inner-product search)."""

    kind: Literal["l2"] = "l2"


Step = Annotated[Segments | Pool | L2Normalize, Field(discriminator="kind")]


class Pipeline(BaseModel):
    """A serialisable recipe from frame embeddings to fixed vectors.

    Order: optional :class:`Segments`, exactly one :class:`Pool`, optional :class:`L2Normalize`.

    Example:
        >>> p = Pipeline.parse("mean_std+l2", segments="10:5")
        >>> [s.kind for s in p.steps]
        ['segments', 'pool', 'l2']
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    steps: list[Step] = Field(default_factory=lambda: list[Step]([Pool()]))

    @model_validator(mode="after")
    def _check_order(self) -> Pipeline:
        kinds = [s.kind for s in self.steps]
        if kinds.count("pool") != 1:
            raise ValueError(f"a pipeline needs exactly one 'pool' step, got {kinds}")
        allowed = [["pool"], ["segments", "pool"], ["pool", "l2"], ["segments", "pool", "l2"]]
        if kinds not in allowed:
            raise ValueError(f"steps must be [segments] pool [l2] in that order, got {kinds}")
        return self

    @classmethod
    def parse(cls, pooling: str = "mean", segments: str | None = None) -> Pipeline:
        """Build a pipeline from short strings, as the CLI does.

        Args:
            pooling: ``MODE[:N][+l2]``, e.g. ``"mean"``, ``"linear_concat:64"``, ``"mean_std+l2"``.
            segments: ``"WINDOW[:HOP]"`` in seconds, e.g. ``"10:5"``; ``None`` pools the whole input.

        Raises:
            ConfigError: A malformed string.
        """
        try:
            steps: list[Segments | Pool | L2Normalize] = []
            if segments:
                w, _, h = segments.partition(":")
                steps.append(Segments(window_s=float(w), hop_s=float(h) if h else None))
            spec, *extra = pooling.split("+")
            mode, _, n = spec.partition(":")
            steps.append(Pool(mode=mode, n=int(n)) if n else Pool(mode=mode))
            for e in extra:
                if e != "l2":
                    raise ValueError(f"unknown pooling suffix {e!r} (only '+l2')")
                steps.append(L2Normalize())
            return cls(steps=steps)
        except ValueError as err:  # pydantic's ValidationError is a ValueError
            raise ConfigError(f"invalid pooling {pooling!r} / segments {segments!r}: {err}") from err

    @property
    def pool_step(self) -> Pool:
        """The pooling step."""
        return next(s for s in self.steps if isinstance(s, Pool))

    def output_dim(self, dim: int) -> int:
        """Dimension of the pooled vectors for frame vectors of ``dim``."""
        return self.pool_step.output_dim(dim)

    def __call__(self, frames: FrameEmbeddings) -> PooledEmbeddings:
        """Apply the pipeline to one input's frame embeddings.

        Raises:
            ConfigError: There are no frames.
            NonFiniteEmbeddingError: A frame, or a pooled vector, holds NaN or Inf (the message names the source).
        """
        if len(frames) == 0:
            raise ConfigError(f"cannot pool zero frames (source {frames.source!r})")
        check_finite_frames(frames)
        seg = next((s for s in self.steps if isinstance(s, Segments)), None)
        p = self.pool_step
        if seg is None:
            starts = np.zeros(1)
            ends = np.array([frames.duration])
            groups = [frames.vectors]
        else:
            starts, ends = segment_bounds(frames.duration, seg.window_s, seg.hop_s)
            groups = [segment_frames(frames, s, e) for s, e in zip(starts, ends, strict=False)]
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is refused below, with its source
            vectors = np.stack([pool(g, p.mode, p.n) for g in groups]).astype(np.float32)
            if any(isinstance(s, L2Normalize) for s in self.steps):
                vectors = l2_normalize(vectors, axis=1)
        self._check_finite(vectors, starts, ends, frames.source)
        return PooledEmbeddings(
            vectors=vectors,
            starts=starts,
            ends=ends,
            source=frames.source,
            model=frames.model,
            steps=[s.model_dump() for s in self.steps],
        )

    def _check_finite(
        self, vectors: NDArray[np.float32], starts: NDArray[np.float64], ends: NDArray[np.float64], source: str | None
    ) -> None:
        """Refuse pooled vectors that hold NaN or Inf (finite ``float32`` frames never give one; larger ones may)."""
        bad = nonfinite_rows(vectors)
        if len(bad):
            i = int(bad[0])
            raise NonFiniteEmbeddingError(
                f"pooling {self.describe()} produced NaN or infinite values in {len(bad)} of {len(vectors)} "
                f"vector(s), the first for {starts[i]:.3f}-{ends[i]:.3f} s; pooled vectors must be finite, so none "
                "are returned",
                source,
            )

    def describe(self) -> str:
        """A short human-readable form, e.g. ``segments(10s/5s)+mean+l2``."""
        parts = []
        for s in self.steps:
            if isinstance(s, Segments):
                parts.append(f"segments({s.window_s:g}s/{(s.hop_s or s.window_s):g}s)")
            elif isinstance(s, Pool):
                parts.append(f"linear_concat({s.n})" if s.mode == "linear_concat" else s.mode)
            else:
                parts.append("l2")
        return "+".join(parts)


def segment_frames(frames: FrameEmbeddings, start: float, end: float) -> NDArray[np.float32]:
    """Frames whose centre lies in ``[start, end)``, or the one nearest the segment's middle when none does."""
    ts = frames.timestamps
    mask = (ts >= start) & (ts < end)
    if mask.any():
        return frames.vectors[mask]
    nearest = int(np.argmin(np.abs(ts - (start + end) / 2)))
    return frames.vectors[nearest : nearest + 1]

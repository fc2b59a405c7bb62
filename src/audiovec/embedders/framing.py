"""Cutting audio into model inputs: one framing rule, one streaming cutter and one result builder for every embedder.

Every embedder in audiovec describes its output the same way: frame ``j`` starts ``j * hop`` samples after the
start of the audio (``lead`` samples earlier when the embedder prepends silence, as OpenL3's ``center`` does) and
covers ``span`` samples; its timestamp is the centre of the part of that span that lies inside the audio. What
differs is how samples are grouped into *model inputs*, each of which yields a known number of frames
(:class:`Framing`):

* **overlapping chunks** (``isolated=False``; :class:`~audiovec.embedders.base.FramedEmbedder`): input ``k``
  holds frames ``[k * per_input, (k + 1) * per_input)`` and reads every real sample those frames cover, so it
  overlaps the next input by ``span - hop`` samples. A frame only ever sees its own samples, so the grouping does
  not change what the model is given for it. The end of the audio is zero-padded to complete its last frame, and
  input shorter than one frame gives one (padded) frame.
* **isolated context windows** (``isolated=True``; the Hugging Face transformers): input ``k`` holds the samples
  ``[k * step, (k + 1) * step)`` (``step = per_input * hop``) and nothing else, because a transformer's output
  for one position depends on its whole input. With ``complete=True`` (raw-waveform CNN front ends) each window
  is zero-padded after its own samples to complete its last frame, and a partial last window yields the frames
  its samples start (at most ``per_input``); with ``complete=False`` the model pads the window itself and a frame
  exists for every started ``hop``.

The same :class:`Cutter` serves one-shot, batched and streamed embedding (``feed`` consecutive blocks, then
``finish``), so the three cut the audio identically; it never copies more than one input's worth of samples
beyond the block it is given. :func:`prepare_samples` is the one mono → resample → finiteness order for whole
inputs (:func:`audiovec.audio.resample_blocks` checks streams in the same order), and :func:`frame_embeddings` builds
every result.

No embedding is ever NaN or infinite: :func:`frame_embeddings` refuses a model's non-finite output with
:class:`~audiovec.errors.NonFiniteEmbeddingError` (:func:`check_finite_frames`, the rule every consumer of frames
applies; :func:`nonfinite_rows` finds the offending rows). Finite input can still overflow a model: audio whose
samples are enormous (say ±1e19, far outside [-1, 1]) makes a spectrogram's power overflow ``float32``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from audiovec.audio import Audio
from audiovec.embeddings import FrameEmbeddings
from audiovec.errors import EmbeddingError, EmptyAudioError, NonFiniteAudioError, NonFiniteEmbeddingError

__all__ = [
    "Cutter",
    "FrameGeometry",
    "Framing",
    "ModelInput",
    "check_finite",
    "check_finite_frames",
    "frame_count",
    "frame_embeddings",
    "nonfinite_rows",
    "prepare_samples",
]


def frame_count(num_samples: int, frame_length: int, hop_length: int) -> int:
    """Frames that cover ``num_samples``: at least one, and the tail is padded to complete the last frame."""
    if num_samples <= frame_length:
        return 1
    return 1 + -(-(num_samples - frame_length) // hop_length)


@dataclass(frozen=True)
class FrameGeometry:
    """An embedder's output geometry: its sample rate, where its frames lie, and the size of its vectors.

    A :class:`~audiovec.embedders.base.FramedEmbedder` subclass sets it once, as a class attribute for a fixed
    model or in ``_setup`` when it depends on the configuration, and the base class derives ``sample_rate``,
    ``dim``, ``frame_length``, ``hop_length``, ``window_s`` and ``hop_s`` from it.

    Attributes:
        sample_rate: Rate the model works at (inputs at other rates are resampled).
        frame_length: Samples one frame covers (at ``sample_rate``).
        hop_length: Samples between frame starts.
        dim: Dimension of every frame vector.

    Raises:
        ValueError: A field is not a positive integer.
    """

    sample_rate: int
    frame_length: int
    hop_length: int
    dim: int

    def __post_init__(self) -> None:
        for field in ("sample_rate", "frame_length", "hop_length", "dim"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise ValueError(f"FrameGeometry.{field} must be a positive integer, got {value!r}")


class ModelInput(NamedTuple):
    """One model input: mono samples at the model's rate and the number of frames they yield."""

    samples: NDArray[np.float32]
    frames: int


@dataclass(frozen=True)
class Framing:
    """How a stream of samples is cut into model inputs (see the module notes).

    Attributes:
        hop: Samples between frame starts.
        span: Samples one frame covers (its timestamp is the centre of the covered part inside the audio).
        per_input: Frames per model input (the last input of an audio may have fewer).
        isolated: Inputs are back-to-back context windows of ``per_input * hop`` samples whose frames never see
            the next window's samples; otherwise inputs are overlapping chunks that read every real sample of
            their frames.
        complete: Zero-pad an input to complete its last frame (``(frames - 1) * hop + span`` samples); without it
            the samples of a window are passed as they are and the model pads them (only with ``isolated``).
        lead: Zeros prepended to the audio before framing: frame ``j`` starts at sample ``j * hop - lead``.

    Raises:
        ValueError: Inconsistent values.
    """

    hop: int
    span: int
    per_input: int
    isolated: bool = False
    complete: bool = True
    lead: int = 0

    def __post_init__(self) -> None:
        if min(self.hop, self.span, self.per_input) < 1 or self.lead < 0:
            raise ValueError(f"invalid framing {self}")
        if not (self.isolated or self.complete):
            raise ValueError("overlapping chunks always complete their last frame (complete=True)")

    @property
    def step(self) -> int:
        """Samples between the starts of consecutive inputs."""
        return self.per_input * self.hop

    @property
    def extent(self) -> int:
        """Samples of the stream a full input reads."""
        return self.step if self.isolated else (self.per_input - 1) * self.hop + self.span

    def frames_in_window(self, r: int) -> int:
        """Frames of an isolated window holding ``r`` samples (``0 < r <= step``)."""
        if r >= self.step:
            return self.per_input
        if self.complete:
            return min(self.per_input, frame_count(r, self.span, self.hop))
        return -(-r // self.hop)

    def count(self, n: int) -> int:
        """Frames for ``n`` samples of audio."""
        if not self.isolated:
            return frame_count(n + self.lead, self.span, self.hop)
        full, rest = divmod(n + self.lead, self.step)
        return full * self.per_input + (self.frames_in_window(rest) if rest else 0)

    def timestamps(self, n: int) -> NDArray[np.float64]:
        """Centre, in samples from the first real sample, of the part of every frame that lies inside the audio."""
        starts = np.arange(self.count(n), dtype=np.float64) * self.hop - self.lead
        ends = np.minimum(starts + self.span, n)
        centres: NDArray[np.float64] = (np.maximum(starts, 0.0) + ends) / 2.0
        return centres

    def model_input(self, samples: NDArray[np.float32], frames: int) -> ModelInput:
        """``samples`` as the model input of ``frames`` frames: zero-padded to complete the last one (``complete``)."""
        if not self.complete:
            return ModelInput(samples, frames)
        length = (frames - 1) * self.hop + self.span
        if len(samples) >= length:
            return ModelInput(samples[:length], frames)
        padded = np.zeros(length, dtype=np.float32)
        padded[: len(samples)] = samples
        return ModelInput(padded, frames)

    def cutter(self) -> Cutter:
        """A :class:`Cutter` for one stream."""
        return Cutter(self)

    def cut(self, samples: NDArray[np.float32]) -> Iterator[ModelInput]:
        """The model inputs of one whole signal, cut lazily (views of ``samples`` where no padding is needed).

        Raises:
            EmptyAudioError: ``samples`` is empty.
        """
        cutter = Cutter(self)
        yield from cutter.feed(samples)
        yield from cutter.finish()


class Cutter:
    """Cuts consecutive blocks of one stream into the model inputs of a :class:`Framing`.

    Feed blocks with :meth:`feed` (exhaust each returned iterator before the next call), then call
    :meth:`finish` for the inputs that the end of the stream completes. Between calls it holds less than one
    input's extent of samples.

    Attributes:
        total: Real samples fed so far (the ``lead`` zeros excluded).
    """

    def __init__(self, framing: Framing) -> None:
        self.framing = framing
        self.total = 0
        self._buf = np.zeros(framing.lead, dtype=np.float32)
        self._buf_start = 0  # stream index (lead included) of _buf[0]
        self._next = 0  # index of the next input

    def feed(self, samples: NDArray[np.float32]) -> Iterator[ModelInput]:
        """Yield the inputs that ``samples`` completes."""
        f = self.framing
        self.total += len(samples)
        x = np.asarray(samples, dtype=np.float32)
        self._buf = np.concatenate([self._buf, x]) if len(self._buf) else x
        while True:
            begin = self._next * f.step - self._buf_start
            end = begin + f.extent
            if len(self._buf) < end:
                return
            yield f.model_input(self._buf[begin:end], f.per_input)
            self._next += 1
            drop = self._next * f.step - self._buf_start
            self._buf = self._buf[drop:]
            self._buf_start += drop

    def finish(self) -> Iterator[ModelInput]:
        """Yield the inputs of the end of the stream.

        Raises:
            EmptyAudioError: No samples were fed.
        """
        f = self.framing
        if self.total == 0:
            raise EmptyAudioError("audio has zero samples")
        n_frames = f.count(self.total)
        while self._next * f.per_input < n_frames:
            begin = self._next * f.step - self._buf_start
            rest = self._buf[begin : begin + f.extent]
            if f.isolated:
                frames = f.frames_in_window(len(rest))
            else:
                frames = min(f.per_input, n_frames - self._next * f.per_input)
            yield f.model_input(rest, frames)
            self._next += 1
        self._buf = np.zeros(0, dtype=np.float32)


def prepare_samples(audio: Audio, sample_rate: int) -> NDArray[np.float32]:
    """Mono samples of ``audio`` at ``sample_rate``: mixed down, resampled, then checked for NaN and Inf.

    The check sums the samples in float64, which is finite exactly when every sample is (float32 values cannot
    overflow a float64 sum), without a temporary array as large as the input.

    Raises:
        EmptyAudioError: The audio has no samples.
        NonFiniteAudioError: The audio (after resampling) contains NaN or Inf.
    """
    if audio.num_samples == 0:
        raise EmptyAudioError("audio has zero samples", audio.source)
    return check_finite(audio.prepared(sample_rate).samples, audio.source)


def check_finite(x: NDArray[np.float32], source: str | None) -> NDArray[np.float32]:
    """``x`` if every sample is finite (see :func:`prepare_samples`).

    Raises:
        NonFiniteAudioError: ``x`` contains NaN or Inf.
    """
    if not np.isfinite(x.sum(dtype=np.float64)):
        raise NonFiniteAudioError("audio contains NaN or infinite samples", source)
    return x


def nonfinite_rows(vectors: NDArray[np.floating[Any]]) -> NDArray[np.intp]:
    """Indices of the rows of ``[rows, dim]`` vectors that hold a NaN or an infinity (empty when none does).

    All-finite input, the usual case, costs one float64 sum and no temporary array (see :func:`prepare_samples`).
    """
    v = np.asarray(vectors)
    if v.size == 0 or np.isfinite(v.sum(dtype=np.float64)):
        return np.zeros(0, dtype=np.intp)
    rows: NDArray[np.intp] = np.flatnonzero(~np.isfinite(v.reshape(len(v), -1)).all(axis=1))
    return rows


def check_finite_frames(frames: FrameEmbeddings) -> FrameEmbeddings:
    """``frames`` if every vector is finite: the rule for a model's output, wherever frames come from.

    Raises:
        NonFiniteEmbeddingError: A vector holds NaN or Inf; the message names the source, the model, how many
            frames are affected and the time of the first one.
    """
    bad = nonfinite_rows(frames.vectors)
    if len(bad):
        raise NonFiniteEmbeddingError(
            f"{frames.model or 'the embedder'} produced NaN or infinite values in {len(bad)} of {len(frames)} "
            f"frame(s), the first at {frames.timestamps[bad[0]]:.3f} s; embeddings must be finite, so none are "
            "returned (audio with enormous sample values, far outside [-1, 1], overflows a model: scale it first)",
            frames.source,
        )
    return frames


def frame_embeddings(
    parts: list[NDArray[np.float32]],
    framing: Framing,
    num_samples: int,
    sample_rate: int,
    *,
    dim: int,
    window_s: float,
    hop_s: float,
    source: str | None,
    model: str,
) -> FrameEmbeddings:
    """The result of embedding ``num_samples`` samples: the inputs' vectors in order, timestamps and duration.

    Raises:
        EmbeddingError: The vectors do not number one per frame (an implementation bug).
        NonFiniteEmbeddingError: A vector holds NaN or Inf (see :func:`check_finite_frames`).
    """
    vectors = np.concatenate(parts, axis=0) if parts else np.zeros((0, dim), np.float32)
    expected = framing.count(num_samples)
    if len(vectors) != expected:
        raise EmbeddingError(f"{model}: {len(vectors)} vectors for {expected} frames (implementation bug)")
    result = FrameEmbeddings(
        vectors=vectors,
        timestamps=framing.timestamps(num_samples) / sample_rate,
        duration=num_samples / sample_rate,
        window_s=window_s,
        hop_s=hop_s,
        source=source,
        model=model,
    )
    return check_finite_frames(result)

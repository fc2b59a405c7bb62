"""The Embedder protocol, embedder configuration, and a base class that does the framing work.

An embedder turns audio into frame embeddings: ``float32[frames, dim]`` plus the centre time of every frame.
Implementations usually subclass :class:`FramedEmbedder`, which owns everything that is not the model:

* mixing down to mono and resampling to the model's rate (callers may pass any :class:`~audiovec.audio.Audio`);
* a fixed framing (frames start every ``hop_length`` samples and span ``frame_length`` samples; input shorter
  than one frame is zero-padded to one frame, and the tail is zero-padded to complete the last frame);
* bounded memory for long inputs: samples are processed in chunks of ``chunk_frames`` frames, and
  :meth:`FramedEmbedder.embed_stream` / :meth:`FramedEmbedder.embed_file` never hold the whole waveform.

Because every frame only sees its own samples, chunked, streamed and one-shot embedding give the same vectors.
A subclass implements :meth:`FramedEmbedder._embed_frames` (and, for real batching,
:meth:`FramedEmbedder._embed_frames_batch`).
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from audiovec.audio import Audio, AudioSource, resample_blocks, stream
from audiovec.embeddings import FrameEmbeddings
from audiovec.errors import ConfigError, EmbeddingError, EmptyAudioError, NonFiniteAudioError

__all__ = [
    "Embedder",
    "EmbedderConfig",
    "EmbedderSpec",
    "FramedEmbedder",
    "frame_count",
]


@runtime_checkable
class Embedder(Protocol):
    """What every audio embedder provides.

    Attributes:
        name: Registry name of the model family (``"mfcc"``, ``"yamnet"``...).
        sample_rate: Sample rate the model works at; inputs at other rates are resampled by the embedder.
        dim: Dimension of every frame vector.
        window_s: Length of one analysis frame in seconds.
        hop_s: Step between frames in seconds.
    """

    @property
    def name(self) -> str:
        """Registry name of the model family (a class attribute in implementations)."""
        ...

    @property
    def sample_rate(self) -> int:
        """Sample rate the model works at."""
        ...

    @property
    def dim(self) -> int:
        """Dimension of every frame vector."""
        ...

    @property
    def window_s(self) -> float:
        """Frame length in seconds."""
        ...

    @property
    def hop_s(self) -> float:
        """Step between frames in seconds."""
        ...

    def embed(self, audio: Audio) -> FrameEmbeddings:
        """Embed one input (any sample rate, any channel count)."""
        ...

    def embed_batch(self, audios: Sequence[Audio]) -> list[FrameEmbeddings]:
        """Embed several inputs; equal, within float tolerance, to calling :meth:`embed` on each."""
        ...

    def spec(self) -> EmbedderSpec:
        """Name, version and parameters that identify this embedder's output (for caches and results)."""
        ...


class EmbedderConfig(BaseModel):
    """Base class of embedder configurations: validated eagerly, frozen, serialisable to JSON/TOML."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    chunk_s: float = Field(
        30.0, gt=0, description="Audio processed per model call, in seconds; bounds memory for long inputs."
    )


class EmbedderSpec(BaseModel):
    """Identity of an embedder's output: registry name, implementation version and parameters."""

    model_config = ConfigDict(frozen=True)

    name: str
    version: str
    params: dict[str, Any]

    def key(self) -> str:
        """A stable hex digest of the spec, to key caches and results."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def frame_count(num_samples: int, frame_length: int, hop_length: int) -> int:
    """Frames that cover ``num_samples``: at least one, and the tail is padded to complete the last frame."""
    if num_samples <= frame_length:
        return 1
    return 1 + -(-(num_samples - frame_length) // hop_length)


class FramedEmbedder(ABC):
    """Base class for embedders with a fixed frame length and hop.

    Subclasses set ``name``, ``version`` and ``Config`` (a subclass of :class:`EmbedderConfig`), and
    implement :attr:`dim`, :attr:`sample_rate`, :attr:`frame_length`, :attr:`hop_length` and
    :meth:`_embed_frames`.

    Args:
        config: A ``Config`` instance, a dict of its fields, or ``None`` for defaults.
        **params: Config fields as keyword arguments (override ``config``).

    Raises:
        ConfigError: Invalid parameters (the message lists what pydantic found).
    """

    name: ClassVar[str] = "framed"
    version: ClassVar[str] = "1"
    Config: ClassVar[type[EmbedderConfig]] = EmbedderConfig

    def __init__(self, config: EmbedderConfig | dict[str, Any] | None = None, **params: Any) -> None:
        base = config.model_dump() if isinstance(config, EmbedderConfig) else dict(config or {})
        base.update(params)
        try:
            self.config = self.Config(**base)
        except ValidationError as err:
            raise ConfigError(f"invalid {self.name} configuration: {err}") from err

    # ------------------------------------------------------------------ to implement
    @property
    @abstractmethod
    def dim(self) -> int:
        """Dimension of every frame vector."""

    @property
    @abstractmethod
    def sample_rate(self) -> int:
        """Sample rate the model works at."""

    @property
    @abstractmethod
    def frame_length(self) -> int:
        """Samples per frame (at :attr:`sample_rate`)."""

    @property
    @abstractmethod
    def hop_length(self) -> int:
        """Samples between frame starts (at :attr:`sample_rate`)."""

    @abstractmethod
    def _embed_frames(self, samples: NDArray[np.float32]) -> NDArray[np.float32]:
        """Embed mono samples at :attr:`sample_rate` that cover exactly ``n`` whole frames.

        ``len(samples) == (n - 1) * hop_length + frame_length``; return ``float32[n, dim]``.
        """

    def _embed_frames_batch(self, chunks: Sequence[NDArray[np.float32]]) -> list[NDArray[np.float32]]:
        """Embed several chunks; override for models that batch. Default: one call per chunk."""
        return [self._embed_frames(c) for c in chunks]

    # ------------------------------------------------------------------ derived properties
    @property
    def window_s(self) -> float:
        """Frame length in seconds."""
        return self.frame_length / self.sample_rate

    @property
    def hop_s(self) -> float:
        """Hop in seconds."""
        return self.hop_length / self.sample_rate

    @property
    def chunk_frames(self) -> int:
        """Frames computed per model call (from ``config.chunk_s``)."""
        return max(1, int(self.config.chunk_s * self.sample_rate) // self.hop_length)

    def spec(self) -> EmbedderSpec:
        """Name, implementation version and configuration of this embedder."""
        params = self.config.model_dump(mode="json")
        params.pop("chunk_s", None)  # does not change the output
        return EmbedderSpec(name=self.name, version=self.version, params=params)

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.spec().params.items())
        return f"{type(self).__name__}({params})"

    # ------------------------------------------------------------------ embedding
    def embed(self, audio: Audio) -> FrameEmbeddings:
        """Embed one input of any sample rate and channel count.

        Raises:
            EmptyAudioError: The audio has no samples.
            NonFiniteAudioError: The audio contains NaN or Inf.
            EmbeddingError: The model failed.
        """
        x = self._prepare(audio)
        framer = _Framer(self)
        parts = list(framer.feed(x))
        parts.extend(framer.finish())
        return self._result(parts, framer, audio.source)

    def embed_batch(self, audios: Sequence[Audio]) -> list[FrameEmbeddings]:
        """Embed several inputs, batching model calls across them.

        Every input is framed independently, so the result equals one-by-one :meth:`embed` calls.
        """
        prepared = [self._prepare(a) for a in audios]
        plans = []
        chunks: list[NDArray[np.float32]] = []
        for x in prepared:
            n_frames = frame_count(len(x), self.frame_length, self.hop_length)
            padded = _pad_to(x, (n_frames - 1) * self.hop_length + self.frame_length)
            owned = []
            for f0 in range(0, n_frames, self.chunk_frames):
                f1 = min(n_frames, f0 + self.chunk_frames)
                owned.append(len(chunks))
                chunks.append(padded[f0 * self.hop_length : (f1 - 1) * self.hop_length + self.frame_length])
            plans.append((len(x), owned))
        vectors = self._checked_batch(chunks)
        out = []
        for audio, (n, owned) in zip(audios, plans, strict=False):
            framer = _Framer(self)
            framer.total = n
            framer.next_frame = frame_count(n, self.frame_length, self.hop_length)
            out.append(self._result([vectors[i] for i in owned], framer, audio.source))
        return out

    def embed_stream(self, blocks: Iterable[Audio], source: str | None = None) -> FrameEmbeddings:
        """Embed a sequence of consecutive audio blocks with bounded memory.

        Blocks may have any sample rate and channel count (all blocks the same); they are mixed down and
        resampled by one continuous resampler, so the result matches :meth:`embed` on the whole signal.

        Args:
            blocks: Consecutive :class:`Audio` blocks, e.g. from :func:`audiovec.audio.stream`.
            source: Name for the result; defaults to the first block's source.

        Raises:
            EmptyAudioError: The stream has no samples.
        """
        framer = _Framer(self)
        parts: list[NDArray[np.float32]] = []
        for block in resample_blocks(blocks, self.sample_rate):
            if source is None:
                source = block.source
            parts.extend(framer.feed(block.samples))
        parts.extend(framer.finish())
        return self._result(parts, framer, source)

    def embed_file(self, source: AudioSource, block_s: float = 60.0) -> FrameEmbeddings:
        """Embed a file of any length by streaming it in blocks of ``block_s`` seconds."""
        return self.embed_stream(stream(source, block_s, sr=self.sample_rate))

    # ------------------------------------------------------------------ internals
    def _prepare(self, audio: Audio) -> NDArray[np.float32]:
        if audio.num_samples == 0:
            raise EmptyAudioError("audio has zero samples", audio.source)
        x = audio.prepared(self.sample_rate).samples
        if not np.isfinite(x).all():
            raise NonFiniteAudioError("audio contains NaN or infinite samples", audio.source)
        return x

    def _checked(self, samples: NDArray[np.float32]) -> NDArray[np.float32]:
        return self._checked_batch([samples])[0]

    def _checked_batch(self, chunks: Sequence[NDArray[np.float32]]) -> list[NDArray[np.float32]]:
        try:
            outs = self._embed_frames_batch(chunks)
        except (EmbeddingError, MemoryError):
            raise
        except Exception as err:
            raise EmbeddingError(f"{self.name} failed while embedding: {type(err).__name__}: {err}") from err
        for chunk, out in zip(chunks, outs, strict=False):
            n = frame_count(len(chunk), self.frame_length, self.hop_length)
            if out.shape != (n, self.dim):
                raise EmbeddingError(
                    f"{self.name} returned shape {out.shape} for {n} frames of dim {self.dim} (implementation bug)"
                )
        return [np.ascontiguousarray(o, dtype=np.float32) for o in outs]

    def _result(self, parts: list[NDArray[np.float32]], framer: _Framer, source: str | None) -> FrameEmbeddings:
        vectors = np.concatenate(parts, axis=0) if parts else np.zeros((0, self.dim), np.float32)
        n = framer.total
        starts = np.arange(len(vectors), dtype=np.float64) * self.hop_length
        ends = np.minimum(starts + self.frame_length, n)
        timestamps = (starts + ends) / 2.0 / self.sample_rate
        return FrameEmbeddings(
            vectors=vectors,
            timestamps=timestamps,
            duration=n / self.sample_rate,
            window_s=self.window_s,
            hop_s=self.hop_s,
            source=source,
            model=self.name,
        )


def _pad_to(x: NDArray[np.float32], length: int) -> NDArray[np.float32]:
    if len(x) >= length:
        return x[:length]
    out = np.zeros(length, dtype=np.float32)
    out[: len(x)] = x
    return out


class _Framer:
    """Incremental framing: feed samples, get frame vectors chunk by chunk, finish with the padded tail."""

    def __init__(self, emb: FramedEmbedder) -> None:
        self.emb = emb
        self.buf = np.zeros(0, dtype=np.float32)
        self.buf_start = 0  # sample index of buf[0]
        self.total = 0  # samples seen
        self.next_frame = 0

    def feed(self, x: NDArray[np.float32]) -> Iterator[NDArray[np.float32]]:
        e = self.emb
        self.total += len(x)
        self.buf = np.concatenate([self.buf, x]) if len(self.buf) else np.asarray(x, dtype=np.float32)
        chunk = e.chunk_frames
        need = (chunk - 1) * e.hop_length + e.frame_length
        while True:
            begin = self.next_frame * e.hop_length - self.buf_start
            # Keep back one frame's worth beyond the chunk so a stream's last frames are decided by finish().
            if len(self.buf) - begin < need + e.hop_length:
                break
            yield e._checked(self.buf[begin : begin + need])
            self.next_frame += chunk
            drop = self.next_frame * e.hop_length - self.buf_start
            self.buf = self.buf[drop:]
            self.buf_start += drop

    def finish(self) -> Iterator[NDArray[np.float32]]:
        e = self.emb
        if self.total == 0:
            raise EmptyAudioError("audio has zero samples")
        n_frames = frame_count(self.total, e.frame_length, e.hop_length)
        while self.next_frame < n_frames:
            f1 = min(n_frames, self.next_frame + e.chunk_frames)
            begin = self.next_frame * e.hop_length - self.buf_start
            length = (f1 - self.next_frame - 1) * e.hop_length + e.frame_length
            yield e._checked(_pad_to(self.buf[begin:], length))
            self.next_frame = f1

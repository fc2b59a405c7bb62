"""The Embedder protocol, embedder configuration, and the base classes that do everything but the model.

An embedder turns audio into frame embeddings: ``float32[frames, dim]`` plus the centre time of every frame.
Implementations usually subclass :class:`FramedEmbedder`, which owns everything that is not the model:

* validating the configuration (a pydantic :class:`EmbedderConfig`) and describing the output (:meth:`spec`);
* mixing down to mono, resampling to the model's rate and refusing NaN/Inf, in that order, for every input;
* refusing NaN/Inf in the model's output (:class:`~audiovec.errors.NonFiniteEmbeddingError`, naming the input):
  no embedding is ever non-finite, even when finite but enormous samples overflow the model;
* a fixed framing (frames start every ``hop_length`` samples and span ``frame_length`` samples; input shorter
  than one frame is zero-padded to one frame, and the tail is zero-padded to complete the last frame);
* bounded memory for long inputs: samples are processed in chunks of ``chunk_frames`` frames, and
  :meth:`~WindowedEmbedder.embed_stream` / :meth:`~WindowedEmbedder.embed_file` never hold the whole waveform.

Because every frame only sees its own samples, the model is given the same samples for a frame whether the audio
is embedded in one piece, in chunks, in a batch or as a stream. A subclass sets :attr:`WindowedEmbedder.geometry`
(a :class:`~audiovec.embedders.framing.FrameGeometry`) and implements :meth:`FramedEmbedder._embed_frames` (and,
for real batching, :meth:`FramedEmbedder._embed_frames_batch`).

:class:`WindowedEmbedder` is the part shared with embedders whose model inputs are isolated context windows
rather than overlapping chunks (the Hugging Face transformers): the cutting itself lives in
:mod:`audiovec.embedders.framing`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from audiovec._hashing import json_digest
from audiovec._registry import did_you_mean
from audiovec.audio import Audio, AudioSource, resample_blocks, stream
from audiovec.embedders.framing import (
    FrameGeometry,
    Framing,
    ModelInput,
    frame_count,
    frame_embeddings,
    prepare_samples,
)
from audiovec.embeddings import FrameEmbeddings
from audiovec.errors import ConfigError, EmbeddingError, EmptyAudioError

C = TypeVar("C", bound="EmbedderConfig")

__all__ = ["Embedder", "EmbedderConfig", "EmbedderSpec", "FramedEmbedder", "WindowedEmbedder", "frame_count"]


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

    def embed_file(self, source: AudioSource, block_s: float = 60.0) -> FrameEmbeddings:
        """Embed a file of any length with bounded memory, reading it ``block_s`` seconds at a time.

        Equal, within float tolerance (the streaming resampler's block joins), to ``embed(load(source))``.
        """
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


def _unknown_params_hint(name: str, config: type[EmbedderConfig], err: ValidationError) -> str:
    """A line naming misspelt keys and their closest field ("... did you mean 'n_mfcc'? known: ..."), or ``""``.

    Args:
        name: The embedder's name, for the message.
        config: Its configuration class.
        err: What pydantic found; only its ``extra_forbidden`` errors are described.
    """
    unknown = [str(e["loc"][0]) for e in err.errors() if e["type"] == "extra_forbidden" and e["loc"]]
    if not unknown:
        return ""
    fields = config.model_fields
    known = sorted({*fields, *(f.alias for f in fields.values() if f.alias)})
    parts = []
    for key in unknown:
        hint = did_you_mean(key, known)
        parts.append(f"unknown parameter {key!r} for {name}" + (f"; {hint}" if hint else ";"))
    return " ".join([*parts, f"known: {', '.join(known)}"]) + "\n"


def validated_config(
    name: str, config_cls: type[C], config: EmbedderConfig | dict[str, Any] | None, params: dict[str, Any]
) -> C:
    """An embedder's configuration from a config object or dict plus keyword overrides, validated.

    The one place every embedder turns its constructor arguments into its ``Config``.

    Raises:
        ConfigError: Invalid parameters; misspelt keys get a "did you mean" and the list of known ones.
    """
    base = config.model_dump(exclude_unset=True) if isinstance(config, EmbedderConfig) else dict(config or {})
    base.update(params)
    try:
        return config_cls(**base)
    except ValidationError as err:
        hint = _unknown_params_hint(name, config_cls, err)
        raise ConfigError(f"invalid {name} configuration: {hint}{err}") from err


class EmbedderSpec(BaseModel):
    """Identity of an embedder's output: registry name, implementation version and parameters."""

    model_config = ConfigDict(frozen=True)

    name: str
    version: str
    params: dict[str, Any]

    def key(self) -> str:
        """A stable hex digest of the spec, to key caches and results."""
        return json_digest(self.model_dump(mode="json"))


class WindowedEmbedder(ABC):
    """Configuration, geometry, framing, batching and results: an embedder's machinery without its model.

    Subclasses set ``name``, ``version``, ``Config`` and :attr:`geometry`, load their model in :meth:`_setup`
    (called once the configuration is validated), and implement :meth:`_framing` (how samples are cut into model
    inputs) and :meth:`_embed_inputs` (the model). ``embed``, ``embed_batch``,
    ``embed_stream`` and ``embed_file`` cut the audio with the same :class:`~audiovec.embedders.framing.Cutter`,
    so they give the model the same inputs.

    Args:
        config: A ``Config`` instance, a dict of its fields, or ``None`` for defaults.
        **params: Config fields as keyword arguments (override ``config``).

    Raises:
        ConfigError: Invalid parameters (the message lists what pydantic found).
    """

    name: ClassVar[str] = "windowed"
    version: ClassVar[str] = "1"
    Config: ClassVar[type[EmbedderConfig]] = EmbedderConfig
    #: Config fields that change where or how fast the model runs, not its output: left out of :meth:`spec`.
    runtime_fields: ClassVar[tuple[str, ...]] = ("chunk_s",)

    #: Sample rate, frame length, hop and vector size; a class attribute for a fixed model, else set in
    #: :meth:`_setup`. (A subclass may instead override the four properties derived from it.)
    geometry: FrameGeometry
    config: EmbedderConfig

    def __init__(self, config: EmbedderConfig | dict[str, Any] | None = None, **params: Any) -> None:
        self.config = validated_config(self.name, self.Config, config, params)
        self._setup()

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as its class and configuration: unpickling builds a new embedder and loads its model.

        This is how the ingest path's worker processes get their own copy of a model (see
        :class:`~audiovec.ingest.Ingest`): the weights are loaded again in the worker, never sent through a pipe.
        """
        return (type(self), (self.config,))

    def _setup(self) -> None:  # noqa: B027 - an optional hook: a fixed model may have nothing to set up
        """Load the model and set :attr:`geometry` from the validated ``self.config`` (default: nothing to do)."""

    # ------------------------------------------------------------------ geometry
    @property
    def sample_rate(self) -> int:
        """Sample rate the model works at."""
        return self.geometry.sample_rate

    @property
    def dim(self) -> int:
        """Dimension of every frame vector."""
        return self.geometry.dim

    @property
    def frame_length(self) -> int:
        """Samples per frame (at :attr:`sample_rate`)."""
        return self.geometry.frame_length

    @property
    def hop_length(self) -> int:
        """Samples between frame starts (at :attr:`sample_rate`)."""
        return self.geometry.hop_length

    @property
    def window_s(self) -> float:
        """Frame length in seconds."""
        return self.frame_length / self.sample_rate

    @property
    def hop_s(self) -> float:
        """Hop in seconds."""
        return self.hop_length / self.sample_rate

    # ------------------------------------------------------------------ identity
    def spec(self) -> EmbedderSpec:
        """Name, implementation version and the parameters that change the output."""
        return EmbedderSpec(name=self.name, version=self.version, params=self._spec_params())

    def _spec_params(self) -> dict[str, Any]:
        """The spec's parameters; by default the configuration without :attr:`runtime_fields`."""
        params = self.config.model_dump(mode="json")
        for key in self.runtime_fields:
            params.pop(key, None)
        return params

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.spec().params.items())
        return f"{type(self).__name__}({params})"

    # ------------------------------------------------------------------ to implement
    @abstractmethod
    def _framing(self) -> Framing:
        """How samples at :attr:`sample_rate` are cut into model inputs."""

    @abstractmethod
    def _embed_inputs(self, inputs: Sequence[ModelInput]) -> list[NDArray[np.float32]]:
        """The model: ``float32[inputs[i].frames, dim]`` for every input, in order."""

    def _inputs_per_call(self, batch: bool) -> int | None:
        """Inputs collected before a model call (``None``: all of them); ``batch`` for :meth:`embed_batch`."""
        return None if batch else 1

    def _defer(self, item: ModelInput) -> bool:
        """Whether ``item`` waits for the last model call of an ``embed_*`` call (e.g. to batch equal lengths)."""
        return False

    def _label(self) -> str:
        """How error messages name this embedder."""
        return self.name

    # ------------------------------------------------------------------ embedding
    def embed(self, audio: Audio) -> FrameEmbeddings:
        """Embed one input of any sample rate and channel count.

        Raises:
            EmptyAudioError: The audio has no samples.
            NonFiniteAudioError: The audio contains NaN or Inf.
            NonFiniteEmbeddingError: The model produced NaN or Inf (e.g. from enormous sample values).
            EmbeddingError: The model failed.
        """
        return self._embed_audios([audio], self._inputs_per_call(batch=False))[0]

    def embed_batch(self, audios: Sequence[Audio]) -> list[FrameEmbeddings]:
        """Embed several inputs, batching model calls across them.

        Every input is cut on its own, so the model is given the same inputs as by one-by-one :meth:`embed`
        calls (the results agree within float tolerance: a batched computation may round differently).

        Raises:
            EmptyAudioError: An input has no samples.
            NonFiniteAudioError: An input contains NaN or Inf.
            NonFiniteEmbeddingError: The model produced NaN or Inf for an input (the message names it).
            EmbeddingError: The model failed.
        """
        return self._embed_audios(audios, self._inputs_per_call(batch=True))

    def embed_stream(self, blocks: Iterable[Audio], source: str | None = None) -> FrameEmbeddings:
        """Embed a sequence of consecutive audio blocks with bounded memory.

        Blocks may have any sample rate and channel count (all blocks the same); they are mixed down and
        resampled by one continuous resampler, so the result matches :meth:`embed` on the whole signal up to the
        resampler's precision at block joins (exactly, when no resampling is needed).

        Args:
            blocks: Consecutive :class:`Audio` blocks, e.g. from :func:`audiovec.audio.stream`.
            source: Name for the result; defaults to the first block's source.

        Raises:
            EmptyAudioError: The stream has no samples.
            NonFiniteAudioError: A block contains NaN or Inf.
            NonFiniteEmbeddingError: The model produced NaN or Inf.
            ConfigError: The blocks change sample rate.
        """
        framing = self._framing()
        cutter = framing.cutter()
        batcher = _Batcher(self._run, self._inputs_per_call(batch=False), self._defer)
        for block in resample_blocks(blocks, self.sample_rate):
            if source is None:
                source = block.source
            for item in cutter.feed(block.samples):  # resample_blocks checked it, after resampling
                batcher.add(item)
        try:
            tail = list(cutter.finish())
        except EmptyAudioError as err:
            raise EmptyAudioError("stream yielded no samples", source) from err
        for item in tail:
            batcher.add(item)
        batcher.close()
        return self._result(batcher.take(0, batcher.count), framing, cutter.total, source)

    def embed_file(self, source: AudioSource, block_s: float = 60.0) -> FrameEmbeddings:
        """Embed a file of any length by streaming it in blocks of ``block_s`` seconds (bounded memory)."""
        return self.embed_stream(stream(source, block_s, sr=self.sample_rate))

    # ------------------------------------------------------------------ internals
    def _prepare(self, audio: Audio) -> NDArray[np.float32]:
        return prepare_samples(audio, self.sample_rate)

    def _embed_audios(self, audios: Sequence[Audio], per_call: int | None) -> list[FrameEmbeddings]:
        framing = self._framing()
        batcher = _Batcher(self._run, per_call, self._defer)
        plans = []
        for audio in audios:
            x = self._prepare(audio)
            first = batcher.count
            for item in framing.cut(x):  # lazily: a long input is never copied whole
                batcher.add(item)
            plans.append((audio.source, len(x), first, batcher.count))
        batcher.close()
        return [self._result(batcher.take(a, b), framing, n, source) for source, n, a, b in plans]

    def _run(self, inputs: Sequence[ModelInput]) -> list[NDArray[np.float32]]:
        """:meth:`_embed_inputs` with failures raised as :class:`EmbeddingError` and every shape checked.

        NumPy's overflow and invalid-value warnings are silenced in the model: a non-finite result is refused
        with a :class:`~audiovec.errors.NonFiniteEmbeddingError` that names the input (see :meth:`_result`),
        which tells more than a warning (or, where warnings are errors, an :class:`EmbeddingError`) would.
        """
        try:
            with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
                outs = self._embed_inputs(inputs)
        except (EmbeddingError, MemoryError):
            raise
        except Exception as err:
            raise EmbeddingError(f"{self._label()} failed while embedding: {type(err).__name__}: {err}") from err
        if len(outs) != len(inputs):
            raise EmbeddingError(
                f"{self.name} returned {len(outs)} results for {len(inputs)} inputs (implementation bug)"
            )
        for item, out in zip(inputs, outs, strict=True):
            if out.shape != (item.frames, self.dim):
                raise EmbeddingError(
                    f"{self.name} returned shape {out.shape} for {item.frames} frames of dim {self.dim} "
                    "(implementation bug)"
                )
        return [np.ascontiguousarray(o, dtype=np.float32) for o in outs]

    def _result(
        self, parts: list[NDArray[np.float32]], framing: Framing, num_samples: int, source: str | None
    ) -> FrameEmbeddings:
        """One input's frame embeddings, refused when non-finite (:func:`~audiovec.embedders.framing.frame_embeddings`).

        Raises:
            NonFiniteEmbeddingError: A vector holds NaN or Inf; the message names ``source``.
        """
        return frame_embeddings(
            parts,
            framing,
            num_samples,
            self.sample_rate,
            dim=self.dim,
            window_s=self.window_s,
            hop_s=self.hop_s,
            source=source,
            model=self.name,
        )


class _Batcher:
    """Collects model inputs and runs them ``per_call`` at a time (``None``: all at :meth:`close`), in order."""

    def __init__(
        self,
        run: Callable[[Sequence[ModelInput]], list[NDArray[np.float32]]],
        per_call: int | None,
        defer: Callable[[ModelInput], bool],
    ) -> None:
        self._run = run
        self._per_call = per_call
        self._defer = defer
        self._ready: list[tuple[int, ModelInput]] = []
        self._deferred: list[tuple[int, ModelInput]] = []
        self._out: dict[int, NDArray[np.float32]] = {}
        self.count = 0

    def add(self, item: ModelInput) -> None:
        (self._deferred if self._defer(item) else self._ready).append((self.count, item))
        self.count += 1
        if self._per_call is not None and len(self._ready) >= self._per_call:
            self._flush(self._ready)
            self._ready = []

    def close(self) -> None:
        self._flush(self._ready + self._deferred)
        self._ready, self._deferred = [], []

    def take(self, start: int, stop: int) -> list[NDArray[np.float32]]:
        return [self._out.pop(i) for i in range(start, stop)]

    def _flush(self, items: list[tuple[int, ModelInput]]) -> None:
        if items:
            self._out.update(zip((i for i, _ in items), self._run([x for _, x in items]), strict=True))


class FramedEmbedder(WindowedEmbedder):
    """Base class for embedders with a fixed frame length and hop, whose frames only see their own samples.

    Subclasses set ``name``, ``version``, ``Config`` (a subclass of :class:`EmbedderConfig`) and :attr:`geometry`
    (``FrameGeometry(sample_rate, frame_length, hop_length, dim)``: a class attribute, or set in
    :meth:`~WindowedEmbedder._setup` when it depends on the configuration), and implement :meth:`_embed_frames` or
    :meth:`_embed_frames_batch`. Subclasses written against earlier versions, which override the ``dim``,
    ``sample_rate``, ``frame_length`` and ``hop_length`` properties instead of setting :attr:`geometry`, still work.

    Args:
        config: A ``Config`` instance, a dict of its fields, or ``None`` for defaults.
        **params: Config fields as keyword arguments (override ``config``).

    Raises:
        ConfigError: Invalid parameters (the message lists what pydantic found).
        TypeError: The class implements neither :meth:`_embed_frames` nor :meth:`_embed_frames_batch`.
    """

    name: ClassVar[str] = "framed"
    #: Chunks hold a whole number of blocks of this many frames (the last chunk of an input excepted), so a
    #: subclass that computes in blocks of this size (aligned to the first frame) sees the same blocks whatever
    #: the chunking. 1: no constraint.
    frame_block: ClassVar[int] = 1
    #: Zeros prepended before the first sample (frame ``j`` starts at sample ``j * hop_length - _lead``).
    _lead: int = 0

    def __init__(self, config: EmbedderConfig | dict[str, Any] | None = None, **params: Any) -> None:
        if not _implements_frames(type(self)):
            raise TypeError(f"{type(self).__qualname__} must implement _embed_frames or _embed_frames_batch")
        super().__init__(config, **params)

    # ------------------------------------------------------------------ to implement
    def _embed_frames(self, samples: NDArray[np.float32]) -> NDArray[np.float32]:
        """Embed mono samples at :attr:`sample_rate` that cover exactly ``n`` whole frames.

        ``len(samples) == (n - 1) * hop_length + frame_length``; return ``float32[n, dim]``. The default runs
        :meth:`_embed_frames_batch` on the one chunk.
        """
        return self._embed_frames_batch([samples])[0]

    def _embed_frames_batch(self, chunks: Sequence[NDArray[np.float32]]) -> list[NDArray[np.float32]]:
        """Embed several chunks; override for models that batch. Default: one :meth:`_embed_frames` call each."""
        if not _overrides(type(self), "_embed_frames"):
            raise NotImplementedError(f"{type(self).__qualname__} implements neither _embed_frames nor its batch")
        return [self._embed_frames(c) for c in chunks]

    # ------------------------------------------------------------------ framing
    @property
    def chunk_frames(self) -> int:
        """Frames computed per model call (from ``config.chunk_s``, rounded up to whole :attr:`frame_block`)."""
        frames = max(1, int(self.config.chunk_s * self.sample_rate) // self.hop_length)
        return -(-frames // self.frame_block) * self.frame_block

    def _framing(self) -> Framing:
        return Framing(self.hop_length, self.frame_length, self.chunk_frames, lead=self._lead)

    def _embed_inputs(self, inputs: Sequence[ModelInput]) -> list[NDArray[np.float32]]:
        return self._embed_frames_batch([item.samples for item in inputs])


def _overrides(cls: type, method: str) -> bool:
    return getattr(cls, method) is not getattr(FramedEmbedder, method)


def _implements_frames(cls: type) -> bool:
    return _overrides(cls, "_embed_frames") or _overrides(cls, "_embed_frames_batch")

"""Any installed HEAR 2021 module as an audiovec embedder.

A HEAR module (https://hearbenchmark.com) is an importable module with ``load_model``,
``get_timestamp_embeddings`` and ``get_scene_embeddings``; its model is a ``torch.nn.Module`` or a ``tf.Module``
with ``sample_rate`` and ``timestamp_embedding_size`` attributes. :class:`HEAREmbedder` imports the module by
name, loads its model once and gives its timestamp embeddings as :class:`~audiovec.FrameEmbeddings`::

    emb = audiovec.get_embedder("hear", module="hearbaseline")
    emb = HEAREmbedder(module="audiovec.hear.yamnet", model_file_path="yamnet.tflite")

The HEAR API hands a model whole clips, so audio is given to the module in independent windows of ``context_s``
seconds (a whole number of frame hops): a clip up to that long gets exactly the module's own output; a longer one
(and every stream or file) is cut into back-to-back windows, each embedded on its own, and a frame belongs to the
window its centre falls in. Near a join the module sees only its window's samples, as at the end of a clip, and
may produce no frame whose centre falls just before the join. Memory stays bounded by one window per input.

The frame hop is read from the module's timestamps (one probe call on silence when the model is loaded); the HEAR
API does not say how long a frame is, so ``window_s`` is the hop unless you set it.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import sys
from collections.abc import Iterable, Sequence
from types import ModuleType
from typing import Any, ClassVar, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import Field, field_validator, model_validator

from audiovec.audio import Audio, AudioSource, resample_blocks, stream
from audiovec.embedders._torch import DEVICES, check_device, resolve_device
from audiovec.embedders.base import EmbedderConfig, EmbedderSpec, validated_config
from audiovec.embedders.framing import check_finite_frames, prepare_samples
from audiovec.embeddings import FrameEmbeddings
from audiovec.errors import AudiovecError, EmbeddingError, EmptyAudioError, ModelLoadError

__all__ = ["HEARConfig", "HEAREmbedder"]

log = logging.getLogger(__name__)

#: Seconds of silence given to the module once, when it is loaded, to read its frame hop.
PROBE_S = 4.0


class HEARConfig(EmbedderConfig):
    """Configuration of :class:`HEAREmbedder`.

    Attributes:
        module: Import name of the HEAR module (``"hearbaseline"``, ``"audiovec.hear.mfcc"``...).
        model_file_path: Passed to the module's ``load_model`` (empty: its default weights).
        context_s: Seconds of audio per call of the module, rounded to a whole number of frame hops; longer
            inputs are cut into independent windows of this length.
        window_s: Length of the audio one frame describes, when the module's documentation says (``None``: the
            hop). Only reported, never used to cut audio.
        batch_size: Windows of equal length given to the module in one call.
        device: Where a PyTorch module runs (``"cpu"``, ``"cuda"``, ``"auto"``...). TensorFlow modules use
            TensorFlow's own placement.
    """

    module: str = Field(min_length=1)
    model_file_path: str = ""
    context_s: float = Field(60.0, gt=0, le=3600)
    window_s: float | None = Field(None, gt=0)
    batch_size: int = Field(16, ge=1, le=4096)
    device: str = Field("cpu", description=f"One of {DEVICES}.")

    @field_validator("device")
    @classmethod
    def _check_device(cls, value: str) -> str:
        return check_device(value)

    @model_validator(mode="after")
    def _no_chunk_s(self) -> HEARConfig:
        if "chunk_s" in self.model_fields_set:
            raise ValueError("chunk_s does not apply to HEAR modules: audio is cut into context_s windows")
        return self


class HEAREmbedder:
    """A HEAR 2021 module, imported by name, as an audiovec embedder (registry name ``hear``).

    Args:
        config: A :class:`HEARConfig`, a dict of its fields, or ``None``.
        **params: Config fields as keyword arguments (override ``config``); ``module`` is required.

    Attributes:
        model: The module's loaded model.
        framework: ``"torch"`` or ``"tf"``.

    Raises:
        ConfigError: Invalid parameters.
        ModelLoadError: The module cannot be imported, lacks the HEAR functions, or its model cannot be loaded or
            does not behave as the HEAR API says.
    """

    name: ClassVar[str] = "hear"
    version: ClassVar[str] = "1"
    Config: ClassVar[type[HEARConfig]] = HEARConfig

    def __init__(self, config: HEARConfig | dict[str, Any] | None = None, **params: Any) -> None:
        self.config = validated_config(self.name, HEARConfig, config, params)
        self._load()

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as its class and configuration: unpickling imports the module and loads the model again."""
        return (type(self), (self.config,))

    # ------------------------------------------------------------------ loading
    def _load(self) -> None:
        c = self.config
        try:
            self._module: ModuleType = importlib.import_module(c.module)
        except ImportError as err:
            raise ModelLoadError(
                f"cannot import the HEAR module {c.module!r} ({type(err).__name__}: {err}); install the package "
                "that provides it"
            ) from err
        missing = [
            f for f in ("load_model", "get_timestamp_embeddings") if not callable(getattr(self._module, f, None))
        ]
        if missing:
            raise ModelLoadError(f"{c.module!r} is not a HEAR module: it has no {' or '.join(missing)}")
        try:
            self.model = self._module.load_model(c.model_file_path) if c.model_file_path else self._module.load_model()
        except AudiovecError:
            raise
        except Exception as err:
            raise ModelLoadError(f"{self._label()}: load_model failed: {type(err).__name__}: {err}") from err
        self.framework = self._framework(self.model)
        self._device: str | None = None
        if self.framework == "torch":
            torch = sys.modules["torch"]
            self._device = resolve_device(torch, c.device)
            self.model = self.model.to(self._device)
        rate = getattr(self.model, "sample_rate", None)
        size = getattr(self.model, "timestamp_embedding_size", None)
        for attr, value in (("sample_rate", rate), ("timestamp_embedding_size", size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ModelLoadError(f"{self._label()}: the model's {attr} is {value!r}, not a positive integer")
        assert isinstance(rate, int) and isinstance(size, int)  # checked above; for the type checker
        self._sample_rate, self._dim = rate, size
        self._hop_s = 1.0  # until the probe tells
        try:
            _, ts = self._call([np.zeros(round(PROBE_S * rate), np.float32)])
        except EmbeddingError as err:
            raise ModelLoadError(f"{self._label()}: the model fails on {PROBE_S:g} s of silence: {err}") from err
        steps = np.diff(ts[0])
        if len(steps) == 0 or not np.all(steps > 0):
            raise ModelLoadError(
                f"{self._label()}: cannot read a frame hop from its timestamps for {PROBE_S:g} s of audio "
                f"({len(ts[0])} frame(s)); timestamps must increase"
            )
        self._hop_s = float(np.median(steps))
        self._per_window = max(1, round(c.context_s / self._hop_s))
        self._step = max(1, round(self._per_window * self._hop_s * rate))
        self._module_version = _distribution_version(c.module)
        log.info(
            "loaded HEAR module %s (%s, %d Hz, %d-d, hop %.4g s)", c.module, self.framework, rate, size, self._hop_s
        )

    @staticmethod
    def _framework(model: object) -> Literal["torch", "tf"]:
        torch = sys.modules.get("torch")
        if torch is not None and isinstance(model, torch.nn.Module):
            return "torch"
        tf = sys.modules.get("tensorflow")
        if tf is not None and isinstance(model, tf.Module):
            return "tf"
        raise ModelLoadError(
            f"load_model returned a {type(model).__name__}; a HEAR model is a torch.nn.Module or a tf.Module"
        )

    def _label(self) -> str:
        return f"HEAR module {self.config.module!r}"

    # ------------------------------------------------------------------ attributes
    @property
    def sample_rate(self) -> int:
        """The module's sample rate (inputs at other rates are resampled)."""
        return self._sample_rate

    @property
    def dim(self) -> int:
        """The module's ``timestamp_embedding_size``."""
        return self._dim

    @property
    def hop_s(self) -> float:
        """Seconds between frames, read from the module's timestamps."""
        return self._hop_s

    @property
    def window_s(self) -> float:
        """``config.window_s``, else the hop (the HEAR API does not say how long a frame is)."""
        return self.config.window_s if self.config.window_s is not None else self._hop_s

    @property
    def context_s(self) -> float:
        """Seconds of audio in one independent call of the module."""
        return self._step / self._sample_rate

    def spec(self) -> EmbedderSpec:
        """The module, its distribution's version, the weights and the window length (device and batch left out)."""
        c = self.config
        params = {
            "module": c.module,
            "module_version": self._module_version,
            "model_file_path": c.model_file_path,
            "context_s": self.context_s,
            "window_s": c.window_s,
        }
        return EmbedderSpec(name=self.name, version=self.version, params=params)

    def __repr__(self) -> str:
        c = self.config
        return f"HEAREmbedder(module={c.module!r}, model_file_path={c.model_file_path!r}, context_s={self.context_s:g})"

    # ------------------------------------------------------------------ embedding
    def embed(self, audio: Audio) -> FrameEmbeddings:
        """Embed one input of any sample rate and channel count.

        Raises:
            EmptyAudioError: The audio has no samples.
            NonFiniteAudioError: The audio contains NaN or Inf.
            NonFiniteEmbeddingError: The module produced NaN or Inf.
            EmbeddingError: The module failed or broke the HEAR API.
        """
        return self.embed_batch([audio])[0]

    def embed_batch(self, audios: Sequence[Audio]) -> list[FrameEmbeddings]:
        """Embed several inputs; windows of equal length go to the module together, ``batch_size`` at a time.

        Raises:
            EmptyAudioError: An input has no samples.
            NonFiniteAudioError: An input contains NaN or Inf.
            NonFiniteEmbeddingError: The module produced NaN or Inf for an input.
            EmbeddingError: The module failed or broke the HEAR API.
        """
        xs = [prepare_samples(a, self.sample_rate) for a in audios]
        windows = [self._windows(len(x)) for x in xs]
        jobs = [(i, k, xs[i][start:end]) for i, ws in enumerate(windows) for k, (start, end) in enumerate(ws)]
        outs = self._run([w for _, _, w in jobs])
        parts: list[list[tuple[NDArray[np.float32], NDArray[np.float64]]]] = [[] for _ in xs]
        for (i, k, _), out in zip(jobs, outs, strict=True):
            parts[i].append(self._keep(out, k, last=k == len(windows[i]) - 1))
        return [self._result(p, len(x), a.source) for p, x, a in zip(parts, xs, audios, strict=True)]

    def embed_stream(self, blocks: Iterable[Audio], source: str | None = None) -> FrameEmbeddings:
        """Embed consecutive audio blocks, holding at most two windows of samples.

        Raises:
            EmptyAudioError: The stream has no samples.
            NonFiniteAudioError: A block contains NaN or Inf.
            NonFiniteEmbeddingError: The module produced NaN or Inf.
            EmbeddingError: The module failed or broke the HEAR API.
            ConfigError: The blocks change sample rate.
        """
        buf = np.zeros(0, np.float32)
        parts: list[tuple[NDArray[np.float32], NDArray[np.float64]]] = []
        total = 0
        for block in resample_blocks(blocks, self.sample_rate):
            if source is None:
                source = block.source
            total += len(block.samples)
            buf = np.concatenate([buf, block.samples])
            while len(buf) > self._step:  # a window is final only once the stream has gone past it
                parts.append(self._keep(self._run([buf[: self._step]])[0], len(parts), last=False))
                buf = buf[self._step :]
        if total == 0:
            raise EmptyAudioError("stream yielded no samples", source)
        parts.append(self._keep(self._run([buf])[0], len(parts), last=True))
        return self._result(parts, total, source)

    def embed_file(self, source: AudioSource, block_s: float = 60.0) -> FrameEmbeddings:
        """Embed a file of any length by streaming it in blocks of ``block_s`` seconds (bounded memory)."""
        return self.embed_stream(stream(source, block_s, sr=self.sample_rate))

    # ------------------------------------------------------------------ internals
    def _windows(self, n: int) -> list[tuple[int, int]]:
        return [(s, min(s + self._step, n)) for s in range(0, n, self._step)]

    def _keep(
        self, out: tuple[NDArray[np.float32], NDArray[np.float64]], k: int, last: bool
    ) -> tuple[NDArray[np.float32], NDArray[np.float64]]:
        """Window ``k``'s frames whose centres fall inside it (all of them for the last window), in seconds."""
        vectors, ts = out
        start = k * self._step / self.sample_rate
        if not last:
            inside = ts < self.context_s - 1e-9
            vectors, ts = vectors[inside], ts[inside]
        return vectors, ts + start

    def _run(self, windows: list[NDArray[np.float32]]) -> list[tuple[NDArray[np.float32], NDArray[np.float64]]]:
        """The module's frames for every window (vectors and timestamps in seconds), equal lengths batched."""
        results: dict[int, tuple[NDArray[np.float32], NDArray[np.float64]]] = {}
        by_length: dict[int, list[int]] = {}
        for i, w in enumerate(windows):
            by_length.setdefault(len(w), []).append(i)
        for idx in by_length.values():
            for b in range(0, len(idx), self.config.batch_size):
                chunk = idx[b : b + self.config.batch_size]
                vectors, ts = self._call([windows[i] for i in chunk])
                for j, i in enumerate(chunk):
                    results[i] = (vectors[j], ts[j])
        return [results[i] for i in range(len(windows))]

    def _call(self, windows: list[NDArray[np.float32]]) -> tuple[NDArray[np.float32], NDArray[np.float64]]:
        """One ``get_timestamp_embeddings`` call on equal-length windows: ``[n, frames, dim]`` and seconds."""
        batch = np.stack(windows).astype(np.float32, copy=False)
        try:
            with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
                emb, ts = self._module.get_timestamp_embeddings(self._tensor(batch), self.model)
            vectors, stamps = self._numpy(emb), self._numpy(ts)
        except AudiovecError:
            raise
        except Exception as err:
            raise EmbeddingError(f"{self._label()} failed while embedding: {type(err).__name__}: {err}") from err
        n = len(windows)
        if vectors.ndim != 3 or vectors.shape[0] != n or vectors.shape[2] != self.dim:
            raise EmbeddingError(
                f"{self._label()} returned embeddings of shape {vectors.shape} for {n} sounds; expected "
                f"[{n}, frames, {self.dim}]"
            )
        if stamps.shape != vectors.shape[:2]:
            raise EmbeddingError(
                f"{self._label()} returned timestamps of shape {stamps.shape} for embeddings of {vectors.shape}"
            )
        return vectors.astype(np.float32, copy=False), stamps.astype(np.float64) / 1000.0

    def _tensor(self, batch: NDArray[np.float32]) -> Any:
        if self.framework == "torch":
            torch = sys.modules["torch"]
            return torch.from_numpy(batch).to(self._device)
        return sys.modules["tensorflow"].convert_to_tensor(batch)

    def _numpy(self, value: Any) -> NDArray[Any]:
        if hasattr(value, "detach"):  # a torch tensor, on any device
            value = value.detach().cpu()
        return np.asarray(value.numpy() if hasattr(value, "numpy") else value)

    def _result(
        self, parts: list[tuple[NDArray[np.float32], NDArray[np.float64]]], num_samples: int, source: str | None
    ) -> FrameEmbeddings:
        duration = num_samples / self.sample_rate
        vectors = np.concatenate([v for v, _ in parts]) if parts else np.zeros((0, self.dim), np.float32)
        ts = np.concatenate([t for _, t in parts]) if parts else np.zeros(0)
        if len(vectors) == 0:
            raise EmbeddingError(f"{self._label()} returned no frame for {duration:.3f} s of audio from {source!r}")
        result = FrameEmbeddings(
            vectors=np.ascontiguousarray(vectors, dtype=np.float32),
            timestamps=np.clip(ts, 0.0, duration),  # centres of frames padded past either end, inside the audio
            duration=duration,
            window_s=self.window_s,
            hop_s=self.hop_s,
            source=source,
            model=self.name,
        )
        return check_finite_frames(result)


def _distribution_version(module: str) -> str | None:
    """Version of the installed distribution that provides ``module`` (``None`` when none is found)."""
    top = module.split(".")[0]
    for dist in importlib.metadata.packages_distributions().get(top, []):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:  # pragma: no cover - a stale mapping
            continue
    return None

"""OpenL3: Look, Listen and Learn embeddings (512-d or 6144-d) from the ``openl3`` package's Keras models.

The ``openl3`` package builds its Keras model with ``openl3.models.load_audio_embedding_model(input_repr,
content_type, embedding_size)`` from weight files it downloads while it installs. :class:`OpenL3Embedder` wraps
that model: it is loaded once per embedder and called on batches of frames, the way ``openl3.get_audio_embedding``
calls it, but with bounded memory for long files and batching across files. Three ways to get the model:

* nothing: ``openl3.models.load_audio_embedding_model(...)`` is called with the configured ``input_repr``,
  ``content_type``, ``embedding_size`` and ``frontend`` (needs ``pip install openl3``; see ``docs/models/openl3.md``);
* ``model=``: an already built model object, Keras 3 or ``tf_keras`` (Keras 2), or anything with
  ``predict_on_batch``/``predict`` or a ``__call__`` that maps a batch to ``[batch, dim]``;
* ``model_path=``: a saved Keras model (``.keras``, ``.h5`` or a SavedModel folder), or one of ``openl3``'s own
  weight files (``openl3_audio_mel256_music.h5``, which needs the ``openl3`` package to build the network).

Framing follows ``openl3.core``: 1 s windows at 48 kHz, a hop of ``int(hop_s * 48000)`` samples, and with
``center=True`` (openl3's default, and ours) half a window (24000 zeros) prepended so that frame ``i`` is centred on
``i * hop_s``; the tail is zero-padded so every sample is covered (the centring pad is the ``lead`` of the shared
framing, see :mod:`audiovec.embedders.framing`). With the same model, the vectors agree with those of
``openl3.get_audio_embedding(audio, 48000, model=model, center=..., hop_size=...)`` frame for frame (to float
rounding: the model sees the same windows in other batches; 1e-4 in the tests). Two
differences: input at other rates is resampled with soxr (openl3 uses resampy), and timestamps follow the audiovec
rule (the centre of the part of the window that lies inside the audio), which equals openl3's ``i * hop_s`` except
for the windows that overlap the start or end of the audio.

The model's input decides the front end: ``[batch, 1, 48000]`` waveforms for openl3's default ``"kapre"``
front end (the spectrogram is computed inside the model), ``[batch, freq, time, 1]`` spectrograms for its
``"librosa"`` front end, which audiovec computes like ``openl3.preprocess_audio`` does.
"""

from __future__ import annotations

import importlib
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import librosa
import numpy as np
from numpy.typing import NDArray
from pydantic import Field, field_validator, model_validator

from audiovec._optional import require
from audiovec.embedders import _tf
from audiovec.embedders.base import EmbedderConfig, FramedEmbedder
from audiovec.embedders.framing import FrameGeometry, frame_count
from audiovec.errors import (
    ConfigError,
    EmbeddingError,
    ModelLoadError,
)

__all__ = ["LIBROSA_INPUT_SHAPES", "OpenL3Config", "OpenL3Embedder", "librosa_frontend"]

_SR = 48000  # openl3.core.TARGET_SR
_FRAME = _SR  # one-second windows
_PAD = int(_FRAME / 2.0)  # what openl3's center=True prepends
_EXTRA = "openl3"
_FEATURE = "OpenL3Embedder"

InputRepr = Literal["linear", "mel128", "mel256"]

#: Input shape ``(freq, time)`` of openl3's models built with ``frontend="librosa"``.
LIBROSA_INPUT_SHAPES: dict[str, tuple[int, int]] = {"linear": (257, 197), "mel128": (128, 199), "mel256": (256, 199)}


class OpenL3Config(EmbedderConfig):
    """Configuration of :class:`OpenL3Embedder` (names follow ``openl3.get_audio_embedding``).

    Attributes:
        input_repr: Spectrogram the model was trained on: ``"linear"``, ``"mel128"`` or ``"mel256"``.
        content_type: Training data of the model: ``"music"`` or ``"env"`` (environmental sounds).
        embedding_size: ``512`` or ``6144``. openl3's own default is 6144; audiovec's is 512, a better fit for
            vector search.
        hop_s: Step between 1 s windows in seconds (openl3's ``hop_size``); the hop in samples is
            ``int(hop_s * 48000)``, as in openl3.
        center: Prepend half a window of silence so that frame ``i`` is centred on ``i * hop_s`` (openl3's
            default). ``False`` starts the first window at the first sample.
        frontend: ``"kapre"`` (the model takes waveforms ``[batch, 1, 48000]``) or ``"librosa"`` (the model takes
            spectrograms ``[batch, freq, time, 1]``, computed by audiovec as openl3 does).
        model_path: A saved Keras model (``.keras``, ``.h5``, SavedModel folder) or an openl3 weight file. When
            neither this nor a ``model`` object is given, the ``openl3`` package's loader is used.
        batch_size: Windows per model call (openl3's ``batch_size``).
        device: ``"auto"`` (TensorFlow's choice), ``"cpu"``, ``"gpu"`` or ``"gpu:N"``.
        num_threads: TensorFlow intra/inter-op threads (process-wide; only effective before TensorFlow starts).
    """

    input_repr: InputRepr = "mel256"
    content_type: Literal["music", "env"] = "music"
    embedding_size: Literal[512, 6144] = 512
    hop_s: float = Field(0.1, gt=0, le=1.0)
    center: bool = True
    frontend: Literal["kapre", "librosa"] = "kapre"
    model_path: str | None = None
    batch_size: int = Field(32, ge=1, le=65536)
    device: str = Field("auto", pattern=_tf.DEVICE_PATTERN)
    num_threads: int | None = Field(None, ge=1, le=1024)

    @field_validator("model_path", mode="before")
    @classmethod
    def _path_to_str(cls, value: object) -> object:
        return os.fspath(value) if isinstance(value, os.PathLike) else value

    @model_validator(mode="after")
    def _check_hop(self) -> OpenL3Config:
        if int(self.hop_s * _SR) < 1:
            raise ValueError(f"hop_s={self.hop_s} is shorter than one sample at {_SR} Hz")
        return self


class OpenL3Embedder(FramedEmbedder):
    """OpenL3 embeddings, ``float32[frames, embedding_size]``: 1 s windows every ``hop_s`` at 48 kHz.

    Args:
        config: An :class:`OpenL3Config`, a dict of its fields, or ``None`` for defaults.
        model: An already built OpenL3 Keras model (Keras 3 or ``tf_keras``), e.g. from
            ``openl3.models.load_audio_embedding_model(input_repr, content_type, embedding_size)``. Set the config
            fields to describe it: ``embedding_size`` and the front end are checked against the model, and all of
            them are recorded in :meth:`spec`.
        **params: Config fields as keyword arguments.

    Attributes:
        load_seconds: Wall time spent loading and checking the model.

    Raises:
        MissingDependencyError: No model given and the ``openl3`` package is not installed (or TensorFlow is
            missing for ``device``/``num_threads``).
        ModelLoadError: The model cannot be loaded, or fails on one second of silence.
        ConfigError: Invalid parameters, a model whose input or output does not match them, or both ``model``
            and ``model_path``.

    Example:
        >>> import openl3  # doctest: +SKIP
        >>> from audiovec import get_embedder
        >>> model = openl3.models.load_audio_embedding_model("mel256", "music", 512)  # doctest: +SKIP
        >>> emb = get_embedder("openl3", model=model, hop_s=0.5)  # doctest: +SKIP
        >>> emb.embed_file("song.mp3").vectors.shape  # doctest: +SKIP
        (197, 512)
    """

    name: ClassVar[str] = "openl3"
    version: ClassVar[str] = "1"
    Config = OpenL3Config
    config: OpenL3Config

    def __init__(
        self, config: OpenL3Config | dict[str, Any] | None = None, *, model: Any = None, **params: Any
    ) -> None:
        super().__init__(config, **params)
        c = self.config
        t0 = time.perf_counter()
        self._tf: Any = None
        self._device: str | None = None
        if c.device != "auto" or c.num_threads is not None:  # a Keras model alone needs no TensorFlow settings
            self._tf, self._device = _tf.start(_EXTRA, _FEATURE, c.device, c.num_threads)
        if model is not None and c.model_path is not None:
            raise ConfigError("give either a model object or model_path, not both")
        with _tf.device_scope(self._tf, self._device):
            if model is not None:
                self._model, self._model_id = model, _describe_object(model)
            elif c.model_path is not None:
                self._model, self._model_id = _load_model_file(c), c.model_path
            else:
                self._model, self._model_id = _load_official(c)
        self._predict_fn = _predictor(self._model)
        # 1 s windows every int(hop_s * 48000) samples, as openl3 computes the hop
        self.geometry = FrameGeometry(_SR, _FRAME, int(c.hop_s * _SR), self._check_model())
        # center=True: half a window of silence before the audio, so frame i is centred on i * hop_s
        self._lead = _PAD if c.center else 0
        weights = getattr(self._model, "get_weights", None)
        self._weights = _tf.array_digest(weights()) if callable(weights) else None
        self.load_seconds = time.perf_counter() - t0
        self._given_model = model is not None

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as its configuration (the model is loaded again); refused for an embedder built from a model object.

        Raises:
            TypeError: The embedder was built with ``model=`` (an in-memory model cannot be rebuilt elsewhere).
        """
        if self._given_model:
            raise TypeError("an OpenL3Embedder built from a model object cannot be copied to another process")
        return super().__reduce__()

    # ------------------------------------------------------------------ FramedEmbedder
    def _spec_params(self) -> dict[str, Any]:
        """The parameters that change the output, the model's origin and a hash of its weights."""
        c = self.config
        return {
            "input_repr": c.input_repr,
            "content_type": c.content_type,
            "embedding_size": c.embedding_size,
            "hop_s": c.hop_s,
            "center": c.center,
            "frontend": c.frontend,
            "model": self._model_id,
            "weights_sha256": self._weights,
        }

    def _embed_frames_batch(self, chunks: Sequence[NDArray[np.float32]]) -> list[NDArray[np.float32]]:
        """Run every window of every chunk through the model, ``batch_size`` windows at a time."""
        hop, bs = self.hop_length, self.config.batch_size
        views = []
        for chunk in chunks:
            view = np.lib.stride_tricks.sliding_window_view(chunk, _FRAME)[::hop]
            n = frame_count(len(chunk), _FRAME, hop)
            views.append(view[:n])
        outs = [np.empty((len(v), self.dim), dtype=np.float32) for v in views]
        buf = np.empty((bs, _FRAME), dtype=np.float32)
        filled = 0
        owners: list[tuple[int, int, int, int]] = []  # (chunk, first frame, buffer row, rows)
        for ci, view in enumerate(views):
            j = 0
            while j < len(view):
                m = min(bs - filled, len(view) - j)
                buf[filled : filled + m] = view[j : j + m]
                owners.append((ci, j, filled, m))
                filled += m
                j += m
                if filled == bs:
                    self._run_buffer(buf, filled, owners, outs)
                    filled, owners = 0, []
        if filled:
            self._run_buffer(buf, filled, owners, outs)
        return outs

    # ------------------------------------------------------------------ internals
    def _run_buffer(
        self,
        buf: NDArray[np.float32],
        rows: int,
        owners: list[tuple[int, int, int, int]],
        outs: list[NDArray[np.float32]],
    ) -> None:
        y = self._predict(self._model_input(buf[:rows]))
        if y.shape != (rows, self.dim):
            raise EmbeddingError(
                f"openl3 model returned shape {y.shape} for {rows} windows, expected {(rows, self.dim)}"
            )
        for ci, j, r, m in owners:
            outs[ci][j : j + m] = y[r : r + m]

    def _model_input(self, frames: NDArray[np.float32]) -> NDArray[np.float32]:
        if self.config.frontend == "kapre":
            return frames[:, None, :]
        return librosa_frontend(frames, self.config.input_repr)[..., None]

    def _predict(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        with _tf.device_scope(self._tf, self._device):
            out = self._predict_fn(batch)
        if hasattr(out, "numpy"):
            out = out.numpy()
        arr = np.asarray(out, dtype=np.float32)
        if arr.ndim != 2:
            raise EmbeddingError(f"openl3 model returned shape {arr.shape}, expected [windows, dim]")
        return arr

    def _check_model(self) -> int:
        """Check the model's input against the front end and its output on silence; return its dimension."""
        c = self.config
        try:
            shape = getattr(self._model, "input_shape", None)
        except Exception:  # e.g. a Keras model that was never built
            shape = None
        if shape is not None:
            dims = tuple(shape)
            want = (1, _FRAME) if c.frontend == "kapre" else (*LIBROSA_INPUT_SHAPES[c.input_repr], 1)
            if len(dims) != len(want) + 1 or any(
                d is not None and d != w for d, w in zip(dims[1:], want, strict=False)
            ):
                layout = (
                    "[batch, 1, 48000] waveforms" if c.frontend == "kapre" else "[batch, freq, time, 1] spectrograms"
                )
                raise ConfigError(
                    f"the model's input shape {dims} does not fit frontend={c.frontend!r}, input_repr="
                    f"{c.input_repr!r}: expected {(None, *want)} ({layout}; openl3's models built with "
                    f"frontend='kapre' take waveforms, those built with frontend='librosa' take spectrograms)"
                )
        try:
            probe = self._predict(self._model_input(np.zeros((1, _FRAME), dtype=np.float32)))
        except Exception as err:
            raise ModelLoadError(
                f"{_FEATURE}: model {self._model_id!r} failed on one second of silence: {type(err).__name__}: {err}"
            ) from err
        if probe.shape[0] != 1:
            raise ModelLoadError(f"{_FEATURE}: model {self._model_id!r} returned {probe.shape} for one window")
        if probe.shape[1] != c.embedding_size:
            raise ConfigError(
                f"the model returns {probe.shape[1]}-d vectors but embedding_size={c.embedding_size}; "
                "set embedding_size to describe the model"
            )
        return int(probe.shape[1])


def librosa_frontend(frames: NDArray[np.float32], input_repr: str) -> NDArray[np.float32]:
    """Spectrograms of 1 s windows at 48 kHz, as openl3's ``frontend="librosa"`` computes them.

    ``linear``: magnitude STFT (512-point, hop 242, no centring); ``mel128``/``mel256``: magnitude mel spectrogram
    (2048-point FFT, hop 242, centred with reflection padding, as librosa did by default when openl3 was written).
    Both are then turned into decibels like ``librosa.power_to_db(S, ref=1.0, amin=1e-10, top_db=80)`` and
    shifted so that each window's maximum is 0 dB.

    Args:
        frames: ``float32[windows, 48000]``.
        input_repr: ``"linear"``, ``"mel128"`` or ``"mel256"``.

    Returns:
        ``float32[windows, freq, time]``: ``[.., 257, 197]`` for linear, ``[.., 128 or 256, 199]`` for mel.
    """
    if input_repr == "linear":
        spec = np.abs(librosa.stft(frames, n_fft=512, hop_length=242, center=False))
    elif input_repr in ("mel128", "mel256"):
        spec = librosa.feature.melspectrogram(
            y=frames,
            sr=_SR,
            n_fft=2048,
            hop_length=242,
            n_mels=int(input_repr[3:]),
            center=True,
            pad_mode="reflect",
            power=1.0,
        )
    else:
        raise ConfigError(f"unknown input_repr {input_repr!r}; expected linear, mel128 or mel256")
    db = 10.0 * np.log10(np.maximum(spec, 1e-10))
    peak = db.max(axis=(-2, -1), keepdims=True)
    db = np.maximum(db, peak - 80.0) - peak
    return np.ascontiguousarray(db, dtype=np.float32)


# ------------------------------------------------------------------------------------------- loading
def _describe_object(model: Any) -> str:
    cls = type(model)
    name = getattr(model, "name", None)
    suffix = f" name={name!r}" if isinstance(name, str) else ""
    return f"<{cls.__module__}.{cls.__qualname__}{suffix}>"


def _predictor(model: Any) -> Callable[[NDArray[np.float32]], Any]:
    """How to run ``model`` on one batch: ``predict_on_batch``, else ``predict``, else a plain call."""
    for attr in ("predict_on_batch", "predict"):
        fn = getattr(model, attr, None)
        if callable(fn):
            return fn  # type: ignore[no-any-return]
    if callable(model):
        return model  # type: ignore[no-any-return]
    raise ConfigError(f"model {type(model).__name__} has no predict_on_batch/predict method and is not callable")


def _load_official(c: OpenL3Config) -> tuple[Any, str]:
    openl3 = require("openl3", _EXTRA, _FEATURE)
    call = (
        f"openl3.models.load_audio_embedding_model(input_repr={c.input_repr!r}, content_type={c.content_type!r}, "
        f"embedding_size={c.embedding_size}, frontend={c.frontend!r})"
    )
    try:
        models = importlib.import_module("openl3.models")
        model = models.load_audio_embedding_model(c.input_repr, c.content_type, c.embedding_size, frontend=c.frontend)
    except Exception as err:
        raise ModelLoadError(f"{_FEATURE}: {call} failed: {type(err).__name__}: {err}") from err
    version = getattr(openl3, "__version__", "unknown")
    return model, f"openl3=={version}:{c.input_repr}_{c.content_type}"


def _load_model_file(c: OpenL3Config) -> Any:
    assert c.model_path is not None
    path = Path(c.model_path).expanduser()
    if not path.exists():
        raise ModelLoadError(f"{_FEATURE}: no model at {str(path)!r} (path does not exist)")

    def keras3() -> Any:
        keras = importlib.import_module("keras")
        return keras.saving.load_model(str(path), compile=False)

    def keras2() -> Any:
        tf_keras = importlib.import_module("tf_keras")
        return tf_keras.models.load_model(str(path), compile=False)

    def openl3_weights() -> Any:
        models = importlib.import_module("openl3.models")
        return models.load_audio_embedding_model_from_path(
            str(path), c.input_repr, c.embedding_size, frontend=c.frontend
        )

    loaders: list[tuple[str, Callable[[], Any]]]
    suffix = path.suffix.lower()
    if path.is_dir():
        loaders = [("tf_keras.models.load_model (SavedModel)", keras2)]
    elif suffix == ".keras":
        loaders = [("keras.saving.load_model", keras3)]
    else:
        loaders = [("keras.saving.load_model", keras3), ("tf_keras.models.load_model", keras2)]
        if suffix in (".h5", ".hdf5"):
            loaders.append(("openl3.models.load_audio_embedding_model_from_path (weights file)", openl3_weights))
    tried = []
    for what, load in loaders:
        try:
            return load()
        except ImportError as err:
            tried.append(f"{what}: not installed ({err})")
        except Exception as err:
            tried.append(f"{what}: {type(err).__name__}: {err}")
    lines = "\n".join(f"  - {t}" for t in tried)
    raise ModelLoadError(f"{_FEATURE}: could not load {str(path)!r}; tried:\n{lines}")

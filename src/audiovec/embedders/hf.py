"""Hugging Face audio encoders (``transformers``): Wav2Vec2, HuBERT, WavLM, Whisper's encoder, AST and CLAP.

One generic embedder, :class:`HFAudioEmbedder` (registry name ``hf``), takes a model id on the Hub or a local
directory written by ``save_pretrained``; the presets (``wav2vec2``, ``hubert``, ``whisper``, ``ast``, ``clap``)
are the same class with a default checkpoint and a check that the checkpoint is of their family.
:class:`CLAPEmbedder` also embeds text into the audio space (:meth:`CLAPEmbedder.embed_text`).

Windowing. A transformer's output for one position depends on everything in its input, so audio is cut into
fixed, independent, back-to-back *context windows* (``context_s``; window ``k`` holds samples
``[k * step, (k + 1) * step)``) and each window is embedded on its own. A window's result never depends on the
audio outside it, so :meth:`~HFAudioEmbedder.embed`, :meth:`~HFAudioEmbedder.embed_batch`,
:meth:`~HFAudioEmbedder.embed_stream` and :meth:`~HFAudioEmbedder.embed_file` agree, and a file of any length is
embedded with memory bounded by ``batch_size`` windows. The price: tokens near a window boundary see no context
beyond it. Two kinds of output:

* **frames** (Wav2Vec2-style models, Whisper): one vector per encoder token, on one uniform grid across windows
  (50 per second for the usual checkpoints: frame ``j`` starts at ``j * 20 ms``; 500 frames per 10 s window).
  Wav2Vec2-style models read the raw waveform through a CNN whose receptive field (400 samples, 25 ms) is longer
  than its stride (320 samples); each window is zero-padded after its own samples to complete its last frame
  (80 samples for a full window), and the end of the audio is padded the same way, so there is a frame for every
  started 20 ms, as for :class:`~audiovec.FramedEmbedder`. ``window_s`` is the receptive field (25 ms).
  Whisper's encoder only accepts its full 30 s input: each window of real audio is zero-padded to 30 s by the
  feature extractor and only the tokens over real audio are kept (``ceil(samples / 320)`` of them; the rest
  encode padding). ``window_s`` is one token (20 ms).
* **pooled** (AST, CLAP audio tower): one vector per window (10.24 s for AST, 10 s for CLAP), timestamped at the
  centre of the part of the window that holds audio. The last window of a file is usually partial: AST pads
  its spectrogram with zeros, CLAP repeats the audio to fill the window ("repeatpad", as in LAION's code).

Batching. Windows (of one long file or of many files) go to the model ``batch_size`` at a time. Whisper, AST and
CLAP turn every window into an input of the same fixed size, so batching is exact. Wav2Vec2-style models take
variable-length waveforms: checkpoints whose CNN uses layer normalisation (``feat_extract_norm="layer"``, e.g.
wav2vec2-large-lv60) are padded and given an attention mask; checkpoints with group normalisation
(``feat_extract_norm="group"``, e.g. wav2vec2-base and hubert-base) were not trained with an attention mask and
their group norm takes statistics over the whole (padded) input, so, as transformers documents, they get no
attention mask, and audiovec only batches windows of *equal length* together (all full windows are), which
keeps a batched result identical to a one-by-one result.

Determinism. Dropout is off (``eval()``), and CLAP's random crops never happen: windows are never longer than the
feature extractor's maximum, CLAP's ``is_longer`` flags are all false (transformers otherwise sets a random one for
fusion checkpoints), and NumPy's global random state is restored after CLAP's feature extractor runs.

Loading. ``model`` is a Hub id (downloaded to the Hugging Face cache on first use) or a local directory.
``local_files_only=True``, or ``HF_HUB_OFFLINE=1`` in the environment, forbids any network access: a Hub id is
then looked up in the cache by path and loaded from its snapshot directory. ``cache_dir`` and ``revision`` select
the cache and the Hub revision. A model that cannot be loaded raises
:class:`~audiovec.errors.ModelLoadError` naming what was tried; audiovec never falls back to another model.
torch and transformers are imported when an embedder is built, never by ``import audiovec``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import Field, ValidationError, field_validator, model_validator

from audiovec._optional import require
from audiovec.audio import Audio, AudioSource, resample_blocks, stream
from audiovec.embedders.base import EmbedderConfig, EmbedderSpec, frame_count
from audiovec.embeddings import FrameEmbeddings
from audiovec.errors import ConfigError, EmbeddingError, EmptyAudioError, ModelLoadError, NonFiniteAudioError

__all__ = [
    "SUPPORTED_MODEL_TYPES",
    "ASTEmbedder",
    "ASTEmbedderConfig",
    "CLAPEmbedder",
    "CLAPEmbedderConfig",
    "HFAudioConfig",
    "HFAudioEmbedder",
    "HuBERTEmbedder",
    "HuBERTEmbedderConfig",
    "Wav2Vec2Embedder",
    "Wav2Vec2EmbedderConfig",
    "WhisperEmbedder",
    "WhisperEmbedderConfig",
]

log = logging.getLogger(__name__)

#: Model types (``config.json``'s ``model_type``) with a raw-waveform CNN front end and token outputs.
_CNN_TYPES = frozenset(
    {"wav2vec2", "wav2vec2-conformer", "hubert", "wavlm", "data2vec-audio", "unispeech", "unispeech-sat"}
)
#: Every ``model_type`` that :class:`HFAudioEmbedder` can load.
SUPPORTED_MODEL_TYPES: frozenset[str] = _CNN_TYPES | {"whisper", "audio-spectrogram-transformer", "clap"}

_DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
_DEFAULT_CNN_CONTEXT_S = 10.0
_OFFLINE_VALUES = {"1", "ON", "YES", "TRUE"}


# --------------------------------------------------------------------------------------------------- config
class HFAudioConfig(EmbedderConfig):
    """Configuration of :class:`HFAudioEmbedder` and its presets.

    Attributes:
        model: Hub model id (``"facebook/wav2vec2-base"``) or a local directory written by ``save_pretrained``
            (weights, ``config.json`` and ``preprocessor_config.json``).
        revision: Branch, tag or commit of a Hub model (``None``: the default branch).
        cache_dir: Hugging Face hub cache directory (``None``: the default, ``$HF_HUB_CACHE`` or ``$HF_HOME/hub``).
        local_files_only: Never touch the network: load from ``model`` (a directory) or from the cache only.
            ``HF_HUB_OFFLINE=1`` in the environment has the same effect.
        layer: Which output to read. ``"last"``: the model's final output (``last_hidden_state`` for frame
            models, the pooled/projected vector for AST and CLAP). An integer ``k``: ``hidden_states[k]`` as
            transformers returns it (``0`` is the input of the first transformer layer; negative counts from the
            end); for AST it is the mean of all tokens of that layer. ``"extract_features"`` (Wav2Vec2-style
            models only): the CNN features before the transformer, layer-normalised as transformers'
            ``extract_features`` output (512-d for the base models).
        context_s: Seconds of audio per independent model window. ``None``: 10 s for Wav2Vec2-style models, and
            the model's full input for the others (Whisper 30 s, AST 10.24 s, CLAP 10 s). Whisper, AST and CLAP
            accept shorter windows (padded as the model expects), never longer ones. Rounded to whole tokens.
        batch_size: Windows per model call. Larger is faster on a GPU and takes more memory.
        device: ``"auto"`` (CUDA, then Apple MPS, then CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.
        dtype: Floating-point type of the weights and activations (``"float16"``/``"bfloat16"`` mainly for GPUs).
            Outputs are always ``float32``.
    """

    model: str = Field(..., min_length=1)
    revision: str | None = None
    cache_dir: str | None = None
    local_files_only: bool = False
    layer: Literal["last", "extract_features"] | int = "last"
    context_s: float | None = Field(None, gt=0, le=3600)
    batch_size: int = Field(8, ge=1, le=4096)
    device: str = "auto"
    dtype: Literal["float32", "float16", "bfloat16"] = "float32"

    @field_validator("model", "cache_dir", mode="before")
    @classmethod
    def _path_to_str(cls, value: Any) -> Any:
        return os.fspath(value) if isinstance(value, os.PathLike) else value

    @field_validator("layer", mode="before")
    @classmethod
    def _no_bool_layer(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("layer must be 'last', 'extract_features' or an integer index, not a bool")
        return value

    @field_validator("device")
    @classmethod
    def _check_device(cls, value: str) -> str:
        if not _DEVICE_RE.match(value):
            raise ValueError(f"device must be 'auto', 'cpu', 'mps', 'cuda' or 'cuda:N', got {value!r}")
        return value

    @model_validator(mode="after")
    def _no_chunk_s(self) -> HFAudioConfig:
        if "chunk_s" in self.model_fields_set:
            raise ValueError(
                "chunk_s does not apply to Hugging Face embedders: audio is cut into context_s windows and "
                "batch_size windows go into one model call"
            )
        return self


class Wav2Vec2EmbedderConfig(HFAudioConfig):
    """Configuration of :class:`Wav2Vec2Embedder` (default checkpoint ``facebook/wav2vec2-base``, 768-d, 50 Hz)."""

    model: str = Field("facebook/wav2vec2-base", min_length=1)


class HuBERTEmbedderConfig(HFAudioConfig):
    """Configuration of :class:`HuBERTEmbedder` (default ``facebook/hubert-base-ls960``, 768-d, 50 Hz)."""

    model: str = Field("facebook/hubert-base-ls960", min_length=1)


class WhisperEmbedderConfig(HFAudioConfig):
    """Configuration of :class:`WhisperEmbedder` (default ``openai/whisper-base``: encoder, 512-d, 50 Hz)."""

    model: str = Field("openai/whisper-base", min_length=1)


class ASTEmbedderConfig(HFAudioConfig):
    """Configuration of :class:`ASTEmbedder` (default ``MIT/ast-finetuned-audioset-10-10-0.4593``, 768-d)."""

    model: str = Field("MIT/ast-finetuned-audioset-10-10-0.4593", min_length=1)


class CLAPEmbedderConfig(HFAudioConfig):
    """Configuration of :class:`CLAPEmbedder` (default ``laion/clap-htsat-unfused``, 512-d, unit length)."""

    model: str = Field("laion/clap-htsat-unfused", min_length=1)


# --------------------------------------------------------------------------------------------------- geometry
@dataclass(frozen=True)
class _Geometry:
    """Where frames and windows lie, in samples at the model's rate.

    Windows are back to back: window ``k`` holds samples ``[k * step, (k + 1) * step)`` and yields frames
    ``k * per_window ...`` (``per_window = step // hop``), so frame ``j`` starts at ``j * hop`` and covers ``span``
    samples, a uniform grid across windows. With ``cnn`` (raw-waveform CNN models) a frame needs all of its
    ``span`` samples: every window is zero-padded after its own samples to complete its last frame, and the last
    (partial) window yields as many frames as its samples start, like :class:`~audiovec.FramedEmbedder`.
    Otherwise the model pads the window itself and a frame exists for every started ``hop``.
    """

    hop: int
    span: int
    step: int
    cnn: bool

    @property
    def per_window(self) -> int:
        return self.step // self.hop

    def frames_in(self, r: int) -> int:
        """Frames of a window holding ``r`` samples (``0 < r <= step``)."""
        if r >= self.step:
            return self.per_window
        if self.cnn:
            return min(self.per_window, frame_count(r, self.span, self.hop))
        return -(-r // self.hop)

    def window(self, samples: NDArray[np.float32]) -> _Window:
        """The model input for one window's samples: zero-padded to complete its last frame (``cnn``)."""
        n = self.frames_in(len(samples))
        if not self.cnn:
            return _Window(samples, n)
        seg = np.zeros((n - 1) * self.hop + self.span, dtype=np.float32)
        seg[: len(samples)] = samples
        return _Window(seg, n)

    def count(self, n: int) -> int:
        """Frames for ``n`` samples."""
        full, rest = divmod(n, self.step)
        return full * self.per_window + (self.frames_in(rest) if rest else 0)

    def timestamps(self, n: int) -> NDArray[np.float64]:
        """Centre (in samples) of the part of every frame's span that lies inside ``n`` samples."""
        starts = np.arange(self.count(n), dtype=np.float64) * self.hop
        ends = np.minimum(starts + self.span, n)
        return (starts + ends) / 2.0


@dataclass
class _Window:
    samples: NDArray[np.float32]
    frames: int


class _Windower:
    """Cut a stream of samples into the geometry's windows, holding less than one window between calls."""

    def __init__(self, geo: _Geometry) -> None:
        self.geo = geo
        self.buf = np.zeros(0, dtype=np.float32)
        self.total = 0

    def feed(self, x: NDArray[np.float32]) -> Iterator[_Window]:
        """Yield the windows that ``x`` completes (exhaust it before the next call or :meth:`finish`)."""
        step = self.geo.step
        self.total += len(x)
        buf = np.concatenate([self.buf, x]) if len(self.buf) else np.asarray(x, dtype=np.float32)
        full = len(buf) // step
        self.buf = buf[full * step :].copy() if full else buf
        for k in range(full):
            yield self.geo.window(buf[k * step : (k + 1) * step])

    def finish(self) -> list[_Window]:
        if self.total == 0:
            raise EmptyAudioError("audio has zero samples")
        out = [self.geo.window(self.buf)] if len(self.buf) else []
        self.buf = np.zeros(0, dtype=np.float32)
        return out


# --------------------------------------------------------------------------------------------------- backends
class _Backend:
    """A loaded model and its feature extractor: turns a batch of windows into frame vectors."""

    sample_rate: int
    dim: int
    geometry: _Geometry
    #: Only windows of equal length may share a batch (no attention mask, statistics over the whole input).
    equal_lengths: bool = False

    def __init__(self, torch: Any, model: Any, fe: Any, device: str, dtype: Any) -> None:
        self.torch = torch
        self.model = model
        self.fe = fe
        self.device = device
        self.dtype = dtype

    def run(self, batch: list[NDArray[np.float32]], frames: list[int]) -> list[NDArray[np.float32]]:
        raise NotImplementedError

    def _tensor(self, array: Any) -> Any:
        return self.torch.as_tensor(np.asarray(array)).to(device=self.device, dtype=self.dtype)

    def _numpy(self, tensor: Any) -> NDArray[np.float32]:
        return np.ascontiguousarray(tensor.detach().to("cpu", self.torch.float32).numpy(), dtype=np.float32)


def _check_layer(layer: int | str, n_layers: int, what: str, allow_extract: bool) -> None:
    if layer == "extract_features" and not allow_extract:
        raise ConfigError(f"layer='extract_features' is only available for Wav2Vec2-style models, not {what}")
    if isinstance(layer, int) and not -(n_layers + 1) <= layer <= n_layers:
        raise ConfigError(f"layer={layer} is out of range for {what}: hidden_states has {n_layers + 1} entries")


class _CNNBackend(_Backend):
    """Wav2Vec2, HuBERT, WavLM, Data2Vec-Audio, UniSpeech(-SAT): raw waveform → CNN → transformer tokens."""

    def __init__(self, torch: Any, model: Any, fe: Any, device: str, dtype: Any, cfg: Any, hp: HFAudioConfig) -> None:
        super().__init__(torch, model, fe, device, dtype)
        if getattr(cfg, "add_adapter", False):
            raise ModelLoadError(f"{hp.model}: checkpoints with an adapter (add_adapter=True) are not supported")
        kernels, strides = list(cfg.conv_kernel), list(cfg.conv_stride)
        hop, span = 1, 1
        for k, s in zip(kernels, strides, strict=True):
            span += (k - 1) * hop
            hop *= s
        self.sample_rate = int(fe.sampling_rate)
        context = hp.context_s if hp.context_s is not None else _DEFAULT_CNN_CONTEXT_S
        per_window = max(1, round(context * self.sample_rate / hop))
        self.geometry = _Geometry(hop, span, per_window * hop, cnn=True)
        self.layer = hp.layer
        _check_layer(hp.layer, int(cfg.num_hidden_layers), cfg.model_type, allow_extract=True)
        self.dim = int(cfg.conv_dim[-1]) if hp.layer == "extract_features" else int(cfg.hidden_size)
        # transformers: group-norm checkpoints were trained without attention masks and must not get one
        self.use_mask = getattr(cfg, "feat_extract_norm", "group") == "layer"
        self.equal_lengths = not self.use_mask
        self.proj_norm = getattr(getattr(model, "feature_projection", None), "layer_norm", None)

    def run(self, batch: list[NDArray[np.float32]], frames: list[int]) -> list[NDArray[np.float32]]:
        feats = self.fe(
            batch,
            sampling_rate=self.sample_rate,
            padding="longest",
            return_attention_mask=True,
            return_tensors="np",
        )
        values = self._tensor(feats["input_values"])
        if self.layer == "extract_features":
            hidden = self.model.feature_extractor(values).transpose(1, 2)
            if self.proj_norm is not None:
                hidden = self.proj_norm(hidden)
        else:
            mask = None
            if self.use_mask:
                mask = self.torch.as_tensor(np.asarray(feats["attention_mask"])).to(self.device, self.torch.long)
            elif len({len(b) for b in batch}) > 1:
                raise EmbeddingError("internal error: windows of different lengths batched without a mask")
            out = self.model(values, attention_mask=mask, output_hidden_states=isinstance(self.layer, int))
            hidden = out.last_hidden_state if self.layer == "last" else out.hidden_states[self.layer]
        arr = self._numpy(hidden)
        if arr.shape[1] < max(frames):
            raise EmbeddingError(
                f"the model returned {arr.shape[1]} frames for windows of {max(frames)} (implementation bug)"
            )
        return [arr[i, :n] for i, n in enumerate(frames)]


class _WhisperBackend(_Backend):
    """Whisper's encoder: log-mel of a window zero-padded to 30 s → 1500 tokens; keep those with real audio."""

    def __init__(self, torch: Any, model: Any, fe: Any, device: str, dtype: Any, cfg: Any, hp: HFAudioConfig) -> None:
        super().__init__(torch, model, fe, device, dtype)
        self.sample_rate = int(fe.sampling_rate)
        positions = int(cfg.max_source_positions)
        if int(fe.nb_max_frames) != 2 * positions or int(fe.feature_size) != int(cfg.num_mel_bins):
            raise ModelLoadError(
                f"{hp.model}: the feature extractor ({fe.feature_size} mels, {fe.nb_max_frames} frames) does not "
                f"match the encoder ({cfg.num_mel_bins} mels, {2 * positions} frames)"
            )
        hop = 2 * int(fe.hop_length)  # conv2 has stride 2
        limit = int(fe.n_samples)
        per_window = positions if hp.context_s is None else round(hp.context_s * self.sample_rate / hop)
        if per_window * hop > limit or per_window < 1:
            raise ConfigError(
                f"context_s={hp.context_s} is outside Whisper's input length (0, {limit / self.sample_rate:g}] s"
            )
        self.geometry = _Geometry(hop, hop, per_window * hop, cnn=False)
        self.layer = hp.layer
        _check_layer(hp.layer, int(cfg.encoder_layers), "whisper", allow_extract=False)
        self.dim = int(cfg.d_model)

    def run(self, batch: list[NDArray[np.float32]], frames: list[int]) -> list[NDArray[np.float32]]:
        feats = self.fe(batch, sampling_rate=self.sample_rate, padding="max_length", return_tensors="np")
        out = self.model(self._tensor(feats["input_features"]), output_hidden_states=isinstance(self.layer, int))
        hidden = out.last_hidden_state if self.layer == "last" else out.hidden_states[self.layer]
        arr = self._numpy(hidden)
        return [arr[i, :n] for i, n in enumerate(frames)]


class _ASTBackend(_Backend):
    """Audio Spectrogram Transformer: 128-band fbank of a window padded to 1024 frames → one pooled vector."""

    def __init__(self, torch: Any, model: Any, fe: Any, device: str, dtype: Any, cfg: Any, hp: HFAudioConfig) -> None:
        super().__init__(torch, model, fe, device, dtype)
        self.sample_rate = int(fe.sampling_rate)
        if int(fe.max_length) != int(cfg.max_length) or int(fe.num_mel_bins) != int(cfg.num_mel_bins):
            raise ModelLoadError(
                f"{hp.model}: the feature extractor ({fe.num_mel_bins} mels, {fe.max_length} frames) does not match "
                f"the model ({cfg.num_mel_bins} mels, {cfg.max_length} frames)"
            )
        shift = self.sample_rate // 100  # Kaldi fbank: 10 ms frame shift, 25 ms frames
        self.min_len = self.sample_rate * 25 // 1000
        limit = int(cfg.max_length) * shift
        window = limit if hp.context_s is None else round(hp.context_s * self.sample_rate)
        if window > limit:
            raise ConfigError(f"context_s={hp.context_s} exceeds AST's input length {limit / self.sample_rate:g} s")
        self.geometry = _Geometry(window, window, window, cnn=False)
        self.layer = hp.layer
        _check_layer(hp.layer, int(cfg.num_hidden_layers), "audio-spectrogram-transformer", allow_extract=False)
        self.dim = int(cfg.hidden_size)

    def run(self, batch: list[NDArray[np.float32]], frames: list[int]) -> list[NDArray[np.float32]]:
        padded = [b if len(b) >= self.min_len else np.pad(b, (0, self.min_len - len(b))) for b in batch]
        feats = self.fe(padded, sampling_rate=self.sample_rate, return_tensors="np")
        out = self.model(self._tensor(feats["input_values"]), output_hidden_states=isinstance(self.layer, int))
        pooled = out.pooler_output if self.layer == "last" else out.hidden_states[self.layer].mean(dim=1)
        arr = self._numpy(pooled)
        return [arr[i : i + 1] for i in range(len(batch))]


class _CLAPBackend(_Backend):
    """CLAP's HTSAT audio tower and projection: one unit vector per window of at most 10 s."""

    def __init__(self, torch: Any, model: Any, fe: Any, device: str, dtype: Any, cfg: Any, hp: HFAudioConfig) -> None:
        super().__init__(torch, model, fe, device, dtype)
        self.sample_rate = int(fe.sampling_rate)
        audio_cfg = cfg.audio_config
        if int(fe.feature_size) != int(audio_cfg.num_mel_bins):
            raise ModelLoadError(
                f"{hp.model}: the feature extractor has {fe.feature_size} mel bands, the audio tower "
                f"{audio_cfg.num_mel_bins}"
            )
        limit = int(fe.nb_max_samples)
        window = limit if hp.context_s is None else round(hp.context_s * self.sample_rate)
        if window > limit:
            raise ConfigError(f"context_s={hp.context_s} exceeds CLAP's input length {limit / self.sample_rate:g} s")
        if hp.layer != "last":
            raise ConfigError("CLAP embedders only offer layer='last' (the projected audio embedding)")
        self.geometry = _Geometry(window, window, window, cnn=False)
        self.dim = int(cfg.projection_dim)

    def run(self, batch: list[NDArray[np.float32]], frames: list[int]) -> list[NDArray[np.float32]]:
        state = np.random.get_state()  # noqa: NPY002 - the feature extractor draws from the global generator
        try:
            feats = self.fe(batch, sampling_rate=self.sample_rate, return_tensors="np")
        finally:
            np.random.set_state(state)  # noqa: NPY002
        longer = self.torch.zeros((len(batch), 1), dtype=self.torch.bool, device=self.device)
        out = self.model.get_audio_features(input_features=self._tensor(feats["input_features"]), is_longer=longer)
        vec = self.torch.nn.functional.normalize(_pooled(self.torch, out).float(), dim=-1)
        arr = self._numpy(vec)
        return [arr[i : i + 1] for i in range(len(batch))]


# --------------------------------------------------------------------------------------------------- embedder
class HFAudioEmbedder:
    """Any supported Hugging Face audio encoder, by Hub id or local directory.

    Supported ``model_type``: see :data:`SUPPORTED_MODEL_TYPES`. Output: ``float32[frames, dim]`` token
    vectors (Wav2Vec2-style models and Whisper, :attr:`output` ``"frames"``) or one vector per context window
    (AST, CLAP; :attr:`output` ``"pooled"``). The model is loaded once, in the constructor.

    Args:
        config: A config instance, a dict of its fields, or ``None`` (then ``model=`` is required).
        **params: Config fields as keyword arguments (override ``config``); see :class:`HFAudioConfig`.

    Raises:
        ConfigError: Invalid parameters, a layer the model does not have, an unusable device, or a checkpoint of
            the wrong family for a preset.
        MissingDependencyError: torch or transformers is not installed (``pip install 'audiovec[transformers]'``).
        ModelLoadError: The model, its config or its feature extractor cannot be loaded (not found, not cached
            with ``local_files_only``, corrupt, or not a supported audio encoder).

    Example:
        >>> from audiovec import get_embedder, load
        >>> emb = get_embedder("hf", model="facebook/wav2vec2-base", layer=6)  # doctest: +SKIP
        >>> emb.embed(load("speech_3s.flac")).vectors.shape  # 50 frames per second  # doctest: +SKIP
        (150, 768)
    """

    name: ClassVar[str] = "hf"
    version: ClassVar[str] = "1"
    Config: ClassVar[type[HFAudioConfig]] = HFAudioConfig
    #: Model types a preset accepts (``None``: every supported type).
    families: ClassVar[frozenset[str] | None] = None

    config: HFAudioConfig

    def __init__(self, config: HFAudioConfig | dict[str, Any] | None = None, **params: Any) -> None:
        base = config.model_dump(exclude_unset=True) if isinstance(config, EmbedderConfig) else dict(config or {})
        base.update(params)
        try:
            self.config = self.Config(**base)
        except ValidationError as err:
            raise ConfigError(f"invalid {self.name} configuration: {err}") from err
        self._fingerprint: dict[str, Any] | None = None
        self._load()

    # ------------------------------------------------------------------ loading
    @property
    def offline(self) -> bool:
        """Whether loading may not use the network (``local_files_only`` or ``HF_HUB_OFFLINE``)."""
        env = os.environ.get("HF_HUB_OFFLINE", "").strip().upper()
        return self.config.local_files_only or env in _OFFLINE_VALUES

    def _what(self) -> str:
        c = self.config
        return (
            f"Hugging Face model {c.model!r} (revision={c.revision or 'default'}, local_files_only={self.offline}, "
            f"cache_dir={c.cache_dir or 'default'})"
        )

    def _resolve(self) -> tuple[str, dict[str, Any]]:
        """Where to load from, and the keyword arguments for ``from_pretrained``.

        A local directory is used as it is. Offline, a Hub id is looked up in the cache by path (no Hub client
        call at all: huggingface_hub may contact the Hub even with ``local_files_only``) and its snapshot
        directory is loaded. Online, transformers resolves and downloads the id.
        """
        c = self.config
        path = Path(c.model).expanduser()
        if path.is_dir():
            return str(path), {"local_files_only": True}
        if path.is_absolute() or c.model.startswith((".", "~")) or c.model.count("/") > 1 or path.exists():
            raise ModelLoadError(f"cannot load {self._what()}: {c.model!r} is not a model directory")
        if not self.offline:
            kw: dict[str, Any] = {}
            if c.revision is not None:
                kw["revision"] = c.revision
            if c.cache_dir is not None:
                kw["cache_dir"] = c.cache_dir
            return c.model, kw
        try:
            from huggingface_hub import try_to_load_from_cache

            hit = try_to_load_from_cache(c.model, "config.json", cache_dir=c.cache_dir, revision=c.revision)
        except Exception as err:  # e.g. an invalid repo id
            raise ModelLoadError(f"cannot load {self._what()}: {type(err).__name__}: {err}") from err
        if not isinstance(hit, str):
            raise ModelLoadError(
                f"cannot load {self._what()}: it is not in the Hugging Face cache and the network may not be used; "
                f"download it once (huggingface-cli download {c.model}) or pass a local directory"
            )
        return str(Path(hit).parent), {"local_files_only": True}

    def _load(self) -> None:
        feature = f"{type(self).__name__}"
        torch = require("torch", "transformers", feature)
        transformers = require("transformers", "transformers", feature)
        self._torch = torch
        c = self.config
        self.device = _resolve_device(torch, c.device)
        dtype = getattr(torch, c.dtype)
        where, kw = self._resolve()
        self._where, self._kw = where, kw
        try:
            hf_config = transformers.AutoConfig.from_pretrained(where, **kw)
        except Exception as err:
            raise ModelLoadError(f"cannot load the config of {self._what()}: {type(err).__name__}: {err}") from err
        model_type = str(getattr(hf_config, "model_type", ""))
        if model_type not in SUPPORTED_MODEL_TYPES:
            raise ModelLoadError(
                f"{self._what()} has model_type {model_type!r}, which is not an audio encoder audiovec supports "
                f"(supported: {', '.join(sorted(SUPPORTED_MODEL_TYPES))})"
            )
        if self.families is not None and model_type not in self.families:
            raise ConfigError(
                f"the {self.name!r} embedder expects a {'/'.join(sorted(self.families))} checkpoint, but {c.model!r} "
                f"is {model_type!r}; use get_embedder('hf', model=...) for other architectures"
            )
        try:
            with warnings.catch_warnings():
                # AST's 128 Kaldi mel bands include empty ones at a 512-point FFT; transformers warns on every load
                warnings.filterwarnings("ignore", message="At least one mel filter has all zero values")
                fe = transformers.AutoFeatureExtractor.from_pretrained(where, **kw)
            model = transformers.AutoModel.from_pretrained(where, config=hf_config, **kw)
        except Exception as err:
            raise ModelLoadError(f"cannot load {self._what()}: {type(err).__name__}: {err}") from err
        if model_type == "whisper":
            model = model.get_encoder()
        model = model.to(device=self.device, dtype=dtype).eval()
        backend_cls: type[Any]
        if model_type in _CNN_TYPES:
            backend_cls = _CNNBackend
        elif model_type == "whisper":
            backend_cls = _WhisperBackend
        elif model_type == "clap":
            backend_cls = _CLAPBackend
        else:
            backend_cls = _ASTBackend
        self.model_type = model_type
        self._hf_config = hf_config
        self._backend: _Backend = backend_cls(torch, model, fe, self.device, dtype, hf_config, c)
        self._transformers = transformers
        log.info("loaded %s (%s) on %s", c.model, model_type, self.device)

    # ------------------------------------------------------------------ protocol attributes
    @property
    def sample_rate(self) -> int:
        """Sample rate the model works at (the feature extractor's ``sampling_rate``)."""
        return self._backend.sample_rate

    @property
    def dim(self) -> int:
        """Dimension of every vector."""
        return self._backend.dim

    @property
    def window_s(self) -> float:
        """Length of one frame in seconds: the CNN receptive field (25 ms), a Whisper token (20 ms), or the window."""
        return self._backend.geometry.span / self.sample_rate

    @property
    def hop_s(self) -> float:
        """Step between frames in seconds (20 ms for token outputs, the window length for pooled outputs)."""
        return self._backend.geometry.hop / self.sample_rate

    @property
    def context_s(self) -> float:
        """Seconds of audio in one independent model window."""
        return self._backend.geometry.step / self.sample_rate

    @property
    def output(self) -> Literal["frames", "pooled"]:
        """``"frames"`` (one vector per token) or ``"pooled"`` (one vector per context window)."""
        return "pooled" if self.model_type in ("audio-spectrogram-transformer", "clap") else "frames"

    def spec(self) -> EmbedderSpec:
        """Name, version, checkpoint identity (commit and weight-file hashes) and output-relevant parameters.

        ``device``, ``batch_size``, ``cache_dir`` and ``local_files_only`` do not change the output and are left out;
        a local directory is named by its last path component, so the same weights give the same key everywhere.
        Weight files are hashed (SHA-256) on the first call; files in the Hugging Face cache are named by their
        hash already and are not read.
        """
        c = self.config
        if self._fingerprint is None:
            self._fingerprint = _fingerprint(self._where, c, self._hf_config)
        g = self._backend.geometry
        params = {
            # a local directory is named by its last component, so that the key does not depend on the machine
            "model": Path(self._where).name if Path(c.model).expanduser().is_dir() else c.model,
            "revision": c.revision,
            "model_type": self.model_type,
            "layer": c.layer,
            "dtype": c.dtype,
            "window_samples": g.step,
            "sample_rate": self.sample_rate,
            **self._fingerprint,
        }
        return EmbedderSpec(name=self.name, version=self.version, params=params)

    def __repr__(self) -> str:
        c = self.config
        return (
            f"{type(self).__name__}(model={c.model!r}, layer={c.layer!r}, context_s={self.context_s:g}, "
            f"device={self.device!r}, dtype={c.dtype!r})"
        )

    # ------------------------------------------------------------------ embedding
    def embed(self, audio: Audio) -> FrameEmbeddings:
        """Embed one input of any sample rate and channel count.

        Raises:
            EmptyAudioError: The audio has no samples.
            NonFiniteAudioError: The audio contains NaN or Inf.
            EmbeddingError: The model failed.
        """
        return self.embed_batch([audio])[0]

    def embed_batch(self, audios: Sequence[Audio]) -> list[FrameEmbeddings]:
        """Embed several inputs; windows of all inputs are batched together, ``batch_size`` per model call.

        The result equals one-by-one :meth:`embed` calls (see the module notes on padding and masks). Full
        windows are run as soon as ``batch_size`` of them are ready; for models that only batch equal lengths,
        the last (partial) windows of the inputs are kept and run together at the end.

        Raises:
            EmptyAudioError: An input has no samples.
            NonFiniteAudioError: An input contains NaN or Inf.
            EmbeddingError: The model failed.
        """
        geo = self._backend.geometry
        full_len = len(geo.window(np.zeros(geo.step, np.float32)).samples)
        vectors: dict[int, NDArray[np.float32]] = {}
        ready: list[tuple[int, _Window]] = []
        held: list[tuple[int, _Window]] = []

        def flush(items: list[tuple[int, _Window]]) -> None:
            vectors.update(zip((i for i, _ in items), self._run([w for _, w in items]), strict=True))

        def windows(x: NDArray[np.float32]) -> Iterator[_Window]:
            windower = _Windower(geo)
            yield from windower.feed(x)
            yield from windower.finish()

        plans = []
        count = 0
        for audio in audios:
            x = self._prepare(audio)
            first = count
            for w in windows(x):  # lazily: a long input is never copied whole
                (held if self._backend.equal_lengths and len(w.samples) != full_len else ready).append((count, w))
                count += 1
                if len(ready) >= self.config.batch_size:
                    flush(ready)
                    ready = []
            plans.append((audio.source, len(x), first, count - first))
        flush(ready + held)
        return [
            self._result([vectors[i] for i in range(first, first + n_win)], n, source)
            for source, n, first, n_win in plans
        ]

    def embed_stream(self, blocks: Iterable[Audio], source: str | None = None) -> FrameEmbeddings:
        """Embed consecutive audio blocks with bounded memory (at most ``batch_size`` windows plus one block).

        Blocks may have any sample rate and channel count (the same for all); they are mixed down and resampled
        by one continuous resampler, so the result matches :meth:`embed` on the whole signal.

        Args:
            blocks: Consecutive :class:`Audio` blocks, e.g. from :func:`audiovec.audio.stream`.
            source: Name for the result; defaults to the first block's source.

        Raises:
            EmptyAudioError: The stream has no samples.
            NonFiniteAudioError: A block contains NaN or Inf.
            ConfigError: The blocks change sample rate.
        """
        windower = _Windower(self._backend.geometry)
        pending: list[_Window] = []
        parts: list[NDArray[np.float32]] = []
        for block in resample_blocks(blocks, self.sample_rate):
            if source is None:
                source = block.source
            pending.extend(windower.feed(block.samples))
            if len(pending) >= self.config.batch_size:
                parts.extend(self._run(pending))
                pending = []
        try:
            pending.extend(windower.finish())
        except EmptyAudioError as err:
            raise EmptyAudioError("stream yielded no samples", source) from err
        parts.extend(self._run(pending))
        return self._result(parts, windower.total, source)

    def embed_file(self, source: AudioSource, block_s: float = 60.0) -> FrameEmbeddings:
        """Embed a file of any length by streaming it in blocks of ``block_s`` seconds (bounded memory)."""
        return self.embed_stream(stream(source, block_s, sr=self.sample_rate))

    # ------------------------------------------------------------------ internals
    def _prepare(self, audio: Audio) -> NDArray[np.float32]:
        if audio.num_samples == 0:
            raise EmptyAudioError("audio has zero samples", audio.source)
        if not _finite(audio.samples):
            raise NonFiniteAudioError("audio contains NaN or infinite samples", audio.source)
        return audio.prepared(self.sample_rate).samples

    def _batches(self, windows: list[_Window]) -> list[list[int]]:
        """Indices of ``windows`` grouped into model calls of at most ``batch_size``."""
        size = self.config.batch_size
        if self._backend.equal_lengths:
            groups: dict[int, list[int]] = {}
            for i, w in enumerate(windows):
                groups.setdefault(len(w.samples), []).append(i)
            ordered = [idx for _, idx in sorted(groups.items(), reverse=True)]
        else:  # similar lengths together: less padding
            ordered = [sorted(range(len(windows)), key=lambda i: -len(windows[i].samples))]
        return [idx[i : i + size] for idx in ordered for i in range(0, len(idx), size)]

    def _run(self, windows: list[_Window]) -> list[NDArray[np.float32]]:
        out: list[NDArray[np.float32] | None] = [None] * len(windows)
        torch = self._torch
        for idx in self._batches(windows):
            frames = [windows[i].frames for i in idx]
            try:
                with torch.inference_mode():
                    vectors = self._backend.run([windows[i].samples for i in idx], frames)
            except (EmbeddingError, MemoryError):
                raise
            except Exception as err:
                raise EmbeddingError(
                    f"{self.name} ({self.config.model}) failed while embedding: {type(err).__name__}: {err}"
                ) from err
            for i, n, v in zip(idx, frames, vectors, strict=False):
                if v.shape != (n, self.dim):
                    raise EmbeddingError(
                        f"{self.name} produced shape {v.shape} for {n} frames of dim {self.dim} (implementation bug)"
                    )
                out[i] = v
        if any(v is None for v in out):
            raise EmbeddingError(f"{self.name}: the model returned fewer frames than expected (implementation bug)")
        return [v for v in out if v is not None]

    def _result(self, parts: list[NDArray[np.float32]], n: int, source: str | None) -> FrameEmbeddings:
        vectors = np.concatenate(parts, axis=0) if parts else np.zeros((0, self.dim), np.float32)
        g = self._backend.geometry
        if len(vectors) != g.count(n):
            raise EmbeddingError(f"{self.name}: {len(vectors)} vectors for {g.count(n)} frames (implementation bug)")
        return FrameEmbeddings(
            vectors=vectors,
            timestamps=g.timestamps(n) / self.sample_rate,
            duration=n / self.sample_rate,
            window_s=self.window_s,
            hop_s=self.hop_s,
            source=source,
            model=self.name,
        )


# --------------------------------------------------------------------------------------------------- presets
class Wav2Vec2Embedder(HFAudioEmbedder):
    """Wav2Vec2 token embeddings (default ``facebook/wav2vec2-base``: 768-d, 50 per second, 10 s windows).

    ``layer="extract_features"`` gives the 512-d CNN features used by the seed project that concatenated 64 of
    them per file.

    Example:
        >>> from audiovec import get_embedder
        >>> emb = get_embedder("wav2vec2", layer="extract_features")  # doctest: +SKIP
        >>> emb.dim, emb.hop_s  # doctest: +SKIP
        (512, 0.02)
    """

    name: ClassVar[str] = "wav2vec2"
    Config: ClassVar[type[HFAudioConfig]] = Wav2Vec2EmbedderConfig
    families: ClassVar[frozenset[str] | None] = frozenset({"wav2vec2", "wav2vec2-conformer"})


class HuBERTEmbedder(HFAudioEmbedder):
    """HuBERT token embeddings (default ``facebook/hubert-base-ls960``: 768-d, 50 per second, 10 s windows)."""

    name: ClassVar[str] = "hubert"
    Config: ClassVar[type[HFAudioConfig]] = HuBERTEmbedderConfig
    families: ClassVar[frozenset[str] | None] = frozenset({"hubert"})


class WhisperEmbedder(HFAudioEmbedder):
    """Whisper encoder token embeddings (default ``openai/whisper-base``: 512-d, 50 per second, 30 s windows).

    Whisper's encoder always reads 30 s; a shorter window (``context_s``, or the end of a file) is zero-padded to
    30 s and only the tokens over real audio are returned. Every window costs a full 30 s encoder pass, so short
    ``context_s`` values are slower per second of audio.
    """

    name: ClassVar[str] = "whisper"
    Config: ClassVar[type[HFAudioConfig]] = WhisperEmbedderConfig
    families: ClassVar[frozenset[str] | None] = frozenset({"whisper"})


class ASTEmbedder(HFAudioEmbedder):
    """Audio Spectrogram Transformer: one 768-d vector per 10.24 s window.

    Default checkpoint ``MIT/ast-finetuned-audioset-10-10-0.4593``.
    """

    name: ClassVar[str] = "ast"
    Config: ClassVar[type[HFAudioConfig]] = ASTEmbedderConfig
    families: ClassVar[frozenset[str] | None] = frozenset({"audio-spectrogram-transformer"})


class CLAPEmbedder(HFAudioEmbedder):
    """CLAP audio embeddings (one unit vector per 10 s window) and text embeddings in the same space.

    Default checkpoint ``laion/clap-htsat-unfused`` (512-d). Audio and text vectors are L2-normalised, so their
    inner product is the cosine similarity CLAP was trained with: search audio by text with
    ``store.search(emb.embed_text(["a dog barking"]))``.

    Example:
        >>> from audiovec import get_embedder, load
        >>> clap = get_embedder("clap")  # doctest: +SKIP
        >>> audio_vecs = clap.embed(load("dog.ogg")).vectors  # doctest: +SKIP
        >>> scores = audio_vecs @ clap.embed_text(["a dog barking", "a piano"]).T  # doctest: +SKIP
    """

    name: ClassVar[str] = "clap"
    Config: ClassVar[type[HFAudioConfig]] = CLAPEmbedderConfig
    families: ClassVar[frozenset[str] | None] = frozenset({"clap"})

    def _load(self) -> None:
        super()._load()
        try:
            self._tokenizer = self._transformers.AutoTokenizer.from_pretrained(self._where, **self._kw)
        except Exception as err:
            raise ModelLoadError(f"cannot load the tokenizer of {self._what()}: {type(err).__name__}: {err}") from err
        text_cfg = self._hf_config.text_config
        limit = int(getattr(self._tokenizer, "model_max_length", 0) or 0)
        positions = int(text_cfg.max_position_embeddings) - 2  # RoBERTa-style positions start after the pad id
        self._max_tokens = positions if limit <= 0 or limit > positions else limit

    def embed_text(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Embed texts into the audio embedding space.

        Texts longer than the text tower's maximum are truncated. Batched ``batch_size`` at a time, padded with
        an attention mask (a batch gives the same vectors as one text at a time).

        Args:
            texts: The queries (``["a dog barking", "rain on a roof"]``).

        Returns:
            ``float32[len(texts), dim]``, unit-length rows.

        Raises:
            ConfigError: ``texts`` is a single string or holds something that is not a string.
            EmbeddingError: The model failed.
        """
        if isinstance(texts, str):
            raise ConfigError("embed_text expects a list of strings, not one string (wrap it: [text])")
        items = list(texts)
        for t in items:
            if not isinstance(t, str):
                raise ConfigError(f"embed_text expects strings, got {type(t).__name__}")
        if not items:
            return np.zeros((0, self.dim), dtype=np.float32)
        torch = self._torch
        model = self._backend.model
        out: list[NDArray[np.float32]] = []
        size = self.config.batch_size
        try:
            for i in range(0, len(items), size):
                tok = self._tokenizer(
                    items[i : i + size],
                    padding=True,
                    truncation=True,
                    max_length=self._max_tokens,
                    return_tensors="pt",
                )
                with torch.inference_mode():
                    res = model.get_text_features(
                        input_ids=tok["input_ids"].to(self.device), attention_mask=tok["attention_mask"].to(self.device)
                    )
                    vec = torch.nn.functional.normalize(_pooled(torch, res).float(), dim=-1)
                out.append(self._backend._numpy(vec))
        except Exception as err:
            raise EmbeddingError(f"clap ({self.config.model}) failed while embedding text: {err}") from err
        return np.concatenate(out, axis=0)


# --------------------------------------------------------------------------------------------------- helpers
def _pooled(torch: Any, out: Any) -> Any:
    """CLAP's ``get_*_features``: a tensor (transformers 4) or an output whose ``pooler_output`` it is (5)."""
    return out if isinstance(out, torch.Tensor) else out.pooler_output


def _finite(x: NDArray[np.float32]) -> bool:
    """Whether every sample is finite, without a temporary as large as ``x`` (a float64 sum carries NaN/Inf)."""
    return bool(np.isfinite(x.sum(dtype=np.float64)))


def _resolve_device(torch: Any, device: str) -> str:
    cuda = bool(torch.cuda.is_available())
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    if device == "auto":
        return "cuda" if cuda else "mps" if mps else "cpu"
    if device.startswith("cuda"):
        if not cuda:
            raise ConfigError(f"device={device!r} was requested but torch sees no CUDA device")
        index = int(device.split(":")[1]) if ":" in device else 0
        if index >= int(torch.cuda.device_count()):
            raise ConfigError(f"device={device!r}: torch sees only {torch.cuda.device_count()} CUDA device(s)")
    if device == "mps" and not mps:
        raise ConfigError("device='mps' was requested but torch's MPS backend is not available")
    return device


def _fingerprint(where: str, c: HFAudioConfig, hf_config: Any) -> dict[str, Any]:
    """Commit (Hub models) and a SHA-256 digest over the weight files' names and contents.

    ``where`` is the directory the model was loaded from, or a Hub id that transformers downloaded; then the
    snapshot directory is found in the cache. Files in the Hugging Face cache are links to blobs named by their
    SHA-256 (for weights, which are Git LFS files), so they are not read again.
    """
    root = Path(where)
    commit = getattr(hf_config, "_commit_hash", None)
    if not root.is_dir():
        try:
            from huggingface_hub import try_to_load_from_cache

            hit = try_to_load_from_cache(where, "config.json", cache_dir=c.cache_dir, revision=c.revision)
        except Exception:  # pragma: no cover - the model was loaded from there a moment ago
            hit = None
        if not isinstance(hit, str):
            return {"commit": commit, "weights_sha256": None}
        root = Path(hit).parent
    if root.parent.name == "snapshots" and re.fullmatch(r"[0-9a-f]{40}", root.name):
        commit = commit or root.name
    files: list[Path] = []
    for pattern in ("*.safetensors", "pytorch_model*.bin"):
        files = sorted(root.glob(pattern))
        if files:
            break
    digests = []
    for path in files:
        real = Path(os.path.realpath(path))
        blob = real.name if re.fullmatch(r"[0-9a-f]{64}", real.name) else _sha256(real)
        digests.append(f"{path.name}:{blob}")
    weights = hashlib.sha256("\n".join(digests).encode()).hexdigest()[:16] if digests else None
    return {"commit": commit, "weights_sha256": weights}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()

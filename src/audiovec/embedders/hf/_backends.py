"""The model families behind :class:`~audiovec.embedders.hf.HFAudioEmbedder`: batches of windows in, vectors out.

A backend holds a loaded model and its feature extractor, knows its output's rate, dimension and :class:`Framing`
(see :mod:`audiovec.embedders.framing`), and checks that the checkpoint and its feature extractor fit together.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from audiovec.embedders.framing import Framing
from audiovec.embedders.hf.config import HFAudioConfig
from audiovec.errors import ConfigError, EmbeddingError, ModelLoadError

__all__ = ["SUPPORTED_MODEL_TYPES", "Backend", "backend_class", "pooled"]

#: Model types (``config.json``'s ``model_type``) with a raw-waveform CNN front end and token outputs.
_CNN_TYPES = frozenset(
    {"wav2vec2", "wav2vec2-conformer", "hubert", "wavlm", "data2vec-audio", "unispeech", "unispeech-sat"}
)
#: Every ``model_type`` that :class:`HFAudioEmbedder` can load.
SUPPORTED_MODEL_TYPES: frozenset[str] = _CNN_TYPES | {"whisper", "audio-spectrogram-transformer", "clap"}
_DEFAULT_CNN_CONTEXT_S = 10.0


class Backend:
    """A loaded model and its feature extractor: turns a batch of windows into frame vectors."""

    sample_rate: int
    dim: int
    framing: Framing
    #: Only windows of equal length may share a batch (no attention mask, statistics over the whole input).
    equal_lengths: bool = False

    def __init__(self, torch: Any, model: Any, fe: Any, device: str, dtype: Any, cfg: Any, hp: HFAudioConfig) -> None:
        """Wrap a loaded ``model`` and feature extractor ``fe``; ``cfg`` is its transformers config."""
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


class _CNNBackend(Backend):
    """Wav2Vec2, HuBERT, WavLM, Data2Vec-Audio, UniSpeech(-SAT): raw waveform → CNN → transformer tokens."""

    def __init__(self, torch: Any, model: Any, fe: Any, device: str, dtype: Any, cfg: Any, hp: HFAudioConfig) -> None:
        super().__init__(torch, model, fe, device, dtype, cfg, hp)
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
        self.framing = Framing(hop, span, per_window, isolated=True)
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


class _WhisperBackend(Backend):
    """Whisper's encoder: log-mel of a window zero-padded to 30 s → 1500 tokens; keep those with real audio."""

    def __init__(self, torch: Any, model: Any, fe: Any, device: str, dtype: Any, cfg: Any, hp: HFAudioConfig) -> None:
        super().__init__(torch, model, fe, device, dtype, cfg, hp)
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
        self.framing = Framing(hop, hop, per_window, isolated=True, complete=False)
        self.layer = hp.layer
        _check_layer(hp.layer, int(cfg.encoder_layers), "whisper", allow_extract=False)
        self.dim = int(cfg.d_model)

    def run(self, batch: list[NDArray[np.float32]], frames: list[int]) -> list[NDArray[np.float32]]:
        feats = self.fe(batch, sampling_rate=self.sample_rate, padding="max_length", return_tensors="np")
        out = self.model(self._tensor(feats["input_features"]), output_hidden_states=isinstance(self.layer, int))
        hidden = out.last_hidden_state if self.layer == "last" else out.hidden_states[self.layer]
        arr = self._numpy(hidden)
        return [arr[i, :n] for i, n in enumerate(frames)]


class _ASTBackend(Backend):
    """Audio Spectrogram Transformer: 128-band fbank of a window padded to 1024 frames → one pooled vector."""

    def __init__(self, torch: Any, model: Any, fe: Any, device: str, dtype: Any, cfg: Any, hp: HFAudioConfig) -> None:
        super().__init__(torch, model, fe, device, dtype, cfg, hp)
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
        self.framing = Framing(window, window, 1, isolated=True, complete=False)
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


class _CLAPBackend(Backend):
    """CLAP's HTSAT audio tower and projection: one unit vector per window of at most 10 s."""

    def __init__(self, torch: Any, model: Any, fe: Any, device: str, dtype: Any, cfg: Any, hp: HFAudioConfig) -> None:
        super().__init__(torch, model, fe, device, dtype, cfg, hp)
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
        self.framing = Framing(window, window, 1, isolated=True, complete=False)
        self.dim = int(cfg.projection_dim)

    def run(self, batch: list[NDArray[np.float32]], frames: list[int]) -> list[NDArray[np.float32]]:
        state = np.random.get_state()  # noqa: NPY002 - the feature extractor draws from the global generator
        try:
            feats = self.fe(batch, sampling_rate=self.sample_rate, return_tensors="np")
        finally:
            np.random.set_state(state)  # noqa: NPY002
        longer = self.torch.zeros((len(batch), 1), dtype=self.torch.bool, device=self.device)
        out = self.model.get_audio_features(input_features=self._tensor(feats["input_features"]), is_longer=longer)
        vec = self.torch.nn.functional.normalize(pooled(self.torch, out).float(), dim=-1)
        arr = self._numpy(vec)
        return [arr[i : i + 1] for i in range(len(batch))]


def backend_class(model_type: str) -> type[Backend]:
    """The backend for a supported ``model_type``."""
    if model_type in _CNN_TYPES:
        return _CNNBackend
    return {"whisper": _WhisperBackend, "clap": _CLAPBackend}.get(model_type, _ASTBackend)


def pooled(torch: Any, out: Any) -> Any:
    """CLAP's ``get_*_features``: a tensor (transformers 4) or an output whose ``pooler_output`` it is (5)."""
    return out if isinstance(out, torch.Tensor) else out.pooler_output

"""Speaker embedders: Resemblyzer (GE2E, 256-d) and ECAPA-TDNN (SpeechBrain checkpoints, 192-d).

Both turn speech into vectors whose cosine similarity says "same speaker". They follow the framing rules of
:class:`~audiovec.embedders.base.FramedEmbedder`: each frame is one fixed window of audio, embedded from its own
samples only, so chunked, streamed, batched and one-shot embedding agree. An utterance vector is the pipeline
``Pipeline.parse("mean+l2")`` over the frames.

* :class:`ResemblyzerEmbedder`: the pretrained GE2E voice encoder that ships inside the ``resemblyzer`` wheel
  (3-layer LSTM over 40-band mel frames at 16 kHz). One frame is one of Resemblyzer's 1.6 s *partial utterances*;
  its vector is the L2-normalised partial embedding. Mean + L2 over the frames is what
  ``VoiceEncoder.embed_utterance`` computes (the test suite checks it on real speech).
  Resemblyzer's ``preprocess_wav`` (volume normalisation to -30 dBFS and webrtcvad silence trimming) looks at the
  whole utterance, so it is **not** applied inside the embedder; call :func:`resemblyzer_preprocess` on a whole
  utterance first when you want it.
* :class:`ECAPAEmbedder`: ECAPA-TDNN models in SpeechBrain's format (``hyperparams.yaml`` +
  ``embedding_model.ckpt``; default ``speechbrain/spkrec-ecapa-voxceleb``), loaded from a local directory or the
  Hugging Face Hub and run by a pure-PyTorch re-implementation of SpeechBrain's inference path (Fbank features,
  sentence mean normalisation, ``ECAPA_TDNN``), which gives the output of ``EncoderClassifier.encode_batch``
  without importing ``speechbrain`` or ``torchaudio``. One frame is a fixed window (3 s, hop 1 s by default).

Heavy imports (``torch``, ``resemblyzer``, ``huggingface_hub``, ``yaml``) happen in the constructors only.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import re
import time
import warnings
from abc import abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import librosa
import numpy as np
import scipy.signal
from numpy.typing import NDArray
from pydantic import Field, model_validator

from audiovec._optional import require
from audiovec.audio import Audio
from audiovec.embedders.base import EmbedderConfig, EmbedderSpec, FramedEmbedder
from audiovec.errors import ConfigError, EmptyAudioError, ModelLoadError

__all__ = [
    "ECAPAConfig",
    "ECAPAEmbedder",
    "ResemblyzerConfig",
    "ResemblyzerEmbedder",
    "resemblyzer_preprocess",
]

logger = logging.getLogger(__name__)

_DEVICE_RE = re.compile(r"^(auto|cpu|mps|(cuda|xpu)(:\d+)?)$")
# Config fields that change where or how fast the model runs, not what it outputs (left out of spec()).
_RUNTIME_FIELDS = ("chunk_s", "device", "batch_size", "num_threads")


# ================================================================================================ shared
class _TorchConfig(EmbedderConfig):
    """Fields shared by the PyTorch speaker embedders.

    Attributes:
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``, ``"xpu"`` or ``"auto"`` (CUDA when available).
        batch_size: Frames per forward pass; bounds memory, does not change the output.
        num_threads: PyTorch intra-op threads used during each forward pass (a process-wide torch setting,
            restored afterwards); ``None`` keeps the process setting. On a small or busy machine, 1 is often
            fastest.
    """

    device: str = Field("cpu", description="torch device: cpu, cuda[:N], mps, xpu[:N] or auto")
    batch_size: int = Field(32, ge=1, le=4096, description="frames per forward pass")
    num_threads: int | None = Field(None, ge=1, le=1024, description="torch threads during forward passes")

    @model_validator(mode="after")
    def _check_device(self) -> _TorchConfig:
        if not _DEVICE_RE.match(self.device):
            raise ValueError(f"device must be cpu, cuda[:N], mps, xpu[:N] or auto, got {self.device!r}")
        return self


def _resolve_device(torch: Any, name: str, feature: str) -> Any:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError(f"{feature}: device {name!r} requested but this torch build has no usable CUDA device")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ModelLoadError(f"{feature}: device 'mps' requested but MPS is not available")
    return device


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _window_view(samples: NDArray[np.float32], length: int, hop: int) -> NDArray[np.float32]:
    """``[n, length]`` view of the frames of ``samples`` (which cover exactly ``n`` whole frames)."""
    view: NDArray[np.float32] = np.lib.stride_tricks.sliding_window_view(samples, length)[::hop]
    return view


class _TorchEmbedder(FramedEmbedder):
    """Common machinery: torch import, device, thread scoping, batched forward passes over frames."""

    config: _TorchConfig
    _torch: Any
    _device: Any

    def _init_torch(self, feature: str) -> None:
        self._torch = require("torch", "speaker", feature)
        self._device = _resolve_device(self._torch, self.config.device, feature)

    @contextlib.contextmanager
    def _threads(self) -> Iterator[None]:
        n = self.config.num_threads
        torch = self._torch
        old = torch.get_num_threads()
        if n is None or n == old:
            yield
            return
        torch.set_num_threads(n)
        try:
            yield
        finally:
            torch.set_num_threads(old)

    def _embed_frames(self, samples: NDArray[np.float32]) -> NDArray[np.float32]:
        return self._embed_frames_batch([samples])[0]

    def _embed_frames_batch(self, chunks: Sequence[NDArray[np.float32]]) -> list[NDArray[np.float32]]:
        frames = [_window_view(c, self.frame_length, self.hop_length) for c in chunks]
        counts = [len(f) for f in frames]
        flat = [row for f in frames for row in f]
        out = self._embed_windows(flat)
        splits = np.cumsum(counts)[:-1]
        return [np.ascontiguousarray(part) for part in np.split(out, splits)]

    @abstractmethod
    def _embed_windows(self, windows: list[NDArray[np.float32]]) -> NDArray[np.float32]:
        """Embed equal-length windows (``frame_length`` samples each): ``float32[len(windows), dim]``."""

    def spec(self) -> EmbedderSpec:
        """Name, implementation version, output-relevant configuration and the identity of the weights."""
        params = self.config.model_dump(mode="json")
        for key in _RUNTIME_FIELDS:
            params.pop(key, None)
        params.update(self._weights_identity())
        return EmbedderSpec(name=self.name, version=self.version, params=params)

    def _weights_identity(self) -> dict[str, Any]:
        return {}


# ================================================================================================ Resemblyzer
_RZ_SR = 16000  # resemblyzer.hparams.sampling_rate
_RZ_N_FFT = 400  # 25 ms window (mel_window_length)
_RZ_HOP = 160  # 10 ms step (mel_window_step)
_RZ_N_MELS = 40  # mel_n_channels
_RZ_PARTIAL_FRAMES = 160  # partials_n_frames: 1.6 s
_RZ_FRAME = _RZ_PARTIAL_FRAMES * _RZ_HOP  # 25600 samples
_RZ_DIM = 256  # model_embedding_size


@contextlib.contextmanager
def _quiet_resemblyzer_import() -> Iterator[None]:
    """Silence the import-time deprecation warnings of resemblyzer's own dependencies.

    ``webrtcvad`` imports ``pkg_resources`` and ``resemblyzer.audio`` imports ``scipy.ndimage.morphology``; both
    warn on import, which is not something users of audiovec can act on.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*pkg_resources is deprecated", category=UserWarning)
        warnings.filterwarnings("ignore", message=r".*scipy\.ndimage\.morphology", category=DeprecationWarning)
        yield


class ResemblyzerConfig(_TorchConfig):
    """Configuration of :class:`ResemblyzerEmbedder`.

    Attributes:
        hop_s: Step between 1.6 s partial windows, in seconds (Resemblyzer's own default rate of 1.3 partials per
            second is ``hop_s=0.77``).
        weights_path: A GE2E checkpoint in Resemblyzer's format (``{"model_state": ...}``); ``None`` uses the
            ``pretrained.pt`` shipped inside the ``resemblyzer`` package (no download).
    """

    hop_s: float = Field(0.8, gt=0, le=_RZ_FRAME / _RZ_SR, description="step between 1.6 s windows (s)")
    weights_path: str | None = Field(None, description="checkpoint path; None: the packaged pretrained.pt")


class ResemblyzerEmbedder(_TorchEmbedder):
    """Resemblyzer's pretrained GE2E speaker encoder: one L2-normalised 256-d vector per 1.6 s window.

    Frames are Resemblyzer's partial utterances: 1.6 s windows (160 mel frames of 25 ms, step 10 ms, 40 bands at
    16 kHz) every ``hop_s`` seconds; input shorter than 1.6 s is zero-padded, as Resemblyzer does. The mel
    spectrogram of a window is computed from that window's samples alone (zero-padded by half an FFT window at
    both edges, like librosa's centred STFT), so frames are independent and long files stream with bounded memory.
    ``Pipeline.parse("mean+l2")`` over the frames reproduces ``VoiceEncoder.embed_utterance`` (cosine > 0.999 on
    real speech with ``hop_s=0.77``, Resemblyzer's default rate; the edge mel frames of each window differ).

    No volume normalisation or silence trimming is applied (they depend on the whole utterance); use
    :func:`resemblyzer_preprocess` first for Resemblyzer's ``preprocess_wav`` behaviour.

    Args:
        config: A :class:`ResemblyzerConfig`, a dict of its fields, or ``None``.
        **params: Config fields as keyword arguments.

    Raises:
        ConfigError: Invalid parameters.
        MissingDependencyError: ``resemblyzer`` or ``torch`` is not installed (``pip install 'audiovec[speaker]'``).
        ModelLoadError: The weights file is missing, unreadable or not a Resemblyzer checkpoint, or the device is
            unavailable.

    Example:
        >>> from audiovec import Pipeline, get_embedder, load
        >>> emb = get_embedder("resemblyzer")  # doctest: +SKIP
        >>> voice = Pipeline.parse("mean+l2")(emb.embed(load("speech.flac"))).vectors[0]  # doctest: +SKIP
        >>> voice.shape  # doctest: +SKIP
        (256,)
    """

    name: ClassVar[str] = "resemblyzer"
    version: ClassVar[str] = "1"
    Config = ResemblyzerConfig
    config: ResemblyzerConfig

    def __init__(self, config: ResemblyzerConfig | dict[str, Any] | None = None, **params: Any) -> None:
        super().__init__(config, **params)
        c = self.config
        self._init_torch("ResemblyzerEmbedder")
        with _quiet_resemblyzer_import():
            ve = require("resemblyzer.voice_encoder", "speaker", "ResemblyzerEmbedder", package="resemblyzer")
        packaged = Path(str(ve.__file__)).resolve().parent / "pretrained.pt"
        weights = Path(c.weights_path).expanduser() if c.weights_path else packaged
        if not weights.is_file():
            raise ModelLoadError(f"Resemblyzer weights not found: {weights} (tried weights_path={c.weights_path!r})")
        t0 = time.perf_counter()
        try:
            checkpoint = self._torch.load(weights, map_location="cpu", weights_only=True)
            state = checkpoint["model_state"] if isinstance(checkpoint, dict) else None
            if not isinstance(state, dict):
                raise ValueError("not a Resemblyzer checkpoint (no 'model_state' dict)")
            encoder = ve.VoiceEncoder(device="cpu", verbose=False, weights_fpath=weights)
            expected = {k: tuple(v.shape) for k, v in encoder.state_dict().items()}
            found = {k: tuple(v.shape) for k, v in state.items() if k in expected}
            if found != expected:
                missing = sorted(set(expected) - set(found))
                wrong = sorted(k for k in found if found[k] != expected[k])
                raise ValueError(f"checkpoint does not fit the GE2E encoder (missing {missing}, wrong shape {wrong})")
            encoder.to(self._device)
            encoder.eval()
        except Exception as err:
            raise ModelLoadError(f"cannot load the Resemblyzer voice encoder from {weights}: {err}") from err
        self._encoder: Any = encoder
        self._weights = weights
        self._weights_name = "resemblyzer/pretrained.pt" if weights == packaged else weights.name
        self._weights_sha256 = _sha256(weights)
        self._hop = max(1, round(c.hop_s * _RZ_SR))
        self._mel_basis = librosa.filters.mel(sr=_RZ_SR, n_fft=_RZ_N_FFT, n_mels=_RZ_N_MELS).astype(np.float32)
        self._fft_window = scipy.signal.get_window("hann", _RZ_N_FFT, fftbins=True).astype(np.float32)
        self.load_seconds = time.perf_counter() - t0
        logger.info("loaded Resemblyzer encoder %s on %s in %.2f s", weights, self._device, self.load_seconds)

    @property
    def dim(self) -> int:
        """256."""
        return _RZ_DIM

    @property
    def sample_rate(self) -> int:
        """16000 Hz."""
        return _RZ_SR

    @property
    def frame_length(self) -> int:
        """25600 samples (1.6 s)."""
        return _RZ_FRAME

    @property
    def hop_length(self) -> int:
        """``hop_s`` in samples."""
        return self._hop

    @property
    def weights_path(self) -> Path:
        """The checkpoint file in use."""
        return self._weights

    def _weights_identity(self) -> dict[str, Any]:
        return {"weights_path": self._weights_name, "weights_sha256": self._weights_sha256[:16]}

    def mel_frames(self, windows: NDArray[np.float32]) -> NDArray[np.float32]:
        """Resemblyzer's mel input for 1.6 s windows: ``float32[windows, 160, 40]`` (power, not log).

        Args:
            windows: ``float32[n, 25600]`` samples at 16 kHz.

        Returns:
            Mel power spectrogram frames, like ``resemblyzer.audio.wav_to_mel_spectrogram`` on each window.
        """
        w = np.asarray(windows, dtype=np.float32)
        if w.ndim != 2 or w.shape[1] != _RZ_FRAME:
            raise ConfigError(f"mel_frames expects [n, {_RZ_FRAME}] samples, got shape {w.shape}")
        half = _RZ_N_FFT // 2
        padded = np.pad(w, ((0, 0), (half, half)))
        frames = np.lib.stride_tricks.sliding_window_view(padded, _RZ_N_FFT, axis=1)[:, ::_RZ_HOP]
        frames = frames[:, :_RZ_PARTIAL_FRAMES]
        spec = np.fft.rfft(frames * self._fft_window, axis=-1)
        power = (spec.real**2 + spec.imag**2).astype(np.float32)
        mel: NDArray[np.float32] = (power @ self._mel_basis.T).astype(np.float32)
        return mel

    def _embed_windows(self, windows: list[NDArray[np.float32]]) -> NDArray[np.float32]:
        torch = self._torch
        enc = self._encoder
        out = np.empty((len(windows), _RZ_DIM), dtype=np.float32)
        bs = self.config.batch_size
        with self._threads(), torch.inference_mode():
            for i in range(0, len(windows), bs):
                mels = self.mel_frames(np.stack(windows[i : i + bs]))
                x = torch.from_numpy(mels).to(self._device)
                _, (hidden, _) = enc.lstm(x)
                raw = enc.relu(enc.linear(hidden[-1]))
                emb = raw / raw.norm(dim=1, keepdim=True).clamp_min(1e-12)
                out[i : i + len(mels)] = emb.cpu().numpy()
        return out


def resemblyzer_preprocess(audio: Audio) -> Audio:
    """Apply Resemblyzer's ``preprocess_wav`` to a whole utterance: 16 kHz mono, volume up to -30 dBFS, trimmed.

    Volume normalisation only ever raises the level (to -30 dBFS RMS), and webrtcvad (mode 3, 30 ms windows,
    smoothed) removes silences longer than about 0.2 s. Both look at the whole input, which is why
    :class:`ResemblyzerEmbedder` does not apply them itself; use this on short utterances (not on hour-long
    streams) when you want Resemblyzer's exact recipe.

    Args:
        audio: Any sample rate and channel count.

    Returns:
        The processed audio at 16 kHz (``offset`` no longer maps to the source's timeline once silences are cut).

    Raises:
        MissingDependencyError: ``resemblyzer`` (and its ``webrtcvad``) is not installed.
        EmptyAudioError: The input is empty, or nothing is left after trimming (no speech found).
        NonFiniteAudioError: The input contains NaN or Inf.
    """
    if audio.num_samples == 0:
        raise EmptyAudioError("audio has zero samples", audio.source)
    checked = Audio.from_array(audio.samples, audio.sample_rate, audio.source)  # validates NaN/Inf
    with _quiet_resemblyzer_import():
        rz_audio = require("resemblyzer.audio", "speaker", "resemblyzer_preprocess", package="resemblyzer")
    wav = checked.prepared(_RZ_SR).samples.astype(np.float32)
    if not np.any(wav):
        raise EmptyAudioError("audio is digital silence: no speech to keep", audio.source)
    wav = np.asarray(rz_audio.normalize_volume(wav, -30, increase_only=True), dtype=np.float32)
    wav = np.asarray(rz_audio.trim_long_silences(wav), dtype=np.float32)
    if wav.size == 0:
        raise EmptyAudioError("no speech left after Resemblyzer's silence trimming", audio.source)
    return Audio(np.ascontiguousarray(wav), _RZ_SR, audio.source, audio.offset, dict(audio.metadata))


# ================================================================================================ ECAPA-TDNN
_ECAPA_DEFAULT_SOURCE = "speechbrain/spkrec-ecapa-voxceleb"
_ECAPA_FILES = ("hyperparams.yaml", "embedding_model.ckpt")
_ECAPA_MIN_S = 0.5  # a trimmed window keeps at least this much (the dilated convolutions need context)


@dataclass(frozen=True)
class _FbankParams:
    """``speechbrain.lobes.features.Fbank`` settings (win/hop in milliseconds, as SpeechBrain takes them)."""

    sample_rate: int = 16000
    n_fft: int = 400
    win_length: float = 25.0
    hop_length: float = 10.0
    n_mels: int = 40
    f_min: float = 0.0
    f_max: float | None = None


@dataclass(frozen=True)
class _ECAPAArch:
    """``speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN`` constructor arguments (SpeechBrain's defaults)."""

    input_size: int
    lin_neurons: int = 192
    channels: tuple[int, ...] = (512, 512, 512, 512, 1536)
    kernel_sizes: tuple[int, ...] = (5, 3, 3, 3, 1)
    dilations: tuple[int, ...] = (1, 2, 3, 4, 1)
    attention_channels: int = 128
    res2net_scale: int = 8
    se_channels: int = 128
    global_context: bool = True
    groups: tuple[int, ...] = (1, 1, 1, 1, 1)


@dataclass(frozen=True)
class _ECAPAModelSpec:
    fbank: _FbankParams
    arch: _ECAPAArch
    std_norm: bool


class _Tagged:
    """A HyperPyYAML tagged node (``!new:...``, ``!ref <x>``, ``!name:...``) read by plain YAML."""

    def __init__(self, tag: str, value: Any) -> None:
        self.tag = tag
        self.value = value


def _read_hyperparams(path: Path) -> dict[str, Any]:
    yaml = require("yaml", "speaker", "ECAPAEmbedder", package="pyyaml")

    class _Loader(yaml.SafeLoader):  # type: ignore[misc,name-defined]
        pass

    def construct(loader: Any, suffix: str, node: Any) -> _Tagged:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return _Tagged(suffix, value)

    _Loader.add_multi_constructor("!", construct)
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # a SafeLoader subclass
    except Exception as err:
        raise ModelLoadError(f"cannot parse {path}: {err}") from err
    if not isinstance(data, dict):
        raise ModelLoadError(f"{path} is not a YAML mapping")
    return data


def _resolve_refs(value: Any, top: dict[str, Any], path: Path, depth: int = 0) -> Any:
    if depth > 20:
        raise ModelLoadError(f"{path}: !ref chain too deep")
    if isinstance(value, _Tagged) and value.tag == "ref":
        m = re.fullmatch(r"\s*<([A-Za-z_][\w]*)>\s*", str(value.value))
        if m is None or m.group(1) not in top:
            raise ModelLoadError(f"{path}: unsupported or dangling reference !ref {value.value}")
        return _resolve_refs(top[m.group(1)], top, path, depth + 1)
    if isinstance(value, list):
        return [_resolve_refs(v, top, path, depth + 1) for v in value]
    return value


def _find_node(top: dict[str, Any], key: str, suffix: str, path: Path) -> dict[str, Any] | None:
    candidates = [top.get(key)] + [v for k, v in top.items() if k != key]
    for node in candidates:
        with contextlib.suppress(ModelLoadError):  # other entries may hold refs we do not need to understand
            node = _resolve_refs(node, top, path)
        if isinstance(node, _Tagged) and node.tag.startswith("new:") and node.tag.endswith(suffix):
            args = node.value if isinstance(node.value, dict) else {}
            return {k: _resolve_refs(v, top, path) for k, v in args.items()}
    return None


def _parse_ecapa_hyperparams(path: Path) -> _ECAPAModelSpec:
    """Read the feature, normalisation and model settings of a SpeechBrain ECAPA ``hyperparams.yaml``."""
    top = _read_hyperparams(path)
    model = _find_node(top, "embedding_model", "ECAPA_TDNN.ECAPA_TDNN", path)
    if model is None:
        raise ModelLoadError(f"{path}: no `!new:speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN` embedding_model")
    feats = _find_node(top, "compute_features", "features.Fbank", path)
    if feats is None:
        raise ModelLoadError(f"{path}: no `!new:speechbrain.lobes.features.Fbank` compute_features")
    norm = _find_node(top, "mean_var_norm", "InputNormalization", path)
    if norm is None:
        raise ModelLoadError(f"{path}: no `!new:speechbrain.processing.features.InputNormalization` mean_var_norm")

    def unsupported(what: str, detail: str) -> ModelLoadError:
        return ModelLoadError(
            f"{path}: unsupported {what} setting {detail} (audiovec runs SpeechBrain's default "
            "ECAPA inference path only)"
        )

    # --- features
    fb: dict[str, Any] = {}
    for key, value in feats.items():
        if key in ("sample_rate", "n_fft", "n_mels"):
            fb[key] = int(value)
        elif key in ("win_length", "hop_length", "f_min"):
            fb[key] = float(value)
        elif key == "f_max":
            fb[key] = None if value is None else float(value)
        elif key in ("deltas", "context") and value:
            raise unsupported("Fbank", f"{key}={value!r}")
        elif key == "filter_shape" and value != "triangular":
            raise unsupported("Fbank", f"filter_shape={value!r}")
        elif key not in (
            "deltas",
            "context",
            "requires_grad",
            "left_frames",
            "right_frames",
            "filter_shape",
            "param_change_factor",
            "param_rand_factor",
        ):
            raise unsupported("Fbank", f"{key}={value!r}")
    fbank = _FbankParams(**fb)
    # --- normalisation
    if norm.get("norm_type", "global") != "sentence" or norm.get("mean_norm", True) is not True:
        raise unsupported("InputNormalization", f"{norm!r} (need norm_type: sentence)")
    extra = set(norm) - {
        "norm_type",
        "std_norm",
        "mean_norm",
        "epsilon",
        "length_dim",
        "update_until_epoch",
        "avoid_padding_norm",
        "device",
    }
    if extra:
        raise unsupported("InputNormalization", f"{sorted(extra)}")
    # --- model
    arch: dict[str, Any] = {}
    for key, value in model.items():
        if key in ("input_size", "lin_neurons", "attention_channels", "res2net_scale", "se_channels"):
            arch[key] = int(value)
        elif key in ("channels", "kernel_sizes", "dilations", "groups"):
            arch[key] = tuple(int(v) for v in value)
        elif key == "global_context":
            arch[key] = bool(value)
        elif key == "activation":
            if not (isinstance(value, _Tagged) and value.tag == "name:torch.nn.ReLU"):
                raise unsupported("ECAPA_TDNN", f"activation={getattr(value, 'tag', value)!r}")
        elif key not in ("device", "dropout"):
            raise unsupported("ECAPA_TDNN", f"{key}={value!r}")
    if "input_size" not in arch:
        raise ModelLoadError(f"{path}: ECAPA_TDNN has no input_size")
    spec = _ECAPAModelSpec(fbank, _ECAPAArch(**arch), std_norm=bool(norm.get("std_norm", True)))
    a = spec.arch
    n = len(a.channels)
    if n < 3 or not (len(a.kernel_sizes) == len(a.dilations) == len(a.groups) == n):
        raise ModelLoadError(f"{path}: channels/kernel_sizes/dilations/groups must have the same length >= 3")
    if any(c % a.res2net_scale for c in a.channels[1:-1]):
        raise ModelLoadError(f"{path}: SE-Res2Net channels must be divisible by res2net_scale={a.res2net_scale}")
    if a.input_size != fbank.n_mels:
        raise ModelLoadError(f"{path}: ECAPA input_size={a.input_size} != Fbank n_mels={fbank.n_mels}")
    return spec


def _tdnn_shapes(prefix: str, c_in: int, c_out: int, k: int, groups: int) -> dict[str, tuple[int, ...]]:
    return {
        f"{prefix}.conv.conv.weight": (c_out, c_in // groups, k),
        f"{prefix}.conv.conv.bias": (c_out,),
        **_bn_shapes(f"{prefix}.norm.norm", c_out),
    }


def _bn_shapes(prefix: str, c: int) -> dict[str, tuple[int, ...]]:
    return {
        f"{prefix}.weight": (c,),
        f"{prefix}.bias": (c,),
        f"{prefix}.running_mean": (c,),
        f"{prefix}.running_var": (c,),
        f"{prefix}.num_batches_tracked": (),
    }


def _ecapa_state_shapes(a: _ECAPAArch) -> dict[str, tuple[int, ...]]:
    """Parameter names and shapes of SpeechBrain's ``ECAPA_TDNN(**asdict(a))`` state dict."""
    ch, ks = a.channels, a.kernel_sizes
    shapes = _tdnn_shapes("blocks.0", a.input_size, ch[0], ks[0], a.groups[0])
    for i in range(1, len(ch) - 1):
        p = f"blocks.{i}"
        shapes.update(_tdnn_shapes(f"{p}.tdnn1", ch[i - 1], ch[i], 1, a.groups[i]))
        width = ch[i] // a.res2net_scale
        for j in range(a.res2net_scale - 1):
            shapes.update(_tdnn_shapes(f"{p}.res2net_block.blocks.{j}", width, width, ks[i], 1))
        shapes.update(_tdnn_shapes(f"{p}.tdnn2", ch[i], ch[i], 1, a.groups[i]))
        shapes[f"{p}.se_block.conv1.conv.weight"] = (a.se_channels, ch[i], 1)
        shapes[f"{p}.se_block.conv1.conv.bias"] = (a.se_channels,)
        shapes[f"{p}.se_block.conv2.conv.weight"] = (ch[i], a.se_channels, 1)
        shapes[f"{p}.se_block.conv2.conv.bias"] = (ch[i],)
        if ch[i - 1] != ch[i]:
            shapes[f"{p}.shortcut.conv.weight"] = (ch[i], ch[i - 1], 1)
            shapes[f"{p}.shortcut.conv.bias"] = (ch[i],)
    shapes.update(_tdnn_shapes("mfa", ch[-2] * (len(ch) - 2), ch[-1], ks[-1], a.groups[-1]))
    shapes.update(_tdnn_shapes("asp.tdnn", ch[-1] * (3 if a.global_context else 1), a.attention_channels, 1, 1))
    shapes["asp.conv.conv.weight"] = (ch[-1], a.attention_channels, 1)
    shapes["asp.conv.conv.bias"] = (ch[-1],)
    shapes.update(_bn_shapes("asp_bn.norm", ch[-1] * 2))
    shapes["fc.conv.weight"] = (a.lin_neurons, ch[-1] * 2, 1)
    shapes["fc.conv.bias"] = (a.lin_neurons,)
    return shapes


class _ECAPARunner:
    """SpeechBrain's ECAPA inference (``EncoderClassifier.encode_batch``, ``normalize=False``) in plain PyTorch.

    Mirrors speechbrain 1.x: ``Fbank`` (centred Hamming STFT, power spectrum, triangular mel filters, ``10 log10``
    with an 80 dB floor below the window's maximum), ``InputNormalization(norm_type="sentence")`` and
    ``ECAPA_TDNN`` (reflect-padded "same" convolutions, SE-Res2Net blocks, attentive statistics pooling).
    """

    def __init__(self, torch: Any, spec: _ECAPAModelSpec, params: dict[str, Any], device: Any) -> None:
        self.torch = torch
        self.F = torch.nn.functional
        self.spec = spec
        self.p = params
        fb = spec.fbank
        self.win = round(fb.sample_rate / 1000.0 * fb.win_length)
        self.hop = round(fb.sample_rate / 1000.0 * fb.hop_length)
        self.window = torch.hamming_window(self.win).to(device)
        self.fbank_matrix = self._fbank_matrix().to(device)

    def _fbank_matrix(self) -> Any:
        torch = self.torch
        fb = self.spec.fbank
        f_max = fb.f_max if fb.f_max is not None else fb.sample_rate // 2
        n_stft = fb.n_fft // 2 + 1

        def to_mel(hz: float) -> float:
            return 2595 * math.log10(1 + hz / 700)

        mel = torch.linspace(to_mel(fb.f_min), to_mel(f_max), fb.n_mels + 2)
        hz = 700 * (10 ** (mel / 2595) - 1)
        band = (hz[1:] - hz[:-1])[:-1]
        f_central = hz[1:-1]
        all_freqs = torch.linspace(0, fb.sample_rate // 2, n_stft).repeat(f_central.shape[0], 1)
        f_central_mat = f_central.repeat(n_stft, 1).transpose(0, 1)
        band_mat = band.repeat(n_stft, 1).transpose(0, 1)
        slope = (all_freqs - f_central_mat) / band_mat
        return torch.max(torch.zeros(1), torch.min(slope + 1.0, -slope + 1.0)).transpose(0, 1)

    def features(self, wav: Any) -> Any:
        """``[batch, samples]`` → normalised log-mel features ``[batch, frames, n_mels]``."""
        torch = self.torch
        stft = torch.stft(
            wav,
            self.spec.fbank.n_fft,
            self.hop,
            self.win,
            self.window,
            center=True,
            pad_mode="constant",
            normalized=False,
            onesided=True,
            return_complex=True,
        )
        stft = torch.view_as_real(stft).transpose(2, 1)
        power = stft.pow(2).sum(-1)
        fbanks = torch.matmul(power, self.fbank_matrix)
        db = 10 * torch.log10(torch.clamp(fbanks, min=1e-10))
        floor = db.amax(dim=(-2, -1)) - 80.0
        db = torch.max(db, floor.view(db.shape[0], 1, 1))
        mean = db.mean(dim=1, keepdim=True)
        if self.spec.std_norm:
            std = (db - mean).square().mean(dim=1, keepdim=True).sqrt()
            return (db - mean) / std.clamp(min=1e-10)
        return db - mean

    def _conv(self, x: Any, prefix: str, dilation: int = 1, groups: int = 1) -> Any:
        w = self.p[f"{prefix}.weight"]
        pad = dilation * (int(w.shape[-1]) - 1) // 2
        if pad:
            x = self.F.pad(x, (pad, pad), mode="reflect")
        return self.F.conv1d(x, w, self.p[f"{prefix}.bias"], dilation=dilation, groups=groups)

    def _bn(self, x: Any, prefix: str) -> Any:
        p = self.p
        return self.F.batch_norm(
            x,
            p[f"{prefix}.running_mean"],
            p[f"{prefix}.running_var"],
            p[f"{prefix}.weight"],
            p[f"{prefix}.bias"],
            training=False,
            momentum=0.0,
            eps=1e-5,
        )

    def _tdnn(self, x: Any, prefix: str, dilation: int = 1, groups: int = 1) -> Any:
        return self._bn(self.F.relu(self._conv(x, f"{prefix}.conv.conv", dilation, groups)), f"{prefix}.norm.norm")

    @staticmethod
    def _stats(torch: Any, x: Any, m: Any) -> tuple[Any, Any]:
        mean = (m * x).sum(2)
        std = torch.sqrt((m * (x - mean.unsqueeze(2)).pow(2)).sum(2).clamp(1e-12))
        return mean, std

    def embed(self, wav: Any) -> Any:
        """``[batch, samples]`` (all the same length, no padding) → ``[batch, lin_neurons]``."""
        torch, a = self.torch, self.spec.arch
        x = self.features(wav).transpose(1, 2)
        x = self._tdnn(x, "blocks.0", a.dilations[0], a.groups[0])
        outs = []
        for i in range(1, len(a.channels) - 1):
            p = f"blocks.{i}"
            residual = self._conv(x, f"{p}.shortcut.conv") if a.channels[i - 1] != a.channels[i] else x
            h = self._tdnn(x, f"{p}.tdnn1", 1, a.groups[i])
            parts: list[Any] = []
            y: Any = None
            for j, part in enumerate(torch.chunk(h, a.res2net_scale, dim=1)):
                if j == 0:
                    y = part
                elif j == 1:
                    y = self._tdnn(part, f"{p}.res2net_block.blocks.0", a.dilations[i])
                else:
                    y = self._tdnn(part + y, f"{p}.res2net_block.blocks.{j - 1}", a.dilations[i])
                parts.append(y)
            h = self._tdnn(torch.cat(parts, dim=1), f"{p}.tdnn2", 1, a.groups[i])
            s = h.sum(dim=2, keepdim=True) / h.shape[-1]
            s = self.F.relu(self._conv(s, f"{p}.se_block.conv1.conv"))
            s = torch.sigmoid(self._conv(s, f"{p}.se_block.conv2.conv"))
            x = s * h + residual
            outs.append(x)
        x = self._tdnn(torch.cat(outs, dim=1), "mfa", a.dilations[-1], a.groups[-1])
        length = x.shape[-1]
        m = torch.full((x.shape[0], 1, length), 1.0 / length, dtype=x.dtype, device=x.device)
        if a.global_context:
            mean, std = self._stats(torch, x, m)
            attn = torch.cat([x, mean.unsqueeze(2).repeat(1, 1, length), std.unsqueeze(2).repeat(1, 1, length)], 1)
        else:
            attn = x
        attn = self._conv(torch.tanh(self._tdnn(attn, "asp.tdnn")), "asp.conv.conv")
        attn = self.F.softmax(attn, dim=2)
        mean, std = self._stats(torch, x, attn)
        pooled = self._bn(torch.cat((mean, std), dim=1).unsqueeze(2), "asp_bn.norm")
        return self._conv(pooled, "fc.conv").squeeze(2)


class ECAPAConfig(_TorchConfig):
    """Configuration of :class:`ECAPAEmbedder`.

    Attributes:
        source: A local directory holding ``hyperparams.yaml`` and ``embedding_model.ckpt`` (SpeechBrain's layout),
            or a Hugging Face Hub repository id (default ``speechbrain/spkrec-ecapa-voxceleb``).
        revision: Hub revision (branch, tag or commit); ``None``: the default branch.
        cache_dir: Hub cache directory; ``None``: huggingface_hub's default.
        local_files_only: Never touch the network: use the local directory or the Hub cache only. Also implied
            by the environment variable ``HF_HUB_OFFLINE=1``.
        window_s: Length of one frame in seconds (the model embeds each window on its own).
        hop_s: Step between windows in seconds (at most ``window_s``).
        batch_size: Windows per forward pass (default 8: the full-size model needs about 50 MB of activations per
            3 s window, so memory grows by that much per window in a batch).
        trim_padding: Drop the trailing run of exact-zero samples of a window before embedding it (keeping at
            least 0.5 s), so the zero padding that completes a short input or the last window is not embedded as
            silence; a window of real audio never ends in a run of exact zeros unless it is digital silence.
    """

    batch_size: int = Field(8, ge=1, le=4096, description="windows per forward pass")
    source: str = Field(_ECAPA_DEFAULT_SOURCE, min_length=1, description="local model directory or Hub repo id")
    revision: str | None = None
    cache_dir: str | None = None
    local_files_only: bool = False
    window_s: float = Field(3.0, ge=_ECAPA_MIN_S, le=60.0, description="window length (s)")
    hop_s: float = Field(1.0, gt=0, description="step between windows (s)")
    trim_padding: bool = True

    @model_validator(mode="after")
    def _check_hop(self) -> ECAPAConfig:
        if self.hop_s > self.window_s:
            raise ValueError(f"hop_s={self.hop_s} must not exceed window_s={self.window_s} (gaps between frames)")
        return self


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _looks_like_path(source: str) -> bool:
    return Path(source).is_absolute() or source.startswith((".", "~")) or source.count("/") != 1 or "\\" in source


class ECAPAEmbedder(_TorchEmbedder):
    """ECAPA-TDNN speaker embeddings from a SpeechBrain checkpoint: one vector per window (192-d by default).

    The model directory follows SpeechBrain's layout (``hyperparams.yaml`` with ``compute_features`` (Fbank),
    ``mean_var_norm`` (sentence) and ``embedding_model`` (``ECAPA_TDNN``), plus ``embedding_model.ckpt``); any
    channel widths, kernel sizes, dilations or mel count that SpeechBrain's ``ECAPA_TDNN`` accepts are read from
    the YAML. The vectors are what ``EncoderClassifier.encode_batch(wav)`` returns for each window (no
    ``mean_var_norm_emb``); compare them with cosine similarity.

    Args:
        config: An :class:`ECAPAConfig`, a dict of its fields, or ``None``.
        **params: Config fields as keyword arguments.

    Raises:
        ConfigError: Invalid parameters.
        MissingDependencyError: ``torch`` (or, for Hub sources, ``huggingface_hub``; for the YAML, ``pyyaml``) is
            not installed (``pip install 'audiovec[speaker]'``).
        ModelLoadError: The directory or Hub files cannot be found (offline or not), the YAML describes something
            other than SpeechBrain's ECAPA inference path, or the checkpoint does not fit the described model.

    Example:
        >>> from audiovec import get_embedder
        >>> emb = get_embedder("ecapa", source="/models/spkrec-ecapa-voxceleb", local_files_only=True)  # doctest: +SKIP
        >>> emb.dim, emb.window_s  # doctest: +SKIP
        (192, 3.0)
    """

    name: ClassVar[str] = "ecapa"
    version: ClassVar[str] = "1"
    Config = ECAPAConfig
    config: ECAPAConfig

    def __init__(self, config: ECAPAConfig | dict[str, Any] | None = None, **params: Any) -> None:
        super().__init__(config, **params)
        c = self.config
        self._init_torch("ECAPAEmbedder")
        t0 = time.perf_counter()
        hparams_path, ckpt_path, self._model_name = self._locate_files()
        spec = _parse_ecapa_hyperparams(hparams_path)
        try:
            state = self._torch.load(ckpt_path, map_location="cpu", weights_only=True)
        except Exception as err:
            raise ModelLoadError(f"cannot read the ECAPA checkpoint {ckpt_path}: {err}") from err
        if not isinstance(state, dict):
            raise ModelLoadError(f"{ckpt_path} is not a state dict")
        expected = _ecapa_state_shapes(spec.arch)
        found = {k: tuple(v.shape) for k, v in state.items() if hasattr(v, "shape")}
        missing = sorted(set(expected) - set(found))
        unexpected = sorted(set(found) - set(expected))
        wrong = sorted(k for k in set(expected) & set(found) if expected[k] != found[k])
        if missing or unexpected or wrong:
            raise ModelLoadError(
                f"{ckpt_path} does not fit the ECAPA_TDNN described in {hparams_path}: missing {missing[:5]}, "
                f"unexpected {unexpected[:5]}, wrong shape {wrong[:5]}"
            )
        params_t = {k: state[k].to(self._device, self._torch.float32) for k in expected if expected[k]}
        self._runner = _ECAPARunner(self._torch, spec, params_t, self._device)
        self._spec = spec
        self._weights_sha256 = _sha256(ckpt_path)
        self._files = (hparams_path, ckpt_path)
        sr = spec.fbank.sample_rate
        self._frame = round(c.window_s * sr)
        self._hop = max(1, round(c.hop_s * sr))
        self._min_samples = min(self._frame, round(_ECAPA_MIN_S * sr))
        self.load_seconds = time.perf_counter() - t0
        logger.info("loaded ECAPA-TDNN %s on %s in %.2f s", self._model_name, self._device, self.load_seconds)

    def _locate_files(self) -> tuple[Path, Path, str]:
        c = self.config
        local = Path(c.source).expanduser()
        if local.is_dir():
            missing = [f for f in _ECAPA_FILES if not (local / f).is_file()]
            if missing:
                raise ModelLoadError(
                    f"ECAPA model directory {local} lacks {missing} (a SpeechBrain ECAPA directory holds "
                    f"{list(_ECAPA_FILES)}; tried source={c.source!r})"
                )
            return local / _ECAPA_FILES[0], local / _ECAPA_FILES[1], local.name
        if _looks_like_path(c.source):
            raise ModelLoadError(f"ECAPA model directory not found: {local} (tried source={c.source!r})")
        hub = require("huggingface_hub", "speaker", "ECAPAEmbedder", package="huggingface_hub")
        offline = c.local_files_only or _hub_offline()
        paths = []
        for fname in _ECAPA_FILES:
            try:
                got = hub.hf_hub_download(
                    repo_id=c.source,
                    filename=fname,
                    revision=c.revision,
                    cache_dir=c.cache_dir,
                    local_files_only=offline,
                )
            except Exception as err:
                where = "the local Hugging Face cache (offline mode)" if offline else "the Hugging Face Hub"
                raise ModelLoadError(
                    f"cannot get {fname} of the ECAPA model {c.source!r} (revision={c.revision!r}, "
                    f"cache_dir={c.cache_dir!r}) from {where}: {type(err).__name__}: {err}"
                ) from err
            paths.append(Path(got))
        return paths[0], paths[1], c.source

    @property
    def dim(self) -> int:
        """``lin_neurons`` of the model (192 for spkrec-ecapa-voxceleb)."""
        return self._spec.arch.lin_neurons

    @property
    def sample_rate(self) -> int:
        """The Fbank's sample rate (16000 Hz for spkrec-ecapa-voxceleb)."""
        return self._spec.fbank.sample_rate

    @property
    def frame_length(self) -> int:
        """``window_s`` in samples."""
        return self._frame

    @property
    def hop_length(self) -> int:
        """``hop_s`` in samples."""
        return self._hop

    @property
    def model_files(self) -> tuple[Path, Path]:
        """The ``hyperparams.yaml`` and ``embedding_model.ckpt`` in use."""
        return self._files

    def _weights_identity(self) -> dict[str, Any]:
        a, fb = self._spec.arch, self._spec.fbank
        return {
            "source": self._model_name,
            "revision": self.config.revision,
            "weights_sha256": self._weights_sha256[:16],
            "architecture": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(a).items()},
            "features": asdict(fb) | {"std_norm": self._spec.std_norm},
        }

    def spec(self) -> EmbedderSpec:
        """Name, version, framing, and the identity of the model (file hash, architecture, features)."""
        base = super().spec()
        params = {k: v for k, v in base.params.items() if k not in ("cache_dir", "local_files_only")}
        return EmbedderSpec(name=base.name, version=base.version, params=params)

    def _valid_length(self, window: NDArray[np.float32]) -> int:
        if not self.config.trim_padding:
            return len(window)
        nz = np.flatnonzero(window)
        last = int(nz[-1]) + 1 if len(nz) else 0
        return max(last, self._min_samples)

    def _embed_windows(self, windows: list[NDArray[np.float32]]) -> NDArray[np.float32]:
        torch = self._torch
        out = np.empty((len(windows), self.dim), dtype=np.float32)
        groups: dict[int, list[int]] = {}
        for i, w in enumerate(windows):
            groups.setdefault(self._valid_length(w), []).append(i)
        bs = self.config.batch_size
        with self._threads(), torch.inference_mode():
            for length, idx in groups.items():
                for b in range(0, len(idx), bs):
                    sel = idx[b : b + bs]
                    wav = torch.from_numpy(np.stack([windows[i][:length] for i in sel])).to(self._device)
                    out[sel] = self._runner.embed(wav).float().cpu().numpy()
        return out

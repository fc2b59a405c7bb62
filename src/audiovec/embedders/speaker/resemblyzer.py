"""Resemblyzer: the pretrained GE2E speaker encoder shipped inside the ``resemblyzer`` wheel, one vector per 1.6 s."""

from __future__ import annotations

import contextlib
import logging
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.signal
from numpy.typing import NDArray
from pydantic import Field

from audiovec._hashing import sha256_file
from audiovec._optional import require
from audiovec.audio import Audio
from audiovec.embedders._mel import mel_filterbank
from audiovec.embedders.framing import FrameGeometry
from audiovec.embedders.speaker._base import TorchConfig, TorchEmbedder
from audiovec.errors import ConfigError, EmptyAudioError, ModelLoadError

__all__ = ["ResemblyzerConfig", "ResemblyzerEmbedder", "resemblyzer_preprocess"]

logger = logging.getLogger(__name__)

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


class ResemblyzerConfig(TorchConfig):
    """Configuration of :class:`ResemblyzerEmbedder`.

    Attributes:
        hop_s: Step between 1.6 s partial windows, in seconds (Resemblyzer's own default rate of 1.3 partials per
            second is ``hop_s=0.77``).
        weights_path: A GE2E checkpoint in Resemblyzer's format (``{"model_state": ...}``); ``None`` uses the
            ``pretrained.pt`` shipped inside the ``resemblyzer`` package (no download).
    """

    hop_s: float = Field(0.8, gt=0, le=_RZ_FRAME / _RZ_SR, description="step between 1.6 s windows (s)")
    weights_path: str | None = Field(None, description="checkpoint path; None: the packaged pretrained.pt")


class ResemblyzerEmbedder(TorchEmbedder):
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

    def _setup(self) -> None:
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
        self._weights_sha256 = sha256_file(weights)
        # 1.6 s partial utterances every hop_s
        self.geometry = FrameGeometry(_RZ_SR, _RZ_FRAME, max(1, round(c.hop_s * _RZ_SR)), _RZ_DIM)
        self._mel_basis = mel_filterbank(_RZ_SR, _RZ_N_FFT, _RZ_N_MELS)
        self._fft_window = scipy.signal.get_window("hann", _RZ_N_FFT, fftbins=True).astype(np.float32)
        self.load_seconds = time.perf_counter() - t0
        logger.info("loaded Resemblyzer encoder %s on %s in %.2f s", weights, self._device, self.load_seconds)

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

"""Classical, weight-free embedders: log-mel spectrogram frames and MFCCs.

Both compute a Hann-windowed STFT without centring (so each frame depends on its own samples only), a
Slaney-normalised mel filterbank, and a log with a fixed reference (``10 * log10(max(power, 1e-10))``; no per-file
``top_db`` clipping, which would make a frame depend on the loudest part of the file). MFCCs are the orthonormal
DCT-II of the log-mel frame, like librosa's.

Exactness. One-shot, chunked, batched and streamed embedding give bit-identical vectors on every machine. A
frame's own samples are not enough for that: BLAS matrix products (the mel filterbank) and SIMD transforms may
round a row differently depending on how many rows are computed together, so a frame computed in a chunk of 37
frames can differ in the last bits from the same frame computed in a chunk of 3000 (on some CPUs, by up to
3e-5). So frames are computed in blocks of :data:`BLOCK_FRAMES` frames aligned to the first frame of the input
(chunks always hold whole blocks, see :attr:`~audiovec.embedders.base.FramedEmbedder.frame_block`): every block
goes through the same calls with the same data whatever the chunking, and the last, partial block of an input is
the same partial block in every path.

Range. The power spectrum is computed in ``float32``, which finite but enormous samples overflow (beyond about
1e17 with the default 25 ms window; audio is expected in [-1, 1]): such input is refused with
:class:`~audiovec.errors.NonFiniteEmbeddingError`, like any model output holding NaN or Inf, never returned.

These are the first-stage embedding of a fingerprint-style search and the speed baseline for neural models.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.fft
from numpy.typing import NDArray
from pydantic import Field, model_validator

from audiovec.embedders._mel import mel_filterbank
from audiovec.embedders.base import EmbedderConfig, FramedEmbedder
from audiovec.embedders.framing import FrameGeometry

__all__ = ["BLOCK_FRAMES", "LogMelConfig", "LogMelEmbedder", "MFCCConfig", "MFCCEmbedder"]

_AMIN = 1e-10
#: Frames computed together (2.56 s at the default 10 ms hop); large enough that BLAS runs at full speed.
BLOCK_FRAMES = 256


class LogMelConfig(EmbedderConfig):
    """Configuration of :class:`LogMelEmbedder`.

    Attributes:
        sample_rate: Rate the audio is resampled to.
        n_mels: Mel bands (the vector dimension).
        window_s: STFT window length in seconds (also the FFT size).
        hop_s: Step between frames in seconds.
        fmin: Lowest mel band edge in Hz.
        fmax: Highest mel band edge in Hz (``None``: Nyquist).
    """

    sample_rate: int = Field(16000, ge=1000, le=384000)
    n_mels: int = Field(64, ge=1, le=512)
    window_s: float = Field(0.025, gt=0, le=1.0)
    hop_s: float = Field(0.010, gt=0, le=1.0)
    fmin: float = Field(0.0, ge=0)
    fmax: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _check_band(self) -> LogMelConfig:
        top = self.fmax if self.fmax is not None else self.sample_rate / 2
        if top > self.sample_rate / 2:
            raise ValueError(f"fmax={top} is above the Nyquist frequency {self.sample_rate / 2}")
        if self.fmin >= top:
            raise ValueError(f"fmin={self.fmin} must be below fmax={top}")
        if self.hop_s > self.window_s:
            raise ValueError(f"hop_s={self.hop_s} must not exceed window_s={self.window_s} (gaps between frames)")
        return self


class MFCCConfig(LogMelConfig):
    """Configuration of :class:`MFCCEmbedder`: a :class:`LogMelConfig` plus the number of coefficients."""

    n_mfcc: int = Field(20, ge=1, le=512)

    @model_validator(mode="after")
    def _check_mfcc(self) -> MFCCConfig:
        if self.n_mfcc > self.n_mels:
            raise ValueError(f"n_mfcc={self.n_mfcc} cannot exceed n_mels={self.n_mels}")
        return self


class LogMelEmbedder(FramedEmbedder):
    """Log-mel spectrogram frames, ``float32[frames, n_mels]`` in dB.

    Example:
        >>> import numpy as np
        >>> from audiovec import Audio, get_embedder
        >>> emb = get_embedder("logmel", n_mels=40)
        >>> fe = emb.embed(Audio.from_array(np.random.default_rng(0).standard_normal(16000) * 0.1, 16000))
        >>> fe.vectors.shape
        (99, 40)
    """

    name: ClassVar[str] = "logmel"
    version: ClassVar[str] = "1"
    Config = LogMelConfig
    config: LogMelConfig
    frame_block: ClassVar[int] = BLOCK_FRAMES

    def _setup(self) -> None:
        c = self.config
        n_fft = max(2, round(c.window_s * c.sample_rate))
        self.geometry = FrameGeometry(c.sample_rate, n_fft, max(1, round(c.hop_s * c.sample_rate)), self._out_dim())
        # the periodic Hann window of scipy.signal.get_window("hann", n_fft), without importing scipy.signal (slow)
        self._window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)
        self._mel = mel_filterbank(c.sample_rate, n_fft, c.n_mels, c.fmin, c.fmax)

    def _out_dim(self) -> int:
        return self.config.n_mels

    def _log_mel(self, frames: NDArray[np.float32]) -> NDArray[np.float32]:
        """Log-mel rows of ``float32[rows, frame_length]`` frames."""
        spec = np.fft.rfft(frames * self._window, axis=1)
        power = (spec.real**2 + spec.imag**2).astype(np.float32)
        mel = power @ self._mel.T
        out: NDArray[np.float32] = (10.0 * np.log10(np.maximum(mel, _AMIN))).astype(np.float32)
        return out

    def _block(self, frames: NDArray[np.float32]) -> NDArray[np.float32]:
        """Vectors of one block of at most :data:`BLOCK_FRAMES` frames."""
        return self._log_mel(frames)

    def _embed_frames(self, samples: NDArray[np.float32]) -> NDArray[np.float32]:
        frames = np.lib.stride_tricks.sliding_window_view(samples, self.frame_length)[:: self.hop_length]
        out = np.empty((len(frames), self.dim), dtype=np.float32)
        for b in range(0, len(frames), BLOCK_FRAMES):  # chunks start on a block boundary (frame_block)
            out[b : b + BLOCK_FRAMES] = self._block(frames[b : b + BLOCK_FRAMES])
        return out


class MFCCEmbedder(LogMelEmbedder):
    """Mel-frequency cepstral coefficients, ``float32[frames, n_mfcc]``.

    Example:
        >>> from audiovec import get_embedder
        >>> get_embedder("mfcc", n_mfcc=13).dim
        13
    """

    name: ClassVar[str] = "mfcc"
    version: ClassVar[str] = "1"
    Config = MFCCConfig
    config: MFCCConfig

    def _out_dim(self) -> int:
        return self.config.n_mfcc

    def _block(self, frames: NDArray[np.float32]) -> NDArray[np.float32]:
        mfcc = scipy.fft.dct(self._log_mel(frames), type=2, axis=1, norm="ortho")[:, : self.config.n_mfcc]
        return np.ascontiguousarray(mfcc, dtype=np.float32)

"""An example third-party embedder: four classic spectral statistics per 32 ms frame.

It is a complete plugin: a :class:`audiovec.FramedEmbedder` subclass with its own pydantic config and its frame
geometry (:class:`audiovec.embedders.FrameGeometry`), declared in this package's ``pyproject.toml`` under the
``audiovec.embedders`` entry-point group. The base class provides ``embed``, ``embed_batch``, ``embed_stream``
and ``embed_file``, resampling, padding and bounded memory; the plugin only computes the frames.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from audiovec import EmbedderConfig, FramedEmbedder
from audiovec.embedders import FrameGeometry


class SpectralStatsConfig(EmbedderConfig):
    """Configuration: sample rate and frame size."""

    sample_rate: int = Field(16000, ge=1000)
    frame: int = Field(512, ge=16)
    hop: int = Field(256, ge=1)


class SpectralStatsEmbedder(FramedEmbedder):
    """RMS level (dB), zero-crossing rate, spectral centroid and 85 % roll-off (kHz) per frame."""

    name: ClassVar[str] = "spectral-stats"
    version: ClassVar[str] = "1"
    Config = SpectralStatsConfig
    config: SpectralStatsConfig

    def _setup(self) -> None:  # called once the configuration is validated
        c = self.config
        self.geometry = FrameGeometry(sample_rate=c.sample_rate, frame_length=c.frame, hop_length=c.hop, dim=4)

    def _embed_frames(self, samples: NDArray[np.float32]) -> NDArray[np.float32]:
        frames = np.lib.stride_tricks.sliding_window_view(samples, self.frame_length)[:: self.hop_length]
        rms = 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-10)
        signs = np.signbit(frames)
        zcr = np.mean(signs[:, 1:] != signs[:, :-1], axis=1)
        mag = np.abs(np.fft.rfft(frames * np.hanning(self.frame_length), axis=1))
        freqs = np.fft.rfftfreq(self.frame_length, 1 / self.sample_rate) / 1000.0
        total = mag.sum(axis=1) + 1e-10
        centroid = (mag * freqs).sum(axis=1) / total
        cum = np.cumsum(mag, axis=1)
        rolloff = freqs[np.argmax(cum >= 0.85 * total[:, None], axis=1)]
        return np.stack([rms, zcr, centroid, rolloff], axis=1).astype(np.float32)

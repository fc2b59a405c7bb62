"""Write your own embedder, register it, and check it with the conformance kit.

A plugin package declares the class in its pyproject.toml instead of calling register_embedder:

    [project.entry-points."audiovec.embedders"]
    zcr = "my_package:ZeroCrossingEmbedder"

Run: python examples/write_a_plugin.py
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

import audiovec
from audiovec.testing import check_embedder


class ZCRConfig(audiovec.EmbedderConfig):
    """Frame size in samples at 16 kHz."""

    frame: int = Field(400, ge=16)


class ZeroCrossingEmbedder(audiovec.FramedEmbedder):
    """Zero-crossing rate and RMS level per frame: a 2-d toy embedder."""

    name: ClassVar[str] = "zcr"
    Config = ZCRConfig
    config: ZCRConfig

    @property
    def dim(self) -> int:
        return 2

    @property
    def sample_rate(self) -> int:
        return 16000

    @property
    def frame_length(self) -> int:
        return self.config.frame

    @property
    def hop_length(self) -> int:
        return self.config.frame // 2

    def _embed_frames(self, samples: NDArray[np.float32]) -> NDArray[np.float32]:
        # samples cover exactly n whole frames; the base class handles resampling, padding and long inputs
        frames = np.lib.stride_tricks.sliding_window_view(samples, self.frame_length)[:: self.hop_length]
        signs = np.signbit(frames)
        zcr = (signs[:, 1:] != signs[:, :-1]).mean(axis=1)
        rms = np.sqrt((frames.astype(np.float64) ** 2).mean(axis=1))
        return np.stack([zcr, rms], axis=1).astype(np.float32)


audiovec.register_embedder("zcr", ZeroCrossingEmbedder)
emb = audiovec.get_embedder("zcr", frame=512)
for result in check_embedder(emb):
    print(f"  {result.name:<24} {'ok' if result.passed else 'FAILED'}  {result.seconds:.2f} s")

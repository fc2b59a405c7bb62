"""The embedder conformance kit catches each kind of broken embedder (so a passing kit means something)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest

from audiovec import Audio, FramedEmbedder, FrameEmbeddings
from audiovec.audio import stream
from audiovec.embedders import FrameGeometry
from audiovec.testing import check_embedder, embedder_checks


class Good(FramedEmbedder):
    """Per-frame energy in 4 bands: a small, honest embedder to derive broken ones from."""

    name: ClassVar[str] = "good"
    geometry = FrameGeometry(sample_rate=8000, frame_length=256, hop_length=128, dim=4)

    def _embed_frames(self, x):
        frames = np.lib.stride_tricks.sliding_window_view(x, 256)[::128]
        mag = np.abs(np.fft.rfft(frames, axis=1))[:, 1:129]
        return np.log(mag.reshape(len(frames), 4, 32).sum(-1) + 1e-6).astype(np.float32)


class PropertyStyle(FramedEmbedder):
    """The same embedder written the older way (properties instead of a geometry), as existing plugins are."""

    name: ClassVar[str] = "property-style"

    @property
    def dim(self) -> int:
        return 4

    @property
    def sample_rate(self) -> int:
        return 8000

    @property
    def frame_length(self) -> int:
        return 256

    @property
    def hop_length(self) -> int:
        return 128

    _embed_frames = Good._embed_frames


class RandomOutput(Good):
    def _embed_frames(self, x):
        return super()._embed_frames(x) + np.random.default_rng().standard_normal((1, 4)).astype(np.float32)


class LeakyBatch(Good):
    """Pads a batch to its longest item and lets the padding into every item's last frames."""

    def embed_batch(self, audios):
        longest = max(a.num_samples for a in audios)
        out = []
        for a in audios:
            fe = self.embed(a)
            if a.num_samples < longest:
                v = fe.vectors.copy()
                v[-1] += 1.0
                fe = FrameEmbeddings(v, fe.timestamps, fe.duration, fe.window_s, fe.hop_s, fe.source, fe.model)
            out.append(fe)
        return out


class WrongDim(Good):
    geometry = FrameGeometry(sample_rate=8000, frame_length=256, hop_length=128, dim=5)


class BackwardsTime(Good):
    def embed(self, audio):
        fe = super().embed(audio)
        return FrameEmbeddings(fe.vectors, fe.timestamps[::-1].copy(), fe.duration, fe.window_s, fe.hop_s)


class IgnoresRate(Good):
    """Forgets to resample: treats every input as if it were at 8 kHz."""

    def _prepare(self, audio):
        return audio.to_mono().samples


class Hoarder(Good):
    """Keeps every block it is given (as float64), so memory grows with the input."""

    def embed_stream(self, blocks, source=None):
        kept = [b.samples.astype(np.float64) for b in blocks]
        return self.embed(Audio(np.concatenate(kept).astype(np.float32), self.sample_rate, source))


class FirstBlockOnly(Good):
    """Streams a file but embeds only its first block."""

    def embed_file(self, source, block_s=60.0):
        return self.embed(next(iter(stream(source, block_s))))


class CrashesOnShort(Good):
    def _embed_frames(self, x):
        if len(x) <= self.frame_length:
            raise IndexError("too short")
        return super()._embed_frames(x)


def test_good_embedder_passes_every_check():
    results = check_embedder(Good(), long_input_s=600)
    assert [r.name for r in results] == [n for n, _ in embedder_checks()]
    assert "embed_file" in [r.name for r in results]


def test_property_style_embedder_passes_and_matches_the_geometry_style():
    check_embedder(PropertyStyle(), long_input_s=60)
    a = Audio.from_array(np.random.default_rng(0).standard_normal(20000).astype(np.float32) * 0.1, 8000)
    ours, theirs = Good().embed(a), PropertyStyle().embed(a)
    np.testing.assert_array_equal(ours.vectors, theirs.vectors)  # the same frames through the same code
    np.testing.assert_array_equal(ours.timestamps, theirs.timestamps)
    assert (PropertyStyle().window_s, PropertyStyle().hop_s) == (Good().window_s, Good().hop_s) == (0.032, 0.016)


def test_a_class_without_frames_is_refused():
    class NoModel(FramedEmbedder):
        geometry = Good.geometry

    with pytest.raises(TypeError, match="_embed_frames"):
        NoModel()


@pytest.mark.parametrize(
    ("cls", "failing"),
    [
        (RandomOutput, "determinism"),
        (LeakyBatch, "batch_invariance"),
        (WrongDim, "shape_dtype"),
        (BackwardsTime, "monotone_timestamps"),
        (IgnoresRate, "sample_rates_and_stereo"),
        (Hoarder, "long_input"),
        (CrashesOnShort, "short_input"),
        (FirstBlockOnly, "embed_file"),
    ],
)
def test_broken_embedders_fail_the_right_check(cls, failing):
    with pytest.raises(AssertionError) as err:
        check_embedder(cls(), long_input_s=600, budget_mb=32)
    assert f"- {failing}:" in str(err.value), str(err.value)

"""The one framing helper: how every embedder cuts samples into model inputs, frames and timestamps."""

from __future__ import annotations

import numpy as np
import pytest

from audiovec import Audio
from audiovec.embedders import FrameGeometry, frame_count
from audiovec.embedders.framing import Framing, prepare_samples
from audiovec.errors import EmptyAudioError, NonFiniteAudioError

OVERLAPPING = Framing(hop=160, span=400, per_input=7)
CNN_WINDOWS = Framing(hop=320, span=400, per_input=5, isolated=True)
TOKEN_WINDOWS = Framing(hop=320, span=320, per_input=5, isolated=True, complete=False)
POOLED_WINDOWS = Framing(hop=1000, span=1000, per_input=1, isolated=True, complete=False)
CENTRED = Framing(hop=160, span=400, per_input=4, lead=200)
ALL = [OVERLAPPING, CNN_WINDOWS, TOKEN_WINDOWS, POOLED_WINDOWS, CENTRED]
LENGTHS = [1, 159, 400, 401, 1599, 1600, 1601, 3200, 4099]


def _streamed(framing: Framing, x: np.ndarray, rng: np.random.Generator):
    cutter = framing.cutter()
    out = []
    i = 0
    while i < len(x):
        n = int(rng.integers(0, 700))  # empty blocks included
        out.extend(cutter.feed(x[i : i + n]))
        i += n
    out.extend(cutter.finish())
    return out, cutter.total


@pytest.mark.parametrize("framing", ALL, ids=["overlapping", "cnn", "tokens", "pooled", "centred"])
@pytest.mark.parametrize("n", LENGTHS)
def test_streamed_cutting_equals_one_shot_cutting(framing, n):
    x = np.random.default_rng(n).standard_normal(n).astype(np.float32)
    whole = list(framing.cut(x))
    streamed, total = _streamed(framing, x, np.random.default_rng(n + 1))
    assert total == n
    assert [i.frames for i in whole] == [i.frames for i in streamed]
    for a, b in zip(whole, streamed, strict=True):
        np.testing.assert_array_equal(a.samples, b.samples)  # the same samples: copies, never arithmetic
    assert sum(i.frames for i in whole) == framing.count(n) == len(framing.timestamps(n))


@pytest.mark.parametrize("n", LENGTHS)
def test_overlapping_chunks_cover_every_frame_with_its_own_samples(n):
    x = np.arange(n, dtype=np.float32) + 1
    frames = []
    for item in OVERLAPPING.cut(x):
        assert len(item.samples) == (item.frames - 1) * 160 + 400  # whole frames, tail zero-padded
        frames.extend(np.lib.stride_tricks.sliding_window_view(item.samples, 400)[::160])
    padded = np.zeros((len(frames) - 1) * 160 + 400, np.float32)
    padded[:n] = x
    expected = np.lib.stride_tricks.sliding_window_view(padded, 400)[::160]
    np.testing.assert_array_equal(np.array(frames), expected)
    assert len(frames) == frame_count(n, 400, 160) == OVERLAPPING.count(n)


def test_isolated_windows_never_see_the_next_window():
    x = np.arange(1, 4100, dtype=np.float32)  # 4099 samples: two full 1600-sample windows and 899 samples
    items = list(CNN_WINDOWS.cut(x))
    assert [i.frames for i in items] == [5, 5, 3]  # 899 samples start 3 frames of 320 (400-sample span)
    assert [len(i.samples) for i in items] == [1680, 1680, 1040]  # zero-padded to complete the last frame
    np.testing.assert_array_equal(items[0].samples[:1600], x[:1600])
    assert not items[0].samples[1600:].any()  # the next window's samples stay out
    tokens = list(TOKEN_WINDOWS.cut(x))
    assert [i.frames for i in tokens] == [5, 5, 3] and [len(i.samples) for i in tokens] == [1600, 1600, 899]
    assert [i.frames for i in POOLED_WINDOWS.cut(x)] == [1, 1, 1, 1, 1]


def test_timestamps_are_centres_of_the_covered_part():
    np.testing.assert_allclose(OVERLAPPING.timestamps(500), [200.0, 330.0])  # [0, 400) and [160, 500)
    np.testing.assert_allclose(POOLED_WINDOWS.timestamps(2500), [500.0, 1500.0, 2250.0])
    # centred: frame j starts at j * hop - lead, clipped to the audio at both ends
    np.testing.assert_allclose(CENTRED.timestamps(1000)[:3], [100.0, 180.0, 320.0])  # [0, 200), [0, 360), [120, 520)
    assert CENTRED.count(1000) == frame_count(1200, 400, 160)


def test_the_lead_is_silence_before_the_audio():
    x = np.ones(1000, np.float32)
    first = next(iter(CENTRED.cut(x)))
    assert not first.samples[:200].any() and first.samples[200:].all()


def test_bad_framings_and_empty_input():
    with pytest.raises(ValueError, match="complete"):
        Framing(hop=10, span=20, per_input=2, complete=False)
    with pytest.raises(ValueError, match="invalid framing"):
        Framing(hop=0, span=20, per_input=2)
    with pytest.raises(EmptyAudioError):
        list(OVERLAPPING.cut(np.zeros(0, np.float32)))
    with pytest.raises(ValueError, match="dim"):
        FrameGeometry(16000, 400, 160, 0)
    with pytest.raises(ValueError, match="sample_rate"):
        FrameGeometry(16000.0, 400, 160, 4)  # type: ignore[arg-type]


def test_prepare_mixes_down_resamples_then_checks():
    stereo = np.random.default_rng(0).standard_normal((2, 4410)).astype(np.float32) * 0.1
    x = prepare_samples(Audio(stereo, 44100), 16000)
    assert x.ndim == 1 and len(x) == 1600
    with pytest.raises(EmptyAudioError):
        prepare_samples(Audio(np.zeros(0, np.float32), 16000), 16000)
    for bad in (np.nan, np.inf, -np.inf):
        y = stereo.copy()
        y[1, 100] = bad
        with pytest.raises(NonFiniteAudioError):
            prepare_samples(Audio(y, 44100, "bad"), 16000)
    # finite samples whose resampled values overflow float32 are caught too: the check comes after resampling
    huge = np.full(4410, 3.0e38, np.float32)
    huge[::2] = -3.0e38
    with pytest.raises(NonFiniteAudioError):
        prepare_samples(Audio(huge, 44100), 16000)


def test_streams_are_checked_after_resampling_too():
    from audiovec import get_embedder

    huge = np.full(44100, 3.0e38, np.float32)
    huge[::2] = -3.0e38  # finite, but its resampled values overflow float32
    with pytest.raises(NonFiniteAudioError):
        get_embedder("logmel").embed_stream([Audio(huge, 44100, "huge")])

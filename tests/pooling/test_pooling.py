"""Pooling and segment windowing against NumPy references."""

from __future__ import annotations

import numpy as np
import pytest

from audiovec import FrameEmbeddings, L2Normalize, Pipeline, Pool, Segments
from audiovec.errors import ConfigError
from audiovec.pooling import (
    l2_normalize,
    linear_concat,
    max_pool,
    mean_pool,
    mean_std_pool,
    pool,
    segment_bounds,
)

RNG = np.random.default_rng(0)


def frames(n: int, dim: int = 3, duration: float | None = None, hop: float = 0.5) -> FrameEmbeddings:
    v = RNG.standard_normal((n, dim)).astype(np.float32)
    ts = hop / 2 + np.arange(n) * hop
    return FrameEmbeddings(v, ts, duration if duration is not None else n * hop, hop, hop, "x", "test")


def test_basic_pooling_matches_numpy():
    v = RNG.standard_normal((7, 5)).astype(np.float32)
    np.testing.assert_allclose(mean_pool(v), v.mean(0), rtol=1e-6)
    np.testing.assert_array_equal(max_pool(v), v.max(0))
    np.testing.assert_allclose(mean_std_pool(v), np.concatenate([v.mean(0), v.std(0)]), rtol=1e-5)
    assert mean_std_pool(v[:1])[5:].tolist() == [0.0] * 5
    for out in (mean_pool(v), max_pool(v), mean_std_pool(v)):
        assert out.dtype == np.float32


def test_linear_concat_samples_evenly_including_ends():
    v = np.arange(100, dtype=np.float32)[:, None] * np.ones((1, 2), np.float32)
    out = linear_concat(v, n=5, normalize=False).reshape(5, 2)
    assert out[:, 0].tolist() == [0, 25, 50, 74, 99]  # rint(linspace(0, 99, 5)) = 0, 24.75, 49.5, 74.25, 99
    normed = linear_concat(v, n=5)
    assert normed.shape == (10,) and abs(np.linalg.norm(normed) - 1) < 1e-6


def test_linear_concat_seed_003_dimension_and_short_input():
    v = RNG.standard_normal((300, 512)).astype(np.float32)
    assert linear_concat(v, 64).shape == (32768,)
    short = np.arange(3, dtype=np.float32)[:, None] + 1
    out = linear_concat(short, n=7, normalize=False)
    assert out.tolist() == [1, 1, 2, 2, 2, 3, 3]  # frames repeated in order, first and last kept
    assert linear_concat(short[:1], n=4, normalize=False).tolist() == [1, 1, 1, 1]


def test_l2_normalize_and_zero_vector():
    x = np.array([[3, 4], [0, 0]], np.float32)
    np.testing.assert_allclose(l2_normalize(x, axis=1), [[0.6, 0.8], [0, 0]])


def test_pool_errors():
    with pytest.raises(ConfigError):
        pool(np.zeros((0, 3), np.float32), "mean")
    with pytest.raises(ConfigError):
        pool(np.zeros((2, 3), np.float32), "median")
    with pytest.raises(ConfigError):
        linear_concat(np.zeros((2, 3), np.float32), 0)


@pytest.mark.parametrize(
    ("duration", "window", "hop", "starts", "last_end"),
    [
        (600.0, 10.0, 5.0, np.arange(119) * 5.0, 600.0),
        (25.0, 10.0, None, [0.0, 10.0, 20.0], 25.0),
        (3.0, 10.0, 5.0, [0.0], 3.0),
        (20.0, 10.0, 10.0, [0.0, 10.0], 20.0),
    ],
)
def test_segment_bounds(duration, window, hop, starts, last_end):
    s, e = segment_bounds(duration, window, hop)
    np.testing.assert_allclose(s, starts)
    assert e[-1] == pytest.approx(last_end)
    assert np.all(e - s <= window + 1e-9)


def test_pipeline_whole_file_and_l2():
    fe = frames(10)
    out = Pipeline(steps=[Pool(mode="mean_std"), L2Normalize()])(fe)
    assert out.vectors.shape == (1, 6) and out.starts.tolist() == [0.0] and out.ends.tolist() == [5.0]
    ref = mean_std_pool(fe.vectors)
    np.testing.assert_allclose(out.vectors[0], ref / np.linalg.norm(ref), rtol=1e-5)


def test_pipeline_segments_pool_the_right_frames():
    fe = frames(20, hop=0.5)  # centres at 0.25, 0.75, ... 9.75 over 10 s
    out = Pipeline(steps=[Segments(window_s=2.0, hop_s=1.0), Pool(mode="max")])(fe)
    assert len(out) == 9
    np.testing.assert_allclose(out.starts, np.arange(9.0))
    # segment [3, 5) holds frame centres 3.25 .. 4.75 = frames 6..9
    np.testing.assert_array_equal(out.vectors[3], fe.vectors[6:10].max(0))


def test_segment_without_frame_centre_takes_nearest_frame():
    fe = frames(2, hop=1.0, duration=2.0)  # centres at 0.5 and 1.5
    out = Pipeline(steps=[Segments(window_s=0.2, hop_s=0.2), Pool()])(fe)
    assert len(out) == 10
    np.testing.assert_array_equal(out.vectors[0], fe.vectors[0])  # [0, 0.2) has no centre: nearest is frame 0
    np.testing.assert_array_equal(out.vectors[9], fe.vectors[1])


def test_pipeline_serialises_and_validates():
    p = Pipeline.parse("linear_concat:64+l2", segments="10:5")
    again = Pipeline.model_validate_json(p.model_dump_json())
    assert again == p
    assert p.output_dim(512) == 32768
    assert p.describe() == "segments(10s/5s)+linear_concat(64)+l2"
    for bad in ("median", "mean+l3", "linear_concat:x"):
        with pytest.raises(ConfigError):
            Pipeline.parse(bad)
    with pytest.raises(ValueError, match="exactly one 'pool'"):
        Pipeline(steps=[L2Normalize()])
    with pytest.raises(ValueError, match="order"):
        Pipeline(steps=[Pool(), Segments(window_s=1.0)])

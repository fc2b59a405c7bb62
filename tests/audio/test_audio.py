"""Audio I/O: formats, resampling, mono mix, offsets, streaming and every kind of bad input."""

from __future__ import annotations

import io
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audiovec import Audio, info, load, stream
from audiovec.errors import (
    AudioDecodeError,
    AudioError,
    AudioFileNotFoundError,
    AudiovecError,
    ConfigError,
    EmptyAudioError,
    InvalidSampleRateError,
    NonFiniteAudioError,
    UnsupportedFormatError,
)


def dominant_freq(x: np.ndarray, sr: int) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / sr)[np.argmax(spec)])


# ------------------------------------------------------------------ real files of every required format
@pytest.mark.parametrize(
    ("rel", "sr", "channels", "fmt"),
    [
        ("data/fsdd/0_george_0.flac", 8000, 1, "FLAC"),
        ("data/librosa/pibble.ogg", 22050, 1, "OGG"),
        ("data/music/jamendo_11266_query_69s-89s.mp3", 44100, 2, "MP3"),
        ("data/drums/kick/audiophob__kick__l0.flac", 16000, 1, "FLAC"),
    ],
)
def test_load_real_formats(shared_file, rel, sr, channels, fmt):
    path = shared_file(rel)
    meta = info(path)
    assert (meta.sample_rate, meta.channels, meta.format) == (sr, channels, fmt)
    audio = load(path)
    assert audio.samples.dtype == np.float32 and audio.samples.ndim == 1
    assert audio.sample_rate == sr
    # libsndfile estimates an MP3's frame count from its header; decoding drops the encoder padding
    assert abs(audio.duration - meta.duration) < (0.1 if fmt == "MP3" else 1e-6)
    assert np.abs(audio.samples).max() <= 1.0
    assert np.abs(audio.samples).max() > 0.01, "decoded silence"
    assert audio.source == str(path)


def test_load_wav_written_here(sine_wav):
    path = sine_wav(freq=1000, sr=44100, seconds=0.5, channels=2)
    stereo = load(path, mono=False)
    assert stereo.samples.shape == (2, 22050) and stereo.channels == 2
    mono = load(path)
    np.testing.assert_allclose(mono.samples, stereo.samples.mean(axis=0), atol=1e-6)


def test_mp3_stereo_downmix_matches_channel_mean(shared_file):
    path = shared_file("data/music/jamendo_11266_query_69s-89s.mp3")
    stereo = load(path, mono=False, duration=2.0)
    mono = load(path, duration=2.0)
    assert stereo.channels == 2
    np.testing.assert_allclose(mono.samples, stereo.samples.mean(axis=0), atol=1e-6)
    # mixed while decoding (from the interleaved frames) or afterwards: the very same samples
    np.testing.assert_array_equal(mono.samples, stereo.to_mono().samples)
    streamed = np.concatenate([b.samples for b in stream(path, 0.37, duration=2.0)])
    np.testing.assert_array_equal(streamed, mono.samples)
    three = Audio(np.stack([stereo.samples[0], stereo.samples[1], -stereo.samples[0]]), stereo.sample_rate)
    np.testing.assert_allclose(three.to_mono().samples, stereo.samples[1] / 3, atol=1e-6)


def test_resample_keeps_pitch_and_level(sine_wav):
    path = sine_wav(freq=1000, sr=44100, seconds=1.0, amp=0.5)
    a = load(path, sr=16000)
    assert a.sample_rate == 16000 and abs(a.num_samples - 16000) <= 1
    assert abs(dominant_freq(a.samples, 16000) - 1000) < 2
    core = a.samples[1000:-1000]
    assert abs(np.sqrt(np.mean(core**2)) - 0.5 / np.sqrt(2)) < 0.005


def test_resample_removes_content_above_new_nyquist(sine_wav):
    # 7 kHz cannot exist at 8 kHz sampling: a good resampler removes it instead of aliasing it to 1 kHz
    path = sine_wav(freq=7000, sr=44100, seconds=1.0, amp=0.5)
    a = load(path, sr=8000)
    assert np.sqrt(np.mean(a.samples[500:-500] ** 2)) < 0.005


def test_offset_and_duration(sine_wav):
    path = sine_wav(seconds=2.0, sr=16000)
    part = load(path, offset=0.5, duration=0.25)
    assert part.num_samples == 4000 and part.offset == 0.5
    full = load(path)
    np.testing.assert_array_equal(part.samples, full.samples[8000:12000])


def test_bytes_and_file_object_sources(shared_file):
    path = shared_file("data/fsdd/3_jackson_7.flac")
    data = path.read_bytes()
    ref = load(path).samples
    np.testing.assert_array_equal(load(data).samples, ref)
    np.testing.assert_array_equal(load(io.BytesIO(data)).samples, ref)
    assert load(data).source.startswith("<bytes")


class _Unseekable(io.RawIOBase):
    def __init__(self, data: bytes) -> None:
        self._buf = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[override]
        chunk = self._buf.read(len(b))
        b[: len(chunk)] = chunk
        return len(chunk)


def test_unseekable_stream_source(sine_wav):
    data = sine_wav().read_bytes()
    a = load(io.BufferedReader(_Unseekable(data)))
    assert a.num_samples == 16000


def test_audio_from_array_and_slice():
    a = Audio.from_array(np.ones((2, 100)), 1000)
    assert a.channels == 2 and a.duration == 0.1
    b = a.slice(0.02, 0.05)
    assert b.num_samples == 30 and b.offset == pytest.approx(0.02)
    assert a.to_mono().samples.shape == (100,)
    assert Audio.from_array(np.ones((100, 2)), 1000, channels_first=False).channels == 2
    with pytest.raises(ConfigError):
        Audio.from_array(np.ones((2, 2, 2)), 1000)
    with pytest.raises(InvalidSampleRateError):
        Audio.from_array(np.ones(10), 5)


# ------------------------------------------------------------------ streaming
@pytest.mark.parametrize("sr", [None, 16000])
def test_stream_concatenation_equals_load(shared_file, sr):
    path = shared_file("data/librosa/pibble.ogg")
    blocks = list(stream(path, block_s=3.7, sr=sr))
    assert len(blocks) > 5
    whole = load(path, sr=sr)
    cat = np.concatenate([b.samples for b in blocks])
    assert abs(len(cat) - whole.num_samples) <= 1
    n = min(len(cat), whole.num_samples)
    np.testing.assert_allclose(cat[:n], whole.samples[:n], atol=2e-4)
    starts = [b.offset for b in blocks]
    np.testing.assert_allclose(np.diff(starts)[:-1], 3.7, atol=1e-3)
    assert all(b.sample_rate == whole.sample_rate for b in blocks)


def test_stream_offset_and_duration(sine_wav):
    path = sine_wav(seconds=3.0)
    blocks = list(stream(path, block_s=0.5, offset=1.0, duration=1.2))
    assert sum(b.num_samples for b in blocks) == 19200
    assert blocks[0].offset == 1.0 and blocks[-1].offset == pytest.approx(2.0)


def test_stream_one_hour_file_with_bounded_memory(tmp_path):
    path = tmp_path / "hour.wav"
    sr = 16000
    rng = np.random.default_rng(0)
    with sf.SoundFile(path, "w", sr, 1, subtype="PCM_16") as f:
        for _ in range(60):
            f.write((0.1 * rng.standard_normal(sr * 60)).astype(np.float32))
    assert path.stat().st_size > 100e6
    tracemalloc.start()
    total = 0
    n_blocks = 0
    for block in stream(path, block_s=30.0, sr=8000):
        total += block.num_samples
        n_blocks += 1
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert total == 3600 * 8000
    assert n_blocks == 120
    # the file decodes to 230 MB of float32; a 30 s block at 16 kHz is 1.9 MB
    assert peak < 16 * 2**20, f"peak traced memory {peak / 2**20:.1f} MiB"


# ------------------------------------------------------------------ bad input gets a typed error naming the source
def _expect(exc: type[AudioError], source, *, contains: str = "") -> AudioError:
    with pytest.raises(exc) as err:
        load(source)
    assert isinstance(err.value, AudiovecError)
    if isinstance(source, (str, Path)):
        assert str(source) in str(err.value), "the message must name the source"
    assert contains in str(err.value)
    return err.value


def test_missing_file(tmp_path):
    e = _expect(AudioFileNotFoundError, tmp_path / "nope.wav")
    assert isinstance(e, FileNotFoundError)


def test_truncated_flac(tmp_path, shared_file):
    data = shared_file("data/fsdd/0_george_0.flac").read_bytes()
    bad = tmp_path / "truncated.flac"
    bad.write_bytes(data[: len(data) // 2])
    _expect(AudioDecodeError, bad, contains="corrupt or truncated")


def test_random_bytes_named_wav(tmp_path):
    bad = tmp_path / "noise.wav"
    bad.write_bytes(np.random.default_rng(1).bytes(4096))
    e = _expect(AudioDecodeError, bad, contains="not decodable")
    assert not isinstance(e, UnsupportedFormatError)


def test_empty_file(tmp_path):
    bad = tmp_path / "empty.flac"
    bad.write_bytes(b"")
    _expect(EmptyAudioError, bad, contains="0 bytes")


def test_wav_header_without_data(tmp_path):
    bad = tmp_path / "header_only.wav"
    sf.write(bad, np.zeros(0, np.float32), 16000)
    assert bad.stat().st_size == 44
    _expect(EmptyAudioError, bad, contains="zero samples")


def test_nan_and_inf_samples(tmp_path):
    bad = tmp_path / "nan.wav"
    sf.write(bad, np.array([0.0, np.nan, 0.1, np.inf], np.float32), 16000, subtype="FLOAT")
    _expect(NonFiniteAudioError, bad, contains="2 NaN or infinite")
    with pytest.raises(NonFiniteAudioError):
        list(stream(bad, block_s=1.0))


@pytest.mark.parametrize("rate", [0, 5, 4_000_000_000])
def test_absurd_sample_rate_in_header(tmp_path, rate):
    path = tmp_path / "rate.wav"
    sf.write(path, np.zeros(100, np.int16), 16000, subtype="PCM_16")
    raw = bytearray(path.read_bytes())
    struct.pack_into("<I", raw, 24, rate)
    path.write_bytes(bytes(raw))
    _expect(InvalidSampleRateError, path, contains="implausible sample rate")


def test_unsupported_container(tmp_path):
    fake_m4a = tmp_path / "song.m4a"
    fake_m4a.write_bytes(b"\x00\x00\x00\x20ftypM4A \x00\x00\x02\x00" + bytes(200))
    _expect(UnsupportedFormatError, fake_m4a, contains="ffmpeg")


def test_directory_and_bad_arguments(tmp_path, sine_wav):
    _expect(AudioDecodeError, tmp_path)
    path = sine_wav(seconds=1.0)
    with pytest.raises(EmptyAudioError, match="past the end"):
        load(path, offset=5.0)
    with pytest.raises(ConfigError):
        load(path, offset=-1)
    with pytest.raises(ConfigError):
        load(path, duration=0)
    with pytest.raises(ConfigError):
        load(path, sr=3)
    with pytest.raises(ConfigError):
        load(12345)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        next(stream(path, block_s=0))

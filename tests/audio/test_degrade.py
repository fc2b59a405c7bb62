"""Degradations: each does what its spec says (SNR, pass band, length, gain, codecs), the spec language, seeding."""

from __future__ import annotations

import math

import numpy as np
import pytest

from audiovec.audio import Audio
from audiovec.audio import degrade as dg
from audiovec.audio.degrade import (
    DEFAULT_CONDITIONS,
    FAMILIES,
    GSM,
    MP3,
    BandPass,
    Clean,
    Excerpt,
    Gain,
    Noise,
    codec_available,
    parse_condition,
    parse_conditions,
    snr_db,
)
from audiovec.errors import ConfigError, MissingDependencyError
from ci import skip_or_fail


@pytest.fixture
def mp3_codec() -> None:
    if not codec_available("mp3"):
        skip_or_fail("the installed libsndfile cannot encode MP3 (soundfile wheels bundle one that can)")


@pytest.fixture
def gsm_codec() -> None:
    if not codec_available("gsm"):
        skip_or_fail("the installed libsndfile cannot encode GSM 6.10 in WAV")


needs_mp3 = pytest.mark.usefixtures("mp3_codec")
needs_gsm = pytest.mark.usefixtures("gsm_codec")


def voiced(sr: int = 16000, seconds: float = 2.0, amp: float = 0.3) -> np.ndarray:
    """A speech-like test signal: harmonics of 150 Hz, amplitude-modulated at 4 Hz."""
    t = np.arange(round(sr * seconds)) / sr
    x = sum(np.sin(2 * np.pi * 150 * h * t) / h for h in range(1, 16) if 150 * h < sr / 2)
    x = x * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t))
    return (amp * x / np.max(np.abs(x))).astype(np.float32)


def audio(x: np.ndarray, sr: int = 16000) -> Audio:
    return Audio.from_array(x, sr, "test.wav")


def band_power(x: np.ndarray, sr: int, lo: float, hi: float) -> float:
    spec = np.abs(np.fft.rfft(x.astype(np.float64))) ** 2
    f = np.fft.rfftfreq(len(x), 1 / sr)
    return float(spec[(f >= lo) & (f < hi)].sum())


def lag_of(y: np.ndarray, x: np.ndarray) -> int:
    """The delay of ``y`` relative to ``x`` (samples) at the cross-correlation peak."""
    n = len(x) + len(y)
    xc = np.fft.irfft(np.fft.rfft(y, n) * np.conj(np.fft.rfft(x, n)), n)
    lag = int(np.argmax(xc))
    return lag if lag < n // 2 else lag - n


# ------------------------------------------------------------------ the spec language
@pytest.mark.parametrize(
    ("spec", "cls", "family", "level", "value"),
    [
        ("clean", Clean, "clean", "clean", math.nan),
        ("noise:10", Noise, "noise", "10 dB SNR", 10.0),
        ("noise:-5", Noise, "noise", "-5 dB SNR", -5.0),
        ("pink:2.5", Noise, "pink", "2.5 dB SNR", 2.5),
        ("mp3:64", MP3, "mp3", "64 kbit/s", 64.0),
        ("gsm", GSM, "gsm", "13 kbit/s", 13.0),
        ("bandpass:300-3400", BandPass, "bandpass", "300-3400 Hz", 3100.0),
        ("excerpt:2", Excerpt, "excerpt", "2 s", 2.0),
        ("excerpt:0.5:centre", Excerpt, "excerpt", "0.5 s, centre", 0.5),
        ("gain:-20", Gain, "gain", "-20 dB", -20.0),
        ("gain:6", Gain, "gain", "+6 dB", 6.0),
    ],
)
def test_specs_parse_into_conditions_with_family_level_and_value(spec, cls, family, level, value):
    c = parse_condition(spec)
    assert isinstance(c, cls)
    assert (c.family, c.level) == (family, level)
    assert c.level_value == value or (math.isnan(value) and math.isnan(c.level_value))
    assert str(c) == c.spec == spec
    assert parse_condition(c.spec) == c
    assert c.title


def test_spec_parsing_ignores_case_and_spaces_and_accepts_objects():
    assert parse_condition(" MP3 : 64 ") == MP3(64)
    assert parse_condition("excerpt:3:start") == Excerpt(3.0) and str(Excerpt(3.0)) == "excerpt:3"
    assert parse_condition("excerpt:3:center") == Excerpt(3.0, "centre")
    assert parse_condition(Gain(-3.0)) == Gain(-3.0)
    assert parse_conditions("noise:10, gsm") == [Noise(10.0), GSM()]
    assert parse_condition("pink:0") == Noise(0.0, "pink") != Noise(0.0)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("reverb:1", "unknown degradation"),
        ("noise", "noise:SNR_DB"),
        ("noise:loud", "noise:SNR_DB"),
        ("mp3:65", "MP3 bitrate must be one of"),
        ("mp3:64k", "mp3:KBPS"),
        ("gsm:13", "write it as gsm"),
        ("clean:1", "write it as clean"),
        ("bandpass:3400-300", "0 < low < high"),
        ("bandpass:0-3400", "0 < low < high"),
        ("bandpass:300", "LOW-HIGH"),
        ("excerpt:0", "positive length"),
        ("excerpt:2:end", "excerpt:SECONDS"),
        ("gain:", "gain:DB"),
    ],
)
def test_malformed_specs_raise_config_errors_that_show_the_form(spec, message):
    with pytest.raises(ConfigError, match=message):
        parse_condition(spec)


def test_a_condition_listed_twice_and_a_non_string_are_refused():
    with pytest.raises(ConfigError, match="listed twice"):
        parse_conditions(["noise:10", "noise:10.0"])
    with pytest.raises(ConfigError, match="written as a string"):
        parse_condition(10)  # type: ignore[arg-type]


def test_default_conditions_cover_every_family_at_several_levels():
    conds = parse_conditions(None)
    assert [c.spec for c in conds] == list(DEFAULT_CONDITIONS)
    by_family: dict[str, list[float]] = {}
    for c in conds:
        by_family.setdefault(c.family, []).append(c.level_value)
    assert set(by_family) == set(FAMILIES) - {"clean"}
    for family, values in by_family.items():
        assert len(values) >= (1 if family == "gsm" else 3), family
        assert len(set(values)) == len(values)


# ------------------------------------------------------------------ noise
@pytest.mark.parametrize("colour", ["white", "pink"])
@pytest.mark.parametrize("snr", [-5.0, 0.0, 10.0, 30.0])
def test_noise_is_added_at_the_target_snr(colour, snr):
    x = voiced(amp=0.05)  # quiet enough that the mixture never reaches full scale
    a = audio(x)
    y = Noise(snr, colour)(a, seed=1, key="a.wav")
    assert y.sample_rate == a.sample_rate and y.samples.shape == x.shape and y.samples.dtype == np.float32
    assert abs(snr_db(x, y.samples.astype(np.float64) - x) - snr) < 0.1


def test_noise_on_stereo_audio_keeps_the_layout_and_the_snr():
    x = np.stack([voiced(amp=0.05), voiced(amp=0.02)[::-1]])
    y = Noise(6.0)(audio(x), seed=0, key="s").samples
    assert y.shape == x.shape
    assert abs(snr_db(x, y - x) - 6.0) < 0.1
    assert not np.allclose(y[0] - x[0], y[1] - x[1])  # independent noise per channel


def test_a_mixture_that_would_clip_is_scaled_down_with_its_snr_kept():
    x = voiced(amp=0.9)
    y = Noise(0.0)(audio(x), seed=0, key="loud").samples.astype(np.float64)
    assert math.isclose(float(np.max(np.abs(y))), 0.99, rel_tol=1e-6)
    g = float(np.dot(y, x) / np.dot(x, x))  # input and noise are scaled alike (the noise is nearly orthogonal)
    assert 0.3 < g < 0.99
    assert abs(snr_db(g * x, y - g * x) - 0.0) < 0.2


def test_pink_noise_falls_3_db_per_octave_and_white_noise_is_flat():
    rng = np.random.default_rng(0)
    sr, n = 16000, 1 << 17
    for colour, slope in (("white", 0.0), ("pink", -1.0)):
        z = dg.make_noise(rng, n, colour)  # type: ignore[arg-type]
        spec = np.abs(np.fft.rfft(z)) ** 2
        f = np.fft.rfftfreq(n, 1 / sr)
        band = (f > 50) & (f < 6000)
        fit = np.polyfit(np.log10(f[band]), np.log10(spec[band]), 1)[0]
        assert abs(fit - slope) < 0.1, (colour, fit)


def test_noise_is_seeded_per_item_and_shared_across_levels():
    a = audio(voiced(amp=0.05))
    one = Noise(10.0)(a, seed=3, key="x/a.wav").samples
    assert np.array_equal(one, Noise(10.0)(a, seed=3, key="x/a.wav").samples)
    assert not np.allclose(one, Noise(10.0)(a, seed=4, key="x/a.wav").samples)
    assert not np.allclose(one, Noise(10.0)(a, seed=3, key="x/b.wav").samples)
    assert not np.allclose(one - a.samples, Noise(10.0, "pink")(a, seed=3, key="x/a.wav").samples - a.samples)
    # the same noise at another SNR, 10 dB louder
    louder = Noise(0.0)(a, seed=3, key="x/a.wav").samples
    np.testing.assert_allclose(louder - a.samples, (one - a.samples) * 10**0.5, atol=2e-6)


def test_noise_on_silence_adds_nothing():
    a = audio(np.zeros(1600, np.float32))
    assert np.array_equal(Noise(0.0)(a, key="s").samples, a.samples)


def test_mix_at_snr_refuses_different_shapes():
    with pytest.raises(ConfigError, match="shapes"):
        dg.mix_at_snr(np.zeros(3), np.zeros(4), 0.0)


# ------------------------------------------------------------------ band-pass
def test_bandpass_keeps_the_pass_band_and_removes_the_rest():
    sr = 16000
    x = (0.1 * np.random.default_rng(0).standard_normal(sr * 4)).astype(np.float32)
    y = BandPass(300, 3400)(audio(x, sr)).samples
    assert y.shape == x.shape
    for lo, hi in ((0, 200), (3600, 8000)):
        drop = 10 * math.log10(band_power(y, sr, lo, hi) / band_power(x, sr, lo, hi))
        assert drop < -40, (lo, hi, drop)
    kept = 10 * math.log10(band_power(y, sr, 400, 3300) / band_power(x, sr, 400, 3300))
    assert abs(kept) < 0.2


def test_bandpass_has_no_delay_and_keeps_an_in_band_tone():
    sr = 22050
    t = np.arange(sr) / sr
    x = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    x[5000] += 0.5  # a click, to locate the delay
    y = BandPass(300, 3400)(audio(x, sr)).samples
    assert lag_of(y, x) == 0
    mid = slice(sr // 4, 3 * sr // 4)
    assert abs(np.std(y[mid]) / np.std(x[mid]) - 1) < 0.05


def test_bandpass_above_nyquist_is_a_highpass_and_a_lower_edge_above_it_is_refused():
    sr = 8000
    x = (0.1 * np.random.default_rng(1).standard_normal(sr * 2)).astype(np.float32)
    y = BandPass(300, 5000)(audio(x, sr)).samples
    assert band_power(y, sr, 0, 200) < 1e-4 * band_power(x, sr, 0, 200)
    assert abs(10 * math.log10(band_power(y, sr, 400, 3900) / band_power(x, sr, 400, 3900))) < 0.2
    with pytest.raises(ConfigError, match="Nyquist"):
        BandPass(5000, 6000)(audio(x, sr))


def test_bandpass_filters_each_channel():
    sr = 16000
    rng = np.random.default_rng(2)
    x = (0.1 * rng.standard_normal((2, sr))).astype(np.float32)
    y = BandPass(300, 3400)(audio(x, sr)).samples
    assert y.shape == x.shape
    np.testing.assert_allclose(y[1], BandPass(300, 3400)(audio(x[1], sr)).samples, atol=1e-6)


# ------------------------------------------------------------------ excerpt, gain
def test_excerpts_take_the_start_or_the_centre():
    sr = 1000
    x = np.arange(5000, dtype=np.float32) / 5000
    a = Audio(x, sr, "t", offset=10.0)
    first = Excerpt(2.0)(a)
    assert first.num_samples == 2000 and first.offset == 10.0 and first.samples[0] == x[0]
    mid = Excerpt(2.0, "centre")(a)
    assert mid.num_samples == 2000 and mid.offset == pytest.approx(11.5)
    assert np.array_equal(mid.samples, x[1500:3500])
    assert Excerpt(9.0)(a).num_samples == 5000  # shorter audio is kept whole
    stereo = Excerpt(1.0, "centre")(audio(np.stack([x, -x]), sr))
    assert stereo.samples.shape == (2, 1000)


def test_gain_scales_and_clips_at_full_scale():
    x = voiced(amp=0.5)
    quiet = Gain(-20.0)(audio(x)).samples
    np.testing.assert_allclose(quiet, x * 0.1, rtol=1e-6)
    loud = Gain(20.0)(audio(x)).samples
    assert float(np.max(np.abs(loud))) == 1.0
    assert np.mean(np.abs(loud) == 1.0) > 0.3  # clipped, not rescaled
    small = np.abs(x) < 0.05
    np.testing.assert_allclose(loud[small], x[small] * 10.0, rtol=1e-5)
    same = audio(x)
    assert Gain(0.0)(same) is same


# ------------------------------------------------------------------ codecs
@needs_mp3
@pytest.mark.parametrize(("sr", "kbps"), [(16000, 32), (16000, 64), (22050, 128), (44100, 64), (44100, 320)])
def test_mp3_output_decodes_at_the_input_rate_and_length_aligned_and_changed(sr, kbps):
    x = voiced(sr, 3.0)
    y = MP3(kbps)(audio(x, sr))
    assert y.sample_rate == sr and y.samples.shape == x.shape and y.samples.dtype == np.float32
    assert float(np.max(np.abs(y.samples - x))) > 1e-4  # coded, not copied
    assert lag_of(y.samples, x) == 0
    assert np.corrcoef(y.samples, x)[0, 1] > 0.9


@needs_mp3
def test_mp3_bitrate_is_the_one_asked_for_and_lower_bitrates_lose_more():
    sr = 44100
    x = (voiced(sr, 4.0) + 0.02 * np.random.default_rng(0).standard_normal(sr * 4)).astype(np.float32)
    for kbps in (32, 64, 128):
        size = len(MP3(kbps).encode(x, sr))
        assert abs(size * 8 / 4.0 / 1000 - kbps) / kbps < 0.1, (kbps, size)
    err = {kbps: float(np.mean((MP3(kbps)(audio(x, sr)).samples - x) ** 2)) for kbps in (32, 128)}
    assert err[32] > 2 * err[128]


@needs_mp3
def test_mp3_of_a_rate_it_cannot_carry_goes_through_the_nearest_rate():
    assert MP3(320).encoding_rate(16000) == 32000
    assert MP3(160).encoding_rate(8000) == 16000
    assert MP3(8).encoding_rate(44100) == 24000
    assert MP3(64).encoding_rate(96000) == 48000
    assert MP3(64).encoding_rate(22050) == 22050
    x = voiced(96000, 1.0)
    y = MP3(128)(audio(x, 96000))
    assert y.sample_rate == 96000 and y.num_samples == len(x) and lag_of(y.samples, x) == 0
    stereo = MP3(128)(audio(np.stack([x, 0.5 * x]), 96000)).samples
    assert stereo.shape == (2, len(x))
    x = voiced(16000, 1.0)
    three = MP3(64)(audio(np.stack([x, 0.5 * x, -x]), 16000)).samples  # more channels than MP3 carries
    assert three.shape == (3, len(x)) and np.corrcoef(three[2], -x)[0, 1] > 0.9


@needs_gsm
@pytest.mark.parametrize("sr", [8000, 16000, 44100])
def test_gsm_output_is_mono_at_the_input_rate_and_length_and_telephone_band(sr):
    x = voiced(sr, 2.0)
    a = audio(np.stack([x, x]), sr)
    y = GSM()(a)
    assert y.channels == 1 and y.sample_rate == sr and y.num_samples == len(x)
    assert not np.allclose(y.samples, x, atol=1e-3)
    assert np.corrcoef(y.samples, x)[0, 1] > 0.8
    assert abs(lag_of(y.samples, x)) <= 1
    if sr > 8000:
        assert band_power(y.samples, sr, 4100, sr / 2) < 1e-3 * band_power(y.samples, sr, 0, sr / 2)


def test_a_missing_codec_raises_missing_dependency_with_the_install_hint(monkeypatch):
    monkeypatch.setattr(dg.sf, "available_formats", lambda: {"WAV": "WAV"})
    monkeypatch.setattr(dg.sf, "available_subtypes", lambda fmt=None: {"PCM_16": "PCM"})
    assert not codec_available("mp3") and not codec_available("gsm")
    for cond in (MP3(64), GSM()):
        with pytest.raises(MissingDependencyError, match=r"pip install .*soundfile"):
            cond(audio(voiced()))

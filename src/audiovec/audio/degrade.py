"""Degradations of audio: noise at an SNR, MP3 and GSM codecs, band-pass, shorter excerpts and gain.

Each degradation is a small frozen object that takes :class:`~audiovec.audio.Audio` and returns degraded
:class:`~audiovec.audio.Audio` at the **same sample rate** (codecs that work at another rate resample there and
back). They are what a query goes through on its way to a search engine: a noisy room, a phone line, a compressed
upload, a few seconds recorded, a quiet or an overdriven input. Random ones (noise) draw from a generator seeded by
``(seed, family, key)``, where ``key`` names the item (a file name, say): the same item gets the same noise on every
run and in every process, and the same noise at every SNR of one family (only its level changes), so the points of
a curve differ by the level alone.

Conditions are written in a small spec language, one string per condition, parsed by :func:`parse_condition`:

=========================  ====================  =====================================================  ==============
spec                       family                what it does                                           ``level_value``
=========================  ====================  =====================================================  ==============
``clean``                  ``clean``             nothing                                                NaN
``noise:10``               ``noise``             white noise at 10 dB SNR                               SNR in dB
``pink:10``                ``pink``              pink (1/f) noise at 10 dB SNR                          SNR in dB
``mp3:64``                 ``mp3``               MP3 (LAME, constant bitrate) at 64 kbit/s              kbit/s
``gsm``                    ``gsm``               GSM 06.10 full-rate speech codec (8 kHz, 13 kbit/s)    13
``bandpass:300-3400``      ``bandpass``          band-pass 300–3400 Hz (a telephone line)               bandwidth, Hz
``excerpt:2``              ``excerpt``           the first 2 s (``excerpt:2:centre``: the middle 2 s)   seconds
``gain:-20``               ``gain``              20 dB quieter; positive gains clip at full scale       dB
=========================  ====================  =====================================================  ==============

A condition's :attr:`~Degradation.family` names its curve, :attr:`~Degradation.level` is a readable level
(``"10 dB SNR"``) and :attr:`~Degradation.level_value` the number for the curve's x-axis; ``str(condition)`` is its
canonical spec. :data:`DEFAULT_CONDITIONS` covers every family at a few levels.

Exactly what each one does:

* **noise / pink**: noise scaled so that the power of the input over the power of the noise, over the whole clip and
  all channels, is the SNR (an input with no power gets no noise). White noise is Gaussian; pink noise is Gaussian
  noise shaped to a 1/f power spectrum in the frequency domain (:func:`make_noise`). When the mixture would exceed
  full scale it is scaled down (input and noise alike, so the SNR is kept) to a peak of 0.99.
* **mp3**: encoded and decoded by libsndfile (LAME and mpg123, bundled with the ``soundfile`` wheels), constant
  bitrate. Audio whose sample rate MP3 cannot carry at that bitrate is resampled to the nearest MP3 rate that
  can (8–24 kHz for 8–160 kbit/s, 32–48 kHz for 32–320 kbit/s) and back. The encoder's delay and padding are
  removed, so the output lines up with the input sample for sample.
* **gsm**: mixed to mono, resampled to 8 kHz, encoded and decoded as GSM 06.10 in WAV (libsndfile), resampled back.
  The output is mono.
* **bandpass**: a linear-phase (zero-delay) windowed-sinc FIR filter with 80 dB stop-band attenuation and a
  transition band of a quarter of the lower edge (at most 100 Hz). An upper edge at or above the Nyquist frequency
  makes it a high-pass filter.
* **excerpt**: the first (``start``) or middle (``centre``) ``seconds`` of the audio; shorter audio is kept whole.
  The excerpt's :attr:`~audiovec.audio.Audio.offset` says where it starts.
* **gain**: samples scaled by ``10 ** (dB / 20)`` and clipped to [-1, 1], as a fixed-point chain would.

Codecs and clipping both clip the input to [-1, 1] first, as a real encoder's fixed-point input would.

Example:
    >>> import numpy as np
    >>> from audiovec.audio import Audio
    >>> from audiovec.audio.degrade import parse_condition
    >>> cond = parse_condition("noise:10")
    >>> cond.family, cond.level, cond.level_value, str(cond)
    ('noise', '10 dB SNR', 10.0, 'noise:10')
    >>> tone = Audio.from_array(0.3 * np.sin(np.linspace(0, 2000, 16000)).astype(np.float32), 16000)
    >>> noisy = cond(tone, seed=0, key="tone.wav")
    >>> round(snr_db(tone.samples, noisy.samples - tone.samples), 1)
    10.0
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import logging
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import soundfile as sf
from numpy.typing import NDArray

from audiovec.audio._io import Audio, resample
from audiovec.errors import AudioDecodeError, ConfigError, MissingDependencyError

__all__ = [
    "DEFAULT_CONDITIONS",
    "FAMILIES",
    "GSM",
    "MP3",
    "MP3_BITRATES",
    "BandPass",
    "Clean",
    "Degradation",
    "Excerpt",
    "Gain",
    "Noise",
    "codec_available",
    "item_rng",
    "make_noise",
    "mix_at_snr",
    "parse_condition",
    "parse_conditions",
    "snr_db",
]

log = logging.getLogger(__name__)

#: Every condition family, in the order curves are shown.
FAMILIES: tuple[str, ...] = ("clean", "noise", "pink", "mp3", "gsm", "bandpass", "excerpt", "gain")

#: The conditions a robustness run uses by default: every family at a few levels (21 conditions).
DEFAULT_CONDITIONS: tuple[str, ...] = (
    "noise:20",
    "noise:10",
    "noise:0",
    "pink:20",
    "pink:10",
    "pink:0",
    "mp3:128",
    "mp3:64",
    "mp3:32",
    "gsm",
    "bandpass:50-7000",
    "bandpass:300-3400",
    "bandpass:500-2000",
    "excerpt:4",
    "excerpt:2",
    "excerpt:1",
    "excerpt:0.5",
    "gain:-40",
    "gain:-20",
    "gain:10",
    "gain:20",
)

#: The bitrates (kbit/s) MPEG-1 Layer III allows (sample rates 32, 44.1 and 48 kHz).
_MPEG1_BITRATES = (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
#: The bitrates (kbit/s) MPEG-2 and 2.5 Layer III allow (sample rates 8 to 24 kHz).
_MPEG2_BITRATES = (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)
#: Every bitrate (kbit/s) an ``mp3:`` condition accepts.
MP3_BITRATES: tuple[int, ...] = tuple(sorted(set(_MPEG1_BITRATES) | set(_MPEG2_BITRATES)))
_MPEG1_RATES = (32000, 44100, 48000)
_MPEG2_RATES = (8000, 11025, 12000, 16000, 22050, 24000)
#: LAME's encoder delay (576) plus the decoder's (529): what is removed when the file carries no gapless header.
_MP3_DELAY = 1105
_GSM_RATE = 8000
_INSTALL_HINT = (
    "libsndfile with MP3 and GSM 6.10 support is bundled with the soundfile wheels (soundfile >= 0.12.1 on "
    "Linux, macOS and Windows); reinstall it with: pip install --force-reinstall 'soundfile>=0.12.1'. A "
    "soundfile linked to a system libsndfile older than 1.1 cannot encode MP3."
)


# --------------------------------------------------------------------------------------------- building blocks
def item_rng(seed: int, *parts: str) -> np.random.Generator:
    """A generator seeded by ``seed`` and strings (a family, an item key): the same on every run and process.

    The strings are hashed with BLAKE2b (Python's ``hash`` of a string changes from one process to the next).
    """
    words = [int(seed) & 0xFFFFFFFFFFFFFFFF]
    for part in parts:
        words.append(int.from_bytes(hashlib.blake2b(part.encode("utf-8"), digest_size=8).digest(), "little"))
    return np.random.default_rng(words)


def make_noise(rng: np.random.Generator, n: int, colour: Literal["white", "pink"] = "white") -> NDArray[np.float64]:
    """``n`` samples of Gaussian noise, white or pink (1/f power), drawn from ``rng``; float64, unit-free.

    Pink noise is white noise of length ``m`` (the next fast FFT length at or above ``n``) whose spectrum is
    divided by the square root of the frequency bin (the DC bin by one), cut to ``n`` samples.
    """
    if colour == "white":
        out: NDArray[np.float64] = rng.standard_normal(n)
        return out
    if colour != "pink":
        raise ConfigError(f"noise colour must be 'white' or 'pink', got {colour!r}")
    import scipy.fft

    m = scipy.fft.next_fast_len(n, real=True)  # an FFT of a prime length is 100x slower
    spec = scipy.fft.rfft(rng.standard_normal(m))
    f = np.arange(len(spec), dtype=np.float64)
    f[0] = 1.0
    pink: NDArray[np.float64] = scipy.fft.irfft(spec / np.sqrt(f), m)[:n]
    return pink


def mix_at_snr(signal: NDArray[Any], other: NDArray[Any], snr_db: float) -> NDArray[np.float64]:
    """``signal + other`` with ``other`` scaled so that ``signal`` is ``snr_db`` dB above it (RMS over all samples).

    Both arrays have the same shape; the result (float64 when either is) is not clipped. A silent ``other`` adds
    nothing, a silent ``signal`` gets nothing added.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x, n = rng.standard_normal(1000), rng.standard_normal(1000)
        >>> round(snr_db(x, mix_at_snr(x, n, 6.0) - x), 6)
        6.0
    """
    s = np.asarray(signal)
    o = np.asarray(other)
    if s.shape != o.shape:
        raise ConfigError(f"cannot mix arrays of shapes {s.shape} and {o.shape}")
    # powers in the arrays' own precision, so that corpora made with this arithmetic are reproduced bit for bit
    rs = math.sqrt(float(np.mean(s**2)))
    ro = math.sqrt(float(np.mean(o**2)))
    if rs == 0.0 or ro == 0.0:
        return s.astype(np.float64)
    out: NDArray[np.float64] = s + o * (rs / ro) * 10 ** (-snr_db / 20)
    return out


def snr_db(signal: NDArray[Any], noise: NDArray[Any]) -> float:
    """Signal-to-noise ratio in dB: ``10 log10`` of the signal's power over the noise's (means over all samples)."""
    ps = float(np.mean(np.asarray(signal, dtype=np.float64) ** 2))
    pn = float(np.mean(np.asarray(noise, dtype=np.float64) ** 2))
    if pn == 0.0:
        return math.inf
    if ps == 0.0:
        return -math.inf
    return 10.0 * math.log10(ps / pn)


def codec_available(codec: Literal["mp3", "gsm"]) -> bool:
    """Whether the installed libsndfile can encode ``codec`` (MP3, or GSM 06.10 in WAV)."""
    if codec == "mp3":
        return "MP3" in sf.available_formats() and "MPEG_LAYER_III" in sf.available_subtypes("MP3")
    return "GSM610" in sf.available_subtypes("WAV")


def _require_codec(codec: Literal["mp3", "gsm"]) -> None:
    if not codec_available(codec):
        name = {"mp3": "MP3", "gsm": "GSM 6.10"}[codec]
        raise MissingDependencyError(
            f"the {codec!r} degradation needs {name} encoding, which the installed libsndfile "
            f"({sf.__libsndfile_version__}) lacks. {_INSTALL_HINT}"
        )


def _replace(audio: Audio, samples: NDArray[Any], **changes: Any) -> Audio:
    return dataclasses.replace(audio, samples=np.ascontiguousarray(samples, dtype=np.float32), **changes)


def _fmt(x: float) -> str:
    """A number as written in a spec: ``10``, ``-2.5``, ``0.5``."""
    return f"{x:g}"


# --------------------------------------------------------------------------------------------- conditions
@dataclass(frozen=True)
class Degradation(ABC):
    """One degradation condition (see the module docs); call it on :class:`~audiovec.audio.Audio`."""

    _family: ClassVar[str]
    _title: ClassVar[str]

    @property
    def family(self) -> str:
        """The condition's family: the name of its curve (``"noise"``, ``"mp3"``...)."""
        return self._family

    @property
    def title(self) -> str:
        """The family in words, for plot titles (``"white noise"``)."""
        return self._title

    @property
    @abstractmethod
    def level(self) -> str:
        """The level in words (``"10 dB SNR"``, ``"64 kbit/s"``)."""

    @property
    @abstractmethod
    def level_value(self) -> float:
        """The level as a number, for a curve's x-axis (see the module docs for its unit)."""

    @property
    @abstractmethod
    def spec(self) -> str:
        """The canonical spec string (``parse_condition(c.spec) == c``)."""

    @property
    def random(self) -> bool:
        """Whether the result depends on ``seed`` and ``key``."""
        return False

    def __str__(self) -> str:
        return self.spec

    def __call__(self, audio: Audio, *, seed: int = 0, key: str = "") -> Audio:
        """Return ``audio`` degraded, at the same sample rate.

        Args:
            audio: The input (mono ``[samples]`` or ``[channels, samples]``).
            seed: Seed of random degradations (noise).
            key: A name of the item (a file name, say): random degradations draw from a generator seeded by
                ``(seed, family, key)``, so each item gets its own noise, the same on every run.

        Raises:
            MissingDependencyError: A codec the installed libsndfile cannot encode.
        """
        return self._apply(audio, seed, key)

    @abstractmethod
    def _apply(self, audio: Audio, seed: int, key: str) -> Audio: ...


@dataclass(frozen=True)
class Clean(Degradation):
    """No degradation: the reference every other condition is compared with (``clean``)."""

    _family: ClassVar[str] = "clean"
    _title: ClassVar[str] = "clean"

    @property
    def level(self) -> str:
        """``"clean"``."""
        return "clean"

    @property
    def level_value(self) -> float:
        """NaN: a clean input has no level."""
        return math.nan

    @property
    def spec(self) -> str:
        """``"clean"``."""
        return "clean"

    def _apply(self, audio: Audio, seed: int, key: str) -> Audio:
        return audio


@dataclass(frozen=True)
class Noise(Degradation):
    """Additive Gaussian noise at ``snr_db`` dB SNR: white (``noise:SNR``) or pink (``pink:SNR``).

    Attributes:
        snr_db: Signal-to-noise ratio in dB (any finite number; negative: more noise than signal).
        colour: ``"white"`` or ``"pink"``.
    """

    snr_db: float
    colour: Literal["white", "pink"] = "white"

    _family: ClassVar[str] = "noise"
    _title: ClassVar[str] = "white noise"

    def __post_init__(self) -> None:
        if not math.isfinite(self.snr_db):
            raise ConfigError(f"an SNR must be a finite number of dB, got {self.snr_db}")
        if self.colour not in ("white", "pink"):
            raise ConfigError(f"noise colour must be 'white' or 'pink', got {self.colour!r}")

    @property
    def family(self) -> str:
        """``"noise"`` for white noise, ``"pink"`` for pink noise."""
        return "noise" if self.colour == "white" else "pink"

    @property
    def title(self) -> str:
        """``"white noise"`` or ``"pink noise"``."""
        return f"{self.colour} noise"

    @property
    def level(self) -> str:
        """``"10 dB SNR"``."""
        return f"{_fmt(self.snr_db)} dB SNR"

    @property
    def level_value(self) -> float:
        """The SNR in dB."""
        return float(self.snr_db)

    @property
    def spec(self) -> str:
        """``"noise:10"`` or ``"pink:10"``."""
        return f"{self.family}:{_fmt(self.snr_db)}"

    @property
    def random(self) -> bool:
        """``True``: the noise depends on the seed and the item's key."""
        return True

    def _apply(self, audio: Audio, seed: int, key: str) -> Audio:
        x = audio.samples.astype(np.float64)
        rng = item_rng(seed, self.family, key)
        channels = 1 if x.ndim == 1 else x.shape[0]
        noise = np.stack([make_noise(rng, x.shape[-1], self.colour) for _ in range(channels)])
        mix = mix_at_snr(x, noise.reshape(x.shape), self.snr_db)
        peak = float(np.max(np.abs(mix))) if mix.size else 0.0
        if peak > 1.0:
            mix *= 0.99 / peak  # a recorder's gain: scales input and noise alike, so the SNR is kept
        return _replace(audio, mix)


@dataclass(frozen=True)
class MP3(Degradation):
    """MP3 at a constant bitrate (``mp3:KBPS``), encoded and decoded by libsndfile (LAME / mpg123).

    Attributes:
        bitrate_kbps: One of :data:`MP3_BITRATES` (8 to 320 kbit/s).
    """

    bitrate_kbps: int

    _family: ClassVar[str] = "mp3"
    _title: ClassVar[str] = "MP3"

    def __post_init__(self) -> None:
        if self.bitrate_kbps not in MP3_BITRATES:
            raise ConfigError(
                f"MP3 bitrate must be one of {', '.join(map(str, MP3_BITRATES))} kbit/s, got {self.bitrate_kbps}"
            )

    @property
    def level(self) -> str:
        """``"64 kbit/s"``."""
        return f"{self.bitrate_kbps} kbit/s"

    @property
    def level_value(self) -> float:
        """The bitrate in kbit/s."""
        return float(self.bitrate_kbps)

    @property
    def spec(self) -> str:
        """``"mp3:64"``."""
        return f"mp3:{self.bitrate_kbps}"

    def encoding_rate(self, sample_rate: int) -> int:
        """The sample rate the audio is encoded at: its own when MP3 carries it at this bitrate, else the nearest."""
        br = self.bitrate_kbps
        rates = [r for r in _MPEG1_RATES if br in _MPEG1_BITRATES]
        rates += [r for r in _MPEG2_RATES if br in _MPEG2_BITRATES and (r >= 16000 or br <= 64)]
        return min(rates, key=lambda r: (abs(r - sample_rate), -r))

    def encode(self, samples: NDArray[np.float32], sample_rate: int) -> bytes:
        """The MP3 bytes of ``samples`` (``[samples]`` or ``[channels, samples]`` at an MP3 sample rate)."""
        _require_codec("mp3")
        if sample_rate not in _MPEG1_RATES + _MPEG2_RATES:
            raise ConfigError(f"MP3 cannot carry {sample_rate} Hz audio; resample it first (see encoding_rate)")
        lo, hi = (32, 320) if sample_rate in _MPEG1_RATES else (8, 160) if sample_rate >= 16000 else (8, 64)
        # libsndfile maps its compression level c in [0, 1) to the bitrate hi - c * (hi - lo)
        level = min(max((hi - self.bitrate_kbps) / (hi - lo), 0.0), 0.999)
        buf = io.BytesIO()
        sf.write(buf, np.clip(samples, -1.0, 1.0).T, sample_rate, format="MP3", compression_level=level,
                 bitrate_mode="CONSTANT")  # fmt: skip
        return buf.getvalue()

    def _apply(self, audio: Audio, seed: int, key: str) -> Audio:
        rate = self.encoding_rate(audio.sample_rate)
        x = audio.samples if rate == audio.sample_rate else resample(audio.samples, audio.sample_rate, rate)
        if x.ndim == 2 and x.shape[0] > 2:  # MP3 carries one or two channels: code the others one by one
            y = np.stack([self._code(ch, rate) for ch in x])
        else:
            y = self._code(x, rate)
        if rate != audio.sample_rate:
            y = _fit(resample(y, rate, audio.sample_rate), audio.num_samples)
        return _replace(audio, y)

    def _code(self, x: NDArray[np.float32], rate: int) -> NDArray[np.float32]:
        """``x`` (one or two channels at an MP3 rate) encoded and decoded, aligned, at its length."""
        n = x.shape[-1]
        y, got = sf.read(io.BytesIO(self.encode(x, rate)), dtype="float32", always_2d=True)
        if got != rate:
            raise AudioDecodeError(f"MP3 decoded at {got} Hz, encoded at {rate} Hz", "mp3 degradation")
        y = y.T
        if y.shape[-1] != n and y.shape[-1] >= n + _MP3_DELAY:  # no gapless header (low bitrates): remove the delay
            y = y[:, _MP3_DELAY:]
        y = _fit(y, n)
        out: NDArray[np.float32] = y[0] if x.ndim == 1 else y
        return out


@dataclass(frozen=True)
class GSM(Degradation):
    """GSM 06.10 full-rate speech coding (``gsm``): mono, 8 kHz, 13 kbit/s, then back to the input's rate."""

    _family: ClassVar[str] = "gsm"
    _title: ClassVar[str] = "GSM 06.10"

    @property
    def level(self) -> str:
        """``"13 kbit/s"``."""
        return "13 kbit/s"

    @property
    def level_value(self) -> float:
        """13 (kbit/s)."""
        return 13.0

    @property
    def spec(self) -> str:
        """``"gsm"``."""
        return "gsm"

    def _apply(self, audio: Audio, seed: int, key: str) -> Audio:
        _require_codec("gsm")
        mono = audio.to_mono()
        x = mono.samples if mono.sample_rate == _GSM_RATE else resample(mono.samples, mono.sample_rate, _GSM_RATE)
        n = len(x)
        buf = io.BytesIO()
        sf.write(buf, np.clip(x, -1.0, 1.0), _GSM_RATE, format="WAV", subtype="GSM610")
        buf.seek(0)
        y, _ = sf.read(buf, dtype="float32")
        y = _fit(np.asarray(y), n)  # GSM in WAV pads to blocks of 320 samples
        if mono.sample_rate != _GSM_RATE:
            y = _fit(resample(y, _GSM_RATE, mono.sample_rate), mono.num_samples)
        return _replace(mono, y)


@dataclass(frozen=True)
class BandPass(Degradation):
    """A band-pass filter (``bandpass:LOW-HIGH``, in Hz): linear phase, 80 dB stop band.

    Attributes:
        low_hz: Lower edge (> 0).
        high_hz: Upper edge (> ``low_hz``); at or above the Nyquist frequency the filter is a high-pass.
    """

    low_hz: float
    high_hz: float

    _family: ClassVar[str] = "bandpass"
    _title: ClassVar[str] = "band-pass"

    def __post_init__(self) -> None:
        if not (0 < self.low_hz < self.high_hz) or not math.isfinite(self.high_hz):
            raise ConfigError(f"a band-pass needs 0 < low < high (Hz), got {self.low_hz}-{self.high_hz}")

    @property
    def level(self) -> str:
        """``"300-3400 Hz"``."""
        return f"{_fmt(self.low_hz)}-{_fmt(self.high_hz)} Hz"

    @property
    def level_value(self) -> float:
        """The bandwidth in Hz (``high - low``)."""
        return float(self.high_hz - self.low_hz)

    @property
    def spec(self) -> str:
        """``"bandpass:300-3400"``."""
        return f"bandpass:{_fmt(self.low_hz)}-{_fmt(self.high_hz)}"

    def taps(self, sample_rate: int) -> NDArray[np.float64]:
        """The filter's impulse response at ``sample_rate`` (odd length, symmetric: zero delay when centred)."""
        nyq = sample_rate / 2
        if self.low_hz >= nyq:
            raise ConfigError(f"{self.spec}: the lower edge is above the Nyquist frequency of {sample_rate} Hz audio")
        width = min(0.25 * self.low_hz, 100.0)  # transition band, Hz
        atten = 80.0
        beta = 0.1102 * (atten - 8.7)  # Kaiser's formula for the window parameter
        n = math.ceil((atten - 7.95) / (2.285 * 2 * math.pi * width / sample_rate)) | 1
        t = np.arange(n) - (n - 1) / 2

        def lowpass(edge: float) -> NDArray[np.float64]:
            fc = edge / sample_rate
            out: NDArray[np.float64] = 2 * fc * np.sinc(2 * fc * t)
            return out

        high = lowpass(self.high_hz + width / 2) if self.high_hz < nyq - width / 2 else np.where(t == 0, 1.0, 0.0)
        h = (high - lowpass(self.low_hz - width / 2)) * np.kaiser(n, beta)
        return h

    def _apply(self, audio: Audio, seed: int, key: str) -> Audio:
        import scipy.signal

        h = self.taps(audio.sample_rate)
        x = audio.samples.astype(np.float64)
        y = scipy.signal.fftconvolve(x, h.reshape((1,) * (x.ndim - 1) + (-1,)), mode="same", axes=-1)
        return _replace(audio, y)


@dataclass(frozen=True)
class Excerpt(Degradation):
    """The first (``excerpt:SECONDS``) or middle (``excerpt:SECONDS:centre``) ``seconds`` of the audio.

    Attributes:
        seconds: Length of the excerpt (> 0); longer than the audio: the audio is kept whole.
        where: ``"start"`` or ``"centre"``.
    """

    seconds: float
    where: Literal["start", "centre"] = "start"

    _family: ClassVar[str] = "excerpt"
    _title: ClassVar[str] = "shorter excerpt"

    def __post_init__(self) -> None:
        if not (self.seconds > 0 and math.isfinite(self.seconds)):
            raise ConfigError(f"an excerpt needs a positive length in seconds, got {self.seconds}")
        if self.where not in ("start", "centre"):
            raise ConfigError(f"an excerpt is taken at the 'start' or the 'centre', got {self.where!r}")

    @property
    def level(self) -> str:
        """``"2 s"`` (``"2 s, centre"``)."""
        return f"{_fmt(self.seconds)} s" + (", centre" if self.where == "centre" else "")

    @property
    def level_value(self) -> float:
        """The length in seconds."""
        return float(self.seconds)

    @property
    def spec(self) -> str:
        """``"excerpt:2"`` or ``"excerpt:2:centre"``."""
        return f"excerpt:{_fmt(self.seconds)}" + (":centre" if self.where == "centre" else "")

    def _apply(self, audio: Audio, seed: int, key: str) -> Audio:
        n = min(audio.num_samples, max(1, round(self.seconds * audio.sample_rate)))
        start = 0 if self.where == "start" else (audio.num_samples - n) // 2
        return _replace(audio, audio.samples[..., start : start + n], offset=audio.offset + start / audio.sample_rate)


@dataclass(frozen=True)
class Gain(Degradation):
    """A gain of ``db`` dB (``gain:DB``), clipped to [-1, 1].

    Attributes:
        db: The gain in dB (negative: quieter).
    """

    db: float

    _family: ClassVar[str] = "gain"
    _title: ClassVar[str] = "gain"

    def __post_init__(self) -> None:
        if not math.isfinite(self.db):
            raise ConfigError(f"a gain must be a finite number of dB, got {self.db}")

    @property
    def level(self) -> str:
        """``"-20 dB"`` or ``"+6 dB"``."""
        return f"{self.db:+g} dB"

    @property
    def level_value(self) -> float:
        """The gain in dB."""
        return float(self.db)

    @property
    def spec(self) -> str:
        """``"gain:-20"``."""
        return f"gain:{_fmt(self.db)}"

    def _apply(self, audio: Audio, seed: int, key: str) -> Audio:
        if self.db == 0.0 and float(np.max(np.abs(audio.samples), initial=0.0)) <= 1.0:
            return audio
        y = np.clip(audio.samples.astype(np.float64) * 10 ** (self.db / 20), -1.0, 1.0)
        return _replace(audio, y)


def _fit(y: NDArray[Any], n: int) -> NDArray[Any]:
    """``y`` cut or zero-padded to ``n`` samples along its last axis."""
    if y.shape[-1] >= n:
        return y[..., :n]
    pad = [(0, 0)] * (y.ndim - 1) + [(0, n - y.shape[-1])]
    return np.pad(y, pad)


# --------------------------------------------------------------------------------------------- spec language
_EXAMPLES = ("clean", "noise:10", "pink:10", "mp3:64", "gsm", "bandpass:300-3400", "excerpt:2", "gain:-20")
_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)"
_SPECS: dict[str, tuple[str, str]] = {
    # family: (regex of the part after "family:", usage)
    "clean": ("", "clean"),
    "noise": (rf"(?P<snr>{_NUMBER})", "noise:SNR_DB (e.g. noise:10)"),
    "pink": (rf"(?P<snr>{_NUMBER})", "pink:SNR_DB (e.g. pink:10)"),
    "mp3": (r"(?P<kbps>\d+)", "mp3:KBPS (e.g. mp3:64)"),
    "gsm": ("", "gsm"),
    "bandpass": (rf"(?P<low>{_NUMBER})-(?P<high>{_NUMBER})", "bandpass:LOW-HIGH in Hz (e.g. bandpass:300-3400)"),
    "excerpt": (rf"(?P<s>{_NUMBER})(?::(?P<where>start|centre|center))?", "excerpt:SECONDS[:start|centre]"),
    "gain": (rf"(?P<db>{_NUMBER})", "gain:DB (e.g. gain:-20)"),
}


def parse_condition(spec: str | Degradation) -> Degradation:
    """Parse one condition spec (see the module docs); a :class:`Degradation` is returned as it is.

    Spaces around the parts are ignored and families are case-insensitive: ``" MP3 : 64 "`` is ``mp3:64``.

    Raises:
        ConfigError: An unknown family, a malformed level or a level out of range; the message shows the form.

    Example:
        >>> parse_condition("bandpass:300-3400").level
        '300-3400 Hz'
        >>> parse_condition("excerpt:2:centre")
        Excerpt(seconds=2.0, where='centre')
    """
    if isinstance(spec, Degradation):
        return spec
    if not isinstance(spec, str):
        raise ConfigError(f"a degradation is written as a string such as 'noise:10', got {spec!r}")
    text = re.sub(r"\s+", "", spec).lower()
    family, _, rest = text.partition(":")
    if family not in _SPECS:
        raise ConfigError(f"unknown degradation {spec!r}: write one of {', '.join(_EXAMPLES)}")
    pattern, usage = _SPECS[family]
    m = re.fullmatch(pattern, rest)
    if m is None or (not pattern and ":" in text):
        raise ConfigError(f"malformed degradation {spec!r}: write it as {usage}")
    g = m.groupdict()
    if family == "clean":
        return Clean()
    if family in ("noise", "pink"):
        return Noise(float(g["snr"]), "white" if family == "noise" else "pink")
    if family == "mp3":
        return MP3(int(g["kbps"]))
    if family == "gsm":
        return GSM()
    if family == "bandpass":
        return BandPass(float(g["low"]), float(g["high"]))
    if family == "excerpt":
        return Excerpt(float(g["s"]), "start" if g["where"] in (None, "start") else "centre")
    return Gain(float(g["db"]))


def parse_conditions(specs: Iterable[str | Degradation] | str | None = None) -> list[Degradation]:
    """Parse condition specs (``None``: :data:`DEFAULT_CONDITIONS`); a string may hold several, comma-separated.

    Raises:
        ConfigError: A malformed spec, or the same condition twice.
    """
    if specs is None:
        specs = DEFAULT_CONDITIONS
    if isinstance(specs, str):
        specs = [s for s in specs.split(",") if s.strip()]
    out = [parse_condition(s) for s in specs]
    seen: set[str] = set()
    for c in out:
        if c.spec in seen:
            raise ConfigError(f"degradation {c.spec!r} is listed twice")
        seen.add(c.spec)
    return out

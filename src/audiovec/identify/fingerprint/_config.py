"""Fingerprint parameters: one frozen, validated config shared by indexing and querying."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from audiovec._hashing import json_digest
from audiovec.errors import ConfigError

__all__ = ["FingerprintConfig"]


#: ``field: (type, lower bound, lower bound excluded, upper bound or None)`` of the numeric fields.
_BOUNDS: dict[str, tuple[type, float, bool, float | None]] = {
    "sample_rate": (int, 2000, False, 96000),
    "n_fft": (int, 64, False, 16384),
    "hop_length": (int, 8, False, 16384),
    "fmin": (float, 0, False, None),
    "fmax": (float, 0, True, None),
    "peaks_per_second": (float, 0, True, 2000),
    "query_peaks_per_second": (float, 0, True, 4000),
    "block_s": (float, 0, True, 60),
    "neighborhood_bins": (int, 1, False, 255),
    "neighborhood_frames": (int, 1, False, 255),
    "min_db": (float, -math.inf, False, 0),
    "fan_out": (int, 1, False, 64),
    "query_fan_out": (int, 1, False, 128),
    "dt_min": (int, 1, False, None),
    "dt_max": (int, 1, False, 4095),
    "df_min": (int, 0, False, None),
    "df_max": (int, 0, False, None),
    "pair_tilt": (float, -24, False, 24),
}
_OPTIONAL = {"fmax", "query_peaks_per_second", "query_fan_out"}
#: How an anchor chooses its partners (see :attr:`FingerprintConfig.pairing`).
PAIRINGS = ("strongest", "first")


@dataclass(frozen=True)
class FingerprintConfig:
    """Parameters of landmark fingerprinting (Wang 2003).

    A frozen dataclass, checked when made (:class:`~audiovec.errors.ConfigError` names the field); it imports
    nothing heavy, so that identifying one excerpt starts fast.

    An index remembers the config it was built with and fingerprints every query with the same one (only
    :attr:`query_peaks_per_second` and :attr:`query_fan_out` may differ between indexing and querying).

    Attributes:
        sample_rate: Audio is mixed to mono and resampled to this rate first. 8 kHz keeps the band that survives
            telephone codecs (GSM) and band-limiting.
        n_fft: STFT window length in samples (Hann window).
        hop_length: STFT hop in samples; the time unit of every hash and offset (16 ms by default).
        fmin: Lowest frequency (Hz) where peaks are picked.
        fmax: Highest frequency (Hz) where peaks are picked (``None``: the Nyquist frequency).
        peaks_per_second: Target peak density of reference tracks. Peaks are local maxima of the log spectrogram
            in a ``neighborhood_bins`` x ``neighborhood_frames`` box; in every block of ``block_s`` seconds only
            the strongest ``peaks_per_second * block_s`` are kept.
        query_peaks_per_second: Peak density of queries. A denser query finds more of the reference's peaks when
            noise or band-limiting has removed some of them (``None``: 1.5 x ``peaks_per_second``).
        block_s: Length of the blocks in which the density is enforced, in seconds.
        neighborhood_bins: Height of the local-maximum box, in frequency bins (odd).
        neighborhood_frames: Width of the local-maximum box, in frames (odd).
        min_db: Peaks quieter than this (dB relative to a full-scale sine) are ignored, so silence has none.
        fan_out: Each anchor peak of a reference track is paired with at most this many later peaks of its target
            zone (which ones: :attr:`pairing`). With 6 (and 9 for queries) the index is a quarter smaller than
            with 8 for both, and recognises as many queries with as many false positives at every threshold
            (measured with ``pairing="first"`` on the 35 Wesnoth tracks and on 532 other game-music tracks).
        query_fan_out: The same for queries (``None``: 1.5 x ``fan_out``, rounded, as the query's peaks are 1.5 x
            denser: the same time span holds 1.5 x as many partners). More (e.g. twice ``fan_out``) recognises
            more noisy queries but raises chance scores too: calibrate the threshold then.
        dt_min: Target zone start, in frames after the anchor.
        dt_max: Target zone end, in frames after the anchor (inclusive).
        df_min: Pairs whose frequencies differ by fewer bins are skipped (``1`` drops same-bin pairs, which
            sustained tones produce in large numbers and which match any track holding that pitch).
        df_max: Target zone half-height, in frequency bins.
        pairing: Which peaks of its target zone an anchor is paired with. ``"strongest"``: the ``fan_out``
            loudest (levels tilted by :attr:`pair_tilt`). ``"first"``: the ``fan_out`` earliest (Wang's scheme,
            and that of every index made before ``pairing`` existed, which keeps it). Noise adds weak peaks
            everywhere; they push a query's earliest partners out of its fan-out, but not its loudest, which are
            the partners the reference chose too.
        pair_tilt: dB per octave added to peak levels when ``"strongest"`` ranks partners. Music falls off with
            frequency, so untilted levels pair mostly with bass peaks, which band-limiting (a telephone's 300 Hz
            high-pass) removes. On 532 game-music tracks, 5 s queries, with 2 (the default) and 3 dB/octave:
            white noise 0 dB 97.1 and 96.4 % recognised, pink noise 0 dB 96.3 and 96.0 %, pink -5 dB 84.2 and
            82.7 %, band-passed 300-3,400 Hz 96.1 and 97.7 % (99.6 % when pairing by time). Use 3 for
            telephone-band queries. On 35 Wesnoth tracks, 2 s band-passed queries: 80 % untilted, 95 % at 2 or 3.
    """

    sample_rate: int = 8000
    n_fft: int = 512
    hop_length: int = 128
    fmin: float = 100.0
    fmax: float | None = None
    peaks_per_second: float = 30.0
    query_peaks_per_second: float | None = None
    block_s: float = 0.5
    neighborhood_bins: int = 7
    neighborhood_frames: int = 7
    min_db: float = -80.0
    fan_out: int = 6
    query_fan_out: int | None = None
    dt_min: int = 1
    dt_max: int = 63
    df_min: int = 2
    df_max: int = 100
    pairing: str = "strongest"
    pair_tilt: float = 2.0

    def __post_init__(self) -> None:
        for name, (kind, lo, lo_open, hi) in _BOUNDS.items():
            value = getattr(self, name)
            if value is None and name in _OPTIONAL:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int):
                raise ConfigError(f"FingerprintConfig.{name} must be {kind.__name__}, got {value!r}")
            if kind is float:
                value = float(value)
                object.__setattr__(self, name, value)  # 30 and 30.0 are the same config (and the same key)
            if not math.isfinite(value) or value < lo or (lo_open and value == lo) or (hi is not None and value > hi):
                interval = f"{'>' if lo_open else '>='} {lo}" + (f" and <= {hi}" if hi is not None else "")
                raise ConfigError(f"FingerprintConfig.{name} must be {interval}, got {value!r}")
        if self.pairing not in PAIRINGS:
            raise ConfigError(
                f"FingerprintConfig.pairing must be one of {', '.join(map(repr, PAIRINGS))}, got {self.pairing!r}"
            )
        if self.hop_length > self.n_fft:
            raise ConfigError(f"hop_length ({self.hop_length}) must not exceed n_fft ({self.n_fft})")
        if self.df_min > self.df_max:
            raise ConfigError(f"df_min ({self.df_min}) must not exceed df_max ({self.df_max})")
        if self.dt_min > self.dt_max:
            raise ConfigError(f"dt_min ({self.dt_min}) must not exceed dt_max ({self.dt_max})")
        if self.neighborhood_bins % 2 == 0 or self.neighborhood_frames % 2 == 0:
            raise ConfigError("neighborhood_bins and neighborhood_frames must be odd")
        nyquist = self.sample_rate / 2
        if self.fmax is not None and self.fmax > nyquist:
            raise ConfigError(f"fmax ({self.fmax} Hz) is above the Nyquist frequency ({nyquist} Hz)")
        lo, hi = self.bin_range
        if hi - lo < 2:
            raise ConfigError(f"fmin/fmax leave fewer than two frequency bins ({lo}..{hi})")
        if self.hash_bits > 32:
            raise ConfigError(
                f"hashes need {self.hash_bits} bits ({self.freq_bits} per frequency, {self.dt_bits} for the time "
                "difference); use a smaller n_fft, a narrower fmin..fmax or a smaller dt_max to fit in 32"
            )

    # ------------------------------------------------------------------ (de)serialisation
    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FingerprintConfig:
        """A config from its :meth:`to_dict` form (or any subset of the fields, e.g. from ``--fp-param``).

        Raises:
            ConfigError: An unknown field (with the closest known name), or an invalid value.
        """
        known = {f.name for f in fields(cls)}
        for key in data:
            if key not in known:
                import difflib

                close = difflib.get_close_matches(str(key), sorted(known), n=1, cutoff=0.6)
                hint = f" (did you mean {close[0]!r}?)" if close else f"; known: {', '.join(sorted(known))}"
                raise ConfigError(f"FingerprintConfig has no field {key!r}{hint}")
        return cls(**dict(data))

    def to_dict(self) -> dict[str, Any]:
        """Every field by name: JSON-able, and :meth:`from_dict` gives the same config back."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def replace(self, **changes: Any) -> FingerprintConfig:
        """A copy with some fields changed (validated like a new config)."""
        return self.from_dict({**self.to_dict(), **changes})

    # ------------------------------------------------------------------ derived values
    @property
    def hop_s(self) -> float:
        """Duration of one frame step in seconds."""
        return self.hop_length / self.sample_rate

    @property
    def bin_range(self) -> tuple[int, int]:
        """First and one-past-last FFT bin where peaks are picked."""
        n_bins = self.n_fft // 2 + 1
        lo = max(1, math.ceil(self.fmin * self.n_fft / self.sample_rate))
        top = self.sample_rate / 2 if self.fmax is None else self.fmax
        hi = min(n_bins - 1, math.floor(top * self.n_fft / self.sample_rate) + 1)
        return lo, hi

    @property
    def freq_bits(self) -> int:
        """Bits per frequency in a hash."""
        lo, hi = self.bin_range
        return max(1, math.ceil(math.log2(hi - lo)))

    @property
    def dt_bits(self) -> int:
        """Bits for the time difference in a hash."""
        return max(1, math.ceil(math.log2(self.dt_max + 1)))

    @property
    def hash_bits(self) -> int:
        """Total bits of a hash: ``f1``, ``f2`` and ``Δt``."""
        return 2 * self.freq_bits + self.dt_bits

    @property
    def block_frames(self) -> int:
        """Frames per density block."""
        return max(1, round(self.block_s / self.hop_s))

    def peaks_per_block(self, query: bool = False) -> int:
        """How many peaks a density block keeps (for a reference track, or for a query)."""
        pps = self.peaks_per_second
        if query:
            pps = self.query_peaks_per_second if self.query_peaks_per_second is not None else 1.5 * pps
        return max(1, round(pps * self.block_frames * self.hop_s))

    def pairs_per_anchor(self, query: bool = False) -> int:
        """How many later peaks an anchor is paired with (for a reference track, or for a query)."""
        if not query:
            return self.fan_out
        return self.query_fan_out if self.query_fan_out is not None else max(1, round(1.5 * self.fan_out))

    def key(self) -> str:
        """A stable digest of the parameters that determine reference hashes (the query-only ones excluded).

        ``pairing="first"`` is left out of the digest, so a config read from an index made before ``pairing``
        existed has the key it had then.
        """
        skip = {"query_peaks_per_second", "query_fan_out"}
        if self.pairing == "first":  # neither field existed then, and pair_tilt does not apply
            skip |= {"pairing", "pair_tilt"}
        reference = {k: v for k, v in self.to_dict().items() if k not in skip}
        return json_digest(reference)

    @classmethod
    def from_stored(cls, data: Mapping[str, Any]) -> FingerprintConfig:
        """The config stored with an index or a cache (:meth:`to_dict` form).

        Fields added since it was written take the value that reproduces what it was made with
        (``pairing="first"``), not today's default.
        """
        return cls.from_dict({"pairing": "first", **dict(data)})

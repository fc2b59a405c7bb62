"""Fingerprint parameters: one frozen, validated config shared by indexing and querying."""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field, model_validator

from audiovec._hashing import json_digest

__all__ = ["FingerprintConfig"]


class FingerprintConfig(BaseModel):
    """Parameters of landmark fingerprinting (Wang 2003).

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
            zone. With 6 (and 12 for queries) the index is a quarter smaller than with 8 for both, and recognises
            as many noisy queries at the same false-positive rate (measured on 532 game-music tracks).
        query_fan_out: The same for queries (``None``: twice ``fan_out``). A denser query pairs each anchor with
            nearer peaks; pairing it with more of them finds the reference's pairs again.
        dt_min: Target zone start, in frames after the anchor.
        dt_max: Target zone end, in frames after the anchor (inclusive).
        df_min: Pairs whose frequencies differ by fewer bins are skipped (``1`` drops same-bin pairs, which
            sustained tones produce in large numbers and which match any track holding that pitch).
        df_max: Target zone half-height, in frequency bins.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    sample_rate: int = Field(8000, ge=2000, le=96000)
    n_fft: int = Field(512, ge=64, le=16384)
    hop_length: int = Field(128, ge=8, le=16384)
    fmin: float = Field(100.0, ge=0)
    fmax: float | None = Field(None, gt=0)
    peaks_per_second: float = Field(30.0, gt=0, le=2000)
    query_peaks_per_second: float | None = Field(None, gt=0, le=4000)
    block_s: float = Field(0.5, gt=0, le=60)
    neighborhood_bins: int = Field(7, ge=1, le=255)
    neighborhood_frames: int = Field(7, ge=1, le=255)
    min_db: float = Field(-80.0, le=0)
    fan_out: int = Field(6, ge=1, le=64)
    query_fan_out: int | None = Field(None, ge=1, le=128)
    dt_min: int = Field(1, ge=1)
    dt_max: int = Field(63, ge=1, le=4095)
    df_min: int = Field(2, ge=0)
    df_max: int = Field(100, ge=0)

    @model_validator(mode="after")
    def _check(self) -> FingerprintConfig:
        if self.hop_length > self.n_fft:
            raise ValueError(f"hop_length ({self.hop_length}) must not exceed n_fft ({self.n_fft})")
        if self.df_min > self.df_max:
            raise ValueError(f"df_min ({self.df_min}) must not exceed df_max ({self.df_max})")
        if self.dt_min > self.dt_max:
            raise ValueError(f"dt_min ({self.dt_min}) must not exceed dt_max ({self.dt_max})")
        if self.neighborhood_bins % 2 == 0 or self.neighborhood_frames % 2 == 0:
            raise ValueError("neighborhood_bins and neighborhood_frames must be odd")
        nyquist = self.sample_rate / 2
        if self.fmax is not None and self.fmax > nyquist:
            raise ValueError(f"fmax ({self.fmax} Hz) is above the Nyquist frequency ({nyquist} Hz)")
        lo, hi = self.bin_range
        if hi - lo < 2:
            raise ValueError(f"fmin/fmax leave fewer than two frequency bins ({lo}..{hi})")
        if self.hash_bits > 32:
            raise ValueError(
                f"hashes need {self.hash_bits} bits ({self.freq_bits} per frequency, {self.dt_bits} for the time "
                "difference); use a smaller n_fft, a narrower fmin..fmax or a smaller dt_max to fit in 32"
            )
        return self

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
        return self.query_fan_out if self.query_fan_out is not None else 2 * self.fan_out

    def key(self) -> str:
        """A stable digest of the parameters that determine reference hashes (the query-only ones excluded)."""
        return json_digest(self.model_dump(mode="json", exclude={"query_peaks_per_second", "query_fan_out"}))

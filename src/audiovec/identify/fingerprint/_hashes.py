"""Landmark hashes: pairs of spectral peaks packed into integers, and the functions that fingerprint audio.

Every anchor peak ``(t1, f1)`` is paired with ``fan_out`` later peaks ``(t2, f2)`` of its target zone
(``dt_min <= t2 - t1 <= dt_max`` frames, ``df_min <= |f2 - f1| <= df_max`` bins): the loudest ones
(``pairing="strongest"``, the default) or the earliest (``"first"``); a query's anchors with ``query_fan_out``.
A pair becomes one 32-bit hash::

    hash = f1 << (freq_bits + dt_bits) | f2 << dt_bits | (t2 - t1)

stored with the anchor time ``t1`` (in frames). Pairing is vectorised over all anchors at once (in slices of a
few ten thousand anchors, which bounds memory for very long files).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from audiovec.audio import Audio, AudioSource, stream
from audiovec.errors import ConfigError, EmptyAudioError, NonFiniteAudioError
from audiovec.identify.fingerprint._config import FingerprintConfig
from audiovec.identify.fingerprint._peaks import PeakPicker, Peaks, SpectrogramStream, concat_peaks

__all__ = ["Fingerprints", "fingerprint", "fingerprint_file", "fingerprint_stream", "pair_peaks"]

_ANCHORS_PER_SLICE = 32768


@dataclass(frozen=True, eq=False)
class Fingerprints:
    """The landmark hashes of one recording.

    Attributes:
        hashes: ``uint32[n]`` packed ``(f1, f2, Δt)`` landmarks, in anchor-time order.
        times: ``int64[n]`` anchor time of each hash, in frames of ``config.hop_length`` samples.
        peak_times: ``int64[p]`` frame of every spectral peak (sorted).
        peak_bins: ``int64[p]`` frequency bin of every peak, counted from the config's lowest bin.
        peak_levels: ``float32[p]`` level of every peak (dB re. a full-scale sine); pairing by strength uses it.
        duration: Duration of the fingerprinted audio in seconds.
        config: The parameters that made them.
        query: Whether they were made with the (denser) query peak density.
        source: Name of the input, when known.
    """

    hashes: NDArray[np.uint32]
    times: NDArray[np.int64]
    peak_times: NDArray[np.int64]
    peak_bins: NDArray[np.int64]
    peak_levels: NDArray[np.float32]
    duration: float
    config: FingerprintConfig
    query: bool = False
    source: str | None = None

    def __len__(self) -> int:
        return len(self.hashes)

    @property
    def hashes_per_second(self) -> float:
        """Hash density."""
        return len(self.hashes) / self.duration if self.duration > 0 else 0.0

    def peak_hz(self) -> NDArray[np.float64]:
        """Frequency of every peak in Hz."""
        lo, _ = self.config.bin_range
        return ((self.peak_bins + lo) * (self.config.sample_rate / self.config.n_fft)).astype(np.float64)

    def peak_seconds(self) -> NDArray[np.float64]:
        """Time of every peak in seconds (start of its frame)."""
        return (self.peak_times * self.config.hop_s).astype(np.float64)

    def __repr__(self) -> str:
        return (
            f"Fingerprints(source={self.source!r}, hashes={len(self)}, peaks={len(self.peak_times)}, "
            f"duration={self.duration:.2f}s, query={self.query})"
        )


def pair_peaks(
    times: NDArray[np.int64],
    bins: NDArray[np.int64],
    config: FingerprintConfig,
    *,
    query: bool = False,
    levels: NDArray[np.floating[Any]] | None = None,
) -> tuple[NDArray[np.uint32], NDArray[np.int64]]:
    """Pair peaks into landmark hashes.

    Args:
        times: ``int64[p]`` peak frames, sorted ascending (ties sorted by bin).
        bins: ``int64[p]`` peak bins (counted from the config's lowest bin).
        config: Target zone, pairing rule and hash layout.
        query: Pair each anchor with ``config.pairs_per_anchor(query=True)`` peaks (a query's fan-out).
        levels: ``[p]`` peak levels in dB; required by ``config.pairing == "strongest"``, which pairs each anchor
            with the loudest peaks of its zone, their levels tilted by ``config.pair_tilt`` dB per octave (equal:
            the earlier peak first).

    Returns:
        ``(hashes uint32[n], anchor_times int64[n])`` ordered by anchor, then target time.

    Raises:
        ConfigError: ``pairing="strongest"`` without ``levels``, or levels of another length.
    """
    n = len(times)
    strongest = config.pairing == "strongest"
    rank: NDArray[np.int64] | None = None
    if strongest:
        if levels is None or len(levels) != n:
            raise ConfigError('pairing="strongest" needs the level of every peak (levels=...)')
        loudness = np.asarray(levels, dtype=np.float64)
        if config.pair_tilt:
            loudness = loudness + config.pair_tilt * np.log2(bins + config.bin_range[0])
        # one distinct integer per peak, louder peaks higher, equal levels: the earlier peak higher
        order = np.lexsort((-np.arange(n), loudness))
        rank = np.empty(n, dtype=np.int64)
        rank[order] = np.arange(n, dtype=np.int64)
    if n < 2:
        return np.zeros(0, dtype=np.uint32), np.zeros(0, dtype=np.int64)
    # Enough following peaks to reach dt_max frames ahead, whatever the local density.
    counts = np.bincount(times // config.block_frames)
    blocks_ahead = math.ceil((config.dt_max + 1) / config.block_frames) + 1
    width = int(min(n - 1, max(1, int(counts.max()) * blocks_ahead)))
    steps = np.arange(1, width + 1, dtype=np.int64)
    fan_out = config.pairs_per_anchor(query)
    fb, db = config.freq_bits, config.dt_bits
    out_h: list[NDArray[np.uint32]] = []
    out_t: list[NDArray[np.int64]] = []
    for a0 in range(0, n, _ANCHORS_PER_SLICE):
        anchors = np.arange(a0, min(n, a0 + _ANCHORS_PER_SLICE), dtype=np.int64)
        j = anchors[:, None] + steps[None, :]
        inside = j < n
        jc = np.minimum(j, n - 1)
        dt = times[jc] - times[anchors][:, None]
        df = bins[jc] - bins[anchors][:, None]
        adf = np.abs(df)
        ok = inside & (dt >= config.dt_min) & (dt <= config.dt_max) & (adf <= config.df_max) & (adf >= config.df_min)
        if rank is None:
            ok &= np.cumsum(ok, axis=1) <= fan_out
        elif fan_out < width:
            # the fan_out highest ranks of the zone: keep what is not below the row's fan_out-th highest
            r = np.where(ok, rank[jc], -1)
            kth = -np.partition(-r, fan_out - 1, axis=1)[:, fan_out - 1 : fan_out]
            ok &= r >= kth
        ai, ki = np.nonzero(ok)
        anchor = anchors[ai]
        target = jc[ai, ki]
        h = (
            (bins[anchor].astype(np.uint32) << np.uint32(fb + db))
            | (bins[target].astype(np.uint32) << np.uint32(db))
            | dt[ai, ki].astype(np.uint32)
        )
        out_h.append(h.astype(np.uint32))
        out_t.append(times[anchor])
    return np.concatenate(out_h), np.concatenate(out_t)


class _Fingerprinter:
    """STFT -> peaks, fed block by block; hashes are made once all peaks are known."""

    def __init__(self, config: FingerprintConfig, query: bool) -> None:
        self.config = config
        self.query = query
        self._stft = SpectrogramStream(config)
        self._picker = PeakPicker(config, query)
        self._peaks: list[Peaks] = []
        self.samples = 0

    def push(self, samples: NDArray[np.float32]) -> None:
        self.samples += len(samples)
        self._peaks.append(self._picker.push(self._stft.push(samples)))

    def finish(self, source: str | None) -> Fingerprints:
        if self.samples == 0:
            raise EmptyAudioError("audio has zero samples", source)
        self._peaks.append(self._picker.push(self._stft.flush()))
        self._peaks.append(self._picker.flush())
        times, bins, levels = concat_peaks(self._peaks)
        hashes, anchor_times = pair_peaks(times, bins, self.config, query=self.query, levels=levels)
        return Fingerprints(
            hashes=hashes,
            times=anchor_times,
            peak_times=times,
            peak_bins=bins,
            peak_levels=levels,
            duration=self.samples / self.config.sample_rate,
            config=self.config,
            query=self.query,
            source=source,
        )


def fingerprint(audio: Audio, config: FingerprintConfig | None = None, *, query: bool = False) -> Fingerprints:
    """Fingerprint audio held in memory.

    Args:
        audio: Any :class:`~audiovec.audio.Audio` (mixed to mono and resampled to ``config.sample_rate``).
        config: Parameters (default :class:`FingerprintConfig()`).
        query: Use the query peak density (for audio to be identified, not indexed).

    Returns:
        The landmark hashes.

    Raises:
        EmptyAudioError: No samples.
        NonFiniteAudioError: NaN or infinite samples.
    """
    cfg = config or FingerprintConfig()
    if audio.num_samples == 0:
        raise EmptyAudioError("audio has zero samples", audio.source)
    if not np.isfinite(audio.samples).all():
        raise NonFiniteAudioError("audio contains NaN or infinite samples", audio.source)
    x = audio.prepared(cfg.sample_rate).samples
    fp = _Fingerprinter(cfg, query)
    fp.push(x)
    return fp.finish(audio.source)


def fingerprint_stream(
    blocks: Iterable[Audio], config: FingerprintConfig | None = None, *, query: bool = False
) -> Fingerprints:
    """Fingerprint consecutive blocks of one recording (all at ``config.sample_rate``, mono).

    Equal to :func:`fingerprint` on the concatenated blocks; memory holds one block plus the peaks.

    Raises:
        ConfigError: A block at another sample rate or with several channels.
        EmptyAudioError: No samples.
        NonFiniteAudioError: NaN or infinite samples.
    """
    cfg = config or FingerprintConfig()
    fp = _Fingerprinter(cfg, query)
    source: str | None = None
    for block in blocks:
        source = source or block.source
        if block.sample_rate != cfg.sample_rate or block.channels != 1:
            raise ConfigError(
                f"fingerprint_stream needs mono blocks at {cfg.sample_rate} Hz, got {block.channels} channel(s) "
                f"at {block.sample_rate} Hz (use audiovec.audio.stream(..., sr={cfg.sample_rate}))"
            )
        if not np.isfinite(block.samples).all():
            raise NonFiniteAudioError(f"NaN or infinite samples in the block at {block.offset:.3f}s", source)
        fp.push(block.samples)
    return fp.finish(source)


def fingerprint_file(
    source: AudioSource,
    config: FingerprintConfig | None = None,
    *,
    query: bool = False,
    block_s: float = 60.0,
    offset: float = 0.0,
    duration: float | None = None,
) -> Fingerprints:
    """Fingerprint a file (or bytes, or a file object) by streaming it: memory is bounded by ``block_s``.

    Args:
        source: What :func:`audiovec.audio.stream` accepts.
        config: Parameters (default :class:`FingerprintConfig()`).
        query: Use the query peak density.
        block_s: Seconds decoded at a time.
        offset: Start at this time, in seconds (hash times then count from there).
        duration: Read at most this many seconds.

    Raises:
        AudioError: The source cannot be read (a subclass says why).
    """
    cfg = config or FingerprintConfig()
    blocks = stream(source, block_s, sr=cfg.sample_rate, mono=True, offset=offset, duration=duration)
    return fingerprint_stream(blocks, cfg, query=query)

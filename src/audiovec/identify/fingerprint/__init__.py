"""Landmark audio fingerprinting (Wang 2003): identify a recording, and where in it, from a short excerpt.

Pipeline: mono audio at 8 kHz → log-power STFT (512-sample Hann window, 16 ms hop) → spectral peaks (local maxima
kept at a target density, ``peaks_per_second``) → pairs of peaks inside a target zone hashed as
``(f1, f2, Δt)`` in a 32-bit integer, stored with the anchor time → a :class:`FingerprintIndex` of sorted NumPy
arrays (persisted, memory-mappable, tracks can be added and removed) → matching by a histogram of time offsets
per candidate track: the score is the height of the best offset bin, and the bin is the position of the query.

Robust to additive noise, lossy codecs (MP3, OGG, GSM), band-limiting and short (2 s) queries; **not** robust to
pitch shifting or tempo change (both move every peak, so hashes no longer agree).

Example:
    >>> from audiovec.identify.fingerprint import FingerprintIndex
    >>> index = FingerprintIndex()
    >>> index.add_file("reference.mp3", "ref")  # doctest: +SKIP
    >>> best = index.match_file("excerpt.wav")[0]  # doctest: +SKIP
    >>> best.track_id, round(best.offset, 1), best.score  # doctest: +SKIP
    ('ref', 69.0, 412)
"""

from __future__ import annotations

from audiovec.identify.fingerprint._config import FingerprintConfig
from audiovec.identify.fingerprint._hashes import (
    Fingerprints,
    fingerprint,
    fingerprint_file,
    fingerprint_stream,
    pair_peaks,
)
from audiovec.identify.fingerprint._index import FingerprintIndex, FingerprintMatch, IndexStats, TrackInfo

__all__ = [
    "FingerprintConfig",
    "FingerprintIndex",
    "FingerprintMatch",
    "Fingerprints",
    "IndexStats",
    "TrackInfo",
    "fingerprint",
    "fingerprint_file",
    "fingerprint_stream",
    "pair_peaks",
]

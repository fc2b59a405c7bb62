"""Identify a recording from an excerpt: landmark fingerprints, segment vectors, or filter-and-refine.

* :mod:`audiovec.identify.fingerprint` — landmark fingerprinting (Wang 2003): ``fingerprint()``,
  ``fingerprint_file()`` and the :class:`FingerprintIndex`;
* :class:`Identifier` — indexes tracks in a fingerprint index, a vector store (segment vectors made on the ingest
  path), or both, and answers "which track, where in it, how sure" (:class:`Identification`);
* :func:`calibrate_threshold` — a threshold from queries of recordings that are not indexed;
  :func:`calibrate` the same with the score distribution (:class:`Calibration`, stored with an index), and
  :func:`confidence` — the confidence that an :class:`Identification` reports.

Example:
    >>> from audiovec.identify import Identifier
    >>> ident = Identifier.create("music.idx")  # fingerprints only  # doctest: +SKIP
    >>> ident.add("song.mp3", "song-1", {"title": "Song"})  # doctest: +SKIP
    >>> ident.identify("phone_recording.wav").track_id  # doctest: +SKIP
    'song-1'
"""

from __future__ import annotations

from audiovec.identify.calibration import Calibration, calibrate, confidence, negative_excerpts
from audiovec.identify.fingerprint import FingerprintConfig, FingerprintIndex, FingerprintMatch, Fingerprints
from audiovec.identify.identifier import (
    DEFAULT_MIN_SCORE,
    DEFAULT_MIN_SIMILARITY,
    Identifier,
    calibrate_threshold,
    default_pipeline,
)
from audiovec.identify.results import MODES, Candidate, Identification, IndexedTrack, Mode

__all__ = [
    "DEFAULT_MIN_SCORE",
    "DEFAULT_MIN_SIMILARITY",
    "MODES",
    "Calibration",
    "Candidate",
    "FingerprintConfig",
    "FingerprintIndex",
    "FingerprintMatch",
    "Fingerprints",
    "Identification",
    "Identifier",
    "IndexedTrack",
    "Mode",
    "calibrate",
    "calibrate_threshold",
    "confidence",
    "default_pipeline",
    "negative_excerpts",
]

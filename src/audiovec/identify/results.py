"""What an :class:`~audiovec.identify.Identifier` answers: ranked candidates, the decision, the indexed tracks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, get_args

__all__ = ["MODES", "Candidate", "Identification", "IndexedTrack", "Mode"]

Mode = Literal["fingerprint", "vector", "filter_refine"]
#: The identification modes.
MODES: tuple[str, ...] = get_args(Mode)


@dataclass(frozen=True)
class Candidate:
    """One ranked track of an identification.

    Attributes:
        track_id: The track.
        score: The mode's score (fingerprint: landmarks agreeing on the offset; vector: mean best cosine).
        offset: Position of the query's start inside the track, in seconds.
        metadata: The track's metadata.
    """

    track_id: str
    score: float
    offset: float
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class IndexedTrack:
    """A track known to an :class:`Identifier`.

    Attributes:
        track_id: Its id.
        duration: Seconds of audio indexed.
        metadata: The metadata given when it was added.
    """

    track_id: str
    duration: float
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Identification:
    """The answer to one query.

    Attributes:
        track_id: The identified track, or ``None`` when no track scores at least :attr:`threshold`.
        metadata: The track's metadata (empty for no match).
        offset: Where the query starts inside the track, in seconds (``None`` for no match).
        score: Score of the best track (reported even when it is below the threshold).
        margin: Best score minus the runner-up's (the best score itself when there is no runner-up).
        runner_up: Id of the second-best track, if any.
        confidence: How sure the answer is, in [0, 1]: 0 at or below the threshold, near 1 for clear matches
            (``1 - exp(-(score - threshold) / w)``, with ``w`` from the index's calibration; see
            :func:`audiovec.identify.calibration.confidence`).
        mode: The mode that answered.
        threshold: The threshold the best score was compared with.
        candidates: Ranked tracks, best first (the best is included even when below the threshold).
        timings: Seconds spent per stage (``decode``, ``fingerprint``, ``match``, ``embed``, ``search``).
        shortlist: ``filter_refine`` only: the tracks the vector stage passed to the fingerprint stage.
        landmark_fraction: Fingerprint modes: the fraction of the query's landmarks consistent with the best
            track's offset (``None`` in vector mode).
    """

    track_id: str | None
    metadata: dict[str, Any]
    offset: float | None
    score: float
    margin: float
    runner_up: str | None
    confidence: float
    mode: Mode
    threshold: float
    candidates: list[Candidate] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    shortlist: list[str] | None = None
    landmark_fraction: float | None = None

    @property
    def matched(self) -> bool:
        """Whether a track was identified."""
        return self.track_id is not None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (what ``audiovec identify --json`` prints)."""
        return {
            "track_id": self.track_id,
            "metadata": self.metadata,
            "offset": self.offset,
            "score": self.score,
            "margin": self.margin,
            "runner_up": self.runner_up,
            "confidence": self.confidence,
            "mode": self.mode,
            "threshold": self.threshold,
            "candidates": [vars(c) for c in self.candidates],
            "timings": self.timings,
            "shortlist": self.shortlist,
            "landmark_fraction": self.landmark_fraction,
        }

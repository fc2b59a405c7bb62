"""Calibrated thresholds and confidences: what the scores of queries from tracks *not* in the index say.

A threshold is only meaningful next to the scores that wrong answers reach. :func:`calibrate` takes the best
scores of negative queries (excerpts of recordings that are not indexed) and returns a :class:`Calibration` that an
:class:`~audiovec.identify.Identifier` stores with its index and uses for its threshold and its confidences.

Threshold
    The larger of two values:

    * empirical: the lowest threshold that keeps the false-positive rate on the negatives at most the rate asked
      for (:func:`~audiovec.identify.calibrate_threshold`);
    * tail: the rate's quantile of an exponential tail fitted to the negative scores above their median ``u``:
      ``P(score > u + x) = p_u * exp(-x / m)``, where ``p_u`` is the fraction of negatives above ``u`` and ``m``
      their mean excess over it, so the tail threshold is ``u + m * ln(p_u / rate)`` (rounded up for landmark
      counts). It matters when there are too few negatives to measure the rate (fewer than ``1 / rate``): 200
      negatives cannot tell 0.1 % from 0 %, and the largest of them is no threshold for that rate. Fingerprint
      scores only: vector scores are cosine similarities bounded by 1, whose tail is not exponential.

Confidence (:func:`confidence`)
    A number in [0, 1] that reads as "how sure": 0 at or below the threshold ``t``, and for a score ``s > t``::

        confidence = 1 - exp(-(s - t) / w)

    where the scale ``w`` is how far the threshold sits above the typical wrong answer: ``t - median`` of the
    negative scores of the calibration (at least 1 for landmark counts). A score one ``w`` above the threshold
    reads 0.63, three ``w`` above reads 0.95, and a clean match (hundreds of landmarks) reads 1.00. Without a
    calibration, ``w`` is half the threshold for fingerprint scores. Vector scores are cosine similarities capped
    at 1, so there ``w`` is a third of the way from the threshold to 1 (a perfect match reads 0.95).

:func:`negative_excerpts` cuts seeded random excerpts of given lengths from negative recordings.
"""

from __future__ import annotations

import math
import os
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from audiovec.audio import Audio, AudioSource, load
from audiovec.errors import ConfigError

__all__ = ["Calibration", "calibrate", "confidence", "negative_excerpts"]


@dataclass(frozen=True)
class Calibration:
    """A threshold chosen on negative queries, with the score distribution it was chosen from.

    Attributes:
        kind: Which scores: ``"fingerprint"`` (landmarks agreeing on an offset; used by the ``fingerprint`` and
            ``filter_refine`` modes) or ``"vector"`` (mean cosine similarity).
        threshold: The lowest score that counts as a match (the larger of the next two).
        threshold_empirical: The lowest threshold with at most ``target_fpr`` false positives on the negatives.
        threshold_tail: The ``target_fpr`` quantile of the exponential tail fitted to the negatives (``None`` when
            ``target_fpr`` is 0 or the tail cannot be fitted).
        target_fpr: The false-positive rate asked for.
        observed_fpr: The fraction of the negative queries that score at least :attr:`threshold`.
        negatives: How many negative queries were scored.
        score_max: Highest negative score.
        score_median: Median negative score.
        score_p99: 99th percentile of the negative scores.
        margin: :attr:`threshold` minus the highest negative score below it (how far the threshold clears the
            wrong answers it rejects; ``None`` when no negative is below it).
        scale: The confidence scale ``w`` (see the module docs).
        quantiles: Negative-score quantiles ``{"0.5": ..., "0.9": ..., ...}``.
        mode: The identification mode the negatives were scored with.
    """

    kind: str
    threshold: float
    target_fpr: float
    observed_fpr: float
    negatives: int
    score_max: float
    score_median: float
    score_p99: float
    margin: float | None
    scale: float
    quantiles: dict[str, float] = field(default_factory=dict)
    mode: str = "fingerprint"
    threshold_empirical: float = float("nan")
    threshold_tail: float | None = None

    @property
    def fpr_upper_95(self) -> float:
        """A 95 % upper bound on the false-positive rate (with zero false positives among ``n``: about 3/n)."""
        k, n = round(self.observed_fpr * self.negatives), self.negatives
        if k == 0:
            return float(1.0 - 0.05 ** (1.0 / n))
        p = k / n
        return min(1.0, p + 1.645 * math.sqrt(p * (1 - p) / n) + 1 / n)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (what the index stores)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibration:
        """Read :meth:`to_dict` output (unknown keys are ignored)."""
        known = {f: data[f] for f in cls.__dataclass_fields__ if f in data}
        return cls(**known)


def _scale(kind: str, threshold: float, median: float | None) -> float:
    if kind == "vector":
        return max((1.0 - threshold) / 3.0, 1e-6)
    if median is None:
        return max(threshold / 2.0, 1.0)
    return max(threshold - median, 1.0)


def calibrate(
    negative_scores: Iterable[float], max_false_positive_rate: float = 0.0, *, kind: str = "fingerprint", mode: str = ""
) -> Calibration:
    """Choose a threshold on the best scores of negative queries.

    Args:
        negative_scores: Best scores of queries from recordings that are *not* in the index.
        max_false_positive_rate: Tolerated fraction of those that may still be matched, in [0, 1). With ``n``
            negatives the smallest rate that can be told from zero is ``1/n``.
        kind: ``"fingerprint"`` or ``"vector"`` scores.
        mode: The mode the scores come from (recorded; default: ``kind``).

    Returns:
        The :class:`Calibration`.

    Raises:
        ConfigError: No scores, non-finite scores, a rate outside [0, 1), or an unknown kind.
    """
    from audiovec.identify.identifier import calibrate_threshold

    if kind not in ("fingerprint", "vector"):
        raise ConfigError(f"kind must be 'fingerprint' or 'vector', got {kind!r}")
    scores = np.sort(np.asarray(list(negative_scores), dtype=np.float64))
    empirical = calibrate_threshold(scores, max_false_positive_rate)
    median = float(np.median(scores))
    tail = _tail_quantile(scores, median, max_false_positive_rate) if kind == "fingerprint" else None
    threshold = empirical if tail is None else max(empirical, tail)
    below = scores[scores < threshold]
    qs = (0.5, 0.9, 0.99, 0.999)
    return Calibration(
        kind=kind,
        threshold=threshold,
        target_fpr=float(max_false_positive_rate),
        observed_fpr=float(np.mean(scores >= threshold)),
        negatives=len(scores),
        score_max=float(scores[-1]),
        score_median=median,
        score_p99=float(np.quantile(scores, 0.99)),
        margin=float(threshold - below[-1]) if len(below) else None,
        scale=_scale(kind, threshold, median),
        quantiles={f"{q:g}": float(np.quantile(scores, q)) for q in qs},
        mode=mode or kind,
        threshold_empirical=empirical,
        threshold_tail=tail,
    )


def _tail_quantile(scores: np.ndarray[Any, np.dtype[np.float64]], u: float, rate: float) -> float | None:
    """The ``rate`` quantile of an exponential tail fitted above ``u`` (``None`` when it cannot be fitted)."""
    excess = scores[scores > u] - u
    if rate <= 0 or len(excess) < 2:
        return None
    p_u = len(excess) / len(scores)
    if rate >= p_u:
        return None
    q = u + float(excess.mean()) * math.log(p_u / rate)
    return float(math.ceil(q)) if np.all(scores == np.round(scores)) else q


def confidence(score: float, threshold: float, *, kind: str = "fingerprint", scale: float | None = None) -> float:
    """How sure a match is, in [0, 1]: 0 at or below ``threshold``, ``1 - exp(-(score - threshold) / scale)`` above.

    Args:
        score: The best score.
        threshold: The threshold it is compared with.
        kind: ``"fingerprint"`` or ``"vector"`` scores (picks the default scale).
        scale: The scale ``w`` (default: half the threshold for fingerprint scores, a third of ``1 - threshold``
            for vector scores; a :class:`Calibration` supplies its own).
    """
    w = scale if scale is not None and scale > 0 else _scale(kind, threshold, None)
    if not math.isfinite(score) or score < threshold:
        return 0.0
    return float(min(1.0, max(0.0, 1.0 - math.exp(-(score - threshold) / w))))


def negative_excerpts(
    sources: Sequence[AudioSource], lengths: Sequence[float] = (), *, per_file: int = 10, seed: int = 0
) -> Iterator[tuple[str, Audio]]:
    """Queries from negative recordings: each whole file, or seeded random excerpts of the given lengths.

    Args:
        sources: Audio files (or other sources) of recordings that are *not* in the index.
        lengths: Excerpt lengths in seconds; empty: every file is one query as it is.
        per_file: Excerpts per file and length.
        seed: Seed of the excerpt starts (each file's starts depend on the seed and its name only).

    Yields:
        ``(label, audio)``: a label such as ``"song.mp3@12.345+5s"`` and the excerpt.

    Raises:
        ConfigError: A length that is not positive, or ``per_file < 1``.
        AudioError: A file cannot be read.
    """
    if any(not length > 0 for length in lengths) or per_file < 1:
        raise ConfigError(f"lengths must be > 0 and per_file >= 1, got {list(lengths)} and {per_file}")
    for src in sources:
        label = os.fspath(src) if isinstance(src, (str, os.PathLike)) else "audio"
        audio = load(src)
        if not lengths:
            yield label, audio
            continue
        rng = np.random.default_rng([seed, zlib.crc32(os.path.basename(label).encode())])
        for length in lengths:
            room = audio.duration - length
            if room < 0:  # shorter than the excerpt: the whole file once
                yield f"{label}+{audio.duration:g}s", audio
                continue
            for start in rng.uniform(0.0, room, size=per_file):
                s = round(float(start), 3)
                yield f"{label}@{s:.3f}+{length:g}s", audio.slice(s, s + length)

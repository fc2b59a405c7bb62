"""The :class:`Identifier`: index tracks, then identify excerpts by fingerprints, segment vectors, or both.

An :class:`Identifier` indexes tracks (with their metadata) and answers "which track is this excerpt from, where
in it, and how sure are you?" in one of three modes:

``fingerprint``
    Landmark fingerprints (:mod:`audiovec.identify.fingerprint`) of every indexed track are matched by time-offset
    voting. Exact, robust to noise and codecs, and the most precise offset.
``vector``
    Segment embeddings from any embedder (``Pipeline`` with ``Segments``), stored in any
    :class:`~audiovec.stores.VectorStore`. Every segment of the query searches the store and votes for
    ``(track, offset)`` pairs; a track's score is the mean, over the query's segments, of the cosine similarity of
    the hits that agree on its best offset (so a 10 s query must match consecutive segments in order).
``filter_refine``
    Filter-and-refine (as in FastMap-style retrieval): vector search proposes the ``candidates`` best tracks,
    then fingerprints re-rank only those.

Every answer (:class:`Identification`) has the track id, its metadata, the offset in seconds, the score, the
margin over the runner-up, and ``track_id=None`` ("no match") when the best score is below the mode's threshold.
Thresholds default to values calibrated on the Wesnoth benchmark (``benchmarks/identify.py``); recalibrate them
on your own collection with :meth:`Identifier.calibrate` (or ``audiovec fingerprint calibrate``) and queries from
tracks that are *not* indexed: the :class:`~audiovec.identify.calibration.Calibration` is saved with the index, and
sets both the threshold and the scale of the confidence (:func:`~audiovec.identify.calibration.confidence`).

Example:
    >>> from audiovec.identify import Identifier
    >>> ident = Identifier.create("music.idx")  # fingerprints only  # doctest: +SKIP
    >>> ident.add("song.mp3", "song-1", {"title": "Song"})  # doctest: +SKIP
    >>> r = ident.identify("phone_recording.wav")  # doctest: +SKIP
    >>> r.track_id, r.offset, r.score, r.margin  # doctest: +SKIP
    ('song-1', 69.0, 153.0, 149.0)
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from audiovec.audio import Audio, AudioSource, info, load
from audiovec.errors import ConfigError, DuplicateIdError, StoreError
from audiovec.identify.calibration import Calibration, calibrate, confidence
from audiovec.identify.fingerprint import FingerprintConfig, FingerprintIndex, FingerprintMatch, fingerprint
from audiovec.identify.results import MODES, Candidate, Identification, IndexedTrack, Mode

if TYPE_CHECKING:  # pragma: no cover
    from audiovec.embedders.base import Embedder
    from audiovec.ingest import Ingest
    from audiovec.pooling import Pipeline
    from audiovec.stores import VectorStore

__all__ = ["DEFAULT_MIN_SCORE", "DEFAULT_MIN_SIMILARITY", "Identifier", "calibrate_threshold", "default_pipeline"]

log = logging.getLogger(__name__)

#: Default fingerprint threshold: landmarks agreeing on one offset. Calibrated on the Wesnoth benchmark (no
#: false positive among queries from tracks outside the index, see docs/identification.md).
DEFAULT_MIN_SCORE = 25
#: Default vector threshold: mean cosine similarity of the query's segments at the best offset. It depends on the
#: embedder and pipeline; this value suits MFCC with :func:`default_pipeline` (calibrate others).
DEFAULT_MIN_SIMILARITY = 0.998

_MANIFEST = "identifier.json"
_FP_DIR = "fingerprints"
_VEC_DIR = "vectors"
FORMAT_VERSION = 2


def default_pipeline() -> Pipeline:
    """Segment vectors for identification: 2 s windows every 1 s, mean and std of the frames, L2-normalised."""
    # imported here: pooling brings the embedder framework, which identifying by fingerprints never needs
    from audiovec.pooling import L2Normalize, Pipeline, Pool, Segments

    return Pipeline(steps=[Segments(window_s=2.0, hop_s=1.0), Pool(mode="mean_std"), L2Normalize()])


def calibrate_threshold(negative_scores: Iterable[float], max_false_positive_rate: float = 0.0) -> float:
    """The lowest threshold that keeps the false-positive rate on negative queries at most the given rate.

    A query is a false positive when its best score is ``>=`` the threshold; the threshold returned is just above
    the ``ceil((1 - rate) * n)``-th smallest negative score (for integer scores, that score plus one).

    Args:
        negative_scores: Best scores of queries from recordings that are *not* in the index.
        max_false_positive_rate: Tolerated fraction of false positives, in [0, 1).

    Raises:
        ConfigError: No scores, non-finite scores, or a rate outside [0, 1).
    """
    scores = np.sort(np.asarray(list(negative_scores), dtype=np.float64))
    if len(scores) == 0 or not np.isfinite(scores).all():
        raise ConfigError("calibrate_threshold needs at least one finite negative score")
    if not 0.0 <= max_false_positive_rate < 1.0:
        raise ConfigError(f"max_false_positive_rate must be in [0, 1), got {max_false_positive_rate}")
    allowed = math.floor(max_false_positive_rate * len(scores))
    top = float(scores[len(scores) - 1 - allowed])
    if np.all(scores == np.round(scores)):
        return top + 1.0
    return float(np.nextafter(top, np.inf))


class Identifier:
    """Index tracks and identify excerpts (see the module docs for the three modes).

    Args:
        fingerprints: A fingerprint index (needed by the ``fingerprint`` and ``filter_refine`` modes).
        store: A vector store for segment vectors (needed by ``vector`` and ``filter_refine``); cosine metric
            recommended, string ids.
        embedder: The embedder that makes segment vectors (required with ``store``).
        pipeline: Pooling recipe for segment vectors (default :func:`default_pipeline`).
        mode: Default mode; ``None`` picks ``filter_refine`` when both indexes are present, otherwise the one
            that is.
        candidates: Tracks that the vector stage passes to the fingerprint stage in ``filter_refine``.
        min_score: Fingerprint threshold (default :data:`DEFAULT_MIN_SCORE`).
        min_similarity: Vector threshold (default :data:`DEFAULT_MIN_SIMILARITY`).
        segment_hits: Hits retrieved per query segment in the vector stage.
        shortlist: Score exactly only the ``shortlist`` tracks with the best coarse offset votes
            (:meth:`FingerprintIndex.match`), a fixed cost for very large indexes; ``None`` (exact) scores tracks
            from the highest coarse bound down until none left can enter the result. On 532 tracks (28 hours), 50
            gave the same answers as exact matching 1.3× faster.

    Raises:
        ConfigError: Neither index, a store without an embedder, or invalid numbers.
    """

    def __init__(
        self,
        fingerprints: FingerprintIndex | None = None,
        store: VectorStore | None = None,
        embedder: Embedder | None = None,
        pipeline: Pipeline | None = None,
        *,
        mode: Mode | None = None,
        candidates: int = 10,
        min_score: float | None = None,
        min_similarity: float | None = None,
        segment_hits: int = 100,
        shortlist: int | None = None,
    ) -> None:
        if fingerprints is None and store is None:
            raise ConfigError("an Identifier needs a fingerprint index, a vector store, or both")
        if store is not None and embedder is None:
            raise ConfigError("a vector store needs the embedder that makes its vectors (embedder=...)")
        if candidates < 1 or segment_hits < 1:
            raise ConfigError(f"candidates and segment_hits must be >= 1, got {candidates} and {segment_hits}")
        self.fingerprints = fingerprints
        self.store = store
        self.embedder = embedder if store is not None else None
        self._ingest: Ingest | None = None  # the ingest path of the vector mode, built when first used
        self._label = self.embedder.name if self.embedder is not None else ""
        self._store_dir: Path | None = None  # where create()/open() placed the vector store
        # built on first use (the vector mode, save()): identifying by fingerprints never imports audiovec.pooling
        self._pipeline: Pipeline | None = pipeline
        self._pipeline_spec: dict[str, Any] | None = None  # a saved pipeline that open() has not validated yet
        self.candidates = int(candidates)
        if shortlist is not None and shortlist < 1:
            raise ConfigError(f"shortlist must be >= 1 or None, got {shortlist}")
        self.shortlist = shortlist
        self.min_score = float(DEFAULT_MIN_SCORE if min_score is None else min_score)
        self.min_similarity = float(DEFAULT_MIN_SIMILARITY if min_similarity is None else min_similarity)
        self.segment_hits = int(segment_hits)
        self.path: Path | None = None
        self._bare = False
        self._tracks: dict[str, dict[str, Any]] = {}
        #: Calibrations by score kind (``"fingerprint"``, ``"vector"``), saved with the index.
        self.calibrations: dict[str, Calibration] = {}
        if fingerprints is not None:  # adopt the tracks of an existing index
            self._tracks = {t.track_id: _track_entry(t.duration, t.metadata) for t in fingerprints.tracks()}
        self.mode: Mode = self._check_mode(mode) if mode is not None else self._default_mode()

    @property
    def pipeline(self) -> Pipeline:
        """Pooling recipe for segment vectors (:func:`default_pipeline` unless one was given or saved)."""
        if self._pipeline is None:
            if self._pipeline_spec is not None:
                from audiovec.pooling import Pipeline

                self._pipeline = Pipeline.model_validate(self._pipeline_spec)
                self._pipeline_spec = None
            else:
                self._pipeline = default_pipeline()
        return self._pipeline

    @pipeline.setter
    def pipeline(self, pipeline: Pipeline) -> None:
        self._pipeline, self._pipeline_spec = pipeline, None

    # ------------------------------------------------------------------ construction and persistence
    def _default_mode(self) -> Mode:
        if self.fingerprints is not None and self.store is not None:
            return "filter_refine"
        return "fingerprint" if self.fingerprints is not None else "vector"

    def _check_mode(self, mode: str) -> Mode:
        if mode not in MODES:
            raise ConfigError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
        needs_fp = mode in ("fingerprint", "filter_refine")
        needs_vec = mode in ("vector", "filter_refine")
        if needs_fp and self.fingerprints is None:
            raise ConfigError(f"mode {mode!r} needs a fingerprint index, and this Identifier has none")
        if needs_vec and self.store is None:
            raise ConfigError(
                f"mode {mode!r} needs a vector store and an embedder, and this index has fingerprints only. "
                "Vectors are added when an index is created: build one with "
                '"audiovec fingerprint index MUSIC_DIR --db NEW_DB --embedder mfcc" '
                "(in Python: Identifier.create(path, embedder='mfcc'))"
            )
        return mode  # type: ignore[return-value]

    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        *,
        fingerprints: bool = True,
        fingerprint_config: FingerprintConfig | None = None,
        embedder: Embedder | str | None = None,
        pipeline: Pipeline | None = None,
        store: str = "exact",
        store_params: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> Identifier:
        """Start a new identifier persisted in the folder ``path`` (written by :meth:`save`).

        Args:
            path: A folder that does not exist yet, or is empty.
            fingerprints: Keep a fingerprint index (``path/fingerprints``).
            fingerprint_config: Its parameters.
            embedder: An embedder or a registered name (e.g. ``"mfcc"``) for a vector index (``path/vectors``);
                ``None``: no vector index.
            pipeline: Pooling recipe for segment vectors (default :func:`default_pipeline`).
            store: Registered vector-store name (``"exact"``, ``"faiss"``...).
            store_params: Extra constructor arguments of the store (``index="hnsw"``...).
            **kwargs: Passed to :class:`Identifier` (``mode``, ``candidates``, ``min_score``...).

        Raises:
            StoreError: ``path`` already holds something.
        """
        root = Path(path)
        if root.exists() and (not root.is_dir() or any(root.iterdir())):
            raise StoreError(f"{root} exists and is not empty; open it with Identifier.open()")
        fp = FingerprintIndex(fingerprint_config) if fingerprints else None
        vec_store = emb = None
        if embedder is not None:
            from audiovec.embedders import get_embedder
            from audiovec.stores import get_store

            emb = get_embedder(embedder) if isinstance(embedder, str) else embedder
            pipe = pipeline or default_pipeline()
            params = {"metric": "cosine", **dict(store_params or {})}
            vec_store = get_store(store, params, directory=root / _VEC_DIR, dim=pipe.output_dim(emb.dim), id_type="str")
        ident = cls(fp, vec_store, emb, pipeline, **kwargs)
        ident.path = root
        ident._store_dir = root / _VEC_DIR if vec_store is not None else None
        ident.save()
        return ident

    def save(self, path: str | os.PathLike[str] | None = None) -> Path:
        """Write the identifier (manifest, fingerprint index, vector store) to its folder.

        A vector store is saved in place, so an identifier with one can only be saved to the folder it was
        created in or opened from.

        Raises:
            ConfigError: No path known, or a vector store that lives elsewhere.
        """
        root = Path(path) if path is not None else self.path
        if root is None:
            raise ConfigError("save() needs a path for an identifier that was never saved or opened")
        if self._bare and self.fingerprints is not None and self.store is None and root == self.path:
            if self.calibrations:
                raise ConfigError(
                    f"{root} is a bare fingerprint index, which cannot hold a calibration; save the identifier to a "
                    "new folder with save(path) and calibrate that one"
                )
            return self.fingerprints.save(root)  # opened from a bare fingerprint-index folder: keep it one
        if self.store is not None:
            if self._store_dir is None or self._store_dir.resolve() != (root / _VEC_DIR).resolve():
                raise ConfigError(
                    f"the vector store is not persisted in {root / _VEC_DIR}; build the identifier with "
                    "Identifier.create(path, embedder=...) to save it"
                )
            self.store.save()
        root.mkdir(parents=True, exist_ok=True)
        if self.fingerprints is not None:
            self.fingerprints.save(root / _FP_DIR)
        manifest = {
            "format": "audiovec.identifier",
            "version": FORMAT_VERSION,
            "mode": self.mode,
            "candidates": self.candidates,
            "min_score": self.min_score,
            "min_similarity": self.min_similarity,
            "segment_hits": self.segment_hits,
            "fingerprints": self.fingerprints is not None,
            "store": self.store.name if self.store is not None else None,
            "embedder": self.embedder.spec().model_dump(mode="json") if self.embedder is not None else None,
            "embedder_config": _embedder_config(self.embedder),
            "pipeline": self.pipeline.model_dump(mode="json"),
            "calibration": {k: c.to_dict() for k, c in self.calibrations.items()},
            "tracks": self._tracks,
        }
        tmp = root / f".{_MANIFEST}.tmp"
        tmp.write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        os.replace(tmp, root / _MANIFEST)
        self.path = root
        return root

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, embedder: Embedder | None = None, mmap: bool = True) -> Identifier:
        """Open an identifier saved with :meth:`save` (or made by ``audiovec fingerprint index``).

        Args:
            path: The identifier folder. A bare fingerprint-index folder is accepted too.
            embedder: The embedder of the vector index; by default rebuilt from the saved spec with
                :func:`audiovec.get_embedder` (it must produce the same spec).
            mmap: Memory-map the fingerprint arrays.

        Raises:
            StoreError: Nothing readable at ``path``.
            ConfigError: ``embedder`` does not match the saved spec.
        """
        root = Path(path)
        manifest_file = root / _MANIFEST
        if not manifest_file.exists():
            if (root / "manifest.json").exists():  # a bare FingerprintIndex folder
                ident = cls(FingerprintIndex.load(root, mmap=mmap))
                ident.path, ident._bare = root, True
                return ident
            raise StoreError(f"{root}: no identifier here ({_MANIFEST} missing)")
        try:
            m: dict[str, Any] = json.loads(manifest_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise StoreError(f"{root}: unreadable {_MANIFEST}: {err}") from err
        if m.get("format") != "audiovec.identifier" or m.get("version") not in (1, FORMAT_VERSION):
            raise StoreError(f"{root}: {_MANIFEST} is not a supported identifier manifest")
        if m.get("version") == 1 and m.get("store"):
            raise StoreError(
                f"{root}: its vector index was written by an older audiovec with other record fields; create a new "
                "identifier with Identifier.create() and add the tracks again (its fingerprint index is still valid)"
            )
        fp = FingerprintIndex.load(root / _FP_DIR, mmap=mmap) if m.get("fingerprints") else None
        vec_store = emb = pipeline = None
        if m.get("store"):
            from audiovec.embedders import get_embedder
            from audiovec.embedders.base import EmbedderSpec
            from audiovec.pooling import Pipeline
            from audiovec.stores import get_store

            spec = EmbedderSpec.model_validate(m["embedder"])
            emb = embedder
            if emb is None:
                params = m.get("embedder_config") or spec.params
                try:
                    emb = get_embedder(spec.name, **params)
                except ConfigError as err:
                    raise ConfigError(
                        f"cannot rebuild the embedder {spec.name!r} of {root} ({err}); pass embedder=..."
                    ) from err
            if emb.spec().key() != spec.key():
                raise ConfigError(f"the embedder {emb.spec()!r} does not match the index's {spec!r}")
            vec_store = get_store(m["store"], directory=root / _VEC_DIR)
            pipeline = Pipeline.model_validate(m["pipeline"])  # the vector mode needs it: checked now
        ident = cls(
            fp,
            vec_store,
            emb,
            pipeline,
            mode=m.get("mode"),
            candidates=int(m.get("candidates", 10)),
            min_score=m.get("min_score"),
            min_similarity=m.get("min_similarity"),
            segment_hits=int(m.get("segment_hits", 100)),
        )
        if pipeline is None:  # fingerprints only: validated when first used (or saved), not imported now
            ident._pipeline_spec = m["pipeline"]
        ident._tracks = {str(k): dict(v) for k, v in m.get("tracks", {}).items()}
        ident.calibrations = {str(k): Calibration.from_dict(v) for k, v in (m.get("calibration") or {}).items()}
        ident.path = root
        ident._store_dir = root / _VEC_DIR if vec_store is not None else None
        return ident

    def close(self) -> None:
        """Save (when persisted) and close the vector store."""
        if self.path is not None:
            self.save()
        if self.store is not None:
            self.store.close()

    def __enter__(self) -> Identifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ tracks
    def __len__(self) -> int:
        return len(self._tracks)

    def __contains__(self, track_id: object) -> bool:
        return isinstance(track_id, str) and track_id in self._tracks

    @property
    def track_ids(self) -> list[str]:
        """Ids of the indexed tracks."""
        return list(self._tracks)

    def track(self, track_id: str) -> IndexedTrack:
        """Duration and metadata of an indexed track.

        Raises:
            KeyError: Unknown track.
        """
        entry = self._tracks[track_id]
        return IndexedTrack(track_id, float(entry["duration"]), dict(entry["metadata"]))

    def add(
        self,
        source: AudioSource | Audio,
        track_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        *,
        replace: bool = False,
    ) -> str:
        """Index one track in every index the identifier has.

        Files are streamed (bounded memory whatever their length); :class:`~audiovec.audio.Audio` is used as is.

        Args:
            source: A path, bytes, a file object or decoded audio.
            track_id: Default: the path as given.
            metadata: JSON-serialisable metadata returned with matches (default ``{"path": ...}`` for paths).
            replace: Replace an already indexed track of the same id.

        Returns:
            The track id.

        Raises:
            DuplicateIdError: The id is taken and ``replace`` is false.
            AudioError: The source cannot be read.
        """
        is_path = isinstance(source, (str, os.PathLike))
        if track_id is None:
            if not is_path:
                raise ConfigError("add() needs a track_id when the source is not a path")
            track_id = os.fspath(source)  # type: ignore[arg-type]
        if not track_id or "#" in track_id:
            raise ConfigError(f"track_id must be a non-empty string without '#', got {track_id!r}")
        if metadata is None and is_path:
            metadata = {"path": os.fspath(source)}  # type: ignore[arg-type]
        if track_id in self._tracks:
            if not replace:
                raise DuplicateIdError(f"track {track_id!r} is already indexed (pass replace=True to replace it)")
            self.remove(track_id)
        if not isinstance(source, Audio) and not is_path:
            source = load(source)  # bytes and file objects cannot be read twice
        duration = source.duration if isinstance(source, Audio) else info(source).duration
        fp_info = None
        if self.fingerprints is not None:
            if isinstance(source, Audio):
                fp_info = self.fingerprints.add_audio(source, track_id, metadata)
            else:
                fp_info = self.fingerprints.add_file(source, track_id, metadata)
            metadata = fp_info.metadata
            duration = fp_info.duration
        if self.store is not None:
            try:
                self._add_vectors(source, track_id, duration)
            except BaseException:
                if fp_info is not None and self.fingerprints is not None:
                    self.fingerprints.remove(track_id)
                raise
        self._tracks[track_id] = _track_entry(duration, dict(metadata or {}))
        return track_id

    def _add_vectors(self, source: AudioSource | Audio, track_id: str, duration: float) -> None:
        assert self.store is not None
        origin = source if isinstance(source, Audio) else os.fspath(source)  # type: ignore[arg-type]
        from audiovec.ingest import Source
        from audiovec.ingest.records import vector_records

        item = self._ingest_path().process([Source.of(origin, key=track_id)])[0]
        frames = item.frames_of(self._label)
        pooled = self.pipeline(frames)
        ids, metas = vector_records(track_id, pooled, duration=frames.duration)
        self.store.add(pooled.vectors, ids=ids, metadata=metas)

    def add_many(
        self,
        sources: Iterable[AudioSource | tuple[AudioSource, str] | tuple[AudioSource, str, Mapping[str, Any]]],
        *,
        replace: bool = False,
    ) -> list[str]:
        """Index several tracks: each item is a source, ``(source, track_id)`` or ``(source, track_id, meta)``."""
        out = []
        for item in sources:
            if isinstance(item, tuple):
                out.append(self.add(*item, replace=replace))
            else:
                out.append(self.add(item, replace=replace))
        return out

    def remove(self, track_id: str) -> bool:
        """Remove a track from every index; returns whether it was indexed."""
        found = self._tracks.pop(track_id, None) is not None
        if self.fingerprints is not None:
            found = self.fingerprints.remove(track_id) or found
        if self.store is not None:
            from audiovec.ingest.records import ITEM
            from audiovec.stores import Eq

            found = self.store.delete(filter=Eq(ITEM, track_id)) > 0 or found
        return found

    # ------------------------------------------------------------------ identification
    def identify(self, query: AudioSource | Audio, *, mode: Mode | None = None, top: int = 5) -> Identification:
        """Identify an excerpt.

        Args:
            query: A path, bytes, a file object, or decoded audio.
            mode: Override the default mode.
            top: Ranked candidates to report.

        Returns:
            The :class:`Identification` (``track_id=None`` when nothing scores above the threshold).

        Raises:
            AudioError: The query cannot be read.
            ConfigError: A mode this identifier cannot run.
        """
        md = self._check_mode(mode) if mode is not None else self.mode
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        audio = query if isinstance(query, Audio) else load(query)
        timings["decode"] = time.perf_counter() - t0
        shortlist = None
        if md == "fingerprint":
            ranked = self._fingerprint_stage(audio, None, top, timings)
        elif md == "vector":
            ranked = self._vector_stage(audio, max(top, 2), timings)
        else:
            shortlist = [c.track_id for c, _ in self._vector_stage(audio, self.candidates, timings)]
            ranked = self._fingerprint_stage(audio, shortlist, top, timings)
        threshold = self.min_similarity if md == "vector" else self.min_score
        return self._decide(ranked, md, threshold, top, timings, shortlist)

    def _fingerprint_stage(
        self, audio: Audio, tracks: Sequence[str] | None, top: int, timings: dict[str, float]
    ) -> list[tuple[Candidate, float]]:
        assert self.fingerprints is not None
        t0 = time.perf_counter()
        fp = fingerprint(audio, self.fingerprints.config, query=True)
        t1 = time.perf_counter()
        matches: list[FingerprintMatch] = self.fingerprints.match(
            fp, tracks=tracks, limit=max(top, 2), shortlist=self.shortlist
        )
        timings["fingerprint"] = t1 - t0
        timings["match"] = time.perf_counter() - t1
        return [
            (Candidate(m.track_id, float(m.score), m.offset, self._meta(m.track_id, m.metadata)), m.landmark_fraction)
            for m in matches
        ]

    def _vector_stage(self, audio: Audio, limit: int, timings: dict[str, float]) -> list[tuple[Candidate, float]]:
        assert self.store is not None
        t0 = time.perf_counter()
        from audiovec.ingest import Source
        from audiovec.ingest.records import ITEM, START
        from audiovec.pooling import Segments

        pooled = self.pipeline(self._ingest_path().process([Source.of(audio, key="query")])[0].frames_of(self._label))
        t1 = time.perf_counter()
        k = min(self.segment_hits, max(1, self.store.count()))
        hits = self.store.search(pooled.vectors, k=k)
        timings["embed"] = t1 - t0
        timings["search"] = time.perf_counter() - t1
        n_seg = len(pooled)
        seg = next((st for st in self.pipeline.steps if isinstance(st, Segments)), None)
        hop = (seg.hop_s or seg.window_s) if seg is not None else None
        # Vote for (track, offset): every query segment supports an offset with its best similarity there, and
        # a track's score is the mean over query segments at its best-supported offset (two adjacent offset bins
        # merged). Without segments every hit votes for offset 0.
        support: dict[tuple[str, int], dict[int, tuple[float, float]]] = {}
        for j, seg_hits in enumerate(hits):
            q_start = float(pooled.starts[j])
            for h in seg_hits:
                track = str(h.metadata.get(ITEM, ""))
                offset = float(h.metadata.get(START, 0.0)) - q_start
                b = math.floor(offset / hop + 1e-9) if hop else 0
                for key in ((track, b), (track, b - 1)):
                    per_seg = support.setdefault(key, {})
                    if j not in per_seg or h.score > per_seg[j][0]:
                        per_seg[j] = (float(h.score), offset)
        best: dict[str, tuple[float, float]] = {}
        for (track, _), per_seg in support.items():
            score = sum(v[0] for v in per_seg.values()) / n_seg
            if track not in best or score > best[track][0]:
                offset = max(per_seg.values())[1]
                best[track] = (score, offset)
        ranked: list[tuple[Candidate, float]] = []
        for track, (score, offset) in best.items():
            cand = Candidate(track, score, offset, self._meta(track, None))
            ranked.append((cand, max(0.0, min(1.0, score))))
        ranked.sort(key=lambda cs: (-cs[0].score, cs[0].track_id))
        return ranked[:limit]

    def _ingest_path(self) -> Ingest:
        """The ingest path that embeds tracks and queries for the vector mode (imported and built on first use)."""
        if self._ingest is None:
            from audiovec.ingest import Ingest

            assert self.embedder is not None
            self._ingest = Ingest(self.embedder)
        return self._ingest

    def _meta(self, track_id: str, fallback: dict[str, Any] | None) -> dict[str, Any]:
        entry = self._tracks.get(track_id)
        if entry is not None:
            return dict(entry["metadata"])
        return dict(fallback or {})

    def _decide(
        self,
        ranked: list[tuple[Candidate, float]],
        mode: Mode,
        threshold: float,
        top: int,
        timings: dict[str, float],
        shortlist: list[str] | None,
    ) -> Identification:
        cands = [c for c, _ in ranked]
        if not cands:
            fraction = 0.0 if _kind(mode) == "fingerprint" else None
            return Identification(
                None, {}, None, 0.0, 0.0, None, 0.0, mode, threshold, [], timings, shortlist, landmark_fraction=fraction
            )
        best, fraction = ranked[0]
        runner = cands[1] if len(cands) > 1 else None
        margin = best.score - (runner.score if runner is not None else 0.0)
        ok = best.score >= threshold
        kind = _kind(mode)
        cal = self.calibrations.get(kind)
        conf = confidence(best.score, threshold, kind=kind, scale=cal.scale if cal is not None else None)
        return Identification(
            track_id=best.track_id if ok else None,
            metadata=best.metadata if ok else {},
            offset=best.offset if ok else None,
            score=best.score,
            margin=margin,
            runner_up=runner.track_id if runner is not None else None,
            confidence=conf,
            mode=mode,
            threshold=threshold,
            candidates=cands[:top],
            timings=timings,
            shortlist=shortlist,
            landmark_fraction=fraction if kind == "fingerprint" else None,
        )

    def calibrate(
        self,
        negatives: Iterable[AudioSource | Audio],
        *,
        mode: Mode | None = None,
        max_false_positive_rate: float = 0.0,
    ) -> float:
        """Set the mode's threshold from queries of recordings that are *not* indexed.

        The :class:`~audiovec.identify.calibration.Calibration` is kept in :attr:`calibrations` (and saved with
        the index by :meth:`save`); it also sets the scale of the confidences.

        Args:
            negatives: Excerpts (paths or audio) from tracks outside the index, as long and as degraded as the
                queries you expect.
            mode: The mode to calibrate (default: the identifier's).
            max_false_positive_rate: Tolerated fraction of those that may still be (wrongly) matched.

        Returns:
            The new threshold (also stored in ``min_score`` or ``min_similarity``).

        Raises:
            ConfigError: No negatives, or a rate outside [0, 1).
        """
        md = self._check_mode(mode) if mode is not None else self.mode
        scores = [self.identify(q, mode=md).score for q in negatives]
        cal = calibrate(scores, max_false_positive_rate, kind=_kind(md), mode=md)
        self.set_calibration(cal)
        return cal.threshold

    def set_calibration(self, calibration: Calibration) -> None:
        """Adopt a calibration: its threshold becomes ``min_score`` (fingerprint scores) or ``min_similarity``."""
        if calibration.kind == "vector":
            self.min_similarity = calibration.threshold
        else:
            self.min_score = calibration.threshold
        self.calibrations[calibration.kind] = calibration

    def threshold(self, mode: Mode | None = None) -> float:
        """The threshold a mode compares its best score with (``min_similarity`` for ``vector``, else ``min_score``)."""
        md = self._check_mode(mode) if mode is not None else self.mode
        return self.min_similarity if md == "vector" else self.min_score


def _kind(mode: str) -> str:
    """Which scores a mode produces: ``"vector"`` (cosine) or ``"fingerprint"`` (landmark counts)."""
    return "vector" if mode == "vector" else "fingerprint"


def _embedder_config(embedder: Embedder | None) -> dict[str, Any] | None:
    """The constructor arguments of an embedder with a pydantic ``config`` (``None`` otherwise)."""
    from pydantic import BaseModel

    config = getattr(embedder, "config", None)
    if isinstance(config, BaseModel):
        out: dict[str, Any] = config.model_dump(mode="json")
        return out
    return None


def _track_entry(duration: float, metadata: dict[str, Any]) -> dict[str, Any]:
    return {"duration": float(duration), "metadata": metadata}

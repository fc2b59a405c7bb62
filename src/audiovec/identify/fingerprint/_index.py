"""A persistent landmark index: sorted NumPy arrays, memory-mappable, with add and remove of tracks.

Layout in memory: three parallel arrays sorted by hash: ``hashes uint32[n]``, ``tracks uint32[n]`` (a slot per
track) and ``times uint32[n]`` (anchor frame), 12 bytes per landmark. Looking up a query hash is two binary
searches (``np.searchsorted``); new tracks are merged in with one ``np.insert`` per array; removing a track is
one boolean mask.

Layout on disk (a folder)::

    manifest.json         format version, config, track table (with each track's base on the time axis), the
                          packed layout, names of the current array files
    offsets-<gen>.npy     the bucket table of the bit-packed postings (see ``_packed``), plain .npy so it can be
    words-<gen>.npy       memory-mapped; format 3 packs (hash, position on one global time axis)

Format 1 (three plain ``uint32`` arrays ``hashes``/``tracks``/``times``) and format 2 (packed with a track slot per
posting) still open; the next save writes format 3.

:meth:`FingerprintIndex.save` writes a new generation of array files, then replaces ``manifest.json`` atomically
(``os.replace``) and deletes the previous generation, so a crash never leaves a half-written index.

Matching (Wang 2003): every query hash is looked up; each hit gives a ``(track, ref_time - query_time)`` pair;
for each track the score is the height of the best time-offset bin (two adjacent 16 ms bins are merged, which
absorbs the ±1 frame jitter of peaks), and that bin gives the query's position in the track. Hits are expanded in
chunks of :data:`_HITS_PER_CHUNK`, so the temporaries of one match stay small whatever the query.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from audiovec._files import atomic_write
from audiovec.audio import Audio, AudioSource
from audiovec.errors import ConfigError, DuplicateIdError, StoreError
from audiovec.identify.fingerprint._config import FingerprintConfig
from audiovec.identify.fingerprint._hashes import Fingerprints, fingerprint, fingerprint_file
from audiovec.identify.fingerprint._packed import Found, PackedLayout, PackedPostings, choose_layout, pack

__all__ = ["FingerprintIndex", "FingerprintMatch", "IndexStats", "TrackInfo"]

log = logging.getLogger(__name__)

FORMAT_VERSION = 3
_READABLE_VERSIONS = (1, 2, 3)
_MANIFEST = "manifest.json"
_ARRAYS = ("hashes", "tracks", "times")
_PACKED_ARRAYS = ("offsets", "words")
_BYTES_PER_LANDMARK = 12
_MAX_HITS = 20_000_000  # bounds the memory of one match (8 bytes kept per hit)
_HITS_PER_CHUNK = 1 << 16  # hits expanded at a time (about 90 bytes of temporaries each)
_HITS_PER_EXACT_PASS = 1 << 18  # hits scored exactly at a time (about 60 bytes of temporaries each)
#: Matching votes first in coarse offset bins of 2**_COARSE_SHIFT frames (4 frames: 64 ms by default) ...
_COARSE_SHIFT = 2
#: ... made coarser, by powers of two, until every track's bins together fit in this many counters.
_MAX_COARSE_BINS = 4_000_000


@dataclass(frozen=True)
class TrackInfo:
    """One indexed track.

    Attributes:
        track_id: The caller's id.
        duration: Seconds of audio fingerprinted.
        n_hashes: Landmarks stored for it.
        metadata: The caller's metadata (a JSON object).
    """

    track_id: str
    duration: float
    n_hashes: int
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FingerprintMatch:
    """How well a query matches one indexed track.

    Attributes:
        track_id: The track.
        score: Query landmarks that agree on the best time offset (two adjacent 16 ms offset bins merged).
        offset: Where the query starts inside the track, in seconds (negative when the query starts before it).
        offset_frames: The same in frames of ``config.hop_length`` samples.
        hits: All landmark hits on this track, whatever their offset.
        query_hashes: Landmarks in the query.
        metadata: The track's metadata.
    """

    track_id: str
    score: int
    offset: float
    offset_frames: int
    hits: int
    query_hashes: int
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def landmark_fraction(self) -> float:
        """Fraction of the query's landmarks consistent with this match, in [0, 1]."""
        return min(1.0, self.score / self.query_hashes) if self.query_hashes else 0.0

    @property
    def confidence(self) -> float:
        """The same as :attr:`landmark_fraction` (an ``Identification``'s confidence is calibrated instead)."""
        return self.landmark_fraction


@dataclass(frozen=True)
class IndexStats:
    """Size of an index.

    Attributes:
        tracks: Tracks indexed.
        landmarks: Landmarks (hashes) stored.
        audio_seconds: Seconds of audio indexed.
        bytes: Size of the landmark data as held now: the packed arrays of format 2 (as saved on disk, about 3.3
            bytes per landmark) for an index that was saved or loaded and not changed since, else 12 bytes per
            landmark (three ``uint32`` arrays in memory).
    """

    tracks: int
    landmarks: int
    audio_seconds: float
    bytes: int

    @property
    def kb_per_minute(self) -> float:
        """Index size in kB (1000 bytes) per minute of audio."""
        return self.bytes / 1000 / (self.audio_seconds / 60) if self.audio_seconds > 0 else 0.0

    @property
    def landmarks_per_second(self) -> float:
        """Landmarks per second of audio."""
        return self.landmarks / self.audio_seconds if self.audio_seconds > 0 else 0.0


def _empty() -> dict[str, NDArray[np.uint32]]:
    return {name: np.zeros(0, dtype=np.uint32) for name in _ARRAYS}


class FingerprintIndex:
    """Landmark fingerprints of many tracks, searchable by time-offset voting.

    Args:
        config: Fingerprint parameters (default :class:`FingerprintConfig()`); fixed for the life of the index.
        max_postings: Query hashes stored more than this many times in the index are skipped as uninformative
            (like stop words); ``None`` keeps them all.

    Example:
        >>> from audiovec.identify.fingerprint import FingerprintIndex
        >>> index = FingerprintIndex()
        >>> index.add_file("song.mp3", "song-1", {"title": "Song"})  # doctest: +SKIP
        >>> index.match_file("excerpt.wav")[0].track_id  # doctest: +SKIP
        'song-1'
    """

    def __init__(self, config: FingerprintConfig | None = None, *, max_postings: int | None = None) -> None:
        if max_postings is not None and max_postings < 1:
            raise ConfigError(f"max_postings must be >= 1 or None, got {max_postings}")
        self.config = config or FingerprintConfig()
        self.max_postings = max_postings
        self.path: Path | None = None
        self._arrays = _empty()
        self._packed: PackedPostings | None = None
        self._pending: list[dict[str, NDArray[np.uint32]]] = []
        self._tracks: dict[int, TrackInfo] = {}
        self._slots: dict[str, int] = {}
        self._next_slot = 0
        self._generation: str | None = None
        self._lock = threading.RLock()
        self._frames: NDArray[np.int64] | None = None  # each slot's length in frames, until tracks change

    # ------------------------------------------------------------------ tracks
    def __len__(self) -> int:
        return len(self._slots)

    def __contains__(self, track_id: object) -> bool:
        return isinstance(track_id, str) and track_id in self._slots

    def __repr__(self) -> str:
        s = self.stats()
        where = str(self.path) if self.path else "memory"
        return f"FingerprintIndex({where!r}, tracks={s.tracks}, landmarks={s.landmarks})"

    @property
    def track_ids(self) -> list[str]:
        """Ids of the indexed tracks, in the order they were added."""
        return list(self._slots)

    def track(self, track_id: str) -> TrackInfo:
        """The :class:`TrackInfo` of ``track_id``.

        Raises:
            KeyError: Unknown track.
        """
        return self._tracks[self._slots[track_id]]

    def tracks(self) -> list[TrackInfo]:
        """Every indexed track, in the order they were added."""
        return [self._tracks[s] for s in self._slots.values()]

    def add(
        self,
        fingerprints: Fingerprints,
        track_id: str,
        metadata: Mapping[str, Any] | None = None,
        *,
        replace: bool = False,
    ) -> TrackInfo:
        """Index the fingerprints of one track.

        Args:
            fingerprints: Made with this index's config (reference density, ``query=False``).
            track_id: The id that matches return.
            metadata: A JSON-serialisable mapping returned with matches.
            replace: Replace a track with the same id instead of raising.

        Returns:
            The new track's info.

        Raises:
            DuplicateIdError: ``track_id`` is already indexed and ``replace`` is false.
            ConfigError: Fingerprints made with another config, an empty id, or metadata that is not JSON.
        """
        if not isinstance(track_id, str) or not track_id:
            raise ConfigError(f"track_id must be a non-empty string, got {track_id!r}")
        if fingerprints.config.key() != self.config.key():
            raise ConfigError(
                "fingerprints were made with another FingerprintConfig than this index's; use "
                "index.fingerprint(...) or fingerprint(audio, index.config)"
            )
        meta = _json_object(metadata)
        frames = _track_frames(fingerprints.duration, self.config)
        if len(fingerprints.times) and (int(fingerprints.times.min()) < 0 or int(fingerprints.times.max()) >= frames):
            raise ConfigError(
                f"fingerprint times must lie in 0..{frames - 1} frames for {fingerprints.duration:.2f} s of audio"
            )
        with self._lock:
            if track_id in self._slots:
                if not replace:
                    raise DuplicateIdError(f"track {track_id!r} is already indexed (pass replace=True to replace it)")
                self.remove(track_id)
            slot = self._next_slot
            self._next_slot += 1
            order = np.argsort(fingerprints.hashes, kind="stable")
            self._pending.append(
                {
                    "hashes": fingerprints.hashes[order].astype(np.uint32),
                    "tracks": np.full(len(order), slot, dtype=np.uint32),
                    "times": fingerprints.times[order].astype(np.uint32),
                }
            )
            info = TrackInfo(track_id, float(fingerprints.duration), len(fingerprints), meta)
            self._tracks[slot] = info
            self._frames = None
            self._slots[track_id] = slot
            return info

    def add_audio(
        self, audio: Audio, track_id: str, metadata: Mapping[str, Any] | None = None, *, replace: bool = False
    ) -> TrackInfo:
        """Fingerprint ``audio`` and index it (see :meth:`add`)."""
        return self.add(fingerprint(audio, self.config), track_id, metadata, replace=replace)

    def add_file(
        self,
        source: AudioSource,
        track_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        *,
        replace: bool = False,
    ) -> TrackInfo:
        """Fingerprint a file by streaming it (bounded memory) and index it (see :meth:`add`).

        Args:
            source: A path, bytes or binary file object.
            track_id: Default: the path as given.
            metadata: Default: ``{"path": <path>}`` when ``source`` is a path.
            replace: Replace a track with the same id.

        Raises:
            AudioError: The file cannot be read.
            DuplicateIdError: The id is taken and ``replace`` is false.
        """
        if track_id is None:
            if not isinstance(source, (str, os.PathLike)):
                raise ConfigError("add_file needs a track_id when the source is not a path")
            track_id = os.fspath(source)
        if metadata is None and isinstance(source, (str, os.PathLike)):
            metadata = {"path": os.fspath(source)}
        return self.add(fingerprint_file(source, self.config), track_id, metadata, replace=replace)

    def remove(self, track_id: str) -> bool:
        """Remove a track and its landmarks; returns whether it was indexed."""
        with self._lock:
            slot = self._slots.pop(track_id, None)
            if slot is None:
                return False
            del self._tracks[slot]
            self._frames = None
            self._unpack()
            self._pending = [p for p in self._pending if not (len(p["tracks"]) and p["tracks"][0] == slot)]
            keep = self._arrays["tracks"] != slot
            if not keep.all():
                self._arrays = {name: np.ascontiguousarray(a[keep]) for name, a in self._arrays.items()}
            return True

    def fingerprint(self, audio: Audio, *, query: bool = True) -> Fingerprints:
        """Fingerprint ``audio`` with this index's config (query density by default)."""
        return fingerprint(audio, self.config, query=query)

    # ------------------------------------------------------------------ storage
    def _unpack(self) -> None:
        """Turn packed postings into the three mutable arrays (before an add is merged or a track removed)."""
        with self._lock:
            if self._packed is not None:
                self._arrays = self._packed.unpack()
                self._packed = None

    def _merged(self) -> dict[str, NDArray[np.uint32]]:
        with self._lock:
            self._unpack()
            if not self._pending:
                return self._arrays
            if len(self._pending) == 1:
                new = self._pending[0]
            else:
                cat = {name: np.concatenate([p[name] for p in self._pending]) for name in _ARRAYS}
                order = np.argsort(cat["hashes"], kind="stable")
                new = {name: a[order] for name, a in cat.items()}
            main = self._arrays
            if len(main["hashes"]) == 0:
                merged = {name: np.ascontiguousarray(a) for name, a in new.items()}
            else:
                pos = np.searchsorted(main["hashes"], new["hashes"], side="right")
                merged = {name: np.insert(main[name], pos, new[name]) for name in _ARRAYS}
            self._arrays = merged
            self._pending = []
            return merged

    def _slot_frames(self) -> NDArray[np.int64]:
        """Each slot's length in frames (0 for a free slot), computed once until tracks change; with the lock held."""
        if self._frames is None:
            frames = np.zeros(max(self._tracks, default=0) + 1, dtype=np.int64)
            for slot, info in self._tracks.items():
                frames[slot] = _track_frames(info.duration, self.config)
            self._frames = frames
        return self._frames

    def _bases(self, arrays: dict[str, NDArray[np.uint32]]) -> tuple[dict[int, int], int]:
        """Each track's start on the global time axis of format 3, and the axis' length in frames.

        Tracks lie in slot order, each as long as its audio.
        """
        longest = np.zeros(max(self._next_slot, 1), dtype=np.int64)
        if len(arrays["tracks"]):  # an index opened from an older format may hold times past the duration's frames
            np.maximum.at(longest, arrays["tracks"], arrays["times"].astype(np.int64) + 1)
        bases: dict[int, int] = {}
        at = 0
        for slot in sorted(self._tracks):
            bases[slot] = at
            at += max(_track_frames(self._tracks[slot].duration, self.config), int(longest[slot]))
        return bases, at

    def stats(self) -> IndexStats:
        """Tracks, landmarks, seconds of audio and bytes (see :class:`IndexStats`)."""
        with self._lock:
            seconds = sum(t.duration for t in self._tracks.values())
            if self._packed is not None and not self._pending:
                return IndexStats(len(self._slots), self._packed.n, seconds, self._packed.nbytes)
            n = len(self._arrays["hashes"]) + sum(len(p["hashes"]) for p in self._pending)
            n += self._packed.n if self._packed is not None else 0
            return IndexStats(len(self._slots), n, seconds, n * _BYTES_PER_LANDMARK)

    def save(self, path: str | os.PathLike[str] | None = None) -> Path:
        """Write the index to a folder (created if needed); later saves without ``path`` go to the same one.

        Raises:
            ConfigError: No path given and the index was never saved or opened.
            StoreError: The folder holds something that is not a fingerprint index.
        """
        with self._lock:
            target = Path(path) if path is not None else self.path
            if target is None:
                raise ConfigError("save() needs a path for an index that was never saved or opened")
            arrays = self._merged()
            target.mkdir(parents=True, exist_ok=True)
            old_manifest = target / _MANIFEST
            old_files: list[str] = []
            if old_manifest.exists():
                old_files = list(_read_manifest(target)["arrays"].values())
            elif any(target.iterdir()):
                raise StoreError(f"{target} exists, is not empty and holds no fingerprint index ({_MANIFEST})")
            gen = uuid.uuid4().hex[:12]
            n = len(arrays["hashes"])
            bases, end = self._bases(arrays)
            slot_base = np.zeros(max(self._next_slot, 1), dtype=np.int64)
            for slot, base in bases.items():
                slot_base[slot] = base
            layout = choose_layout(n, self.config.hash_bits, 0, max(end - 1, 0))
            packed: PackedPostings | None = None
            if layout is None:  # a posting wider than 57 bits (an absurd time axis): the plain format 1 arrays
                version = 1
                files = {name: f"{name}-{gen}.npy" for name in _ARRAYS}
                for name in _ARRAYS:
                    _write_npy(target / files[name], arrays[name])
            else:
                version = FORMAT_VERSION
                position = slot_base[arrays["tracks"]] + arrays["times"]
                offsets, words = pack(arrays["hashes"], np.zeros(n, dtype=np.uint32), position, layout)
                del position
                files = {name: f"{name}-{gen}.npy" for name in _PACKED_ARRAYS}
                _write_npy(target / files["offsets"], offsets)
                _write_npy(target / files["words"], words)
                packed = PackedPostings(layout, offsets, words, n, _base_table(bases))
            manifest: dict[str, Any] = {
                "format": "audiovec.identify.fingerprint",
                "version": version,
                "config": self.config.to_dict(),
                "max_postings": self.max_postings,
                "next_slot": self._next_slot,
                "arrays": files,
                "landmarks": n,
                "tracks": [
                    {"slot": slot, **_track_json(self._tracks[slot]), **({"base": bases[slot]} if layout else {})}
                    for slot in self._slots.values()
                ],
            }
            if layout is not None:
                manifest["layout"] = {
                    "hash_bits": layout.hash_bits,
                    "bucket_bits": layout.bucket_bits,
                    "track_bits": layout.track_bits,
                    "time_bits": layout.time_bits,
                }
            _write_text(old_manifest, json.dumps(manifest, indent=1))
            for f in old_files:
                if f not in files.values():
                    (target / f).unlink(missing_ok=True)
            if packed is not None:  # hold what was written: a quarter of the memory
                self._packed = packed
                self._arrays = _empty()
            self.path = target
            self._generation = gen
            return target

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, mmap: bool = True) -> FingerprintIndex:
        """Open an index saved with :meth:`save`.

        Args:
            path: The index folder.
            mmap: Memory-map the arrays (read lazily by the OS) instead of reading them into memory. Each match
                hands the pages it read back to the OS afterwards, so a process that answers many queries holds
                only the pages of the match in progress (the file stays in the OS page cache).

        Raises:
            StoreError: No index there, or an unreadable/incompatible one.
        """
        root = Path(path)
        manifest = _read_manifest(root)
        try:
            config = FingerprintConfig.from_stored(manifest["config"])
        except ValueError as err:
            raise StoreError(f"{root}: invalid fingerprint config in {_MANIFEST}: {err}") from err
        index = cls(config, max_postings=manifest.get("max_postings"))
        try:
            n = int(manifest["landmarks"]) if "landmarks" in manifest else None
            if manifest["version"] == 1:
                index._arrays = _load_v1(root, manifest, mmap, n)
            else:
                index._packed = _load_packed(root, manifest, config, mmap, n)
        except (KeyError, TypeError, ValueError) as err:
            raise StoreError(f"{root}: damaged {_MANIFEST} ({type(err).__name__}: {err}); rebuild the index") from err
        for row in manifest["tracks"]:
            slot = int(row["slot"])
            index._tracks[slot] = TrackInfo(
                row["track_id"], float(row["duration"]), int(row["n_hashes"]), dict(row["metadata"])
            )
            index._slots[row["track_id"]] = slot
        index._next_slot = int(manifest["next_slot"])
        index.path = root
        return index

    @classmethod
    def open(
        cls, path: str | os.PathLike[str], config: FingerprintConfig | None = None, *, mmap: bool = True
    ) -> FingerprintIndex:
        """Open the index at ``path``, or start a new one that :meth:`save` will write there.

        Raises:
            ConfigError: An existing index was built with another ``config`` than the one given.
            StoreError: ``path`` holds something else.
        """
        root = Path(path)
        if (root / _MANIFEST).exists():
            index = cls.load(root, mmap=mmap)
            if config is not None and config.key() != index.config.key():
                raise ConfigError(f"{root} was built with another fingerprint config: {index.config!r}")
            return index
        if root.exists() and (not root.is_dir() or any(root.iterdir())):
            raise StoreError(f"{root} exists and holds no fingerprint index ({_MANIFEST})")
        index = cls(config)
        index.path = root
        return index

    # ------------------------------------------------------------------ matching
    def match(
        self,
        query: Fingerprints,
        *,
        tracks: Iterable[str] | None = None,
        limit: int = 5,
        shortlist: int | None = None,
    ) -> list[FingerprintMatch]:
        """Score indexed tracks against a query by time-offset voting.

        Matching filters, then refines, and the result is exact: the hits are first counted in coarse offset bins
        (64 ms: one counting pass, no sort), which bound each track's exact score from above; tracks are then
        scored exactly from the highest bound down, until no track left can reach the ``limit``-th best score.
        On 532 tracks this sorts about a tenth of the chance matches that scoring every track would.

        Args:
            query: Fingerprints of the excerpt (made with this index's config, preferably ``query=True``).
            tracks: Only score these track ids (filter-and-refine); unknown ids are ignored. ``None``: all.
            limit: Return at most this many tracks.
            shortlist: Score exactly only the ``shortlist`` tracks with the best coarse bins, whatever their bound
                (an approximation with a fixed cost, for very large indexes). The coarse votes are the same
                landmark matches as the exact ones, so the right track's aligned votes stand out there as they do
                in the exact histogram. ``None``: the exact result.

        Returns:
            The best tracks, highest score first (ties by track id); tracks without a single hit are left out.

        Raises:
            ConfigError: Fingerprints made with another config, or ``limit < 1``.
        """
        if limit < 1:
            raise ConfigError(f"limit must be >= 1, got {limit}")
        if shortlist is not None and shortlist < 1:
            raise ConfigError(f"shortlist must be >= 1 or None, got {shortlist}")
        if query.config.key() != self.config.key():
            raise ConfigError("the query was fingerprinted with another FingerprintConfig than this index's")
        nq = len(query.hashes)
        with self._lock:
            packed = self._packed if not self._pending else None
            arrays = self._merged() if packed is None else self._arrays
            allowed = None
            if tracks is not None:
                allowed = np.array(sorted({self._slots[t] for t in tracks if t in self._slots}), dtype=np.uint32)
                if len(allowed) == 0:
                    return []
            slot_info = dict(self._tracks)
            frames = self._slot_frames()
        n_ref = packed.n if packed is not None else len(arrays["hashes"])
        if nq == 0 or n_ref == 0:
            return []
        uq, inv = np.unique(query.hashes, return_inverse=True)
        found: Found | None = None
        if packed is not None:
            found = packed.lookup(uq)
            lo, hi = found.lo, found.hi
        else:
            lo = np.searchsorted(arrays["hashes"], uq, side="left")
            hi = np.searchsorted(arrays["hashes"], uq, side="right")
        cnt = hi - lo
        if self.max_postings is not None:
            cnt = np.where(cnt > self.max_postings, 0, cnt)
        per_q = cnt[inv]
        total = int(per_q.sum())
        if total > _MAX_HITS:  # pathological queries (a steady tone...): drop the most common hashes first
            load = cnt * np.bincount(inv, minlength=len(uq))
            order = np.argsort(-load, kind="stable")
            drop = order[: int(np.searchsorted(np.cumsum(load[order]), total - _MAX_HITS) + 1)]
            cnt[drop] = 0
            per_q = cnt[inv]
            total = int(per_q.sum())
            log.debug("query too generic: skipped %d common hashes", len(drop))
        if total == 0:
            return []
        bins = _CoarseBins.layout(frames, int(query.times.max()) + 1)
        cells, offsets = _expand_hits(query, inv, lo, cnt, found, arrays, allowed, bins)
        if packed is not None:
            packed.release()
        del found
        if len(cells) == 0:
            return []
        # Coarse votes bound every track's exact score from above; score tracks exactly from the highest bound
        # down, until no unscored track can reach the limit-th best score (or only the shortlist).
        votes = np.bincount(cells, minlength=bins.total)
        hits_per_track = np.add.reduceat(votes, bins.starts[:-1])
        bound = bins.bounds(votes)
        del votes
        ranked = np.argsort(-bound, kind="stable")
        ranked = ranked[bound[ranked] > 0]
        if shortlist is not None:
            ranked = ranked[: max(shortlist, limit)]
        scored: list[tuple[int, int, int]] = []  # (score, slot, offset)
        done, size = 0, max(4 * limit, 16)
        while done < len(ranked):
            tracks_now = ranked[done : done + size]
            # a few hundred thousand hits at a time, so sorting them stays small whatever the query
            group = np.cumsum(hits_per_track[tracks_now]) // _HITS_PER_EXACT_PASS
            for g in np.unique(group):
                batch = np.zeros(len(bound), dtype=bool)
                batch[tracks_now[group == g]] = True
                keep = np.repeat(batch, bins.per_track)[cells]
                scored += _exact_scores(bins.slots(cells[keep]), offsets[keep])
            done, size = done + size, 2 * size
            if len(scored) >= limit and done < len(ranked):
                kth = sorted((sc for sc, _, _ in scored), reverse=True)[limit - 1]
                if bound[ranked[done]] < kth:
                    break
        out: list[FingerprintMatch] = []
        for score, slot, off in scored:
            track = slot_info.get(slot)
            if track is None:
                continue
            out.append(
                FingerprintMatch(
                    track_id=track.track_id,
                    score=score,
                    offset=off * self.config.hop_s,
                    offset_frames=off,
                    hits=int(hits_per_track[slot]),
                    query_hashes=nq,
                    metadata=track.metadata,
                )
            )
        out.sort(key=lambda m: (-m.score, m.track_id))
        return out[:limit]

    def match_audio(
        self, audio: Audio, *, tracks: Iterable[str] | None = None, limit: int = 5
    ) -> list[FingerprintMatch]:
        """Fingerprint ``audio`` (query density) and :meth:`match` it."""
        return self.match(self.fingerprint(audio), tracks=tracks, limit=limit)

    def match_file(
        self, source: AudioSource, *, tracks: Iterable[str] | None = None, limit: int = 5
    ) -> list[FingerprintMatch]:
        """Fingerprint a file (query density, streamed) and :meth:`match` it."""
        fp = fingerprint_file(source, self.config, query=True)
        return self.match(fp, tracks=tracks, limit=limit)


# ------------------------------------------------------------------------------------------- helpers
def _expand_hits(
    query: Fingerprints,
    inv: NDArray[np.int64],
    lo: NDArray[np.int64],
    cnt: NDArray[np.int64],
    found: Found | None,
    arrays: dict[str, NDArray[np.uint32]],
    allowed: NDArray[np.uint32] | None,
    bins: _CoarseBins,
) -> tuple[NDArray[np.int64], NDArray[np.int32]]:
    """Every (query landmark, reference posting) pair as ``(coarse bin, reference time - query time)``.

    The coarse bin (see :class:`_CoarseBins`) also says the track. The pairs are expanded
    :data:`_HITS_PER_CHUNK` at a time (no Python loop per hit), so only the two results (12 bytes per hit) grow
    with the number of hits.
    """
    per_q = cnt[inv]
    ends = np.cumsum(per_q)
    q_times = np.asarray(query.times, dtype=np.int64)
    out_s = np.empty(int(ends[-1]) if len(ends) else 0, dtype=np.int64)
    out_o = np.empty(len(out_s), dtype=np.int32)
    filled = 0
    a = 0
    while a < len(per_q):
        done = int(ends[a - 1]) if a else 0
        b = max(a + 1, int(np.searchsorted(ends, done + _HITS_PER_CHUNK, side="right")))
        n_q = per_q[a:b]
        total = int(n_q.sum())
        if total:
            q_idx = np.repeat(np.arange(a, b), n_q)
            first = np.repeat(ends[a:b] - n_q - done, n_q)
            ref_idx = np.repeat(lo[inv[a:b]], n_q) + (np.arange(total) - first)
            if found is not None:
                tr, ref_times = found.postings(inv[q_idx], ref_idx)
            else:
                tr, ref_times = np.asarray(arrays["tracks"][ref_idx]), np.asarray(arrays["times"][ref_idx])
            if allowed is not None:
                keep = np.isin(tr, allowed)
                tr, ref_times, q_idx = tr[keep], ref_times[keep], q_idx[keep]
            off = ref_times.astype(np.int64) - q_times[q_idx]
            out_s[filled : filled + len(tr)] = bins.cells(tr, off)
            out_o[filled : filled + len(tr)] = off
            filled += len(tr)
        a = b
    return out_s[:filled], out_o[:filled]


@dataclass(frozen=True)
class _CoarseBins:
    """Coarse offset bins, every track its own run of them.

    A track's run covers offsets from the query's length before its start to its end, plus one empty bin so that
    merged pairs never join two tracks. The bins (2**:data:`_COARSE_SHIFT` frames) are widened by powers of two
    until all of them fit in :data:`_MAX_COARSE_BINS` counters (64 ms bins up to about 270 hours of audio, 0.5 s
    bins up to about 2,000 hours).

    Attributes:
        shift: Bins are ``2**shift`` frames wide.
        query_frames: Offsets start at minus this.
        per_track: Bins of each track slot (``int64[slots]``).
        starts: First bin of each slot, and the total at the end (``int64[slots + 1]``).
    """

    shift: int
    query_frames: int
    per_track: NDArray[np.int64]
    starts: NDArray[np.int64]

    @classmethod
    def layout(cls, frames: NDArray[np.int64], query_frames: int) -> _CoarseBins:
        """Bins for tracks of ``frames`` frames (per slot) and a query of ``query_frames`` frames."""
        shift = _COARSE_SHIFT
        while True:
            per_track = ((frames + query_frames) >> shift) + 2
            if int(per_track.sum()) <= _MAX_COARSE_BINS or shift >= 30:
                break
            shift += 1
        starts = np.zeros(len(per_track) + 1, dtype=np.int64)
        np.cumsum(per_track, out=starts[1:])
        return cls(shift, query_frames, per_track, starts)

    @property
    def total(self) -> int:
        """Bins of all tracks."""
        return int(self.starts[-1])

    def cells(self, slots: NDArray[Any], offsets: NDArray[np.int64]) -> NDArray[np.int64]:
        """The bin of each hit (track slot, offset in frames)."""
        local = np.minimum((offsets + self.query_frames) >> self.shift, self.per_track[slots] - 2)
        out: NDArray[np.int64] = self.starts[slots] + local
        return out

    def slots(self, cells: NDArray[np.int64]) -> NDArray[np.int64]:
        """The track slot of each bin."""
        out: NDArray[np.int64] = np.searchsorted(self.starts, cells, side="right") - 1
        return out

    def bounds(self, votes: NDArray[np.int64]) -> NDArray[np.int64]:
        """Each slot's highest vote count in two adjacent bins, from the votes per bin (which it overwrites).

        This bounds the exact score from above: the two adjacent 16 ms bins of an exact score lie inside two
        adjacent coarse bins.
        """
        for i in range(0, len(votes) - 1, _HITS_PER_CHUNK):  # in place, a chunk at a time: no second array
            votes[i : min(i + _HITS_PER_CHUNK, len(votes) - 1)] += votes[i + 1 : i + 1 + _HITS_PER_CHUNK]
        out: NDArray[np.int64] = np.maximum.reduceat(votes[:-1], self.starts[:-1])
        return out


def _exact_scores(slots: NDArray[np.integer[Any]], offsets: NDArray[np.int32]) -> list[tuple[int, int, int]]:
    """``(score, slot, offset)`` of every track among the hits: its best 16 ms offset bin merged with the next."""
    if len(slots) == 0:
        return []
    keys = (slots.astype(np.int64) << 32) | (offsets.astype(np.int64) + (1 << 31))
    ukeys, counts = np.unique(keys, return_counts=True)
    # Merge each offset bin with the next one (peaks jitter by one frame between renderings).
    nxt = np.minimum(np.searchsorted(ukeys, ukeys + 1), len(ukeys) - 1)
    nxt_c = np.where(ukeys[nxt] == ukeys + 1, counts[nxt], 0)
    pair = counts + nxt_c
    u_tr = ukeys >> 32
    # Best bin per track: sort by (track, -pair score, offset) and take the first row of each track.
    order = np.lexsort((ukeys, -pair, u_tr))
    s_tr = u_tr[order]
    heads = order[np.r_[True, s_tr[1:] != s_tr[:-1]]]
    offs = (ukeys[heads] & 0xFFFFFFFF) - (1 << 31) + (nxt_c[heads] > counts[heads])
    return list(zip(pair[heads].tolist(), u_tr[heads].tolist(), offs.tolist(), strict=True))


def _json_object(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise ConfigError(f"metadata must be a mapping, got {type(metadata).__name__}")
    try:
        out: dict[str, Any] = json.loads(json.dumps(dict(metadata), default=_json_default))
    except (TypeError, ValueError) as err:
        raise ConfigError(f"metadata must be JSON-serialisable: {err}") from err
    return out


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def _track_json(info: TrackInfo) -> dict[str, Any]:
    return {
        "track_id": info.track_id,
        "duration": info.duration,
        "n_hashes": info.n_hashes,
        "metadata": info.metadata,
    }


def _read_manifest(root: Path) -> dict[str, Any]:
    file = root / _MANIFEST
    if not file.exists():
        raise StoreError(f"{root}: no fingerprint index here ({_MANIFEST} missing)")
    try:
        data: dict[str, Any] = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise StoreError(f"{root}: unreadable {_MANIFEST}: {err}") from err
    if data.get("format") != "audiovec.identify.fingerprint":
        raise StoreError(f"{root}: {_MANIFEST} is not a fingerprint index manifest")
    if data.get("version") not in _READABLE_VERSIONS:
        raise StoreError(
            f"{root}: index format version {data.get('version')} is not supported (this audiovec reads "
            f"{', '.join(map(str, _READABLE_VERSIONS))}); rebuild the index or upgrade audiovec"
        )
    return data


def _load_array(root: Path, name: str, dtype: type[np.generic], mmap: bool) -> NDArray[Any]:
    file = root / name
    try:
        a: NDArray[Any] = np.load(file, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise StoreError(f"{root}: cannot read {file.name} ({err}); the index is damaged, rebuild it") from err
    if a.dtype != dtype or a.ndim != 1:
        raise StoreError(f"{root}: {file.name} is not a {np.dtype(dtype).name} vector (damaged index)")
    return a


def _load_v1(root: Path, manifest: dict[str, Any], mmap: bool, n: int | None) -> dict[str, NDArray[np.uint32]]:
    """Format 1: three parallel ``uint32`` arrays sorted by hash."""
    arrays = {name: _load_array(root, manifest["arrays"][name], np.uint32, mmap) for name in _ARRAYS}
    size = len(arrays["hashes"])
    if any(len(a) != size for a in arrays.values()) or size != (size if n is None else n):
        raise StoreError(f"{root}: the index arrays have inconsistent lengths (damaged index); rebuild it")
    return arrays


def _load_packed(
    root: Path, manifest: dict[str, Any], config: FingerprintConfig, mmap: bool, n: int | None
) -> PackedPostings:
    """Formats 2 and 3: packed postings (see :mod:`audiovec.identify.fingerprint._packed`)."""
    lay = manifest["layout"]
    layout = PackedLayout(int(lay["hash_bits"]), int(lay["bucket_bits"]), int(lay["track_bits"]), int(lay["time_bits"]))
    if n is None or layout.hash_bits != config.hash_bits or not 0 <= layout.bucket_bits <= layout.hash_bits:
        raise StoreError(f"{root}: the packed layout in {_MANIFEST} does not fit the config (damaged index)")
    bases = None
    if manifest["version"] >= 3:
        rows = manifest["tracks"]
        bases = _base_table({int(row["slot"]): int(row["base"]) for row in rows})
        starts = bases[0]
        if layout.track_bits or np.any(np.diff(starts) <= 0) or (len(starts) and starts[0] < 0):
            raise StoreError(f"{root}: the track bases in {_MANIFEST} are inconsistent (damaged index); rebuild it")
    offsets = _load_array(root, manifest["arrays"]["offsets"], np.uint32, mmap)
    words = _load_array(root, manifest["arrays"]["words"], np.uint8, mmap)
    if len(offsets) != (1 << layout.bucket_bits) + 1 or int(offsets[0]) != 0 or int(offsets[-1]) != n:
        raise StoreError(f"{root}: packed bucket table and {_MANIFEST} are inconsistent (damaged index); rebuild it")
    if len(words) != layout.nbytes(n) - 4 * len(offsets):
        raise StoreError(f"{root}: the packed postings have an inconsistent size (damaged index); rebuild it")
    if not all(bool(np.all(part[1:] >= part[:-1])) for part in _overlapping_chunks(offsets)):
        raise StoreError(f"{root}: the packed bucket table is not sorted (damaged index); rebuild it")
    return PackedPostings(layout, offsets, words, n, bases)


def _overlapping_chunks(a: NDArray[Any], size: int = 1 << 20) -> list[NDArray[Any]]:
    """Consecutive slices of ``a`` that overlap by one element (to check order without a copy of ``a``)."""
    return [a[i : i + size + 1] for i in range(0, max(len(a) - 1, 1), size)]


def _base_table(bases: Mapping[int, int]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """``(starts, slots)`` sorted by start, for :class:`PackedPostings`."""
    order = sorted(bases, key=bases.__getitem__)
    return np.array([bases[s] for s in order], dtype=np.int64), np.array(order, dtype=np.int64)


def _track_frames(duration: float, config: FingerprintConfig) -> int:
    """Frames of ``duration`` seconds of audio, rounded up with a margin: every anchor time lies below it."""
    return math.ceil(duration * config.sample_rate / config.hop_length) + 2


def _write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) atomically."""

    def write(tmp: Path) -> None:
        tmp.write_text(text, encoding="utf-8")

    atomic_write(path, write)


def _write_npy(path: Path, array: NDArray[Any]) -> None:
    """Save ``array`` (``uint32`` or ``uint8``) as ``.npy`` atomically (see :func:`audiovec._files.atomic_write`)."""

    def write(tmp: Path) -> None:
        with open(tmp, "xb") as f:  # a file object: np.save would add ".npy" to a name
            np.save(f, np.ascontiguousarray(array), allow_pickle=False)

    atomic_write(path, write)

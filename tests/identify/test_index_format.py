"""The on-disk fingerprint index: format 3 (bit-packed postings on one time axis) size, identical matches, formats 1
and 2 still open."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from audiovec import Audio, load
from audiovec._hashing import json_digest
from audiovec.audio.degrade import parse_condition
from audiovec.errors import StoreError
from audiovec.identify.fingerprint import FingerprintConfig, FingerprintIndex
from audiovec.identify.fingerprint._packed import PackedPostings, choose_layout, pack

CFG = FingerprintConfig()
MUSIC = "data/music/jamendo_11266.mp3"
OTHERS = [
    "data/librosa/Kevin_MacLeod_-_Vibe_Ace.ogg",
    "data/librosa/admiralbob77_-_Choice_-_Drum-bass.ogg",
    "data/librosa/147793__setuniman__sweet-waltz-0i-22mi.ogg",
]
# Measured on these four tracks (3.9 min, 177 landmarks/s with fan_out 6): 35.2 kB per minute with format 3. With
# fan_out 8 (234 landmarks/s): 45.9 in format 3, 47.7 in format 2, 168 in format 1. Format 3 saves more on larger
# sets: 54 to 47 kB/min on 1,700 minutes in 532 tracks at fan_out 8, 35.8 at fan_out 6.
MAX_KB_PER_MINUTE = 38.0


@pytest.fixture(scope="module")
def music(shared_file) -> Audio:
    return load(shared_file(MUSIC), sr=CFG.sample_rate)


@pytest.fixture(scope="module")
def memory_index(shared_file, music) -> FingerprintIndex:
    """Never saved: the three plain uint32 arrays (what format 1 stores)."""
    idx = FingerprintIndex()
    idx.add_audio(music, "jamendo", {"title": "Jamendo 11266"})
    for rel in OTHERS:
        idx.add_file(shared_file(rel), rel.rsplit("/", 1)[-1])
    idx.stats()
    return idx


@pytest.fixture(scope="module")
def saved(tmp_path_factory, memory_index) -> Path:
    """The same index saved in format 3 by a copy (the module's in-memory index stays unpacked)."""
    root = tmp_path_factory.mktemp("fmt") / "v3"
    copy = FingerprintIndex()
    copy._arrays = {k: v.copy() for k, v in memory_index._merged().items()}
    copy._tracks, copy._slots, copy._next_slot = dict(memory_index._tracks), dict(memory_index._slots), 4
    copy.save(root)
    return root


@pytest.fixture(scope="module")
def queries(music) -> list:
    """Degraded excerpts of the indexed track and of unindexed audio."""
    out = []
    for start, length in ((3.0, 5.0), (41.5, 10.0), (80.0, 5.0)):
        ex = music.slice(start, start + length)
        for cond in ("clean", "noise:10", "pink:0", "pink:-5"):
            out.append(parse_condition(cond)(ex, seed=3, key=f"{start}"))
    rng = np.random.default_rng(0)
    out.append(Audio(rng.standard_normal(5 * CFG.sample_rate).astype(np.float32) * 0.1, CFG.sample_rate))
    return out


def _results(index: FingerprintIndex, queries: list, **kw) -> list:
    return [
        [(m.track_id, m.score, m.offset_frames, m.hits, m.query_hashes) for m in index.match_audio(q, limit=4, **kw)]
        for q in queries
    ]


def _write_old_format(index: FingerprintIndex, root: Path, version: int, arrays: dict, **extra) -> None:
    """Write ``arrays`` as .npy files and a manifest of an older format ``version``, as audiovec wrote them."""
    root.mkdir(parents=True)
    files = {name: f"{name}-0123456789ab.npy" for name in arrays}
    for name, file in files.items():
        np.save(root / file, np.ascontiguousarray(arrays[name]), allow_pickle=False)
    manifest = {
        "format": "audiovec.identify.fingerprint",
        "version": version,
        "config": index.config.to_dict(),
        "max_postings": index.max_postings,
        "next_slot": index._next_slot,
        "arrays": files,
        "landmarks": index.stats().landmarks,
        **extra,
        "tracks": [
            {"slot": s, "track_id": t.track_id, "duration": t.duration, "n_hashes": t.n_hashes, "metadata": t.metadata}
            for s, t in ((index._slots[i], index.track(i)) for i in index.track_ids)
        ],
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=1))


def _write_format_1(index: FingerprintIndex, root: Path) -> None:
    """Format 1: three plain ``uint32`` arrays sorted by hash."""
    arrays = index._merged()
    _write_old_format(index, root, 1, {name: arrays[name].astype(np.uint32) for name in ("hashes", "tracks", "times")})


def _write_format_2(index: FingerprintIndex, root: Path) -> None:
    """Format 2: packed postings that hold their track slot."""
    arrays = index._merged()
    n = len(arrays["hashes"])
    layout = choose_layout(n, index.config.hash_bits, index._next_slot - 1, int(arrays["times"].max()))
    assert layout is not None and layout.track_bits > 0
    offsets, words = pack(arrays["hashes"], arrays["tracks"], arrays["times"], layout)
    lay = {k: getattr(layout, k) for k in ("hash_bits", "bucket_bits", "track_bits", "time_bits")}
    _write_old_format(index, root, 2, {"offsets": offsets, "words": words}, layout=lay)


# ------------------------------------------------------------------------------------------- size
def test_size_per_minute_on_disk(saved, memory_index):
    loaded = FingerprintIndex.load(saved)
    s = loaded.stats()
    disk = sum(p.stat().st_size for p in saved.iterdir() if p.name != "manifest.json")
    minutes = s.audio_seconds / 60
    assert s.landmarks == memory_index.stats().landmarks
    assert disk / 1000 / minutes < MAX_KB_PER_MINUTE
    assert s.kb_per_minute < MAX_KB_PER_MINUTE and abs(disk - s.bytes) < 512  # .npy headers only
    assert memory_index.stats().bytes == 12 * s.landmarks  # unpacked arrays, for comparison
    assert s.bytes < 0.35 * memory_index.stats().bytes
    assert sorted(p.name.split("-")[0] for p in saved.iterdir()) == ["manifest.json", "offsets", "words"]


# ------------------------------------------------------------------------------------------- same results
@pytest.mark.parametrize("mmap", [True, False])
def test_format_3_gives_identical_matches(saved, memory_index, queries, mmap):
    loaded = FingerprintIndex.load(saved, mmap=mmap)
    assert loaded._packed is not None and isinstance(loaded._packed.words, np.memmap) == mmap
    before = _results(memory_index, queries)
    assert before[0][0][0] == "jamendo" and before[0][0][1] > 25  # the set exercises real matches
    assert _results(loaded, queries) == before
    only = ["jamendo", OTHERS[0].rsplit("/", 1)[-1]]
    assert _results(loaded, queries, tracks=only) == _results(memory_index, queries, tracks=only)
    # the postings hold no track slot: each track owns a range of one time axis, in the order added
    manifest = json.loads((saved / "manifest.json").read_text())
    assert manifest["version"] == 3 and manifest["layout"]["track_bits"] == 0
    bases = [row["base"] for row in manifest["tracks"]]
    frames = [math.ceil(row["duration"] * CFG.sample_rate / CFG.hop_length) + 2 for row in manifest["tracks"]]
    assert bases == [0, *np.cumsum(frames)[:-1].tolist()]
    assert manifest["layout"]["time_bits"] == int(sum(frames) - 1).bit_length()


@pytest.mark.parametrize("on_disk", [False, True], ids=["memory", "file"])
@pytest.mark.parametrize("axis", [True, False], ids=["time-axis", "slots"])
def test_packing_round_trips_and_lookups_agree_with_searchsorted(axis, on_disk, tmp_path):
    rng = np.random.default_rng(1)
    for n, max_track, max_time in ((0, 0, 0), (1, 0, 5), (5000, 3, 900), (60_000, 700, 15_000)):
        hashes = np.sort(rng.integers(0, 1 << 22, n).astype(np.uint32))
        hashes[: n // 3] = hashes[0] if n else 0  # a very common hash: a long bucket
        hashes.sort()
        tracks = rng.integers(0, max_track + 1, n).astype(np.uint32)
        times = rng.integers(0, max_time + 1, n).astype(np.uint32)
        if axis:  # tracks in a shuffled slot order along the axis, each max_time + 1 frames long
            slots = rng.permutation(max_track + 1)
            starts = np.arange(max_track + 1, dtype=np.int64) * (max_time + 1)
            where = np.empty(max_track + 1, dtype=np.int64)
            where[slots] = starts
            layout = choose_layout(n, 22, 0, int(starts[-1]) + max_time)
            assert layout is not None and layout.track_bits == 0
            words = pack(hashes, np.zeros(n, dtype=np.uint32), where[tracks] + times, layout)
            bases = (starts, slots.astype(np.int64))
        else:
            layout = choose_layout(n, 22, max_track, max_time)
            assert layout is not None
            words, bases = pack(hashes, tracks, times, layout), None
        offsets, packed_words = words
        if on_disk:  # memory-mapped as an index folder opens them: read with positioned reads
            np.save(tmp_path / f"w{n}.npy", packed_words)
            packed_words = np.load(tmp_path / f"w{n}.npy", mmap_mode="r")
        packed = PackedPostings(layout, offsets, packed_words, n, bases)
        back = packed.unpack()
        assert np.array_equal(back["hashes"], hashes) and np.array_equal(back["tracks"], tracks)
        assert np.array_equal(back["times"], times)
        q = np.unique(np.r_[hashes[::5], rng.integers(0, 1 << 22, 500).astype(np.uint32), [0, (1 << 22) - 1]])
        found = packed.lookup(q.astype(np.uint32))
        assert np.array_equal(found.lo, np.searchsorted(hashes, q, side="left"))
        assert np.array_equal(found.hi, np.searchsorted(hashes, q, side="right"))
        which = np.repeat(np.arange(len(q)), found.hi - found.lo)
        rows = np.concatenate([np.arange(a, b) for a, b in zip(found.lo, found.hi, strict=True)] or [[]]).astype(int)
        got_tracks, got_times = found.postings(which, rows)
        assert np.array_equal(got_tracks, tracks[rows]) and np.array_equal(got_times, times[rows])


def test_empty_index_saves_and_opens(tmp_path):
    FingerprintIndex().save(tmp_path / "empty")
    loaded = FingerprintIndex.load(tmp_path / "empty")
    assert len(loaded) == 0 and loaded.stats().landmarks == 0
    assert loaded.match_audio(Audio(np.ones(8000, dtype=np.float32), CFG.sample_rate)) == []


# ------------------------------------------------------------------------------------------- compatibility
def test_format_1_index_opens_matches_identically_and_is_rewritten_as_format_3(tmp_path, memory_index, queries, music):
    root = tmp_path / "v1"
    _write_format_1(memory_index, root)
    old = FingerprintIndex.load(root)
    assert old._packed is None and isinstance(old._arrays["hashes"], np.memmap)
    assert old.track_ids == memory_index.track_ids and old.track("jamendo").metadata == {"title": "Jamendo 11266"}
    assert _results(old, queries) == _results(memory_index, queries)

    old.add_audio(music.slice(0, 20), "intro")
    old.save()
    names = sorted(p.name.split("-")[0] for p in root.iterdir())
    assert names == ["manifest.json", "offsets", "words"]  # the format 1 arrays are gone
    assert json.loads((root / "manifest.json").read_text())["version"] == 3
    again = FingerprintIndex.open(root)
    assert again.track_ids == [*memory_index.track_ids, "intro"]
    assert again.match_audio(queries[0], limit=2)[0].track_id in {"jamendo", "intro"}


@pytest.mark.parametrize("mmap", [True, False])
def test_format_2_index_opens_matches_identically_and_is_rewritten_as_format_3(tmp_path, memory_index, queries, mmap):
    root = tmp_path / "v2"
    _write_format_2(memory_index, root)
    old = FingerprintIndex.load(root, mmap=mmap)
    assert old._packed is not None and old._packed.bases is None and old._packed.layout.track_bits > 0
    assert _results(old, queries) == _results(memory_index, queries)
    before = old.stats().bytes
    old.save()
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["version"] == 3 and all("base" in row for row in manifest["tracks"])
    again = FingerprintIndex.load(root)
    assert _results(again, queries) == _results(memory_index, queries)
    assert again.stats().bytes < before  # 4 tracks: 2 slot bits and 16 time bits become 17 axis bits


def test_an_index_made_before_pairing_existed_keeps_pairing_by_time(tmp_path, shared_file, music, queries):
    """Its manifest has no ``pairing``: it opens with ``"first"``, the key it had, and its own matches."""
    first = FingerprintConfig(pairing="first")
    memory = FingerprintIndex(first)
    memory.add_audio(music, "jamendo")
    memory.add_file(shared_file(OTHERS[0]), "other")
    root = memory.save(tmp_path / "old")
    manifest = json.loads((root / "manifest.json").read_text())
    del manifest["config"]["pairing"], manifest["config"]["pair_tilt"]  # what audiovec wrote before them
    (root / "manifest.json").write_text(json.dumps(manifest))
    old = FingerprintIndex.load(root)
    assert old.config.pairing == "first" and old.config == first
    skip = {"query_peaks_per_second", "query_fan_out"}
    assert old.config.key() == json_digest({k: v for k, v in manifest["config"].items() if k not in skip})
    assert _results(old, queries) == _results(memory, queries)
    assert old.match_audio(queries[0], limit=1)[0].track_id == "jamendo"
    assert FingerprintConfig().key() != first.key()  # today's default pairs by strength: another index


def test_remove_and_add_after_opening_format_3(saved, tmp_path, music, queries):
    root = tmp_path / "copy"
    root.mkdir()
    for p in saved.iterdir():
        (root / p.name).write_bytes(p.read_bytes())
    idx = FingerprintIndex.load(root)
    n_j = idx.track("jamendo").n_hashes
    total = idx.stats().landmarks
    assert idx.remove("jamendo")
    assert idx.stats().landmarks == total - n_j and all(m.track_id != "jamendo" for m in idx.match_audio(queries[0]))
    idx.add_audio(music, "jamendo-again")
    idx.save()
    reopened = FingerprintIndex.load(root)
    assert reopened.match_audio(queries[0])[0].track_id == "jamendo-again"
    assert reopened.stats().landmarks == total


# ------------------------------------------------------------------------------------------- damage
def _copy(saved: Path, dest: Path) -> Path:
    dest.mkdir()
    for p in saved.iterdir():
        (dest / p.name).write_bytes(p.read_bytes())
    return dest


@pytest.mark.parametrize("array", ["words", "offsets"])
@pytest.mark.parametrize("keep", [0.5, 0.999, 0.0])
def test_truncated_array_gives_a_store_error(saved, tmp_path, array, keep):
    root = _copy(saved, tmp_path / "t")
    file = next(root.glob(f"{array}-*.npy"))
    data = file.read_bytes()
    file.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(StoreError, match="damaged"):
        FingerprintIndex.load(root)


def test_inconsistent_manifest_gives_a_store_error(saved, tmp_path):
    for change in (
        lambda m: m.update(landmarks=m["landmarks"] + 1),
        lambda m: m["layout"].update(bucket_bits=m["layout"]["bucket_bits"] - 1),
        lambda m: m["layout"].update(time_bits=m["layout"]["time_bits"] + 1),
        lambda m: m["layout"].update(hash_bits=30),
        lambda m: m.pop("layout"),
        lambda m: m["arrays"].pop("words"),
        lambda m: m["tracks"][1].update(base=m["tracks"][0]["base"]),
        lambda m: m["tracks"][0].pop("base"),
        lambda m: m["layout"].update(track_bits=2),
    ):
        root = _copy(saved, tmp_path / f"m{len(list(tmp_path.iterdir()))}")
        manifest = json.loads((root / "manifest.json").read_text())
        change(manifest)
        (root / "manifest.json").write_text(json.dumps(manifest))
        with pytest.raises(StoreError, match="damaged"):
            FingerprintIndex.load(root)


def test_unknown_format_version_says_how_to_recover(saved, tmp_path):
    root = _copy(saved, tmp_path / "v")
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["version"] = 99
    (root / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(StoreError, match=r"version 99 is not supported.*rebuild the index or upgrade"):
        FingerprintIndex.load(root)


def test_postings_too_wide_to_pack_are_saved_in_format_1(tmp_path, monkeypatch, memory_index, queries):
    import audiovec.identify.fingerprint._index as index_module

    monkeypatch.setattr(index_module, "choose_layout", lambda *a: None)  # e.g. slots and frames over 57 bits
    copy = FingerprintIndex()
    copy._arrays = {k: v.copy() for k, v in memory_index._merged().items()}
    copy._tracks, copy._slots, copy._next_slot = dict(memory_index._tracks), dict(memory_index._slots), 4
    root = copy.save(tmp_path / "wide")
    assert json.loads((root / "manifest.json").read_text())["version"] == 1
    assert _results(FingerprintIndex.load(root), queries) == _results(memory_index, queries)

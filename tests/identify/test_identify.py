"""Identification end to end on real music: the three modes, thresholds, persistence and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.signal

from audiovec import Audio, get_embedder, load
from audiovec.errors import ConfigError, DuplicateIdError, StoreError
from audiovec.identify import DEFAULT_MIN_SCORE, Identifier, calibrate_threshold, default_pipeline
from audiovec.identify.fingerprint import FingerprintIndex
from audiovec.stores import ExactStore

TRACK = "data/music/jamendo_11266.mp3"
EXCERPT = "data/music/jamendo_11266_query_69s-89s.mp3"  # 20 s cut at 69 s
DISTRACTORS = [
    "data/librosa/Kevin_MacLeod_-_Vibe_Ace.ogg",
    "data/librosa/admiralbob77_-_Choice_-_Drum-bass.ogg",
    "data/librosa/147793__setuniman__sweet-waltz-0i-22mi.ogg",
    "data/librosa/Hungarian_Dance_number_5_-_Allegro_in_F_sharp_minor_(string_orchestra).ogg",
]
NOT_INDEXED = "data/librosa/Karissa_Hobbs_-_Lets_Go_Fishin.ogg"


def _noisy_telephone_cut(audio: Audio, start: float, seconds: float, snr_db: float) -> Audio:
    """A cut of ``audio`` with white noise at ``snr_db`` and a 300-3400 Hz band-pass, made with NumPy/SciPy."""
    clip = audio.slice(start, start + seconds).samples.astype(np.float64)
    noise = np.random.default_rng(0).normal(size=len(clip))
    noise *= np.sqrt(np.mean(clip**2) / np.mean(noise**2) / 10 ** (snr_db / 10))
    sos = scipy.signal.butter(6, [300, 3400], btype="bandpass", fs=audio.sample_rate, output="sos")
    out = scipy.signal.sosfilt(sos, clip + noise)
    return Audio.from_array((0.9 * out / np.abs(out).max()).astype(np.float32), audio.sample_rate)


@pytest.fixture(scope="module")
def excerpt(shared_file) -> Audio:
    return load(shared_file(EXCERPT))


@pytest.fixture(scope="module")
def ident(shared_file) -> Identifier:
    """Fingerprints and MFCC segment vectors of the Jamendo track and four distractors, in memory."""
    emb = get_embedder("mfcc")
    pipe = default_pipeline()
    store = ExactStore(dim=pipe.output_dim(emb.dim), metric="cosine", id_type="str")
    ident = Identifier(FingerprintIndex(), store, emb, pipe, candidates=2)
    ident.add(shared_file(TRACK), "jamendo", {"title": "Jamendo 11266", "artist": "unknown"})
    for rel in DISTRACTORS:
        ident.add(shared_file(rel), rel.rsplit("/", 1)[-1])
    return ident


# ------------------------------------------------------------------------------------------- the CI pair
def test_fingerprint_mode_identifies_the_real_excerpt(ident, excerpt):
    r = ident.identify(excerpt, mode="fingerprint")
    assert r.matched and r.track_id == "jamendo" and r.mode == "fingerprint"
    assert r.metadata == {"title": "Jamendo 11266", "artist": "unknown"}
    assert r.offset == pytest.approx(69.0, abs=0.1)
    assert r.score >= 20 * DEFAULT_MIN_SCORE and r.margin > 0.9 * r.score
    assert r.runner_up is not None and r.runner_up != "jamendo"
    assert 0 < r.confidence <= 1 and set(r.timings) >= {"decode", "fingerprint", "match"}


def test_noisy_band_limited_short_cut(ident, excerpt):
    """5 s from 5 s into the excerpt, white noise at 5 dB SNR and a telephone band-pass: still found at 74 s."""
    query = _noisy_telephone_cut(excerpt, 5.0, 5.0, snr_db=5.0)
    r = ident.identify(query, mode="fingerprint")
    assert r.track_id == "jamendo" and r.offset == pytest.approx(74.0, abs=0.1)
    assert r.score >= DEFAULT_MIN_SCORE


def test_track_not_in_the_index_is_no_match(ident, shared_file):
    other = load(shared_file(NOT_INDEXED))
    for mode in ("fingerprint", "filter_refine"):
        for start, seconds in ((10.0, 10.0), (40.0, 5.0)):
            r = ident.identify(other.slice(start, start + seconds), mode=mode)
            assert not r.matched and r.track_id is None and r.offset is None and r.metadata == {}
            assert r.score < r.threshold == ident.min_score
            assert r.candidates  # the best guesses are still reported


def test_vector_mode_finds_the_clean_excerpt(ident, excerpt):
    r = ident.identify(excerpt, mode="vector")
    assert r.candidates[0].track_id == "jamendo"
    assert r.candidates[0].offset == pytest.approx(69.0, abs=1.0)  # segment hop is 1 s
    assert r.score > r.candidates[1].score and r.margin == pytest.approx(r.score - r.candidates[1].score)
    assert set(r.timings) >= {"embed", "search"} and r.threshold == ident.min_similarity


def test_filter_and_refine_only_refines_the_shortlist(ident, excerpt):
    r = ident.identify(excerpt)  # the default mode with both indexes
    assert r.mode == "filter_refine" and r.track_id == "jamendo"
    assert r.offset == pytest.approx(69.0, abs=0.1)
    vector_top = [c.track_id for c in ident.identify(excerpt, mode="vector").candidates[: ident.candidates]]
    assert r.shortlist == vector_top and len(vector_top) == ident.candidates == 2
    assert {c.track_id for c in r.candidates} <= set(vector_top)
    assert ident.identify(excerpt, mode="fingerprint").shortlist is None
    assert set(r.timings) >= {"embed", "search", "fingerprint", "match"}


# ------------------------------------------------------------------------------------------- thresholds
def test_calibrate_threshold():
    assert calibrate_threshold([3, 7, 5]) == 8.0
    scores = list(range(1, 11))  # 10 negatives
    assert calibrate_threshold(scores, 0.1) == 10.0  # one false positive (score 10) tolerated
    assert calibrate_threshold(scores, 0.25) == 9.0
    thr = calibrate_threshold([0.5, 0.9, 0.7])
    assert thr > 0.9 and thr == np.nextafter(0.9, 1.0)
    with pytest.raises(ConfigError):
        calibrate_threshold([])
    with pytest.raises(ConfigError):
        calibrate_threshold([1.0], 1.0)


def test_identifier_calibrate_sets_the_threshold(shared_file, excerpt):
    ident = Identifier(FingerprintIndex())
    ident.add(shared_file(TRACK), "jamendo")
    other = load(shared_file(NOT_INDEXED))
    negatives = [other.slice(s, s + 5) for s in (0, 20, 40, 60)]
    scores = [ident.identify(n).score for n in negatives]
    thr = ident.calibrate(negatives)
    assert thr == max(scores) + 1 == ident.min_score
    assert not any(ident.identify(n).matched for n in negatives)
    assert ident.identify(excerpt).track_id == "jamendo"


# ------------------------------------------------------------------------------------------- API contract
def test_modes_and_errors(shared_file):
    fp_only = Identifier(FingerprintIndex())
    assert fp_only.mode == "fingerprint"
    with pytest.raises(ConfigError, match="needs a vector store"):
        fp_only.identify(Audio.from_array(np.zeros(8000, np.float32), 8000), mode="vector")
    with pytest.raises(ConfigError, match="unknown mode"):
        Identifier(FingerprintIndex(), mode="shazam")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        Identifier()
    with pytest.raises(ConfigError, match="embedder"):
        Identifier(store=ExactStore(dim=40))
    fp_only.add(shared_file(DISTRACTORS[0]), "a")
    with pytest.raises(DuplicateIdError):
        fp_only.add(shared_file(DISTRACTORS[0]), "a")
    with pytest.raises(ConfigError, match="#"):
        fp_only.add(shared_file(DISTRACTORS[0]), "a#1")
    silence = fp_only.identify(Audio.from_array(np.zeros(16000, np.float32), 16000))
    assert not silence.matched and silence.score == 0 and silence.candidates == []


def test_persisted_identifier_round_trip(tmp_path, shared_file, excerpt):
    root = tmp_path / "music.idx"
    with Identifier.create(root, embedder="mfcc", candidates=3) as ident:
        ident.add(shared_file(TRACK), "jamendo", {"title": "J"})
        ident.add(shared_file(DISTRACTORS[0]), "vibe")
        before = ident.identify(excerpt)
    with pytest.raises(StoreError):
        Identifier.create(root)
    again = Identifier.open(root)
    assert again.mode == "filter_refine" and again.candidates == 3 and len(again) == 2
    assert again.track("jamendo").metadata == {"title": "J"}
    assert again.track("jamendo").duration == pytest.approx(98.2, abs=0.1)
    after = again.identify(excerpt)
    assert (after.track_id, after.score, after.offset) == (before.track_id, before.score, before.offset)
    segments = again.store.count()  # type: ignore[union-attr]
    assert again.remove("jamendo") and not again.remove("jamendo")
    assert again.store.count() < segments and "jamendo" not in again.fingerprints  # type: ignore[union-attr,operator]
    again.close()
    third = Identifier.open(root)
    assert third.track_ids == ["vibe"] and not third.identify(excerpt).matched
    with pytest.raises(ConfigError, match="does not match"):
        Identifier.open(root, embedder=get_embedder("mfcc", n_mfcc=13))


# ------------------------------------------------------------------------------------------- CLI
def _cli(argv: list[str]) -> int:
    from audiovec.cli import main

    return main(argv)


def test_cli_index_identify_remove(tmp_path, shared_file, capsys):
    music = tmp_path / "music"
    music.mkdir()
    (music / "jamendo.mp3").symlink_to(shared_file(TRACK))
    (music / "vibe.ogg").symlink_to(shared_file(DISTRACTORS[0]))
    db = tmp_path / "db"
    assert _cli(["fingerprint", "index", str(music), "--db", str(db), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "indexed 2 track(s)" in out and "kB per minute" in out

    assert _cli(["identify", str(shared_file(EXCERPT)), "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "jamendo.mp3 at 68.9" in out and "[fingerprint]" in out

    assert _cli(["identify", str(shared_file(EXCERPT)), "--db", str(db), "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["track_id"] == "jamendo.mp3" and abs(row["offset"] - 69.0) <= 0.1
    assert row["metadata"]["title"] == "jamendo"

    assert _cli(["identify", str(shared_file(NOT_INDEXED)), "--db", str(db)]) == 1
    assert "no match" in capsys.readouterr().out

    assert _cli(["fingerprint", "index", str(music), "--db", str(db), "--no-progress"]) == 0
    assert "2 already indexed" in capsys.readouterr().out
    assert _cli(["fingerprint", "remove", "jamendo.mp3", "--db", str(db)]) == 0
    assert _cli(["fingerprint", "info", "--db", str(db), "--tracks"]) == 0
    out = capsys.readouterr().out
    assert "1 track(s)" in out and "vibe.ogg" in out and "jamendo.mp3" not in out.split("left")[-1]
    assert _cli(["identify", str(shared_file(EXCERPT)), "--db", str(db)]) == 1

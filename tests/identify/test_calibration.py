"""Calibrated thresholds and confidences: the maths, the stored calibration, and ``audiovec fingerprint calibrate``."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import soundfile as sf

from audiovec import Audio, load
from audiovec.audio.degrade import parse_condition
from audiovec.errors import ConfigError
from audiovec.identify import (
    DEFAULT_MIN_SCORE,
    Calibration,
    Identifier,
    calibrate,
    calibrate_threshold,
    confidence,
    negative_excerpts,
)
from audiovec.identify.fingerprint import FingerprintIndex

TRACK = "data/music/jamendo_11266.mp3"
EXCERPT = "data/music/jamendo_11266_query_69s-89s.mp3"  # 20 s cut at 69 s
DISTRACTOR = "data/librosa/Kevin_MacLeod_-_Vibe_Ace.ogg"
NEGATIVES = ["data/librosa/Karissa_Hobbs_-_Lets_Go_Fishin.ogg", "data/librosa/admiralbob77_-_Choice_-_Drum-bass.ogg"]


# ------------------------------------------------------------------------------------------- pure functions
def test_calibrate_empirical_and_tail_thresholds():
    scores = [2, 3, 3, 4, 4, 5, 5, 6, 7, 9]  # median 4.5; above it: 5 5 6 7 9 (mean excess 1.9, p_u 0.5)
    cal = calibrate(scores, 0.001)
    assert cal.threshold_empirical == calibrate_threshold(scores, 0.001) == 10.0
    assert cal.threshold_tail == math.ceil(4.5 + 1.9 * math.log(0.5 / 0.001)) == 17
    assert cal.threshold == 17.0 and cal.observed_fpr == 0.0 and cal.negatives == 10
    assert cal.margin == 17.0 - 9.0 and cal.score_max == 9.0 and cal.score_median == 4.5
    assert cal.scale == 17.0 - 4.5 and cal.kind == "fingerprint" and cal.quantiles["0.5"] == 4.5
    assert cal.fpr_upper_95 == pytest.approx(1 - 0.05**0.1)

    # a tolerated rate that the negatives can measure: the empirical threshold wins
    many = np.random.default_rng(0).geometric(0.3, size=5000).astype(float)
    loose = calibrate(many, 0.05)
    assert loose.threshold == loose.threshold_empirical >= loose.threshold_tail
    assert loose.observed_fpr <= 0.05 and np.mean(many >= loose.threshold - 1) > 0.05

    strict = calibrate(scores, 0.0)  # no rate: no tail, just above every negative
    assert strict.threshold_tail is None and strict.threshold == 10.0

    vec = calibrate([0.90, 0.91, 0.95, 0.97, 0.99], 0.001, kind="vector")
    assert (
        vec.threshold_tail is None
        and vec.threshold == np.nextafter(0.99, 1.0)
        and vec.scale == pytest.approx((1 - vec.threshold) / 3)
    )
    with pytest.raises(ConfigError):
        calibrate([], 0.001)
    with pytest.raises(ConfigError):
        calibrate([1.0], 0.001, kind="loudness")
    assert Calibration.from_dict({**cal.to_dict(), "unknown": 1}) == cal


def test_confidence_is_zero_at_the_threshold_and_near_one_for_clear_matches():
    assert confidence(20, 25) == confidence(25, 25) == 0.0
    assert confidence(25 + 12.5, 25) == pytest.approx(1 - math.exp(-1))  # default scale: half the threshold
    assert confidence(30, 25, scale=5) == pytest.approx(1 - math.exp(-1))
    assert confidence(200, 25) > 0.999
    values = [confidence(s, 25) for s in range(20, 80)]
    assert values == sorted(values) and all(0 <= v <= 1 for v in values)
    assert confidence(1.0, 0.998, kind="vector") == pytest.approx(1 - math.exp(-3))
    assert confidence(float("nan"), 25) == 0.0


def test_negative_excerpts_are_seeded_and_sized(tmp_path):
    sr = 8000
    t = np.arange(30 * sr) / sr
    path = tmp_path / "tone.wav"
    sf.write(path, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), sr)
    short = tmp_path / "short.wav"
    sf.write(short, np.zeros(2 * sr, np.float32), sr)
    got = list(negative_excerpts([path, short], [5.0, 10.0], per_file=3, seed=7))
    assert len(got) == 3 + 3 + 2  # the 2 s file is too short for either length: once per length, whole
    labels = [label for label, _ in got]
    assert all(abs(a.duration - 5.0) < 1e-3 for _, a in got[:3]) and all(
        abs(a.duration - 10.0) < 1e-3 for _, a in got[3:6]
    )
    assert labels == [label for label, _ in negative_excerpts([path, short], [5.0, 10.0], per_file=3, seed=7)]
    assert labels != [label for label, _ in negative_excerpts([path, short], [5.0, 10.0], per_file=3, seed=8)]
    whole = list(negative_excerpts([path]))
    assert len(whole) == 1 and whole[0][1].duration == pytest.approx(30.0)
    with pytest.raises(ConfigError):
        list(negative_excerpts([path], [0.0]))


# ------------------------------------------------------------------------------------------- on real music
def _negatives(shared_file) -> list[Audio]:
    """5 s excerpts of two tracks that are not indexed, clean and with pink noise at 0 dB."""
    pink = parse_condition("pink:0")
    out = []
    for label, audio in negative_excerpts([shared_file(p) for p in NEGATIVES], [5.0], per_file=6, seed=1):
        out += [audio, pink(audio, seed=1, key=label)]
    return out


def test_calibrated_identifier_confidence_reads_as_one(tmp_path, shared_file):
    root = tmp_path / "music.idx"
    ident = Identifier.create(root)
    ident.add(shared_file(TRACK), "jamendo")
    ident.add(shared_file(DISTRACTOR), "vibe")
    uncalibrated = ident.identify(shared_file(EXCERPT))
    assert uncalibrated.threshold == DEFAULT_MIN_SCORE and uncalibrated.confidence > 0.99
    assert 0 < uncalibrated.landmark_fraction < 0.5  # the old fraction, still reported under its own name

    negatives = _negatives(shared_file)
    scores = [ident.identify(n).score for n in negatives]
    thr = ident.calibrate(negatives, max_false_positive_rate=0.001)
    cal = ident.calibrations["fingerprint"]
    assert thr == cal.threshold == ident.min_score > max(scores) and cal.negatives == len(negatives)
    assert cal.scale == thr - float(np.median(scores))
    assert all(ident.identify(n).confidence == 0.0 and not ident.identify(n).matched for n in negatives)

    clean = ident.identify(shared_file(EXCERPT))
    assert clean.track_id == "jamendo" and clean.confidence > 0.99 and clean.threshold == thr
    weak = ident.identify(load(shared_file(EXCERPT)).slice(0, 2.0), mode="fingerprint")
    assert weak.score < clean.score and weak.confidence <= clean.confidence
    ident.save()

    again = Identifier.open(root)
    assert again.calibrations == ident.calibrations and again.min_score == thr
    assert again.identify(shared_file(EXCERPT)).confidence == clean.confidence

    # an index saved before calibrations existed opens with none and the default threshold
    manifest = json.loads((root / "identifier.json").read_text())
    del manifest["calibration"]
    manifest["min_score"] = DEFAULT_MIN_SCORE
    (root / "identifier.json").write_text(json.dumps(manifest))
    old = Identifier.open(root)
    assert old.calibrations == {} and old.min_score == DEFAULT_MIN_SCORE
    assert old.identify(shared_file(EXCERPT)).confidence == pytest.approx(uncalibrated.confidence)


def test_a_bare_fingerprint_folder_cannot_keep_a_calibration(tmp_path, shared_file):
    fp = FingerprintIndex()
    fp.add_file(shared_file(TRACK), "jamendo")
    fp.save(tmp_path / "bare")
    ident = Identifier.open(tmp_path / "bare")
    ident.calibrate(_negatives(shared_file)[:4])
    with pytest.raises(ConfigError, match="bare fingerprint index"):
        ident.save()
    ident.save(tmp_path / "full")
    assert Identifier.open(tmp_path / "full").calibrations == ident.calibrations


# ------------------------------------------------------------------------------------------- CLI
def _cli(argv: list[str]) -> int:
    from audiovec.cli import main

    return main(argv)


def test_cli_calibrate_stores_the_threshold_that_identify_uses(tmp_path, shared_file, capsys):
    music, neg = tmp_path / "music", tmp_path / "neg"
    music.mkdir()
    neg.mkdir()
    (music / "jamendo.mp3").symlink_to(shared_file(TRACK))
    for rel in NEGATIVES:
        (neg / rel.rsplit("/", 1)[-1]).symlink_to(shared_file(rel))
    db = tmp_path / "db"
    assert _cli(["fingerprint", "index", str(music), "--db", str(db), "--no-progress"]) == 0
    capsys.readouterr()

    args = ["fingerprint", "calibrate", str(neg), str(music / "jamendo.mp3"), "--db", str(db), "--no-progress"]
    args += ["--lengths", "5", "--per-file", "5", "--degrade", "clean", "--degrade", "pink:0", "--fpr", "0.001"]
    assert _cli([*args, "--dry-run"]) == 0
    out, err = capsys.readouterr()
    assert "skipping" in err and "it is indexed" in err  # an indexed file is no negative
    assert "scored 20 negative queries" in out and "cannot measure a rate of 0.1 %" in out
    assert "dry run" in out and Identifier.open(db).calibrations == {}

    assert _cli([*args, "--json"]) == 0
    cal = json.loads(capsys.readouterr().out)
    assert cal["negatives"] == 20 and cal["threshold"] > cal["score_max"] and cal["previous_threshold"] == 25
    assert Identifier.open(db).min_score == cal["threshold"]
    assert _cli(["fingerprint", "info", "--db", str(db)]) == 0
    assert f"min_score {cal['threshold']:g}: calibrated on 20 negative queries" in capsys.readouterr().out

    assert _cli(["identify", str(shared_file(EXCERPT)), "--db", str(db), "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["threshold"] == cal["threshold"] and row["confidence"] > 0.99 and 0 < row["landmark_fraction"] < 1
    other = load(shared_file(NEGATIVES[0])).slice(30.0, 35.0)  # a query as long as the calibrated ones
    quiet = tmp_path / "other.wav"
    sf.write(quiet, other.samples.T, other.sample_rate)
    assert _cli(["identify", str(quiet), "--db", str(db), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["confidence"] == 0.0

    assert _cli(["fingerprint", "calibrate", str(neg), "--db", str(db), "--fpr", "1.5"]) == 2
    assert _cli(["fingerprint", "calibrate", str(neg), "--db", str(db), "--mode", "vector"]) == 2
    assert "needs a vector store" in capsys.readouterr().err

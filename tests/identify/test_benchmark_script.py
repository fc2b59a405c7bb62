"""The identification benchmark: rows kept as they are measured, resumed runs, per-condition false positives."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audiovec import load
from audiovec.identify import Identifier
from audiovec.identify.fingerprint import FingerprintIndex

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "identify.py"
TRACK = "data/music/jamendo_11266.mp3"
OTHER = "data/librosa/Kevin_MacLeod_-_Vibe_Ace.ogg"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("identify_benchmark", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


class CountingIdentifier(Identifier):
    """An identifier that counts the queries it answers and the sources it was given."""

    calls: list[object]

    def identify(self, query, **kwargs):  # type: ignore[no-untyped-def]
        self.calls.append(query)
        return super().identify(query, **kwargs)


@pytest.fixture(scope="module")
def queries(tmp_path_factory, shared_file) -> list[dict]:
    """Four 5 s query files: two of the indexed track, two of a track that is not indexed (clean, white noise)."""
    d = tmp_path_factory.mktemp("queries")
    out = []
    for rel, track, positive in ((TRACK, "jamendo", True), (OTHER, "vibe", False)):
        audio = load(shared_file(rel), sr=16000)
        clip = audio.slice(30.0, 35.0).samples.reshape(-1)
        noisy = clip + np.random.default_rng(0).normal(scale=0.3 * clip.std(), size=len(clip)).astype(np.float32)
        for cond, samples in (("clean", clip), ("white_10dB", noisy)):
            f = d / f"{track}-{cond}.wav"
            sf.write(f, samples, 16000)
            q = {"track": track, "start": 30.0, "length": 5.0, "condition": cond, "positive": positive}
            out.append({**q, "file": str(f), "audio_s": 5.0})
    return out


@pytest.fixture(scope="module")
def ident(shared_file) -> CountingIdentifier:
    ident = CountingIdentifier(FingerprintIndex())
    ident.add(shared_file(TRACK), "jamendo")
    ident.calls = []
    return ident


def test_rows_are_appended_as_measured_and_a_rerun_skips_them(bench, ident, queries, tmp_path):
    rows_file = tmp_path / "rows.jsonl"
    ident.calls.clear()
    first = bench.evaluate(ident, "fingerprint", queries[:3], rows_file, progress_every=0)
    assert len(ident.calls) == 3 and all(isinstance(c, str) for c in ident.calls)  # files: decoding is timed
    lines = rows_file.read_text().splitlines()
    assert [json.loads(line)["track"] for line in lines] == ["jamendo", "jamendo", "vibe"]
    assert all(r["seconds"] >= r["decode_seconds"] > 0 and r["mode"] == "fingerprint" for r in first)
    assert first[0]["best"] == "jamendo" and first[0]["confidence"] > 0.99 and first[2]["confidence"] == 0.0

    # a run killed in the middle of writing a row: the cut line is ignored, measured again, and the file stays valid
    with rows_file.open("a") as f:
        f.write('{"mode": "fingerprint", "track": "vi')
    ident.calls.clear()
    again = bench.evaluate(ident, "fingerprint", queries, rows_file, progress_every=0)
    assert len(ident.calls) == 1 and ident.calls[0] == queries[3]["file"]
    assert [r["condition"] for r in again] == [q["condition"] for q in queries]
    assert again[:3] == first
    assert len(bench.load_rows(rows_file)) == 4
    ident.calls.clear()
    bench.evaluate(ident, "fingerprint", queries, rows_file, progress_every=0)
    assert ident.calls == []  # everything measured: nothing runs again


def test_summary_reports_false_positives_per_condition(bench):
    def row(cond: str, positive: bool, score: float) -> dict:
        return {
            "track": "t" if positive else "n",
            "start": 1.0,
            "length": 5.0,
            "condition": cond,
            "positive": positive,
            "seconds": 0.01,
            "decode_seconds": 0.002,
            "audio_s": 5.0,
            "best": "t",
            "best_offset": 1.0,
            "score": score,
            "margin": 1.0,
            "in_shortlist": None,
        }

    rows = [row("clean", True, 90), row("clean", False, 30), row("clean", False, 5), row("gsm", False, 12)]
    s = bench.summarise(rows, 25.0, [5.0], ["clean", "gsm"])
    assert s["false_positives"] == 1 and s["negatives"] == 3
    assert s["false_positives_by_condition"]["clean"] == {
        "false_positives": 1,
        "negatives": 2,
        "false_positive_rate": 0.5,
        "negative_score_max": 30.0,
    }
    assert s["false_positives_by_condition"]["gsm"]["false_positives"] == 0
    assert s["latency_includes_decode"] and s["decode_ms_mean"] == pytest.approx(2.0)
    assert bench.row_key("fingerprint", rows[0]) == "fingerprint|t|1|5|clean"

"""The command line, as a user runs it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from audiovec import Pipeline, get_embedder
from audiovec.cli import main
from audiovec.data import demo_dir
from audiovec.ingest import extract, find_audio_files, load_vectors

SCRIPT = Path(sys.executable).with_name("audiovec")


def test_console_script_embeds_the_demo_set(tmp_path):
    out = tmp_path / "demo.npz"
    proc = subprocess.run(
        [str(SCRIPT), "embed", "--demo", "-o", str(out), "--no-progress"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "embedded 42 file(s)" in proc.stdout
    res = load_vectors(out)
    assert res.vectors.shape == (42, 20) and res.vectors.dtype == np.float32
    assert not res.failures
    assert res.spec["embedder"]["name"] == "mfcc"
    assert {r["_item"] for r in res.records} == {str(p) for p in find_audio_files([demo_dir()])}


def test_segments_params_and_jsonl(tmp_path, shared_file):
    music = shared_file("data/music/jamendo_11266.mp3")
    out = tmp_path / "v.jsonl"
    rc = main(
        [
            "embed",
            str(music),
            "-e",
            "logmel",
            "-p",
            "n_mels=32",
            "--segments",
            "10:5",
            "--pooling",
            "mean_std+l2",
            "-o",
            str(out),
            "--no-progress",
        ]
    )
    assert rc == 0
    res = load_vectors(out)
    assert res.vectors.shape == (19, 64)  # 98.2 s in 10 s windows every 5 s
    np.testing.assert_allclose(np.linalg.norm(res.vectors, axis=1), 1.0, rtol=1e-5)
    assert res.records[3]["_start"] == 15.0 and res.records[3]["id"].endswith("#3")
    assert res.spec["embedder"]["params"]["n_mels"] == 32


def test_bad_files_are_recorded_and_the_rest_is_kept(tmp_path, capsys):
    folder = tmp_path / "in"
    shutil.copytree(demo_dir() / "kick", folder)
    (folder / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk")
    (folder / "empty.flac").write_bytes(b"")
    out = tmp_path / "v.npz"
    rc = main(["embed", str(folder), str(tmp_path / "missing.ogg"), "-o", str(out), "--no-progress"])
    assert rc == 1
    err = capsys.readouterr().err
    assert "3 file(s) failed" in err and "AudioFileNotFoundError" in err
    res = load_vectors(out)
    assert len(res.records) == 6
    assert sorted(f.error for f in res.failures) == ["AudioDecodeError", "AudioFileNotFoundError", "EmptyAudioError"]


def test_batch_failure_is_isolated_to_the_bad_file(tmp_path):
    """A file that breaks a batched model call is retried alone; its batch-mates are still embedded once."""
    from audiovec.errors import EmbeddingError

    emb = get_embedder("mfcc")
    calls = {"batch": 0}
    real_embed = emb.embed

    def embed_batch(audios):
        calls["batch"] += 1
        raise EmbeddingError("batch broke")

    def embed(audio):
        if "sonicpi__bd_fat" in (audio.source or ""):
            raise EmbeddingError("this file breaks the model")
        return real_embed(audio)

    emb.embed_batch = embed_batch  # type: ignore[method-assign]
    emb.embed = embed  # type: ignore[method-assign]
    res = extract([demo_dir() / "kick"], emb, Pipeline(), batch_size=4, workers=1, progress=False)  # patched here
    assert calls["batch"] == 2
    assert len(res.records) == 5 and len({r["_item"] for r in res.records}) == 5
    assert [f.error for f in res.failures] == ["EmbeddingError"]


def test_usage_errors(capsys, tmp_path):
    assert main(["embed", "--demo", "-e", "nope", "-o", str(tmp_path / "x.npz")]) == 2
    assert "UnknownPluginError" in capsys.readouterr().err
    assert main(["embed", "--demo", "-o", str(tmp_path / "x.csv"), "--no-progress"]) == 2
    assert main(["embed", "--demo", "--pooling", "median", "-o", str(tmp_path / "x.npz")]) == 2
    assert main(["embed"]) == 2
    with pytest.raises(SystemExit):
        main(["embed", "--demo", "-p", "novalue"])


def test_list_and_info(capsys, shared_file):
    assert main(["list", "--check"]) == 0
    out = capsys.readouterr().out
    assert "mfcc" in out and "[ok]" in out and "spectral-stats" in out
    assert main(["info", str(shared_file("data/fsdd/0_george_0.flac")), "/nonexistent.wav"]) == 1
    cap = capsys.readouterr()
    assert "8000 Hz, 1 ch, 0.298 s" in cap.out and "AudioFileNotFoundError" in cap.err

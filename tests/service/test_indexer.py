"""``audiovec index`` / ``audiovec search`` and Collection.index: content ids, skips, failures, resume after kill -9."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from audiovec.cli import main
from audiovec.data import demo_dir
from audiovec.errors import ConfigError
from audiovec.ingest import PathPattern
from audiovec.service import CollectionManager, ServiceSettings
from audiovec.service.collection import Collection

DEMO = sorted(demo_dir().rglob("*.flac"))


def _tree(root: Path, n: int = 12) -> list[Path]:
    """``n`` demo files under ``root/<label>/``, one corrupt file, and one copy of a file under another name."""
    files = []
    for p in DEMO[:n]:
        (root / p.parent.name).mkdir(parents=True, exist_ok=True)
        files.append(Path(shutil.copy(p, root / p.parent.name / p.name)))
    (root / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    shutil.copy(files[0], root / "same_bytes_other_name.flac")
    return files


@pytest.mark.parametrize(
    ("pattern", "path", "fields"),
    [
        ("{label}/*", "dog/bark_01.flac", {"label": "dog"}),
        ("{label}/*", "animals/dog/bark_01.flac", {"label": "dog"}),
        ("{digit}_{speaker}_*", "recordings/7_jackson_32.wav", {"digit": "7", "speaker": "jackson"}),
        ("{genre}/**/*", "jazz/1960/a/track.mp3", {"genre": "jazz"}),
        (r"(?P<take>\d+)\.wav$", "x/take_12.wav", {"take": "12"}),
        ("{label}/*", "top_level.wav", {}),
    ],
)
def test_path_patterns(pattern, path, fields):
    assert PathPattern(pattern)(path) == fields


@pytest.mark.parametrize("pattern", ["no_fields/*", "{bad-name}/*", "{_hidden}/*", "{open/*", "(?P<x>[)"])
def test_bad_path_patterns_are_config_errors(pattern):
    with pytest.raises(ConfigError):
        PathPattern(pattern)


def test_index_then_search_from_the_command_line(tmp_path, capsys):
    files = _tree(tmp_path / "sounds")
    col = tmp_path / "collections" / "drums"
    args = ["index", str(tmp_path / "sounds"), "--collection", str(col), "-p", "n_mfcc=13", "--pooling", "mean_std+l2"]
    rc = main([*args, "--label-from", "{label}/*", "--workers", "2", "--no-progress"])
    out, err = capsys.readouterr()
    assert rc == 1  # the corrupt file failed, and the run says so
    assert f"added {len(files)} ({len(files)} vectors" in out and "skipped 1 already stored, failed 1" in out
    assert "broken.wav" in err
    failures = [json.loads(line) for line in (col / "failures.jsonl").read_text().splitlines()]
    assert [f["source"].endswith("broken.wav") for f in failures] == [True]

    # a rerun adds nothing and duplicates nothing
    assert main([*args, "--no-progress"]) == 1
    assert f"added 0 (0 vectors, 0.00 h of audio), skipped {len(files) + 1}" in capsys.readouterr().out

    # other settings for the same folder are refused
    assert main(["index", str(files[0]), "--collection", str(col), "--no-progress"]) == 2
    assert "other settings" in capsys.readouterr().err

    query = files[3]
    assert main(["search", str(query), "--collection", str(col), "-k", "3", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)["hits"]
    assert hits[0]["path"] == str(query) and hits[0]["score"] == pytest.approx(1.0, abs=1e-4)
    assert hits[0]["metadata"] == {"folder": query.parent.name, "label": query.parent.name}
    other = files[-1].parent.name
    assert other != query.parent.name
    flt = json.dumps({"label": other})
    assert main(["search", str(query), "--collection", str(col), "--filter", flt, "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)["hits"]
    assert hits and {h["metadata"]["label"] for h in hits} == {other}
    assert main(["search", str(query), "--collection", str(col), "-k", "2"]) == 0
    assert f"1. 1.0000  {query}" in capsys.readouterr().out

    # the service serves the same folder, with the model the collection was made with (13 MFCCs, not its preset's 20)
    with CollectionManager(ServiceSettings(data_dir=tmp_path)) as manager:
        served = manager.get("drums")
        assert served.describe()["items"] == len(files) and served.dim == 26
        assert served.search_vectors(served.embed(query.read_bytes(), query.name).pooled.vectors, 1)[0]["path"] == str(
            query
        )


def test_items_are_keyed_by_content(tmp_path):
    files = _tree(tmp_path / "sounds", n=4)
    col = Collection.create(tmp_path / "c", "mfcc")
    try:
        report = col.index([tmp_path / "sounds"], workers=1, progress=False)
        assert report.added == 4 and report.skipped == 1
        stored = col.store.get([r.id for r in col.store.search(col.store.get(["x"]) or _first(col), k=10)[0]])
        digests = {r.metadata["_sha256"][:32] == r.metadata["_item"] for r in stored}
        assert digests == {True}
        # the same content under a new name is already there
        extra = tmp_path / "more"
        extra.mkdir()
        shutil.copy(files[1], extra / "renamed.flac")
        assert col.index([extra], workers=1, progress=False).skipped == 1
    finally:
        col.close()


def _first(col: Collection):
    import numpy as np

    return np.ones((1, col.dim), np.float32)


def test_resume_after_kill_9_loses_nothing_and_duplicates_nothing(tmp_path):
    sounds = tmp_path / "sounds"
    files = _tree(sounds, n=30)
    col_dir = tmp_path / "c"
    script = textwrap.dedent(
        f"""
        import os, signal
        from audiovec.progress import Callback
        from audiovec.service.collection import Collection

        class KillAfter(Callback):
            def call(self):
                if self.value >= 17:
                    os.kill(os.getpid(), signal.SIGKILL)

        if __name__ == "__main__":
            col = Collection.create({str(col_dir)!r}, "mfcc")
            col.index([{str(sounds)!r}], workers=2, checkpoint_s=0, progress=KillAfter())
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr
    col = Collection.open(col_dir)
    try:
        before = col.store.count()
        assert 0 < before < len(files)
        report = col.index([sounds], workers=1, progress=False)
        assert report.skipped >= before and report.added == len(files) - before
        assert col.store.count() == len(files)
        items = [r.metadata["_item"] for r in col.store.get([f"{i}#0" for i in _item_ids(files)])]
        assert sorted(items) == sorted(set(items)) and len(items) == len(files)
    finally:
        col.close()


def _item_ids(files: list[Path]) -> list[str]:
    from audiovec._hashing import sha256_file

    return [sha256_file(f)[:32] for f in files]


def test_collection_create_and_search_in_python(tmp_path):
    files = _tree(tmp_path / "sounds", n=6)
    col = Collection.create(tmp_path / "sfx", "mfcc", pooling="mean+l2")
    report = col.index([tmp_path / "sounds"], label_from="{label}/*", workers=1, progress=False)
    assert report.added == 6 and len(report.failures) == 1
    hits = col.search(files[2], k=2)
    assert hits[0]["path"] == str(files[2]) and hits[0]["metadata"]["label"] == files[2].parent.name
    col.close()
    assert Collection.open(tmp_path / "sfx").store.count() == 6
    with pytest.raises(Exception, match="no such audio file"):
        Collection.open(tmp_path / "sfx").search(tmp_path / "missing.wav")
    assert os.path.isfile(tmp_path / "sfx" / "collection.json")


@pytest.mark.milvus_server
def test_index_into_a_milvus_server_and_search_it(milvus_server_env, milvus_server, tmp_path, capsys):
    files = _tree(tmp_path / "sounds", n=10)
    col = tmp_path / "collections" / "drums_srv"
    args = ["index", str(tmp_path / "sounds"), "--collection", str(col), "--store", "milvus", "--index", "hnsw"]
    args += ["--milvus-uri", milvus_server.uri, "--label-from", "{label}/*", "--workers", "2", "--no-progress"]
    assert main(args) == 1  # the corrupt file
    assert f"added {len(files)} ({len(files)} vectors" in capsys.readouterr().out
    assert main(args) == 1
    assert "added 0 (0 vectors" in capsys.readouterr().out  # the rerun found everything in the server
    doc = json.loads((col / "collection.json").read_text())
    assert doc["milvus"] == {"uri": milvus_server.uri} and doc["config"]["store"]["backend"] == "milvus"
    assert main(["search", str(files[4]), "--collection", str(col), "-k", "2", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)["hits"]
    assert hits[0]["path"] == str(files[4]) and hits[0]["metadata"]["label"] == files[4].parent.name
    with Collection.open(col) as opened:
        assert opened.store.count() == len(files)

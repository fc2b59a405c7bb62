"""The README's quickstart works as written: its commands and its Python run on a fresh folder of sounds."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

from crash_service import wav

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    start = README.index(f"## {title}")
    end = README.find("\n## ", start + 3)
    return README[start : end if end >= 0 else None]


def _blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)


QUICKSTART = _section("Quickstart: search a folder of sounds")


def _folder(root: Path) -> None:
    """``sounds/<label>/*.wav`` (two labels, distinct pitches) and a ``query.wav`` like the first label."""
    for label, seeds in (("dog", range(0, 6)), ("cat", range(900, 906))):
        (root / "sounds" / label).mkdir(parents=True)
        for s in seeds:
            (root / "sounds" / label / f"{label}_{s}.wav").write_bytes(wav(s))
    (root / "query.wav").write_bytes(wav(3))


def test_quickstart_extras_exist():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    named = {e for line in re.findall(r'pip install "?audiovec\[([^\]]+)\]', README) for e in line.split(",")}
    assert named and named <= set(extras), named - set(extras)


def test_quickstart_commands_run_as_written(tmp_path):
    _folder(tmp_path)
    commands = [
        line.split("#")[0].strip()
        for block in _blocks(QUICKSTART, "bash")
        for line in block.splitlines()
        if line.strip().startswith("audiovec ")
    ]
    assert [c.split()[1] for c in commands] == ["index", "search"]
    outputs = []
    for command in commands:
        argv = [sys.executable, "-m", "audiovec", *shlex.split(command)[1:]]
        proc = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        outputs.append(proc.stdout)
    assert "added 12" in outputs[0]
    hits = [line for line in outputs[1].splitlines() if "sounds/" in line]
    assert len(hits) == 10 and "dog_3.wav" in hits[0]  # the query is a copy of dog_3: it ranks first


@pytest.mark.parametrize("block", _blocks(QUICKSTART, "python"), ids=["python"])
def test_quickstart_python_runs_as_written(block, tmp_path):
    _folder(tmp_path)
    (tmp_path / "quickstart.py").write_text(block)
    proc = subprocess.run([sys.executable, "quickstart.py"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert "added 12" in lines[0]
    hits = lines[1:]
    assert len(hits) == 6 and all("'label': 'dog'" in h for h in hits)  # the filter keeps the 6 dog sounds
    assert "dog_3.wav" in hits[0]

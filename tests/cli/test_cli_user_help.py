"""What the command line tells a user: plain help, suggestions for misspellings, honest checks and hints."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator

import pytest

from audiovec.cli import main
from audiovec.cli._main import build_parser

#: reStructuredText or Markdown markup that a terminal shows raw.
_MARKUP = re.compile(r"``|:[a-z]+:`|`[^`\s][^`]*`|\*\*")


def _commands(parser: argparse.ArgumentParser, words: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield words
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, (*words, name))


_ALL_COMMANDS = list(_commands(build_parser()))


def test_every_command_has_a_help_page():
    assert len(_ALL_COMMANDS) >= 15
    assert ("fingerprint", "index") in _ALL_COMMANDS and ("collection", "create") in _ALL_COMMANDS


@pytest.mark.parametrize("words", _ALL_COMMANDS, ids=lambda w: " ".join(w) or "audiovec")
def test_help_has_no_raw_markup(words, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([*words, "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: audiovec")
    assert [line for line in text.splitlines() if _MARKUP.search(line)] == []


def test_plain_text_takes_out_roles_literals_and_code():
    from audiovec.cli._common import plain_text

    text = "see :class:`~audiovec.stores.ExactStore`, :func:`audiovec.get_embedder`, :ref:`the docs <cli>`"
    assert plain_text(text) == "see ExactStore, audiovec.get_embedder, the docs"
    assert (
        plain_text("``-p n_mfcc=13`` or `audiovec list`, **not** *.wav") == "-p n_mfcc=13 or 'audiovec list', not *.wav"
    )


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["-p", "n_mfc=40"], "unknown parameter 'n_mfc' for mfcc; did you mean 'n_mfcc'? known: chunk_s, fmax"),
        (["-p", "chunk=5", "-p", "zzz=1"], "did you mean 'chunk_s'? unknown parameter 'zzz' for mfcc; known: "),
        (["-e", "mfc"], "no embedder named 'mfc'; did you mean 'mfcc'? available: "),
    ],
    ids=["param", "two-params", "embedder"],
)
def test_misspelt_embedder_or_parameter_gets_a_suggestion(flags, expected, tmp_path, capsys):
    status = main(["embed", "--demo", "-o", str(tmp_path / "out.npz"), "--no-progress", *flags])
    err = capsys.readouterr().err
    assert status == 2 and expected in err
    assert not (tmp_path / "out.npz").exists()


def test_misspelt_store_name_gets_a_suggestion():
    from audiovec.errors import UnknownPluginError
    from audiovec.stores import get_store

    with pytest.raises(UnknownPluginError, match=r"no vector store named 'fais'; did you mean 'faiss'\? available"):
        get_store("fais")
    with pytest.raises(UnknownPluginError, match="no vector store named 'qqqqqq'; available") as far:
        get_store("qqqqqq")  # nothing close: no suggestion
    assert "did you mean" not in str(far.value)


def test_vector_mode_on_a_fingerprint_only_index_says_how_to_add_vectors(tmp_path, capsys):
    from audiovec.data import demo_dir
    from audiovec.ingest import find_audio_files

    track = find_audio_files([demo_dir()])[0]
    db = tmp_path / "db"
    assert main(["fingerprint", "index", str(track), "--db", str(db), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["identify", str(track), str(track), "--db", str(db), "--mode", "vector"]) == 2
    err = capsys.readouterr().err
    assert err.count("ConfigError") == 1  # said once, not once per file
    assert "needs a vector store and an embedder, and this index has fingerprints only" in err
    assert '"audiovec fingerprint index MUSIC_DIR --db NEW_DB --embedder mfcc"' in err


def test_list_check_names_the_extra_for_a_missing_package(monkeypatch, capsys):
    import importlib.util

    real_find_spec = importlib.util.find_spec

    def find_spec(name, package=None):
        return None if name in ("torch", "faiss") else real_find_spec(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    assert main(["list", "--check"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.startswith("  ")}
    for name in ("hf", "wav2vec2", "whisper", "clap"):
        assert rows[name].endswith('[missing: pip install "audiovec[transformers]" (torch not installed)]')
    assert rows["ecapa"].endswith('[missing: pip install "audiovec[speaker]" (torch not installed)]')
    assert rows["faiss"].endswith('[missing: pip install "audiovec[faiss]" (faiss not installed)]')
    assert rows["mfcc"].endswith("[ok]") and rows["exact"].endswith("[ok]")

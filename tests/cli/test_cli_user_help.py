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

"""What every ``audiovec`` command shares: ``KEY=VALUE`` parameters, progress, and the exit-status rules."""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from audiovec.progress import Callback

__all__ = [
    "Parser",
    "PlainHelpFormatter",
    "add_embedder_flags",
    "add_progress_flag",
    "add_workers_flag",
    "parse_params",
    "plain_text",
    "progress",
]

#: ``:class:`~a.b.C```, ``:func:`f```... (Sphinx roles), with an optional ``title <target>`` form.
_ROLE = re.compile(r":[\w.-]+:`~?(?:([^`<]*?)\s*<[^`>]*>|([^`]*))`")
#: ````literal```` (reStructuredText) and ```code``` (Markdown).
_LITERAL = re.compile(r"``([^`]+)``")
_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*([^*]+)\*\*")


def plain_text(text: str) -> str:
    """Text for a terminal: reStructuredText and Markdown markup taken out of help texts and docstrings.

    Roles keep their title, or the last part of a ``~``-shortened name (``:class:`~audiovec.Pipeline``` →
    ``Pipeline``); literals and bold lose their markers; single-backtick code becomes quoted (``'audiovec list'``).
    """

    def role(match: re.Match[str]) -> str:
        title, target = match.group(1), match.group(2)
        if title:
            return title
        return target.rsplit(".", 1)[-1] if match.group(0).split("`", 1)[1].startswith("~") else target

    text = _ROLE.sub(role, text)
    text = _LITERAL.sub(r"\1", text)
    text = _CODE.sub(r"'\1'", text)
    return _BOLD.sub(r"\1", text)


class PlainHelpFormatter(argparse.HelpFormatter):
    """argparse's help layout, with markup taken out of descriptions, epilogs and option help (:func:`plain_text`)."""

    def _format_text(self, text: str) -> str:
        return super()._format_text(plain_text(text))

    def _expand_help(self, action: argparse.Action) -> str:
        return plain_text(super()._expand_help(action))


class Parser(argparse.ArgumentParser):
    """The parser of ``audiovec`` and of its commands: help without markup (sub-commands inherit the class)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", PlainHelpFormatter)
        super().__init__(*args, **kwargs)


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_params(items: Sequence[str], flag: str = "--param") -> dict[str, Any]:
    """``["n_mfcc=13", "fmax=8000"]`` → ``{"n_mfcc": 13, "fmax": 8000}`` (values parsed as JSON when possible).

    Dashes in keys become underscores. A malformed item exits with status 2 and a message naming ``flag``.
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"audiovec: error: {flag} expects KEY=VALUE, got {item!r}")
        out[key.replace("-", "_")] = _value(value)
    return out


def add_progress_flag(parser: argparse.ArgumentParser) -> None:
    """Add ``--no-progress``."""
    parser.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress report (default: a bar on a terminal, log lines otherwise)",
    )


def progress(args: argparse.Namespace, size: int | None, description: str, unit: str = "file") -> Callback:
    """The progress callback for a command: a bar on a terminal, log lines in a log, nothing with --no-progress."""
    from audiovec.progress import as_callback  # imported when a command reports progress (identify does not)

    return as_callback(not getattr(args, "no_progress", False), size, description, unit)


def add_workers_flag(parser: argparse.ArgumentParser) -> None:
    """Add ``--workers N`` (embedding processes; default one per core)."""
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="embedding processes, each with its own copy of the model (default: one per core; 1: no extra process)",
    )


def add_embedder_flags(parser: argparse.ArgumentParser, pooling: str) -> None:
    """Add ``-e/--embedder``, ``-p/--param``, ``--pooling`` and ``--segments``."""
    parser.add_argument("-e", "--embedder", default="mfcc", help="embedder name (see `audiovec list`), default mfcc")
    parser.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="embedder parameter, repeatable (e.g. -p n_mfcc=13); values are parsed as JSON when possible",
    )
    parser.add_argument(
        "--pooling",
        default=pooling,
        help=f"MODE[:N][+l2], MODE in mean, max, mean_std, linear_concat (e.g. linear_concat:64); default {pooling}",
    )
    parser.add_argument("--segments", default=None, metavar="WINDOW[:HOP]", help="one vector per segment, in seconds")

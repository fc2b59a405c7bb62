"""The ``audiovec`` command line.

Commands:
    ``audiovec bench --demo``          the benchmark on the bundled demo set (MFCC + FAISS + installed models)
    ``audiovec bench CONFIG.toml``     a benchmark described by a config file
    ``audiovec report RESULTS_DIR``    (re)draw the HTML report and plots of a finished benchmark
    ``audiovec embed PATH... -o OUT``  embed files/folders into pooled vectors (``.npz`` or ``.jsonl``)
    ``audiovec embed --demo -o OUT``   the same on the bundled demo set (no data needed)
    ``audiovec index PATH... --collection DIR``    index a folder of audio into a collection (created on first use)
    ``audiovec search QUERY... --collection DIR``  search it with audio files (or text, for CLAP)
    ``audiovec list``                  registered embedders (and stores) with where they come from
    ``audiovec info FILE...``          sample rate, channels and duration of audio files
    ``audiovec fingerprint index DIR --db PATH``   index a music collection (landmark fingerprints + vectors)
    ``audiovec identify FILE --db PATH``           identify a recording from an excerpt (docs/identification.md)
    ``audiovec serve``                             the search service and web page (docs/service.md)
    ``audiovec collection create|list|describe|drop|index``   manage the service's collections

Exit status: 0 on success, 1 when some files failed (their errors are listed and written to the output),
2 on usage or configuration errors.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import re
import sys
from collections.abc import Sequence
from typing import Any

from audiovec.cli._common import Parser
from audiovec.errors import AudiovecError

__all__ = ["build_parser", "main"]

#: The modules that add commands to the parser (``audiovec.cli.<name>``), in the order of the help.
_MODULES = ("bench", "embed", "index", "info", "identify", "service")
#: The module of each command: :func:`main` imports and builds only the parser of the command it runs.
_COMMANDS = {
    "bench": "bench",
    "report": "bench",
    "embed": "embed",
    "index": "index",
    "search": "index",
    "list": "info",
    "info": "info",
    "fingerprint": "identify",
    "identify": "identify",
    "serve": "service",
    "collection": "service",
}
#: The options that may come before a command (``-v``, ``-vv``, ``--verbose``), spelt in full.
_VERBOSE = re.compile(r"-v+|--verbose")


class _Version(argparse.Action):
    """``--version``: reads the installed version only when asked (the package metadata is slow to import)."""

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        from audiovec._version import __version__

        print(f"audiovec {__version__}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``audiovec`` command."""
    return _build_parser(_MODULES)


def _build_parser(modules: Sequence[str]) -> argparse.ArgumentParser:
    """The ``audiovec`` parser with the commands of ``modules`` only (all of them: :func:`build_parser`)."""
    parser = Parser(prog="audiovec", description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--version", action=_Version, nargs=0, help="show the version and exit")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in modules:
        importlib.import_module(f"audiovec.cli.{name}").add_commands(sub)
    return parser


def _modules_for(argv: Sequence[str]) -> Sequence[str]:
    """The command modules that parsing ``argv`` needs.

    The command's own when ``argv`` names one after nothing but ``-v`` flags (a command's parser and messages do
    not depend on the other commands), else all of them (the top-level help and usage errors list every command).
    """
    for arg in argv:
        if not _VERBOSE.fullmatch(arg):
            module = _COMMANDS.get(arg)
            return (module,) if module is not None else _MODULES
    return _MODULES


def _logging(verbose: int) -> None:
    """Warnings (or more with -v) on stderr; progress lines always, so a log file shows how far a job got."""
    level = logging.WARNING - 10 * min(verbose, 2)
    console = logging.StreamHandler()
    console.setLevel(min(level, logging.INFO))  # the benchmark lowers the audiovec logger's level for its log file
    console.addFilter(lambda r: r.levelno >= level or r.name == "audiovec.progress")
    console.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    logging.basicConfig(level=level, handlers=[console])
    logging.getLogger("audiovec.progress").setLevel(logging.INFO)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = _build_parser(_modules_for(sys.argv[1:] if argv is None else argv))
    args = parser.parse_args(argv)
    _logging(args.verbose)
    try:
        return int(args.func(args))
    except AudiovecError as err:
        print(f"audiovec: error: {type(err).__name__}: {err}", file=sys.stderr)
        return 2

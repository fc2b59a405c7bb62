"""``audiovec list`` and ``audiovec info``: what is registered and usable, and what audio files hold."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from audiovec.errors import AudiovecError

__all__ = ["add_commands"]


def _check(reg: Any, name: str) -> str:
    """``ok``, ``missing: pip install "audiovec[extra]" (...)`` or ``unavailable: why`` for one plugin."""
    missing = reg.missing(name)
    if missing is not None:
        return str(missing)
    try:
        reg.load(name)
    except AudiovecError as err:
        return f"unavailable: {err}"
    return "ok"


def _cmd_list(args: argparse.Namespace) -> int:
    from audiovec.embedders import registry as embedders

    registries: list[Any] = [embedders]
    try:
        from audiovec.stores import registry as stores

        registries.append(stores)
    except ImportError:  # pragma: no cover - stores module missing in a partial install
        pass
    for reg in registries:
        print(f"{reg.kind}s ({reg.group}):")
        for name in reg.names():
            info = reg.info(name)
            status = ""
            if args.check:
                status = f"  [{_check(reg, name)}]"
            print(f"  {name:<14} {info.target}  ({info.distribution or 'runtime'}){status}")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from audiovec.audio import info

    status = 0
    for path in args.files:
        try:
            i = info(path)
        except AudiovecError as err:
            print(f"{path}: ERROR {type(err).__name__}: {err}", file=sys.stderr)
            status = 1
            continue
        print(f"{path}: {i.format}/{i.subtype}, {i.sample_rate} Hz, {i.channels} ch, {i.duration:.3f} s")
    return status


def add_commands(sub: Any) -> None:
    """Add the commands of this module to the ``audiovec`` parser (``sub``: what ``add_subparsers()`` returned)."""
    p = sub.add_parser("list", help="list registered embedders and stores")
    p.add_argument(
        "--check",
        action="store_true",
        help="check that the packages each one needs are installed, import it, and say what to install if not",
    )
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("info", help="show format, sample rate, channels and duration of audio files")
    p.add_argument("files", nargs="+")
    p.set_defaults(func=_cmd_info)

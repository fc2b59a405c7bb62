"""The ``audiovec`` command line (also ``python -m audiovec``).

One module per group of commands — ``bench``, ``embed``, ``info``, ``identify``, ``service`` — each adds its commands
to the parser; ``_common`` holds what they share. :func:`main` imports only the module of the command it runs.
"""

from __future__ import annotations

from audiovec.cli._main import build_parser, main

__all__ = ["build_parser", "main"]

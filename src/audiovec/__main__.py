"""``python -m audiovec``: the command line."""

from __future__ import annotations

import sys

from audiovec.cli import main

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

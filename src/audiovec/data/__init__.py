"""Data shipped with audiovec: a 42-clip demo set of drum one-shots (CC0 / CC-BY-3.0, see ``demo/LICENSES.md``).

The demo set lets a fresh install run end to end with no download: 9 classes (kick, snare, hihat, tom, cymbal,
clap, rim, cowbell, hand_percussion) from 3 kits, 16 kHz mono FLAC, with a ``metadata.tsv`` giving label, kit
(the group key for leave-kit-out evaluation), licence and attribution of every clip.
"""

from __future__ import annotations

import csv
from pathlib import Path

__all__ = ["demo_dir", "demo_metadata"]


def demo_dir() -> Path:
    """Folder of the demo clips (``<label>/<clip>.flac``)."""
    return Path(__file__).parent / "demo"


def demo_metadata() -> list[dict[str, str]]:
    """Rows of the demo set's ``metadata.tsv``, with ``path`` made absolute."""
    root = demo_dir()
    with open(root / "metadata.tsv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    for row in rows:
        row["path"] = str(root / row["path"])
    return rows

"""An MFCC embedder whose worker process dies (SIGKILL) on chosen items: for the worker-pool tests.

Items whose source name contains ``CRASH_ONCE`` kill the process the first time any process embeds them (a marker
file in ``$AUDIOVEC_TEST_CRASH_DIR`` remembers it); items containing ``CRASH_ALWAYS`` kill it every time.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from audiovec import Audio
from audiovec.embedders.classical import MFCCEmbedder
from audiovec.embeddings import FrameEmbeddings

CRASH_DIR_ENV = "AUDIOVEC_TEST_CRASH_DIR"


class CrashingMFCC(MFCCEmbedder):
    """MFCC that kills its own process on marked items."""

    name: ClassVar[str] = "mfcc"

    def _maybe_die(self, audios: Sequence[Audio]) -> None:
        for audio in audios:
            source = audio.source or ""
            if "CRASH_ALWAYS" in source:
                os.kill(os.getpid(), signal.SIGKILL)
            if "CRASH_ONCE" in source:
                marker = Path(os.environ[CRASH_DIR_ENV]) / (Path(source).name + ".crashed")
                if not marker.exists():
                    marker.write_text("crashed once\n")
                    os.kill(os.getpid(), signal.SIGKILL)

    def embed(self, audio: Audio) -> FrameEmbeddings:
        self._maybe_die([audio])
        return super().embed(audio)

    def embed_batch(self, audios: Sequence[Audio]) -> list[FrameEmbeddings]:
        self._maybe_die(audios)
        return super().embed_batch(audios)

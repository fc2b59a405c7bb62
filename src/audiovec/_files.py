"""Crash-safe file writes: a file holds either its old or its complete new content, whatever happens mid-write."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

__all__ = ["GroupSync", "atomic_write", "fsync_dir"]


def fsync_dir(path: Path) -> None:
    """Flush a directory entry to disk (so a rename survives a crash); a no-op where unsupported."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Write a file so that ``path`` holds either its old or its complete new content, even after a crash.

    ``write(tmp)`` writes the new content to a temporary file beside ``path``; it is flushed to disk and then
    renamed over ``path`` with :func:`os.replace`.
    """
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


class GroupSync:
    """One flush for many writers (group commit): take a ticket after a write, wait on it before acknowledging.

    The first waiter runs ``flush``; writers that arrive meanwhile wait for the next flush, which covers every
    ticket taken before it started. An exception from ``flush`` reaches the waiter that ran it; the others try again.

    Example:
        >>> sync = GroupSync(lambda: None)
        >>> sync.wait(sync.ticket())
    """

    def __init__(self, flush: Callable[[], None]) -> None:
        self._flush = flush
        self._cond = threading.Condition()
        self._issued = 0
        self._done = 0
        self._busy = False

    def ticket(self) -> int:
        """A ticket for the writes made so far (take it after writing)."""
        with self._cond:
            self._issued += 1
            return self._issued

    def wait(self, ticket: int) -> None:
        """Return once a flush that started after ``ticket`` was taken has finished."""
        with self._cond:
            while self._done < ticket:
                if self._busy:
                    self._cond.wait()
                    continue
                self._busy = True
                target = self._issued
                flushed = False
                self._cond.release()
                try:
                    self._flush()
                    flushed = True
                finally:
                    self._cond.acquire()
                    self._busy = False
                    self._cond.notify_all()
                if flushed:
                    self._done = max(self._done, target)

    def settle(self) -> None:
        """Wait for a flush in progress, then count every ticket as done.

        For when the data was made durable by other means (a full save) or is abandoned (closing).
        """
        with self._cond:
            while self._busy:
                self._cond.wait()
            self._done = self._issued

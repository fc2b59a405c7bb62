"""Milvus Lite databases: where one may live, who holds its lock, and releasing it when the last store closes.

Milvus Lite keeps a *directory* at a path ending in ``.db`` and runs one in-process server per path, which holds
an exclusive ``flock`` on ``<path>/LOCK`` until it is released: another process cannot open the database
meanwhile. Stores count their uses of each path here (:func:`acquire`, :func:`release`), so that the last
:class:`~audiovec.stores.milvus.MilvusStore` on a path to close releases Lite's server and with it the lock.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import logging
import os
import threading
from pathlib import Path

from audiovec.errors import ConfigError, StoreError

__all__ = ["acquire", "check_path", "lock_holder", "open_error", "release"]

log = logging.getLogger(__name__)

_LOCK = threading.Lock()
_USERS: dict[str, int] = {}


def check_path(text: str) -> str:
    """The absolute path of a Milvus Lite database, checked before Lite touches it.

    Raises:
        ConfigError: The path does not end in ``.db``.
        StoreError: A file is there, or a non-empty directory that is not a Milvus Lite database.
    """
    if not text.endswith(".db"):
        raise ConfigError(
            f"a local Milvus Lite uri must be a path ending in '.db' (Milvus Lite keeps a directory there), got "
            f"{text!r}; use http://host:19530 for a server"
        )
    p = Path(text).expanduser().resolve()
    if p.exists() and not p.is_dir():
        raise StoreError(
            f"{p} is a file; Milvus Lite keeps a directory at the .db path (was it written by another program?)"
        )
    if p.is_dir() and any(p.iterdir()) and not ((p / "LOCK").exists() or (p / "collections").is_dir()):
        raise StoreError(f"{p} is a non-empty directory that is not a Milvus Lite database; refusing to use it")
    return str(p)


def acquire(path: str) -> None:
    """Count one more store of this process on the database at ``path``."""
    with _LOCK:
        _USERS[path] = _USERS.get(path, 0) + 1


def release(path: str) -> None:
    """Count one store less on ``path``; the last one releases Lite's in-process server (and the lock)."""
    with _LOCK:
        n = _USERS.get(path, 0) - 1
        if n > 0:
            _USERS[path] = n
            return
        _USERS.pop(path, None)
    try:
        manager = importlib.import_module("milvus_lite.server_manager")
        manager.server_manager_instance.release_server(path)
    except Exception as err:  # pragma: no cover - defensive: never fail a close
        log.warning("could not release the Milvus Lite server for %s: %s", path, err)


def open_error(path: str, detail: str) -> StoreError:
    """The error for a database that Lite failed to open: the lock holder when another process has it."""
    holder = lock_holder(Path(path) / "LOCK")
    if holder is not None:
        return StoreError(
            f"the Milvus Lite data dir {path} is locked by {holder}: Milvus Lite lets one process at a time "
            "open a database (close the store there, or use a Milvus server for shared access)"
        )
    return StoreError(f"cannot open the Milvus Lite database at {path}: {detail}")


def lock_holder(lock_file: Path) -> str | None:
    """Describe who holds the flock on ``lock_file``, or None when nobody does (best effort, Linux only)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        return None
    try:
        fd = os.open(lock_file, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                return None
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        pid = _flock_pid(os.fstat(fd).st_ino)
    finally:
        os.close(fd)
    return f"process {pid}" if pid is not None else "another process"


def _flock_pid(inode: int) -> int | None:
    try:
        lines = Path("/proc/locks").read_text(encoding="ascii", errors="replace").splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split()
        # "1: FLOCK  ADVISORY  WRITE 12345 08:01:1234567 0 EOF"
        if len(parts) >= 6 and parts[1] == "FLOCK" and parts[5].rsplit(":", 1)[-1] == str(inode):
            with contextlib.suppress(ValueError):
                return int(parts[4])
    return None

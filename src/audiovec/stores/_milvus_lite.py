"""Milvus Lite databases: where one may live, who holds its lock, and releasing it when the last store closes.

Milvus Lite keeps a *directory* at a path ending in ``.db`` and runs one in-process server per path, which holds
an exclusive ``flock`` on ``<path>/LOCK`` until it is released: another process cannot open the database
meanwhile. :func:`check_unlocked` looks at that lock before Lite is started, so that a second process fails at once
with a :class:`~audiovec.errors.StoreLockedError` naming the holder. Stores count their uses of each path here
(:func:`acquire`, :func:`release`), so that the last :class:`~audiovec.stores.milvus.MilvusStore` on a path to close
releases Lite's server and with it the lock.

A ``LOCK`` file left behind by a process that died is no lock: the kernel drops a ``flock`` with the last open file
that holds it, so such a database opens normally.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import logging
import os
import threading
from pathlib import Path

from audiovec.errors import ConfigError, StoreError, StoreLockedError

__all__ = ["LOCK_NAME", "acquire", "check_path", "check_unlocked", "lock_holders", "open_error", "release"]

log = logging.getLogger(__name__)

LOCK_NAME = "LOCK"
"""The file in the database directory that Milvus Lite ``flock``s while a process has the database open."""

_LOCK = threading.Lock()
_USERS: dict[str, int] = {}
_MAX_NAMED = 3  # holders named in an error message
_MAX_CMDLINE = 300  # characters of a holder's command line in an error message
_ADVICE = (
    "Milvus Lite lets one process at a time open a database: close the other process (or the store in it), or use "
    "a Milvus server (uri='http://host:19530') for several processes"
)


def check_path(text: str) -> str:
    """The absolute path of a Milvus Lite database, checked before Lite touches it.

    Raises:
        ConfigError: The path does not end in ``.db``.
        StoreError: A file is there, or a non-empty directory that is not a Milvus Lite database, or its ``LOCK``
            is not a regular file.
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
    lock = p / LOCK_NAME
    if p.is_dir() and any(p.iterdir()) and not (lock.exists() or (p / "collections").is_dir()):
        raise StoreError(f"{p} is a non-empty directory that is not a Milvus Lite database; refusing to use it")
    if lock.exists() and not lock.is_file():
        raise StoreError(
            f"{lock} is not a regular file; Milvus Lite locks the database {p} with a file of that name (was the "
            "directory changed by another program?)"
        )
    return str(p)


def check_unlocked(path: str) -> None:
    """Fail at once when another process holds Milvus Lite's lock on the database at ``path``.

    Milvus Lite would start its server first and fail only then, logging a traceback. This reads the kernel's lock
    table instead (``/proc/locks``; where it cannot be read, a non-blocking ``flock`` that is released at once), and
    waits for nothing. Stores of this process on ``path`` share Lite's server and pass.

    Raises:
        StoreLockedError: Another process holds the lock; the message names the database and the holder.
    """
    with _LOCK:
        if path in _USERS:
            return
    holders = lock_holders(Path(path) / LOCK_NAME)
    if holders is not None and holders != [os.getpid()]:  # this process itself: Lite's server may be shared
        raise _locked_error(path, holders)


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
    """The error for a database that Lite failed to open: a :class:`StoreLockedError` when its lock is held."""
    holders = lock_holders(Path(path) / LOCK_NAME, probe=True)
    if holders is not None:
        return _locked_error(path, holders)
    return StoreError(f"cannot open the Milvus Lite database at {path}: {detail}")


def lock_holders(lock_file: Path, *, probe: bool = False) -> list[int] | None:
    """The pids of the processes holding the ``flock`` on ``lock_file`` (Linux ``/proc``; best effort elsewhere).

    Args:
        lock_file: The lock file.
        probe: Also try a non-blocking ``flock`` (released at once) when ``/proc/locks`` shows no lock on the file,
            for file systems whose lock table entries do not match ``stat``. It could make a process that takes
            the lock at that very moment fail, so it is meant for after Lite has failed.

    Returns:
        None when nobody holds the lock (or there is no lock file), else the holders' pids: usually one, the
        processes that inherited the lock when its taker has died, or an empty list when the lock is held but its
        holder cannot be seen from here.
    """
    try:
        st = os.stat(lock_file)
    except OSError:
        return None
    recorded = _recorded_pids(st)
    if recorded is None or (probe and not recorded):
        return [] if _flock_refused(lock_file) else None
    if not recorded:
        return None
    live = [pid for pid in recorded if pid > 0 and _opens(pid, st) is not False]
    return live or _openers(st)


def _locked_error(path: str, holders: list[int]) -> StoreLockedError:
    named = [f"process {pid}" + (f" ({cmd})" if (cmd := _cmdline(pid)) else "") for pid in holders[:_MAX_NAMED]]
    if len(holders) > _MAX_NAMED:
        named.append(f"{len(holders) - _MAX_NAMED} more")
    who = ", ".join(named) if named else "another process (not visible from this one)"
    return StoreLockedError(f"the Milvus Lite database {path} is locked by {who}. {_ADVICE}")


def _recorded_pids(st: os.stat_result) -> list[int] | None:
    """Pids that ``/proc/locks`` records for flocks on the file; None when the table cannot be read.

    A recorded pid is the process that took the lock, which may have died since while a child it forked before
    keeps the lock open.
    """
    try:
        lines = Path("/proc/locks").read_text(encoding="ascii", errors="replace").splitlines()
    except OSError:
        return None
    key = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    pids = []
    for line in lines:
        parts = line.split()
        # "1: FLOCK  ADVISORY  WRITE 12345 08:01:1234567 0 EOF" (waiters read "1: -> FLOCK ..." and hold nothing)
        if len(parts) >= 6 and parts[1] == "FLOCK" and parts[5] == key:
            with contextlib.suppress(ValueError):
                pids.append(int(parts[4]))
    return pids


def _flock_refused(lock_file: Path) -> bool:
    """Whether a non-blocking exclusive ``flock`` on the file is refused; a lock it gets is released at once."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        return False
    try:
        fd = os.open(lock_file, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        return err.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK)
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def _opens(pid: int, st: os.stat_result) -> bool | None:
    """Whether process ``pid`` has the file open; None when its open files cannot be read (another user)."""
    fd_dir = Path(f"/proc/{pid}/fd")
    try:
        fds = list(fd_dir.iterdir())
    except FileNotFoundError:
        return False
    except OSError:
        return None
    for fd in fds:
        with contextlib.suppress(OSError):
            other = os.stat(fd)
            if (other.st_dev, other.st_ino) == (st.st_dev, st.st_ino):
                return True
    return False


def _openers(st: os.stat_result) -> list[int]:
    """Every process (visible from here) that has the file open, this one excluded."""
    try:
        pids = sorted(int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit())
    except OSError:
        return []
    return [pid for pid in pids if pid != os.getpid() and _opens(pid, st)]


def _cmdline(pid: int) -> str:
    """The command line of ``pid`` as one printable line of bounded length, or ``""`` when /proc cannot tell."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    text = " ".join(arg.decode("utf-8", "replace") for arg in raw.split(b"\0") if arg)
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= _MAX_CMDLINE else text[: _MAX_CMDLINE - 3] + "..."

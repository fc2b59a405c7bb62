"""Hostile cases for Milvus Lite's one-process lock: a live holder, a killed one, a forked heir, a foreign locker.

Milvus Lite holds an exclusive ``flock`` on ``<db>/LOCK`` while a process has the database open. A second process
must get a :class:`~audiovec.errors.StoreLockedError` at once that names the database and the holder; a lock whose
holder died (``kill -9``) must not block. Every process started here is killed in a ``finally``.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from audiovec.errors import StoreError, StoreLockedError
from audiovec.stores import get_store
from audiovec.stores.milvus import MilvusStore

pytest.importorskip("milvus_lite")
if not sys.platform.startswith("linux"):  # pragma: no cover - the holder scripts use fork and /proc
    pytest.skip("the lock-holder scenarios need Linux", allow_module_level=True)

CONFIG = {"dim": 4, "index": "flat"}

# A process that opens the store in `directory`, writes one record and keeps the database open.
MILVUS_HOLDER = """
import sys, time
import numpy as np
from audiovec.stores import get_store

store = get_store("milvus", {"dim": 4, "index": "flat"}, directory=sys.argv[1])
store.add(np.ones((1, 4), np.float32), ids=[7])
print("ready", flush=True)
time.sleep(120)
"""

# A process that is not Milvus at all: it takes the same flock on a LOCK file, optionally forks a child that
# inherits it, prints the child's pid (or 0) and sleeps.
FLOCK_HOLDER = """
import fcntl, os, sys, time

fd = os.open(sys.argv[1], os.O_CREAT | os.O_RDWR, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
child = os.fork() if sys.argv[2] == "fork" else 0
if child == 0 and sys.argv[2] == "fork":
    time.sleep(120)
    os._exit(0)
print(child, flush=True)
time.sleep(120)
"""


def _script(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


@contextlib.contextmanager
def _started(args: Sequence[str | bytes | Path], log: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Start a holder, wait (bounded) for its first line, and kill it (and nothing else) on the way out."""
    with log.open("w") as err:
        proc = subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, stderr=err, text=True)
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 90)
        line = proc.stdout.readline().strip() if ready else ""
        if not line:
            pytest.fail(f"the lock holder did not start: {log.read_text()[-2000:]}")
        yield proc, line
    finally:
        proc.kill()
        proc.wait(timeout=30)
        assert proc.stdout is not None
        proc.stdout.close()  # a forked child may hold the other end: never wait for its EOF


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def test_a_live_holder_fails_the_second_process_at_once_naming_it(tmp_path):
    holder = _script(tmp_path, "milvus_holder.py", MILVUS_HOLDER)
    directory = tmp_path / "clips"
    with _started([holder, directory], tmp_path / "holder.log") as (proc, _):
        t0 = time.monotonic()
        with pytest.raises(StoreLockedError) as info:
            get_store("milvus", CONFIG, directory=directory)
        elapsed = time.monotonic() - t0
    msg = str(info.value)
    assert str(directory / "milvus.db") in msg, msg
    assert f"process {proc.pid}" in msg and "milvus_holder.py" in msg, msg  # the pid and its command line
    assert "close the other process" in msg and "Milvus server" in msg, msg
    assert elapsed < 5.0, f"the locked store took {elapsed:.1f} s to fail"  # a bound, not a benchmark (~0.01 s)


def test_a_killed_holder_leaves_a_stale_lock_file_that_does_not_block(tmp_path):
    holder = _script(tmp_path, "milvus_holder.py", MILVUS_HOLDER)
    directory = tmp_path / "clips"
    with _started([holder, directory], tmp_path / "holder.log") as (proc, _):
        with pytest.raises(StoreLockedError):
            get_store("milvus", CONFIG, directory=directory)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert (directory / "milvus.db" / "LOCK").exists()  # the file stays behind; the flock died with its holder
    with get_store("milvus", directory=directory) as store:
        assert store.get([7])[0] is not None, "the record written before the kill is gone"


def test_a_forked_child_that_inherited_the_lock_is_named_not_its_dead_parent(tmp_path):
    holder = _script(tmp_path, "flock_holder.py", FLOCK_HOLDER)
    db = tmp_path / "inherited.db"
    db.mkdir()
    child = 0
    try:
        with _started([holder, db / "LOCK", "fork"], tmp_path / "holder.log") as (parent, line):
            child = int(line)
            parent.send_signal(signal.SIGKILL)  # /proc/locks keeps naming the dead parent
            parent.wait(timeout=30)
            with pytest.raises(StoreLockedError) as info:
                MilvusStore(db, dim=4)
        msg = str(info.value)
        assert f"process {child}" in msg and f"process {parent.pid} " not in msg, msg
    finally:
        if child:
            _kill(child)


def test_a_foreign_locker_with_a_hostile_command_line_is_named_in_one_bounded_line(tmp_path):
    holder = _script(tmp_path, "flock_holder.py", FLOCK_HOLDER)
    db = tmp_path / "foreign.db"
    db.mkdir()
    odd = b"line\nbreak\xff\xfe" + b"y" * 5000  # a newline, bytes that are not UTF-8 and 5 kB of argument
    log = tmp_path / "holder.log"
    with _started([holder, db / "LOCK", "nofork", odd], log) as (proc, _), pytest.raises(StoreLockedError) as info:
        MilvusStore(db, dim=4)
    msg = str(info.value)
    assert f"process {proc.pid}" in msg and "flock_holder.py" in msg, msg
    assert "\n" not in msg and len(msg) < 1000, msg


def test_a_lock_path_that_is_a_directory_is_refused_before_milvus_lite_starts(tmp_path):
    db = tmp_path / "odd.db"
    (db / "LOCK").mkdir(parents=True)
    with pytest.raises(StoreError, match=r"LOCK is not a regular file") as info:
        MilvusStore(db, dim=4)
    assert not isinstance(info.value, StoreLockedError)
    assert str(db) in str(info.value)

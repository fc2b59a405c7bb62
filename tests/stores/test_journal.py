"""The write-ahead journal of directory stores: acknowledged changes survive kill -9; replay is idempotent."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from audiovec.errors import JournalError
from audiovec.stores import ExactStore, FaissStore, get_store
from audiovec.stores.journal import JOURNAL_NAME, Journal, JournalRecord, decode, encode
from vectors import rand

STORES = ["exact", "faiss"]

# A child process that makes random changes; it prints each change before the call ("do") and after it returned
# ("ok": acknowledged). Ids are "<trial>-<n>"; every record's metadata is {"g": int}.
_WRITER = r"""
import json, sys
import numpy as np
from audiovec.stores import get_store

kind, where, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
rng = np.random.default_rng(seed)
params = {"dim": 8, "id_type": "str"} | ({"index": "hnsw"} if kind == "faiss" else {})
store = get_store(kind, params, directory=where)
print(json.dumps(["open"]), flush=True)
live, n = [], 0
while True:
    roll = rng.random()
    if roll < 0.6 or not live:
        ids = [f"{seed}-{n + j}" for j in range(int(rng.integers(1, 6)))]
        n += len(ids)
        g = int(rng.integers(3))
        print(json.dumps(["do", "add", ids, g]), flush=True)
        store.add(rng.normal(size=(len(ids), 8)).astype("float32"), ids=ids, metadata=[{"g": g}] * len(ids))
        live += ids
    elif roll < 0.75:
        ids, g = [live[int(rng.integers(len(live)))]], int(rng.integers(3, 6))
        print(json.dumps(["do", "upsert", ids, g]), flush=True)
        store.upsert(rng.normal(size=(1, 8)).astype("float32"), ids=ids, metadata=[{"g": g}])
    elif roll < 0.95:
        ids, g = [live.pop(int(rng.integers(len(live))))], None
        print(json.dumps(["do", "delete", ids, g]), flush=True)
        store.delete(ids)
    else:
        print(json.dumps(["do", "save", [], None]), flush=True)
        store.save()
    print(json.dumps(["ok"]), flush=True)
"""


def _crash(store: ExactStore | FaissStore) -> None:
    """What dying does to a store in this process: its open SQLite transaction ends uncommitted."""
    if isinstance(store, FaissStore):
        store._db.close()
    if store._journal is not None:
        store._journal.close()


def _apply(state: dict[str, int], change: list) -> dict[str, int]:
    _, op, ids, g = change
    out = dict(state)
    if op in ("add", "upsert"):
        out.update(dict.fromkeys(ids, g))
    elif op == "delete":
        for i in ids:
            out.pop(i, None)
    return out


def _kill_trials(kind: str, where: Path, trials: int) -> tuple[int, int]:  # (trials, changes acknowledged)
    """Run the writer, kill -9 it at a random moment, compare the store with the acknowledged changes; repeat."""
    rng = np.random.default_rng(7)
    state: dict[str, int] = {}
    acknowledged = 0
    for seed in range(1, trials + 1):
        proc = subprocess.Popen(
            [sys.executable, "-c", _WRITER, kind, str(where), str(seed)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            first = proc.stdout.readline()  # the store is open
            assert first, proc.stderr.read()
            time.sleep(float(rng.uniform(0.05, 0.4)))
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            out = proc.stdout.read()  # not communicate(): it would skip what readline() buffered
            proc.stdout.close()
            proc.stderr.close()
            proc.wait(timeout=60)
        in_flight = None
        for line in out.splitlines():
            try:
                msg = json.loads(line)
            except ValueError:  # cut short by the kill
                break
            if msg[0] == "do":
                in_flight = msg
            else:  # "ok": acknowledged
                assert in_flight is not None, out[:2000]
                state = _apply(state, in_flight)
                in_flight, acknowledged = None, acknowledged + 1
        candidates = [*state, *(in_flight[2] if in_flight else [])]
        with get_store(kind, {"dim": 8}, directory=where) as store:
            present = {r.id: r.metadata["g"] for r in store.get(candidates)}
            assert store.count() == len(present)  # nothing else is there
        with_flight = _apply(state, in_flight) if in_flight else state
        lost = sorted(set(state) - set(present) - ({*in_flight[2]} if in_flight else set()))
        assert not lost, f"trial {seed}: acknowledged items lost: {lost[:5]}"
        assert present in (state, with_flight), f"trial {seed}: the store differs from the acknowledged changes"
        state = present  # the change in flight may or may not have landed; either is correct
    return trials, acknowledged


@pytest.mark.parametrize("kind", STORES)
def test_kill_9_loses_no_acknowledged_change(kind, tmp_path):
    _, acknowledged = _kill_trials(kind, tmp_path / "s", trials=3)
    assert acknowledged > 3 * 5


@pytest.mark.slow
@pytest.mark.parametrize("kind", STORES)
def test_kill_9_loses_no_acknowledged_change_many_trials(kind, tmp_path):
    trials, acknowledged = _kill_trials(kind, tmp_path / "s", trials=20)
    print(f"{kind}: {trials} kill -9 trials, {acknowledged} acknowledged changes, none lost")


@pytest.mark.parametrize("cls", [ExactStore, FaissStore])
def test_changes_are_replayed_after_a_crash(cls, tmp_path):
    path = tmp_path / "s"
    s = cls(path, dim=8, id_type="str")
    s.add(rand(10), ids=[f"a{i}" for i in range(10)], metadata=[{"g": i % 2} for i in range(10)])
    s.save()
    assert not (path / JOURNAL_NAME).exists()  # a save folds the journal into the saved state
    s.add(rand(3, seed=1), ids=["b0", "b1", "b2"], metadata=[{"g": 1}] * 3)
    s.upsert(rand(1, seed=2), ids=["a0"], metadata=[{"g": 9}])
    assert s.delete(filter={"g": 0}) == 4  # a0 is g=9 now: a2, a4, a6, a8
    s.delete(["b0"])
    assert s.journaled and (path / JOURNAL_NAME).stat().st_size > 0
    journal_copy = (path / JOURNAL_NAME).read_bytes()
    _crash(s)  # no save, no close: as if the process died

    with cls(path) as s2:
        assert s2.count() == 10 - 4 + 3 - 1
        assert s2.get(["a0"])[0].metadata == {"g": 9}
        assert [r.id for r in s2.get(["a2", "b0", "b1"])] == ["b1"]
        state = {r.id: (r.metadata, r.vector.tolist()) for r in s2.get([f"a{i}" for i in range(10)] + ["b1", "b2"])}
    # a crash after a save was written but before the journal was removed: replaying again changes nothing
    (path / JOURNAL_NAME).write_bytes(journal_copy)
    with cls(path) as s3:
        again = {r.id: (r.metadata, r.vector.tolist()) for r in s3.get([f"a{i}" for i in range(10)] + ["b1", "b2"])}
        assert again == state and s3.count() == 8


def test_int_ids_continue_after_replay(tmp_path):
    s = ExactStore(tmp_path / "s", dim=4)
    s.add(rand(3, 4))
    del s
    with ExactStore(tmp_path / "s") as s2:
        assert s2.count() == 3 and s2.add(rand(1, 4)) == [3]


def test_a_torn_last_record_is_dropped_and_damage_before_it_refused(tmp_path, caplog):
    path = tmp_path / "s"
    s = ExactStore(path, dim=4, id_type="str")
    s.add(rand(2, 4), ids=["a", "b"])
    s.add(rand(1, 4), ids=["c"])
    del s
    data = (path / JOURNAL_NAME).read_bytes()
    (path / JOURNAL_NAME).write_bytes(data[:-7])  # the last record cut short by a crash
    with ExactStore(path) as s2:
        assert sorted(r.id for r in s2.get(["a", "b", "c"])) == ["a", "b"]
    assert "incomplete last record" in caplog.text
    s = ExactStore(path, dim=4, id_type="str")
    s.add(rand(1, 4), ids=["d"])
    s.add(rand(1, 4), ids=["e"])
    del s
    data = bytearray((path / JOURNAL_NAME).read_bytes())
    data[20] ^= 0xFF  # inside the first record: a later, complete record follows
    (path / JOURNAL_NAME).write_bytes(bytes(data))
    with pytest.raises(JournalError, match="damaged at byte 8"):
        ExactStore(path)
    (path / JOURNAL_NAME).write_bytes(b"not a journal at all")
    with pytest.raises(JournalError, match="not an audiovec store journal"):
        ExactStore(path)


def test_without_a_journal_changes_wait_for_save(tmp_path):
    path = tmp_path / "s"
    s = FaissStore(path, dim=4, index="flat", journal=False)
    s.add(rand(2, 4))
    assert not s.journaled and not (path / JOURNAL_NAME).exists()
    s._db.close()  # the process dies
    with FaissStore(path, journal=False) as s2:
        assert s2.count() == 0


def test_opening_without_a_journal_folds_one_left_behind(tmp_path):
    path = tmp_path / "s"
    s = ExactStore(path, dim=4)
    s.add(rand(2, 4))
    del s
    with ExactStore(path, journal=False) as s2:
        assert s2.count() == 2
    assert not (path / JOURNAL_NAME).exists()
    with ExactStore(path) as s3:
        assert s3.count() == 2


def test_exact_store_removes_temporary_files_of_interrupted_saves(tmp_path):
    path = tmp_path / "s"
    ExactStore(path, dim=4).close()
    leftover = path / ".data.npz.1234abcd.tmp"
    leftover.write_bytes(b"half a file")
    with ExactStore(path) as s:
        assert s.count() == 0
    assert not leftover.exists()


def test_concurrent_writers_share_flushes(tmp_path, monkeypatch):
    flushes = []
    real = os.fdatasync

    def counting(fd: int) -> None:
        flushes.append(fd)
        time.sleep(0.005)  # a slow disk: writers queue up behind a flush
        real(fd)

    monkeypatch.setattr(os, "fdatasync", counting)
    store = ExactStore(tmp_path / "s", dim=4, id_type="str")

    def write(t: int) -> None:
        for i in range(20):
            store.add(rand(1, 4, seed=t * 100 + i), ids=[f"{t}-{i}"])

    threads = [threading.Thread(target=write, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.count() == 160
    assert len(flushes) < 160  # one flush covered several writers' records
    _crash(store)
    with ExactStore(tmp_path / "s") as again:
        assert again.count() == 160


def test_a_failed_flush_refuses_the_write_and_the_next_ones(tmp_path, monkeypatch):
    store = ExactStore(tmp_path / "s", dim=4, id_type="str")
    store.add(rand(1, 4), ids=["a"])

    def broken(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fdatasync", broken)
    with pytest.raises(JournalError, match="Input/output error"):
        store.add(rand(1, 4, seed=1), ids=["b"])
    monkeypatch.undo()
    with pytest.raises(JournalError, match="writes are refused until the store is reopened"):
        store.add(rand(1, 4, seed=2), ids=["c"])


@pytest.mark.parametrize(
    "record",
    [
        JournalRecord("add", [1, 2], np.ones((2, 3), np.float32), ['{"a": 1}', "{}"]),
        JournalRecord("upsert", ["x", "\udcff-é"], np.zeros((2, 1), np.float32), ['{"s": "\\u00e9"}', "{}"]),
        JournalRecord("delete", ["only"]),
        JournalRecord("delete", [2**62, -5]),
    ],
)
def test_records_round_trip(record):
    back = decode(encode(record))
    assert back.op == record.op and back.ids == record.ids and back.metas == record.metas
    if record.vectors is not None:
        assert np.array_equal(back.vectors, record.vectors)


def test_journal_file_is_only_created_by_a_write(tmp_path):
    j = Journal(tmp_path)
    assert list(j.records()) == [] and j.size == 0
    j.reset()
    assert not (tmp_path / JOURNAL_NAME).exists()
    shutil.rmtree(tmp_path)

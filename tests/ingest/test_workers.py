"""The ingest path in worker processes: identical results in input order, bounded input, crashes survived."""

from __future__ import annotations

import itertools
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from audiovec import get_embedder
from audiovec.data import demo_dir
from audiovec.errors import ConfigError
from audiovec.ingest import Ingest, Source, sources_from_paths
from audiovec.ingest.workers import CRASH_ERROR, WorkerPool, start_method
from crashing import CRASH_DIR_ENV, CrashingMFCC

DEMO = sources_from_paths([demo_dir()])


def _vectors(results, label):
    return [r.frames[label].vectors for r in results]


def test_workers_give_the_same_results_in_the_same_order_as_one_process():
    models = {"mfcc": get_embedder("mfcc"), "logmel22": get_embedder("logmel", sample_rate=22050, n_mels=32)}
    one = list(Ingest(models, workers=1, batch_size=4).run(DEMO))
    two = list(Ingest(models, workers=2, batch_size=4).run(DEMO))
    assert [r.source.key for r in two] == [s.key for s in DEMO] == [r.source.key for r in one]
    for label in models:
        for a, b in zip(_vectors(one, label), _vectors(two, label), strict=True):
            np.testing.assert_array_equal(a, b)
    assert all(r.ok for r in two)
    assert [r.stats["mfcc"].embed_s > 0 for r in two] == [True] * len(DEMO)


def test_bad_files_are_failures_in_workers_too(tmp_path):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    sources = [*DEMO[:5], Source.of(bad), *DEMO[5:9]]
    results = list(Ingest(get_embedder("mfcc"), workers=2, batch_size=2).run(sources))
    assert [r.ok for r in results] == [True] * 5 + [False] + [True] * 4
    failure = results[5].failures["mfcc"]
    assert failure.error == "AudioDecodeError" and "broken.wav" in failure.source
    assert type(failure.exception).__name__ == "AudioDecodeError"  # the typed exception came back from the worker


def test_sources_are_read_only_as_workers_need_them():
    pulled = 0
    consumed_at_first_result: list[int] = []

    def sources() -> Iterator[Source]:
        nonlocal pulled
        for s in itertools.islice(itertools.cycle(DEMO), 200):
            pulled += 1
            yield Source(f"{s.key}?{pulled}", path=s.path)

    ingest = Ingest(get_embedder("mfcc"), workers=2, batch_size=4)
    for n, _ in enumerate(ingest.run(sources()), 1):
        if n == 1:
            consumed_at_first_result.append(pulled)
    # workers=2: one worker process with at most 2 batches in flight, the batches this process finished while the
    # first was in the worker, and the two read to decide to start a worker
    assert consumed_at_first_result[0] <= (2 * 1 + WorkerPool.LOCAL_AHEAD + 2) * 4
    assert n == 200


def test_a_worker_killed_mid_run_is_replaced_and_nothing_is_lost(tmp_path, monkeypatch):
    monkeypatch.setenv(CRASH_DIR_ENV, str(tmp_path))
    files = []
    for i, s in enumerate(DEMO[:12]):
        name = f"{i:02d}_CRASH_ONCE.flac" if i == 7 else f"{i:02d}.flac"
        files.append(Path(shutil.copy(s.path, tmp_path / name)))
    batches = [[Source.of(f) for f in files[i : i + 3]] for i in range(0, len(files), 3)]
    with WorkerPool(Ingest(CrashingMFCC(), batch_size=3), 2) as pool:  # workers only: this process must not die
        results = [r for batch in pool.map(batches) for r in batch]
        assert pool.restarts == 1
    assert [r.source.key for r in results] == [str(f) for f in files]
    assert all(r.ok for r in results)
    assert (tmp_path / "07_CRASH_ONCE.flac.crashed").exists()  # the worker really died
    expected = list(Ingest(get_embedder("mfcc"), workers=1, batch_size=3).run(files))
    for a, b in zip(_vectors(expected, "mfcc"), _vectors(results, "mfcc"), strict=True):
        np.testing.assert_array_equal(a, b)


def test_an_item_that_always_kills_its_worker_is_recorded_and_the_rest_go_on(tmp_path, monkeypatch):
    monkeypatch.setenv(CRASH_DIR_ENV, str(tmp_path))
    files = [Path(shutil.copy(s.path, tmp_path / f"{i:02d}.flac")) for i, s in enumerate(DEMO[:8])]
    files[5] = Path(shutil.copy(DEMO[5].path, tmp_path / "05_CRASH_ALWAYS.flac"))
    batches = [[Source.of(f) for f in files[i : i + 4]] for i in range(0, len(files), 4)]
    with WorkerPool(Ingest(CrashingMFCC(), batch_size=4), 2) as pool:
        results = [r for batch in pool.map(batches) for r in batch]
    assert [r.ok for r in results] == [True] * 5 + [False] + [True] * 2
    assert results[5].failures["mfcc"].error == CRASH_ERROR


def test_an_ingest_that_cannot_travel_is_refused_with_a_clear_error():
    lock = threading.Lock()
    assert Ingest(get_embedder("mfcc"), lock=lock).workers == 1  # a shared model stays in its process
    with pytest.raises(ConfigError, match="workers=1"):
        WorkerPool(Ingest(get_embedder("mfcc"), lock=lock, workers=2), 2)
    with pytest.raises(ConfigError, match="workers must be >= 1"):
        Ingest(get_embedder("mfcc"), workers=0)


_FORKED_SCRIPT = """
import numpy as np
from audiovec import get_embedder
from audiovec.data import demo_dir
from audiovec.ingest import Ingest, sources_from_paths
from audiovec.ingest.workers import WorkerPool, start_method

started = []
real_init = WorkerPool.__init__

def init(self, ingest, workers, threads=None, local=None, share=False):
    started.append((workers, share, local is not None))
    real_init(self, ingest, workers, threads, local, share)

WorkerPool.__init__ = init
if __name__ == "__main__":
    demo = sources_from_paths([demo_dir()])
    one = list(Ingest(get_embedder("mfcc"), workers=1, batch_size=2).run(demo))
    assert start_method() == "fork", start_method()
    two = list(Ingest(get_embedder("mfcc"), workers=2, batch_size=2).run(demo))
    assert started == [(1, True, True)], started
    assert [r.source.key for r in two] == [s.key for s in demo]
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a.frames["mfcc"].vectors, b.frames["mfcc"].vectors)
    print("ok")
"""


def test_this_process_works_beside_forked_workers(tmp_path):
    """MFCC in a fresh interpreter (fork-safe): workers=2 forks one worker and this process embeds too."""
    import subprocess
    import sys

    script = tmp_path / "forked.py"
    script.write_text(_FORKED_SCRIPT)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_workers_are_spawned_when_a_runtime_with_native_threads_is_loaded(monkeypatch):
    import sys
    import types

    monkeypatch.setitem(sys.modules, "ai_edge_litert", types.ModuleType("ai_edge_litert"))
    assert start_method() == "spawn"


def test_one_batch_runs_in_this_process(monkeypatch):
    def no_pool(*args, **kwargs):
        raise AssertionError("no worker pool for a single batch")

    monkeypatch.setattr("audiovec.ingest.engine.WorkerPool", no_pool)
    results = list(Ingest(get_embedder("mfcc"), workers=2, batch_size=16).run(iter(DEMO[:10])))  # no length
    assert len(results) == 10 and all(r.ok for r in results)


def test_few_files_are_split_so_that_every_worker_gets_some(monkeypatch):
    sizes: list[int] = []
    real_map = WorkerPool.map

    def map_(self, batches):
        for out in real_map(self, batches):
            sizes.append(len(out))
            yield out

    monkeypatch.setattr(WorkerPool, "map", map_)
    results = list(Ingest(get_embedder("mfcc"), workers=2, batch_size=16).run(DEMO[:10]))
    assert [r.source.key for r in results] == [s.key for s in DEMO[:10]]
    assert sizes == [2] * 5  # 10 files, 2 workers: batches of 10 // 4

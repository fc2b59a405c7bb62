"""Worker processes for the ingest path: :meth:`Ingest.process <audiovec.ingest.Ingest.process>` on every core.

:class:`WorkerPool` runs batches of sources through copies of one :class:`~audiovec.ingest.Ingest` in ``N`` worker
processes and gives the results back **in input order**:

* each worker builds its models once, when it starts (an embedder is pickled as its configuration and loads its
  weights in the worker; nothing large goes through the pipe but audio results), and runs model code on its share
  of the cores (``$AUDIOVEC_NUM_THREADS`` and the OpenMP/BLAS/TensorFlow variables are set before any model loads);
* at most ``2 × N`` batches are in flight, so memory stays bounded for any number of sources, and every worker has
  its next batch waiting while it works — one decodes while another embeds;
* the calling process works too (``local=``): while no worker has finished anything yet (they are still starting),
  it does the batch due next itself with the models it already has, so a short job costs no more than in one
  process; with forked workers (``share=``) it keeps working beside them, embedding a later batch whenever the
  one due next is still in a worker, so ``N`` cores need ``N - 1`` workers;
* a worker that dies (killed, out of memory, a crash in native code) does not end the run: the pool is restarted
  and the batches in flight are sent again; when batches were in flight during two deaths, their items are run
  one at a time with nothing else in flight, and an item whose worker dies twice that way is recorded as a
  :class:`~audiovec.ingest.Failure` (``WorkerCrashError``) while the rest go on.

Workers are forked where that is safe (the parent runs one thread and no deep-learning runtime: classical
features), and spawned otherwise (a fresh interpreter that loads its own model: safe whatever threads the parent
runs) — see :func:`start_method`. A script that uses them must guard its entry point with
``if __name__ == "__main__":``, as with any :mod:`multiprocessing` code.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from typing import Any, Protocol

from audiovec._threads import available_cores, limit_threads
from audiovec.errors import ConfigError
from audiovec.ingest.results import Failure, ItemResult
from audiovec.ingest.sources import Source

__all__ = ["CRASH_ERROR", "Processor", "WorkerPool", "default_workers", "start_method"]

log = logging.getLogger(__name__)

#: The error name recorded for an item whose worker process died twice while embedding it.
CRASH_ERROR = "WorkerCrashError"


class Processor(Protocol):
    """What the pool runs: an :class:`~audiovec.ingest.Ingest`, or anything with its ``embedders`` and ``process``."""

    @property
    def embedders(self) -> Mapping[str, Any]:
        """The models, by label."""
        ...

    def process(self, batch: Sequence[Source]) -> list[ItemResult]:
        """Results of a batch, in order; never raises for a bad item."""
        ...


_ingest: Processor | None = None  # the worker process's copy


def default_workers() -> int:
    """The default number of worker processes: one per core available to this process."""
    return available_cores()


#: Modules whose runtimes keep native thread pools that a forked child must not inherit.
_FORK_UNSAFE = ("torch", "tensorflow", "jax", "ai_edge_litert", "tflite_runtime", "onnxruntime")


def start_method() -> str:
    """How workers start: ``fork`` where it is safe (cheap: nothing to start or import again), else ``spawn``.

    Forking is safe on Linux when this process runs one thread, no OpenMP runtime is loaded and no deep-learning
    runtime with native thread pools (PyTorch, TensorFlow, LiteRT, JAX, ONNX Runtime) is imported; with any of them
    (a neural model is loaded), workers are spawned: a fresh interpreter that loads its own copy of the model.
    """
    if sys.platform != "linux" or threading.active_count() > 1:
        return "spawn"
    if any(name in sys.modules for name in _FORK_UNSAFE):
        return "spawn"
    from threadpoolctl import threadpool_info

    if any(pool.get("internal_api") == "openmp" for pool in threadpool_info()):
        return "spawn"
    return "fork"


def _start_worker(payload: bytes, threads: int, parent: int) -> None:
    """Worker initialiser: exit with the parent, cap threads, then build the models (unpickling loads them)."""
    global _ingest
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True, name="parent-watch").start()
    limit_threads(threads)
    _ingest = pickle.loads(payload)


def _exit_with_parent(parent: int) -> None:
    """End this worker when its parent is gone (killed with -9, say) instead of waiting for work forever.

    ``parent`` is the pid the parent gave: it may already be gone when this starts.
    """
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def _work(batch: list[Source]) -> list[ItemResult]:
    """Worker task: one batch through the worker's ingest copy; exceptions made safe to send back."""
    assert _ingest is not None, "worker not initialised"
    results = _ingest.process(batch)
    for res in results:
        for label, failure in list(res.failures.items()):
            if failure.exception is not None:
                try:
                    pickle.dumps(failure.exception)
                except Exception:  # an exception that cannot travel: keep its type name and message
                    res.failures[label] = replace(failure, exception=None)
    return results


@dataclass
class _Task:
    """A batch in flight: its sources, its future (or its results, once known), and the worker deaths it saw."""

    sources: list[Source]
    future: Future[list[ItemResult]] | None = None
    result: list[ItemResult] | None = None
    deaths: int = 0

    def finished(self) -> bool:
        """Its results are known (a worker death after that does not concern it)."""
        return self.result is not None or (self.future is not None and _done_ok(self.future))


class WorkerPool:
    """Run :meth:`Ingest.process` over batches in worker processes, results in input order.

    Args:
        ingest: The ingest to copy into every worker (pickled once; its embedders are rebuilt in each worker).
        workers: Number of worker processes (>= 1).
        threads: Model threads per worker (default: the cores divided among the workers, at least 1).
        local: Also work in this process, with this ingest (its models are already loaded): while no worker has
            finished anything yet (they are starting), the calling process does the batch due next itself.
        share: With ``local``, keep working beside the workers after they have started: while the batch due next
            is still in a worker, embed a later one here. Right when this process's models use one thread like
            the workers' (forked workers, BLAS capped here too); a model with its own thread pool, loaded before
            the workers, would compete with them for the cores.

    Raises:
        ConfigError: ``workers`` below 1, or an ingest that cannot be sent to another process (an embedder built
            from an in-memory model object, a lock, an unpicklable monitor).
    """

    #: Batches finished here that may wait behind a batch still in a worker (bounds memory).
    LOCAL_AHEAD = 8

    def __init__(
        self,
        ingest: Processor,
        workers: int,
        threads: int | None = None,
        local: Processor | None = None,
        share: bool = False,
    ) -> None:
        if workers < 1:
            raise ConfigError(f"workers must be >= 1, got {workers}")
        try:
            self._payload = pickle.dumps(ingest)
        except Exception as err:
            raise ConfigError(
                f"the ingest cannot be copied to worker processes ({type(err).__name__}: {err}); use workers=1"
            ) from err
        self.labels = list(ingest.embedders)
        self.workers = int(workers)
        self.local = local
        self.share = share and local is not None
        self.threads = threads or max(1, available_cores() // (self.workers + self.share))
        self.restarts = 0
        self._pool: ProcessPoolExecutor | None = None
        self._warm = False  # a worker has returned a result
        self._stolen = False  # a batch sent to a worker was done here instead

    # ------------------------------------------------------------------ pool
    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context(start_method()),
                initializer=_start_worker,
                initargs=(self._payload, self.threads, os.getpid()),
            )
        return self._pool

    def close(self) -> None:
        """Stop the worker processes (batches not started are cancelled)."""
        if self._pool is not None:
            # after a batch was done here instead, a worker may still be starting for it: let it finish on its own
            # (killing a worker that holds the task queue's lock would hang the pool)
            self._pool.shutdown(wait=not self._stolen, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ running
    def map(self, batches: Iterable[Sequence[Source]]) -> Iterator[list[ItemResult]]:
        """Results of every batch, in input order; at most ``2 × workers`` batches in flight.

        Raises:
            Exception: Whatever a worker raised other than dying (``process`` records bad items, so this is a bug
                or a model that cannot be loaded in the worker).
        """
        window: deque[_Task] = deque()
        it = iter(batches)
        exhausted = False
        limits = _local_limits(self.threads) if self.share else None
        try:
            while True:
                while not exhausted and sum(t.result is None for t in window) < 2 * self.workers:
                    batch = next(it, None)
                    if batch is None:
                        exhausted = True
                        break
                    task = _Task(list(batch))
                    task.future = self._submit(task.sources)
                    window.append(task)
                if not window:
                    return
                head = window[0]
                waiting = head.result is None and head.future is not None and not head.future.done()
                if waiting and self.share and self.local is not None and not exhausted and len(window) < self._cap():
                    batch = next(it, None)  # the next batch is due from a worker: embed a later one here meanwhile
                    if batch is None:
                        exhausted = True
                    else:
                        window.append(_Task(list(batch), result=self.local.process(list(batch))))
                    continue
                if waiting and self.local is not None and not self._warm:
                    # no worker has finished anything yet (still starting): do the batch due next here
                    head.result = self.local.process(head.sources)
                    self._stolen = True
                    continue
                try:
                    out = head.result if head.result is not None else _result(head)
                except BrokenProcessPool:
                    self._recover(window)
                    continue
                self._warm = self._warm or head.result is None
                window.popleft()
                yield out
        finally:
            if limits is not None:
                limits.restore_original_limits()
            self.close()

    def _cap(self) -> int:
        return 2 * self.workers + self.LOCAL_AHEAD

    def _submit(self, sources: list[Source]) -> Future[list[ItemResult]]:
        return self._executor().submit(_work, sources)

    def _restart(self) -> None:
        self.restarts += 1
        log.warning("an ingest worker process died; restarting the workers (restart %d)", self.restarts)
        self.close()

    def _recover(self, window: deque[_Task]) -> None:
        """A worker died: restart, and send the unfinished batches again.

        Batches that were in flight during two deaths are run one item at a time with nothing else in flight, so
        the item that kills its worker is found and only it fails.
        """
        self._restart()
        unfinished = [t for t in window if not t.finished()]
        for t in unfinished:
            t.deaths += 1
        if any(t.deaths >= 2 for t in unfinished):
            for t in unfinished:
                t.result = [self._alone(s) for s in t.sources]
        else:
            for t in unfinished:
                t.future = self._submit(t.sources)

    def _alone(self, source: Source) -> ItemResult:
        """One item with nothing else in flight, tried twice: if its worker dies both times, it is the cause."""
        for _ in range(2):
            try:
                return self._submit([source]).result()[0]
            except BrokenProcessPool:
                self._restart()
        log.warning("giving up on %s: the worker process died twice while embedding it alone", source.label)
        message = "the worker process died twice while embedding this item"
        failure = Failure(source.key, source.label, None, CRASH_ERROR, message)
        return ItemResult(source, failures=dict.fromkeys(self.labels, failure))


def _result(task: _Task) -> list[ItemResult]:
    assert task.future is not None
    return task.future.result()


def _local_limits(threads: int) -> Any:
    """Cap this process's BLAS/OpenMP threads while it works beside the workers (restored afterwards)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=threads)


def _done_ok(future: Future[list[ItemResult]]) -> bool:
    return future.done() and not future.cancelled() and future.exception() is None

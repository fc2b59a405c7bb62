"""Resource measurement: a cheap timer for every model call, and a full monitor for a few calls per model.

Two instruments, used at two rates:

* :class:`CallTimer` measures **every** model call of the extraction: two clock reads on entry and two on exit
  (``time.perf_counter`` and ``time.process_time``), plus CUDA's peak-memory counter when torch uses a GPU. It
  starts no thread, opens no ``/proc`` file and leaves memory tracing off, so it costs microseconds per file. It is
  a plain class, so :class:`~audiovec.ingest.Ingest` can take it as its ``monitor`` factory and copy it to worker
  processes.
* :class:`ResourceMonitor` measures a **block** in full: wall and CPU time, the peak resident memory of the process
  (sampled by a background thread), the tracemalloc peak and the CUDA peak. :func:`probe_models` runs it once per
  model around a few model calls (the largest files of the dataset), which is where the benchmark's per-model memory
  figures come from.
"""

from __future__ import annotations

import functools
import logging
import math
import sys
import threading
import time
import tracemalloc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import psutil

from audiovec.audio import Audio
from audiovec.embedders import Embedder
from audiovec.errors import AudiovecError

__all__ = ["CallTimer", "Measurement", "ResourceMonitor", "probe_models"]

log = logging.getLogger(__name__)

_MB = 1024.0 * 1024.0
_NAN = float("nan")


@functools.cache
def _total_memory() -> int:
    """Bytes of memory of the machine (read once)."""
    return int(psutil.virtual_memory().total)


def _cuda() -> Any:
    """``torch.cuda`` when torch is already imported and sees a GPU, else ``None`` (never imports torch)."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        return torch.cuda
    return None


@dataclass
class Measurement:
    """What :class:`ResourceMonitor` measured.

    Attributes:
        wall_s: Elapsed wall-clock seconds.
        cpu_percent: Process CPU time / wall time × 100 (100 = one core fully busy).
        peak_rss_mb: Highest resident set size of the process seen (sampled every ``interval`` s, plus start and
            end): everything the process holds, not only what the block allocated.
        peak_traced_mb: tracemalloc peak of Python/NumPy allocations made during the block (NaN when off).
        ram_percent: ``peak_rss_mb`` as a share of the machine's memory.
        gpu_peak_mb: Peak CUDA memory allocated by torch during the block (NaN without CUDA).
        calls: Model calls measured inside the block (set by :func:`probe_models`).
    """

    wall_s: float = _NAN
    cpu_percent: float = _NAN
    peak_rss_mb: float = _NAN
    peak_traced_mb: float = _NAN
    ram_percent: float = _NAN
    gpu_peak_mb: float = _NAN
    calls: int = 0

    def as_dict(self) -> dict[str, float]:
        """The figures by name, as the benchmark's tables name them (``peak_mem_mb`` is the tracemalloc peak)."""
        return {
            "wall_s": self.wall_s,
            "cpu_percent": self.cpu_percent,
            "peak_rss_mb": self.peak_rss_mb,
            "peak_mem_mb": self.peak_traced_mb,
            "ram_percent": self.ram_percent,
            "gpu_peak_mb": self.gpu_peak_mb,
        }


class CallTimer:
    """Time one model call: ``with CallTimer() as t: work(); t.as_dict()``.

    Measures wall time (``time.perf_counter``) and the CPU time of the whole process (``time.process_time``: every
    thread, so a model using two cores fully reads 200 %), and the CUDA peak when torch is loaded and sees a GPU.
    Nothing else: no thread, no memory tracing. The class itself is the ``monitor`` factory the benchmark gives
    :class:`~audiovec.ingest.Ingest`.

    Example:
        >>> with CallTimer() as t:
        ...     _ = sum(range(1000))
        >>> sorted(t.as_dict())
        ['cpu_percent', 'cpu_s', 'gpu_peak_mb', 'wall_s']
    """

    __slots__ = ("_c0", "_cuda", "_t0", "cpu_s", "gpu_peak_mb", "wall_s")

    def __init__(self) -> None:
        self.wall_s = _NAN
        self.cpu_s = _NAN
        self.gpu_peak_mb = _NAN
        self._cuda: Any = None
        self._t0 = self._c0 = 0.0

    def __enter__(self) -> CallTimer:
        self._cuda = _cuda()
        if self._cuda is not None:
            self._cuda.reset_peak_memory_stats()
        self._c0 = time.process_time()
        self._t0 = time.perf_counter()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.wall_s = time.perf_counter() - self._t0
        self.cpu_s = time.process_time() - self._c0
        if self._cuda is not None:
            self.gpu_peak_mb = self._cuda.max_memory_allocated() / _MB

    def as_dict(self) -> dict[str, float]:
        """``wall_s``, ``cpu_s``, ``cpu_percent`` (``100 * cpu_s / wall_s``) and ``gpu_peak_mb`` (NaN without CUDA)."""
        return {
            "wall_s": self.wall_s,
            "cpu_s": self.cpu_s,
            "cpu_percent": 100.0 * self.cpu_s / self.wall_s if self.wall_s > 0 else _NAN,
            "gpu_peak_mb": self.gpu_peak_mb,
        }


class ResourceMonitor:
    """Measure a block in full: ``with ResourceMonitor() as m: work(); print(m.result)``.

    Starts a sampler thread (and tracemalloc) for the block, so use it around blocks of real work, not around every
    small call (see :class:`CallTimer` for that).

    Args:
        trace_memory: Also measure the tracemalloc peak (costs some speed on allocation-heavy Python code).
        interval: RSS sampling period in seconds (a background thread).
        process: The ``psutil.Process`` to sample (default: this process).
    """

    def __init__(
        self, trace_memory: bool = True, interval: float = 0.005, process: psutil.Process | None = None
    ) -> None:
        self.trace_memory = trace_memory
        self.interval = interval
        self.result = Measurement()
        self._proc = process if process is not None else psutil.Process()
        self._stop = threading.Event()
        self._peak_rss = 0
        self._thread: threading.Thread | None = None
        self._started_tracing = False
        self._cuda: Any = None
        self._t0 = self._c0 = 0.0

    def as_dict(self) -> dict[str, float]:
        """The figures of the last measured block (see :meth:`Measurement.as_dict`)."""
        return self.result.as_dict()

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self._peak_rss = max(self._peak_rss, self._proc.memory_info().rss)

    def __enter__(self) -> ResourceMonitor:
        self._cuda = _cuda()
        if self._cuda is not None:
            self._cuda.reset_peak_memory_stats()
        if self.trace_memory:
            if not tracemalloc.is_tracing():
                tracemalloc.start()
                self._started_tracing = True
            tracemalloc.reset_peak()
        self._peak_rss = self._proc.memory_info().rss
        self._stop.clear()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        self._c0 = time.process_time()
        self._t0 = time.perf_counter()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        wall = time.perf_counter() - self._t0
        cpu = time.process_time() - self._c0
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._peak_rss = max(self._peak_rss, self._proc.memory_info().rss)
        traced = _NAN
        if self.trace_memory:
            traced = tracemalloc.get_traced_memory()[1] / _MB
            if self._started_tracing:
                tracemalloc.stop()
                self._started_tracing = False
        gpu = self._cuda.max_memory_allocated() / _MB if self._cuda is not None else _NAN
        self.result = Measurement(
            wall_s=wall,
            cpu_percent=100.0 * cpu / wall if wall > 0 else _NAN,
            peak_rss_mb=self._peak_rss / _MB,
            peak_traced_mb=traced,
            ram_percent=100.0 * self._peak_rss / _total_memory(),
            gpu_peak_mb=gpu,
        )


def probe_models(
    models: Mapping[str, Embedder], sample: Sequence[Audio], trace_memory: bool = True
) -> dict[str, Measurement]:
    """Measure each model in full on a few inputs: one :class:`ResourceMonitor` per model around its calls.

    Each model embeds every input of ``sample`` (resampled to its rate before the monitor starts, so only the
    model's own work is measured) and drops the result before the next call, so the tracemalloc peak is that of
    the most demanding single call. A call that fails is left out.

    Args:
        models: Embedders by label.
        sample: Decoded inputs (the benchmark takes the largest files of the dataset).
        trace_memory: Measure the tracemalloc peak too.

    Returns:
        A :class:`Measurement` per label (NaN figures, ``calls == 0``, when no call succeeded or ``sample`` is
        empty).
    """
    out: dict[str, Measurement] = {}
    proc = psutil.Process()
    for label, emb in models.items():
        inputs = []
        for audio in sample:
            try:
                inputs.append(audio.prepared(emb.sample_rate))
            except AudiovecError as err:
                log.info("resource probe of %s: %s left out (%s)", label, audio.source, err)
        if not inputs:
            out[label] = Measurement()
            continue
        calls = 0
        with ResourceMonitor(trace_memory, process=proc) as mon:
            for audio in inputs:
                try:
                    emb.embed(audio)
                    calls += 1
                except AudiovecError as err:
                    log.info("resource probe of %s: %s failed (%s)", label, audio.source, err)
        out[label] = mon.result if calls else Measurement()
        out[label].calls = calls
        if not math.isnan(out[label].wall_s):
            log.debug("resource probe of %s: %s", label, out[label])
    return out

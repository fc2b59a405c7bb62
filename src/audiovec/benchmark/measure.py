"""Resource measurement around a block of work: wall time, CPU %, peak RSS, tracemalloc peak, GPU memory."""

from __future__ import annotations

import sys
import threading
import time
import tracemalloc
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import psutil

__all__ = ["Measurement", "ResourceMonitor"]

_MB = 1024.0 * 1024.0


@dataclass
class Measurement:
    """What :class:`ResourceMonitor` measured.

    Attributes:
        wall_s: Elapsed wall-clock seconds.
        cpu_percent: Process CPU time / wall time × 100 (100 = one core fully busy).
        peak_rss_mb: Highest resident set size seen (sampled every ``interval`` s, plus start and end).
        peak_traced_mb: tracemalloc peak of Python/NumPy allocations during the block (NaN when off).
        ram_percent: ``peak_rss_mb`` as a share of the machine's memory.
        gpu_peak_mb: Peak CUDA memory allocated by torch during the block (NaN without CUDA).
    """

    wall_s: float = float("nan")
    cpu_percent: float = float("nan")
    peak_rss_mb: float = float("nan")
    peak_traced_mb: float = float("nan")
    ram_percent: float = float("nan")
    gpu_peak_mb: float = float("nan")

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


class ResourceMonitor:
    """Measure a block: ``with ResourceMonitor() as m: work(); print(m.result)``.

    Args:
        trace_memory: Also measure the tracemalloc peak (costs some speed on allocation-heavy Python code).
        interval: RSS sampling period in seconds (a background thread).
    """

    def __init__(self, trace_memory: bool = True, interval: float = 0.005) -> None:
        self.trace_memory = trace_memory
        self.interval = interval
        self.result = Measurement()
        self._proc = psutil.Process()
        self._stop = threading.Event()
        self._peak_rss = 0
        self._thread: threading.Thread | None = None
        self._started_tracing = False
        self._cuda: Any = None

    def as_dict(self) -> dict[str, float]:
        """The figures of the last measured block (see :meth:`Measurement.as_dict`)."""
        return self.result.as_dict()

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self._peak_rss = max(self._peak_rss, self._proc.memory_info().rss)

    def __enter__(self) -> ResourceMonitor:
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available():
            self._cuda = torch.cuda
            self._cuda.reset_peak_memory_stats()
        if self.trace_memory:
            if not tracemalloc.is_tracing():
                tracemalloc.start()
                self._started_tracing = True
            tracemalloc.reset_peak()
        self._peak_rss = self._proc.memory_info().rss
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        self._cpu0 = self._proc.cpu_times()
        self._t0 = time.perf_counter()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        wall = time.perf_counter() - self._t0
        cpu1 = self._proc.cpu_times()
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._peak_rss = max(self._peak_rss, self._proc.memory_info().rss)
        traced = float("nan")
        if self.trace_memory:
            traced = tracemalloc.get_traced_memory()[1] / _MB
            if self._started_tracing:
                tracemalloc.stop()
        cpu = (cpu1.user - self._cpu0.user) + (cpu1.system - self._cpu0.system)
        gpu = self._cuda.max_memory_allocated() / _MB if self._cuda is not None else float("nan")
        self.result = Measurement(
            wall_s=wall,
            cpu_percent=100.0 * cpu / wall if wall > 0 else float("nan"),
            peak_rss_mb=self._peak_rss / _MB,
            peak_traced_mb=traced,
            ram_percent=100.0 * self._peak_rss / psutil.virtual_memory().total,
            gpu_peak_mb=gpu,
        )

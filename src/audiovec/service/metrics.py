"""Request counts and latencies of the service, in Prometheus' text format and as JSON.

Counters are exact since start-up. Latency quantiles (p50/p95/p99) are over the most recent ``window`` requests
of each route (a sliding window, so they follow the current load); sums and counts cover every request.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable

import numpy as np

__all__ = ["Metrics"]

_QUANTILES = (0.5, 0.95, 0.99)


class _Series:
    def __init__(self, window: int) -> None:
        self.recent: deque[float] = deque(maxlen=window)
        self.count = 0
        self.total = 0.0

    def add(self, seconds: float) -> None:
        self.recent.append(seconds)
        self.count += 1
        self.total += seconds

    def quantiles(self) -> dict[str, float]:
        if not self.recent:
            return {}
        values = np.quantile(np.fromiter(self.recent, float), _QUANTILES)
        return {f"p{round(q * 100)}": float(v) for q, v in zip(_QUANTILES, values, strict=True)}


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Metrics:
    """Thread-safe request and stage statistics.

    Args:
        window: How many recent observations per series the quantiles are computed over.
    """

    def __init__(self, window: int = 4096) -> None:
        self._window = window
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str, int], int] = {}
        self._latency: dict[tuple[str, str], _Series] = {}
        self._stages: dict[str, _Series] = {}
        self.started = time.time()

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one finished request (``route`` is the path template, e.g. ``/api/v1/collections/{name}``)."""
        with self._lock:
            key = (method, route, status)
            self._requests[key] = self._requests.get(key, 0) + 1
            self._latency.setdefault((method, route), _Series(self._window)).add(seconds)

    def observe_stage(self, stage: str, seconds: float) -> None:
        """Record the time of one step inside a request (``decode``, ``embed``, ``search``, ``store``)."""
        with self._lock:
            self._stages.setdefault(stage, _Series(self._window)).add(seconds)

    def snapshot(self) -> dict[str, object]:
        """Everything as plain JSON values (seconds)."""
        with self._lock:
            return {
                "uptime_s": time.time() - self.started,
                "requests": [
                    {"method": m, "route": r, "status": s, "count": c}
                    for (m, r, s), c in sorted(self._requests.items())
                ],
                "latency": [
                    {"method": m, "route": r, "count": v.count, "sum_s": v.total, **v.quantiles()}
                    for (m, r), v in sorted(self._latency.items())
                ],
                "stages": [
                    {"stage": st, "count": v.count, "sum_s": v.total, **v.quantiles()}
                    for st, v in sorted(self._stages.items())
                ],
            }

    def prometheus(self, extra: Iterable[str] = ()) -> str:
        """The Prometheus text exposition format (version 0.0.4)."""
        lines = [
            "# HELP audiovec_uptime_seconds Seconds since the service started.",
            "# TYPE audiovec_uptime_seconds gauge",
            f"audiovec_uptime_seconds {time.time() - self.started:.3f}",
            "# HELP audiovec_requests_total HTTP requests by method, route template and status.",
            "# TYPE audiovec_requests_total counter",
        ]
        with self._lock:
            for (m, r, s), c in sorted(self._requests.items()):
                lines.append(f'audiovec_requests_total{{method="{_label(m)}",route="{_label(r)}",status="{s}"}} {c}')
            lines += [
                "# HELP audiovec_request_seconds HTTP request latency (quantiles over the recent window).",
                "# TYPE audiovec_request_seconds summary",
            ]
            for (m, r), v in sorted(self._latency.items()):
                labels = f'method="{_label(m)}",route="{_label(r)}"'
                for q, val in zip(_QUANTILES, v.quantiles().values(), strict=False):
                    lines.append(f'audiovec_request_seconds{{{labels},quantile="{q}"}} {val:.6f}')
                lines.append(f"audiovec_request_seconds_sum{{{labels}}} {v.total:.6f}")
                lines.append(f"audiovec_request_seconds_count{{{labels}}} {v.count}")
            lines += [
                "# HELP audiovec_stage_seconds Time in each step of a request (decode, embed, search, store).",
                "# TYPE audiovec_stage_seconds summary",
            ]
            for st, v in sorted(self._stages.items()):
                for q, val in zip(_QUANTILES, v.quantiles().values(), strict=False):
                    lines.append(f'audiovec_stage_seconds{{stage="{_label(st)}",quantile="{q}"}} {val:.6f}')
                lines.append(f'audiovec_stage_seconds_sum{{stage="{_label(st)}"}} {v.total:.6f}')
                lines.append(f'audiovec_stage_seconds_count{{stage="{_label(st)}"}} {v.count}')
        lines.extend(extra)
        return "\n".join(lines) + "\n"

"""Progress reporting: one callback object passed into long work, whoever runs it.

The library, the command line, the benchmark and the service report progress the same way: a function that does
long work takes a ``progress`` argument and calls :meth:`Callback.relative_update` as items finish. What the user
sees depends on the callback passed in:

* :class:`TqdmCallback` — a tqdm bar on stderr (for terminals);
* :class:`LogCallback` — a log line every few seconds and one at the end, with rate and time left (for log files,
  CI and services, where a bar would print hundreds of carriage returns);
* :class:`NoOpCallback` — nothing;
* your own subclass (override :meth:`Callback.call`) — e.g. to update a web page or a job table.

:func:`as_callback` turns the usual ``progress=True/False`` argument into one of them: ``True`` is a bar when stderr
is a terminal and log lines otherwise.

Example:
    >>> from audiovec.progress import Callback
    >>> class Count(Callback):
    ...     def call(self) -> None:
    ...         print(f"{self.value}/{self.size}")
    >>> with Count(size=2, description="files") as cb:
    ...     cb.relative_update()
    ...     cb.relative_update()
    1/2
    2/2
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any, TypeVar

__all__ = ["Callback", "LogCallback", "NoOpCallback", "TqdmCallback", "as_callback"]

_T = TypeVar("_T")
_log = logging.getLogger("audiovec.progress")


class Callback:
    """Progress of one piece of work: how much there is (``size``), how much is done (``value``) and a description.

    Subclasses override :meth:`call` (run after every change) and :meth:`close`.

    Args:
        size: Total amount of work (``None`` when unknown).
        value: Work already done.
        description: What is being done, e.g. ``"embed with yamnet"``.
        unit: What one step counts, e.g. ``"file"``.
    """

    def __init__(self, size: int | None = None, value: int = 0, description: str = "", unit: str = "item") -> None:
        self.size = size
        self.value = value
        self.description = description
        self.unit = unit
        self.closed = False

    def set_size(self, size: int | None) -> None:
        """Set the total amount of work."""
        self.size = size
        self.call()

    def set_description(self, description: str) -> None:
        """Change the description."""
        self.description = description
        self.call()

    def absolute_update(self, value: int) -> None:
        """Set the amount of work done."""
        self.value = value
        self.call()

    def relative_update(self, inc: int = 1) -> None:
        """Add ``inc`` to the amount of work done."""
        self.value += inc
        self.call()

    def call(self) -> None:
        """Hook run after every change (no-op here)."""

    def wrap(self, iterable: Iterable[_T]) -> Iterator[_T]:
        """Yield from ``iterable``, counting one step per item."""
        for item in iterable:
            yield item
            self.relative_update()

    def close(self) -> None:
        """Finish (idempotent)."""
        self.closed = True

    def __enter__(self) -> Callback:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class NoOpCallback(Callback):
    """Reports nothing."""


class TqdmCallback(Callback):
    """A tqdm progress bar on stderr.

    Args:
        *args: ``size, value, description, unit``, as :class:`Callback` (or as keywords).
        leave: Keep the finished bar on screen.
        tqdm_kwargs: More arguments of ``tqdm``.
        **kwargs: ``size``, ``value``, ``description``, ``unit`` as keywords.
    """

    def __init__(
        self, *args: Any, leave: bool = True, tqdm_kwargs: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        from tqdm.auto import tqdm

        options = {"leave": leave, **(tqdm_kwargs or {})}
        self._bar = tqdm(total=self.size, initial=self.value, desc=self.description, unit=self.unit, **options)

    def call(self) -> None:
        """Move the bar."""
        bar = self._bar
        if bar.total != self.size:
            bar.total = self.size
        if bar.desc != self.description:
            bar.set_description_str(self.description, refresh=False)
        bar.update(self.value - bar.n)

    def close(self) -> None:
        """Close the bar."""
        if not self.closed:
            self._bar.close()
        super().close()


class LogCallback(Callback):
    """Log lines instead of a bar: one every ``every_s`` seconds while work goes on, and one when it ends.

    A line reads ``embed with mfcc: 1,200/3,000 files (40%), 85.1 files/s, about 21 s left``. Each is a whole
    log record: no carriage returns, so a log file, a CI log or a pipe gets one readable line per report.

    Args:
        *args: ``size, value, description, unit``, as :class:`Callback` (or as keywords).
        every_s: Seconds between two progress lines.
        logger: Where to log (default ``audiovec.progress``), at ``level``.
        level: Logging level.
        clock: Seconds from a monotonic clock (default :func:`time.monotonic`); tests pass a fake one.
        **kwargs: ``size``, ``value``, ``description``, ``unit`` as keywords.
    """

    def __init__(
        self,
        *args: Any,
        every_s: float = 10.0,
        logger: logging.Logger | None = None,
        level: int = logging.INFO,
        clock: Callable[[], float] = time.monotonic,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.every_s = every_s
        self.logger = logger or _log
        self.level = level
        self._clock = clock
        self._t0 = clock()
        self._start = self.value
        self._last = self._t0

    def line(self) -> str:
        """The current progress line."""
        elapsed = max(self._clock() - self._t0, 1e-9)
        done = self.value - self._start
        rate = done / elapsed
        units = self.unit if self.unit.endswith("s") else f"{self.unit}s"
        text = f"{self.description or 'progress'}: {self.value:,}"
        if self.size is not None:
            text += f"/{self.size:,} {units}"
            if self.size:
                text += f" ({100.0 * self.value / self.size:.0f}%)"
        else:
            text += f" {units}"
        text += f", {rate:.1f} {units}/s"
        if self.size is not None and rate > 0 and self.value < self.size:
            text += f", about {_duration((self.size - self.value) / rate)} left"
        elif self.closed or (self.size is not None and self.value >= self.size):
            text += f", {_duration(elapsed)} in all"
        return text

    def call(self) -> None:
        """Log a line when ``every_s`` seconds have passed since the last one."""
        now = self._clock()
        if now - self._last >= self.every_s:
            self._last = now
            self.logger.log(self.level, self.line())

    def close(self) -> None:
        """Log the final line."""
        if not self.closed:
            self.closed = True
            self.logger.log(self.level, self.line())


def _duration(seconds: float) -> str:
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {(s % 3600) // 60:02d} min"


def as_callback(
    progress: bool | Callback | None,
    size: int | None = None,
    description: str = "",
    unit: str = "item",
    *,
    leave: bool = True,
) -> Callback:
    """The callback for a ``progress`` argument.

    Args:
        progress: A :class:`Callback` (used as is, given the size and description when it has none), ``True``
            (a bar on a terminal or in a notebook, log lines otherwise) or ``False``/``None`` (nothing).
        size: Total amount of work, when known.
        description: What is being done.
        unit: What one step counts.
        leave: Keep a finished bar on screen.
    """
    if isinstance(progress, Callback):
        if progress.size is None and size is not None:
            progress.size = size
        if not progress.description:
            progress.description = description
        return progress
    if not progress:
        return NoOpCallback(size, 0, description, unit)
    if (sys.stderr is not None and sys.stderr.isatty()) or "ipykernel" in sys.modules:
        return TqdmCallback(size, 0, description, unit, leave=leave)
    return LogCallback(size, 0, description, unit)

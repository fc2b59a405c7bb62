"""Progress callbacks: one object for the library, the CLI, the benchmark and the service."""

from __future__ import annotations

import io
import logging

from audiovec.progress import Callback, LogCallback, NoOpCallback, TqdmCallback, as_callback


def test_callback_counts_and_calls_its_hook():
    seen = []

    class Record(Callback):
        def call(self):
            seen.append((self.value, self.size))

    with Record(size=3) as cb:
        assert list(cb.wrap("abc")) == ["a", "b", "c"]
        cb.set_size(4)
        cb.relative_update()
    assert seen == [(1, 3), (2, 3), (3, 3), (3, 4), (4, 4)] and cb.closed


def test_log_callback_writes_readable_lines(caplog):
    log = logging.getLogger("test.progress")
    with caplog.at_level(logging.INFO, logger="test.progress"):
        cb = LogCallback(size=200, description="embed with mfcc", unit="file", every_s=0.0, logger=log)
        cb.relative_update(50)
        cb.absolute_update(200)
        cb.close()
        cb.close()  # idempotent: one final line
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("embed with mfcc: 50/200 files (25%), ") and lines[0].endswith(" left")
    assert lines[-1].startswith("embed with mfcc: 200/200 files (100%)") and lines[-1].endswith(" in all")
    assert len(lines) == 3


def test_log_callback_is_quiet_between_intervals(caplog):
    with caplog.at_level(logging.INFO, logger="audiovec.progress"):
        cb = LogCallback(size=None, description="scan", every_s=3600)
        for _ in range(100):
            cb.relative_update()
        cb.close()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and lines[0].startswith("scan: 100 items")


def test_as_callback_chooses_by_argument_and_terminal(monkeypatch):
    assert isinstance(as_callback(False, 10), NoOpCallback)
    assert isinstance(as_callback(None, 10), NoOpCallback)
    mine = Callback()
    assert as_callback(mine, 7, "job") is mine and mine.size == 7 and mine.description == "job"
    monkeypatch.setattr("sys.stderr", io.StringIO())  # not a terminal: log lines
    assert isinstance(as_callback(True, 10), LogCallback)

    class Tty(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr("sys.stderr", Tty())
    cb = as_callback(True, 10, "bar")
    assert isinstance(cb, TqdmCallback)
    cb.relative_update(3)
    cb.close()


class _FakeClock:
    """A monotonic clock that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_progress_to_a_non_terminal_stream_is_periodic_plain_lines(monkeypatch):
    stream = io.StringIO()  # a log file, CI or a pipe: not a terminal
    monkeypatch.setattr("sys.stderr", stream)
    log = logging.getLogger("test.progress.stream")
    handler = logging.StreamHandler(stream)
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    clock = _FakeClock()
    try:
        assert isinstance(as_callback(True, 10_000, "embed", "file"), LogCallback)
        cb = LogCallback(size=10_000, description="embed", unit="file", every_s=10.0, logger=log, clock=clock)
        for _ in range(60):  # one minute of work, 20 files a second
            clock.now += 1.0
            cb.relative_update(20)
        cb.close()
    finally:
        log.removeHandler(handler)
    out = stream.getvalue()
    lines = out.splitlines()
    assert "\r" not in out
    assert len(lines) == 7  # one every 10 s of the fake clock, and one at the end
    assert lines[0] == "embed: 200/10,000 files (2%), 20.0 files/s, about 8 min 10 s left"
    assert lines[-1].startswith("embed: 1,200/10,000 files (12%), 20.0 files/s, about 7 min")

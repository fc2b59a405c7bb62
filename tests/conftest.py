"""Shared fixtures.

Real audio and models come from ``../shared`` beside the checkout (or ``$AUDIOVEC_SHARED``). Tests that need
them skip when it is absent, unless ``AUDIOVEC_REQUIRE_SHARED=1`` (as in CI), where a missing file fails.
"""

from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ci import skip_or_fail

ROOT = Path(__file__).resolve().parents[1]

# Downloads made by tests (and the offline checks) never read or fill the user's own cache.
os.environ["AUDIOVEC_CACHE"] = tempfile.mkdtemp(prefix="audiovec-test-cache-")


def _shared_root() -> Path:
    env = os.environ.get("AUDIOVEC_SHARED")
    return Path(env) if env else ROOT.parent / "shared"


def _require(path: Path) -> Path:
    if path.exists():
        return path
    msg = f"shared test data missing: {path}"
    if os.environ.get("AUDIOVEC_REQUIRE_SHARED") == "1":
        pytest.fail(msg + " (AUDIOVEC_REQUIRE_SHARED=1)")
    pytest.skip(msg)
    raise AssertionError  # unreachable


@pytest.fixture(scope="session")
def shared() -> Path:
    """The ``shared`` folder (data/ and models/)."""
    return _require(_shared_root())


@pytest.fixture(scope="session")
def shared_data(shared: Path) -> Path:
    return _require(shared / "data")


@pytest.fixture(scope="session")
def shared_file(shared: Path):
    """Return a function that resolves a path under ``shared`` and fails/skips when it is missing."""

    def get(rel: str) -> Path:
        return _require(shared / rel)

    return get


@pytest.fixture
def sine_wav(tmp_path: Path):
    """Write a sine to a WAV file and return its path: ``sine_wav(freq, sr, seconds, channels=1, subtype=...)``."""

    def make(
        freq: float = 440.0,
        sr: int = 16000,
        seconds: float = 1.0,
        channels: int = 1,
        subtype: str = "PCM_16",
        name: str = "sine.wav",
        amp: float = 0.5,
    ) -> Path:
        t = np.arange(int(sr * seconds)) / sr
        x = (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)
        data = np.stack([x] * channels, axis=1) if channels > 1 else x
        path = tmp_path / name
        sf.write(path, data, sr, subtype=subtype)
        return path

    return make


@pytest.fixture(scope="session")
def milvus_server_env() -> None:
    """Gate for real-Milvus-server tests: a loopback-only network namespace and the server package.

    Outside CI a missing prerequisite skips; in CI (``CI`` or ``AUDIOVEC_REQUIRE_SHARED=1``) it fails, because
    these tests must run there (scripts/test runs them under ``unshare -n``).
    """
    from audiovec.testing._milvus_server import find_server_python, only_loopback_interfaces

    problems = []
    if not only_loopback_interfaces():
        problems.append(
            "needs a loopback-only network namespace: "
            "unshare -n sh -c 'ip link set lo up; exec pytest -m milvus_server'"
        )
    if find_server_python() is None:
        problems.append("the 'milvus' server package is missing: pip install milvus==2.3.5")
    if problems:
        skip_or_fail("; ".join(problems))


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory: pytest.TempPathFactory):
    """One real Milvus standalone server for the session (tests marked ``milvus_server`` only)."""
    import socket

    from audiovec.testing._milvus_server import MilvusServer, only_loopback_interfaces

    if not only_loopback_interfaces():
        pytest.fail(
            "the Milvus server tests need a loopback-only network namespace (the server binds every interface): "
            "unshare -n sh -c 'ip link set lo up; exec .venv/bin/python -m pytest -m milvus_server'"
        )
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = MilvusServer(
        extra_config={
            # with collections loaded, SIGTERM waits this long (default 1800 s, harness default 10 s)
            "common.gracefulStopTimeout": 3,
            # loading a new collection polls at these intervals (default 1000 / 500 ms)
            "queryCoord.checkInterval": 100,
            "queryCoord.distPullInterval": 100,
        }
    )
    server.start(tmp_path_factory.mktemp("milvus-server"), port=port, timeout=180)
    yield server
    server.stop(timeout=15)


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a network connection fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)

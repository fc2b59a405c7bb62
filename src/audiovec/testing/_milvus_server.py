"""Start and stop a real Milvus standalone server for integration tests.

The server comes from the PyPI package ``milvus`` (the "embedded Milvus" wheel; 2.3.5 is
the newest Linux wheel). That package ships the ``milvus`` Go binary and its shared
libraries as ``.lzma`` files plus a YAML config template. Its own launcher
(``milvus-server``) is unsuitable for tests: it forwards only SIGINT, kills the server
one second after SIGTERM and leaves the binary orphaned when the wrapper itself is
killed. So this module uses the package only to render the config and unpack the
binaries, then execs the binary itself, so the process we hold *is* the server.

The package has no runtime dependencies and installs next to pymilvus 3.x. When it lives
in a different environment, point ``AUDIOVEC_MILVUS_SERVER_PYTHON`` at that
environment's Python interpreter.

Safety: the server binds every interface (``*:19530``, ``*:9091``, ...). Start it only
inside a loopback-only network namespace, e.g.::

    unshare -n sh -c 'ip link set lo up; exec pytest -m milvus_server'

:meth:`MilvusServer.start` refuses to run when a non-loopback interface is visible,
unless ``allow_shared_network=True`` is passed.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

__all__ = [
    "DEFAULT_EXTRA_CONFIG",
    "SERVER_PYTHON_ENV",
    "MilvusServer",
    "find_server_python",
    "only_loopback_interfaces",
]

SERVER_PYTHON_ENV = "AUDIOVEC_MILVUS_SERVER_PYTHON"
"""Env var naming a Python interpreter that can ``import milvus`` (the server package)."""

BIN_CACHE_ENV = "AUDIOVEC_MILVUS_BIN_CACHE"
"""Env var naming the directory the server binaries are unpacked into (about 250 MB)."""

DEFAULT_EXTRA_CONFIG: Mapping[str, str] = {
    # Default 1800 s: with a collection loaded, SIGTERM waits this long before exiting.
    "common.gracefulStopTimeout": "10",
    # Default 30 s: after a kill, a restart on the same data dir meets the stale etcd
    # sessions of the old process until they expire.
    "common.session.ttl": "10",
}
"""Config overrides applied on every start (dotted keys of ``milvus.yaml``)."""

_LOG_NAME = "audiovec-milvus-server.log"
_PORTS_NAME = "audiovec-milvus-ports.json"

# Runs under the server's Python: render the config, unpack the binaries, then exec the
# server so that its PID is the PID of the launched process. argv[1] is a JSON object.
_BOOTSTRAP = r"""
import ctypes, fcntl, json, os, signal, socket, sys
import milvus


class Config(milvus.MilvusServerConfig):
    def try_bind_port(self, port):
        # The package binds without SO_REUSEADDR, so a port left in TIME_WAIT by a
        # server that just stopped looks busy. A live listener still makes bind fail.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
            sock.listen()
            return sock
        except (OSError, OverflowError):
            sock.close()
            return None


args = json.loads(sys.argv[1])
if args["parent_pid"] is not None:
    # PR_SET_PDEATHSIG survives execve: the server dies with the process that started it.
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)
    if os.getppid() != args["parent_pid"]:
        sys.exit("audiovec: the parent exited before the server started")
data_dir = args["data_dir"]
config = Config(data_dir=data_dir, proxy_port=args["port"])
for key, value in args["extra_config"].items():
    config.set(key, value)
config.resolve()

# update_extra_configs() silently skips unknown keys: check each one landed.
config_file = os.path.join(data_dir, "configs", "milvus.yaml")
seen = {}
path = []
with open(config_file, encoding="utf-8") as fp:
    for line in fp:
        body = line.split("#", 1)[0].rstrip()
        if not body.strip() or ":" not in body:
            continue
        key, _, value = body.partition(":")
        name = key.strip()
        path = path[: (len(key) - len(key.lstrip(" "))) // 2] + [name]
        seen[".".join(path)] = value.strip()
for key, value in args["extra_config"].items():
    if seen.get(key) != str(value):
        sys.exit(f"audiovec: config key {key!r} not applied (found {seen.get(key)!r})")

# The embedded etcd also listens on a peer port that milvus.yaml cannot set (2380 by default), so a second server
# in the same namespace would fail to start: give etcd its own config with a free peer port.
peer = socket.socket()
peer.bind(("127.0.0.1", 0))
peer_url = f"http://127.0.0.1:{peer.getsockname()[1]}"
peer.close()
client_url = f"http://127.0.0.1:{config.get('etcd_port')}"
etcd_file = os.path.join(data_dir, "configs", "etcd.yaml")
with open(etcd_file, "w", encoding="utf-8") as fp:
    fp.write(
        f"name: default\nlisten-client-urls: {client_url}\nadvertise-client-urls: {client_url}\n"
        f"listen-peer-urls: {peer_url}\ninitial-advertise-peer-urls: {peer_url}\n"
        f"initial-cluster: default={peer_url}\n"
    )
with open(config_file, encoding="utf-8") as fp:
    text = fp.read()
section = f"etcd:\n  config:\n    path: {etcd_file}\n"
if "\netcd:\n" not in "\n" + text:
    sys.exit("audiovec: no etcd section in the server config")
text = ("\n" + text).replace("\netcd:\n", "\n" + section, 1)[1:]
with open(config_file, "w", encoding="utf-8") as fp:
    fp.write(text)

bin_base = os.path.join(args["bin_base"], milvus.__version__)  # never overwrite a running binary
os.makedirs(bin_base, exist_ok=True)
with open(os.path.join(bin_base, ".unpack.lock"), "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    milvus._initialize_data_files(bin_base)
bin_dir = os.path.join(bin_base, "bin")

metrics_port = args["metrics_port"]
if metrics_port is None:
    metrics_port, sock = config.resolve_port(9091)
    if sock is None:
        sys.exit("audiovec: no free port for the metrics/health endpoint")
    sock.close()
with open(os.path.join(data_dir, args["ports_name"]), "w", encoding="utf-8") as fp:
    json.dump({"proxy": int(config.get("proxy_port")), "metrics": metrics_port,
               "milvus_version": milvus.__version__}, fp)

env = dict(os.environ)
env.update(
    DEPLOY_MODE="STANDALONE",
    METRICS_PORT=str(metrics_port),
    MILVUS_RUN_DIR=os.path.join(data_dir, "run"),
    LD_LIBRARY_PATH=":".join(p for p in (bin_dir, os.environ.get("LD_LIBRARY_PATH", "")) if p),
)
os.chdir(data_dir)  # the binary reads ./configs/milvus.yaml
exe = os.path.join(bin_dir, "milvus")
sys.stdout.flush()
sys.stderr.flush()
os.execve(exe, [exe, "run", "standalone"], env)
"""


def only_loopback_interfaces() -> bool:
    """Tell whether this process's network namespace has no interface but ``lo``.

    Reads ``/proc/self/net/dev``, which (unlike ``/sys/class/net``) follows the calling
    process's network namespace.

    Returns:
        True when ``lo`` is the only network interface visible.
    """
    try:
        lines = Path("/proc/self/net/dev").read_text(encoding="ascii").splitlines()[2:]
    except OSError:
        return False
    names = {line.split(":", 1)[0].strip() for line in lines if ":" in line}
    return names <= {"lo"}


def _can_import_milvus(python: str) -> bool:
    if Path(python).resolve() == Path(sys.executable).resolve():
        return importlib.util.find_spec("milvus") is not None
    try:
        done = subprocess.run([python, "-c", "import milvus"], capture_output=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def find_server_python() -> str | None:
    """Find a Python interpreter that can import the ``milvus`` server package.

    ``$AUDIOVEC_MILVUS_SERVER_PYTHON`` wins when set; otherwise the running interpreter is
    used if the package is importable there.

    Returns:
        The interpreter path, or None when the server package is not installed.
    """
    configured = os.environ.get(SERVER_PYTHON_ENV)
    candidates = [configured] if configured else [sys.executable]
    for python in candidates:
        if _can_import_milvus(python):
            return python
    return None


def _default_bin_cache() -> Path:
    configured = os.environ.get(BIN_CACHE_ENV)
    if configured:
        return Path(configured)
    cache_home = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache_home) / "audiovec" / "milvus-server"


def _tail(path: Path, max_lines: int = 40) -> str:
    try:
        with path.open("rb") as fp:
            fp.seek(0, os.SEEK_END)
            fp.seek(max(0, fp.tell() - 16384))
            text = fp.read().decode("utf-8", errors="replace")
    except OSError as exc:
        return f"<no log: {exc}>"
    return "\n".join(text.splitlines()[-max_lines:])


class MilvusServer:
    """A Milvus standalone server process for tests (not thread-safe).

    Example:
        >>> with MilvusServer().start(tmp_path) as server:  # doctest: +SKIP
        ...     client = pymilvus.MilvusClient(server.uri)
    """

    def __init__(
        self,
        *,
        python: str | None = None,
        bin_cache_dir: str | os.PathLike[str] | None = None,
        extra_config: Mapping[str, str | int | float | bool] | None = None,
        allow_shared_network: bool = False,
        kill_with_parent: bool = True,
    ) -> None:
        """Describe a server; nothing starts until :meth:`start`.

        Args:
            python: Interpreter that can ``import milvus``; default
                :func:`find_server_python`.
            bin_cache_dir: Where the ~250 MB of binaries are unpacked, once, and reused
                (default ``$AUDIOVEC_MILVUS_BIN_CACHE`` or
                ``~/.cache/audiovec/milvus-server``), in a subfolder per version.
                Unpacking takes about 4 s.
            extra_config: ``milvus.yaml`` overrides (dotted keys) on top of
                :data:`DEFAULT_EXTRA_CONFIG`. Only keys already in the template apply.
            allow_shared_network: Start even when interfaces other than ``lo`` are
                visible. The server then listens on every interface: leave it False.
            kill_with_parent: Have the kernel SIGKILL the server when the thread that
                called :meth:`start` exits (``PR_SET_PDEATHSIG``), so a crashed test run
                leaves no server behind. Turn off to start from a short-lived thread.
        """
        self._python = python
        self._bin_cache = Path(bin_cache_dir) if bin_cache_dir is not None else None
        merged: dict[str, str] = dict(DEFAULT_EXTRA_CONFIG)
        for key, value in (extra_config or {}).items():
            merged[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
        self._extra_config = merged
        self._allow_shared_network = allow_shared_network
        self._kill_with_parent = kill_with_parent
        self._proc: subprocess.Popen[bytes] | None = None
        self._data_dir: Path | None = None
        self._port: int | None = None
        self._metrics_port: int | None = None
        self.startup_seconds: float | None = None
        """Seconds :meth:`start` took until the server answered, or None."""

    # -- properties ---------------------------------------------------------------------

    def _local_url(self, port: int | None, path: str = "") -> str:
        if port is None:
            raise RuntimeError("Milvus server not started")
        return f"http://127.0.0.1:{port}{path}"

    @property
    def uri(self) -> str:
        """The gRPC endpoint for ``pymilvus.MilvusClient(uri)``, e.g. ``http://127.0.0.1:19530``.

        Raises:
            RuntimeError: If the server was never started.
        """
        return self._local_url(self._port)

    @property
    def health_url(self) -> str:
        """The ``/healthz`` URL on the metrics port (answers ``OK`` when ready).

        Raises:
            RuntimeError: If the server was never started.
        """
        return self._local_url(self._metrics_port, "/healthz")

    @property
    def pid(self) -> int | None:
        """PID of the server binary, or None when not started."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def log_path(self) -> Path | None:
        """The file receiving the server's stdout and stderr, or None before start."""
        return self._data_dir / _LOG_NAME if self._data_dir is not None else None

    def log_tail(self, max_lines: int = 40) -> str:
        """Return the last lines of the server log.

        Args:
            max_lines: How many lines at most.

        Returns:
            The log tail, or an explanation when there is no log.
        """
        path = self.log_path
        return _tail(path, max_lines) if path is not None else "<not started>"

    # -- lifecycle ----------------------------------------------------------------------

    def start(
        self,
        data_dir: str | os.PathLike[str],
        port: int = 19530,
        timeout: float = 120.0,
        *,
        metrics_port: int | None = None,
    ) -> MilvusServer:
        """Start the server on ``data_dir`` and wait until it answers.

        Args:
            data_dir: Directory for config, logs, etcd, rocksmq and segment data (made if
                missing; use a fresh one per server).
            port: The gRPC (and REST) port. Must be free. The other internal ports start
                at their defaults (2379, 13333, 19529, 19531, 21121-21124, 53100) and move
                up when busy.
            timeout: Seconds to wait for the server to answer before giving up.
            metrics_port: Port of the metrics/health endpoint; default: the first free
                port from 9091.

        Returns:
            ``self``, so that ``with MilvusServer().start(path) as server:`` works.

        Raises:
            RuntimeError: If already running, not network-isolated, the server package is
                missing, or the server exits or does not answer within ``timeout`` (the
                message carries the tail of the server log). The process is stopped
                before raising.
        """
        if self._proc is not None:
            raise RuntimeError("Milvus server already started")
        if not self._allow_shared_network and not only_loopback_interfaces():
            raise RuntimeError(
                "refusing to start Milvus: it binds every interface and this network namespace "
                "has interfaces besides 'lo'. Run under "
                "\"unshare -n sh -c 'ip link set lo up; exec ...'\" "
                "or pass allow_shared_network=True."
            )
        python = self._python or find_server_python()
        if python is None:
            raise RuntimeError(
                "the 'milvus' server package is not importable: `pip install milvus==2.3.5` "
                f"(here or in another venv named by ${SERVER_PYTHON_ENV})"
            )
        started_at = time.monotonic()
        deadline = started_at + timeout
        data = Path(data_dir).resolve()
        data.mkdir(parents=True, exist_ok=True)
        (data / _PORTS_NAME).unlink(missing_ok=True)
        bin_base = (self._bin_cache or _default_bin_cache()).resolve()
        args = {
            "data_dir": str(data),
            "port": port,
            "metrics_port": metrics_port,
            "extra_config": self._extra_config,
            "bin_base": str(bin_base),
            "ports_name": _PORTS_NAME,
            "parent_pid": os.getpid() if self._kill_with_parent else None,
        }
        self._data_dir = data
        self._port = port
        self._metrics_port = None
        log_path = data / _LOG_NAME
        if log_path.exists():  # keep one previous log; the tail must be this run's
            log_path.replace(log_path.with_name(_LOG_NAME + ".1"))
        with log_path.open("wb") as log:
            self._proc = subprocess.Popen(
                [python, "-c", _BOOTSTRAP, json.dumps(args)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self._wait_ready(deadline)
        except BaseException:
            self.stop(timeout=15.0)
            raise
        self.startup_seconds = time.monotonic() - started_at
        return self

    def _fail(self, why: str) -> RuntimeError:
        return RuntimeError(
            f"Milvus server {why} (data dir {self._data_dir}); last lines of {self.log_path}:\n{self.log_tail()}"
        )

    def _wait_ready(self, deadline: float) -> None:
        assert self._proc is not None
        assert self._data_dir is not None
        ports_file = self._data_dir / _PORTS_NAME
        healthy = False
        while True:
            code = self._proc.poll()
            if code is not None:
                raise self._fail(f"exited with code {code} during startup")
            if self._metrics_port is None and ports_file.exists():
                # Written by the bootstrap just before exec; a partial read is retried.
                with contextlib.suppress(ValueError, OSError, KeyError):
                    self._metrics_port = int(json.loads(ports_file.read_text("utf-8"))["metrics"])
            if self._metrics_port is not None and not healthy:
                healthy = self._health_ok()
            if healthy and self._client_ok():
                return
            if time.monotonic() >= deadline:
                raise self._fail("did not answer in time")
            time.sleep(0.2)

    def _health_ok(self) -> bool:
        try:
            with urllib.request.urlopen(self.health_url, timeout=2.0) as resp:
                return b"OK" in resp.read()
        except (OSError, urllib.error.URLError):
            return False

    def _client_ok(self) -> bool:
        """Probe the gRPC port with pymilvus when available (healthz answers a bit early)."""
        try:
            from pymilvus import MilvusClient
        except ImportError:
            return True
        try:
            # dedicated: pymilvus shares one channel per URI process-wide and close()
            # would leave it registered; a probe must neither reuse nor leave one.
            client = MilvusClient(uri=self.uri, timeout=5.0, dedicated=True)
        except Exception:
            return False
        try:
            client.list_collections(timeout=5.0)
        except Exception:
            return False
        finally:
            with contextlib.suppress(Exception):
                client.close()
        return True

    def stop(self, timeout: float = 15.0) -> int | None:
        """Stop the server: SIGTERM, then SIGKILL if it has not exited after ``timeout``.

        Safe to call repeatedly and on a server that never started.

        Milvus 2.3.5 does not stop reliably: seen here are exits 0.1 s after SIGTERM,
        exits at the 10 s ``common.gracefulStopTimeout``, and hangs (after many
        collection create/drop cycles or with a 100k-row index loaded) that only
        SIGKILL ends. Even a clean stop exits by ``panic: context canceled`` (SIGABRT).

        Args:
            timeout: Seconds to wait after SIGTERM before SIGKILL.

        Returns:
            The exit status as :attr:`subprocess.Popen.returncode` gives it: ``-6``
            (SIGABRT) for a normal stop, ``-9`` when it had to be killed, or None if
            not started.
        """
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                # Not reaped yet, so the group id is still ours: kill the whole group.
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30.0)
        self._proc = None
        return proc.returncode

    def __enter__(self) -> MilvusServer:
        """Return ``self``; start the server first with :meth:`start`.

        Raises:
            RuntimeError: If the server is not running.
        """
        if self._proc is None:
            raise RuntimeError("call start() before entering the context")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the server."""
        self.stop()


def _main() -> None:  # pragma: no cover - manual helper
    """Run a server in a temp dir until interrupted: ``python -m audiovec.testing._milvus_server``."""
    with tempfile.TemporaryDirectory(prefix="milvus-") as tmp, MilvusServer().start(tmp) as server:
        print(f"Milvus at {server.uri} (pid {server.pid}), up in {server.startup_seconds:.1f} s", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while server.running:
                time.sleep(0.5)


if __name__ == "__main__":  # pragma: no cover
    _main()

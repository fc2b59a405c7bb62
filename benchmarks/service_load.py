"""Search-service load benchmark: ``audiovec serve`` under a bounded local load, with the server's own step times.

The benchmark

1. builds a collection with the admin path (:class:`CollectionManager` in this process, then closed): every audio
   file of ``--data`` (default: the 3000 FSDD spoken digits of ``../shared/data/fsdd``; ``--limit N`` for the first
   N), embedder preset ``--embedder`` (default ``mfcc``), pooling ``--pooling`` (default ``mean_std+l2``: 40-d for
   MFCC), store ``--store``/``--index`` (default faiss flat);
2. optionally grows it with ``--pad-vectors N`` synthetic vectors, added straight through the store with the
   service's own metadata fields (``_item``, ``_segment`` 0...), so that search-only latency can be measured at a
   scale closer to PaddleSpeech's 650k (each synthetic vector is a real item's vector plus Gaussian noise of
   ``--pad-noise`` times the per-dimension spread of the real vectors: clusters around real items, searched by real
   queries);
3. starts ``python -m audiovec.cli serve --data-dir D --port P --log-level warning`` as a **separate process** on
   127.0.0.1 (the load generator does not share its GIL), waits for ``/health`` and always terminates it at the end
   (also on Ctrl-C / SIGTERM / errors);
4. checks that the precomputed query vectors give the same top-k as the clips they come from (the vector scenario
   then measures exactly the clip scenario minus decoding and embedding);
5. runs each scenario separately: first one client (sequential: the baseline), then ``--clients`` concurrent
   clients (threads, each with its own keep-alive ``http.client`` connection and request bodies prepared in
   advance, so that the generator spends as little CPU as possible on the 2 shared cores), for ``--duration``
   seconds after ``--warmup`` seconds that are not counted:

   * ``clip``: ``POST /search`` with a real 5 s query clip (16-bit WAV at the embedder's rate), cut from LibriSpeech
     recordings that are not in the collection, several clips rotated: decoding and embedding included;
   * ``vector``: ``POST /search/vector`` with the same clips' vectors, computed before the server started:
     embedding excluded;
   * ``item``: ``POST /search/item`` with real items of the collection (itself excluded);
   * ``mixed``: 90 % clip searches and 10 % adds (``POST /items``, one real file each, from ``--add-data``, by
     default drum one-shots that are not in the collection); no baseline. At the end the collection's item count
     must equal the initial count plus the successful adds, every added id must be unique and retrievable, and
     after the server's shutdown the persisted store must hold the same count.

For every phase it reports requests, errors (non-2xx; must be 0, printed otherwise), requests/s, client-side
latency p50/p95/p99/mean, the server-side step times from the responses' ``timings`` (decode, queue = waiting for
the shared embedder, which runs one embedding at a time per preset, embed, search, store: p50/p95), the rest
(client latency minus the server's steps: HTTP, multipart/JSON parsing, validation, thread-pool queueing), and the
CPU seconds of the server process and of the load generator.

The machine is shared with other work: load averages are recorded before and after each phase.

Usage::

    python benchmarks/service_load.py                                   # 3000 FSDD files, 8 clients, 120 s each
    python benchmarks/service_load.py --duration 10 --limit 300         # smoke run
    python benchmarks/service_load.py --pad-vectors 100000 --index hnsw --scenarios clip,vector,item \\
        --output benchmarks/results/service_load_pad100k_hnsw.json
    python benchmarks/service_load.py --store milvus --index hnsw       # Milvus Lite inside the server process

Writes ``benchmarks/results/service_load.json`` (``--output``) and a markdown table beside it (same name, ``.md``).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import io
import json
import math
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np
import psutil

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "data"
DEFAULT_DATA = SHARED / "fsdd"
DEFAULT_ADD_DATA = SHARED / "drums"
# LibriSpeech utterances shipped with librosa's examples: real speech (like FSDD's digits), 14-17 s each
DEFAULT_QUERY_AUDIO = [
    SHARED / "librosa" / f for f in ("198-209-0000.ogg", "3436-172162-0000.ogg", "5703-47212-0000.ogg")
]
COLLECTION = "bench"
SCENARIOS = ("clip", "vector", "item", "mixed")

SEED_REFERENCE = {
    "source": "https://github.com/PaddlePaddle/PaddleSpeech/blob/develop/demos/audio_searching/README.md (4. Result)",
    "search_ms": 2.9,
    "search_note": "Milvus retrieval at ~90 % recall, as reported",
    "embed_ms": 500.0,
    "embed_note": "feature extraction for a test clip of about 5 s",
    "vectors": 650_000,
    "dim": 192,
    "distance": "L2",
    "model": "ECAPA-TDNN speaker embedding (PaddleSpeech)",
    "dataset": "CN-Celeb (train 650,000, test 10,000)",
    "hardware": "Intel Xeon E5-2620 v4 @ 2.10GHz, 132 GB RAM, CentOS 7.6",
}


# --------------------------------------------------------------------------------------------- machine
def _package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in (
        "audiovec",
        "fastapi",
        "starlette",
        "uvicorn",
        "faiss-cpu",
        "numpy",
        "pymilvus",
        "milvus-lite",
        "python-multipart",
        "pydantic",
    ):
        try:
            out[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            out[name] = None
    return out


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git_commit() -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(HERE), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(
            ["git", "-C", str(HERE), "status", "--porcelain"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode:
        return None
    return done.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (Linux ``/proc``; NaN elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


def _proc_rss_mb(pid: int) -> float:
    try:
        return float(psutil.Process(pid).memory_info().rss) / 2**20
    except psutil.Error:
        return float("nan")


def _self_cpu_s() -> float:
    t = os.times()
    return t.user + t.system


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------------------------- requests
@dataclass(frozen=True)
class Req:
    """One prepared HTTP request."""

    kind: str  # "search" or "add"
    method: str
    path: str
    body: bytes
    headers: dict[str, str]


@dataclass
class Sample:
    """One finished request, as the client saw it."""

    start: float  # perf_counter at send
    latency_s: float
    status: int  # 0 = connection error
    kind: str
    timings: dict[str, float] | None = None
    results: int = 0
    added: list[str] = field(default_factory=list)
    error: str | None = None


def multipart(fields: list[tuple[str, str]], files: list[tuple[str, str, bytes, str]]) -> tuple[bytes, str]:
    """A ``multipart/form-data`` body and its content type (fields: name, value; files: name, filename, data, type)."""
    boundary = "audiovec-bench-" + uuid.uuid4().hex
    parts: list[bytes] = []
    for name, value in fields:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, filename, data, ctype in files:
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            f"Content-Type: {ctype}\r\n\r\n"
        )
        parts += [head.encode(), data, b"\r\n"]
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def json_req(kind: str, path: str, doc: dict[str, Any]) -> Req:
    return Req(kind, "POST", path, json.dumps(doc).encode(), {"Content-Type": "application/json"})


def _parse(sample: Sample, body: bytes) -> None:
    """Fill a sample from a response body: timings, result count, added ids, or the error text."""
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    if not 200 <= sample.status < 300:
        sample.error = (
            json.dumps(doc.get("error", doc))[:500] if isinstance(doc, dict) else body[:500].decode("utf-8", "replace")
        )
        return
    if not isinstance(doc, dict):
        sample.error = "2xx response that is not a JSON object"
        return
    if sample.kind == "add":
        added = doc.get("added", [])
        sample.added = [str(it["id"]) for it in added]
        sample.timings = dict(added[0].get("timings") or {}) if added else None
        if doc.get("failed"):
            sample.error = "partial add: " + json.dumps(doc["failed"])[:400]
    else:
        sample.timings = dict(doc.get("timings") or {})
        sample.results = len(doc.get("results", []))


class Client:
    """A keep-alive HTTP/1.1 connection to the service."""

    def __init__(self, host: str, port: int, timeout: float = 120.0) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.conn = http.client.HTTPConnection(host, port, timeout=timeout)

    def send(self, req: Req) -> Sample:
        t0 = time.perf_counter()
        try:
            self.conn.request(req.method, req.path, body=req.body, headers=req.headers)
            resp = self.conn.getresponse()
            body = resp.read()
        except (OSError, http.client.HTTPException) as err:
            sample = Sample(t0, time.perf_counter() - t0, 0, req.kind, error=f"{type(err).__name__}: {err}")
            self.conn.close()
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            return sample
        sample = Sample(t0, time.perf_counter() - t0, resp.status, req.kind)
        _parse(sample, body)
        return sample

    def _exchange(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        """One idempotent request; reconnects once if the server closed the idle keep-alive connection."""
        for attempt in (0, 1):
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                resp = self.conn.getresponse()
                return resp.status, resp.read()
            except (ConnectionError, http.client.RemoteDisconnected, http.client.CannotSendRequest):
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def result_ids(self, req: Req) -> tuple[int, list[str] | str]:
        """Send a search; its status and the ranked item ids (or the error body)."""
        status, body = self._exchange(req.method, req.path, req.body, req.headers)
        if status != 200:
            return status, body.decode("utf-8", "replace")
        return status, [h["id"] for h in json.loads(body)["results"]]

    def get_json(self, path: str) -> tuple[int, Any]:
        """GET a JSON document: its status and the decoded body (text when not JSON)."""
        status, body = self._exchange("GET", path)
        try:
            return status, json.loads(body)
        except ValueError:
            return status, body.decode("utf-8", "replace")

    def close(self) -> None:
        self.conn.close()


# --------------------------------------------------------------------------------------------- server
class ServerProcess:
    """``audiovec serve`` in its own process (own session: a Ctrl-C reaches this script, which stops the server)."""

    def __init__(self, data_dir: Path, log_path: Path, env: dict[str, str]) -> None:
        self.port = _free_port()
        self.host = "127.0.0.1"
        self.log_path = log_path
        self.cmd = [
            sys.executable,
            "-m",
            "audiovec",
            "serve",
            "--data-dir",
            str(data_dir),
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--log-level",
            "warning",
        ]
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            self.cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        self.exit_code: int | None = None
        self.shutdown_s: float | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_bytes()[-n:].decode("utf-8", "replace")
        except OSError:
            return ""

    def wait_healthy(self, timeout: float = 120.0) -> float:
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                conn = http.client.HTTPConnection(self.host, self.port, timeout=2)
                conn.request("GET", "/health")
                resp = conn.getresponse()
                resp.read()
                conn.close()
                if resp.status == 200:
                    return time.perf_counter() - t0
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the server did not answer /health within {timeout:g} s:\n{self.log_tail()}")

    def stop(self, timeout: float = 60.0) -> None:
        """SIGTERM (uvicorn shuts down gracefully: collections saved), then SIGKILL after ``timeout``."""
        if self.proc.poll() is None:
            t0 = time.perf_counter()
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                print(f"server pid {self.pid} did not stop within {timeout:g} s: killing it", file=sys.stderr)
                self.proc.kill()
                self.proc.wait(10)
            self.shutdown_s = time.perf_counter() - t0
        self.exit_code = self.proc.returncode
        self._log.close()


# --------------------------------------------------------------------------------------------- collection
def _encode_wav(samples: np.ndarray, sr: int) -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, samples, sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def query_clips(sources: list[Path], n: int, seconds: float, sr: int) -> list[tuple[str, bytes]]:
    """Up to ``n`` real ``seconds``-long clips (16-bit WAV at ``sr``): consecutive windows of each source in turn."""
    import audiovec

    windows: list[list[tuple[str, bytes]]] = []
    for src in sources:
        audio = audiovec.load(src, sr=sr)
        rows = []
        start = 0.0
        while start + seconds <= audio.duration + 1e-9:
            clip = audio.slice(start, start + seconds)
            rows.append((f"{src.stem}_{start:05.1f}s.wav", _encode_wav(clip.samples, sr)))
            start += seconds
        windows.append(rows)
    clips: list[tuple[str, bytes]] = []
    for i in range(max((len(w) for w in windows), default=0)):  # round-robin over sources
        clips += [w[i] for w in windows if i < len(w)]
    return clips[:n]


def build(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    """Create and fill the collection, pad it, prepare queries; returns what the load phases need."""
    from audiovec.errors import AudiovecError
    from audiovec.ingest import find_audio_files
    from audiovec.service.collection import CollectionConfig, StoreSpec
    from audiovec.service.manager import CollectionManager
    from audiovec.service.settings import ServiceSettings

    files = find_audio_files([args.data])
    if args.limit:
        files = files[: args.limit]
    if not files:
        raise SystemExit(f"no audio files in {args.data}")
    index: Any = json.loads(args.index) if args.index.strip().startswith("{") else args.index
    config = CollectionConfig(
        name=COLLECTION,
        embedder=args.embedder,
        pooling=args.pooling,
        store=StoreSpec(backend=args.store, index=index, metric=args.metric),
    )
    manager = CollectionManager(ServiceSettings(data_dir=data_dir))
    info: dict[str, Any] = {}
    try:
        col = manager.create(config)
        t0 = time.perf_counter()
        item_ids: list[str] = []
        failures: list[str] = []
        for f in files:
            try:
                item_ids.append(col.add(f.read_bytes(), f.name, {"label": f.stem.split("_")[0]})["id"])
            except AudiovecError as err:
                failures.append(f"{f.name}: {type(err).__name__}: {err}")
        col.save(force=True)
        info["index_files"] = len(files)
        info["index_failed"] = failures[:20]
        info["index_s"] = round(time.perf_counter() - t0, 2)
        print(
            f"indexed {len(item_ids)} of {len(files)} files from {args.data} in {info['index_s']} s "
            f"({len(failures)} failed)",
            flush=True,
        )
        if not item_ids:
            raise SystemExit("nothing could be indexed")

        # query clips and their vectors, through the collection's own decode + embed (what the server will do)
        clips = query_clips(args.query_audio, args.query_clips, args.query_seconds, col.embedder.sample_rate)
        if not clips:
            raise SystemExit(f"no {args.query_seconds:g} s query clip could be cut from {args.query_audio}")
        vectors = []
        for name, data in clips:
            vectors.append(col.embed(data, name, query=True).pooled.vectors)
        info["query_clips"] = [name for name, _ in clips]
        info["query_clip_s"] = args.query_seconds
        info["query_format"] = f"WAV PCM_16 mono {col.embedder.sample_rate} Hz"

        if args.pad_vectors:
            info["pad"] = pad(col, item_ids, args.pad_vectors, args.pad_noise, args.seed)
        info["collection"] = col.describe()
        info["real_items"] = len(item_ids)
        col.save(force=True)
    finally:
        manager.close()
    rng = random.Random(args.seed)
    info["item_queries"] = rng.sample(item_ids, min(len(item_ids), 500))
    info["vectors"] = [v.astype(np.float32) for v in vectors]
    info["clips"] = clips
    return info


def pad(col: Any, item_ids: list[str], n: int, noise: float, seed: int) -> dict[str, Any]:
    """Add ``n`` synthetic vectors clustered around the real items' vectors, with the service's metadata layout."""
    from audiovec.ingest.records import vector_id
    from audiovec.service.collection import now as _now

    if col.segmented:
        raise SystemExit("--pad-vectors supports whole-file collections only")
    t0 = time.perf_counter()
    records = col.store.get([vector_id(item, 0) for item in item_ids])
    real = np.stack([r.vector for r in records]).astype(np.float32)
    durations = np.array([float(r.metadata.get("_duration") or 1.0) for r in records])
    spread = real.std(axis=0) + 1e-6
    rng = np.random.default_rng(seed)
    batch = 10_000
    added = 0
    while added < n:
        m = min(batch, n - added)
        centre = rng.integers(0, len(real), m)
        vecs = real[centre] + noise * spread * rng.standard_normal((m, real.shape[1])).astype(np.float32)
        if col.config.pooling.endswith("+l2"):
            vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        items = [uuid.UUID(int=int(rng.integers(0, 2**63)) << 64 | (added + i)).hex for i in range(m)]
        ids = [vector_id(item, 0) for item in items]
        stamp = _now()
        metas = []
        for i, item in enumerate(items):
            dur = round(float(durations[centre[i]]), 6)
            metas.append(
                {
                    "label": "synthetic",
                    "synthetic": True,
                    "_item": item,
                    "_file": f"synthetic_{added + i:07d}.wav",
                    "_duration": dur,
                    "_format": "wav",
                    "_sha256": hashlib.sha256(item.encode()).hexdigest(),
                    "_added": stamp,
                    "_segments": 1,
                    "_segment": 0,
                    "_start": 0.0,
                    "_end": dur,
                }
            )
        col.store.add(vecs.astype(np.float32), ids=ids, metadata=metas)
        added += m
        print(f"  padded {added:,}/{n:,} vectors", end="\r", flush=True)
    col.save(force=True)
    elapsed = time.perf_counter() - t0
    print(f"padded with {n:,} synthetic vectors in {elapsed:.1f} s" + " " * 20, flush=True)
    return {
        "vectors": n,
        "noise": noise,
        "method": "a random real item's vector + N(0, (noise * per-dimension std of the real vectors)^2), "
        "re-normalised for +l2 pooling; metadata: label='synthetic', synthetic=true and the service's "
        "_item/_file/_duration/_format/_sha256/_added/_segments/_segment/_start/_end fields",
        "seconds": round(elapsed, 1),
    }


# --------------------------------------------------------------------------------------------- load
def run_phase(
    host: str,
    port: int,
    make: Callable[[int, int], Req],
    clients: int,
    warmup: float,
    duration: float,
    stop: threading.Event,
) -> tuple[list[Sample], list[Sample], float]:
    """``clients`` threads send requests back to back for ``warmup + duration`` seconds.

    Returns:
        (measured samples: sent within the measured window, warm-up samples, the measured window in seconds).
    """
    per_client: list[list[Sample]] = [[] for _ in range(clients)]
    t_begin = time.perf_counter() + 0.05
    t_measure = t_begin + warmup
    t_end = t_measure + duration

    def loop(c: int) -> None:
        client = Client(host, port)
        out = per_client[c]
        i = 0
        try:
            while time.perf_counter() < t_begin:
                time.sleep(0.001)
            while not stop.is_set() and time.perf_counter() < t_end:
                out.append(client.send(make(c, i)))
                i += 1
        finally:
            client.close()

    threads = [threading.Thread(target=loop, args=(c,), name=f"load-{c}", daemon=True) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        while t.is_alive():
            t.join(0.5)
    samples = [s for rows in per_client for s in rows]
    measured = [s for s in samples if t_measure <= s.start < t_end]
    warm = [s for s in samples if s.start < t_measure]
    return measured, warm, duration


def _pct(values: np.ndarray, q: float) -> float:
    return round(float(np.percentile(values, q)), 3) if len(values) else float("nan")


def summarize(samples: list[Sample], window_s: float, clients: int) -> dict[str, Any]:
    ok = [s for s in samples if 200 <= s.status < 300 and s.error is None]
    errors = [s for s in samples if not 200 <= s.status < 300]
    partial = [s for s in samples if 200 <= s.status < 300 and s.error is not None]
    lat = np.array([s.latency_s for s in ok]) * 1e3
    out: dict[str, Any] = {
        "clients": clients,
        "window_s": round(window_s, 2),
        "requests": len(samples),
        "ok": len(ok),
        "errors": len(errors),
        "partial": len(partial),
        "req_per_s": round(len(samples) / window_s, 2) if window_s else None,
        "latency_ms": {
            "p50": _pct(lat, 50),
            "p95": _pct(lat, 95),
            "p99": _pct(lat, 99),
            "mean": round(float(lat.mean()), 3) if len(lat) else float("nan"),
            "max": round(float(lat.max()), 3) if len(lat) else float("nan"),
        },
    }
    steps: dict[str, Any] = {}
    for key in ("decode_ms", "queue_ms", "embed_ms", "search_ms", "store_ms"):
        vals = np.array([s.timings[key] for s in ok if s.timings and key in s.timings])
        if len(vals):
            steps[key.removesuffix("_ms")] = {
                "p50": _pct(vals, 50),
                "p95": _pct(vals, 95),
                "mean": round(float(vals.mean()), 3),
            }
    out["server_steps_ms"] = steps
    rest = np.array([s.latency_s * 1e3 - sum((s.timings or {}).values()) for s in ok])
    out["outside_steps_ms"] = {"p50": _pct(rest, 50), "p95": _pct(rest, 95)}
    if ok and ok[0].kind == "search":
        out["results_per_search_min"] = min(s.results for s in ok)
    if errors or partial:
        seen: dict[str, int] = {}
        for s in errors + partial:
            key = f"{s.status} {s.error}"
            seen[key] = seen.get(key, 0) + 1
        out["error_samples"] = [{"count": c, "error": e} for e, c in sorted(seen.items(), key=lambda kv: -kv[1])[:10]]
    return out


@contextlib.contextmanager
def _cpu_meter(server_pid: int, into: dict[str, Any]) -> Iterator[None]:
    load0, srv0, me0, t0 = _load(), _proc_cpu_s(server_pid), _self_cpu_s(), time.perf_counter()
    try:
        yield
    finally:
        wall = time.perf_counter() - t0
        srv, me = _proc_cpu_s(server_pid) - srv0, _self_cpu_s() - me0
        into.update(
            {
                "wall_s": round(wall, 2),
                "server_cpu_s": round(srv, 2),
                "server_cpu_pct": round(100 * srv / wall, 1) if wall else None,
                "loadgen_cpu_s": round(me, 2),
                "loadgen_cpu_pct": round(100 * me / wall, 1) if wall else None,
                "server_rss_mb": round(_proc_rss_mb(server_pid), 1),
                "load_avg_before": load0,
                "load_avg_after": _load(),
            }
        )


def _print_errors(name: str, summary: dict[str, Any]) -> None:
    for row in summary.get("error_samples", []):
        print(f"  !! {name}: {row['count']} x {row['error']}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------- report
def _fmt(v: Any, spec: str = "{:.2f}") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return spec.format(v)


def _step(summary: dict[str, Any], key: str) -> str:
    st = summary["server_steps_ms"].get(key)
    return f"{st['p50']:.2f} / {st['p95']:.2f}" if st else "–"


def markdown_table(scenarios: dict[str, Any]) -> str:
    head = [
        "scenario",
        "clients",
        "requests",
        "errors",
        "req/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "mean ms",
        "decode p50/p95",
        "queue p50/p95",
        "embed p50/p95",
        "search p50/p95",
        "store p50/p95",
        "outside steps p50",
        "p50 vs 1 client",
        "req/s vs 1 client",
        "server CPU %",
        "loadgen CPU %",
    ]
    rows = []
    for name, sc in scenarios.items():
        for phase in ("sequential", "concurrent", "concurrent_search", "concurrent_add"):
            s = sc.get(phase)
            if not s:
                continue
            label = name + {"concurrent_search": " (search)", "concurrent_add": " (add)"}.get(phase, "")
            with_ratio = "concurrent_search" if "concurrent_search" in sc else "concurrent"
            ratio = sc.get("ratio", {}) if phase == with_ratio else {}
            cpu = sc.get("cpu", {}).get("sequential" if phase == "sequential" else "concurrent", {})
            rows.append(
                [
                    label,
                    str(s["clients"]),
                    f"{s['requests']:,}",
                    str(s["errors"] + s.get("partial", 0)),
                    _fmt(s["req_per_s"], "{:,.1f}"),
                    _fmt(s["latency_ms"]["p50"]),
                    _fmt(s["latency_ms"]["p95"]),
                    _fmt(s["latency_ms"]["p99"]),
                    _fmt(s["latency_ms"]["mean"]),
                    _step(s, "decode"),
                    _step(s, "queue"),
                    _step(s, "embed"),
                    _step(s, "search"),
                    _step(s, "store"),
                    _fmt(s["outside_steps_ms"]["p50"]),
                    _fmt(ratio.get("p50"), "{:.1f}x"),
                    _fmt(ratio.get("req_per_s"), "{:.1f}x"),
                    _fmt(cpu.get("server_cpu_pct"), "{:.0f}"),
                    _fmt(cpu.get("loadgen_cpu_pct"), "{:.0f}"),
                ]
            )
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def seed_comparison(result: dict[str, Any]) -> list[str]:
    sc = result["scenarios"]
    col = result["build"]["collection"]
    n, dim = col["vectors"], col["dim"]
    store = col["config"]["store"]
    hw = f"{result['machine']['cpu_count']} shared vCPUs ({result['machine']['cpu_model']})"
    lines = []
    clip = sc.get("clip", {}).get("sequential")
    if clip and "embed" in clip["server_steps_ms"]:
        emb, dec = clip["server_steps_ms"]["embed"]["p50"], clip["server_steps_ms"].get("decode", {}).get("p50")
        lines.append(
            f"Embedding a {result['build']['query_clip_s']:g} s query clip: ours {emb:.2f} ms (+ {_fmt(dec)} ms "
            f"decoding; server-side p50, one client) with the `{col['config']['embedder']}` preset "
            f"({col['pipeline']}, {dim}-d: hand-crafted MFCC statistics, no neural network) on {hw}, vs PaddleSpeech's "
            f"~{SEED_REFERENCE['embed_ms']:.0f} ms with {SEED_REFERENCE['model']} ({SEED_REFERENCE['dim']}-d) on "
            f"{SEED_REFERENCE['hardware']}. Different models: the ratio says how much cheaper MFCC is, not that we "
            "embed a neural model faster."
        )
    vec = sc.get("vector", {}).get("sequential")
    if vec and "search" in vec["server_steps_ms"]:
        s50 = vec["server_steps_ms"]["search"]["p50"]
        lines.append(
            f"Search: ours {s50:.3f} ms (server-side search step p50, one client: store search + metadata + ranking "
            f"into items) over {n:,} vectors of {dim} dimensions ({store['backend']} {store['index']}, "
            f"{store['metric']}, in-process) on {hw}, vs PaddleSpeech's ~{SEED_REFERENCE['search_ms']} ms "
            f"({SEED_REFERENCE['search_note']}) over {SEED_REFERENCE['vectors']:,} vectors of "
            f"{SEED_REFERENCE['dim']} dimensions ({SEED_REFERENCE['distance']}, Milvus) on "
            f"{SEED_REFERENCE['hardware']}. Not like-for-like: {n / SEED_REFERENCE['vectors']:.3g}x their vector "
            f"count, {dim / SEED_REFERENCE['dim']:.3g}x their dimension, a different engine and index, different "
            "hardware; their figure has no HTTP layer, ours excludes it too (client-side latency is in the table)."
            + (
                ""
                if str(store["index"]) == "flat"
                else " Recall is not measured here (their figure is at ~90 %); benchmarks/store_speed.py measures "
                "the recall of each index."
            )
        )
    return lines


# --------------------------------------------------------------------------------------------- main
def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of real audio to index (default FSDD)")
    p.add_argument("--limit", type=int, default=0, help="index only the first N files (sorted; 0 = all)")
    p.add_argument("--embedder", default="mfcc", help="service embedder preset (mfcc or logmel without model files)")
    p.add_argument("--pooling", default="mean_std+l2")
    p.add_argument("--store", default="faiss", help="faiss (default), exact or milvus (Milvus Lite)")
    p.add_argument("--index", default="flat", help='index kind or JSON, e.g. hnsw or \'{"kind": "hnsw", "m": 32}\'')
    p.add_argument("--metric", default="cosine", choices=["cosine", "ip", "l2"])
    p.add_argument("--pad-vectors", type=int, default=0, help="extra synthetic vectors added through the store")
    p.add_argument("--pad-noise", type=float, default=0.5, help="noise of the synthetic vectors (x per-dim std)")
    p.add_argument(
        "--query-audio",
        type=Path,
        nargs="+",
        default=DEFAULT_QUERY_AUDIO,
        help="real recordings the query clips are cut from (default: 3 LibriSpeech utterances)",
    )
    p.add_argument("--query-clips", type=int, default=8, help="number of query clips rotated")
    p.add_argument("--query-seconds", type=float, default=5.0)
    p.add_argument(
        "--add-data",
        type=Path,
        default=DEFAULT_ADD_DATA,
        help="real audio uploaded by the mixed scenario's adds (default drum one-shots)",
    )
    p.add_argument("--scenarios", default=",".join(SCENARIOS), help=f"comma-separated subset of {SCENARIOS}")
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--duration", type=float, default=120.0, help="measured seconds per concurrent phase")
    p.add_argument("--baseline-duration", type=float, default=20.0, help="measured seconds of the 1-client phase")
    p.add_argument("--warmup", type=float, default=5.0, help="seconds before each phase's measurement (excluded)")
    p.add_argument("--add-fraction", type=float, default=0.1, help="share of adds in the mixed scenario")
    p.add_argument(
        "--server-threads",
        type=int,
        default=0,
        help="OMP/OpenBLAS/MKL threads of the server process (0 = the libraries' defaults, as `audiovec serve` runs)",
    )
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workdir", type=Path, default=None, help="where the temporary data folder goes")
    p.add_argument("--output", type=Path, default=HERE / "results" / "service_load.json")
    args = p.parse_args()

    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown:
        p.error(f"unknown scenarios {sorted(unknown)}; choose from {SCENARIOS}")
    for path in [args.data, *args.query_audio]:
        if not path.exists():
            p.error(f"{path} not found (the shared data lives in ../shared/data beside the checkout)")
    baseline_s = min(args.baseline_duration, args.duration)

    def on_sigterm(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started in the background (SIGINT ignored)
    t_start = time.perf_counter()
    stop = threading.Event()
    result: dict[str, Any] = {
        "benchmark": "service_load",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "machine": {
            "cpu_count": os.cpu_count(),
            "cpu_model": _cpu_model(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "packages": _package_versions(),
            "git_commit": _git_commit(),
            "shared": True,
            "note": "a shared 2-vCPU machine: other engineers' jobs ran alongside (see the load averages); the "
            "server, its faiss/numpy threads and the load generator all share the same cores",
            "threads_env": {
                k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
            },
        },
        "seed_reference": SEED_REFERENCE,
    }
    result["settings"]["query_audio"] = [str(q) for q in args.query_audio]
    result["settings"]["scenarios"] = scenarios
    result["settings"]["baseline_duration"] = baseline_s
    print(
        f"machine: {os.cpu_count()} CPU(s) {_cpu_model()}, load {_load()}; scenarios {scenarios}, "
        f"{args.clients} clients x {args.duration:g} s (1 client x {baseline_s:g} s first), warm-up {args.warmup:g} s",
        flush=True,
    )

    server: ServerProcess | None = None
    ok = True
    with tempfile.TemporaryDirectory(prefix="service_load-", dir=args.workdir) as tmp:
        data_dir = Path(tmp) / "data"
        try:
            built = build(args, data_dir)
            clips, vectors, item_queries = built.pop("clips"), built.pop("vectors"), built.pop("item_queries")
            result["build"] = built
            col_desc = built["collection"]
            print(
                f"collection: {col_desc['items']:,} items, {col_desc['vectors']:,} vectors of {col_desc['dim']} "
                f"dimensions ({col_desc['pipeline']}), store {col_desc['config']['store']}; "
                f"{len(clips)} query clips",
                flush=True,
            )

            env = {**os.environ, "PYTHONUNBUFFERED": "1"}
            if args.server_threads:
                for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
                    env[var] = str(args.server_threads)
            server = ServerProcess(data_dir, Path(tmp) / "server.log", env)
            startup = server.wait_healthy()
            result["server"] = {"cmd": server.cmd[1:], "pid": server.pid, "startup_s": round(startup, 2)}
            print(f"server pid {server.pid} on {server.host}:{server.port}, healthy after {startup:.1f} s", flush=True)
            host, port = server.host, server.port
            base = f"/api/v1/collections/{COLLECTION}"

            # prepared request bodies
            clip_reqs = []
            for name, data in clips:
                body, ctype = multipart([("k", str(args.k))], [("file", name, data, "audio/wav")])
                clip_reqs.append(Req("search", "POST", base + "/search", body, {"Content-Type": ctype}))
            vec_reqs = [
                json_req("search", base + "/search/vector", {"vector": v[0].tolist(), "k": args.k}) for v in vectors
            ]
            item_reqs = [json_req("search", base + "/search/item", {"item_id": i, "k": args.k}) for i in item_queries]

            # sanity: a clip and its precomputed vector give the same top-k (the vector scenario is the clip minus
            # decoding and embedding)
            probe = Client(host, port)
            mismatches = 0
            for creq, vreq in zip(clip_reqs, vec_reqs, strict=True):
                (sa, ids_a), (sb, ids_b) = probe.result_ids(creq), probe.result_ids(vreq)
                if sa != 200 or sb != 200:
                    raise RuntimeError(f"probe search failed: {sa} {ids_a} / {sb} {ids_b}")
                mismatches += ids_a != ids_b
            probe.close()
            result["checks"] = {"vector_topk_equals_clip_topk": f"{len(clip_reqs) - mismatches}/{len(clip_reqs)}"}
            if mismatches:
                print(
                    f"WARNING: {mismatches} of {len(clip_reqs)} precomputed vectors rank differently from their clips",
                    file=sys.stderr,
                    flush=True,
                )
                ok = False

            makers: dict[str, Callable[[int, int], Req]] = {
                "clip": lambda c, i: clip_reqs[(c * 3 + i) % len(clip_reqs)],
                "vector": lambda c, i: vec_reqs[(c * 3 + i) % len(vec_reqs)],
                "item": lambda c, i: item_reqs[(c * 61 + i) % len(item_reqs)],
            }
            results: dict[str, Any] = {}
            result["scenarios"] = results
            for name in scenarios:
                if name == "mixed":
                    results[name] = run_mixed(args, host, port, base, clip_reqs, stop, server.pid)
                    sc = results[name]
                    ok &= sc["consistency"]["ok_live"] and sc["concurrent"]["errors"] == 0
                    continue
                sc = {"cpu": {}}
                results[name] = sc
                for phase, clients, secs in (
                    ("sequential", 1, baseline_s),
                    ("concurrent", args.clients, args.duration),
                ):
                    print(
                        f"[{name}] {clients} client(s), {args.warmup:g} s warm-up + {secs:g} s ...", end=" ", flush=True
                    )
                    cpu: dict[str, Any] = {}
                    with _cpu_meter(server.pid, cpu):
                        measured, _, window = run_phase(host, port, makers[name], clients, args.warmup, secs, stop)
                    sc["cpu"][phase] = cpu
                    sc[phase] = summarize(measured, window, clients)
                    s = sc[phase]
                    print(
                        f"{s['requests']:,} requests, {s['errors']} errors, {s['req_per_s']:,.1f} req/s, "
                        f"p50 {s['latency_ms']['p50']:.2f} ms, p95 {s['latency_ms']['p95']:.2f} ms, "
                        f"server CPU {cpu['server_cpu_pct']}%, load {cpu['load_avg_after']}",
                        flush=True,
                    )
                    _print_errors(f"{name}/{phase}", s)
                    ok &= s["errors"] == 0 and s["partial"] == 0
                seq, con = sc["sequential"], sc["concurrent"]
                sc["ratio"] = {
                    "p50": round(con["latency_ms"]["p50"] / seq["latency_ms"]["p50"], 2),
                    "p95": round(con["latency_ms"]["p95"] / seq["latency_ms"]["p95"], 2),
                    "req_per_s": round(con["req_per_s"] / seq["req_per_s"], 2),
                }
            if "mixed" in results and "clip" in results:
                seq, con = results["clip"]["sequential"], results["mixed"]["concurrent_search"]
                results["mixed"]["ratio"] = {
                    "p50": round(con["latency_ms"]["p50"] / seq["latency_ms"]["p50"], 2),
                    "note": "mixed searches vs the clip scenario's 1-client p50",
                }
        except KeyboardInterrupt:
            stop.set()
            print("\ninterrupted: stopping the server", file=sys.stderr, flush=True)
            ok = False
            result["interrupted"] = True
        except Exception as err:  # report, stop the server, still write what was measured
            stop.set()
            traceback.print_exc()
            ok = False
            result["error"] = f"{type(err).__name__}: {err}"
        finally:
            if server is not None:
                server.stop()
                result.setdefault("server", {}).update(
                    {"exit_code": server.exit_code, "shutdown_s": _round(server.shutdown_s)}
                )
                if server.exit_code not in (0, None):
                    print(f"server exited with {server.exit_code}:\n{server.log_tail()}", file=sys.stderr)
                warnings = server.log_tail(20000).strip()
                if warnings:
                    result["server"]["log_tail"] = warnings[-3000:]
        if "mixed" in result.get("scenarios", {}) and not result.get("interrupted"):
            ok &= check_persisted(data_dir, result["scenarios"]["mixed"]["consistency"])

    result["total_s"] = round(time.perf_counter() - t_start, 1)
    result["ok"] = bool(ok)
    if "scenarios" in result:
        result["seed_comparison"] = seed_comparison(result)
        result["table_markdown"] = markdown_table(result["scenarios"])
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2, default=_json_default) + "\n")
    md = args.output.with_suffix(".md")
    if "scenarios" in result:
        md.write_text(render_markdown(result))
        print()
        print(render_markdown(result))
    print(f"written to {args.output} and {md} ({result['total_s']} s); {'OK' if ok else 'FAILED CHECKS'}")
    return 0 if ok else 1


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 2)


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def render_markdown(result: dict[str, Any]) -> str:
    st, col, m = result["settings"], result["build"]["collection"], result["machine"]
    head = (
        f"### Service load: {col['items']:,} items, {col['vectors']:,} vectors ({col['dim']}-d, {col['pipeline']}), "
        f"store {col['config']['store']['backend']} {col['config']['store']['index']}\n\n"
        f"{st['clients']} concurrent clients x {st['duration']:g} s per scenario (1 client x "
        f"{st['baseline_duration']:g} s first), {st['warmup']:g} s warm-up excluded, k={st['k']}; "
        f"{m['cpu_count']} shared vCPUs ({m['cpu_model']}), Python {m['python']}, "
        f"fastapi {m['packages']['fastapi']}, uvicorn {m['packages']['uvicorn']}, faiss {m['packages']['faiss-cpu']}. "
        f"Latencies are client-side (ms); step times are the server's `timings` (p50 / p95 ms); 'outside steps' "
        f"= client latency minus the server's steps (HTTP, parsing, validation, serialisation, thread-pool "
        f"queueing); `queue` = waiting for the shared embedder (one embedding at a time per preset).\n"
    )
    parts = [head, markdown_table(result["scenarios"]), ""]
    mixed = result["scenarios"].get("mixed")
    if mixed:
        c = mixed["consistency"]
        parts.append(
            f"Mixed-load consistency: initial {c['initial_items']:,} items + {c['adds_ok']:,} successful adds "
            f"({c['adds_failed']} failed) = {c['expected_items']:,} expected; the service reported "
            f"{c['final_items']:,}; {c['unique_added_ids']:,} unique added ids, {c['retrievable']:,} retrievable; "
            f"after shutdown the store held {c.get('persisted_items', '?')} items -> "
            f"{'OK' if c['ok_live'] and c.get('ok_persisted') else 'MISMATCH'}.\n"
        )
    parts.append("Compared with PaddleSpeech's audio-search demo, not like-for-like:\n")
    parts += [f"* {line}" for line in result.get("seed_comparison", [])]
    return "\n".join(parts) + "\n"


def run_mixed(
    args: argparse.Namespace,
    host: str,
    port: int,
    base: str,
    clip_reqs: list[Req],
    stop: threading.Event,
    server_pid: int,
) -> dict[str, Any]:
    """90 % clip searches + 10 % adds with ``--clients`` clients; then check the item count and every added id."""
    from audiovec.ingest import find_audio_files

    add_files = find_audio_files([args.add_data])[:300] if args.add_data.exists() else []
    if not add_files:
        add_files = find_audio_files([args.data])[:300]
    add_reqs = []
    for f in add_files:
        body, ctype = multipart(
            [("metadata", json.dumps({"label": "mixed_add", "source": f.parent.name}))],
            [("files", f.name, f.read_bytes(), "application/octet-stream")],
        )
        add_reqs.append(Req("add", "POST", base + "/items", body, {"Content-Type": ctype}))
    every = max(1, round(1 / args.add_fraction)) if args.add_fraction > 0 else 0
    counter = [0] * args.clients

    def make(c: int, i: int) -> Req:
        if every and (i + c) % every == 0:
            counter[c] += 1
            return add_reqs[(c * 37 + counter[c]) % len(add_reqs)]
        return clip_reqs[(c * 3 + i) % len(clip_reqs)]

    probe = Client(host, port)
    status, desc = probe.get_json(base)
    if status != 200:
        raise RuntimeError(f"GET {base} -> {status}: {desc}")
    initial = int(desc["items"])
    print(
        f"[mixed] {args.clients} clients, {100 / every if every else 0:.0f} % adds, {args.warmup:g} s warm-up + "
        f"{args.duration:g} s ...",
        end=" ",
        flush=True,
    )
    cpu: dict[str, Any] = {}
    with _cpu_meter(server_pid, cpu):
        measured, warm, window = run_phase(host, port, make, args.clients, args.warmup, args.duration, stop)
    out: dict[str, Any] = {
        "cpu": {"concurrent": cpu},
        "add_files": len(add_reqs),
        "add_source": str(add_files[0].parent if add_files else None),
    }
    out["concurrent"] = summarize(measured, window, args.clients)
    out["concurrent_search"] = summarize([s for s in measured if s.kind == "search"], window, args.clients)
    out["concurrent_add"] = summarize([s for s in measured if s.kind == "add"], window, args.clients)
    s = out["concurrent"]
    print(
        f"{s['requests']:,} requests ({out['concurrent_add']['requests']:,} adds), {s['errors']} errors, "
        f"{s['req_per_s']:,.1f} req/s, server CPU {cpu['server_cpu_pct']}%",
        flush=True,
    )
    _print_errors("mixed", s)

    everything = measured + warm
    adds = [x for x in everything if x.kind == "add"]
    added_ids = [i for x in adds for i in x.added]
    status, desc = probe.get_json(base)
    final = int(desc["items"]) if status == 200 else -1
    retrievable = 0
    for item_id in added_ids:
        st, _ = probe.get_json(f"{base}/items/{item_id}")
        retrievable += st == 200
    probe.close()
    expected = initial + len(added_ids)
    c = {
        "initial_items": initial,
        "adds_sent": len(adds),
        "adds_ok": len(added_ids),
        "adds_failed": sum(1 for x in adds if not 200 <= x.status < 300),
        "expected_items": expected,
        "final_items": final,
        "unique_added_ids": len(set(added_ids)),
        "retrievable": retrievable,
    }
    c["ok_live"] = final == expected and len(set(added_ids)) == len(added_ids) and retrievable == len(added_ids)
    out["consistency"] = c
    print(
        f"[mixed] items: {initial:,} + {len(added_ids):,} adds = {expected:,} expected, {final:,} reported; "
        f"{c['unique_added_ids']:,} unique ids, {retrievable:,} retrievable -> "
        f"{'OK' if c['ok_live'] else 'MISMATCH'}",
        flush=True,
    )
    return out


def check_persisted(data_dir: Path, consistency: dict[str, Any]) -> bool:
    """Reopen the collection after the server's shutdown: the persisted count must equal the live one."""
    from audiovec.service.manager import CollectionManager
    from audiovec.service.settings import ServiceSettings

    manager = CollectionManager(ServiceSettings(data_dir=data_dir))
    try:
        items = int(manager.get(COLLECTION).describe()["items"])
    finally:
        manager.close()
    consistency["persisted_items"] = items
    consistency["ok_persisted"] = items == consistency["final_items"]
    print(
        f"[mixed] after shutdown the store holds {items:,} items -> "
        f"{'OK' if consistency['ok_persisted'] else 'MISMATCH'}",
        flush=True,
    )
    return bool(consistency["ok_persisted"])


if __name__ == "__main__":
    sys.exit(main())

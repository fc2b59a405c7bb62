"""kill -9 trials against a real ``audiovec serve`` process: uploads and deletes acknowledged vs what survives.

Used by the hostile-input suite (a few trials) and its ``slow`` variant (twenty or more). Every request goes to
127.0.0.1; every process started is killed in a ``finally``.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

COLLECTION = "crash"
#: What a request cut off by the server's death raises: a refused or reset connection, a truncated response.
CUT_OFF = (OSError, http.client.HTTPException)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wav(seed: int, seconds: float = 0.5, sr: int = 16000) -> bytes:
    """A short, unique WAV: a tone at a seed-dependent pitch plus noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    y = 0.3 * np.sin(2 * np.pi * (200 + seed % 1800) * t) + 0.05 * rng.normal(size=t.size)
    buf = io.BytesIO()
    sf.write(buf, y.astype(np.float32), sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def multipart(data: bytes, name: str) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
        "Content-Type: audio/wav\r\n\r\n"
    ).encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


class Server:
    """``python -m audiovec.cli serve`` on 127.0.0.1 in its own process group."""

    def __init__(self, data_dir: Path, port: int, log: Path, env: dict[str, str] | None = None) -> None:
        self.data_dir, self.port, self.log, self.env = data_dir, port, log, env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 120.0) -> None:
        cmd = [sys.executable, "-m", "audiovec", "serve", "--data-dir", str(self.data_dir)]
        cmd += ["--port", str(self.port), "--log-level", "warning"]
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=self.env
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited: {self.log.read_text()[-3000:]}")
            try:
                status, _ = request(self.port, "GET", "/health", timeout=2)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("the server did not start")

    def stop(self, timeout: float = 60.0) -> None:
        """SIGTERM (a graceful shutdown that saves), SIGKILL after ``timeout``."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self.proc = None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=60)
        self.proc = None


def request(
    port: int, method: str, path: str, body: bytes | None = None, ctype: str | None = None, timeout: float = 30
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Content-Type": ctype} if ctype else {}
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


@dataclass
class Ledger:
    """What the clients were told: items acknowledged as added / deleted, and requests cut off by the kill."""

    added: set[str] = field(default_factory=set)
    deleted: set[str] = field(default_factory=set)
    in_flight_deletes: set[str] = field(default_factory=set)
    in_flight_adds: int = 0
    unknown: int = 0  # items stored by requests the kill cut off (never acknowledged, so never in ``added``)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _client(port: int, seed: int, stop: threading.Event, ledger: Ledger) -> None:
    rng = np.random.default_rng(seed)
    mine: list[str] = []
    n = 0
    base = f"/api/v1/collections/{COLLECTION}/items"
    while not stop.is_set():
        if mine and rng.random() < 0.3:
            item = mine.pop(int(rng.integers(len(mine))))
            with ledger.lock:
                ledger.in_flight_deletes.add(item)
            try:
                status, _ = request(port, "DELETE", f"{base}/{item}", timeout=10)
            except CUT_OFF:
                return  # the server died mid-request: outcome unknown
            with ledger.lock:
                ledger.in_flight_deletes.discard(item)
                if status == 204:
                    ledger.deleted.add(item)
            continue
        body, ctype = multipart(wav(seed * 100_000 + n), f"c{seed}-{n}.wav")
        n += 1
        with ledger.lock:
            ledger.in_flight_adds += 1
        try:
            status, resp = request(port, "POST", base, body, ctype, timeout=10)
        except CUT_OFF:  # also a 201 whose body was cut off: never fully acknowledged
            return
        with ledger.lock:
            ledger.in_flight_adds -= 1
            if status == 201:
                item = json.loads(resp)["added"][0]["id"]
                ledger.added.add(item)
                mine.append(item)


@dataclass
class TrialReport:
    trials: int = 0
    acknowledged_adds: int = 0
    acknowledged_deletes: int = 0
    lost: int = 0
    resurrected: int = 0
    orphan_files: int = 0
    missing_audio: int = 0
    unacknowledged_present: int = 0
    problems: list[str] = field(default_factory=list)


def check(port: int, audio_dir: Path, ledger: Ledger, report: TrialReport) -> None:
    """Compare the restarted server with the ledger."""
    base = f"/api/v1/collections/{COLLECTION}"
    live = ledger.added - ledger.deleted
    for item in sorted(live):
        status, _ = request(port, "GET", f"{base}/items/{item}")
        if status != 200:
            if item in ledger.in_flight_deletes:  # a delete in flight may have landed
                continue
            report.lost += 1
            report.problems.append(f"acknowledged item {item} lost ({status})")
            continue
        status, _ = request(port, "GET", f"{base}/items/{item}/audio")
        if status != 200:
            report.missing_audio += 1
            report.problems.append(f"acknowledged item {item} has no audio ({status})")
    for item in sorted(ledger.deleted):
        status, _ = request(port, "GET", f"{base}/items/{item}")
        if status != 404:
            report.resurrected += 1
            report.problems.append(f"acknowledged delete of {item} undone ({status})")
    status, body = request(port, "GET", base)
    items = json.loads(body)["items"]
    # adds in flight when the kill came may have landed; so may deletes in flight
    extra = items - len(live) - ledger.unknown
    if not (-len(ledger.in_flight_deletes) <= extra <= ledger.in_flight_adds):
        report.problems.append(f"{items} items stored for {len(live)} acknowledged ({ledger.in_flight_adds} in flight)")
    report.unacknowledged_present += max(0, extra)
    files = [f for f in audio_dir.iterdir()] if audio_dir.is_dir() else []
    stems = {f.stem for f in files}
    orphans = [f.name for f in files if f.name.endswith(".part")]
    for stem in stems - {f.stem for f in files if f.name.endswith(".part")}:
        status, _ = request(port, "GET", f"{base}/items/{stem}")
        if status != 200:
            orphans.append(stem)
    report.orphan_files += len(orphans)
    if orphans:
        report.problems.append(f"orphan audio files: {orphans[:5]}")


def run_trials(root: Path, trials: int, clients: int = 4, seed: int = 0) -> TrialReport:
    """``trials`` rounds of: concurrent uploads and deletes, kill -9 at a random moment, restart, check."""
    rng = np.random.default_rng(seed)
    data_dir = root / "data"
    server = Server(data_dir, free_port(), root / "server.log")
    report = TrialReport()
    ledger = Ledger()
    try:
        server.start()
        status, body = request(
            server.port, "POST", "/api/v1/collections", json.dumps({"name": COLLECTION}).encode(), "application/json"
        )
        assert status == 201, body
        audio_dir = data_dir / "collections" / COLLECTION / "audio"
        for t in range(trials):
            stop = threading.Event()
            workers = [
                threading.Thread(target=_client, args=(server.port, 1000 * t + c + 1, stop, ledger), daemon=True)
                for c in range(clients)
            ]
            for w in workers:
                w.start()
            time.sleep(float(rng.uniform(0.5, 2.5)))
            server.kill()
            stop.set()
            for w in workers:
                w.join(timeout=30)
            server.start()
            check(server.port, audio_dir, ledger, report)
            report.trials += 1
            # what landed of the in-flight requests is now the state: resolve it from the server for the next round
            for item in list(ledger.in_flight_deletes):
                status, _ = request(server.port, "GET", f"/api/v1/collections/{COLLECTION}/items/{item}")
                if status == 404:
                    ledger.deleted.add(item)
            ledger.in_flight_deletes.clear()
            ledger.in_flight_adds = 0
            _, body = request(server.port, "GET", f"/api/v1/collections/{COLLECTION}")
            ledger.unknown = json.loads(body)["items"] - len(ledger.added - ledger.deleted)
        report.acknowledged_adds = len(ledger.added)
        report.acknowledged_deletes = len(ledger.deleted)
    finally:
        server.kill()
    return report

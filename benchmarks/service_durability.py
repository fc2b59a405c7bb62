"""Write throughput of ``audiovec serve`` with durable acknowledgements, against the same service without them.

Every upload the service answers 201 is on disk (its audio fsynced, its vectors in the store's fsynced journal)
before the answer; before the journal, a 201 meant "in memory, saved within ``autosave_s``". This benchmark measures
what that costs: ``--clients`` concurrent clients (threads, one request at a time each) upload short unique WAV
files (0.5 s, 16 kHz: MFCC embedding is cheap, so the durability cost is as visible as it can be) and delete
``--delete-fraction`` of what they added, for ``--duration`` seconds after ``--warmup`` seconds, against

* ``journal``: the service in this checkout (``src/``);
* ``baseline``: the service from another source tree (``--baseline-src``, e.g. a ``git worktree`` of the commit
  before the journal), the same load.

Each round starts a fresh server for each variant (``python -m audiovec serve``, a separate process on 127.0.0.1,
default ``faiss`` flat collection, ``mean+l2`` MFCC, audio kept), alternating which goes first; the ratio is the
median over ``--rounds`` of the per-round ratio of acknowledged writes per second. The load average is recorded.

Usage::

    git worktree add /tmp/before <commit>
    python benchmarks/service_durability.py --baseline-src /tmp/before/src --rounds 5 --duration 20

Writes ``benchmarks/results/service_durability.json`` (``--output``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "support"))

from crash_service import COLLECTION, Server, free_port, multipart, request, wav  # noqa: E402


def _client(port: int, seed: int, stop: threading.Event, t_measure: float, out: list[tuple[str, float, int]]) -> None:
    rng = np.random.default_rng(seed)
    mine: list[str] = []
    n = 0
    base = f"/api/v1/collections/{COLLECTION}/items"
    bodies = [multipart(wav(seed * 1_000_000 + i), f"{seed}-{i}.wav") for i in range(50)]
    while not stop.is_set():
        t0 = time.perf_counter()
        if mine and rng.random() < ARGS.delete_fraction:
            status, _ = request(port, "DELETE", f"{base}/{mine.pop(int(rng.integers(len(mine))))}")
            kind = "delete"
        else:
            body, ctype = bodies[n % len(bodies)]  # repeated bytes are new items (if_exists="add")
            n += 1
            status, resp = request(port, "POST", base, body, ctype)
            kind = "add"
            if status == 201:
                mine.append(json.loads(resp)["added"][0]["id"])
        t1 = time.perf_counter()
        if t0 >= t_measure:
            out.append((kind, t1 - t0, status))


def run_variant(name: str, src: Path, root: Path) -> dict[str, Any]:
    root.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(src) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    server = Server(root / name, free_port(), root / f"{name}.log", env=env)
    try:
        server.start()
        status, body = request(
            server.port, "POST", "/api/v1/collections", json.dumps({"name": COLLECTION}).encode(), "application/json"
        )
        assert status == 201, body
        load_before = os.getloadavg()[0]
        samples: list[tuple[str, float, int]] = []
        stop = threading.Event()
        t_measure = time.perf_counter() + ARGS.warmup
        threads = [
            threading.Thread(target=_client, args=(server.port, c + 1, stop, t_measure, samples))
            for c in range(ARGS.clients)
        ]
        for t in threads:
            t.start()
        time.sleep(ARGS.warmup + ARGS.duration)
        stop.set()
        for t in threads:
            t.join(timeout=60)
        ok = [s for s in samples if s[2] in (201, 204)]
        errors = len(samples) - len(ok)
        adds = np.array([s[1] for s in ok if s[0] == "add"]) * 1e3
        return {
            "writes_per_s": round(len(ok) / ARGS.duration, 2),
            "adds": len(adds),
            "deletes": int(sum(1 for s in ok if s[0] == "delete")),
            "errors": errors,
            "add_p50_ms": round(float(np.median(adds)), 2) if len(adds) else None,
            "add_p95_ms": round(float(np.percentile(adds, 95)), 2) if len(adds) else None,
            "load_avg_before": round(load_before, 2),
        }
    finally:
        server.stop()


def main() -> int:
    global ARGS
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--baseline-src", type=Path, required=True, help="src/ of the service to compare against")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--duration", type=float, default=20.0)
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--delete-fraction", type=float, default=0.2)
    p.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results" / "service_durability.json")
    ARGS = p.parse_args()
    variants = {"journal": REPO / "src", "baseline": ARGS.baseline_src.resolve()}
    rounds: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="audiovec-durability-") as tmp:
        for r in range(ARGS.rounds):
            order = list(variants) if r % 2 == 0 else list(reversed(variants))
            result: dict[str, Any] = {}
            for name in order:
                result[name] = run_variant(name, variants[name], Path(tmp) / f"r{r}")
                print(f"round {r + 1} {name}: {json.dumps(result[name])}", flush=True)
            result["ratio_journal_over_baseline"] = round(
                result["journal"]["writes_per_s"] / result["baseline"]["writes_per_s"], 3
            )
            rounds.append(result)
    ratios = [r["ratio_journal_over_baseline"] for r in rounds]
    summary = {
        "writes_per_s_median": {v: float(np.median([r[v]["writes_per_s"] for r in rounds])) for v in variants},
        "add_p50_ms_median": {v: float(np.median([r[v]["add_p50_ms"] for r in rounds])) for v in variants},
        "ratio_median": float(np.median(ratios)),
        "ratio_min_max": [min(ratios), max(ratios)],
    }
    out = {
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(ARGS).items()},
        "host": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "server_threads": "uvicorn, one process; embedding serialised per preset (MFCC: librosa, 1 BLAS thread)",
        "rounds": rounds,
        "summary": summary,
    }
    ARGS.output.parent.mkdir(parents=True, exist_ok=True)
    ARGS.output.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    return 0


ARGS: argparse.Namespace

if __name__ == "__main__":
    raise SystemExit(main())

"""Scale runs: ``audiovec index`` over 100,000 real-audio files, and 1,000,000 vectors in FAISS and Milvus.

**Part a** (``--part a``): the corpus of ``benchmarks/make_corpus.py`` (default ``/work/corpus/c100k``: 100,000 files
of 1-3 s, 16 kHz mono FLAC, label = parent folder) is indexed with the command line::

    audiovec index CORPUS --collection DIR --workers 2 -e mfcc --index hnsw --label-from '{label}/*' \\
        [--store milvus --milvus-uri http://127.0.0.1:PORT]

into FAISS (the default store) and into a Milvus 2.3.5 standalone server that this script starts (so it must run in
a loopback-only network namespace: it re-executes itself under ``unshare -n`` when Milvus is asked for and the
namespace has other interfaces). For each store:

* **clean run**: a fresh collection, indexed in one go (subprocess in its own process group): files/s, wall and CPU
  time (``getrusage(RUSAGE_CHILDREN)`` delta: the index process and its worker), **peak RSS of the index process
  tree** (sum of the RSS of every process in the tree, sampled every 0.2 s; the Milvus server's RSS separately),
  disk (the collection folder; for Milvus also the growth of the server's data folder), count == files;
* **search**: ``Collection.search`` on the 200 held-out query files of ``--queries`` (default
  ``/work/corpus/c100k_queries``, made from the same distribution with indices >= 100,000): end-to-end p50/p95
  (read, decode, MFCC, pool, store search, k=10); the same queries pooled once and searched at the store level
  (``col.store.search(vector, k=10)``): p50/p95 and **recall@10 against exact search** over every vector in the
  collection (read back with ``store.get``); label precision@10 (hits with the query's label) as a sanity check;
* **resume after kill -9**: a fresh collection, the same command killed with SIGKILL to its process group at
  ``--kill-frac`` (default 0.5) of the clean run's wall time (default checkpoint: every 60 s), the items kept
  counted (a run that ends before the kill is retried on a fresh collection, killed at half the time), then the same
  command rerun to completion: time to resume, added/skipped, final count == files, no duplicate ids (FAISS: SQLite
  ids + index size; Milvus: every primary key read back), no failures.

Every corpus and query file is read once first, so that every run (the first one too) reads from the page cache.

Two **raw baselines** do the same work without the index command, once each, in the same run, for the clean-run rate:
2 ``multiprocessing`` processes (one BLAS/OpenMP thread each) hash each file (SHA-256), decode it (soundfile), compute
the MFCCs (``embed``: the ``mfcc`` embedder's own ``embed()`` on the decoded audio; ``librosa``:
``librosa.feature.mfcc`` with the embedder's parameters), mean-pool and L2-normalise; the parent adds the vectors to a
faiss ``IndexIDMap2(IndexHNSWFlat(20, 32))`` (efConstruction 128, audiovec's ``hnsw`` defaults), writes the metadata
as JSON into SQLite in batches of 2048, and saves the index every 60 s and at the end.

**Part b** (``--part b``): ``--n`` (default 1,000,000) clustered ``--dim``-d vectors (the generator of
``audiovec.testing._store_checks.clustered_vectors``, in chunks of 100,000 to bound memory; 200 queries, half new
segments of stored files, half new files), with small metadata, in FAISS HNSW (m=16, ef_construction=64,
ef_search=64), FAISS IVF-PQ (nlist=1024, nprobe=32, pq_m=64, trained on 39,936 vectors) and a Milvus server HNSW
(same parameters), each in its own subprocess: insert rate (batches of 10,000 with metadata), build time (train +
insert + save; Milvus: + flush and index build), peak RSS (worker; Milvus: server, sampled), disk, single-query
p50/p95 latency (200 queries, k=10), recall@10 against exact brute force. audiovec against the raw library on the
same index (interleaved, 3 rounds, medians): single queries (faiss ``index.search`` with the same parameters on
the saved index; pymilvus ``MilvusClient.search`` with the same parameters, output field and consistency), and
for HNSW the insert of 50,000 vectors with metadata (faiss + ``json.dumps`` + SQLite). An insert phase that passes
``--budget-s`` (default 1500 s = 25 min) stops there: the backend is then measured on what it holds and marked
``scaled_down`` with the number of vectors (nothing is extrapolated).

Threads: 2 (``OMP_NUM_THREADS``/BLAS and faiss ``omp_set_num_threads``) for every part-b worker and the raw
baseline's faiss; the index command uses the library's own setting (``--workers 2``: one thread per process).

Usage::

    unshare -n sh -c 'ip link set lo up && exec .venv/bin/python benchmarks/scale_run.py --part a'
    python benchmarks/scale_run.py --part b                        # re-executes itself under unshare for Milvus
    python benchmarks/scale_run.py --part a --corpus /work/corpus/c2k --queries /work/corpus/c100k_queries  # smoke
    python benchmarks/scale_run.py --part b --n 20000 --dim 64     # smoke
    python benchmarks/scale_run.py --report                        # scale.md from scale.json

Writes ``benchmarks/results/scale.json`` (the part run replaces its section) and ``scale.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import resource
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
REPO = ROOT.parent
WORKDIR = Path("/work/corpus/scale_work")
K = 10
_REEXEC_ENV = "AUDIOVEC_SCALE_RUN_IN_NETNS"


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _cpu_children() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _du_mb(path: Path) -> float:
    total = 0
    for root, _, names in os.walk(path):
        for n in names:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, n)).st_blocks * 512
    return round(total / 2**20, 1)


def _pct(samples: list[float], q: float) -> float:
    import numpy as np

    return round(1000 * float(np.percentile(samples, q)), 3)


class TreeMonitor:
    """Samples the summed RSS of a process tree (and of another process, e.g. a server) until stopped."""

    def __init__(self, pid: int, other: int | None = None, every: float = 0.2) -> None:
        self.pid, self.other, self.every = pid, other, every
        self.peak_mb = 0.0
        self.peak_procs = 0
        self.other_peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeMonitor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            try:
                root = psutil.Process(self.pid)
                procs = [root, *root.children(recursive=True)]
                total = 0
                for p in procs:
                    with contextlib.suppress(psutil.Error):
                        total += p.memory_info().rss
                self.peak_mb = max(self.peak_mb, total / 2**20)
                self.peak_procs = max(self.peak_procs, len(procs))
            except psutil.Error:
                pass
            if self.other is not None:
                with contextlib.suppress(psutil.Error):
                    self.other_peak_mb = max(self.other_peak_mb, psutil.Process(self.other).memory_info().rss / 2**20)
            self._stop.wait(self.every)


# --------------------------------------------------------------------------------------------- Milvus server
def _in_loopback_netns() -> bool:
    from audiovec.testing._milvus_server import only_loopback_interfaces

    return only_loopback_interfaces()


def _reexec_in_netns() -> int:
    """Run this same command inside a new loopback-only network namespace (for the Milvus server)."""
    inner = " ".join(_sh_quote(a) for a in [sys.executable, *sys.argv])
    env = {**os.environ, _REEXEC_ENV: "1"}
    print("re-executing inside a loopback-only network namespace (unshare -n) for the Milvus server", flush=True)
    return subprocess.call(["unshare", "-n", "sh", "-c", f"ip link set lo up && exec {inner}"], env=env)


def _sh_quote(s: str) -> str:
    import shlex

    return shlex.quote(s)


def start_server(data_dir: Path) -> Any:
    import socket

    from audiovec.testing._milvus_server import MilvusServer

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    shutil.rmtree(data_dir, ignore_errors=True)
    server = MilvusServer(extra_config={"common.gracefulStopTimeout": 3})
    t0 = time.perf_counter()
    server.start(data_dir, port=port, timeout=240)
    print(f"Milvus server at {server.uri} (pid {server.pid}, {time.perf_counter() - t0:.0f} s to start)", flush=True)
    return server


# --------------------------------------------------------------------------------------------- part a
def _index_cmd(corpus: Path, collection: Path, store: str, uri: str | None) -> list[str]:
    exe = Path(sys.executable).with_name("audiovec")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "audiovec"]
    cmd += [
        "index",
        str(corpus),
        "--collection",
        str(collection),
        "--workers",
        "2",
        "-e",
        "mfcc",
        "--index",
        "hnsw",
        "--label-from",
        "{label}/*",
        "--no-progress",
    ]
    if store == "milvus":
        cmd += ["--store", "milvus", "--milvus-uri", str(uri)]
    return cmd


def run_monitored(
    cmd: list[str],
    server_pid: int | None,
    timeout: float,
    kill_after: float | None = None,
    log: Path | None = None,
    pin_threads: bool = False,
) -> dict[str, Any]:
    """Run ``cmd`` in its own process group, sampling RSS; SIGKILL the group at ``kill_after`` seconds."""
    import psutil

    load0 = _load()
    c0 = _cpu_children()
    out = open(log, "w") if log else subprocess.DEVNULL  # noqa: SIM115
    env = {**os.environ, "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    if pin_threads:  # the raw baselines: one BLAS/OpenMP thread per process, as audiovec gives its workers
        env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env)
    killed = timed_out = False
    with TreeMonitor(proc.pid, server_pid) as mon:
        limit = kill_after if kill_after is not None else timeout
        try:
            proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            group = [proc.pid] + [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
            os.killpg(proc.pid, signal.SIGKILL)  # the process group this script created
            proc.wait()
            killed, timed_out = kill_after is not None, kill_after is None
            deadline = time.monotonic() + 30
            while any(_alive(p) for p in group):
                if time.monotonic() > deadline:
                    break
                time.sleep(0.2)
    wall = time.perf_counter() - t0
    if log:
        out.close()
    text = log.read_text(errors="replace") if log else ""
    summary = next((ln for ln in text.splitlines() if " files: added " in ln), "")
    return {
        "returncode": proc.returncode,
        "killed_at_s": round(wall, 1) if killed else None,
        "timed_out": timed_out,
        "wall_s": round(wall, 2),
        "cpu_s": round(_cpu_children() - c0, 1),
        "peak_tree_rss_mb": round(mon.peak_mb, 1),
        "max_processes_in_tree": mon.peak_procs,
        "server_peak_rss_mb": round(mon.other_peak_mb, 1) if server_pid else None,
        "summary_line": summary,
        "parsed": _parse_summary(summary),
        "log_tail": text.strip().splitlines()[-5:] if (proc.returncode and not killed) else [],
        "load_avg_before": load0,
        "load_avg_after": _load(),
    }


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _parse_summary(line: str) -> dict[str, float]:
    import re

    out: dict[str, float] = {}
    for key, pat in (
        ("added", r"added (\d+)"),
        ("skipped", r"skipped (\d+)"),
        ("failed", r"failed (\d+)"),
        ("seconds", r"; ([\d.]+) s \("),
        ("files_per_s", r"\(([\d.]+) files/s\)"),
    ):
        m = re.search(pat, line)
        if m:
            out[key] = float(m.group(1))
    return out


def _drop_milvus(uri: str | None, collection: str) -> None:
    from pymilvus import MilvusClient

    client = MilvusClient(uri)
    try:
        if client.has_collection(collection):
            client.drop_collection(collection)
    finally:
        client.close()


def _milvus_pks(uri: str, collection: str) -> list[str]:
    from pymilvus import MilvusClient

    client = MilvusClient(uri)
    try:
        it = client.query_iterator(collection, batch_size=10000, filter="", output_fields=["id"])
        pks: list[str] = []
        while True:
            rows = it.next()
            if not rows:
                break
            pks += [r["id"] for r in rows]
        it.close()
        return pks
    finally:
        client.close()


def collection_ids(col: Any) -> dict[str, Any]:
    """Every stored id, read from the store's own records; duplicates counted."""
    if col.config.store.backend == "faiss":
        db = sqlite3.connect(f"file:{col.root / 'store' / 'meta.sqlite'}?mode=ro", uri=True)
        ids = [u for (u,) in db.execute("SELECT uid FROM records")]
        db.close()
        store = col.store
        extra = {"faiss_ntotal": int(store.ntotal), "faiss_tombstones": int(store.tombstones)}
    else:
        ids = _milvus_pks(col.settings.milvus_uri, col.settings.milvus_prefix + col.name)
        extra = {}
    return {"ids": ids, "n_ids": len(ids), "unique_ids": len(set(ids)), "duplicates": len(ids) - len(set(ids)), **extra}


def search_checks(col_dir: Path, queries: list[Path], n_files: int) -> dict[str, Any]:
    import numpy as np

    from audiovec.service.collection import Collection
    from audiovec.stores import exact_search
    from audiovec.stores.validation import prepare_vectors

    col = Collection.open(col_dir)
    try:
        count = col.store.count()
        idinfo = collection_ids(col)
        ids = idinfo.pop("ids")
        for q in queries[:10]:  # warm-up (embedder, store caches)
            col.search(q, k=K)
        e2e, label_hits, label_total = [], 0, 0
        for q in queries:
            t0 = time.perf_counter()
            hits = col.search(q, k=K)
            e2e.append(time.perf_counter() - t0)
            label_hits += sum(h["metadata"].get("label") == q.parent.name for h in hits)
            label_total += len(hits)
        qv = np.stack([col.embed(q.read_bytes(), q.name, query=True).pooled.vectors[0] for q in queries])
        store_lat, got = [], []
        for v in qv:
            t0 = time.perf_counter()
            hits = col.store.search(v, k=K)[0]
            store_lat.append(time.perf_counter() - t0)
            got.append([h.id for h in hits])
        t0 = time.perf_counter()
        vecs, read_ids = [], []
        for s in range(0, len(ids), 4096):
            recs = col.store.get(ids[s : s + 4096])
            vecs.append(np.stack([r.vector for r in recs]))
            read_ids += [r.id for r in recs]
        ids = read_ids
        base = np.concatenate(vecs)
        read_s = time.perf_counter() - t0
        dim = base.shape[1]
        _, rows = exact_search(
            prepare_vectors(qv, dim, normalize=True), prepare_vectors(base, dim, normalize=True), K, "cosine"
        )
        truth = [[ids[int(j)] for j in r if j >= 0] for r in rows]
        recall = statistics.mean(len(set(g) & set(t)) / len(t) for g, t in zip(got, truth, strict=True))
        return {
            "count": count,
            "count_equals_files": count == n_files,
            **idinfo,
            "queries": len(queries),
            "k": K,
            "e2e_search_p50_ms": _pct(e2e, 50),
            "e2e_search_p95_ms": _pct(e2e, 95),
            "store_search_p50_ms": _pct(store_lat, 50),
            "store_search_p95_ms": _pct(store_lat, 95),
            "recall_at_10_vs_exact": round(recall, 4),
            "label_precision_at_10": round(label_hits / max(1, label_total), 4),
            "vector_dim": dim,
            "read_back_vectors_s": round(read_s, 1),
        }
    finally:
        col.close()


def final_checks(col_dir: Path, n_files: int) -> dict[str, Any]:
    from audiovec.service.collection import Collection

    col = Collection.open(col_dir)
    try:
        count = col.store.count()
        info = collection_ids(col)
        info.pop("ids")
        failures = col_dir / "failures.jsonl"
        n_fail = len(failures.read_text().splitlines()) if failures.exists() else 0
        ok = count == n_files and info["duplicates"] == 0 and info["n_ids"] == n_files
        if "faiss_ntotal" in info:
            ok = ok and info["faiss_ntotal"] - info["faiss_tombstones"] == n_files
        return {"count": count, "files": n_files, **info, "failures_recorded": n_fail, "ok": ok}
    finally:
        col.close()


def _count_now(col_dir: Path) -> int | None:
    from audiovec.service.collection import Collection

    try:
        col = Collection.open(col_dir)
    except Exception:  # killed before the collection was written
        return None
    try:
        return int(col.store.count())
    finally:
        col.close()


# raw baseline ---------------------------------------------------------------------------------------------------
_RAW_EMB: Any = None


def _raw_init(kind: str) -> None:
    global _RAW_EMB
    if kind == "embed":
        from audiovec import get_embedder

        _RAW_EMB = get_embedder("mfcc")


def _raw_embed(job: tuple[str, str]) -> tuple[str, Any, dict[str, Any]]:
    import hashlib

    import librosa
    import numpy as np
    import soundfile as sf
    import soxr

    path, rel = job
    data = Path(path).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    import io

    x, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    y = x[:, 0] if x.shape[1] == 1 else x.mean(axis=1, dtype=np.float32)
    if sr != 16000:
        y = soxr.resample(y, sr, 16000, quality="HQ")
    if len(y) < 400:
        y = np.pad(y, (0, 400 - len(y)))
    if _RAW_EMB is not None:  # kind "embed": the embedder's own embed() on the decoded audio
        from audiovec import Audio

        m = _RAW_EMB.embed(Audio.from_array(y, 16000)).vectors
    else:
        mel = librosa.feature.melspectrogram(y=y, sr=16000, n_fft=400, hop_length=160, center=False, n_mels=64)
        m = librosa.feature.mfcc(S=librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None), n_mfcc=20).T
    v = m.mean(axis=0)
    v = (v / (np.linalg.norm(v) or 1.0)).astype(np.float32)
    label = rel.split("/")[0]
    meta = {
        "folder": Path(path).parent.name,
        "label": label,
        "_item": digest[:32],
        "_segments": 1,
        "_duration": round(len(y) / 16000, 6),
        "_sha256": digest,
        "_segment": 0,
        "_start": 0.0,
        "_end": round(len(y) / 16000, 6),
        "_file": Path(path).name,
        "_path": path,
        "_added": time.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    return digest[:32] + "#0", v, meta


def raw_index(corpus: Path, out_dir: Path, kind: str) -> None:
    """The raw baseline (see the module docs); run as a subprocess."""
    import multiprocessing

    import faiss
    import numpy as np

    faiss.omp_set_num_threads(2)
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    files = sorted(p for p in corpus.rglob("*.flac") if p.is_file())
    jobs = [(str(p), p.relative_to(corpus).as_posix()) for p in files]
    hnsw = faiss.IndexHNSWFlat(20, 32, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = 128
    index = faiss.IndexIDMap2(hnsw)
    db = sqlite3.connect(str(out_dir / "meta.sqlite"), isolation_level=None)
    db.execute("CREATE TABLE records (fid INTEGER PRIMARY KEY, uid NOT NULL UNIQUE, meta TEXT NOT NULL)")
    batch: list[tuple[str, Any, dict[str, Any]]] = []
    next_fid, last_save = 0, time.monotonic()

    def flush() -> None:
        nonlocal next_fid, batch
        if not batch:
            return
        fids = np.arange(next_fid, next_fid + len(batch), dtype=np.int64)
        index.add_with_ids(np.stack([v for _, v, _ in batch]), fids)
        db.execute("BEGIN")
        db.executemany(
            "INSERT INTO records VALUES (?, ?, ?)",
            [(int(f), u, json.dumps(m)) for f, (u, _, m) in zip(fids, batch, strict=True)],
        )
        db.execute("COMMIT")
        next_fid += len(batch)
        batch = []

    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2, _raw_init, (kind,)) as pool:
        for item in pool.imap(_raw_embed, jobs, chunksize=16):
            batch.append(item)
            if len(batch) >= 2048:
                flush()
            if time.monotonic() - last_save > 60:
                faiss.write_index(index, str(out_dir / "index.faiss"))
                last_save = time.monotonic()
    flush()
    faiss.write_index(index, str(out_dir / "index.faiss"))
    db.close()
    print(f"raw: {index.ntotal} vectors")


def part_a(args: argparse.Namespace) -> dict[str, Any]:
    corpus, qdir = args.corpus.resolve(), args.queries.resolve()
    n_files = sum(1 for p in corpus.rglob("*.flac") if p.is_file())
    queries = sorted(qdir.rglob("*.flac"))[: args.n_queries]
    work = args.workdir / "a"
    work.mkdir(parents=True, exist_ok=True)
    stores = [s for s in args.stores.split(",") if s]
    server = None
    out: dict[str, Any] = {
        "corpus": str(corpus),
        "files": n_files,
        "corpus_disk_mb": _du_mb(corpus),
        "queries_dir": str(qdir),
        "queries": len(queries),
        "command": " ".join(_index_cmd(corpus, work / "STORE_clean", "faiss", None)),
        "kill_frac": args.kill_frac,
        "results": {},
    }
    report_path = corpus.with_name(corpus.name + ".report.json")
    if report_path.exists():
        out["corpus_report"] = {k: v for k, v in json.loads(report_path.read_text()).items() if k != "labels"}
    t0 = time.perf_counter()
    for f in [*corpus.rglob("*.flac"), *queries]:  # every run reads from the page cache, the first one too
        f.read_bytes()
    out["page_cache_warmup_s"] = round(time.perf_counter() - t0, 1)
    try:
        if "milvus" in stores:
            server = start_server(work / "milvus-server")
        for store in stores:
            res: dict[str, Any] = {}
            uri = server.uri if server is not None else None
            spid = server.pid if (server is not None and store == "milvus") else None
            sdata = work / "milvus-server"
            clean = work / f"{store}_clean"
            shutil.rmtree(clean, ignore_errors=True)
            disk0 = _du_mb(sdata) if store == "milvus" else 0.0
            print(f"[a] {store}: clean index run of {n_files} files", flush=True)
            run = run_monitored(
                _index_cmd(corpus, clean, store, uri), spid, args.timeout, log=work / f"{store}_clean.log"
            )
            run["files_per_s"] = round(n_files / run["wall_s"], 1)
            run["collection_disk_mb"] = _du_mb(clean)
            if store == "milvus":
                from pymilvus import MilvusClient

                client = MilvusClient(uri)  # seal what is still growing, so the disk figure covers every row
                client.flush(f"audiovec_{clean.name}")
                client.close()
                time.sleep(2)
                run["server_data_growth_mb"] = round(_du_mb(sdata) - disk0, 1)
            res["clean"] = run
            print(
                f"    {run['wall_s']} s ({run['files_per_s']} files/s), peak tree RSS {run['peak_tree_rss_mb']} MB, "
                f"load {run['load_avg_before']}",
                flush=True,
            )
            if run["returncode"] == 0:
                res["search"] = search_checks(clean, queries, n_files)
                print(f"    search: {json.dumps(res['search'])}", flush=True)
            if args.raw and store == stores[0]:
                out["raw_baseline"], out["clean_vs_raw"] = {}, {}
                for kind in [k for k in args.raw_kinds.split(",") if k]:
                    print(f"[a] raw baseline ({kind})", flush=True)
                    raw_dir = work / f"raw_{kind}"
                    cmd = [
                        sys.executable,
                        __file__,
                        "--raw-worker",
                        str(corpus),
                        "--raw-out",
                        str(raw_dir),
                        "--raw-kind",
                        kind,
                    ]
                    raw = run_monitored(cmd, None, args.timeout, log=work / f"raw_{kind}.log", pin_threads=True)
                    raw["files_per_s"] = round(n_files / raw["wall_s"], 1)
                    raw["disk_mb"] = _du_mb(raw_dir)
                    out["raw_baseline"][kind] = raw
                    out["clean_vs_raw"][kind] = {
                        "store": store,
                        "files_per_s_ratio_audiovec_over_raw": round(run["files_per_s"] / raw["files_per_s"], 3),
                        "cpu_ratio_audiovec_over_raw": round(run["cpu_s"] / raw["cpu_s"], 3) if raw["cpu_s"] else None,
                        "note": f"one run each ({n_files:,} files), not repeated",
                    }
                    print(
                        f"    raw {kind}: {raw['wall_s']} s ({raw['files_per_s']} files/s), cpu {raw['cpu_s']} s",
                        flush=True,
                    )
            # resume after kill -9
            resume = work / f"{store}_resume"
            shutil.rmtree(resume, ignore_errors=True)
            kill_at = args.kill_after or max(5.0, args.kill_frac * run["wall_s"])
            print(f"[a] {store}: kill -9 at {kill_at:.0f} s, then resume", flush=True)
            cmd = _index_cmd(corpus, resume, store, uri)
            attempts = []
            for _ in range(3):  # a run that finishes before the kill is retried, killed at half the time
                shutil.rmtree(resume, ignore_errors=True)
                if store == "milvus":
                    _drop_milvus(uri, f"audiovec_{resume.name}")
                first = run_monitored(cmd, spid, args.timeout, kill_after=kill_at, log=work / f"{store}_killed.log")
                first["count_after_kill"] = _count_now(resume)
                attempts.append(
                    {
                        "kill_at_s": round(kill_at, 1),
                        "killed": first["killed_at_s"] is not None,
                        "wall_s": first["wall_s"],
                        "count_after_kill": first["count_after_kill"],
                    }
                )
                if first["killed_at_s"] is not None:
                    break
                kill_at /= 2
                print(f"    finished before the kill; again, kill at {kill_at:.0f} s", flush=True)
            first["kill_attempts"] = attempts
            second = run_monitored(cmd, spid, args.timeout, log=work / f"{store}_resume.log")
            checks = final_checks(resume, n_files)
            res["resume"] = {
                "killed_run": first,
                "resume_run": second,
                "time_to_resume_s": second["wall_s"],
                "final": checks,
            }
            print(
                f"    killed at {first['killed_at_s']} s with {first['count_after_kill']} stored; resume "
                f"{second['wall_s']} s ({second['summary_line']}); final ok={checks['ok']}",
                flush=True,
            )
            out["results"][store] = res
            if store == "milvus" and not args.keep:
                from pymilvus import MilvusClient

                client = MilvusClient(uri)
                for c in client.list_collections():
                    client.drop_collection(c)
                client.close()
    finally:
        if server is not None:
            server.stop(15.0)
    return out


# --------------------------------------------------------------------------------------------- part b
def b_backends() -> dict[str, dict[str, Any]]:
    return {
        "faiss-hnsw": {"store": "faiss", "index": {"kind": "hnsw", "m": 16, "ef_construction": 64, "ef_search": 64}},
        "faiss-ivf_pq": {
            "store": "faiss",
            "index": {"kind": "ivf_pq", "nlist": 1024, "nprobe": 32, "pq_m": 64, "pq_nbits": 8},
            "train": 39 * 1024,
        },
        "milvus-server-hnsw": {
            "store": "milvus",
            "index": {"kind": "hnsw", "m": 16, "ef_construction": 64, "ef_search": 64},
        },
    }


def clustered_chunked(n: int, dim: int, n_queries: int, seed: int, out_base: Path) -> Any:
    """``clustered_vectors``'s generator, written in chunks to ``out_base`` (a .npy); returns the queries."""
    import numpy as np

    rng = np.random.default_rng(seed)
    latent = min(dim, 48)
    proj = rng.standard_normal((latent, dim)) / math.sqrt(latent)
    offset = 0.3 * rng.standard_normal(dim)
    n_classes = max(4, round(math.sqrt(n) / 2))
    class_p = rng.dirichlet(np.full(n_classes, 2.0))
    centers = rng.standard_normal((n_classes, latent))

    def files(m: int) -> Any:
        cls = rng.choice(n_classes, size=m, p=class_p)
        return centers[cls] + 1.0 * rng.standard_normal((m, latent))

    def segments(fc: Any, m: int) -> Any:
        f = rng.integers(0, len(fc), size=m)
        z = fc[f] + 0.5 * rng.standard_normal((m, latent))
        return (z @ proj + offset + 0.05 * rng.standard_normal((m, dim))).astype(np.float32)

    base_files = files(max(1, n // 8))
    mm = np.lib.format.open_memmap(out_base, mode="w+", dtype=np.float32, shape=(n, dim))
    for s in range(0, n, 100_000):
        mm[s : s + 100_000] = segments(base_files, min(100_000, n - s))
    mm.flush()
    del mm
    half = n_queries // 2
    return np.concatenate([segments(base_files, half), segments(files(max(1, n_queries)), n_queries - half)])


def exact_topk(base: Any, queries: Any, k: int) -> Any:
    """Exact cosine top-k ids (row numbers) of every query over ``base`` (chunked)."""
    import numpy as np

    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    best_s = np.full((len(q), k), -np.inf, np.float32)
    best_i = np.zeros((len(q), k), np.int64)
    for s in range(0, len(base), 100_000):
        x = np.asarray(base[s : s + 100_000], dtype=np.float32)
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
        sc = q @ x.T
        top = np.argpartition(-sc, k, axis=1)[:, :k]
        cand_s = np.concatenate([best_s, np.take_along_axis(sc, top, 1)], axis=1)
        cand_i = np.concatenate([best_i, top + s], axis=1)
        order = np.argsort(-cand_s, axis=1)[:, :k]
        best_s, best_i = np.take_along_axis(cand_s, order, 1), np.take_along_axis(cand_i, order, 1)
    return best_i


def _meta(i: int) -> dict[str, Any]:
    return {"label": f"class_{i % 50:02d}", "path": f"/data/audio/file_{i // 8:06d}.wav", "segment": i % 8}


def _peak_rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def b_worker(args: argparse.Namespace) -> dict[str, Any]:
    import faiss
    import numpy as np

    from audiovec.stores import get_store

    faiss.omp_set_num_threads(args.threads)
    work = Path(args.workdir)
    base = np.load(work / "base.npy")
    queries = np.load(work / "queries.npy")
    gt = np.load(work / "gt.npy")
    n, dim = base.shape
    spec = b_backends()[args.b_worker]
    rss_data = _rss_mb()
    milvus = spec["store"] == "milvus"
    path = work / args.b_worker
    shutil.rmtree(path, ignore_errors=True)
    kwargs: dict[str, Any] = {"dim": dim, "metric": "cosine", "index": spec["index"]}
    if milvus:
        kwargs.update(uri=args.milvus_uri, collection=args.b_worker.replace("-", "_"), timeout=900)
    else:
        kwargs.update(path=path, threads=args.threads)
    store = get_store(spec["store"], **kwargs)
    c0 = time.process_time()
    t_start = time.perf_counter()
    train_s = 0.0
    if spec.get("train"):
        t0 = time.perf_counter()
        store.train(base[: spec["train"]])  # type: ignore[attr-defined]
        train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    inserted, stopped = 0, False
    for s in range(0, n, args.batch):
        e = min(s + args.batch, n)
        store.add(base[s:e], ids=np.arange(s, e, dtype=np.int64), metadata=[_meta(i) for i in range(s, e)])
        inserted = e
        if time.perf_counter() - t_start > args.budget_s and e < n:
            stopped = True
            break
    insert_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    store.save()
    save_s = time.perf_counter() - t0
    flush_s = 0.0
    flush_error = None
    if milvus:
        t0 = time.perf_counter()
        try:
            remaining = max(60.0, args.budget_s + 600 - (time.perf_counter() - t_start))
            store.flush(wait_for_index=True, timeout=remaining)  # type: ignore[attr-defined]
        except Exception as err:
            flush_error = f"{type(err).__name__}: {err}"
        flush_s = time.perf_counter() - t0
    build_s = time.perf_counter() - t_start
    build_cpu = time.process_time() - c0
    count = store.count()
    if stopped:  # ground truth over what was inserted
        gt = exact_topk(base[:inserted], queries, K)
    for i in range(20):
        store.search(queries[i % len(queries)], k=K)
    lat, got = [], []
    for q in queries:
        t0 = time.perf_counter()
        hits = store.search(q, k=K)[0]
        lat.append(time.perf_counter() - t0)
        got.append([int(h.id) for h in hits])
    recall = statistics.mean(len(set(g) & set(t.tolist())) / K for g, t in zip(got, gt, strict=True))
    peak = _peak_rss_mb()
    vs_raw = compare_raw(args, store, path, base, queries, spec) if args.compare_rounds else None
    store.close()
    disk = None if milvus else _du_mb(path)
    if milvus:
        get_store("milvus", uri=args.milvus_uri, collection=kwargs["collection"]).drop()  # type: ignore[attr-defined]
    else:
        shutil.rmtree(path, ignore_errors=True)
    return {
        "backend": args.b_worker,
        "index": spec["index"],
        "n_requested": n,
        "n_inserted": inserted,
        "count": count,
        "scaled_down": stopped,
        "dim": dim,
        "threads": args.threads,
        "train_vectors": spec.get("train", 0),
        "train_s": round(train_s, 2),
        "insert_s": round(insert_s, 2),
        "insert_vps": round(inserted / insert_s, 1),
        "insert_batch": args.batch,
        "save_s": round(save_s, 2),
        "flush_index_s": round(flush_s, 2),
        "flush_error": flush_error,
        "build_s": round(build_s, 2),
        "build_cpu_s": round(build_cpu, 1),
        "latency_p50_ms": _pct(lat, 50),
        "latency_p95_ms": _pct(lat, 95),
        "queries": len(queries),
        "recall_at_10": round(recall, 4),
        "rss_after_data_mb": round(rss_data, 1),
        "peak_rss_mb": round(peak, 1),
        "peak_rss_minus_data_mb": round(peak - rss_data, 1),
        "disk_mb": disk,
        **({"vs_raw": vs_raw} if vs_raw else {}),
    }


def compare_raw(
    args: argparse.Namespace, store: Any, path: Path, base: Any, queries: Any, spec: dict[str, Any]
) -> dict[str, Any]:
    """audiovec against the raw library on the same index: single queries (and HNSW inserts), interleaved."""
    import faiss

    idx = spec["index"]
    rounds = args.compare_rounds
    if spec["store"] == "faiss":
        (index_file,) = path.glob("index-*.faiss")
        index = faiss.read_index(str(index_file))
        if idx["kind"] == "hnsw":
            params: Any = faiss.SearchParametersHNSW()
            params.efSearch = idx["ef_search"]
        else:
            params = faiss.SearchParametersIVF()
            params.nprobe = idx["nprobe"]

        def raw(q: Any) -> Any:
            x = q.reshape(1, -1).copy()
            faiss.normalize_L2(x)
            return index.search(x, K, params=params)

        raw_what = "faiss index.search on the saved index (normalize_L2 on a copy, same ef/nprobe)"
    else:
        from pymilvus import MilvusClient

        client = MilvusClient(args.milvus_uri)
        coll = store._collection
        sp = store._search_params(K, type("P", (), {"ef_search": None, "nprobe": None})())
        read = store._read_kwargs(True)

        def raw(q: Any) -> Any:
            return client.search(
                coll,
                data=[q.tolist()],
                limit=K,
                output_fields=["metadata"],
                search_params=sp,
                anns_field="vector",
                **read,
            )

        raw_what = "pymilvus MilvusClient.search, same params, output field and consistency"
    sides = {"audiovec": lambda q: store.search(q, k=K), "raw": raw}
    samples: dict[str, list[float]] = {s: [] for s in sides}
    for q in queries[:20]:
        for fn in sides.values():
            fn(q)
    names = list(sides)
    for r in range(rounds):
        for i, q in enumerate(queries):
            order = names if (r + i) % 2 == 0 else names[::-1]
            for name in order:
                t0 = time.perf_counter()
                sides[name](q)
                samples[name].append(time.perf_counter() - t0)
    av, rw = statistics.median(samples["audiovec"]), statistics.median(samples["raw"])
    out: dict[str, Any] = {
        "query": {
            "rounds": rounds,
            "calls_per_side": len(samples["raw"]),
            "raw": raw_what,
            "audiovec_ms": round(av * 1000, 4),
            "raw_ms": round(rw * 1000, 4),
            "ratio": round(av / rw, 3),
        }
    }
    if spec["store"] == "faiss":
        del index  # the second copy of the index
    if spec["store"] == "faiss" and idx["kind"] == "hnsw":
        out["insert"] = _compare_hnsw_insert(base[: args.compare_insert], idx, rounds)
    return out


def _compare_hnsw_insert(x: Any, idx: dict[str, Any], rounds: int) -> dict[str, Any]:
    import faiss
    import numpy as np

    from audiovec.stores import FaissStore

    n, dim, batch = len(x), x.shape[1], 10_000
    ids = np.arange(n, dtype=np.int64)

    def audiovec() -> float:
        store = FaissStore(dim=dim, metric="cosine", index=idx)
        t0 = time.perf_counter()
        for s in range(0, n, batch):
            store.add(
                x[s : s + batch], ids=ids[s : s + batch], metadata=[_meta(i) for i in range(s, min(s + batch, n))]
            )
        el = time.perf_counter() - t0
        store.close()
        return el

    def raw() -> float:
        db = sqlite3.connect(":memory:", isolation_level=None)
        db.execute("CREATE TABLE records (fid INTEGER PRIMARY KEY, uid NOT NULL UNIQUE, meta TEXT NOT NULL)")
        h = faiss.IndexHNSWFlat(dim, idx["m"], faiss.METRIC_INNER_PRODUCT)
        h.hnsw.efConstruction = idx["ef_construction"]
        index = faiss.IndexIDMap2(h)
        t0 = time.perf_counter()
        for s in range(0, n, batch):
            xb = x[s : s + batch].copy()
            faiss.normalize_L2(xb)
            f = ids[s : s + batch]
            index.add_with_ids(xb, f)
            db.execute("BEGIN")
            db.executemany(
                "INSERT INTO records VALUES (?, ?, ?)", [(int(i), int(i), json.dumps(_meta(int(i)))) for i in f]
            )
            db.execute("COMMIT")
        el = time.perf_counter() - t0
        db.close()
        return el

    t: dict[str, list[float]] = {"audiovec": [], "raw": []}
    for r in range(rounds):
        order = [("audiovec", audiovec), ("raw", raw)]
        for name, fn in order if r % 2 == 0 else order[::-1]:
            t[name].append(fn())
    av, rw = statistics.median(t["audiovec"]), statistics.median(t["raw"])
    return {
        "vectors": n,
        "batch": batch,
        "rounds": rounds,
        "audiovec_s": round(av, 2),
        "raw_s": round(rw, 2),
        "ratio": round(av / rw, 3),
        "audiovec_all_s": [round(v, 2) for v in t["audiovec"]],
        "raw_all_s": [round(v, 2) for v in t["raw"]],
        "raw": "faiss IndexIDMap2(IndexHNSWFlat) + normalize_L2 + json.dumps + SQLite executemany per batch",
    }


def part_b(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np

    names = [b for b in args.backends.split(",") if b]
    work = args.workdir / "b"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    t0 = time.perf_counter()
    queries = clustered_chunked(args.n, args.dim, args.n_queries, args.seed, work / "base.npy")
    gen_s = time.perf_counter() - t0
    np.save(work / "queries.npy", queries)
    t0 = time.perf_counter()
    gt = exact_topk(np.load(work / "base.npy", mmap_mode="r"), queries, K)
    gt_s = time.perf_counter() - t0
    np.save(work / "gt.npy", gt)
    print(
        f"[b] {args.n:,} x {args.dim} vectors in {gen_s:.0f} s, exact top-10 of {len(queries)} queries in {gt_s:.0f} s",
        flush=True,
    )
    server = None
    rows = []
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(args.threads),
        "OPENBLAS_NUM_THREADS": str(args.threads),
        "MKL_NUM_THREADS": str(args.threads),
        "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    try:
        for name in names:
            spec = b_backends()[name]
            cmd = [
                sys.executable,
                __file__,
                "--b-worker",
                name,
                "--workdir",
                str(work),
                "--threads",
                str(args.threads),
                "--batch",
                str(args.batch),
                "--budget-s",
                str(args.budget_s),
                "--compare-rounds",
                str(args.compare_rounds),
                "--compare-insert",
                str(args.compare_insert),
            ]
            spid = None
            sdata = args.workdir / "b-milvus-server"
            if spec["store"] == "milvus":
                server = server or start_server(sdata)
                cmd += ["--milvus-uri", server.uri]
                spid = server.pid
            disk0 = _du_mb(sdata) if spid else 0.0
            load0 = _load()
            t0 = time.perf_counter()
            print(f"[b] {name} ...", flush=True)
            with TreeMonitor(os.getpid(), spid, every=1.0) as mon:
                try:
                    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=args.budget_s + 1800)
                    if done.returncode:
                        row: dict[str, Any] = {"backend": name, "error": done.stderr.strip()[-3000:]}
                    else:
                        row = json.loads(done.stdout.strip().splitlines()[-1])
                except subprocess.TimeoutExpired:
                    row = {"backend": name, "error": f"timed out after {args.budget_s + 1800} s"}
            row["worker_wall_s"] = round(time.perf_counter() - t0, 1)
            if spid:
                row["server_peak_rss_mb"] = round(mon.other_peak_mb, 1)
                row["server_data_growth_mb_after_drop"] = round(_du_mb(sdata) - disk0, 1)
            row["load_avg_before"], row["load_avg_after"] = load0, _load()
            rows.append(row)
            print(f"    {json.dumps({k: v for k, v in row.items() if k not in ('index',)})[:900]}", flush=True)
    finally:
        if server is not None:
            server.stop(15.0)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return {
        "n": args.n,
        "dim": args.dim,
        "queries": args.n_queries,
        "generator": "clustered_vectors' generator (audiovec.testing._store_checks), chunked",
        "seed": args.seed,
        "generate_s": round(gen_s, 1),
        "ground_truth_s": round(gt_s, 1),
        "threads": args.threads,
        "budget_s": args.budget_s,
        "metadata": "{label, path, segment} per vector",
        "results": rows,
    }


# --------------------------------------------------------------------------------------------- report
def markdown(result: dict[str, Any]) -> str:
    out = ["# Scale runs", "", f"Host: {result.get('host', {})}; created {result.get('updated')}.", ""]
    a = result.get("a")
    if a:
        out += [
            f"## a. `audiovec index` of {a['files']:,} files ({a.get('corpus_report', {}).get('audio_hours', '?')} h "
            f"of audio, corpus {a['corpus_disk_mb']:,.0f} MB), mfcc, HNSW, --workers 2",
            "",
            "| store | files/s | wall s | CPU s | peak RSS tree MB | server peak RSS MB | disk MB | e2e p50/p95 ms "
            "| store p50/p95 ms | recall@10 | kill at s / kept | resume s | final ok | load avg (1 min) |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for store, r in a["results"].items():
            c, s, rs = r["clean"], r.get("search", {}), r.get("resume", {})
            disk = c["collection_disk_mb"] + (c.get("server_data_growth_mb") or 0)
            k = rs.get("killed_run", {})
            out.append(
                f"| {store} | {c['files_per_s']} | {c['wall_s']} | {c['cpu_s']} | {c['peak_tree_rss_mb']:,.0f} | "
                f"{c.get('server_peak_rss_mb') or '-'} | {disk:,.1f} | {s.get('e2e_search_p50_ms')}/"
                f"{s.get('e2e_search_p95_ms')} | {s.get('store_search_p50_ms')}/{s.get('store_search_p95_ms')} | "
                f"{s.get('recall_at_10_vs_exact')} | {k.get('killed_at_s')} / {k.get('count_after_kill')} | "
                f"{rs.get('time_to_resume_s')} | {rs.get('final', {}).get('ok')} | {c['load_avg_before'][0]} |"
            )
        for kind, rb in (a.get("raw_baseline") or {}).items():
            out.append(
                f"| raw ({kind}, faiss + SQLite, 2 procs) | {rb['files_per_s']} | {rb['wall_s']} | {rb['cpu_s']} | "
                f"{rb['peak_tree_rss_mb']:,.0f} | - | {rb['disk_mb']} | - | - | - | - | - | - | "
                f"{rb['load_avg_before'][0]} |"
            )
        out.append("")
        for kind, c in (a.get("clean_vs_raw") or {}).items():
            out.append(
                f"audiovec / raw {kind} (clean run, {c['store']}): files/s {c['files_per_s_ratio_audiovec_over_raw']}, "
                f"CPU {c['cpu_ratio_audiovec_over_raw']} ({c['note']})."
            )
        out.append("")
    b = result.get("b")
    if b:
        out += [
            f"## b. {b['n']:,} x {b['dim']}-d clustered vectors, {b['threads']} threads, k=10, {b['queries']} queries",
            "",
            "| backend | vectors | insert v/s | build s | peak RSS MB (worker - data) | server peak RSS MB | disk MB "
            "| p50 ms | p95 ms | recall@10 | query audiovec/raw | insert audiovec/raw | load avg |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in b["results"]:
            if "error" in r:
                out.append(f"| {r['backend']} | ERROR: {r['error'][-120:]!r} |" + " |" * 11)
                continue
            vs = r.get("vs_raw", {})
            out.append(
                f"| {r['backend']} | {r['n_inserted']:,}{' (scaled down)' if r['scaled_down'] else ''} | "
                f"{r['insert_vps']:,.0f} | {r['build_s']} | "
                f"{r['peak_rss_mb']:,.0f} ({r['peak_rss_minus_data_mb']:,.0f}) | "
                f"{r.get('server_peak_rss_mb', '-')} | {r['disk_mb'] if r['disk_mb'] is not None else '-'} | "
                f"{r['latency_p50_ms']} | {r['latency_p95_ms']} | {r['recall_at_10']} | "
                f"{vs.get('query', {}).get('ratio', '-')} | {vs.get('insert', {}).get('ratio', '-')} | "
                f"{r['load_avg_before'][0]} |"
            )
        out.append("")
    return "\n".join(out)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--part", choices=["a", "b"], default=None)
    p.add_argument("--report", action="store_true", help="only write scale.md from scale.json")
    p.add_argument("--corpus", type=Path, default=Path("/work/corpus/c100k"))
    p.add_argument("--queries", type=Path, default=Path("/work/corpus/c100k_queries"))
    p.add_argument("--n-queries", type=int, default=200)
    p.add_argument("--stores", default="faiss,milvus")
    p.add_argument("--raw", action=argparse.BooleanOptionalAction, default=True, help="part a: the raw baselines")
    p.add_argument("--raw-kinds", default="embed,librosa", help="part a: raw baselines (embed, librosa)")
    p.add_argument("--kill-frac", type=float, default=0.5)
    p.add_argument("--kill-after", type=float, default=None, help="seconds (default: kill-frac x the clean run)")
    p.add_argument("--timeout", type=float, default=3600, help="seconds per index run")
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--backends", default="faiss-hnsw,faiss-ivf_pq,milvus-server-hnsw")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=10_000)
    p.add_argument("--budget-s", type=float, default=1500.0)
    p.add_argument("--compare-rounds", type=int, default=3)
    p.add_argument("--compare-insert", type=int, default=50_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workdir", type=Path, default=WORKDIR)
    p.add_argument("--keep", action="store_true", help="keep collections and data")
    p.add_argument("--out", type=Path, default=ROOT / "results" / "scale.json")
    p.add_argument("--b-worker", help=argparse.SUPPRESS)
    p.add_argument("--milvus-uri", help=argparse.SUPPRESS)
    p.add_argument("--raw-worker", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--raw-out", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--raw-kind", default="embed", help=argparse.SUPPRESS)
    args = p.parse_args()

    if args.raw_worker:
        raw_index(args.raw_worker, args.raw_out, args.raw_kind)
        return 0
    if args.b_worker:
        print(json.dumps(b_worker(args)))
        return 0
    md = args.out.with_suffix(".md")
    if args.report:
        md.write_text(markdown(json.loads(args.out.read_text())))
        print(md.read_text())
        return 0
    if args.part is None:
        p.error("--part a or --part b (or --report)")
    needs_milvus = (args.part == "a" and "milvus" in args.stores) or (args.part == "b" and "milvus" in args.backends)
    if needs_milvus and not _in_loopback_netns():
        if os.environ.get(_REEXEC_ENV):
            p.error("still not in a loopback-only network namespace after unshare -n")
        return _reexec_in_netns()
    repo_dir = REPO.resolve()
    if args.workdir.resolve().is_relative_to(repo_dir):
        p.error("--workdir must be outside the repository")
    t0 = time.perf_counter()
    load0 = _load()
    section = part_a(args) if args.part == "a" else part_b(args)
    section.update(
        total_s=round(time.perf_counter() - t0, 1),
        load_avg_start=load0,
        load_avg_end=_load(),
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )
    result = json.loads(args.out.read_text()) if args.out.exists() else {"benchmark": "scale_run"}
    result[args.part] = section
    result["host"] = {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}
    result["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    md.write_text(markdown(result))
    print()
    print(md.read_text())
    print(f"written to {args.out} and {md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

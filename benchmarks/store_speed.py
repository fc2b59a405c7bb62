"""Vector-store speed benchmark: insert, build, search latency and throughput, recall, memory and disk.

For ``--n`` clustered ``--dim``-d vectors (:func:`audiovec.testing._store_checks.clustered_vectors`, shaped like
segment embeddings of audio files; pure Gaussian noise would make every ANN index look bad), and for every
backend/index, it measures

* batched insert throughput (vectors/s, ``--batch`` vectors per ``add`` call, with metadata), training excluded;
* one-at-a-time insert throughput: the last ``--single`` vectors inserted with one ``add`` call each (what a
  loop that embeds and inserts file by file does), into the already-built store;
* training time (IVF kinds train explicitly on the first ``train`` base vectors, a sample not otherwise added),
  and build time: train + all inserts + the first save, from an empty store to a durable one;
* single-query latency p50/p95 (``--latency-queries`` calls with one query each, k=10, metadata returned);
* batched search throughput (all ``--queries`` queries in one call, k=10);
* recall@10 against exact brute force (cosine), from the batched search;
* filtered single-query latency p50 (``label == "class_07"``, 2 % of the records);
* peak RSS of the worker process and on-disk size of the closed store.

The ``faiss-hnsw`` worker then compares audiovec with the raw code a user would write for the same job
(``vs_raw`` in the JSON), at ``--compare-threads`` threads (faiss and BLAS; default 1). Both sides run
interleaved in the same process, ``--compare-repeats`` times, and the median is reported with the ratio
audiovec / raw:

* insert with metadata: ``FaissStore.add`` (flat index, in memory) of ``min(n, 20000)`` vectors in batches of
  1000, against ``faiss.normalize_L2`` on a copy + ``IndexIDMap2(IndexFlatIP).add_with_ids`` + ``json.dumps``
  per record + one SQLite ``executemany`` transaction per batch into ``records(fid, uid UNIQUE, meta)``;
* insert without metadata: the same, raw without ``json.dumps`` and without the metadata column;
* single HNSW query (k=10): ``store.search`` (ids, scores and metadata as ``Hit`` s) against
  ``index.search`` with prepared ``SearchParametersHNSW`` on the store's own faiss index (the same graph in the
  same memory, so that neither side evicts the other's from the CPU caches), the query normalised with
  ``faiss.normalize_L2``;
* filtered HNSW query (k=10, the 2 % filter above): ``store.search(filter=...)`` against a SQLite query for the
  matching ids (an indexed ``label`` column) + ``IDSelectorBatch`` + ``index.search``; also against the faiss
  search alone with a selector prepared once (``raw_prepared_selector_ms``), with the recall@10 of both sides
  against exact search over the matching vectors.

Each backend runs in its own worker process (clean peak RSS) with ``OMP_NUM_THREADS``/``OPENBLAS_NUM_THREADS``
set to ``--threads`` and ``faiss.omp_set_num_threads(--threads)``. The host's load average is recorded before
and after each worker: on a shared machine it explains noisy numbers.

Milvus: ``milvus-lite-*`` backends run Milvus Lite inside the worker (its RSS and disk are the worker's).
``milvus-server-*`` backends use the server at ``--milvus-uri``; without it, the driver starts a Milvus 2.3.5
standalone server (``pip install milvus==2.3.5``) on a temporary data directory, which it does only inside a
loopback-only network namespace (the server binds every interface)::

    unshare -n sh -c 'ip link set lo up; exec python benchmarks/store_speed.py --backends milvus-server-hnsw'

The server backends are left out of the default backend list when neither is available. For Milvus the build time
includes ``flush()`` and the wait until the index covers every row (``flush_index_s``), searches run after it, a
server row records the server's RSS (``server_rss_mb``) instead of a disk size, and Milvus Lite's filtered search
(evaluated row by row in Python, seconds per query at 100k rows) is timed on 5 queries only.

Usage::

    python benchmarks/store_speed.py                      # 100k x 512, every backend (~6-9 min on 2 cores)
    python benchmarks/store_speed.py --n 20000 --dim 128  # a quick look
    python benchmarks/store_speed.py --backends faiss-hnsw,faiss-ivf --threads 2
    python benchmarks/store_speed.py --backends faiss-hnsw --compare-repeats 9   # audiovec vs raw only matters
    python benchmarks/store_speed.py --backends milvus-lite-hnsw,milvus-server-hnsw --milvus-uri http://host:19530

Writes ``benchmarks/results/store_speed.json`` (``--out``) and prints a table.
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
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent


def backends(n: int) -> dict[str, dict[str, Any]]:
    """Backend name -> store name, index config and IVF training sample size, scaled to ``n``."""
    nlist = 2 ** round(math.log2(max(16.0, 4 * math.sqrt(n))))  # ~4 sqrt(n): 1024 for 100k
    train = min(39 * nlist, n)
    return {
        "exact": {"store": "exact", "index": {"kind": "flat"}},
        "faiss-flat": {"store": "faiss", "index": {"kind": "flat"}},
        "faiss-hnsw": {"store": "faiss", "index": {"kind": "hnsw", "m": 16, "ef_construction": 64, "ef_search": 64}},
        "faiss-ivf": {"store": "faiss", "index": {"kind": "ivf", "nlist": nlist, "nprobe": 16}, "train": train},
        "faiss-ivf_sq8": {"store": "faiss", "index": {"kind": "ivf_sq8", "nlist": nlist, "nprobe": 16}, "train": train},
        # PQ training is slow (64 k-means of 256 centroids): 20k vectors keep it to about a minute on 2 cores
        "faiss-ivf_pq": {
            "store": "faiss",
            "index": {"kind": "ivf_pq", "nlist": nlist, "nprobe": 16, "pq_m": 64, "pq_nbits": 8},
            "train": min(20000, n),
        },
        # Milvus trains IVF per sealed segment: no explicit training sample
        "milvus-lite-hnsw": {
            "store": "milvus",
            "deploy": "lite",
            "index": {"kind": "hnsw", "m": 16, "ef_construction": 64, "ef_search": 64},
            "filtered_queries": 5,
        },
        "milvus-server-hnsw": {
            "store": "milvus",
            "deploy": "server",
            "index": {"kind": "hnsw", "m": 16, "ef_construction": 64, "ef_search": 64},
        },
        "milvus-server-ivf": {
            "store": "milvus",
            "deploy": "server",
            "index": {"kind": "ivf", "nlist": nlist, "nprobe": 16},
        },
    }


def _status_mb(key: str) -> float:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(key):
                    return int(line.split()[1]) / 1024
    except OSError:  # not Linux
        pass
    return float("nan")


def _rss_mb() -> float:
    return _status_mb("VmRSS:")


def _peak_rss_mb() -> float:
    # VmHWM belongs to the address space, which exec replaces; getrusage's ru_maxrss survives fork+exec on Linux
    # and would report the driver's peak (the data generation) for every worker.
    peak = _status_mb("VmHWM:")
    return peak if peak == peak else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _dir_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _pid_rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server_available(args: argparse.Namespace) -> bool:
    """Whether the milvus-server-* backends can run: a given server, or one we may start here."""
    if args.milvus_uri:
        return True
    from audiovec.testing._milvus_server import find_server_python, only_loopback_interfaces

    return only_loopback_interfaces() and find_server_python() is not None


# --------------------------------------------------------------------------------------------- worker
def worker(args: argparse.Namespace) -> dict[str, Any]:
    import faiss
    import numpy as np

    from audiovec.metrics import recall_at_k
    from audiovec.stores import Eq, get_store

    faiss.omp_set_num_threads(args.threads)
    work = Path(args.workdir)
    base = np.load(work / "base.npy")
    queries = np.load(work / "queries.npy")
    gt = np.load(work / "gt.npy")
    n, dim = base.shape
    spec = backends(n)[args.worker]
    rss_data = _rss_mb()
    metas = [
        {
            "path": f"/data/audio/file_{i // 8:05d}.wav",
            "label": f"class_{i % 50:02d}",
            "group": i % 10,
            "segment_start": float(i % 8),
            "segment_end": float(i % 8) + 1.0,
            "model": "synthetic-512",
        }
        for i in range(n)
    ]
    path = work / args.worker
    shutil.rmtree(path, ignore_errors=True)
    kwargs: dict[str, Any] = {"path": path, "dim": dim, "metric": "cosine", "index": spec["index"]}
    if spec["store"] == "faiss":
        kwargs["threads"] = args.threads
    milvus = spec["store"] == "milvus"
    if milvus:  # MilvusStore takes a uri: a .db path (Milvus Lite keeps a directory there) or the server's address
        path = work / f"{args.worker}.db"
        del kwargs["path"]
        server = spec["deploy"] == "server"
        kwargs.update(uri=args.milvus_uri if server else path, collection=args.worker.replace("-", "_"), timeout=600)
    store = get_store(spec["store"], **kwargs)
    single = min(args.single, n)
    bulk = n - single
    ids = np.arange(n, dtype=np.int64)

    train_s = 0.0
    c0 = time.process_time()
    if spec.get("train"):
        t0 = time.perf_counter()
        store.train(base[: spec["train"]])  # type: ignore[attr-defined]
        train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for s in range(0, bulk, args.batch):
        e = min(s + args.batch, bulk)
        store.add(base[s:e], ids=ids[s:e], metadata=metas[s:e])
    batched_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for i in range(bulk, n):
        store.add(base[i], ids=[i], metadata=metas[i])
    single_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    store.save()
    save_s = time.perf_counter() - t0
    flush_index_s = 0.0
    if milvus:  # seal the segments and wait for the index, so that searches measure the index
        t0 = time.perf_counter()
        store.flush(wait_for_index=True, timeout=args.timeout)  # type: ignore[attr-defined]
        flush_index_s = time.perf_counter() - t0
    build_cpu_s = time.process_time() - c0
    assert store.count() == n

    for i in range(20):  # warm-up
        store.search(queries[i], k=10)
    lat = []
    for i in range(args.latency_queries):
        q = queries[i % len(queries)]
        t0 = time.perf_counter()
        store.search(q, k=10)
        lat.append(time.perf_counter() - t0)
    flt = Eq("label", "class_07")
    store.search(queries[0], k=10, filter=flt)  # builds the filter's id set once (cached until the next write)
    flat_lat = []
    for i in range(min(spec.get("filtered_queries", 100), args.latency_queries)):
        t0 = time.perf_counter()
        store.search(queries[i % len(queries)], k=10, filter=flt)
        flat_lat.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    rows = store.search(queries, k=10)
    batch_q_s = time.perf_counter() - t0
    recall = recall_at_k([[h.id for h in r] for r in rows], gt.tolist(), 10)
    peak_rss = _peak_rss_mb()  # before the comparison, which holds a second copy of the index
    vs_raw = None
    if args.worker == "faiss-hnsw" and args.compare_repeats > 0:
        vs_raw = compare_with_raw(args, store, base, queries, metas, spec["index"])
    t0 = time.perf_counter()
    store.close()
    close_s = time.perf_counter() - t0
    disk: float | None = None
    if milvus and spec["deploy"] == "server":  # free the server's memory for the next backend
        get_store("milvus", uri=args.milvus_uri, collection=kwargs["collection"]).drop()  # type: ignore[attr-defined]
    else:
        disk = _dir_mb(path)
        shutil.rmtree(path, ignore_errors=True)
    return {
        "backend": args.worker,
        "store": spec["store"],
        "index": spec["index"],
        "threads": args.threads,
        "n": n,
        "dim": dim,
        "metric": "cosine",
        "train_vectors": spec.get("train", 0),
        "train_s": round(train_s, 3),
        "insert_batch_size": args.batch,
        "insert_batched_vectors": bulk,
        "insert_batched_s": round(batched_s, 3),
        "insert_batched_vps": round(bulk / batched_s, 1) if batched_s else None,
        "insert_single_vectors": single,
        "insert_single_s": round(single_s, 3),
        "insert_single_vps": round(single / single_s, 1) if single_s else None,
        "save_s": round(save_s, 3),
        "flush_index_s": round(flush_index_s, 3),
        "build_s": round(train_s + batched_s + single_s + save_s + flush_index_s, 3),
        "build_cpu_s": round(build_cpu_s, 3),
        "latency_queries": len(lat),
        "latency_p50_ms": round(1000 * float(np.percentile(lat, 50)), 3),
        "latency_p95_ms": round(1000 * float(np.percentile(lat, 95)), 3),
        "filtered_latency_p50_ms": round(1000 * float(np.percentile(flat_lat, 50)), 3),
        "filtered_queries": len(flat_lat),
        "filter": "label == 'class_07' (2% of records)",
        "query_batch_size": len(queries),
        "batched_qps": round(len(queries) / batch_q_s, 1),
        "recall_at_10": round(recall, 4),
        "k": 10,
        "close_s": round(close_s, 3),
        "rss_after_data_mb": round(rss_data, 1),
        "peak_rss_mb": round(peak_rss, 1),
        "disk_mb": round(disk, 1) if disk is not None else None,
        **({"vs_raw": vs_raw} if vs_raw is not None else {}),
    }


# --------------------------------------------------------------------------------------------- audiovec vs raw
COMPARE_INSERT_N = 20_000
COMPARE_INSERT_BATCH = 1_000
COMPARE_LABEL = "class_07"


def _median_ms(samples: list[float]) -> float:
    import statistics

    return round(1000 * statistics.median(samples), 4)


def _ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b else float("nan")


def compare_with_raw(
    args: argparse.Namespace,
    store: Any,
    base: Any,
    queries: Any,
    metas: list[dict[str, Any]],
    index_spec: dict[str, Any],
) -> dict[str, Any]:
    """audiovec against the raw equivalent (see the module docs), at ``--compare-threads`` threads."""
    import faiss
    from threadpoolctl import threadpool_limits

    threads = args.compare_threads
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads):
            inserts = _compare_inserts(args.compare_repeats, base, metas)
            searches = _compare_searches(args, store, base, queries, metas, index_spec)
    finally:
        faiss.omp_set_num_threads(before)
    return {"threads": threads, "n": len(base), "dim": base.shape[1], "repeats": args.compare_repeats,
            **inserts, **searches}  # fmt: skip


def _compare_inserts(repeats: int, base: Any, metas: list[dict[str, Any]]) -> dict[str, Any]:
    import gc
    import sqlite3

    import faiss
    import numpy as np

    from audiovec.stores import FaissStore

    n, dim = min(len(base), COMPARE_INSERT_N), base.shape[1]
    x, ids, batch = base[:n], np.arange(n, dtype=np.int64), COMPARE_INSERT_BATCH

    def audiovec(with_meta: bool) -> float:
        store = FaissStore(dim=dim, metric="cosine", index="flat")
        t0 = time.perf_counter()
        for a in range(0, n, batch):
            store.add(x[a : a + batch], ids=ids[a : a + batch], metadata=metas[a : a + batch] if with_meta else None)
        elapsed = time.perf_counter() - t0
        store.close()
        return elapsed

    def raw(with_meta: bool) -> float:
        db = sqlite3.connect(":memory:", isolation_level=None)
        if with_meta:
            db.execute("CREATE TABLE records (fid INTEGER PRIMARY KEY, uid NOT NULL UNIQUE, meta TEXT NOT NULL)")
        else:
            db.execute("CREATE TABLE records (fid INTEGER PRIMARY KEY, uid NOT NULL UNIQUE)")
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        t0 = time.perf_counter()
        for a in range(0, n, batch):
            xb = x[a : a + batch].copy()
            faiss.normalize_L2(xb)
            fids = ids[a : a + batch]
            index.add_with_ids(xb, fids)
            keys = fids.tolist()
            db.execute("BEGIN")
            if with_meta:
                texts = [json.dumps(m) for m in metas[a : a + batch]]
                db.executemany(
                    "INSERT INTO records(fid, uid, meta) VALUES (?, ?, ?)", zip(keys, keys, texts, strict=True)
                )
            else:
                db.executemany("INSERT INTO records(fid, uid) VALUES (?, ?)", zip(keys, keys, strict=True))
            db.execute("COMMIT")
        elapsed = time.perf_counter() - t0
        db.close()
        return elapsed

    times: dict[tuple[str, bool], list[float]] = {(side, m): [] for side in ("audiovec", "raw") for m in (True, False)}
    for r in range(repeats):
        for with_meta in (True, False):
            order = [("audiovec", audiovec), ("raw", raw)]
            for side, fn in order if r % 2 == 0 else order[::-1]:
                gc.collect()
                times[(side, with_meta)].append(fn(with_meta))
    out: dict[str, Any] = {}
    for with_meta, key in ((True, "insert_with_metadata"), (False, "insert_without_metadata")):
        av, rw = _median_ms(times[("audiovec", with_meta)]), _median_ms(times[("raw", with_meta)])
        out[key] = {"vectors": n, "batch": batch, "index": "flat", "audiovec_ms": av, "raw_ms": rw,
                    "ratio": _ratio(av, rw)}  # fmt: skip
    return out


def _compare_searches(
    args: argparse.Namespace,
    store: Any,
    base: Any,
    queries: Any,
    metas: list[dict[str, Any]],
    index_spec: dict[str, Any],
) -> dict[str, Any]:
    import sqlite3

    import faiss
    import numpy as np

    from audiovec.metrics import recall_at_k
    from audiovec.stores import Eq, exact_search
    from audiovec.stores.validation import prepare_vectors

    k, ef = 10, index_spec["ef_search"]
    # the raw side searches the store's own faiss index: the same graph in the same memory. A second copy (read
    # from the saved file) would compete with the first for the CPU caches, and whichever side ran last would win.
    index = store._fx
    faiss_: Any = faiss  # the stubs lack SearchParametersHNSW

    def hnsw_params(sel: Any = None) -> Any:
        p = faiss_.SearchParametersHNSW()
        p.efSearch = ef
        if sel is not None:
            p.sel = sel
        return p

    params = hnsw_params()
    # the user's own table: the store gave the records faiss labels 0..n-1 in the order they were added
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE meta (fid INTEGER PRIMARY KEY, label TEXT NOT NULL)")
    db.executemany("INSERT INTO meta VALUES (?, ?)", ((i, m["label"]) for i, m in enumerate(metas)))
    db.execute("CREATE INDEX meta_label ON meta(label)")
    db.commit()
    flt = Eq("label", COMPARE_LABEL)

    def normalised(q: Any) -> Any:
        qn = q.reshape(1, -1).copy()
        faiss.normalize_L2(qn)
        return qn

    def matching_ids() -> Any:
        rows = db.execute("SELECT fid FROM meta WHERE label = ?", (COMPARE_LABEL,))
        return np.fromiter((f for (f,) in rows), np.int64)

    prepared_sel = faiss.IDSelectorBatch(matching_ids())
    prepared = hnsw_params(prepared_sel)

    def raw_query(q: Any) -> Any:
        return index.search(normalised(q), k, params=params)

    def raw_filtered(q: Any) -> Any:
        sel = faiss.IDSelectorBatch(matching_ids())
        return index.search(normalised(q), k, params=hnsw_params(sel))

    def raw_prepared(q: Any) -> Any:
        return index.search(normalised(q), k, params=prepared)

    variants = {
        "query_audiovec": lambda q: store.search(q, k=k),
        "query_raw": raw_query,
        "filtered_audiovec": lambda q: store.search(q, k=k, filter=flt),
        "filtered_raw": raw_filtered,
        "filtered_raw_prepared": raw_prepared,
    }
    nq = min(args.latency_queries, len(queries))
    for fn in variants.values():  # warm-up (the store's filter cache included)
        for i in range(min(20, nq)):
            fn(queries[i])
    samples: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    # In one step every variant searches another query (a query searched twice in a row finds the graph nodes
    # of its walk in the CPU caches); over a round each variant searches every query once.
    offset = {name: j * nq // len(names) for j, name in enumerate(names)}
    for r in range(args.compare_repeats):
        for i in range(nq):
            shift = (r * nq + i) % len(names)  # rotate the order: no variant always runs first
            for name in names[shift:] + names[:shift]:
                fn, q = variants[name], queries[(i + offset[name]) % nq]
                t0 = time.perf_counter()
                fn(q)
                samples[name].append(time.perf_counter() - t0)

    # quality of the filtered searches: recall@10 against exact search over the matching vectors
    allowed = matching_ids()
    _, truth_rows = exact_search(
        prepare_vectors(queries[:nq], base.shape[1], normalize=True),
        prepare_vectors(base[allowed], base.shape[1], normalize=True),
        k,
        "cosine",
    )
    truth = allowed[truth_rows].tolist()
    av_ids = [[h.id for h in store.search(queries[i], k=k, filter=flt)[0]] for i in range(nq)]
    raw_ids = [[int(f) for f in raw_prepared(queries[i])[1][0] if f >= 0] for i in range(nq)]
    ms = {name: _median_ms(v) for name, v in samples.items()}
    return {
        "hnsw_query": {
            "calls": len(samples["query_raw"]), "k": k, "ef_search": ef, "audiovec_ms": ms["query_audiovec"],
            "raw_ms": ms["query_raw"], "overhead_ms": round(ms["query_audiovec"] - ms["query_raw"], 4),
            "ratio": _ratio(ms["query_audiovec"], ms["query_raw"]),
        },
        "filtered_hnsw_query": {
            "calls": len(samples["filtered_raw"]), "k": k, "ef_search": ef,
            "filter": f"label == {COMPARE_LABEL!r}", "matches": len(allowed),
            "audiovec_ms": ms["filtered_audiovec"], "raw_ms": ms["filtered_raw"],
            "ratio": _ratio(ms["filtered_audiovec"], ms["filtered_raw"]),
            "raw_prepared_selector_ms": ms["filtered_raw_prepared"],
            "ratio_vs_prepared_selector": _ratio(ms["filtered_audiovec"], ms["filtered_raw_prepared"]),
            "recall_at_10_audiovec": round(recall_at_k(av_ids, truth, k), 4),
            "recall_at_10_raw": round(recall_at_k(raw_ids, truth, k), 4),
            "raw_queries_short_of_k": sum(len(r) < k for r in raw_ids),
        },
    }  # fmt: skip


# --------------------------------------------------------------------------------------------- driver
def prepare(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    import numpy as np

    from audiovec.stores import exact_search
    from audiovec.stores.validation import prepare_vectors
    from audiovec.testing import clustered_vectors

    t0 = time.perf_counter()
    base, queries = clustered_vectors(args.n, args.dim, n_queries=args.queries, seed=args.seed)
    gen_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    _, gt = exact_search(
        prepare_vectors(queries, args.dim, normalize=True),
        prepare_vectors(base, args.dim, normalize=True),
        10,
        "cosine",
    )
    gt_s = time.perf_counter() - t0
    np.save(work / "base.npy", base)
    np.save(work / "queries.npy", queries)
    np.save(work / "gt.npy", gt)
    return {"generate_s": round(gen_s, 2), "ground_truth_s": round(gt_s, 2)}


def table(rows: list[dict[str, Any]]) -> str:
    head = [
        ("backend", "backend", "{}"),
        ("index params", "params", "{}"),
        ("thr", "threads", "{}"),
        ("train s", "train_s", "{:.1f}"),
        ("insert v/s (batch)", "insert_batched_vps", "{:,.0f}"),
        ("insert v/s (1/call)", "insert_single_vps", "{:,.0f}"),
        ("build s", "build_s", "{:.1f}"),
        ("p50 ms", "latency_p50_ms", "{:.2f}"),
        ("p95 ms", "latency_p95_ms", "{:.2f}"),
        ("filt p50 ms", "filtered_latency_p50_ms", "{:.2f}"),
        ("q/s (batch)", "batched_qps", "{:,.0f}"),
        ("recall@10", "recall_at_10", "{:.3f}"),
        ("peak RSS MB", "peak_rss_mb", "{:,.0f}"),
        ("server RSS MB", "server_rss_mb", "{:,.0f}"),
        ("disk MB", "disk_mb", "{:,.1f}"),
    ]
    cells = []
    for r in rows:
        if "error" in r:
            cells.append([r["backend"], "ERROR: " + r["error"][-60:]] + [""] * (len(head) - 2))
            continue
        idx = dict(r["index"])
        kind = idx.pop("kind")
        r = {**r, "params": kind + (" " + " ".join(f"{k}={v}" for k, v in idx.items()) if idx else "")}
        cells.append([fmt.format(r[key]) if r.get(key) is not None else "-" for _, key, fmt in head])
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, (h, _, _) in enumerate(head)]
    line = lambda vals: " | ".join(v.ljust(w) for v, w in zip(vals, widths, strict=True))  # noqa: E731
    out = [line([h for h, _, _ in head]), "-+-".join("-" * w for w in widths)]
    out += [line(c) for c in cells]
    return "\n".join(out)


VS_RAW_ROWS = [
    ("insert with metadata", "insert_with_metadata", "ratio <= 1.2"),
    ("insert without metadata", "insert_without_metadata", "ratio <= 1.1"),
    ("single HNSW query", "hnsw_query", "overhead <= 0.1 ms"),
    ("filtered HNSW query", "filtered_hnsw_query", "ratio <= 1.2"),
]


def vs_raw_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The audiovec / raw ratios of the (one) row that measured them, with where they were measured."""
    row = next(r for r in rows if "vs_raw" in r)
    vs = row["vs_raw"]
    out: dict[str, Any] = {"backend": row["backend"], "threads": vs["threads"], "n": vs["n"], "dim": vs["dim"]}
    for _, key, goal in VS_RAW_ROWS:
        out[key] = {"ratio": vs[key]["ratio"], "audiovec_ms": vs[key]["audiovec_ms"], "raw_ms": vs[key]["raw_ms"],
                    "goal": goal}  # fmt: skip
    out["hnsw_query"]["overhead_ms"] = vs["hnsw_query"]["overhead_ms"]
    out["filtered_hnsw_query"]["ratio_vs_prepared_selector"] = vs["filtered_hnsw_query"]["ratio_vs_prepared_selector"]
    return out


def vs_raw_table(summary: dict[str, Any]) -> str:
    lines = [
        f"audiovec vs raw ({summary['backend']} data, n={summary['n']:,}, dim={summary['dim']}, "
        f"threads={summary['threads']}; medians of interleaved runs)",
        f"{'row':<25} {'audiovec ms':>12} {'raw ms':>10} {'ratio':>7}  goal",
    ]
    for label, key, goal in VS_RAW_ROWS:
        r = summary[key]
        extra = f" ({r['overhead_ms']:+.3f} ms)" if key == "hnsw_query" else ""
        if key == "filtered_hnsw_query":
            extra = f" (vs a selector prepared once: {r['ratio_vs_prepared_selector']:.2f})"
        lines.append(f"{label:<25} {r['audiovec_ms']:>12.3f} {r['raw_ms']:>10.3f} {r['ratio']:>7.2f}  {goal}{extra}")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=100_000, help="base vectors")
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--queries", type=int, default=1000, help="queries for throughput and recall")
    p.add_argument("--latency-queries", type=int, default=200, help="single-query calls for p50/p95")
    p.add_argument("--single", type=int, default=2000, help="vectors inserted one per call")
    p.add_argument("--batch", type=int, default=10_000, help="vectors per batched add call")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--backends", default=None, help="comma-separated (default: every backend that can run here)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=int, default=900, help="seconds per backend")
    p.add_argument("--out", type=Path, default=ROOT / "results" / "store_speed.json")
    p.add_argument("--workdir", type=Path, default=None, help="scratch directory (default: a temporary one)")
    p.add_argument(
        "--milvus-uri",
        default=None,
        help="Milvus server for the milvus-server-* backends (default: start one; needs a loopback-only namespace)",
    )
    p.add_argument("--compare-threads", type=int, default=1, help="threads of the audiovec vs raw comparison")
    p.add_argument(
        "--compare-repeats", type=int, default=5, help="rounds of the audiovec vs raw comparison (0: skip it)"
    )
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args()

    if args.worker:
        print(json.dumps(worker(args)))
        return 0

    specs = backends(args.n)
    if args.backends is None:
        names = [b for b, spec in specs.items() if spec.get("deploy") != "server" or _server_available(args)]
        if len(names) < len(specs):
            print("leaving out the milvus-server-* backends: pass --milvus-uri, or run inside a loopback-only "
                  "network namespace with the 'milvus' server package installed", flush=True)  # fmt: skip
    else:
        names = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(names) - set(specs)
    if unknown:
        p.error(f"unknown backends {sorted(unknown)}; choose from {', '.join(specs)}")
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="store_speed-", dir=args.workdir) as tmp, contextlib.ExitStack() as stack:
        work = Path(tmp)
        server_pid: int | None = None
        if any(specs[b].get("deploy") == "server" for b in names) and args.milvus_uri is None:
            from audiovec.testing._milvus_server import MilvusServer

            server = MilvusServer(extra_config={"common.gracefulStopTimeout": 3})
            server.start(work / "milvus-server", port=_free_port(), timeout=180)
            stack.callback(server.stop, 15.0)
            args.milvus_uri, server_pid = server.uri, server.pid
            print(f"started a Milvus server at {server.uri} (pid {server.pid})", flush=True)
        info = prepare(args, work)
        print(f"data: {args.n} x {args.dim} clustered, {args.queries} queries ({info})", flush=True)
        env = {
            **os.environ,
            "OMP_NUM_THREADS": str(args.threads),
            "OPENBLAS_NUM_THREADS": str(args.threads),
            "MKL_NUM_THREADS": str(args.threads),
        }
        rows = []
        for name in names:
            cmd = [sys.executable, __file__, "--worker", name, "--workdir", str(work), "--threads", str(args.threads),
                   "--single", str(args.single), "--batch", str(args.batch),
                   "--latency-queries", str(args.latency_queries), "--timeout", str(args.timeout),
                   "--compare-threads", str(args.compare_threads),
                   "--compare-repeats", str(args.compare_repeats)]  # fmt: skip
            if specs[name].get("deploy") == "server":
                cmd += ["--milvus-uri", str(args.milvus_uri)]
            load_before = _load()
            t0 = time.perf_counter()
            try:
                done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=args.timeout)
                if done.returncode:
                    row: dict[str, Any] = {"backend": name, "error": done.stderr.strip()[-2000:]}
                else:
                    row = json.loads(done.stdout.strip().splitlines()[-1])
            except subprocess.TimeoutExpired:
                row = {"backend": name, "error": f"timed out after {args.timeout} s"}
            row["worker_wall_s"] = round(time.perf_counter() - t0, 1)
            if specs[name].get("deploy") == "server" and server_pid is not None:
                row["server_rss_mb"] = round(_pid_rss_mb(server_pid), 1)
            row["load_avg_before"], row["load_avg_after"] = load_before, _load()
            rows.append(row)
            status = "error" if "error" in row else f"recall@10={row['recall_at_10']}"
            print(f"  {name}: {row['worker_wall_s']} s, {status}, load {load_before} -> {row['load_avg_after']}",
                  flush=True)  # fmt: skip
    result: dict[str, Any] = {
        "benchmark": "store_speed",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "data": {
            "n": args.n,
            "dim": args.dim,
            "queries": args.queries,
            "generator": "audiovec.testing._store_checks.clustered_vectors",
            "seed": args.seed,
            **info,
        },
        "settings": {
            "threads": args.threads,
            "insert_batch_size": args.batch,
            "insert_single_vectors": args.single,
            "latency_queries": args.latency_queries,
            "k": 10,
            "metric": "cosine",
        },
        "host": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "total_s": round(time.perf_counter() - t_start, 1),
        **({"vs_raw": vs_raw_summary(rows)} if any("vs_raw" in r for r in rows) else {}),
        "results": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print()
    print(
        f"{args.n:,} x {args.dim}-d clustered vectors, cosine, k=10, threads={args.threads}; inserts in batches of "
        f"{args.batch:,} (training excluded) and {args.single:,} one-vector calls; latency = one query per call "
        f"({args.latency_queries} calls); q/s = {args.queries} queries in one call"
    )
    print(table(rows))
    if "vs_raw" in result:
        print()
        print(vs_raw_table(result["vs_raw"]))
    print(f"\nwritten to {args.out} ({result['total_s']} s)")
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

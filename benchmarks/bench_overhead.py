"""Harness overhead: CPU of ``audiovec bench`` against a minimal script doing the same work with the raw libraries.

Every run is its own subprocess on the same labelled set (FSDD by default: 3000 spoken digits, group = speaker),
pinned to one core with the OpenMP/BLAS thread pools at one thread, interleaved (the order rotates every repeat),
``--repeats`` times:

* **bench**: ``audiovec bench CONFIG --no-report`` with one MFCC embedder (8 kHz, 40 mels), one pooling
  (``mean_std+l2``), FAISS flat and FAISS HNSW, ``k = 10``, no scaling sweep, and a fresh output folder every time,
  so every file is decoded and embedded; its embedding cache is on (the default), so it also writes one cache
  entry per file;
* **bench_no_cache**: the same with ``cache = false``: exactly the minimal script's work;
* **bench_baseline** (with ``--baseline-src DIR``): the bench config run with another version of audiovec
  (``PYTHONPATH=DIR``, e.g. ``git archive <commit> src | tar -x -C /tmp/base``), to measure a change;
* **minimal**: this file with ``--minimal``: soundfile decoding, the same embedder call
  (``get_embedder("mfcc", ...).embed(audio)``), mean/std pooling and L2 normalisation in NumPy, exact kNN with the
  query's own group masked out (one NumPy matrix product), the same metrics (top-1, top-k, kNN vote, precision@k,
  mAP@k with 1000 bootstrap resamples, separation AUC on random pairs, a group-aware logistic-regression probe),
  and for each FAISS index (flat, HNSW M=32 efC=128 efSearch=64): build, write to disk, 200 single-query searches,
  one batched search, recall@k against the exact neighbours and top-1 through the index with the query's group
  excluded by an ``IDSelector``.

The CPU of a run is the child's user + system time (``resource.getrusage(RUSAGE_CHILDREN)`` deltas around each
child, its own children included); a ratio is median(variant) / median(minimal). The report is timed on its own:
``audiovec report`` on the results folder of each bench run (CPU and wall time). The quality figures of both
sides are saved too, as a check that they did the same work.

Usage:
    python benchmarks/bench_overhead.py                      # FSDD beside the checkout, 3 repeats
    python benchmarks/bench_overhead.py --repeats 5 --baseline-src /tmp/base/src
    python benchmarks/bench_overhead.py --limit 500          # a quick look (the sides may pick different files)

Writes benchmarks/results/bench_overhead.json (override with --out) and prints the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent.parent / "shared" / "data" / "fsdd"
SCRIPT = Path(sys.executable).with_name("audiovec")
#: Every thread pool of the numeric libraries, pinned to one thread in both children.
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "BLIS_NUM_THREADS")  # fmt: skip
SAMPLE_RATE, N_MELS, K, N_LATENCY, BOOTSTRAP, SEED = 8000, 40, 10, 200, 1000, 0
HNSW = {"m": 32, "ef_construction": 128, "ef_search": 64}


def bench_config(data: Path, output_dir: Path, limit: int | None, cache: bool | None = True) -> str:
    """The ``audiovec bench`` config (TOML) that does the same work as :func:`minimal` (plus the cache, when on).

    ``cache=None`` leaves the ``cache`` key out (for versions of audiovec without it, where the cache is always on).
    """
    lim = f"limit = {limit}\n" if limit else ""
    cache_line = "" if cache is None else f"cache = {str(cache).lower()}\n"
    ef = HNSW["ef_search"]
    return f"""name = "overhead"
output_dir = "{output_dir}"
k = {K}
sizes = []
n_latency_queries = {N_LATENCY}
bootstrap = {BOOTSTRAP}
linear_probe = true
progress = false
seed = {SEED}
{cache_line}
[dataset]
kind = "fsdd"
path = "{data}"
label = "digit"
{lim}
[[embedders]]
name = "mfcc"
params = {{ sample_rate = {SAMPLE_RATE}, n_mels = {N_MELS} }}
poolings = ["mean_std+l2"]

[[stores]]
name = "faiss"
index = "flat"

[[stores]]
name = "faiss"
index = {{ kind = "hnsw", m = {HNSW["m"]}, ef_construction = {HNSW["ef_construction"]}, ef_search = {ef} }}
"""


# ----------------------------------------------------------------------------------------- the minimal script
def minimal(data: Path, limit: int | None) -> dict[str, Any]:
    """The same work as the bench config, written directly against soundfile, NumPy, scikit-learn and FAISS."""
    import faiss
    import numpy as np
    import soundfile as sf

    from audiovec import Audio, get_embedder

    files = sorted(p for p in data.iterdir() if p.suffix == ".flac")
    if limit:  # spread over digits and speakers (the bench takes its own stratified subset)
        files = files[:: max(1, len(files) // limit)][:limit]
    labels = np.array([p.stem.split("_")[0] for p in files])
    groups = np.array([p.stem.split("_")[1] for p in files])
    emb = get_embedder("mfcc", sample_rate=SAMPLE_RATE, n_mels=N_MELS)
    vecs = []
    for p in files:
        x, sr = sf.read(p, dtype="float32")
        if x.ndim > 1:
            x = x.mean(axis=1)
        if sr != SAMPLE_RATE:
            import librosa

            x, sr = librosa.resample(x, orig_sr=sr, target_sr=SAMPLE_RATE), SAMPLE_RATE
        f = emb.embed(Audio(x, sr)).vectors.astype(np.float64)
        v = np.concatenate([f.mean(0), f.std(0)])
        vecs.append(v / np.linalg.norm(v))
    xs = np.asarray(vecs, dtype=np.float32)
    n = len(xs)
    _, lab = np.unique(labels, return_inverse=True)
    _, grp = np.unique(groups, return_inverse=True)

    # exact kNN, own group excluded
    sim = xs @ xs.T
    same_group = grp[:, None] == grp[None, :]
    masked = np.where(same_group, -np.inf, sim)
    part = np.argpartition(-masked, K, axis=1)[:, :K]
    nb = np.take_along_axis(part, np.argsort(-np.take_along_axis(masked, part, 1), axis=1, kind="stable"), 1)
    n_rel = ((lab[:, None] == lab[None, :]) & ~same_group).sum(1)
    q = np.flatnonzero(n_rel > 0)
    rel = lab[nb[q]] == lab[q, None]
    ranks = np.arange(1, K + 1)
    votes = np.array([np.bincount(lab[row], minlength=lab.max() + 1) for row in nb[q]])
    per_query = {
        "top1_acc": rel[:, 0].astype(float),
        "topk_acc": rel.any(1).astype(float),
        "precision_at_k": rel.mean(1),
        "map_at_k": ((np.cumsum(rel, 1) / ranks) * rel).sum(1) / np.minimum(n_rel[q], K),
        "knn_acc": (votes.argmax(1) == lab[q]).astype(float),
    }
    rng = np.random.default_rng(SEED)
    out: dict[str, Any] = {"n_files": n}
    for name, v in per_query.items():
        means = v[rng.integers(0, len(v), size=(BOOTSTRAP, len(v)))].mean(1)
        lo, hi = np.quantile(means, [0.025, 0.975])
        out[name] = float(v.mean())
        out[f"{name}_ci"] = [float(lo), float(hi)]

    # separation AUC on random pairs from different groups
    from sklearn.metrics import roc_auc_score

    a, b = rng.integers(0, n, 60000), rng.integers(0, n, 60000)
    ok = (a != b) & (grp[a] != grp[b])
    a, b = a[ok], b[ok]
    same = lab[a] == lab[b]
    ia, ob = np.flatnonzero(same)[:20000], np.flatnonzero(~same)[:20000]
    s_in = (xs[a[ia]].astype(np.float64) * xs[b[ia]]).sum(1)
    s_out = (xs[a[ob]].astype(np.float64) * xs[b[ob]]).sum(1)
    out["separation_auc"] = float(roc_auc_score(np.r_[np.ones(len(s_in)), np.zeros(len(s_out))], np.r_[s_in, s_out]))

    # group-aware linear probe
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedGroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    accs = []
    for tr, te in StratifiedGroupKFold(n_splits=5, shuffle=True, random_state=SEED).split(xs, labels, groups):
        clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(xs[tr], labels[tr])
        accs.append(float((clf.predict(xs[te]) == labels[te]).mean()))
    out["linear_probe_acc"] = float(np.mean(accs))

    # FAISS flat and HNSW: build, save, single and batched queries, recall, top-1 with the group filtered out
    qi = np.sort(rng.permutation(n)[:N_LATENCY])
    truth = np.argsort(-sim[qi], axis=1, kind="stable")[:, :K]
    ids = np.arange(n, dtype=np.int64)
    allowed = {g: faiss.IDSelectorBatch(ids[grp != g]) for g in np.unique(grp)}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("flat", "hnsw"):
            if kind == "flat":
                index = faiss.IndexIDMap2(faiss.IndexFlatIP(xs.shape[1]))
            else:
                h = faiss.IndexHNSWFlat(xs.shape[1], HNSW["m"], faiss.METRIC_INNER_PRODUCT)
                h.hnsw.efConstruction, h.hnsw.efSearch = HNSW["ef_construction"], HNSW["ef_search"]
                index = faiss.IndexIDMap2(h)
            t0 = time.perf_counter()
            index.add_with_ids(xs, ids)
            faiss.write_index(index, str(Path(tmp) / f"{kind}.faiss"))
            insert_s = time.perf_counter() - t0
            index.search(xs[qi[:1]], K)
            lat, found = [], []
            for i in qi:
                t0 = time.perf_counter()
                _, f = index.search(xs[i : i + 1], K)
                lat.append(time.perf_counter() - t0)
                found.append(f[0])
            index.search(xs[qi], K)
            recall = np.mean([len(set(f) & set(t)) / K for f, t in zip(found, truth, strict=True)])
            top1 = []
            for i in qi[n_rel[qi] > 0]:
                params = faiss.SearchParameters(sel=allowed[grp[i]])
                if kind == "hnsw":
                    params = faiss.SearchParametersHNSW(sel=allowed[grp[i]], efSearch=HNSW["ef_search"])
                _, f = index.search(xs[i : i + 1], 1, params=params)
                top1.append(lab[f[0, 0]] == lab[i])
            out[f"faiss/{kind}"] = {
                "insert_s": insert_s,
                "search_p50_ms": 1000 * float(np.median(lat)),
                "ann_recall": float(recall),
                "store_top1_acc": float(np.mean(top1)),
            }
    return out


# ----------------------------------------------------------------------------------------- the driver
def _one_core() -> None:
    """Child set-up: run on one core (so the ingest path embeds in-process, like the minimal script)."""
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def _child(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Run a child on one core; its CPU seconds (user + sys, its own children included), wall seconds and stdout."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False, preexec_fn=_one_core)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime), wall, proc.stdout


def _bench_quality(out_dir: Path) -> dict[str, Any]:
    """The quality figures of a bench results folder, to check both sides did the same work."""
    q = json.loads((out_dir / "quality.json").read_text())[0]
    st = {r["store"]: r for r in json.loads((out_dir / "stores.json").read_text())}
    return {
        "n_files": len(json.loads((out_dir / "files.json").read_text())),
        **{m: q[m] for m in QUALITY},
        **{s: {m: st[s][m] for m in ("ann_recall", "store_top1_acc", "search_p50_ms")} for s in st},
    }


QUALITY = ("top1_acc", "topk_acc", "knn_acc", "precision_at_k", "map_at_k", "separation_auc", "linear_probe_acc")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="FSDD folder ({digit}_{speaker}_{i}.flac)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--limit", type=int, help="use N files (each side picks its own N, spread over the classes)")
    ap.add_argument("--baseline-src", type=Path, help="also run `audiovec bench` and `report` from this src/ tree")
    ap.add_argument("--baseline-label", default="", help="what the baseline is (e.g. its commit), for the JSON")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "bench_overhead.json")
    ap.add_argument("--minimal", action="store_true", help=argparse.SUPPRESS)  # the child: run the minimal script
    args = ap.parse_args()
    if args.minimal:
        print(json.dumps(minimal(args.data, args.limit)))
        return
    if args.limit:
        print("note: with --limit the two sides may use different files")
    env = {**os.environ, **dict.fromkeys(THREAD_VARS, "1")}
    data = args.data.resolve()
    # name -> (cache setting in the config or None to leave the key out, PYTHONPATH or None)
    variants: dict[str, tuple[bool | None, str | None]] = {"bench": (True, None), "bench_no_cache": (False, None)}
    if args.baseline_src:
        variants["bench_baseline"] = (None, str(args.baseline_src.resolve()))
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in (*variants, "minimal", "report")}
    if args.baseline_src:
        runs["report_baseline"] = []
    quality: dict[str, Any] = {}
    minimal_cmd = [sys.executable, str(Path(__file__).resolve()), "--minimal", "--data", str(data)]
    if args.limit:
        minimal_cmd += ["--limit", str(args.limit)]
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp:
        for rep in range(args.repeats):
            jobs: dict[str, tuple[list[str], dict[str, str]]] = {"minimal": (minimal_cmd, env)}
            for name, (cache, pythonpath) in variants.items():
                cfg = Path(tmp) / f"{name}{rep}.toml"
                cfg.write_text(bench_config(data, Path(tmp) / f"{name}{rep}", args.limit, cache))
                child_env = {**env, "PYTHONPATH": pythonpath} if pythonpath else env
                jobs[name] = ([str(SCRIPT), "bench", str(cfg), "--no-report", "--no-progress"], child_env)
            names = list(jobs)
            for name in names[rep % len(names) :] + names[: rep % len(names)]:  # rotate who goes first
                cpu, wall, stdout = _child(*jobs[name])
                runs[name].append({"cpu_s": cpu, "wall_s": wall})
                if name == "minimal":
                    quality["minimal"] = json.loads(stdout)
                print(f"repeat {rep + 1}: {name:15s} cpu {cpu:6.2f} s  wall {wall:6.2f} s", flush=True)
            for name, bench in (("report", "bench"), ("report_baseline", "bench_baseline")):
                if name in runs:
                    cmd = [str(SCRIPT), "report", str(Path(tmp) / f"{bench}{rep}")]
                    cpu, wall, _ = _child(cmd, jobs[bench][1])
                    runs[name].append({"cpu_s": cpu, "wall_s": wall})
                    print(f"repeat {rep + 1}: {name:15s} cpu {cpu:6.2f} s  wall {wall:6.2f} s", flush=True)
        for name in variants:
            quality[name] = _bench_quality(Path(tmp) / f"{name}{args.repeats - 1}")
    med = {name: statistics.median(r["cpu_s"] for r in rs) for name, rs in runs.items()}
    med_wall = {name: statistics.median(r["wall_s"] for r in rs) for name, rs in runs.items()}
    ratios = {f"{name}/minimal": med[name] / med["minimal"] for name in variants}
    result = {
        "what": "CPU (user+sys) of `audiovec bench --no-report` vs a minimal script doing the same work",
        "variants": {
            "bench": "the config below as it is (embedding cache on, the default)",
            "bench_no_cache": "the same with cache = false: exactly the minimal script's work",
            "bench_baseline": f"the same config run with the code in {args.baseline_src}"
            if args.baseline_src
            else None,
            "report": "`audiovec report` on the results of `bench` (the t-SNE map included)",
        },
        "dataset": f"FSDD by digit (group = speaker): {data}",
        "n_files": quality["bench"]["n_files"],
        "config": {
            "embedder": f"mfcc(sample_rate={SAMPLE_RATE}, n_mels={N_MELS})",
            "pooling": "mean_std+l2",
            "stores": ["faiss/flat", f"faiss/hnsw {HNSW}"],
            "k": K,
            "n_latency_queries": N_LATENCY,
            "bootstrap": BOOTSTRAP,
            "linear_probe": True,
            "scaling_sizes": [],
        },
        "threads": {v: "1" for v in THREAD_VARS},
        "cpu_affinity": "one core per child (the ingest path then embeds in its own process, like the minimal script)",
        "repeats": args.repeats,
        "median_cpu_s": med,
        "median_wall_s": med_wall,
        "ratios_median_cpu": ratios,
        "runs": runs,
        "quality_check": quality,
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()},
        "date": time.strftime("%Y-%m-%d"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"median CPU over {args.repeats} repeats: minimal {med['minimal']:.2f} s")
    for name in variants:
        print(f"  {name:15s} {med[name]:6.2f} s -> {ratios[f'{name}/minimal']:.2f}x")
    for name in ("report", "report_baseline"):
        if name in med:
            print(f"  {name:15s} {med[name]:6.2f} s CPU, {med_wall[name]:.2f} s wall")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

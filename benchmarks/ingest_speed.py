"""Ingest speed: files/s and CPU seconds per audio hour of the ingest path, against a raw script doing the same work.

For each model (``mfcc``, ``yamnet``) and dataset (``fsdd``: the 3,000 FSDD spoken digits, 8 kHz mono FLAC, 0.1-2 s;
``long``: 10 files of 5 minutes, 44.1 kHz stereo FLAC, made by ``benchmarks/make_corpus.py --long`` into
``/work/corpus/long`` when missing), every configuration below embeds every file once, **each run in its own
subprocess**, the configurations interleaved (their order rotated every round), ``--repeats`` rounds, medians:

* ``w1``: ``Ingest(embedder, workers=1).run(paths)`` (batches of 16, in this process; files longer than 120 s are
  streamed through ``embed_file``);
* ``w1_default`` (diagnostic): ``w1`` with the library's own thread settings (nothing pinned), what a user gets;
* ``w2``: ``Ingest(embedder, workers=2).run(paths)`` with the library's own thread settings (nothing pinned: the
  library gives its worker process ``cores // 2`` = 1 thread; YAMNet's ``num_threads`` left unset);
* ``w2_pinned`` (diagnostic): ``w2`` with the thread settings of ``w1``;
* ``w2_b1`` (diagnostic): ``w2`` with ``batch_size=1`` (10 long files are one batch of 16, which runs in one
  process);
* ``raw_lib``: the raw libraries in a plain loop: ``soundfile.read`` → channel mean → ``soxr.resample(..., "HQ")``
  to 16 kHz → for MFCC ``librosa.feature.melspectrogram(n_fft=400, hop_length=160, center=False, n_mels=64)`` +
  ``librosa.power_to_db(ref=1, amin=1e-10, top_db=None)`` + ``librosa.feature.mfcc(S=..., n_mfcc=20)`` (the
  parameters of audiovec's ``mfcc``); for YAMNet the LiteRT interpreter on the whole waveform (resize the input,
  allocate, set, invoke, read the 1024-d embeddings), one call per file;
* ``raw_embed``: the same decode and resample, then the embedder's own ``embed`` on the decoded audio in a plain
  loop (no ingest path): the difference to ``w1`` is the ingest path's own cost;
* ``raw_embed_2p`` (control): ``raw_embed`` in a ``multiprocessing`` pool of 2 spawned processes (``imap``, chunks of
  16 files, or 1 below 64 files), start-up included: the 2-process speed-up that plain code gets on this machine at
  this time, against which ``w2 / w1`` can be judged on a shared machine.

Threads: ``w1``, ``w2_pinned``, ``raw_lib``, ``raw_embed`` and ``raw_embed_2p`` run with ``OMP_NUM_THREADS``,
``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS``, ``NUMEXPR_NUM_THREADS``, ``TF_NUM_INTRAOP_THREADS``,
``TF_NUM_INTEROP_THREADS`` and ``AUDIOVEC_NUM_THREADS`` set to 1 and YAMNet/LiteRT ``num_threads=1``; the others with
those variables removed.

Measured per run: wall time of the subprocess, **CPU = user + sys of the whole process tree** (the driver's
``getrusage(RUSAGE_CHILDREN)`` delta around the subprocess: worker processes included), and inside the subprocess the
time of the timed section (model loading, worker start-up and embedding every file; after the imports), the CPU spent
before it (interpreter start and imports: ``startup_cpu_s``), the time to the first result, frames and a checksum of
the vectors (the configurations must do the same work), and the load average before and after.

Reported: files/s (files / timed section), CPU s per audio hour (whole process tree, and without ``startup_cpu_s``),
and the ratios ``w1 CPU / raw CPU`` (goal <= 1.1; against ``raw_lib``, and ``raw_embed`` for the decomposition) and
``w2 files/s / w1 files/s`` (goal >= 1.8; beside ``raw_embed_2p / raw_embed``). When a CPU goal is missed (or with
``--profile``) the ``w1`` run (and ``raw_embed`` and ``raw_lib``, for contrast) is profiled with cProfile in one more
subprocess and the top costs go into the JSON.

Usage::

    python benchmarks/ingest_speed.py                          # everything, 5 rounds (~20-30 min on 2 cores)
    python benchmarks/ingest_speed.py --limit 200 --repeats 1  # a smoke test
    python benchmarks/ingest_speed.py --models mfcc --datasets fsdd --profile

Writes ``benchmarks/results/ingest_speed.json`` (``--out``) and prints a table.
"""

from __future__ import annotations

import argparse
import hashlib
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

ROOT = Path(__file__).resolve().parent
REPO = ROOT.parent
FSDD = Path(os.environ.get("AUDIOVEC_SHARED", "/work/shared")) / "data" / "fsdd"
YAMNET = Path(os.environ.get("AUDIOVEC_SHARED", "/work/shared")) / "models" / "yamnet.tflite"
LONG_DIR = Path("/work/corpus/long")
CONFIGS = ("w1", "w1_default", "w2", "w2_pinned", "w2_b1", "raw_lib", "raw_embed", "raw_embed_2p")
PINNED = ("w1", "w2_pinned", "raw_lib", "raw_embed", "raw_embed_2p")
INGEST = {"w1": (1, 16), "w1_default": (1, 16), "w2": (2, 16), "w2_pinned": (2, 16), "w2_b1": (2, 1)}
THREAD_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
    "AUDIOVEC_NUM_THREADS",
)
RATE = 16_000
MFCC = {"n_mfcc": 20, "n_mels": 64, "n_fft": 400, "hop_length": 160}


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _cpu(who: int) -> float:
    ru = resource.getrusage(who)
    return ru.ru_utime + ru.ru_stime


# --------------------------------------------------------------------------------------------- the subprocess
def _decode(path: str) -> Any:
    """soundfile decode, channel mean, soxr HQ resample to 16 kHz: what a hand-written script does."""
    import numpy as np
    import soundfile as sf
    import soxr

    x, sr = sf.read(path, dtype="float32", always_2d=True)
    y = x[:, 0] if x.shape[1] == 1 else x.mean(axis=1, dtype=np.float32)
    if sr != RATE:
        y = soxr.resample(y, sr, RATE, quality="HQ")
    return np.ascontiguousarray(y, dtype=np.float32)


def _imports(config: str, model: str) -> None:
    """The imports of a configuration, done before the timed section (their CPU is ``startup_cpu_s``)."""
    import numpy  # noqa: F401

    if config == "raw_lib":
        import soundfile
        import soxr

        if model == "mfcc":
            import librosa  # noqa: F401
        else:
            from ai_edge_litert.interpreter import Interpreter  # noqa: F401
    else:
        import audiovec  # noqa: F401
        from audiovec.ingest import Ingest  # noqa: F401

        if config in ("raw_embed", "raw_embed_2p"):
            import soundfile  # noqa: F401
            import soxr  # noqa: F401


def _embedder(model: str, threads: int | None) -> Any:
    from audiovec import get_embedder

    if model == "mfcc":
        return get_embedder("mfcc")
    params: dict[str, Any] = {"model": str(YAMNET)}
    if threads is not None:
        params["num_threads"] = threads
    return get_embedder("yamnet", **params)


_POOL_EMB: Any = None


def _pool_init(model: str, threads: int | None) -> None:
    global _POOL_EMB
    _POOL_EMB = _embedder(model, threads)


def _pool_embed(path: str) -> Any:
    from audiovec import Audio

    return _POOL_EMB.embed(Audio.from_array(_decode(path), RATE)).vectors


def _vectors(config: str, model: str, files: list[str], threads: int | None) -> Any:
    """Yield one ``float32[frames, dim]`` array per file (failures yield ``None``)."""
    import numpy as np

    if config in INGEST:
        from audiovec.ingest import Ingest

        emb = _embedder(model, threads)
        workers, batch_size = INGEST[config]
        ingest = Ingest(emb, workers=workers, batch_size=batch_size)
        for r in ingest.run(files):
            yield r.frames[emb.name].vectors if r.ok else None
    elif config == "raw_embed_2p":  # the same plain loop in 2 processes: what 2 processes can gain here and now
        import multiprocessing

        chunk = 1 if len(files) < 64 else 16
        with multiprocessing.get_context("spawn").Pool(2, _pool_init, (model, threads)) as pool:
            yield from pool.imap(_pool_embed, files, chunksize=chunk)
    elif config == "raw_embed":
        from audiovec import Audio

        emb = _embedder(model, threads)
        for f in files:
            yield emb.embed(Audio.from_array(_decode(f), RATE)).vectors
    elif model == "mfcc":  # raw_lib
        import librosa

        for f in files:
            y = _decode(f)
            if len(y) < MFCC["n_fft"]:
                y = np.pad(y, (0, MFCC["n_fft"] - len(y)))
            mel = librosa.feature.melspectrogram(
                y=y,
                sr=RATE,
                n_fft=MFCC["n_fft"],
                hop_length=MFCC["hop_length"],
                center=False,
                n_mels=MFCC["n_mels"],
                power=2.0,
            )
            db = librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None)
            yield librosa.feature.mfcc(S=db, n_mfcc=MFCC["n_mfcc"], dct_type=2, norm="ortho").T
    else:  # raw_lib, yamnet
        from ai_edge_litert.interpreter import Interpreter

        interp = Interpreter(model_path=str(YAMNET), num_threads=threads or os.cpu_count() or 1)
        inp = interp.get_input_details()[0]["index"]
        out = next(d["index"] for d in interp.get_output_details() if d["shape_signature"][-1] == 1024)
        for f in files:
            y = _decode(f)
            interp.resize_tensor_input(inp, [len(y)], strict=True)
            interp.allocate_tensors()
            interp.set_tensor(inp, y)
            interp.invoke()
            yield interp.get_tensor(out).copy()


def worker(args: argparse.Namespace) -> dict[str, Any]:
    files = Path(args.files).read_text().split("\n")
    files = [f for f in files if f]
    threads = 1 if args.worker in PINNED else None
    _imports(args.worker, args.model)
    startup_cpu = _cpu(resource.RUSAGE_SELF)
    prof = None
    if args.profile_file:
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
    t0 = time.perf_counter()
    first = None
    frames = 0
    total = 0.0
    failed = 0
    for v in _vectors(args.worker, args.model, files, threads):
        if first is None:
            first = time.perf_counter() - t0
        if v is None:
            failed += 1
            continue
        frames += len(v)
        total += float(v.sum(dtype="float64"))
    run_s = time.perf_counter() - t0
    if prof is not None:
        prof.disable()
        prof.dump_stats(args.profile_file)
    cpu_all = _cpu(resource.RUSAGE_SELF) + _cpu(resource.RUSAGE_CHILDREN)
    return {
        "files": len(files),
        "failed": failed,
        "frames": frames,
        "vector_sum": total,
        "run_s": run_s,
        "first_result_s": first,
        "startup_cpu_s": startup_cpu,
        "inner_cpu_s": cpu_all,
        "inner_work_cpu_s": cpu_all - startup_cpu,
    }


# --------------------------------------------------------------------------------------------- the driver
def _env(config: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    if config in PINNED:
        env.update({k: "1" for k in THREAD_VARS})
    env["PYTHONPATH"] = str(REPO / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def run_one(config: str, model: str, files_path: Path, timeout: int, profile: Path | None = None) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--worker", config, "--model", model, "--files", str(files_path)]
    if profile is not None:
        cmd += ["--profile-out", str(profile)]
    load0 = _load()
    c0 = _cpu(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    try:
        done = subprocess.run(cmd, env=_env(config), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"config": config, "error": f"timed out after {timeout} s", "load_avg_before": load0}
    wall = time.perf_counter() - t0
    cpu = _cpu(resource.RUSAGE_CHILDREN) - c0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if done.returncode:
        return {"config": config, "error": done.stderr.strip()[-3000:], "load_avg_before": load0}
    row = json.loads(done.stdout.strip().splitlines()[-1])
    row.update(
        config=config,
        wall_s=wall,
        cpu_s=cpu,
        max_child_rss_mb_so_far=round(peak, 1),
        load_avg_before=load0,
        load_avg_after=_load(),
    )
    return row


def _median(rows: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def summarise(rows: list[dict[str, Any]], audio_s: float, n: int) -> dict[str, Any]:
    ok = [r for r in rows if "error" not in r]
    if not ok:
        return {"runs": len(rows), "errors": [r["error"][-500:] for r in rows]}
    cpu = _median(ok, "cpu_s")
    work = statistics.median(r["cpu_s"] - r["startup_cpu_s"] for r in ok)
    run_s = _median(ok, "run_s")
    return {
        "runs": len(ok),
        "errors": len(rows) - len(ok),
        "files_per_s": round(n / run_s, 2),
        "files_per_s_wall": round(n / _median(ok, "wall_s"), 2),
        "run_s": round(run_s, 3),
        "wall_s": round(_median(ok, "wall_s"), 3),
        "cpu_s": round(cpu, 3),
        "startup_cpu_s": round(_median(ok, "startup_cpu_s"), 3),
        "work_cpu_s": round(work, 3),
        "cpu_s_per_audio_hour": round(cpu * 3600 / audio_s, 2),
        "work_cpu_s_per_audio_hour": round(work * 3600 / audio_s, 2),
        "first_result_s": round(_median(ok, "first_result_s"), 3),
        "realtime_factor": round(audio_s / run_s, 1),
        "frames": ok[0]["frames"],
        "vector_sum": ok[0]["vector_sum"],
        "failed_files": ok[0]["failed"],
        "run_s_all": [round(r["run_s"], 3) for r in ok],
        "cpu_s_all": [round(r["cpu_s"], 3) for r in ok],
    }


def _round_ratios(rows: list[dict[str, Any]], a: str, b: str, key: str, invert: bool = False) -> list[float]:
    """Per-round ratio a/b of ``key`` (rounds where both ran)."""
    out = []
    for r in sorted({x["round"] for x in rows}):
        ra = [x for x in rows if x["round"] == r and x["config"] == a and "error" not in x]
        rb = [x for x in rows if x["round"] == r and x["config"] == b and "error" not in x]
        if ra and rb:
            va, vb = ra[0][key], rb[0][key]
            out.append(round(vb / va if invert else va / vb, 3))
    return out


def ratios(summary: dict[str, dict[str, Any]], rows: list[dict[str, Any]]) -> dict[str, Any]:
    def get(cfg: str, key: str) -> float | None:
        s = summary.get(cfg, {})
        return s.get(key)

    out: dict[str, Any] = {}
    for raw in ("raw_lib", "raw_embed"):
        a, b = get("w1", "cpu_s"), get(raw, "cpu_s")
        aw, bw = get("w1", "work_cpu_s"), get(raw, "work_cpu_s")
        if a and b:
            out[f"cpu_w1_over_{raw}"] = round(a / b, 3)
            out[f"cpu_w1_over_{raw}_rounds"] = _round_ratios(rows, "w1", raw, "cpu_s")
        if aw and bw:
            out[f"work_cpu_w1_over_{raw}"] = round(aw / bw, 3)
    for w2 in ("w2", "w2_pinned", "w2_b1", "w1_default"):
        a, b = get(w2, "files_per_s"), get("w1", "files_per_s")
        if a and b:
            out[f"files_per_s_{w2}_over_w1"] = round(a / b, 3)
            out[f"files_per_s_{w2}_over_w1_rounds"] = _round_ratios(rows, w2, "w1", "run_s", invert=True)
    a, b = get("raw_embed_2p", "files_per_s"), get("raw_embed", "files_per_s")
    if a and b:
        out["files_per_s_raw_embed_2p_over_raw_embed"] = round(a / b, 3)
    a, b = get("w1_default", "cpu_s"), get("w1", "cpu_s")
    if a and b:
        out["cpu_w1_default_over_w1"] = round(a / b, 3)
    a, b = get("w1", "files_per_s"), get("raw_lib", "files_per_s")
    if a and b:
        out["files_per_s_w1_over_raw_lib"] = round(a / b, 3)
    a, b = get("w2", "cpu_s"), get("w1", "cpu_s")
    if a and b:
        out["cpu_w2_over_w1"] = round(a / b, 3)
    if "cpu_w1_over_raw_lib" in out:
        out["goal_cpu_w1_over_raw_le_1.1"] = out["cpu_w1_over_raw_lib"] <= 1.1
    if "files_per_s_w2_over_w1" in out:
        out["goal_w2_over_w1_ge_1.8"] = out["files_per_s_w2_over_w1"] >= 1.8
    return out


def equivalence(model: str, files: list[str]) -> dict[str, Any]:
    """Do the configurations compute the same vectors? (first files, in this process; not timed)."""
    import numpy as np

    os.environ.update({k: "1" for k in THREAD_VARS})
    got = {c: list(_vectors(c, model, files, 1)) for c in ("w1", "raw_embed", "raw_lib")}
    out: dict[str, Any] = {"files": len(files)}
    for c in ("raw_embed", "raw_lib"):
        diffs, frames_differ = [], 0
        for a, b in zip(got["w1"], got[c], strict=True):
            m = min(len(a), len(b))
            frames_differ += len(a) != len(b)
            scale = float(np.max(np.abs(a[:m]))) or 1.0
            diffs.append(float(np.max(np.abs(a[:m] - b[:m]))) / scale)
        out[f"w1_vs_{c}"] = {
            "max_rel_diff": float(f"{max(diffs):.3g}"),
            "median_rel_diff": float(f"{statistics.median(diffs):.3g}"),
            "files_with_other_frame_count": frames_differ,
        }
    return out


def top_costs(prof_path: Path, n: int = 15) -> dict[str, Any]:
    import pstats

    st = pstats.Stats(str(prof_path))
    total = st.total_tt  # type: ignore[attr-defined]
    rows = []
    for (file, line, func), (_cc, nc, tt, ct, _) in st.stats.items():  # type: ignore[attr-defined]
        name = f"{Path(file).name}:{line}({func})" if line else func
        where = file.split("site-packages/")[-1] if "site-packages" in file else file.replace(str(REPO) + "/", "")
        rows.append(
            {"function": name, "file": where, "ncalls": nc, "tottime_s": round(tt, 4), "cumtime_s": round(ct, 4)}
        )
    by_tot = sorted(rows, key=lambda r: -r["tottime_s"])[:n]
    by_cum = [
        r
        for r in sorted(rows, key=lambda r: -r["cumtime_s"])
        if "(<" not in r["function"] and "importlib" not in r["file"] and "<frozen" not in r["file"]
    ][:n]
    own = [r for r in sorted(rows, key=lambda r: -r["cumtime_s"]) if r["file"].startswith("src/audiovec")][:n]
    return {"total_s": round(total, 3), "top_by_tottime": by_tot, "top_by_cumtime": by_cum, "audiovec_by_cumtime": own}


def _git_state() -> dict[str, Any]:
    def git(*a: str) -> str:
        return subprocess.run(["git", *a], cwd=REPO, capture_output=True, text=True).stdout.strip()

    diff = git("diff", "HEAD", "--", "src")
    return {
        "head": git("rev-parse", "HEAD"),
        "src_modified_files": git("diff", "--name-only", "HEAD", "--", "src").split(),
        "src_diff_sha256": hashlib.sha256(diff.encode()).hexdigest()[:16] if diff else None,
    }


def table(result: dict[str, Any]) -> str:
    lines = []
    head = (
        f"{'model':<7} {'data':<5} {'config':<10} {'files/s':>9} {'CPU s':>8} {'CPU s/audio h':>14} "
        f"{'work CPU s/h':>13} {'startup CPU':>11} {'1st res s':>9} {'x realtime':>10}"
    )
    lines.append(head)
    lines.append("-" * len(head))
    for key, block in result["results"].items():
        model, data = key.split("/")
        for cfg in CONFIGS:
            s = block["configs"].get(cfg)
            if not s or "files_per_s" not in s:
                if s:
                    lines.append(f"{model:<7} {data:<5} {cfg:<10} ERROR {s.get('errors')}")
                continue
            lines.append(
                f"{model:<7} {data:<5} {cfg:<10} {s['files_per_s']:>9.1f} {s['cpu_s']:>8.2f} "
                f"{s['cpu_s_per_audio_hour']:>14.1f} {s['work_cpu_s_per_audio_hour']:>13.1f} "
                f"{s['startup_cpu_s']:>11.2f} {s['first_result_s']:>9.2f} {s['realtime_factor']:>10.0f}"
            )
        r = block["ratios"]
        lines.append(
            f"{'':<14} w1/raw_lib CPU {r.get('cpu_w1_over_raw_lib', float('nan')):.3f} (work only "
            f"{r.get('work_cpu_w1_over_raw_lib', float('nan')):.3f}; goal <= 1.1) | w1/raw_embed CPU "
            f"{r.get('cpu_w1_over_raw_embed', float('nan')):.3f} "
            f"(work {r.get('work_cpu_w1_over_raw_embed', float('nan')):.3f})"
            f" | w2/w1 files/s {r.get('files_per_s_w2_over_w1', float('nan')):.3f} (goal >= 1.8; pinned "
            f"{r.get('files_per_s_w2_pinned_over_w1', float('nan')):.3f}, batch 1 "
            f"{r.get('files_per_s_w2_b1_over_w1', float('nan')):.3f}; raw 2 procs / 1 proc "
            f"{r.get('files_per_s_raw_embed_2p_over_raw_embed', float('nan')):.3f})"
        )
        lines.append(f"{'':<14} load avg over these runs: {block['load_avg_range']}")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="mfcc,yamnet")
    p.add_argument("--datasets", default="fsdd,long")
    p.add_argument("--configs", default=",".join(CONFIGS))
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--limit", type=int, default=None, help="first N files of each dataset (smoke tests)")
    p.add_argument("--long-dir", type=Path, default=LONG_DIR)
    p.add_argument("--timeout", type=int, default=900, help="seconds per subprocess")
    p.add_argument("--profile", action="store_true", help="profile w1 even when the CPU goal is met")
    p.add_argument("--out", type=Path, default=ROOT / "results" / "ingest_speed.json")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--model", help=argparse.SUPPRESS)
    p.add_argument("--files", help=argparse.SUPPRESS)
    p.add_argument("--profile-out", dest="profile_file", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return 0

    import soundfile as sf

    models = [m for m in args.models.split(",") if m]
    datasets = [d for d in args.datasets.split(",") if d]
    configs = [c for c in args.configs.split(",") if c]
    if "long" in datasets and len(list(args.long_dir.glob("*.flac"))) < 10:
        print(f"making the long files in {args.long_dir} (benchmarks/make_corpus.py --long)", flush=True)
        subprocess.run(
            [sys.executable, str(ROOT / "make_corpus.py"), "--long", "--out", str(args.long_dir)], check=True
        )
    t_start = time.perf_counter()
    result: dict[str, Any] = {
        "benchmark": "ingest_speed",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "host": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "code": _git_state(),
        "settings": {
            "repeats": args.repeats,
            "configs": configs,
            "batch_size": 16,
            "threads": {
                "pinned_configs": [c for c in configs if c in PINNED],
                "pinned_to_1": [*list(THREAD_VARS), "YAMNet/LiteRT num_threads"],
                "w1_default, w2, w2_b1": "library defaults (variables removed, YAMNet num_threads unset)",
            },
            "cpu": "user+sys of the whole subprocess tree: getrusage(RUSAGE_CHILDREN) delta in the driver",
            "files_per_s": "files / timed section (after imports: model load, worker start-up, every file)",
            "raw_lib": "soundfile + soxr HQ + librosa melspectrogram/power_to_db/mfcc (mfcc) or the LiteRT "
            "interpreter, one call per whole file (yamnet)",
            "raw_embed": "soundfile + soxr HQ + embedder.embed(Audio) in a plain loop",
            "raw_embed_2p": "raw_embed in multiprocessing.Pool(2, spawn).imap (chunks of 16, or 1 below 64 files)",
        },
        "load_avg_start": _load(),
        "results": {},
    }
    with tempfile.TemporaryDirectory(prefix="ingest_speed-") as tmp:
        work = Path(tmp)
        for data in datasets:
            files = sorted(FSDD.glob("*.flac")) if data == "fsdd" else sorted(args.long_dir.glob("*.flac"))
            files = [str(f) for f in files[: args.limit]]
            audio_s = sum(sf.info(f).duration for f in files)
            files_path = work / f"{data}.txt"
            files_path.write_text("\n".join(files) + "\n")
            for f in files:  # warm the page cache: every configuration reads from memory
                Path(f).read_bytes()
            for model in models:
                key = f"{model}/{data}"
                print(f"{key}: {len(files)} files, {audio_s / 3600:.3f} h of audio", flush=True)
                eq = equivalence(model, files[: min(20, len(files)) if data == "fsdd" else 1])
                rows: list[dict[str, Any]] = []
                code_before = _git_state()
                for rnd in range(args.repeats):
                    order = configs[rnd % len(configs) :] + configs[: rnd % len(configs)]
                    for cfg in order:
                        row = run_one(cfg, model, files_path, args.timeout)
                        row["round"] = rnd
                        rows.append(row)
                        status = row.get("error", "")[-200:] or (
                            f"{row['run_s']:.2f} s, cpu {row['cpu_s']:.2f} s (startup {row['startup_cpu_s']:.2f}), "
                            f"load {row['load_avg_before']}"
                        )
                        print(f"  round {rnd} {cfg:<10} {status}", flush=True)
                summary = {c: summarise([r for r in rows if r["config"] == c], audio_s, len(files)) for c in configs}
                block: dict[str, Any] = {
                    "code_before": code_before,
                    "code_after": _git_state(),
                    "files": len(files),
                    "audio_s": round(audio_s, 1),
                    "equivalence_first_files": eq,
                    "configs": summary,
                    "ratios": ratios(summary, rows),
                    "load_avg_range": [
                        min(r["load_avg_before"][0] for r in rows),
                        max(r["load_avg_before"][0] for r in rows),
                    ],
                    "runs": rows,
                }
                r = block["ratios"]
                if args.profile or r.get("cpu_w1_over_raw_lib", 0) > 1.1 or r.get("cpu_w1_over_raw_embed", 0) > 1.1:
                    block["profile"] = {}
                    for cfg in ("w1", "raw_embed", "raw_lib"):
                        prof = work / f"{model}-{data}-{cfg}.prof"
                        row = run_one(cfg, model, files_path, args.timeout, profile=prof)
                        block["profile"][cfg] = (
                            top_costs(prof) | {"run_s_profiled": round(row["run_s"], 3)}
                            if "error" not in row
                            else {"error": row["error"][-500:]}
                        )
                result["results"][key] = block
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(json.dumps(result, indent=2) + "\n")  # partial results survive a crash
    result["total_s"] = round(time.perf_counter() - t_start, 1)
    result["code_end"] = _git_state()
    states = {
        json.dumps(b[k], sort_keys=True) for b in result["results"].values() for k in ("code_before", "code_after")
    }
    result["code_changed_during_run"] = len(states | {json.dumps(result["code"], sort_keys=True)}) > 1
    result["load_avg_end"] = _load()
    result["summary"] = {
        key: {k: v for k, v in block["ratios"].items() if not k.endswith("_rounds")}
        | {"load_avg_range": block["load_avg_range"]}
        for key, block in result["results"].items()
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print()
    print(table(result))
    print(f"\nwritten to {args.out} ({result['total_s']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Identification benchmark: fingerprint, vector and filter-and-refine modes on the Wesnoth soundtrack.

Reference set: the 35 Wesnoth tracks (about 127 minutes) made by ``../shared/recipes/music_id.sh``. Build it once
(the recipe uses sox; the package can be unpacked without root)::

    apt-get install -y --no-install-recommends sox libsox-fmt-all      # or any sox with MP3 and GSM support
    apt-get download wesnoth-1.16-music && dpkg-deb -x wesnoth-1.16-music_*.deb /tmp/wesroot
    ROOT=/tmp/wesroot OUT=/tmp/datasets bash ../shared/recipes/music_id.sh
    python benchmarks/identify.py /tmp/datasets/music_id/wesnoth          # about 10 minutes on 2 cores

What it does:

1. Indexes every track: landmark fingerprints (timed), and MFCC segment vectors (``--embedder``, 2 s windows
   every 1 s, ``mean_std+l2``) in an :class:`~audiovec.stores.ExactStore` (timed separately). Both indexes are
   saved to ``--work`` and their size on disk is reported per minute of audio.
2. Removes ``--holdout`` tracks again (chosen with ``--seed``): queries cut from them are the negatives that
   measure false positives ("tracks not in the index").
3. Cuts ``--per-track`` excerpts per track (random start, fixed seed) of 2, 5 and 10 s, and degrades each with
   :mod:`audiovec.audio.degrade`, the degradations of the benchmark's robustness stage: clean; white and pink
   noise at SNR 15, 5, 0 and -5 dB (seeded per excerpt, mixed at the exact SNR); MP3 at 32 kbit/s; GSM 06.10
   (8 kHz); and a 300-3400 Hz band-pass. ``--conditions`` takes these names or any degradation spec
   (``noise:10``, ``mp3:64``, ``excerpt:1``...).
4. Identifies every query in each mode and reports the recognition rate (right track *and* score above the
   threshold) per condition and length, the offset error, false positives on the negatives (overall and per
   condition), query latency from the query file to the answer (decoding included; ms, and seconds of query
   audio per second), indexing speed (x real time) and index size (kB per minute).
5. Calibrates each mode's threshold on half of the held-out tracks (zero false positives there, and a 0.1 % rate
   with :func:`audiovec.identify.calibrate`) and reports the false-positive rate of those thresholds on the other
   half.

Every query's result is appended to a JSON-lines file as soon as it is measured (``--rows-jsonl``, by default in
``--work``, named after the settings that decide the results), with a progress line every ``--progress-every``
seconds. A run that is stopped keeps what it measured: run the same command again and it skips the queries that
file already holds (``--fresh`` starts over). The result JSON is rewritten after each mode, marked
``"complete": false`` until the last one is done.

Results go to ``benchmarks/results/identify.json`` and a Markdown table is printed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import re
import shutil
import sys
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from audiovec import load
from audiovec.audio.degrade import Clean, parse_condition
from audiovec.embedders import get_embedder
from audiovec.errors import ConfigError
from audiovec.identify import MODES, Identifier, calibrate, calibrate_threshold, default_pipeline
from audiovec.identify.fingerprint import FingerprintConfig, FingerprintIndex
from audiovec.stores import ExactStore

SR = 16000
#: The default conditions by their names in the results, and the degradation spec of each.
CONDITION_SPECS = {
    "clean": "clean",
    "white_15dB": "noise:15",
    "white_5dB": "noise:5",
    "white_0dB": "noise:0",
    "white_-5dB": "noise:-5",
    "pink_15dB": "pink:15",
    "pink_5dB": "pink:5",
    "pink_0dB": "pink:0",
    "pink_-5dB": "pink:-5",
    "mp3_32k": "mp3:32",
    "gsm": "gsm",
    "bandpass_300_3400": "bandpass:300-3400",
}
CONDITIONS = list(CONDITION_SPECS)
AUDIO_EXT = {".wav", ".flac", ".ogg", ".mp3"}


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def condition(name: str) -> str:
    """A ``--conditions`` value: a name of :data:`CONDITIONS`, or a degradation spec (checked here)."""
    try:
        return name if name in CONDITION_SPECS else parse_condition(name).spec
    except ConfigError as err:
        raise argparse.ArgumentTypeError(f"{err} (or one of {', '.join(CONDITIONS)})") from err


def degrade(clean: Path, cond: str, out_dir: Path, seed: int) -> Path:
    """Write ``clean`` degraded by ``cond`` (noise seeded by ``seed`` and the clip's name); returns the file."""
    deg = parse_condition(CONDITION_SPECS.get(cond, cond))
    if isinstance(deg, Clean):
        return clean
    out = out_dir / f"{clean.stem}.deg-{re.sub(r'[^A-Za-z0-9.+-]', '_', deg.spec)}.wav"
    if not out.exists():
        audio = deg(load(clean), seed=seed, key=clean.name)
        tmp = out.with_name(out.name + ".part")
        sf.write(tmp, audio.samples.T, audio.sample_rate, subtype="FLOAT", format="WAV")
        os.replace(tmp, out)
    return out


def make_queries(tracks: list[Path], positives: set[str], args: argparse.Namespace, qdir: Path) -> list[dict[str, Any]]:
    jobs: list[tuple[dict[str, Any], Path, str]] = []
    longest = max(args.lengths)
    for path in tracks:
        track = path.stem
        data, sr = sf.read(path, dtype="float32")
        assert sr == SR and data.ndim == 1, (path, sr, data.shape)
        dur = len(data) / sr
        n = args.per_track if track in positives else args.per_track_negative
        rng = np.random.default_rng([args.seed, zlib.crc32(track.encode())])  # per track: stable across settings
        starts = rng.uniform(5.0, max(5.0, dur - longest - 5.0), size=n)
        for start in starts:
            start = round(float(start), 3)
            for length in args.lengths:
                clip = qdir / f"{track}@{start:.3f}+{length:g}s.wav"  # the name says what was cut
                if not clip.exists():
                    i0 = round(start * sr)
                    sf.write(clip, data[i0 : i0 + round(length * sr)], sr, subtype="PCM_16")
                for cond in args.conditions:
                    q = {"track": track, "start": start, "length": length, "condition": cond,
                         "positive": track in positives}  # fmt: skip
                    jobs.append((q, clip, cond))

    def run(job: tuple[dict[str, Any], Path, str]) -> dict[str, Any]:
        q, clip, cond = job
        out = degrade(clip, cond, qdir, args.seed)
        return {**q, "file": str(out), "audio_s": sf.info(out).duration}

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        return list(pool.map(run, jobs))


ROW_KEYS = ("track", "start", "length", "condition")


def row_key(mode: str, q: dict[str, Any]) -> str:
    """The key of one measured query in the rows file: its mode and what was cut and how it was degraded."""
    return "|".join([mode, *(f"{q[k]:g}" if isinstance(q[k], float) else str(q[k]) for k in ROW_KEYS)])


def load_rows(path: Path) -> dict[str, dict[str, Any]]:
    """The rows already measured in a JSON-lines file, by :func:`row_key` (a line cut short by a kill is skipped)."""
    rows: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return rows
    with path.open(encoding="utf-8") as f:
        for line in f:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict) and "mode" in row:
                rows[row_key(row["mode"], row)] = row
    return rows


def measure(ident: Identifier, mode: str, q: dict[str, Any]) -> dict[str, Any]:
    """Identify one query from its file; ``seconds`` runs from the file to the answer (decoding included)."""
    t0 = time.perf_counter()
    r = ident.identify(q["file"], mode=mode)  # type: ignore[arg-type]
    elapsed = time.perf_counter() - t0
    best = r.candidates[0] if r.candidates else None
    return {
        "mode": mode,
        **{k: q[k] for k in ("track", "start", "length", "condition", "positive")},
        "seconds": elapsed,
        "decode_seconds": r.timings.get("decode", 0.0),
        "audio_s": q["audio_s"],
        "best": best.track_id if best else None,
        "best_offset": best.offset if best else None,
        "score": r.score,
        "margin": r.margin,
        "confidence": r.confidence,
        "in_shortlist": None if r.shortlist is None else q["track"] in r.shortlist,
    }


def evaluate(
    ident: Identifier,
    mode: str,
    queries: list[dict[str, Any]],
    rows_file: Path | None = None,
    progress_every: float = 30.0,
) -> list[dict[str, Any]]:
    """Measure every query in ``mode``, appending each row to ``rows_file`` and skipping the rows it already has."""
    done = load_rows(rows_file) if rows_file is not None else {}
    rows: list[dict[str, Any]] = []
    todo = [q for q in queries if row_key(mode, q) not in done]
    if len(todo) < len(queries):
        print(f"{mode}: {len(queries) - len(todo)} of {len(queries)} queries already measured in {rows_file}")
    sink = rows_file.open("a", encoding="utf-8") if rows_file is not None and todo else None
    if sink is not None and rows_file is not None and rows_file.stat().st_size:
        with rows_file.open("rb") as f:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":  # a line cut short by a kill: end it, so the next row starts on its own line
                sink.write("\n")
    t0 = last = time.perf_counter()
    try:
        for n, q in enumerate(todo, 1):
            row = measure(ident, mode, q)
            done[row_key(mode, q)] = row
            if sink is not None:
                sink.write(json.dumps(row) + "\n")
                sink.flush()
            now = time.perf_counter()
            if now - last >= progress_every or n == len(todo):
                last = now
                rate = n / (now - t0)
                print(
                    f"{mode}: {n}/{len(todo)} queries, {rate:.1f}/s, about {(len(todo) - n) / rate:.0f} s left",
                    flush=True,
                )
    finally:
        if sink is not None:
            sink.close()
    for q in queries:
        rows.append(done[row_key(mode, q)])
    return rows


def summarise(
    rows: list[dict[str, Any]], threshold: float, lengths: list[float], conditions: list[str]
) -> dict[str, Any]:
    pos = [r for r in rows if r["positive"]]
    neg = [r for r in rows if not r["positive"]]

    def correct(r: dict[str, Any]) -> bool:
        return bool(r["best"] == r["track"] and r["score"] >= threshold)

    table: dict[str, dict[str, float]] = {}
    for cond in conditions:
        table[cond] = {}
        for length in lengths:
            sel = [r for r in pos if r["condition"] == cond and r["length"] == length]
            table[cond][f"{length:g}s"] = float(np.mean([correct(r) for r in sel])) if sel else float("nan")
    by_len = {f"{length:g}s": float(np.mean([correct(r) for r in pos if r["length"] == length])) for length in lengths}
    ok = [r for r in pos if correct(r)]
    off_err = np.array([abs(r["best_offset"] - r["start"]) for r in ok]) if ok else np.zeros(0)
    fp = [r for r in neg if r["score"] >= threshold]
    fp_by_cond: dict[str, dict[str, float]] = {}
    for cond in conditions:
        sel = [r for r in neg if r["condition"] == cond]
        k = sum(r["score"] >= threshold for r in sel)
        fp_by_cond[cond] = {
            "false_positives": k,
            "negatives": len(sel),
            "false_positive_rate": k / len(sel) if sel else float("nan"),
            "negative_score_max": float(max((r["score"] for r in sel), default=float("nan"))),
        }
    secs = np.array([r["seconds"] for r in rows])
    decode = np.array([r.get("decode_seconds", 0.0) for r in rows])
    return {
        "threshold": threshold,
        "recognition": table,
        "recognition_by_length": by_len,
        "recognition_overall": float(np.mean([correct(r) for r in pos])) if pos else float("nan"),
        "top1_overall": float(np.mean([r["best"] == r["track"] for r in pos])) if pos else float("nan"),
        "offset_within_0.1s": float(np.mean(off_err <= 0.1)) if len(off_err) else float("nan"),
        "offset_median_abs_error_s": float(np.median(off_err)) if len(off_err) else float("nan"),
        "positives": len(pos),
        "negatives": len(neg),
        "false_positives": len(fp),
        "false_positive_rate": len(fp) / len(neg) if neg else float("nan"),
        "false_positives_by_condition": fp_by_cond,
        "latency_ms_mean": float(secs.mean() * 1000),
        "latency_ms_p95": float(np.percentile(secs, 95) * 1000),
        "latency_includes_decode": True,
        "decode_ms_mean": float(decode.mean() * 1000),
        "query_audio_s_per_s": float(sum(r["audio_s"] for r in rows) / secs.sum()),
        "negative_score_max": float(max((r["score"] for r in neg), default=float("nan"))),
        "shortlist_recall": (
            float(np.mean([r["in_shortlist"] for r in pos])) if pos and pos[0]["in_shortlist"] is not None else None
        ),
    }


def calibrated(
    rows: list[dict[str, Any]], holdout: list[str], lengths: list[float], conditions: list[str]
) -> dict[str, Any]:
    """Calibrate on the first half of the held-out tracks, report the false-positive rate on the second half."""
    half = max(1, len(holdout) // 2)
    cal, test = set(holdout[:half]), set(holdout[half:])
    cal_scores = [r["score"] for r in rows if not r["positive"] and r["track"] in cal]
    thr = calibrate_threshold(cal_scores, 0.0)
    test_rows = [r for r in rows if r["positive"] or r["track"] in test]
    s = summarise(test_rows, thr, lengths, conditions)
    thr_rate = calibrate(cal_scores, 0.001).threshold if cal_scores else float("nan")
    s_rate = summarise(test_rows, thr_rate, lengths, conditions)
    return {
        "calibration_tracks": sorted(cal),
        "evaluation_tracks": sorted(test),
        "threshold": thr,
        "false_positive_rate": s["false_positive_rate"],
        "false_positives": s["false_positives"],
        "negatives": s["negatives"],
        "recognition_overall": s["recognition_overall"],
        "false_positives_by_condition": s["false_positives_by_condition"],
        "fpr_0.001": {
            "threshold": thr_rate,
            "false_positives": s_rate["false_positives"],
            "false_positive_rate": s_rate["false_positive_rate"],
            "recognition_overall": s_rate["recognition_overall"],
        },
    }


def markdown(result: dict[str, Any]) -> str:
    modes = list(result["modes"])
    lengths = result["setup"]["lengths"]
    head = ["condition"] + [f"{m} {length:g}s" for m in modes for length in lengths]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for cond in result["setup"]["conditions"]:
        cells = [cond]
        for m in modes:
            for length in lengths:
                cells.append(f"{100 * result['modes'][m]['summary']['recognition'][cond][f'{length:g}s']:.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    cells = ["**all conditions**"]
    for m in modes:
        for length in lengths:
            cells.append(f"**{100 * result['modes'][m]['summary']['recognition_by_length'][f'{length:g}s']:.1f}**")
    lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        "| mode | threshold | false positives | offset within 0.1 s | latency ms incl. decoding (mean / p95) "
        "| query s per s "
        "| indexing x real time | index kB/min |"
    )
    lines.append("|---|---|---|---|---|---|---|---|")
    for m in modes:
        s = result["modes"][m]["summary"]
        ix = result["modes"][m]["index"]
        lines.append(
            f"| {m} | {s['threshold']:g} | {s['false_positives']}/{s['negatives']} "
            f"({100 * s['false_positive_rate']:.1f} %) | {100 * s['offset_within_0.1s']:.0f} % "
            f"| {s['latency_ms_mean']:.1f} / {s['latency_ms_p95']:.1f} | {s['query_audio_s_per_s']:.0f} "
            f"| {ix['x_realtime']:.0f} | {ix['kb_per_minute']:.1f} |"
        )
    lines.append("")
    lines.append("False positives per condition (negatives scoring at least the threshold):")
    lines.append("")
    lines.append("| condition | " + " | ".join(modes) + " |")
    lines.append("|---|" + "---|" * len(modes))
    for cond in result["setup"]["conditions"]:
        cells = [cond]
        for m in modes:
            c = result["modes"][m]["summary"]["false_positives_by_condition"][cond]
            cells.append(f"{c['false_positives']}/{c['negatives']}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("reference", type=Path, help="folder of reference tracks (music_id.sh output)")
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "identify.json")
    p.add_argument("--work", type=Path, default=Path("/tmp/audiovec_identify_bench"))
    p.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    p.add_argument("--lengths", nargs="+", type=float, default=[2.0, 5.0, 10.0])
    p.add_argument(
        "--conditions", nargs="+", type=condition, default=CONDITIONS, help="names or degradation specs (noise:10...)"
    )
    p.add_argument("--per-track", type=int, default=2, help="excerpts per indexed track")
    p.add_argument("--per-track-negative", type=int, default=4, help="excerpts per held-out track")
    p.add_argument("--holdout", type=int, default=5, help="tracks removed from the index after indexing")
    p.add_argument("--max-tracks", type=int, default=None, help="use only the first N tracks (quick runs)")
    p.add_argument("--embedder", default="mfcc")
    p.add_argument(
        "--embedder-param", action="append", default=[], metavar="KEY=VALUE", help="embedder parameter, repeatable"
    )
    p.add_argument("--candidates", type=int, default=10, help="filter_refine: tracks passed to fingerprints")
    p.add_argument("--fp-param", action="append", default=[], metavar="KEY=VALUE", help="FingerprintConfig field")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fresh", action="store_true", help="delete the work folder first")
    p.add_argument("--rows", action="store_true", help="also write every query's result to the JSON")
    p.add_argument(
        "--rows-jsonl",
        type=Path,
        default=None,
        help="append every query's result here as it is measured, and skip those it holds on a rerun (default: "
        "WORK/rows-<settings digest>.jsonl)",
    )
    p.add_argument("--progress-every", type=float, default=30.0, help="seconds between progress lines")
    args = p.parse_args(argv)

    tracks = sorted(f for f in args.reference.rglob("*") if f.suffix.lower() in AUDIO_EXT)
    if args.max_tracks:
        tracks = tracks[: args.max_tracks]
    if len(tracks) <= args.holdout:
        print(f"need more than {args.holdout} tracks in {args.reference}", file=sys.stderr)
        return 2
    if args.fresh:
        shutil.rmtree(args.work, ignore_errors=True)
    qdir = args.work / "queries"
    qdir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    holdout = sorted(str(t) for t in rng.choice([t.stem for t in tracks], size=args.holdout, replace=False))
    positives = {t.stem for t in tracks} - set(holdout)
    total_s = sum(sf.info(t).duration for t in tracks)
    print(f"{len(tracks)} tracks, {total_s / 60:.1f} min; held out: {', '.join(holdout)}", flush=True)

    fp_params = {k: _value(v) for k, v in (item.split("=", 1) for item in args.fp_param)}
    config = FingerprintConfig.from_dict(fp_params)

    # ---- indexing: fingerprints and vectors separately, so each mode gets its own indexing speed
    fp_dir, vec_dir = args.work / "fingerprints", args.work / "vectors"
    shutil.rmtree(fp_dir, ignore_errors=True)
    shutil.rmtree(vec_dir, ignore_errors=True)
    fp_index = FingerprintIndex(config)
    t0, c0 = time.perf_counter(), time.process_time()
    for t in tracks:
        fp_index.add_file(t, t.stem)
    fp_index.stats()
    fp_seconds, fp_cpu = time.perf_counter() - t0, time.process_time() - c0
    emb_params = {k: _value(v) for k, v in (item.split("=", 1) for item in args.embedder_param)}
    embedder = get_embedder(args.embedder, **emb_params)
    pipe = default_pipeline()
    store = ExactStore(vec_dir, dim=pipe.output_dim(embedder.dim), metric="cosine", id_type="str")
    vec_seconds = math.nan
    if set(args.modes) != {"fingerprint"}:  # vectors only where a mode uses them
        vec_only = Identifier(None, store, embedder, pipe)
        t0 = time.perf_counter()
        for t in tracks:
            vec_only.add(t, t.stem)
        vec_seconds = time.perf_counter() - t0
    ident = Identifier(fp_index, store, embedder, pipe, candidates=args.candidates)
    t0 = time.perf_counter()
    for h in holdout:
        ident.remove(h)
    remove_ms = (time.perf_counter() - t0) / len(holdout) * 1000
    fp_index.save(fp_dir)
    store.save()
    indexed_s = sum(fp_index.track(t).duration for t in fp_index.track_ids)
    stats = fp_index.stats()
    fp_kb = du(fp_dir) / 1000 / (indexed_s / 60)
    vec_kb = du(vec_dir) / 1000 / (indexed_s / 60)
    print(
        f"fingerprints: {total_s / fp_seconds:.0f}x real time ({total_s / fp_cpu:.0f}x per CPU-second, decoding "
        f"included), {stats.landmarks_per_second:.0f} landmarks/s, "
        f"{fp_kb:.1f} kB/min on disk; vectors ({args.embedder}): {total_s / vec_seconds:.0f}x real time, "
        f"{store.count()} segments, {vec_kb:.1f} kB/min; removing a track: {remove_ms:.1f} ms",
        flush=True,
    )
    index_info = {
        "fingerprint": {
            "x_realtime": total_s / fp_seconds,
            "x_realtime_per_cpu_s": total_s / fp_cpu,
            "kb_per_minute": fp_kb,
        },
        "vector": {"x_realtime": total_s / vec_seconds, "kb_per_minute": vec_kb},
        "filter_refine": {
            "x_realtime": total_s / (fp_seconds + vec_seconds),
            "kb_per_minute": fp_kb + vec_kb,
        },
    }

    # ---- queries
    t0 = time.perf_counter()
    queries = make_queries(tracks, positives, args, qdir)
    print(f"{len(queries)} queries made in {time.perf_counter() - t0:.0f} s", flush=True)

    result: dict[str, Any] = {
        "setup": {
            "reference": str(args.reference),
            "tracks": len(tracks),
            "minutes": total_s / 60,
            "indexed_tracks": len(positives),
            "indexed_minutes": indexed_s / 60,
            "holdout": holdout,
            "lengths": args.lengths,
            "conditions": args.conditions,
            "per_track": args.per_track,
            "per_track_negative": args.per_track_negative,
            "embedder": embedder.spec().model_dump(mode="json"),
            "pipeline": pipe.describe(),
            "candidates": args.candidates,
            "fingerprint_config": config.to_dict(),
            "landmarks_per_second": stats.landmarks_per_second,
            "fingerprint_bytes_in_memory_per_minute": stats.kb_per_minute * 1000,
            "remove_track_ms": remove_ms,
            "seed": args.seed,
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
            f"numpy {np.__version__}",
        },
        "modes": {},
    }
    # the rows file belongs to the settings that decide every row: a change of them starts a new file
    decisive = {
        k: result["setup"][k]
        for k in ("reference", "tracks", "holdout", "embedder", "pipeline", "candidates", "fingerprint_config", "seed")
    }
    decisive["thresholds"] = [ident.min_score, ident.min_similarity]
    digest = hashlib.sha256(json.dumps(decisive, sort_keys=True).encode()).hexdigest()[:12]
    rows_file = args.rows_jsonl or args.work / f"rows-{digest}.jsonl"
    result["setup"]["rows_jsonl"] = str(rows_file)
    print(f"query results go to {rows_file} as they are measured", flush=True)
    result["complete"] = False
    for n_mode, mode in enumerate(args.modes, 1):
        t0 = time.perf_counter()
        rows = evaluate(ident, mode, queries, rows_file, args.progress_every)
        threshold = ident.min_similarity if mode == "vector" else ident.min_score
        summary = summarise(rows, threshold, args.lengths, args.conditions)
        result["modes"][mode] = {
            "index": index_info[mode],
            "summary": summary,
            "calibrated": calibrated(rows, holdout, args.lengths, args.conditions),
        }
        if args.rows:
            result["modes"][mode]["rows"] = rows
        print(
            f"{mode}: recognition {100 * summary['recognition_overall']:.1f} % (top-1 "
            f"{100 * summary['top1_overall']:.1f} %), false positives {summary['false_positives']}/"
            f"{summary['negatives']}, {summary['latency_ms_mean']:.1f} ms/query, "
            f"{time.perf_counter() - t0:.0f} s",
            flush=True,
        )
        result["complete"] = n_mode == len(args.modes)
        table = markdown(result)
        result["table_markdown"] = table
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_name(args.out.name + ".part")
        tmp.write_text(json.dumps(result, indent=1))
        os.replace(tmp, args.out)
    print(table)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

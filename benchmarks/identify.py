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
   threshold) per condition and length, the offset error, false positives on the negatives, query latency (ms
   and seconds of query audio per second), indexing speed (x real time) and index size (kB per minute).
5. Calibrates each mode's threshold on half of the held-out tracks (zero false positives there) and reports the
   false-positive rate of that threshold on the other half.

Results go to ``benchmarks/results/identify.json`` and a Markdown table is printed.
"""

from __future__ import annotations

import argparse
import json
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
from audiovec.identify import MODES, Identifier, calibrate_threshold, default_pipeline
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
        return {**q, "file": str(degrade(clip, cond, qdir, args.seed))}

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        return list(pool.map(run, jobs))


def evaluate(ident: Identifier, mode: str, queries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for q in queries:
        audio = load(q["file"])
        t0 = time.perf_counter()
        r = ident.identify(audio, mode=mode)  # type: ignore[arg-type]
        elapsed = time.perf_counter() - t0
        best = r.candidates[0] if r.candidates else None
        rows.append(
            {
                **{k: q[k] for k in ("track", "start", "length", "condition", "positive")},
                "seconds": elapsed,
                "audio_s": audio.duration,
                "best": best.track_id if best else None,
                "best_offset": best.offset if best else None,
                "score": r.score,
                "margin": r.margin,
                "in_shortlist": None if r.shortlist is None else q["track"] in r.shortlist,
            }
        )
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
    secs = np.array([r["seconds"] for r in rows])
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
        "latency_ms_mean": float(secs.mean() * 1000),
        "latency_ms_p95": float(np.percentile(secs, 95) * 1000),
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
    return {
        "calibration_tracks": sorted(cal),
        "evaluation_tracks": sorted(test),
        "threshold": thr,
        "false_positive_rate": s["false_positive_rate"],
        "false_positives": s["false_positives"],
        "negatives": s["negatives"],
        "recognition_overall": s["recognition_overall"],
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
        "| mode | threshold | false positives | offset within 0.1 s | latency ms (mean / p95) | query s per s "
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
    config = FingerprintConfig(**fp_params)

    # ---- indexing: fingerprints and vectors separately, so each mode gets its own indexing speed
    fp_dir, vec_dir = args.work / "fingerprints", args.work / "vectors"
    shutil.rmtree(fp_dir, ignore_errors=True)
    shutil.rmtree(vec_dir, ignore_errors=True)
    fp_index = FingerprintIndex(config)
    t0 = time.perf_counter()
    for t in tracks:
        fp_index.add_file(t, t.stem)
    fp_index.stats()
    fp_seconds = time.perf_counter() - t0
    emb_params = {k: _value(v) for k, v in (item.split("=", 1) for item in args.embedder_param)}
    embedder = get_embedder(args.embedder, **emb_params)
    pipe = default_pipeline()
    store = ExactStore(vec_dir, dim=pipe.output_dim(embedder.dim), metric="cosine", id_type="str")
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
        f"fingerprints: {total_s / fp_seconds:.0f}x real time, {stats.landmarks_per_second:.0f} landmarks/s, "
        f"{fp_kb:.1f} kB/min on disk; vectors ({args.embedder}): {total_s / vec_seconds:.0f}x real time, "
        f"{store.count()} segments, {vec_kb:.1f} kB/min; removing a track: {remove_ms:.1f} ms",
        flush=True,
    )
    index_info = {
        "fingerprint": {"x_realtime": total_s / fp_seconds, "kb_per_minute": fp_kb},
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
            "fingerprint_config": config.model_dump(mode="json"),
            "landmarks_per_second": stats.landmarks_per_second,
            "fingerprint_bytes_in_memory_per_minute": stats.kb_per_minute * 1000,
            "remove_track_ms": remove_ms,
            "seed": args.seed,
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
            f"numpy {np.__version__}",
        },
        "modes": {},
    }
    for mode in args.modes:
        t0 = time.perf_counter()
        rows = evaluate(ident, mode, queries)
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
    table = markdown(result)
    result["table_markdown"] = table
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(table)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

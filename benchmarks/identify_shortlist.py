"""Fingerprint matching with and without the coarse-vote shortlist, on the same queries, interleaved.

For every query (a WAV named like ``benchmarks/identify.py`` names its queries: ``<track>@<start>+<len>s.wav``,
degraded ones ``...deg-<condition>.wav``), fingerprints it once, then times :meth:`FingerprintIndex.match`
exactly (the default: coarse offset votes bound every track's score, and tracks are scored exactly from the
highest bound down until none left can enter the result) and with ``shortlist=N`` (only the N tracks with the best
coarse votes are scored exactly), alternately, one thread. Reports per condition how many queries each recognises
(right track, score at least the threshold), whether the shortlisted answer is the exact answer, and the mean
match time of each (fingerprinting excluded: both share it), and the shortlist recall: for queries of indexed
tracks, how often the right track is among the N shortlisted ones (``shortlist_<N>_recall`` of ``positives``).

Usage (with the index and queries that ``benchmarks/identify.py --work DIR`` leaves in ``DIR``)::

    python benchmarks/identify_shortlist.py DIR/fingerprints DIR/queries --shortlist 20 50 --queries 240

Writes ``benchmarks/results/identify_shortlist.json`` (``--output``).
"""

from __future__ import annotations

import argparse
import collections
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from audiovec import load
from audiovec.identify.fingerprint import FingerprintIndex, fingerprint

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("index", type=Path, help="a fingerprint index folder")
    ap.add_argument("queries", type=Path, help="folder of query WAVs named <track>@<start>+<len>s[.deg-<cond>].wav")
    ap.add_argument("--shortlist", type=int, nargs="+", default=[20, 50])
    ap.add_argument("--queries", dest="n", type=int, default=240, help="random queries to use (seeded)")
    ap.add_argument("--threshold", type=float, default=25.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results" / "identify_shortlist.json")
    args = ap.parse_args()
    idx = FingerprintIndex.open(args.index)
    files = sorted(args.queries.glob("*.wav"))
    files = [files[i] for i in np.random.default_rng(args.seed).permutation(len(files))[: args.n]]
    stats: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    times: dict[str, list[float]] = collections.defaultdict(list)
    for path in files:
        track = path.name.split("@")[0]
        cond = path.stem.split(".deg-")[1] if ".deg-" in path.name else "clean"
        fp = fingerprint(load(path), idx.config, query=True)

        def ok(matches: list[Any], track: str = track) -> bool:
            return bool(matches) and matches[0].score >= args.threshold and matches[0].track_id.startswith(track)

        t0 = time.perf_counter()
        exact = idx.match(fp, limit=5)
        times["exact"].append(time.perf_counter() - t0)
        s = stats[cond]
        s["queries"] += 1
        s["exact"] += ok(exact)
        positive = track in idx
        s["positives"] += positive
        for n in args.shortlist:
            t0 = time.perf_counter()
            short = idx.match(fp, limit=5, shortlist=n)
            times[f"shortlist_{n}"].append(time.perf_counter() - t0)
            s[f"shortlist_{n}"] += ok(short)
            s[f"shortlist_{n}_same_answer"] += bool(exact) == bool(short) and (
                not exact or (exact[0].track_id, exact[0].score) == (short[0].track_id, short[0].score)
            )
            if positive:  # every shortlisted track that has a hit, scored exactly (untimed)
                s[f"shortlist_{n}_recall"] += any(m.track_id == track for m in idx.match(fp, limit=n, shortlist=n))
    result = {
        "index": str(args.index),
        "tracks": len(idx.track_ids),
        "queries": len(files),
        "threshold": args.threshold,
        "by_condition": {c: dict(s) for c, s in sorted(stats.items())},
        "match_ms_mean": {k: 1000 * float(np.mean(v)) for k, v in times.items()},
        "match_ms_median": {k: 1000 * float(np.median(v)) for k, v in times.items()},
    }
    total = collections.Counter[str]()
    for s in stats.values():
        total.update(s)
    result["all"] = dict(total)
    print(f"{len(idx.track_ids)} tracks, {len(files)} queries, threshold {args.threshold:g}")
    for c, s in result["by_condition"].items():
        print(f"  {c:>10}: " + ", ".join(f"{k} {v}" for k, v in s.items()))
    for k in times:
        print(f"  {k}: match {result['match_ms_mean'][k]:.1f} ms mean, {result['match_ms_median'][k]:.1f} ms median")
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()

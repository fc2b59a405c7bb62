"""Find tracks of a reference set that share audio (the same recording twice, a loop and its intro version...).

An identification benchmark counts a query as wrong when it names another track, so a reference set must not hold
the same recording twice. File hashes (``music_large.sh``) only catch identical files; this indexes every track's
landmark fingerprints and queries excerpts of each track against all the others::

    python benchmarks/recipes/find_duplicates.py /data/music_large --out /tmp/dups.tsv

A pair is reported when an excerpt of one track matches another track with a fingerprint score of at least
``--min-score`` (default: the identifier's threshold). Prints the pairs, strongest first, and writes them as TSV.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from audiovec import Audio
from audiovec.identify import DEFAULT_MIN_SCORE
from audiovec.identify.fingerprint import FingerprintConfig, FingerprintIndex

AUDIO_EXT = {".wav", ".flac", ".ogg", ".mp3"}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("reference", type=Path, help="folder of reference tracks (searched recursively)")
    p.add_argument("--excerpts", type=int, default=5, help="excerpts per track, spread evenly over it")
    p.add_argument("--length", type=float, default=10.0, help="excerpt length, seconds")
    p.add_argument("--min-score", type=float, default=DEFAULT_MIN_SCORE)
    p.add_argument("--out", type=Path, default=None, help="write the pairs here (TSV)")
    args = p.parse_args(argv)

    tracks = sorted(f for f in args.reference.rglob("*") if f.suffix.lower() in AUDIO_EXT)
    stems = [t.stem for t in tracks]
    if len(set(stems)) != len(stems):
        dup = sorted({s for s in stems if stems.count(s) > 1})
        print(f"track names (file stems) are not unique: {', '.join(dup[:10])}", file=sys.stderr)
        return 2
    index = FingerprintIndex(FingerprintConfig())
    t0 = time.perf_counter()
    for t in tracks:
        index.add_file(t, t.stem)
    index.stats()
    print(f"indexed {len(tracks)} tracks in {time.perf_counter() - t0:.0f} s", flush=True)

    pairs: dict[tuple[str, str], list[float]] = {}
    t0 = time.perf_counter()
    for k, t in enumerate(tracks, 1):
        data, sr = sf.read(t, dtype="float32", always_2d=True)
        data = data.mean(axis=1)
        n = round(args.length * sr)
        if len(data) <= n:
            starts = [0]
        else:
            starts = np.linspace(0, len(data) - n, args.excerpts + 2)[1:-1].astype(int).tolist()
        for s in starts:
            for m in index.match_audio(Audio(data[s : s + n], sr), limit=5):
                if m.track_id != t.stem and m.score >= args.min_score:
                    pairs.setdefault((t.stem, m.track_id), []).append(float(m.score))
        if k % 100 == 0:
            print(f"{k}/{len(tracks)} tracks queried, {time.perf_counter() - t0:.0f} s", flush=True)
    rows = sorted(((a, b, len(s), max(s)) for (a, b), s in pairs.items()), key=lambda r: (-r[3], r[0]))
    lines = ["query_track\tmatched_track\texcerpts_matched\tmax_score"]
    lines += [f"{a}\t{b}\t{k}/{args.excerpts}\t{s:g}" for a, b, k, s in rows]
    print("\n".join(lines))
    print(f"{len(rows)} pairs of tracks share audio (score >= {args.min_score:g})")
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

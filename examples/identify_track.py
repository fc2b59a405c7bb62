"""Identify a track from a short, noisy excerpt: index a few songs, then ask for the song and the position.

Run from the repository root (the default files are the real Jamendo pair in ../shared/data/music):

    python examples/identify_track.py
    python examples/identify_track.py --index my_music/ --query phone_recording.wav

The same from the command line: ``audiovec fingerprint index my_music/ --db music.idx`` then
``audiovec identify phone_recording.wav --db music.idx``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy.signal import butter, sosfilt  # scipy comes with librosa, a core dependency

from audiovec import Audio, load
from audiovec.identify import Identifier
from audiovec.identify.fingerprint import FingerprintIndex
from audiovec.ingest import find_audio_files

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument(
    "--index", nargs="+", type=Path, default=[SHARED / "music" / "jamendo_11266.mp3", SHARED / "librosa"]
)
parser.add_argument("--query", type=Path, default=SHARED / "music" / "jamendo_11266_query_69s-89s.mp3")
args = parser.parse_args()
missing = [p for p in [*args.index, args.query] if not p.exists()]
if missing:
    raise SystemExit(f"missing: {', '.join(map(str, missing))} (the default files live in ../shared/data)")

index = FingerprintIndex()
ident = Identifier(index)  # fingerprints only; add store=..., embedder=... for filter-and-refine
for path in find_audio_files(args.index):
    ident.add(path, path.name)
print(f"indexed {len(ident)} tracks; {index.stats().kb_per_minute:.0f} kB of index per minute of audio")

query = load(args.query)
r = ident.identify(query)
print(f"{args.query.name}: {r.track_id} at {r.offset:.2f} s (score {r.score:g}, margin {r.margin:g})")

# A 5 s cut of the query as a phone would hear it: white noise at 5 dB SNR, then 300-3400 Hz.
cut = query.slice(5, 10).to_mono().samples.astype(np.float64)
noise = np.random.default_rng(0).normal(size=len(cut)) * np.sqrt(np.mean(cut**2) / 10 ** (5 / 10))
phone = sosfilt(butter(6, [300, 3400], "bandpass", fs=query.sample_rate, output="sos"), cut + noise)
r = ident.identify(Audio.from_array((0.9 * phone / np.abs(phone).max()).astype(np.float32), query.sample_rate))
if r.matched:
    print(f"noisy 5 s phone cut: {r.track_id} at {r.offset:.2f} s (score {r.score:g}, confidence {r.confidence:.2f})")
else:
    print(f"noisy 5 s phone cut: no match (best score {r.score:g} < {r.threshold:g})")

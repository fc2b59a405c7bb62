"""Make audio corpora for the scale and ingest benchmarks from the real recordings in ``shared/data``.

Two kinds, both deterministic (the same seed and index give the same bytes on any run, in any process):

**Short files** (default): ``--n`` files (default 100,000) of ``--min-s``..``--max-s`` seconds (default 1-3 s),
16 kHz mono 16-bit FLAC, written to ``OUT/<label>/<index:07d>.flac``, so the label is the parent folder's name
(``audiovec index OUT --label-from '{label}/*'``). File ``i`` is made from ``numpy.random.default_rng([seed, i])``:

1. a label is drawn uniformly from 25 labels: ``digit_0``..``digit_9`` (FSDD, 3,000 spoken digits by 6
   speakers), ``drum_<kind>`` (9 kinds, 869 one-shots from ``drums/metadata.tsv``) and ``music``, ``speech``,
   ``bird``, ``whale``, ``dog``, ``trumpet`` (librosa's example recordings and the Jamendo track);
2. a recording of that label is drawn and **cut**: a random ``d``-second excerpt of a longer recording, or a
   shorter recording placed at a random offset in ``d`` seconds of silence;
3. with probability 0.5 a second recording of **another** label is cut the same way and **mixed** in, 6-20 dB below
   the first (the label stays the first one's);
4. **gain**: the mix is scaled to a peak of -20..-1 dBFS;
5. **noise**: white or pink noise at 15-45 dB SNR (relative to the mix's RMS), which also makes every file's
   content unique (the indexer stores identical content once). The noise and its mixing are those of the
   ``noise``/``pink`` degradations (:mod:`audiovec.audio.degrade`: ``make_noise`` and ``mix_at_snr``), drawn from
   the file's own generator, then clipped to full scale.

Files that already exist are kept (a killed run resumes). Workers: ``--procs`` forked processes (default 2), each
taking every ``procs``-th index. A manifest (``OUT.manifest.tsv``, beside the folder, never inside it) lists index,
path, label, the sources and the parameters. ``--start`` shifts the indices: ``--start 100000 --n 200`` makes 200
held-out query files from the same distribution that do not occur in a corpus of 100,000.

**Long files** (``--long``): ``--n`` files (default 10) of ``--seconds`` (default 300) seconds, 44.1 kHz stereo
16-bit FLAC (what a music library holds), each a concatenation of random excerpts (5-60 s) of the long recordings
(music, speech, whale, dog) with 20 ms cross-fades; written to ``OUT/long_<i:02d>.flac``.

Usage::

    python benchmarks/make_corpus.py                                   # /work/corpus/c100k, 100,000 files
    python benchmarks/make_corpus.py --n 200 --start 100000 --out /work/corpus/c100k_queries
    python benchmarks/make_corpus.py --long --out /work/corpus/long    # 10 x 5 min
    python benchmarks/make_corpus.py --n 1000 --out /tmp/c1k           # a smoke test

Prints the time taken and the disk used, and writes them to ``OUT.report.json``.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import multiprocessing
import os
import sys
import time
from pathlib import Path
from typing import Any

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # one thread per process
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

from audiovec.audio.degrade import make_noise, mix_at_snr  # noqa: E402

SHARED = Path(os.environ.get("AUDIOVEC_SHARED", "/work/shared")) / "data"
RATE = 16_000
LONG_RATE = 44_100

#: librosa example / Jamendo recordings by label (the two identical Karissa Hobbs files count once).
LONG_SOURCES: dict[str, list[str]] = {
    "music": [
        "librosa/147793__setuniman__sweet-waltz-0i-22mi.ogg",
        "librosa/442789__lena-orsa__happy-music-pistachio-ice-cream-ragtime.ogg",
        "librosa/Hungarian_Dance_number_5_-_Allegro_in_F_sharp_minor_(string_orchestra).ogg",
        "librosa/Karissa_Hobbs_-_Lets_Go_Fishin.ogg",
        "librosa/Kevin_MacLeod_-_P_I_Tchaikovsky_Dance_of_the_Sugar_Plum_Fairy.ogg",
        "librosa/Kevin_MacLeod_-_Vibe_Ace.ogg",
        "librosa/admiralbob77_-_Choice_-_Drum-bass.ogg",
        "music/jamendo_11266.mp3",
    ],
    "speech": ["librosa/198-209-0000.ogg", "librosa/3436-172162-0000.ogg", "librosa/5703-47212-0000.ogg"],
    "bird": ["librosa/456440__inspectorj__bird-whistling-robin-single-13.ogg"],
    "whale": ["librosa/glacier-bay-humpback.ogg"],
    "dog": ["librosa/pibble.ogg"],
    "trumpet": ["librosa/sorohanro_-_solo-trumpet-06.ogg"],
}

_SOURCES: dict[str, list[tuple[str, np.ndarray]]] = {}  # label -> [(relative path, float32 16 kHz mono)]


# --------------------------------------------------------------------------------------------- sources
def _decode(path: Path, rate: int) -> np.ndarray:
    import soundfile as sf
    import soxr

    try:
        x, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception:  # mp3 with an old libsndfile: fall back to librosa's audioread path
        import librosa

        y, sr = librosa.load(str(path), sr=None, mono=False)
        x = np.atleast_2d(y).T.astype(np.float32)
    x = x.mean(axis=1).astype(np.float32)
    if sr != rate:
        x = soxr.resample(x, sr, rate, quality="HQ").astype(np.float32)
    return np.ascontiguousarray(x)


def load_sources(rate: int = RATE) -> dict[str, list[tuple[str, np.ndarray]]]:
    """Every source recording, decoded to mono at ``rate``, by label (sorted: the same order on every run)."""
    out: dict[str, list[tuple[str, np.ndarray]]] = {}
    for f in sorted((SHARED / "fsdd").glob("*.flac")):
        out.setdefault(f"digit_{f.name.split('_')[0]}", []).append((f"fsdd/{f.name}", _decode(f, rate)))
    with open(SHARED / "drums" / "metadata.tsv", newline="") as fh:
        rows = sorted(csv.DictReader(fh, delimiter="\t"), key=lambda r: r["path"])
    for r in rows:
        out.setdefault(f"drum_{r['label']}", []).append(
            (f"drums/{r['path']}", _decode(SHARED / "drums" / r["path"], rate))
        )
    for label, files in LONG_SOURCES.items():
        for rel in files:
            out.setdefault(label, []).append((rel, _decode(SHARED / rel, rate)))
    return dict(sorted(out.items()))


def _cut(rng: np.random.Generator, x: np.ndarray, n: int) -> tuple[np.ndarray, int]:
    """``n`` samples: a random excerpt of ``x``, or ``x`` at a random offset in silence. Returns (out, offset)."""
    if len(x) >= n:
        off = int(rng.integers(0, len(x) - n + 1))
        return x[off : off + n].copy(), off
    out = np.zeros(n, np.float32)
    off = int(rng.integers(0, n - len(x) + 1))
    out[off : off + len(x)] = x
    return out, -off


def make_short(index: int, seed: int, min_s: float, max_s: float) -> tuple[np.ndarray, dict[str, Any]]:
    """File ``index`` of the short corpus: samples (float32, 16 kHz) and how it was made."""
    rng = np.random.default_rng([seed, index])
    labels = list(_SOURCES)
    label = labels[int(rng.integers(len(labels)))]
    n = round(float(rng.uniform(min_s, max_s)) * RATE)
    src, x = _SOURCES[label][int(rng.integers(len(_SOURCES[label])))]
    y, off = _cut(rng, x, n)
    info: dict[str, Any] = {"label": label, "source": src, "offset": off, "seconds": round(n / RATE, 4)}
    if rng.random() < 0.5:
        other = [lab for lab in labels if lab != label]
        lab2 = other[int(rng.integers(len(other)))]
        src2, x2 = _SOURCES[lab2][int(rng.integers(len(_SOURCES[lab2])))]
        y2, off2 = _cut(rng, x2, n)
        rel_db = float(rng.uniform(-20.0, -6.0))
        r1 = math.sqrt(float(np.mean(y**2))) or 1e-9
        r2 = math.sqrt(float(np.mean(y2**2))) or 1e-9
        y = y + y2 * (r1 / r2) * 10 ** (rel_db / 20)
        info.update(mix_label=lab2, mix_source=src2, mix_offset=off2, mix_db=round(rel_db, 2))
    peak_db = float(rng.uniform(-20.0, -1.0))
    y = y * (10 ** (peak_db / 20) / (float(np.max(np.abs(y))) or 1e-9))
    snr = float(rng.uniform(15.0, 45.0))
    kind = "white" if rng.random() < 0.5 else "pink"
    y = np.clip(mix_at_snr(y, make_noise(rng, n, kind), snr), -1.0, 1.0).astype(np.float32)
    info.update(peak_db=round(peak_db, 2), noise=kind, snr_db=round(snr, 2))
    return y, info


def _encode_flac(y: np.ndarray, rate: int) -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, y, rate, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


def _short_path(out: Path, label: str, index: int) -> Path:
    return out / label / f"{index:07d}.flac"


def _short_job(job: tuple[int, int, int, int, float, float, str]) -> list[dict[str, Any]]:
    worker, procs, start, n, min_s, max_s, out = job
    seed = _SEED
    rows = []
    for i in range(start + worker, start + n, procs):
        y, info = make_short(i, seed, min_s, max_s)
        path = _short_path(Path(out), info["label"], i)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".part")
            tmp.write_bytes(_encode_flac(y, RATE))
            os.replace(tmp, path)  # a killed run leaves no truncated .flac behind
        rows.append({"index": i, "path": str(path), **info})
    return rows


_SEED = 0


def dir_size(path: Path) -> tuple[int, int, int]:
    """(files, bytes of content, bytes allocated on disk) under ``path``."""
    files = size = alloc = 0
    for root, _, names in os.walk(path):
        for name in names:
            st = os.stat(os.path.join(root, name))
            files += 1
            size += st.st_size
            alloc += st.st_blocks * 512
    return files, size, alloc


def run_short(args: argparse.Namespace) -> dict[str, Any]:
    global _SEED, _SOURCES
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    _SEED = args.seed
    _SOURCES = load_sources()
    load_s = time.perf_counter() - t0
    print(
        f"loaded {sum(len(v) for v in _SOURCES.values())} source recordings, {len(_SOURCES)} labels ({load_s:.1f} s)",
        flush=True,
    )
    t1 = time.perf_counter()
    jobs = [(w, args.procs, args.start, args.n, args.min_s, args.max_s, str(out)) for w in range(args.procs)]
    if args.procs == 1:
        parts = [_short_job(jobs[0])]
    else:  # fork: the workers share the decoded sources
        with multiprocessing.get_context("fork").Pool(args.procs) as pool:
            parts = pool.map(_short_job, jobs)
    gen_s = time.perf_counter() - t1
    rows = sorted((r for part in parts for r in part), key=lambda r: r["index"])
    manifest = out.with_name(out.name + ".manifest.tsv")
    keys = [
        "index",
        "path",
        "label",
        "seconds",
        "source",
        "offset",
        "mix_label",
        "mix_source",
        "mix_offset",
        "mix_db",
        "peak_db",
        "noise",
        "snr_db",
    ]
    with open(manifest, "w", newline="") as fh:
        w = csv.DictWriter(fh, keys, delimiter="\t", extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    # determinism check: regenerate a few files in this process and compare the bytes with what is on disk
    check = [rows[i]["index"] for i in np.linspace(0, len(rows) - 1, min(20, len(rows))).astype(int)]
    same = 0
    for i in check:
        y, info = make_short(i, args.seed, args.min_s, args.max_s)
        same += _encode_flac(y, RATE) == _short_path(out, info["label"], i).read_bytes()
    files, size, alloc = dir_size(out)
    labels: dict[str, int] = {}
    for r in rows:
        labels[r["label"]] = labels.get(r["label"], 0) + 1
    return {
        "kind": "short",
        "out": str(out),
        "manifest": str(manifest),
        "n": args.n,
        "start": args.start,
        "seed": args.seed,
        "seconds_range": [args.min_s, args.max_s],
        "format": "FLAC PCM_16, 16 kHz mono",
        "procs": args.procs,
        "load_sources_s": round(load_s, 1),
        "generate_s": round(gen_s, 1),
        "files_per_s": round(args.n / gen_s, 1),
        "audio_hours": round(sum(r["seconds"] for r in rows) / 3600, 2),
        "files_on_disk": files,
        "bytes": size,
        "disk_mb_allocated": round(alloc / 2**20, 1),
        "mean_kb_per_file": round(size / max(1, files) / 1024, 1),
        "labels": labels,
        "determinism_check": f"{same}/{len(check)} files regenerated byte-identical",
    }


# --------------------------------------------------------------------------------------------- long files
def run_long(args: argparse.Namespace) -> dict[str, Any]:
    import soundfile as sf

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    pool = [
        (rel, _decode(SHARED / rel, LONG_RATE))
        for lab in ("music", "speech", "whale", "dog")
        for rel in LONG_SOURCES[lab]
    ]
    fade = int(0.02 * LONG_RATE)
    ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
    made = []
    for i in range(args.n):
        path = out / f"long_{i:02d}.flac"
        rng = np.random.default_rng([args.seed, 1_000_000 + i])
        total = int(args.seconds * LONG_RATE)
        y = np.zeros(total + fade, np.float32)
        pos, parts = 0, []
        while pos < total:
            rel, x = pool[int(rng.integers(len(pool)))]
            seg = min(len(x), int(rng.uniform(5.0, 60.0) * LONG_RATE), total + fade - pos)
            off = int(rng.integers(0, len(x) - seg + 1))
            piece = x[off : off + seg].copy()
            if pos and len(piece) > 2 * fade:  # cross-fade into what is already there
                piece[:fade] *= ramp
                y[pos : pos + fade] *= ramp[::-1]
            y[pos : pos + seg] += piece
            parts.append(rel)
            pos += seg - (fade if len(piece) > 2 * fade else 0)
        y = y[:total]
        y *= 0.5 / (float(np.max(np.abs(y))) or 1.0)
        # stereo: the right channel slightly delayed and quieter, so the two channels differ
        right = np.concatenate([np.zeros(11, np.float32), y[:-11]]) * 0.8
        if not path.exists():
            tmp = path.with_name(path.name + ".part")
            sf.write(str(tmp), np.stack([y, right], axis=1), LONG_RATE, format="FLAC", subtype="PCM_16")
            os.replace(tmp, path)
        made.append({"path": str(path), "seconds": args.seconds, "excerpts": len(parts)})
    files, size, alloc = dir_size(out)
    return {
        "kind": "long",
        "out": str(out),
        "n": args.n,
        "seconds_each": args.seconds,
        "format": "FLAC PCM_16, 44.1 kHz stereo",
        "seed": args.seed,
        "generate_s": round(time.perf_counter() - t0, 1),
        "files_on_disk": files,
        "bytes": size,
        "disk_mb_allocated": round(alloc / 2**20, 1),
        "files": made,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=None, help="output folder (default /work/corpus/c100k or .../long)")
    p.add_argument("--n", type=int, default=None, help="files (default 100,000 short or 10 long)")
    p.add_argument("--start", type=int, default=0, help="first index (short files)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--procs", type=int, default=2)
    p.add_argument("--min-s", type=float, default=1.0)
    p.add_argument("--max-s", type=float, default=3.0)
    p.add_argument("--long", action="store_true", help="long files instead of short ones")
    p.add_argument("--seconds", type=float, default=300.0, help="length of each long file")
    args = p.parse_args()
    if args.long:
        args.out = args.out or Path("/work/corpus/long")
        args.n = 10 if args.n is None else args.n
    else:
        args.out = args.out or Path("/work/corpus/c100k")
        args.n = 100_000 if args.n is None else args.n
    args.out = args.out.resolve()
    repo = Path(__file__).resolve().parent.parent
    if args.out.is_relative_to(repo):
        p.error(f"write corpora outside the repository, not under {repo}")
    load0 = [round(x, 2) for x in os.getloadavg()]
    t0 = time.perf_counter()
    report = run_long(args) if args.long else run_short(args)
    report.update(
        total_s=round(time.perf_counter() - t0, 1),
        load_avg_before=load0,
        load_avg_after=[round(x, 2) for x in os.getloadavg()],
        cpus=os.cpu_count(),
    )
    args.out.with_name(args.out.name + ".report.json").write_text(json.dumps(report, indent=2) + "\n")
    show = {k: v for k, v in report.items() if k not in ("labels", "files")}
    print(json.dumps(show, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

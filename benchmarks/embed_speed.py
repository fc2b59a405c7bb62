"""Embedding speed: real-time factor and peak memory of each embedder on 60 s of real audio.

Each embedder runs in its own subprocess, so peak RSS belongs to that model alone. Model loading is timed
separately from embedding; embedding is timed as the median of several runs after one warm-up run.
Real-time factor (RTF) = seconds of audio embedded per wall-clock second (higher is faster).

Usage:
    python benchmarks/embed_speed.py                       # every default embedder
    python benchmarks/embed_speed.py --embedders mfcc logmel --repeats 7
    python benchmarks/embed_speed.py --audio path/to/file.mp3 --seconds 60

Writes benchmarks/results/embed_speed.json (override with --out) and prints a table.
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
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_AUDIO = HERE.parent.parent / "shared" / "data" / "music" / "jamendo_11266.mp3"
# name, params: the embedders measured by default (extended as models with real weights are added)
DEFAULT_EMBEDDERS: list[tuple[str, dict[str, object]]] = [
    ("mfcc", {}),
    ("logmel", {}),
    ("yamnet", {"model": str(HERE.parent.parent / "shared" / "models" / "yamnet.tflite")}),
    ("birdnet", {}),
    ("resemblyzer", {}),
    ("aisfx", {}),
    ("musicnn", {}),
]


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _bare_aisfx(audio: Any, repeats: int) -> list[float]:
    """aiSFX's own pipeline (``aisfx.inference.main`` without its file loop) on the same waveform at 44.1 kHz.

    Its librosa spectrogram helper (given a WAV at 44.1 kHz: read, no resampling), with the axes it returns
    transposed (its blocking function needs ``[frames, mels]``), ``spectrogram_normalize`` and
    ``model_get_embedding`` (hop 0.5), with its ``CrossNet`` loaded once, as ``main`` does for a folder.
    """
    import tempfile

    import soundfile as sf
    import torch
    from aisfx import inference, preprocessing
    from aisfx.spectrogram import spectrogram_librosa

    from audiovec.embedders.aisfx import _numpy_globals

    with torch.serialization.safe_globals(_numpy_globals()):
        weights, datasets = torch.load(inference.get_path_modelWeights(), map_location="cpu")
    model = inference.load_bestModel(weights, datasets, "cpu")
    with tempfile.TemporaryDirectory() as tmp:
        wav = str(Path(tmp) / "clip.wav")
        sf.write(wav, audio.prepared(44100).samples, 44100, subtype="FLOAT")

        def run() -> None:
            spec = spectrogram_librosa.compute_spectrogram(wav, 44100.0, 2048, 1024, 96, 0.0, 22050.0)
            spec = preprocessing.spectrogram_normalize(spec.T)
            inference.model_get_embedding(spec, 0.5, True, model, "cpu")

        run()  # warm-up (librosa's numba functions)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            run()
            times.append(time.perf_counter() - t0)
    return times


def _bare_musicnn(audio: Any, repeats: int) -> list[float]:
    """``musicnn.extractor.extractor`` (MTT_musicnn, features on) on the same waveform, written as a 16 kHz WAV.

    It builds its TF1 graph and restores the checkpoint on every call, as the package does. It needs the Keras 2
    layers (``TF_USE_LEGACY_KERAS=1``, set by :func:`worker` before TensorFlow is imported), and it switches
    TensorFlow to graph mode for the whole process, so it runs after audiovec's timing.
    """
    import contextlib
    import io
    import tempfile

    import soundfile as sf

    with tempfile.TemporaryDirectory() as tmp:
        wav = str(Path(tmp) / "clip.wav")
        sf.write(wav, audio.prepared(16000).samples, 16000, subtype="FLOAT")
        with contextlib.redirect_stdout(io.StringIO()):  # it prints progress
            from musicnn.extractor import extractor

            extractor(wav, model="MTT_musicnn", extract_features=True)  # warm-up
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                extractor(wav, model="MTT_musicnn", extract_features=True)
                times.append(time.perf_counter() - t0)
    return times


#: embedder name -> the raw package doing the same work, timed after audiovec in the same process
_BARE = {"aisfx": _bare_aisfx, "musicnn": _bare_musicnn}


def worker(name: str, params: dict[str, object], audio_path: str, seconds: float, repeats: int) -> dict[str, object]:
    """Measure one embedder in this process; returns one JSON-able row."""
    rss_start = _rss_mb()
    if name == "musicnn":
        os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # musicnn's own code (the bare run) needs Keras 2 layers
    t0 = time.perf_counter()
    import audiovec

    audio = audiovec.load(audio_path, duration=seconds)
    decode_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    emb = audiovec.get_embedder(name, **params)
    load_s = time.perf_counter() - t0
    rss_loaded = _rss_mb()
    t0 = time.perf_counter()
    emb.embed(audio.slice(0, 5.0))  # warm-up: lazy imports, JIT, first-call allocations
    warmup_s = time.perf_counter() - t0
    times = []
    frames = 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        fe = emb.embed(audio)
        times.append(time.perf_counter() - t0)
        frames = len(fe)
    med = statistics.median(times)
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # ours alone: before any bare run
    extra: dict[str, object] = {}
    if name == "yamnet" and str(params.get("model", "")).endswith(".tflite"):
        # our pipeline's overhead: the bare ai-edge-litert interpreter on the same waveform, same process
        from audiovec.embedders.yamnet import time_bare_interpreter

        bare = statistics.median(time_bare_interpreter(str(params["model"]), audio, repeats=repeats))
        extra = {"bare_interpreter_s": bare, "vs_bare": med / bare}
    elif name in _BARE and not params:
        bare = statistics.median(_BARE[name](audio, repeats))
        extra = {"bare_package_s": bare, "vs_bare": med / bare}
    return {
        **extra,
        "embedder": name,
        "params": params,
        "spec": emb.spec().model_dump(mode="json"),
        "dim": emb.dim,
        "audio_s": audio.duration,
        "source_sample_rate": audio.sample_rate,
        "frames": frames,
        "decode_s": decode_s,
        "load_s": load_s,
        "warmup_s": warmup_s,
        "embed_s_median": med,
        "embed_s_all": times,
        "rtf": audio.duration / med,
        "rss_start_mb": rss_start,
        "rss_after_load_mb": rss_loaded,
        "peak_rss_mb": peak_rss,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--embedders", nargs="*", help="names (default: all defaults)")
    ap.add_argument("--audio", default=str(DEFAULT_AUDIO), help="real audio file (default: the Jamendo track)")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default=str(HERE / "results" / "embed_speed.json"))
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--params", default="{}", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker:
        row = worker(args.worker, json.loads(args.params), args.audio, args.seconds, args.repeats)
        print(json.dumps(row))
        return 0

    if not Path(args.audio).exists():
        print(f"audio file not found: {args.audio} (needs ../shared/data beside the checkout)", file=sys.stderr)
        return 2
    wanted = [(n, p) for n, p in DEFAULT_EMBEDDERS if not args.embedders or n in args.embedders]
    wanted += [(n, {}) for n in (args.embedders or []) if n not in {w for w, _ in DEFAULT_EMBEDDERS}]
    rows = []
    for name, params in wanted:
        cmd = [sys.executable, __file__, "--worker", name, "--params", json.dumps(params), "--audio", args.audio,
               "--seconds", str(args.seconds), "--repeats", str(args.repeats)]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            err = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"
            print(f"{name}: FAILED: {err}", file=sys.stderr)
            rows.append({"embedder": name, "params": params, "error": err})
            continue
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))

    baseline = next((r for r in rows if r.get("embedder") == "mfcc" and "rtf" in r), None)
    env = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "threads": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")},
        "audio": args.audio,
        "seconds": args.seconds,
        "repeats": args.repeats,
        "mode": "one embed() call on the whole excerpt, batch size 1, single process",
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"environment": env, "results": rows}, indent=2))

    print(
        f"audio: {Path(args.audio).name}, first {args.seconds:g} s; {os.cpu_count()} CPU(s); median of {args.repeats}"
    )
    header = (
        f"{'embedder':<12} {'dim':>5} {'frames':>7} {'load s':>8} {'embed s':>9} {'RTF':>9} {'vs mfcc':>8} "
        f"{'peak RSS MB':>12} {'ours/bare':>9}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        if "error" in r:
            print(f"{r['embedder']:<12} FAILED: {r['error']}")
            continue
        ratio = r["rtf"] / baseline["rtf"] if baseline else float("nan")
        print(
            f"{r['embedder']:<12} {r['dim']:>5} {r['frames']:>7} {r['load_s']:>8.3f} {r['embed_s_median']:>9.4f} "
            f"{r['rtf']:>9.0f} {ratio:>8.2f} {r['peak_rss_mb']:>12.0f} "
            + (f"{r['vs_bare']:>9.2f}" if "vs_bare" in r else f"{'':>9}")
        )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Compare six neural audio embedders in one script: Wav2Vec2, VGGish, OpenL3, YAMNet, CLAP, AST (+ MFCC baseline).

Each model is used only if it can be built here (its extra installed and its weights reachable: a hub id with
internet, or a local path given with --weights NAME=PATH); the others are recorded as failed in the results with
the reason — no dummy model ever stands in. Per-file measurements (time, memory, CPU), insertion into the chosen
store, a scaling sweep (e.g. 5, 25, 50, 100, 250 files; growth is fitted from four sizes), the ranking (retrieval
quality first; --weights-preset resources ranks by cost alone) and the verdict (the best model, those statistically
tied with it, the fastest, the smallest, the best trade-offs) are all part of the run.

Run: python examples/compare_models.py --dataset DIR [--weights yamnet=../shared/models/yamnet.tflite]
     [--store milvus] [--sizes 5 25 50 100 250] [--weights-preset resources] [--robustness noise:10 mp3:32]
Without --dataset it runs on the bundled demo drums.
"""

from __future__ import annotations

import argparse

from audiovec.benchmark import Benchmark, BenchmarkConfig, DatasetConfig, EmbedderEntry, StoreEntry
from audiovec.benchmark.report import write_report

SIX = ["wav2vec2", "vggish", "openl3", "yamnet", "clap", "ast"]

ap = argparse.ArgumentParser()
ap.add_argument("--dataset", help="folder with one sub-folder per class (default: bundled demo drums)")
ap.add_argument("--weights", action="append", default=[], help="NAME=PATH of local weights, e.g. yamnet=model.tflite")
ap.add_argument("--store", default="faiss", choices=["faiss", "milvus", "exact"])
ap.add_argument("--sizes", type=int, nargs="*", default=[5, 15, 25])
ap.add_argument("--weights-preset", default="quality", choices=["quality", "resources", "balanced"])
ap.add_argument("--robustness", nargs="*", default=None, help="query degradations, e.g. noise:10 mp3:32")
ap.add_argument("--out", default="results/compare-models")
args = ap.parse_args()

weights = dict(w.split("=", 1) for w in args.weights)
embedders = [EmbedderEntry(name="mfcc", poolings=["mean+l2"])]
embedders += [EmbedderEntry(name=n, params={"model": weights[n]} if n in weights else {}) for n in SIX]
cfg = BenchmarkConfig(
    name="compare-models",
    dataset=DatasetConfig(kind="folder", path=args.dataset) if args.dataset else DatasetConfig(kind="demo"),
    embedders=embedders,
    stores=[StoreEntry(name=args.store, index="flat")],
    sizes=args.sizes,
    weights=args.weights_preset,
    robustness=args.robustness,
    output_dir=args.out,
    progress=False,
)
result = Benchmark(cfg).run()
print(result.summary())
print("models that could not be used here:")
for _, m in result.models.iterrows():
    if isinstance(m.get("error"), str) and m["error"]:
        print(f"  {m['embedder']}: {m['error'][:160]}")
if result.verdict is not None:
    print("verdict:")
    for sentence in result.verdict.sentences:
        print(f"  {sentence}")
print(f"report: {write_report(result)}")

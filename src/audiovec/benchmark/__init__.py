"""The benchmark harness: compare embedders and vector stores on speed, memory, search and retrieval quality.

A run is a sequence of stages, each a module of small functions that can be used on its own: ``datasets``
(labelled audio with a group key), ``extraction`` (the ingest path with per-file measurements), ``vectors`` (pooled
vector sets and the group rule), ``retrieval`` (quality on the exact-search kernel, and of degraded queries against
a clean index), ``robustness`` (degraded queries), ``stores`` (insertion, search, recall, storage and scaling),
``ranking``, ``verdict`` (what to pick, and how sure that is), ``result`` (tables and their I/O) and ``report``
(plots and HTML); :class:`Benchmark` runs them in order.

Example:
    >>> from audiovec.benchmark import Benchmark, BenchmarkConfig, EmbedderEntry, StoreEntry
    >>> cfg = BenchmarkConfig(
    ...     embedders=[EmbedderEntry(name="mfcc", poolings=["mean+l2", "linear_concat:16"])],
    ...     stores=[StoreEntry(name="faiss", index="flat"), StoreEntry(name="exact")],
    ...     output_dir="/tmp/av-bench", progress=False)
    >>> result = Benchmark(cfg).run()          # doctest: +SKIP
    >>> result.quality[["pooling", "top1_acc"]]  # doctest: +SKIP

Needs the ``bench`` extra (pandas, scikit-learn, matplotlib, plotly).
"""

from __future__ import annotations

from audiovec.benchmark.config import BenchmarkConfig, DatasetConfig, EmbedderEntry, StoreEntry, load_config
from audiovec.benchmark.datasets import build_dataset
from audiovec.benchmark.measure import CallTimer, Measurement, ResourceMonitor
from audiovec.benchmark.result import BenchmarkResult
from audiovec.benchmark.runner import Benchmark
from audiovec.benchmark.verdict import Verdict, verdict_from_dir

__all__ = [
    "Benchmark",
    "BenchmarkConfig",
    "BenchmarkResult",
    "CallTimer",
    "DatasetConfig",
    "EmbedderEntry",
    "Measurement",
    "ResourceMonitor",
    "StoreEntry",
    "Verdict",
    "build_dataset",
    "load_config",
    "verdict_from_dir",
]

"""The benchmark harness: compare embedders and vector stores on speed, memory, search and retrieval quality.

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
from audiovec.benchmark.core import Benchmark, BenchmarkResult, build_dataset
from audiovec.benchmark.measure import Measurement, ResourceMonitor

__all__ = [
    "Benchmark",
    "BenchmarkConfig",
    "BenchmarkResult",
    "DatasetConfig",
    "EmbedderEntry",
    "Measurement",
    "ResourceMonitor",
    "StoreEntry",
    "build_dataset",
    "load_config",
]

"""``audiovec bench`` and ``audiovec report``: compare embedders and stores, and draw the report."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from audiovec.cli._common import add_progress_flag, add_workers_flag
from audiovec.errors import AudiovecError, ConfigError

log = logging.getLogger("audiovec")

__all__ = ["add_commands"]


#: Embedders whose weights ship with their PyPI package, added to ``bench --demo`` when installed.
_OFFLINE_MODELS = ("resemblyzer", "birdnet")


def _demo_config(args: argparse.Namespace) -> Any:
    from audiovec.benchmark import BenchmarkConfig, EmbedderEntry, StoreEntry
    from audiovec.benchmark.config import DEMO_ROBUSTNESS
    from audiovec.embedders import registry as embedders
    from audiovec.stores import registry as stores

    entries = [EmbedderEntry(name="mfcc", poolings=["mean_std+l2", "linear_concat:16"])]
    for name in _OFFLINE_MODELS:
        try:
            embedders.load(name)
        except AudiovecError as err:
            log.info("demo: %s not used (%s)", name, err)
            continue
        entries.append(EmbedderEntry(name=name, poolings=["mean+l2"]))
    store_entries = [StoreEntry(name="faiss", index="flat"), StoreEntry(name="faiss", index="hnsw")]
    try:
        stores.load("milvus")
        store_entries.append(StoreEntry(name="milvus", index="flat", label="milvus-lite/flat"))
    except AudiovecError as err:
        log.info("demo: Milvus Lite not used (%s)", err)
    return BenchmarkConfig(
        name="demo",
        embedders=entries,
        stores=store_entries,
        sizes=[6, 12, 24, 42],  # four sizes: the fewest the growth fits are drawn from
        robustness=list(DEMO_ROBUSTNESS),
        output_dir=args.output or "audiovec-demo",
        progress=not args.no_progress,
    )


def _cmd_bench(args: argparse.Namespace) -> int:
    from audiovec.benchmark import Benchmark, load_config
    from audiovec.benchmark.report import check_report_dependencies, error_free, write_report

    if args.demo == bool(args.config):
        print("audiovec bench: give a CONFIG file or --demo (not both)", file=sys.stderr)
        return 2
    if args.demo:
        cfg = _demo_config(args)
    else:
        cfg = load_config(args.config, output_dir=args.output, data_root=args.data_root)
        if args.no_progress:
            cfg = cfg.model_copy(update={"progress": False})
    if args.limit is not None:
        if args.limit < 1:
            raise ConfigError(f"--limit must be at least 1 file, got {args.limit}")
        cfg = cfg.model_copy(update={"dataset": cfg.dataset.model_copy(update={"limit": args.limit})})
    if args.workers is not None:
        cfg = cfg.model_copy(update={"workers": args.workers})
    if not args.no_report:  # before extracting anything, not after
        check_report_dependencies(embedding_map=cfg.embedding_map_points > 0)
    result = Benchmark(cfg).run()
    print(result.summary())
    if not args.no_report:
        path = write_report(result)
        print(f"report: {path}")
    print(f"results: {cfg.output_dir}")
    failed = int((~error_free(result.files)).sum()) if len(result.files) else 0
    model_errors = int((~error_free(result.models)).sum()) if len(result.models) and "error" in result.models else 0
    return 1 if failed or model_errors else 0


def _cmd_report(args: argparse.Namespace) -> int:
    from audiovec.benchmark import BenchmarkResult
    from audiovec.benchmark.report import write_report

    result = BenchmarkResult.load(args.results)
    print(f"report: {write_report(result, args.results, png=not args.no_png)}")
    return 0


def add_commands(sub: Any) -> None:
    """Add the commands of this module to the ``audiovec`` parser (``sub``: what ``add_subparsers()`` returned)."""
    p = sub.add_parser("bench", help="compare embedders and stores (speed, memory, search, quality)")
    p.add_argument("config", nargs="?", help="benchmark config (.toml or .json)")
    p.add_argument("--demo", action="store_true", help="run on the bundled demo set with the default models")
    p.add_argument("-o", "--output", help="results folder (overrides the config's output_dir)")
    p.add_argument(
        "--data-root",
        metavar="DIR",
        help="folder the config's relative dataset paths are read from (default: $AUDIOVEC_DATA, else the "
        "working directory)",
    )
    p.add_argument("--limit", type=int, help="use only this many files (stratified subset)")
    p.add_argument("--no-report", action="store_true", help="skip the HTML report and plots")
    add_workers_flag(p)
    add_progress_flag(p)
    p.set_defaults(func=_cmd_bench)

    p = sub.add_parser("report", help="write the HTML report and plots of a results folder")
    p.add_argument("results", help="folder written by `audiovec bench`")
    p.add_argument("--no-png", action="store_true", help="draw only report.html, not the PNG plots (faster)")
    p.set_defaults(func=_cmd_report)

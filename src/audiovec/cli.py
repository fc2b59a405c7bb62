"""The ``audiovec`` command line.

Commands:
    ``audiovec bench --demo``          the benchmark on the bundled demo set (MFCC + FAISS + installed models)
    ``audiovec bench CONFIG.toml``     a benchmark described by a config file
    ``audiovec report RESULTS_DIR``    (re)draw the HTML report and plots of a finished benchmark
    ``audiovec embed PATH... -o OUT``  embed files/folders into pooled vectors (``.npz`` or ``.jsonl``)
    ``audiovec embed --demo -o OUT``   the same on the bundled demo set (no data needed)
    ``audiovec list``                  registered embedders (and stores) with where they come from
    ``audiovec info FILE...``          sample rate, channels and duration of audio files
    ``audiovec fingerprint index DIR --db PATH``   index a music collection (landmark fingerprints + vectors)
    ``audiovec identify FILE --db PATH``           identify a recording from an excerpt (docs/identification.md)

Exit status: 0 on success, 1 when some files failed (their errors are listed and written to the output),
2 on usage or configuration errors.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from typing import Any

from audiovec.errors import AudiovecError

__all__ = ["main"]

log = logging.getLogger("audiovec")


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _params(items: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"audiovec: error: --param expects KEY=VALUE, got {item!r}")
        out[key.replace("-", "_")] = _parse_value(value)
    return out


def _cmd_embed(args: argparse.Namespace) -> int:
    from audiovec.data import demo_dir
    from audiovec.embedders import get_embedder
    from audiovec.extract import extract
    from audiovec.pooling import Pipeline

    paths = list(args.paths)
    if args.demo:
        paths.append(str(demo_dir()))
    if not paths:
        print("audiovec embed: give at least one PATH, or --demo", file=sys.stderr)
        return 2
    embedder = get_embedder(args.embedder, **_params(args.param))
    pipeline = Pipeline.parse(args.pooling, args.segments)
    t0 = time.perf_counter()
    result = extract(
        paths,
        embedder,
        pipeline,
        batch_size=args.batch_size,
        recursive=not args.no_recursive,
        progress=not args.no_progress,
    )
    elapsed = time.perf_counter() - t0
    out = result.save(args.output)
    files = len({r["path"] for r in result.records})
    audio_s = sum({r["path"]: r["duration"] for r in result.records}.values())
    print(
        f"embedded {files} file(s), {audio_s:.1f} s of audio, into {len(result.records)} vector(s) of "
        f"dim {result.dim} with {embedder.name} + {pipeline.describe()} in {elapsed:.2f} s "
        f"({audio_s / max(elapsed, 1e-9):.0f}x real time) -> {out}"
    )
    for fail in result.failures:
        print(f"FAILED {fail.path}: {fail.error}: {fail.message}", file=sys.stderr)
    if result.failures:
        print(f"{len(result.failures)} file(s) failed; they are listed in {out}", file=sys.stderr)
        return 1
    return 0


#: Embedders whose weights ship with their PyPI package, added to ``bench --demo`` when installed.
_OFFLINE_MODELS = ("resemblyzer", "birdnet")


def _demo_config(args: argparse.Namespace) -> Any:
    from audiovec.benchmark import BenchmarkConfig, EmbedderEntry, StoreEntry
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
        sizes=[9, 18, 42],
        output_dir=args.output or "audiovec-demo",
        progress=not args.no_progress,
    )


def _cmd_bench(args: argparse.Namespace) -> int:
    from audiovec.benchmark import Benchmark, load_config
    from audiovec.benchmark.report import error_free, write_report

    if args.demo == bool(args.config):
        print("audiovec bench: give a CONFIG file or --demo (not both)", file=sys.stderr)
        return 2
    if args.demo:
        cfg = _demo_config(args)
    else:
        cfg = load_config(args.config, output_dir=args.output)
        if args.no_progress:
            cfg = cfg.model_copy(update={"progress": False})
    if args.limit:
        cfg = cfg.model_copy(update={"dataset": cfg.dataset.model_copy(update={"limit": args.limit})})
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
    print(f"report: {write_report(result, args.results)}")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from audiovec.embedders import registry as embedders

    registries: list[Any] = [embedders]
    try:
        from audiovec.stores import registry as stores

        registries.append(stores)
    except ImportError:  # pragma: no cover - stores module missing in a partial install
        pass
    for reg in registries:
        print(f"{reg.kind}s ({reg.group}):")
        for name in reg.names():
            info = reg.info(name)
            status = ""
            if args.check:
                try:
                    reg.load(name)
                    status = "  [ok]"
                except AudiovecError as err:
                    status = f"  [unavailable: {err}]"
            print(f"  {name:<14} {info.target}  ({info.distribution or 'runtime'}){status}")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from audiovec.audio import info

    status = 0
    for path in args.files:
        try:
            i = info(path)
        except AudiovecError as err:
            print(f"{path}: ERROR {type(err).__name__}: {err}", file=sys.stderr)
            status = 1
            continue
        print(f"{path}: {i.format}/{i.subtype}, {i.sample_rate} Hz, {i.channels} ch, {i.duration:.3f} s")
    return status


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``audiovec`` command."""
    parser = argparse.ArgumentParser(prog="audiovec", description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("bench", help="compare embedders and stores (speed, memory, search, quality)")
    p.add_argument("config", nargs="?", help="benchmark config (.toml or .json)")
    p.add_argument("--demo", action="store_true", help="run on the bundled demo set with the default models")
    p.add_argument("-o", "--output", help="results folder (overrides the config's output_dir)")
    p.add_argument("--limit", type=int, help="use only this many files (stratified subset)")
    p.add_argument("--no-report", action="store_true", help="skip the HTML report and plots")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=_cmd_bench)

    p = sub.add_parser("report", help="write the HTML report and plots of a results folder")
    p.add_argument("results", help="folder written by `audiovec bench`")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("embed", help="embed audio files or folders into vectors")
    p.add_argument("paths", nargs="*", help="audio files and/or folders")
    p.add_argument("--demo", action="store_true", help="also embed the bundled demo set (42 drum clips)")
    p.add_argument("-e", "--embedder", default="mfcc", help="embedder name (see `audiovec list`), default mfcc")
    p.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="embedder parameter, repeatable (e.g. -p n_mfcc=13); values are parsed as JSON when possible",
    )
    p.add_argument(
        "--pooling",
        default="mean",
        help="MODE[:N][+l2] with MODE in mean, max, mean_std, linear_concat (e.g. linear_concat:64, mean+l2)",
    )
    p.add_argument("--segments", default=None, metavar="WINDOW[:HOP]", help="one vector per segment, in seconds")
    p.add_argument("-o", "--output", default="vectors.npz", help="output file, .npz or .jsonl (default vectors.npz)")
    p.add_argument("--batch-size", type=int, default=16, help="short files per model call (default 16)")
    p.add_argument("--no-recursive", action="store_true", help="do not search folders recursively")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=_cmd_embed)

    p = sub.add_parser("list", help="list registered embedders and stores")
    p.add_argument("--check", action="store_true", help="import each one and report whether it is usable")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("info", help="show format, sample rate, channels and duration of audio files")
    p.add_argument("files", nargs="+")
    p.set_defaults(func=_cmd_info)

    from audiovec.cli_identify import add_commands

    add_commands(sub)  # fingerprint index/remove/info, identify

    from audiovec.cli_service import add_commands as add_service_commands

    add_service_commands(sub)  # serve, collection create/list/describe/drop/index
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    console = logging.StreamHandler()
    console.setLevel(level)  # the benchmark lowers the audiovec logger's level for its log file
    console.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[console])
    try:
        return int(args.func(args))
    except AudiovecError as err:
        print(f"audiovec: error: {type(err).__name__}: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

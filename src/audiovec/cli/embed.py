"""``audiovec embed``: files and folders into pooled vectors (``.npz`` or ``.jsonl``)."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from audiovec.cli._common import add_embedder_flags, add_progress_flag, add_workers_flag, parse_params, progress

__all__ = ["add_commands"]


def _cmd_embed(args: argparse.Namespace) -> int:
    from audiovec.data import demo_dir
    from audiovec.embedders import get_embedder
    from audiovec.ingest import extract
    from audiovec.pooling import Pipeline

    paths = list(args.paths)
    if args.demo:
        paths.append(str(demo_dir()))
    if not paths:
        print("audiovec embed: give at least one PATH, or --demo", file=sys.stderr)
        return 2
    embedder = get_embedder(args.embedder, **parse_params(args.param))
    pipeline = Pipeline.parse(args.pooling, args.segments)
    t0 = time.perf_counter()
    result = extract(
        paths,
        embedder,
        pipeline,
        batch_size=args.batch_size,
        recursive=not args.no_recursive,
        workers=args.workers,
        progress=progress(args, None, f"embed with {embedder.name}"),
    )
    elapsed = time.perf_counter() - t0
    out = result.save(args.output)
    durations = {r["_item"]: r["_duration"] for r in result.records}
    files, audio_s = len(durations), sum(durations.values())
    print(
        f"embedded {files} file(s), {audio_s:.1f} s of audio, into {len(result.records)} vector(s) of "
        f"dim {result.dim} with {embedder.name} + {pipeline.describe()} in {elapsed:.2f} s "
        f"({audio_s / max(elapsed, 1e-9):.0f}x real time) -> {out}"
    )
    for fail in result.failures:
        print(f"FAILED {fail.source}: {fail.error}: {fail.message}", file=sys.stderr)
    if result.failures:
        print(f"{len(result.failures)} file(s) failed; they are listed in {out}", file=sys.stderr)
        return 1
    return 0


def add_commands(sub: Any) -> None:
    """Add the commands of this module to the ``audiovec`` parser (``sub``: what ``add_subparsers()`` returned)."""
    p = sub.add_parser("embed", help="embed audio files or folders into vectors")
    p.add_argument("paths", nargs="*", help="audio files and/or folders")
    p.add_argument("--demo", action="store_true", help="also embed the bundled demo set (42 drum clips)")
    add_embedder_flags(p, "mean")
    p.add_argument("-o", "--output", default="vectors.npz", help="output file, .npz or .jsonl (default vectors.npz)")
    p.add_argument("--batch-size", type=int, default=16, help="short files per model call (default 16)")
    p.add_argument("--no-recursive", action="store_true", help="do not search folders recursively")
    add_workers_flag(p)
    add_progress_flag(p)
    p.set_defaults(func=_cmd_embed)

"""``audiovec fingerprint ...`` and ``audiovec identify``: index a music collection, identify excerpts.

Commands (added to the ``audiovec`` parser by :func:`add_commands`)::

    audiovec fingerprint index DIR... --db PATH [--embedder mfcc] [--replace]   index (or add to) a collection
    audiovec fingerprint remove TRACK_ID... --db PATH                            remove tracks
    audiovec fingerprint info --db PATH [--tracks]                               size and tracks of an index
    audiovec identify FILE... --db PATH [--mode fingerprint|vector|filter_refine] [--json]

Track ids are the files' paths relative to the folder given to ``index`` (the path itself for single files).
``identify`` exits with 0 when every file was identified, 1 when at least one had no match, and 2 on errors.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from audiovec.cli._common import add_progress_flag, parse_params, progress
from audiovec.errors import AudiovecError, ConfigError

__all__ = ["add_commands"]


def _cmd_index(args: argparse.Namespace) -> int:
    from audiovec.identify import FingerprintConfig, Identifier
    from audiovec.ingest import find_audio_files

    db = Path(args.db)
    if (db / "identifier.json").exists() or (db / "manifest.json").exists():
        if args.embedder or args.fp_param:
            print("audiovec: note: --embedder/--fp-param are ignored for an existing index", file=sys.stderr)
        ident = Identifier.open(db, mmap=False)
    else:
        config = FingerprintConfig(**parse_params(args.fp_param, "--fp-param"))
        ident = Identifier.create(db, fingerprint_config=config, embedder=args.embedder, store=args.store)
    jobs: list[tuple[Path, str]] = []
    for root in map(Path, args.paths):
        for f in find_audio_files([root], recursive=not args.no_recursive):
            track_id = f.relative_to(root).as_posix() if root.is_dir() else f.as_posix()
            jobs.append((f, track_id))
    if not jobs:
        print("audiovec fingerprint index: no audio files found", file=sys.stderr)
        return 2
    added = skipped = failed = 0
    audio_s = 0.0
    t0 = time.perf_counter()
    with progress(args, len(jobs), f"index into {db}") as cb:
        for path, track_id in cb.wrap(jobs):
            if track_id in ident and not args.replace:
                skipped += 1
                continue
            try:
                ident.add(path, track_id, {"path": str(path.resolve()), "title": path.stem}, replace=args.replace)
                audio_s += ident.track(track_id).duration
                added += 1
            except AudiovecError as err:
                print(f"FAILED {path}: {type(err).__name__}: {err}", file=sys.stderr)
                failed += 1
    elapsed = time.perf_counter() - t0
    ident.save()
    msg = f"indexed {added} track(s), {audio_s / 60:.1f} min of audio, in {elapsed:.1f} s"
    if audio_s:
        msg += f" ({audio_s / max(elapsed, 1e-9):.0f}x real time)"
    if skipped:
        msg += f"; {skipped} already indexed (use --replace to re-index)"
    print(f"{msg}; {len(ident)} track(s) in {db}")
    _print_stats(ident)
    return 1 if failed else 0


def _print_stats(ident: Any) -> None:
    if ident.fingerprints is not None:
        s = ident.fingerprints.stats()
        print(
            f"fingerprints: {s.landmarks} landmarks ({s.landmarks_per_second:.0f}/s), {s.bytes / 1e6:.2f} MB, "
            f"{s.kb_per_minute:.0f} kB per minute of audio"
        )
    if ident.store is not None:
        print(f"vectors: {ident.store.count()} segment vector(s) of dim {ident.store.dim} ({ident.embedder.name})")


def _cmd_remove(args: argparse.Namespace) -> int:
    from audiovec.identify import Identifier

    db = Path(args.db)
    ident = Identifier.open(db, mmap=False)
    missing = [t for t in args.track_ids if not ident.remove(t)]
    ident.save()
    for t in missing:
        print(f"not indexed: {t}", file=sys.stderr)
    print(f"removed {len(args.track_ids) - len(missing)} track(s); {len(ident)} left")
    return 1 if missing else 0


def _cmd_info(args: argparse.Namespace) -> int:
    from audiovec.identify import Identifier

    ident = Identifier.open(Path(args.db))
    print(f"{args.db}: {len(ident)} track(s), default mode {ident.mode}")
    _print_stats(ident)
    if args.tracks:
        for t in ident.track_ids:
            print(f"  {t}  {ident.track(t).duration:.1f} s")
    return 0


def _cmd_identify(args: argparse.Namespace) -> int:
    from audiovec.identify import Identifier

    ident = Identifier.open(Path(args.db))
    if args.min_score is not None:
        ident.min_score = args.min_score
    if args.min_similarity is not None:
        ident.min_similarity = args.min_similarity
    if args.candidates is not None:
        ident.candidates = args.candidates
    status = 0
    for path in args.files:
        try:
            r = ident.identify(path, mode=args.mode, top=args.top)
        except ConfigError as err:  # a mode this index cannot run: every file would fail the same way
            print(f"audiovec identify: error: {type(err).__name__}: {err}", file=sys.stderr)
            return 2
        except AudiovecError as err:
            print(f"{path}: ERROR {type(err).__name__}: {err}", file=sys.stderr)
            status = 2
            continue
        if args.json:
            print(json.dumps({"file": os.fspath(path), **r.to_dict()}))
        elif r.matched:
            title = r.metadata.get("title")
            print(
                f"{path}: {r.track_id}{f' ({title})' if title and title not in str(r.track_id) else ''} "
                f"at {r.offset:.2f} s — score {r.score:g}, margin {r.margin:g} over "
                f"{r.runner_up or 'nothing'}, confidence {r.confidence:.2f} [{r.mode}]"
            )
        else:
            best = r.candidates[0].track_id if r.candidates else "nothing"
            print(f"{path}: no match (best {best}, score {r.score:g} < threshold {r.threshold:g}) [{r.mode}]")
        if not r.matched and status == 0:
            status = 1
    return status


def add_commands(subparsers: Any) -> None:
    """Add ``fingerprint`` (``index``, ``remove``, ``info``) and ``identify`` to the ``audiovec`` parser.

    Args:
        subparsers: What ``ArgumentParser.add_subparsers()`` returned; every command sets ``func``.
    """
    fp = subparsers.add_parser("fingerprint", help="build and manage an identification index")
    fsub = fp.add_subparsers(dest="fingerprint_command", required=True)

    p = fsub.add_parser("index", help="index audio files/folders (creates the index or adds to it)")
    p.add_argument("paths", nargs="+", help="audio files and/or folders (searched recursively)")
    p.add_argument("--db", required=True, help="index folder (created if missing)")
    p.add_argument(
        "-e",
        "--embedder",
        default=None,
        help="also store segment vectors from this embedder (e.g. mfcc), for the vector and filter_refine modes",
    )
    p.add_argument("--store", default="exact", help="vector store for --embedder (default exact)")
    p.add_argument(
        "--fp-param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="fingerprint parameter of a new index, repeatable (e.g. --fp-param peaks_per_second=20)",
    )
    p.add_argument("--replace", action="store_true", help="re-index tracks that are already indexed")
    p.add_argument("--no-recursive", action="store_true", help="do not search folders recursively")
    add_progress_flag(p)
    p.set_defaults(func=_cmd_index)

    p = fsub.add_parser("remove", help="remove tracks from an index")
    p.add_argument("track_ids", nargs="+")
    p.add_argument("--db", required=True)
    p.set_defaults(func=_cmd_remove)

    p = fsub.add_parser("info", help="size and content of an index")
    p.add_argument("--db", required=True)
    p.add_argument("--tracks", action="store_true", help="list the tracks")
    p.set_defaults(func=_cmd_info)

    p = subparsers.add_parser("identify", help="identify audio excerpts against an index")
    p.add_argument("files", nargs="+", help="audio excerpts")
    p.add_argument("--db", required=True, help="index folder made by `audiovec fingerprint index`")
    p.add_argument("--mode", choices=["fingerprint", "vector", "filter_refine"], default=None)
    p.add_argument("--top", type=int, default=5, help="ranked candidates to report (with --json)")
    p.add_argument("--min-score", type=float, default=None, help="fingerprint threshold (landmarks)")
    p.add_argument("--min-similarity", type=float, default=None, help="vector threshold (cosine)")
    p.add_argument("--candidates", type=int, default=None, help="filter_refine: tracks kept by the vector stage")
    p.add_argument("--json", action="store_true", help="one JSON object per file")
    p.set_defaults(func=_cmd_identify)

"""``audiovec fingerprint ...`` and ``audiovec identify``: index a music collection, identify excerpts.

Commands (added to the ``audiovec`` parser by :func:`add_commands`)::

    audiovec fingerprint index DIR... --db PATH [--embedder mfcc] [--replace]   index (or add to) a collection
    audiovec fingerprint remove TRACK_ID... --db PATH                            remove tracks
    audiovec fingerprint info --db PATH [--tracks]                               size and tracks of an index
    audiovec fingerprint calibrate NEGATIVE... --db PATH [--fpr 0.001] [--lengths 5 10]   set the threshold
    audiovec identify FILE... --db PATH [--mode fingerprint|vector|filter_refine] [--json]

Track ids are the files' paths relative to the folder given to ``index`` (the path itself for single files).
``identify`` exits with 0 when every file was identified, 1 when at least one had no match, and 2 on errors.
"""

from __future__ import annotations

import argparse
import json
import math
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
        config = FingerprintConfig.from_dict(parse_params(args.fp_param, "--fp-param"))
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
    for kind, name in (("fingerprint", "min_score"), ("vector", "min_similarity")):
        cal = ident.calibrations.get(kind)
        if cal is not None:
            print(
                f"{name} {getattr(ident, name):g}: calibrated on {cal.negatives} negative queries for a false-positive "
                f"rate of {100 * cal.target_fpr:g} % (highest negative score {cal.score_max:g}, margin "
                f"{'none' if cal.margin is None else f'{cal.margin:g}'})"
            )
    if args.tracks:
        for t in ident.track_ids:
            print(f"  {t}  {ident.track(t).duration:.1f} s")
    return 0


def _import_numpy_without_blas_threads(db: Path) -> None:
    """Load NumPy with a one-thread OpenBLAS when the index has fingerprints only (no ``vectors`` folder).

    Matching fingerprints makes no BLAS call, and starting OpenBLAS's thread pool costs more CPU than the whole
    match of a short excerpt (about 0.05 s on 2 cores). OpenBLAS reads ``OPENBLAS_NUM_THREADS`` once, when it
    loads: the variable is set for that moment only, and never when the user set it or NumPy is already loaded.
    """
    var = "OPENBLAS_NUM_THREADS"
    if "numpy" in sys.modules or var in os.environ or (db / "vectors").exists():
        return
    os.environ[var] = "1"
    try:
        import numpy  # noqa: F401
    finally:
        del os.environ[var]


def _cmd_identify(args: argparse.Namespace) -> int:
    _import_numpy_without_blas_threads(Path(args.db))
    from audiovec.identify import Identifier

    ident = Identifier.open(Path(args.db))
    if args.min_score is not None:
        ident.min_score = args.min_score
    if args.min_similarity is not None:
        ident.min_similarity = args.min_similarity
    if args.candidates is not None:
        ident.candidates = args.candidates
    ident.shortlist = args.shortlist
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


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from audiovec.audio.degrade import Degradation, parse_condition
    from audiovec.identify import Identifier, calibrate, negative_excerpts
    from audiovec.ingest import find_audio_files

    if not 0.0 <= args.fpr < 1.0:
        print(f"audiovec fingerprint calibrate: error: --fpr must be in [0, 1), got {args.fpr}", file=sys.stderr)
        return 2
    db = Path(args.db)
    ident = Identifier.open(db, mmap=False)
    mode = args.mode or ident.mode
    try:
        before = ident.threshold(mode)  # also checks that this index can run the mode
    except ConfigError as err:
        print(f"audiovec fingerprint calibrate: error: {err}", file=sys.stderr)
        return 2
    degradations: list[Degradation | None] = [parse_condition(spec) for spec in args.degrade] or [None]
    indexed = {str(ident.track(t).metadata.get("path", "")) for t in ident.track_ids}
    files: list[Path] = []
    for f in find_audio_files([Path(p) for p in args.negatives], recursive=not args.no_recursive):
        if str(f.resolve()) in indexed:
            print(
                f"audiovec: note: skipping {f}: it is indexed (negatives must be tracks not in the index)",
                file=sys.stderr,
            )
        else:
            files.append(f)
    if not files:
        print("audiovec fingerprint calibrate: no negative audio files found", file=sys.stderr)
        return 2
    per_file = (args.per_file * len(args.lengths) if args.lengths else 1) * len(degradations)
    scores: list[float] = []
    worst: tuple[float, str, str | None] = (float("-inf"), "", None)
    failed = 0
    t0 = time.perf_counter()
    with progress(args, len(files) * per_file, f"score negatives against {db}", unit="query") as cb:
        for f in files:
            try:
                excerpts = list(negative_excerpts([f], args.lengths, per_file=args.per_file, seed=args.seed))
            except AudiovecError as err:
                print(f"FAILED {f}: {type(err).__name__}: {err}", file=sys.stderr)
                failed += 1
                cb.relative_update(per_file)
                continue
            for label, audio in excerpts:
                for deg in degradations:
                    query = deg(audio, seed=args.seed, key=label) if deg is not None else audio
                    r = ident.identify(query, mode=mode, top=2)
                    scores.append(r.score)
                    if r.score > worst[0]:
                        best = r.candidates[0].track_id if r.candidates else None
                        worst = (r.score, label + (f" [{deg.spec}]" if deg is not None else ""), best)
                    cb.relative_update()
    elapsed = time.perf_counter() - t0
    if not scores:
        print("audiovec fingerprint calibrate: no negative query could be scored", file=sys.stderr)
        return 2
    kind = "vector" if mode == "vector" else "fingerprint"
    cal = calibrate(scores, args.fpr, kind=kind, mode=mode)
    if args.json:
        print(json.dumps({**cal.to_dict(), "previous_threshold": before, "fpr_upper_95": cal.fpr_upper_95}))
    else:
        n = cal.negatives
        q = cal.quantiles
        fmt = "{:.4f}" if kind == "vector" else "{:g}"
        print(f"scored {n} negative queries from {len(files) - failed} file(s) in {elapsed:.1f} s [{mode}]")
        print(
            f"negative scores: median {fmt.format(cal.score_median)}, 90 % {fmt.format(q['0.9'])}, "
            f"99 % {fmt.format(q['0.99'])}, max {fmt.format(cal.score_max)} "
            f"({worst[1]}, best candidate {worst[2] or 'none'})"
        )
        print(
            f"threshold {fmt.format(cal.threshold)} (was {fmt.format(before)}): {round(cal.observed_fpr * n)} of {n} "
            f"negatives reach it ({100 * cal.observed_fpr:.2f} %, asked for at most {100 * cal.target_fpr:g} %; "
            f"95 % upper bound {100 * cal.fpr_upper_95:.2f} %)"
        )
        if n * args.fpr < 1:
            print(
                f"note: {n} negatives cannot measure a rate of {100 * args.fpr:g} % (that needs at least "
                f"{math.ceil(1 / args.fpr) if args.fpr else 'infinitely many'}); give more negatives (more files, "
                "--lengths, --per-file) for a measured rate"
            )
        tail = "none fitted" if cal.threshold_tail is None else fmt.format(cal.threshold_tail)
        print(
            f"threshold = the larger of the empirical {fmt.format(cal.threshold_empirical)} (above all but "
            f"{100 * args.fpr:g} % of the negatives) and the {100 * args.fpr:g} % quantile of an exponential tail "
            f"fitted to the negative scores ({tail})"
        )
        print(
            f"margin {'none' if cal.margin is None else fmt.format(cal.margin)} over the highest negative score "
            "below the threshold; a match "
            f"{fmt.format(cal.scale)} above the threshold reads confidence 0.63, "
            f"{fmt.format(3 * cal.scale)} above reads 0.95"
        )
    if args.dry_run:
        if not args.json:
            print("dry run: the index is unchanged")
        return 0
    ident.set_calibration(cal)
    try:
        ident.save()
    except ConfigError as err:
        print(f"audiovec fingerprint calibrate: error: {err}", file=sys.stderr)
        return 2
    if not args.json:
        print(f"stored in {db}: `audiovec identify --db {db}` now uses this threshold")
    return 1 if failed else 0


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

    p = fsub.add_parser(
        "calibrate",
        help="set the index's threshold from queries of tracks that are NOT in it, at a chosen false-positive rate",
        description="Score queries cut from recordings that are not in the index (the best score each reaches is a "
        "wrong answer), choose a threshold that keeps their false-positive rate at most --fpr (extrapolating the tail "
        "of their scores when there are too few negatives to measure that rate), and store it in the index: "
        "`audiovec identify` then uses it, and its confidences are scaled by these scores.",
    )
    p.add_argument("negatives", nargs="+", help="audio files and/or folders of recordings that are not indexed")
    p.add_argument("--db", required=True, help="index folder made by `audiovec fingerprint index`")
    p.add_argument(
        "--fpr", type=float, default=0.001, help="false-positive rate to allow on the negatives (default 0.001)"
    )
    p.add_argument(
        "--lengths",
        nargs="+",
        type=float,
        default=[],
        metavar="SECONDS",
        help="cut random excerpts of these lengths from each file (default: each file is one query as it is); use "
        "the lengths of the queries you expect",
    )
    p.add_argument("--per-file", type=int, default=10, help="excerpts per file and length (default 10)")
    p.add_argument("--seed", type=int, default=0, help="seed of the excerpt starts and of --degrade noise")
    p.add_argument(
        "--degrade",
        action="append",
        default=[],
        metavar="SPEC",
        help="score each excerpt degraded by SPEC (clean, noise:5, pink:0, mp3:32, gsm...), repeatable; "
        "when given, only the listed conditions are scored (add clean to keep the excerpts as they are)",
    )
    p.add_argument(
        "--mode",
        choices=["fingerprint", "vector", "filter_refine"],
        default=None,
        help="the mode to calibrate (default: the index's; vector sets the similarity threshold)",
    )
    p.add_argument("--dry-run", action="store_true", help="report the threshold without storing it")
    p.add_argument("--json", action="store_true", help="print the calibration as one JSON object")
    p.add_argument("--no-recursive", action="store_true", help="do not search folders recursively")
    add_progress_flag(p)
    p.set_defaults(func=_cmd_calibrate)

    p = subparsers.add_parser("identify", help="identify audio excerpts against an index")
    p.add_argument("files", nargs="+", help="audio excerpts")
    p.add_argument("--db", required=True, help="index folder made by `audiovec fingerprint index`")
    p.add_argument("--mode", choices=["fingerprint", "vector", "filter_refine"], default=None)
    p.add_argument("--top", type=int, default=5, help="ranked candidates to report (with --json)")
    p.add_argument("--min-score", type=float, default=None, help="fingerprint threshold (landmarks)")
    p.add_argument("--min-similarity", type=float, default=None, help="vector threshold (cosine)")
    p.add_argument("--candidates", type=int, default=None, help="filter_refine: tracks kept by the vector stage")
    p.add_argument(
        "--shortlist",
        type=int,
        default=None,
        help="fingerprints: score exactly only this many tracks with the best coarse offset votes (a fixed cost "
        "on very large indexes; 50 is a safe choice; default: the exact result)",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per file")
    p.set_defaults(func=_cmd_identify)

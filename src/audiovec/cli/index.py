"""``audiovec index`` and ``audiovec search``: a folder of audio into a collection, and queries against it.

The collection is a folder (``--collection DIR``) holding the embedder, pooling and store it was made with: the
same on-disk collection ``audiovec serve`` serves when it lies under ``DATA_DIR/collections/``. ``index`` creates it
on first use and extends it afterwards; ``search`` embeds queries with the collection's own embedder and pooling.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from audiovec.cli._common import add_embedder_flags, add_progress_flag, add_workers_flag, parse_params, progress
from audiovec.errors import ConfigError

__all__ = ["add_commands"]


def _cmd_index(args: argparse.Namespace) -> int:
    from audiovec.service.collection import Collection

    index: Any = json.loads(args.index) if args.index.startswith("{") else args.index
    try:
        metadata = json.loads(args.metadata) if args.metadata else None
    except ValueError as err:
        raise ConfigError(f"--metadata must be a JSON object: {err}") from None
    col = Collection.create(
        args.collection,
        args.embedder,
        parse_params(args.param),
        pooling=args.pooling,
        segments=args.segments,
        store=args.store,
        index=index,
        metric=args.metric,
        milvus_uri=args.milvus_uri,
    )
    try:
        report = col.index(
            args.paths,
            workers=args.workers,
            label_from=args.label_from,
            metadata=metadata,
            recursive=not args.no_recursive,
            checkpoint_s=args.checkpoint,
            ray=args.ray,
            progress=progress(args, None, f"index into {col.name}"),
        )
        total = col.store.count()
    finally:
        col.close()
    print(f"{report.summary()}; {total} vectors in {args.collection}")
    for fail in report.failures[:20]:
        print(f"FAILED {fail.source}: {fail.error}: {fail.message}", file=sys.stderr)
    if report.failures:
        print(
            f"{len(report.failures)} file(s) failed; all are listed in {args.collection}/failures.jsonl",
            file=sys.stderr,
        )
        return 1
    return 0


def _cmd_search(args: argparse.Namespace) -> int:
    from audiovec.service.collection import Collection

    try:
        flt = json.loads(args.filter) if args.filter else None
    except ValueError as err:
        raise ConfigError(f'--filter must be JSON, e.g. \'{{"label": "dog"}}\': {err}') from None
    col = Collection.open(args.collection)
    try:
        answers = [{"query": q, "hits": col.search(q, k=args.k, filter=flt)} for q in args.queries]
    finally:
        col.close()
    if args.json:
        print(json.dumps(answers if len(answers) > 1 else answers[0], indent=2, default=str))
        return 0
    for answer in answers:
        print(f"{answer['query']}:")
        if not answer["hits"]:
            print("  (no hits)")
        for rank, h in enumerate(answer["hits"], 1):
            where = f" [{h['start']:.1f}-{h['end']:.1f} s]" if h.get("start") is not None and col.segmented else ""
            meta = " ".join(f"{k}={v}" for k, v in h["metadata"].items())
            print(f"  {rank:>3}. {h['score']:.4f}  {h.get('path') or h.get('filename') or h['id']}{where}  {meta}")
    return 0


def add_commands(sub: Any) -> None:
    """Add ``index`` and ``search``."""
    p = sub.add_parser(
        "index",
        help="index audio files/folders into a collection folder (created on first use)",
        description="Embeds every audio file under PATHs and stores its vectors in the collection at --collection "
        "(created with -e/-p/--pooling/--store on first use; later runs must use the same settings). Files whose "
        "content is already stored are skipped, failures are recorded and the run goes on; after a crash or a "
        "kill, rerun the same command to resume.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="audio files and/or folders")
    p.add_argument("--collection", required=True, metavar="DIR", help="the collection's folder")
    add_embedder_flags(p, "mean+l2")
    p.add_argument("--store", default="faiss", choices=["faiss", "exact", "milvus"], help="vector store (faiss)")
    p.add_argument("--index", default="flat", help='index kind or JSON: flat (default), hnsw, \'{"kind": "ivf_pq"}\'')
    p.add_argument("--metric", default="cosine", choices=["cosine", "ip", "l2"])
    p.add_argument("--milvus-uri", default=None, metavar="URI", help="a Milvus server/cluster (with --store milvus)")
    p.add_argument(
        "--label-from",
        default=None,
        metavar="PATTERN",
        help="metadata fields from each file's path relative to PATH, e.g. '{label}/*' (the folder) or "
        "'{digit}_{speaker}_*' (parts of the name); a regex with (?P<name>...) groups also works",
    )
    p.add_argument("--metadata", default=None, metavar="JSON", help="a JSON object stored with every item")
    p.add_argument("--no-recursive", action="store_true", help="do not search folders recursively")
    p.add_argument(
        "--checkpoint", type=float, default=60.0, metavar="SECONDS", help="save the store this often (default 60)"
    )
    add_workers_flag(p)
    p.add_argument(
        "--ray",
        default=None,
        metavar="ADDRESS",
        help="run the embedding on a Ray cluster: its address, or 'auto' (needs audiovec[ray]; docs/ray.md)",
    )
    add_progress_flag(p)
    p.set_defaults(func=_cmd_index)

    p = sub.add_parser("search", help="search a collection folder with audio files (or text, for CLAP)")
    p.add_argument("queries", nargs="+", metavar="QUERY", help="audio files (or text, for a CLAP collection)")
    p.add_argument("--collection", required=True, metavar="DIR", help="the collection's folder")
    p.add_argument("-k", type=int, default=10, help="hits per query (default 10)")
    p.add_argument("--filter", default=None, metavar="JSON", help='metadata filter, e.g. \'{"label": "dog"}\'')
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_search)

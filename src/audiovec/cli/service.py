"""``audiovec serve`` and ``audiovec collection ...``: the search service and its admin commands."""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any

from audiovec.cli._common import add_progress_flag, add_workers_flag, progress
from audiovec.errors import AudiovecError, ConfigError

__all__ = ["add_commands"]


def _settings(args: argparse.Namespace) -> Any:
    from audiovec.service.settings import ServiceSettings

    return ServiceSettings.load(args.config, data_dir=args.data_dir)


def _cmd_serve(args: argparse.Namespace) -> int:
    from audiovec.service.server import serve

    settings = _settings(args)
    print(
        f"audiovec: serving {settings.data_dir} on http://{args.host}:{args.port}/ "
        f"(API key {'required' if settings.api_key else 'not set'}; Ctrl-C to stop)",
        file=sys.stderr,
    )
    serve(settings, host=args.host, port=args.port, log_level=args.log_level)
    return 0


def _manager(args: argparse.Namespace) -> Any:
    from audiovec.service.manager import CollectionManager

    return CollectionManager(_settings(args))


def _cmd_create(args: argparse.Namespace) -> int:
    from audiovec.service.collection import CollectionConfig, StoreSpec

    index: Any = args.index
    if index.startswith("{"):
        index = json.loads(index)
    try:
        config = CollectionConfig(
            name=args.name,
            embedder=args.embedder,
            pooling=args.pooling,
            segments=args.segments,
            store=StoreSpec(backend=args.store, index=index, metric=args.metric),
            keep_audio=not args.no_audio,
            description=args.description,
        )
    except ValueError as err:
        raise ConfigError(str(err)) from None
    with _manager(args) as manager:
        print(json.dumps(manager.create(config).describe(), indent=2))
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    with _manager(args) as manager:
        for col in manager:
            d = col.describe()
            print(
                f"{d['name']}\t{d['items']} items\t{d['config']['embedder']}\t{d['pipeline']}\t{d['config']['store']}"
            )
    return 0


def _cmd_describe(args: argparse.Namespace) -> int:
    with _manager(args) as manager:
        print(json.dumps(manager.get(args.name).describe(), indent=2))
    return 0


def _cmd_drop(args: argparse.Namespace) -> int:
    if not args.yes:
        print(f"audiovec: refusing to drop {args.name!r} without --yes", file=sys.stderr)
        return 2
    with _manager(args) as manager:
        manager.drop(args.name)
    print(f"dropped {args.name}")
    return 0


def _check_roots(paths: list[str], roots: list[Path]) -> list[Path]:
    resolved = [Path(p).resolve() for p in paths]
    if roots:
        allowed = [r.resolve() for r in roots]
        for p in resolved:
            if not any(p == r or p.is_relative_to(r) for r in allowed):
                raise ConfigError(f"{p} is outside the configured index_roots {[str(r) for r in allowed]}")
    return resolved


def _file_metadata(args: argparse.Namespace, path: Path) -> dict[str, Any]:
    try:
        meta = dict(json.loads(args.metadata)) if args.metadata else {}
    except (ValueError, TypeError) as err:
        raise ConfigError(f"--metadata must be a JSON object: {err}") from None
    if args.label_from_parent:
        meta["label"] = path.parent.name
    return meta


def _report(name: str, added: int, skipped: int, failures: list[tuple[Path, str]]) -> int:
    print(f"{name}: added {added}, skipped {skipped} already indexed, failed {len(failures)}")
    for f, msg in failures:
        print(f"  FAILED {f}: {msg}", file=sys.stderr)
    return 1 if failures else 0


def _cmd_index(args: argparse.Namespace) -> int:
    from audiovec.ingest import find_audio_files

    if args.url:
        files = find_audio_files(args.paths, recursive=not args.no_recursive)
        return _index_over_http(args, files)
    if args.allow_duplicates:
        raise ConfigError("--allow-duplicates needs --url: indexing a collection directly stores each content once")
    try:
        metadata = dict(json.loads(args.metadata)) if args.metadata else None
    except (ValueError, TypeError) as err:
        raise ConfigError(f"--metadata must be a JSON object: {err}") from None
    with _manager(args) as manager:
        paths = _check_roots(args.paths, manager.settings.index_roots)
        col = manager.get(args.name)
        report = col.index(
            paths,
            workers=args.workers,
            label_from="{label}/*" if args.label_from_parent else None,
            metadata=metadata,
            recursive=not args.no_recursive,
            progress=progress(args, None, f"index into {args.name}"),
        )
    failures = [(Path(f.source), f"{f.error}: {f.message}") for f in report.failures]
    return _report(args.name, report.added, report.skipped, failures)


def _http(method: str, url: str, headers: dict[str, str], body: bytes | None = None) -> tuple[int, Any]:
    """One request with the standard library; returns the status and the JSON body (errors included)."""
    import urllib.error
    import urllib.request

    def parse(raw: bytes) -> Any:
        try:
            return json.loads(raw or b"null")
        except ValueError:
            return raw.decode("utf-8", "replace")[:500]

    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=600) as resp:
            return int(resp.status), parse(resp.read())
    except urllib.error.HTTPError as err:
        try:
            return int(err.code), parse(err.read())
        finally:
            err.close()
    except (urllib.error.URLError, OSError) as err:
        raise AudiovecError(f"cannot reach the service at {url}: {err}") from None


def _multipart(fields: list[tuple[str, str]], files: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts: list[bytes] = []
    for name, value in fields:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for filename, data in files:
        safe = filename.replace('"', "_").replace("\r", "_").replace("\n", "_")
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{safe}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        )
        parts += [head.encode(), data, b"\r\n"]
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def _index_over_http(args: argparse.Namespace, files: list[Path]) -> int:
    """Upload local files to a running service in batches within its limits (``if_exists=skip`` by default)."""
    from audiovec.service.settings import API_KEY_ENV

    base = args.url.rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise ConfigError(f"--url must be an http:// or https:// address, got {args.url!r}")
    headers = {"Accept": "application/json"}
    if os.environ.get(API_KEY_ENV):
        headers["X-API-Key"] = os.environ[API_KEY_ENV]
    status, health = _http("GET", f"{base}/health", headers)
    if status != 200 or not isinstance(health, dict) or "limits" not in health:
        raise AudiovecError(f"{base}/health answered {status}: is this an audiovec service?")
    limits = health["limits"]
    max_files = int(limits["max_files_per_request"])
    max_bytes = int(limits["max_request_mb"] * 0.9 * 2**20)
    max_file = int(limits["max_file_mb"] * 2**20)
    added = skipped = 0
    failures: list[tuple[Path, str]] = []
    bar = progress(args, len(files), f"upload to {args.name}")
    batch: list[tuple[Path, bytes]] = []

    def send() -> None:
        nonlocal added, skipped
        if not batch:
            return
        metas = json.dumps([_file_metadata(args, p) for p, _ in batch])
        fields = [("metadata", metas), ("if_exists", "add" if args.allow_duplicates else "skip")]
        body, ctype = _multipart(fields, [(p.name, d) for p, d in batch])
        url = f"{base}/api/v1/collections/{args.name}/items"
        status, answer = _http("POST", url, {**headers, "Content-Type": ctype}, body)
        if status in (200, 201, 207):
            result = answer
        elif isinstance(answer, dict) and isinstance(answer.get("error", {}).get("detail"), dict):
            result = answer["error"]["detail"]  # every file failed: the per-file list is in the detail
        else:
            message = answer.get("error", {}).get("message") if isinstance(answer, dict) else answer
            raise AudiovecError(f"the service refused the upload ({status}): {message}")
        added += len(result.get("added", []))
        skipped += len(result.get("existing", []))
        for fail in result.get("failed", []):
            failures.append((batch[int(fail["index"])][0], f"{fail['type']} ({fail['status']}): {fail['message']}"))
        bar.relative_update(len(batch))
        batch.clear()

    for f in files:
        try:
            data = f.read_bytes()
        except OSError as err:
            failures.append((f, f"{type(err).__name__}: {err}"))
            bar.relative_update()
            continue
        if len(data) > max_file:
            failures.append((f, f"larger than the service's {limits['max_file_mb']:g} MiB limit"))
            bar.relative_update()
            continue
        if batch and (len(batch) >= max_files or sum(len(d) for _, d in batch) + len(data) > max_bytes):
            send()
        batch.append((f, data))
    send()
    bar.close()
    return _report(args.name, added, skipped, failures)


def add_commands(subparsers: Any) -> None:
    """Add ``serve`` and ``collection`` (``create``, ``list``, ``describe``, ``drop``, ``index``)."""

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", help="service settings (.toml); see docs/service.md")
        p.add_argument(
            "--data-dir",
            default=os.environ.get("AUDIOVEC_DATA_DIR"),
            help="data folder (overrides the settings file; default ./audiovec-data or $AUDIOVEC_DATA_DIR)",
        )

    p = subparsers.add_parser("serve", help="run the search service and web page (FastAPI + uvicorn)")
    common(p)
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.set_defaults(func=_cmd_serve)

    col = subparsers.add_parser("collection", help="create, list, describe, drop and index service collections")
    csub = col.add_subparsers(dest="collection_command", required=True)

    p = csub.add_parser("create", help="create a collection")
    common(p)
    p.add_argument("name")
    p.add_argument("-e", "--embedder", default="mfcc", help="embedder preset of the service settings (default mfcc)")
    p.add_argument("--pooling", default="mean+l2", help="MODE[:N][+l2] (default mean+l2)")
    p.add_argument("--segments", default=None, metavar="WINDOW[:HOP]", help="one vector per segment, in seconds")
    p.add_argument("--store", default="faiss", help="store backend: faiss (default), exact or milvus")
    p.add_argument("--index", default="flat", help='index kind or JSON, e.g. hnsw or \'{"kind": "ivf", "nlist": 64}\'')
    p.add_argument("--metric", default="cosine", choices=["cosine", "ip", "l2"])
    p.add_argument("--no-audio", action="store_true", help="do not keep uploaded audio (no playback)")
    p.add_argument("--description", default="")
    p.set_defaults(func=_cmd_create)

    p = csub.add_parser("list", help="list collections")
    common(p)
    p.set_defaults(func=_cmd_list)

    p = csub.add_parser("describe", help="describe a collection (JSON)")
    common(p)
    p.add_argument("name")
    p.set_defaults(func=_cmd_describe)

    p = csub.add_parser("drop", help="delete a collection with its vectors and audio")
    common(p)
    p.add_argument("name")
    p.add_argument("--yes", action="store_true", help="really drop it")
    p.set_defaults(func=_cmd_drop)

    p = csub.add_parser(
        "index",
        help="add audio files/folders to a collection (admin action; folders must lie under index_roots)",
        description="Adds files from this machine. With --url it uploads them to a running service (in batches "
        "within its limits; the key comes from $AUDIOVEC_API_KEY). Without --url it writes the collection "
        "directly: run it while the service is stopped when the collection uses an embedded store (faiss, exact, "
        "Milvus Lite), and only folders under the settings' index_roots are read.",
    )
    common(p)
    p.add_argument("--url", help="a running service, e.g. http://127.0.0.1:8000 (uploads over HTTP)")
    p.add_argument("name")
    p.add_argument("paths", nargs="+", help="audio files and/or folders")
    p.add_argument("--metadata", help="JSON object added to every item's metadata")
    p.add_argument("--label-from-parent", action="store_true", help="set metadata 'label' to the parent folder name")
    p.add_argument(
        "--allow-duplicates", action="store_true", help="with --url: add files whose exact bytes are already stored"
    )
    p.add_argument("--no-recursive", action="store_true", help="do not search folders recursively")
    add_workers_flag(p)
    add_progress_flag(p)
    p.set_defaults(func=_cmd_index)

"""Index files and folders into a collection: what ``audiovec index`` and :meth:`Collection.index` run.

For every audio file under the given paths it

1. **hashes** the file (SHA-256) in this process: the item's id is the first 32 hex digits of the hash, so the same
   content always gets the same id, and a file whose item is already stored is **skipped** (a rerun, or a resume
   after a crash, adds only what is missing and never a duplicate; identical files under two names are stored once);
2. sends the rest through the ingest path (:class:`~audiovec.ingest.Ingest`) in ``workers`` processes, in order;
3. pools each item's frames with the collection's pipeline and **stores** the vectors in batches, with the record
   fields of :mod:`audiovec.ingest.records`, the file's name (``_file``) and absolute path (``_path``), and
   metadata from the path: ``folder`` (the parent folder's name) and the fields a ``label_from`` pattern parses;
4. writes each batch to the store's journal, flushed to disk, at least every 2 seconds (so a crash loses at most
   the last seconds of embedding work), and **saves** the whole store every ``checkpoint_s`` seconds and at the end
   (which empties the journal); a file that cannot be read or embedded is recorded as a failure (also written to
   ``failures.jsonl`` in the collection's folder) and the run goes on.

After a crash or a kill, every batch written before it is kept (replayed from the journal when the store is
opened) and the run resumes from there: nothing is stored twice.

Path patterns (``label_from``) name fields in the path relative to the folder given, e.g. ``"{label}/*"`` or
``"{digit}_{speaker}_*"``: see :mod:`audiovec.ingest.paths` for the syntax.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from audiovec._files import atomic_write
from audiovec._hashing import sha256_file
from audiovec.audio.formats import sniff
from audiovec.errors import AudiovecError, ConfigError
from audiovec.ingest import Failure, Ingest, ItemResult, PathPattern, Source, find_audio_files
from audiovec.ingest.records import content_key, file_fields, vector_records
from audiovec.progress import Callback, as_callback

if TYPE_CHECKING:
    from audiovec.service.collection import Collection

__all__ = ["IndexReport", "index_paths"]

log = logging.getLogger(__name__)

#: Files hashed and checked against the store at a time.
_CHECK_CHUNK = 256
#: Vectors written to the store per ``add`` call (at most).
_STORE_BATCH = 2048
#: Seconds between writes to the store (at most): what a crash can make the next run embed again.
_FLUSH_S = 2.0


@dataclass
class IndexReport:
    """What an indexing run did.

    Attributes:
        collection: The collection's name.
        files: Audio files found.
        added: Items added.
        vectors: Vectors added.
        skipped: Files whose content was already stored (or appeared twice in this run).
        failures: Files that could not be read or embedded.
        seconds: Wall-clock time of the run.
        audio_seconds: Seconds of audio added.
    """

    collection: str
    files: int = 0
    added: int = 0
    vectors: int = 0
    skipped: int = 0
    failures: list[Failure] = field(default_factory=list)
    seconds: float = 0.0
    audio_seconds: float = 0.0

    def summary(self) -> str:
        """One line for a terminal or a log."""
        rate = self.added / self.seconds if self.seconds > 0 else 0.0
        return (
            f"{self.collection}: {self.files} files: added {self.added} ({self.vectors} vectors, "
            f"{self.audio_seconds / 3600:.2f} h of audio), skipped {self.skipped} already stored, "
            f"failed {len(self.failures)}; {self.seconds:.1f} s ({rate:.1f} files/s)"
        )

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "collection": self.collection,
            "files": self.files,
            "added": self.added,
            "vectors": self.vectors,
            "skipped": self.skipped,
            "failed": len(self.failures),
            "failures": [f.as_dict() for f in self.failures],
            "seconds": round(self.seconds, 3),
            "audio_seconds": round(self.audio_seconds, 3),
        }


def _files_with_paths(paths: Iterable[str | os.PathLike[str]], recursive: bool) -> list[tuple[Path, str]]:
    """Audio files under ``paths``, each with its path relative to the folder given (or its name)."""
    seen: dict[Path, str] = {}
    for root in map(Path, paths):
        for f in find_audio_files([root], recursive=recursive):
            rel = f.relative_to(root).as_posix() if root.is_dir() else f.name
            seen.setdefault(f, rel)
    return list(seen.items())


def index_paths(
    collection: Collection,
    paths: Iterable[str | os.PathLike[str]],
    *,
    workers: int | None = None,
    label_from: str | PathPattern | None = None,
    metadata: Mapping[str, Any] | None = None,
    recursive: bool = True,
    batch_size: int = 16,
    checkpoint_s: float = 60.0,
    ray: str | None = None,
    progress: bool | Callback | None = True,
) -> IndexReport:
    """Add the audio files under ``paths`` to ``collection`` (see the module docs).

    Args:
        collection: An open collection.
        paths: Files and folders.
        workers: Embedding processes (``None``: one per core; 1: this process).
        label_from: Fields parsed from each file's path (a :class:`PathPattern` or its text).
        metadata: Metadata stored with every item (keys: letters, digits and ``_``, not starting with ``_``).
        recursive: Search folders recursively.
        batch_size: Files per ingest batch.
        checkpoint_s: Seconds between saves of the store (what a crash can make the next run redo).
        ray: Embed on a Ray cluster instead (its address, or ``"auto"``): the files this process has not found in
            the collection go to :func:`audiovec.ingest.ray.ray_index`, whose actors write straight into the
            collection's Milvus server, or send the vectors back here for a local store. Every node must see the
            files under the same paths. Needs ``audiovec[ray]``.
        progress: Report progress (a bar on a terminal, log lines otherwise).

    Returns:
        What was added, skipped and failed.

    Raises:
        ConfigError: Invalid metadata or pattern.
    """
    from audiovec.service.collection import check_user_metadata, now

    t_start = time.perf_counter()
    base_meta = check_user_metadata(metadata)
    pattern = PathPattern(label_from) if isinstance(label_from, str) else label_from
    files = _files_with_paths(paths, recursive)
    report = IndexReport(collection.name, files=len(files))
    writer = _Writer(collection, report, checkpoint_s)
    seen: set[str] = set()

    def user_metadata(path: Path, rel: str) -> dict[str, Any]:
        meta: dict[str, Any] = {"folder": path.parent.name, **base_meta}
        if pattern is not None:
            meta.update(pattern(rel))
        return meta

    def sources(cb: Callback) -> Iterator[Source]:
        for chunk_start in range(0, len(files), _CHECK_CHUNK):
            chunk: list[Source] = []
            for path, rel in files[chunk_start : chunk_start + _CHECK_CHUNK]:
                try:
                    digest = sha256_file(path)
                except OSError as err:
                    src = Source(str(path), path=str(path))
                    report.failures.append(Failure.of(src, None, err))
                    cb.relative_update()
                    continue
                item_id = content_key(digest)
                if item_id in seen:
                    report.skipped += 1
                    cb.relative_update()
                    continue
                seen.add(item_id)
                meta = user_metadata(path, rel)
                chunk.append(Source(item_id, path=str(path), name=str(path), metadata=meta, digest=digest))
            stored = collection.stored_items([s.key for s in chunk])
            for s in chunk:
                if s.key in stored:
                    report.skipped += 1
                    cb.relative_update()
                else:
                    yield s

    if ray is not None:
        return _on_ray(collection, report, sources, ray, progress, t_start)
    ingest = Ingest(
        collection.embedder,
        workers=workers,
        batch_size=batch_size,
        hash_content=True,
        max_duration_s=collection.settings.max_duration_s,
    )
    label = collection.embedder.name
    with as_callback(progress, len(files), f"index into {collection.name}", "file") as cb:
        try:
            for item in ingest.run(sources(cb)):
                writer.add(item, label, now())
                cb.relative_update()
        finally:
            writer.close()
    report.seconds = time.perf_counter() - t_start
    _write_failures(collection.root, report.failures)
    log.info("%s", report.summary())
    return report


def _on_ray(
    collection: Collection,
    report: IndexReport,
    sources: Callable[[Callback], Iterator[Source]],
    address: str,
    progress: bool | Callback | None,
    t_start: float,
) -> IndexReport:
    """The files not stored yet, embedded on a Ray cluster (see :func:`index_paths`)."""
    from audiovec.ingest.ray import MilvusSink, ray_index

    if collection.config.keep_audio:
        raise ConfigError(
            f"collection {collection.name!r} keeps copies of its audio, which indexing on Ray does not make"
        )
    with as_callback(progress, report.files, f"check {collection.name} for stored files", "file") as cb:
        todo = list(sources(cb))
    metadata = {s.label: dict(s.metadata) for s in todo}
    s = collection.settings
    sink: Any = collection.store
    if collection.config.store.backend == "milvus" and s.milvus_uri:
        spec = collection.config.store
        token = s.milvus_token.get_secret_value() if s.milvus_token else ""
        sink = MilvusSink(s.milvus_uri, s.milvus_prefix + collection.name, spec.metric, spec.index, token)
    result = ray_index(
        [src.label for src in todo],
        collection.embedder,
        pipeline=collection.pipeline,
        store=sink,
        address=address,
        metadata=metadata.__getitem__,
        progress=progress,
    )
    collection.save(force=True)
    report.added, report.vectors = result.indexed, result.vectors
    report.skipped += result.skipped
    report.failures += result.failures
    report.seconds = time.perf_counter() - t_start
    _write_failures(collection.root, report.failures)
    log.info("%s", report.summary())
    return report


class _Writer:
    """Pools results and writes them to the store in batches, saving every ``checkpoint_s`` seconds."""

    def __init__(self, collection: Collection, report: IndexReport, checkpoint_s: float) -> None:
        self.col = collection
        self.report = report
        self.checkpoint_s = checkpoint_s
        self.vectors: list[NDArray[np.float32]] = []
        self.ids: list[str] = []
        self.metas: list[dict[str, Any]] = []
        self.audio: list[tuple[Path, Path]] = []  # (source file, copy in the collection) when audio is kept
        self.items = 0
        self.audio_s = 0.0
        self.last_save = self.last_flush = time.monotonic()

    def add(self, item: ItemResult, label: str, added: str) -> None:
        failure = item.failures.get(label)
        if failure is None:
            try:
                pooled = self.col.pipeline(item.frames[label])
                extra: dict[str, Any] = {**file_fields(item.source.label), "_added": added}
                if self.col.config.keep_audio:
                    extra["_format"] = self._keep(item)
            except (AudiovecError, OSError) as err:
                failure = Failure.of(item.source, label, err)
        if failure is not None:
            log.info("not indexed: %s: %s: %s", failure.source, failure.error, failure.message)
            self.report.failures.append(failure)
            return
        ids, metas = vector_records(
            item.source.key,
            pooled,
            duration=item.duration or 0.0,
            metadata=item.source.metadata,
            digest=item.digest,
            extra=extra,
        )
        self.vectors.append(pooled.vectors)
        self.ids.extend(self.col.vector_ids(item.source.key, len(ids)))
        self.metas.extend(metas)
        self.items += 1
        self.audio_s += item.duration or 0.0
        if len(self.ids) >= _STORE_BATCH or time.monotonic() - self.last_flush >= _FLUSH_S:
            self.flush()
        if time.monotonic() - self.last_save >= self.checkpoint_s:
            self.save()

    def _keep(self, item: ItemResult) -> str:
        """Plan the copy of an item's file into the collection (written just before its vectors)."""
        src = Path(item.source.label)
        with open(src, "rb") as f:
            kind = sniff(f.read(64 << 10))
        self.audio.append((src, self.col.audio_dir / f"{item.source.key}{kind.extension}"))
        return kind.name

    def flush(self) -> None:
        self.last_flush = time.monotonic()
        if not self.ids:
            return
        for src, dst in self.audio:
            dst.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(dst, functools.partial(_copy, src))
        self.col.add_vectors(np.concatenate(self.vectors), self.ids, self.metas)
        self.report.added += self.items
        self.report.vectors += len(self.ids)
        self.report.audio_seconds += self.audio_s
        self.vectors, self.ids, self.metas, self.audio = [], [], [], []
        self.items, self.audio_s = 0, 0.0

    def save(self) -> None:
        self.flush()
        self.col.save()
        self.last_save = time.monotonic()
        log.info("checkpoint: %d items stored in %s", self.report.added, self.col.name)

    def close(self) -> None:
        self.save()


def _copy(src: Path, dst: Path) -> None:
    shutil.copyfile(src, dst)


def _write_failures(root: Path, failures: Sequence[Failure]) -> None:
    """The failures of the last run, one JSON object per line, in ``failures.jsonl``."""
    text = "".join(json.dumps(f.as_dict()) + "\n" for f in failures)

    def write(tmp: Path) -> None:
        tmp.write_text(text, encoding="utf-8")

    atomic_write(root / "failures.jsonl", write)

"""Batch extraction: embed many files into pooled vectors, recording failures instead of stopping.

:func:`extract` is what ``audiovec embed`` runs. Short files are decoded and embedded in batches (one model call
for several files); files longer than ``stream_above_s`` are streamed in blocks so memory stays bounded. A file
that cannot be read or embedded is recorded in :attr:`ExtractResult.failures` with its typed error, and the
run goes on.

Example:
    >>> from audiovec import get_embedder, Pipeline
    >>> from audiovec.data import demo_dir
    >>> from audiovec.extract import extract
    >>> result = extract([demo_dir()], get_embedder("mfcc"), Pipeline.parse("mean_std+l2"), progress=False)
    >>> result.vectors.shape
    (42, 40)
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from audiovec.audio import info, load
from audiovec.embedders.base import Embedder
from audiovec.embeddings import FrameEmbeddings
from audiovec.errors import AudiovecError, ConfigError
from audiovec.pooling import Pipeline

__all__ = [
    "AUDIO_EXTENSIONS",
    "ExtractResult",
    "Failure",
    "extract",
    "find_audio_files",
    "load_vectors",
]

log = logging.getLogger(__name__)

#: File extensions picked up when a folder is given.
AUDIO_EXTENSIONS: frozenset[str] = frozenset(
    {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".au", ".caf", ".w64", ".m4a", ".aac"}
)


@dataclass(frozen=True)
class Failure:
    """A file that could not be embedded."""

    path: str
    error: str
    message: str


@dataclass
class ExtractResult:
    """Pooled vectors of many files, with one metadata record per vector.

    Attributes:
        vectors: ``float32[n, dim]``.
        records: One dict per vector: ``id`` (``path`` or ``path#segment``), ``path``, ``segment``, ``start``,
            ``end`` (seconds), ``duration`` (of the file).
        failures: Files that could not be embedded, with the error type and message.
        spec: Embedder spec and pipeline steps that made the vectors.
    """

    vectors: NDArray[np.float32]
    records: list[dict[str, Any]]
    failures: list[Failure] = field(default_factory=list)
    spec: dict[str, Any] = field(default_factory=dict)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write to ``.npz`` (compact) or ``.jsonl`` (one JSON object per line), atomically.

        Raises:
            ConfigError: Unknown extension.
        """
        out = Path(path)
        suffix = out.suffix.lower()
        if suffix not in (".npz", ".jsonl"):
            raise ConfigError(f"output must end in .npz or .jsonl, got {out.name!r}")
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                if suffix == ".npz":
                    np.savez_compressed(
                        f,
                        vectors=self.vectors,
                        records=np.array(json.dumps(self.records)),
                        failures=np.array(json.dumps([vars(x) for x in self.failures])),
                        spec=np.array(json.dumps(self.spec)),
                    )
                else:
                    f.write((json.dumps({"type": "header", "spec": self.spec, "dim": self.dim}) + "\n").encode())
                    for rec, vec in zip(self.records, self.vectors, strict=False):
                        row = {"type": "vector", **rec, "vector": [float(v) for v in vec]}
                        f.write((json.dumps(row) + "\n").encode())
                    for fail in self.failures:
                        f.write((json.dumps({"type": "failure", **vars(fail)}) + "\n").encode())
            os.replace(tmp, out)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return out

    @property
    def dim(self) -> int:
        """Vector dimension (0 when nothing was embedded)."""
        return int(self.vectors.shape[1]) if self.vectors.ndim == 2 else 0


def load_vectors(path: str | os.PathLike[str]) -> ExtractResult:
    """Read a file written by :meth:`ExtractResult.save`."""
    p = Path(path)
    if p.suffix.lower() == ".npz":
        with np.load(p, allow_pickle=False) as z:
            return ExtractResult(
                vectors=z["vectors"].astype(np.float32),
                records=json.loads(str(z["records"])),
                failures=[Failure(**d) for d in json.loads(str(z["failures"]))],
                spec=json.loads(str(z["spec"])),
            )
    header: dict[str, Any] = {}
    records, vecs, failures = [], [], []
    with open(p, encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            kind = row.pop("type")
            if kind == "header":
                header = row
            elif kind == "vector":
                vecs.append(row.pop("vector"))
                records.append(row)
            else:
                failures.append(Failure(**row))
    dim = int(header.get("dim", 0))
    vectors = np.asarray(vecs, dtype=np.float32).reshape(len(vecs), dim)
    return ExtractResult(vectors, records, failures, header.get("spec", {}))


def find_audio_files(
    paths: Iterable[str | os.PathLike[str]],
    recursive: bool = True,
    extensions: Iterable[str] = AUDIO_EXTENSIONS,
) -> list[Path]:
    """Expand files and folders into a sorted, de-duplicated list of audio files.

    Files named explicitly are kept whatever their extension (so a bad file is reported, not silently
    skipped); folders contribute files with one of ``extensions``.
    """
    exts = {e.lower() for e in extensions}
    seen: dict[Path, None] = {}
    for p in map(Path, paths):
        if p.is_dir():
            it = p.rglob("*") if recursive else p.glob("*")
            for f in sorted(it):
                if f.is_file() and f.suffix.lower() in exts and not f.name.startswith("."):
                    seen.setdefault(f, None)
        else:
            seen.setdefault(p, None)
    return list(seen)


def extract(
    paths: Iterable[str | os.PathLike[str]],
    embedder: Embedder,
    pipeline: Pipeline | None = None,
    *,
    batch_size: int = 16,
    stream_above_s: float = 120.0,
    recursive: bool = True,
    progress: bool = True,
) -> ExtractResult:
    """Embed files and folders into pooled vectors.

    Args:
        paths: Files and/or folders (folders are searched for audio files, recursively by default).
        embedder: Any :class:`~audiovec.Embedder`.
        pipeline: Pooling recipe; default mean pooling over the whole file.
        batch_size: Short files per ``embed_batch`` call.
        stream_above_s: Files longer than this are streamed (bounded memory) instead of loaded whole.
        recursive: Search folders recursively.
        progress: Show a progress bar (tqdm, on stderr).

    Returns:
        The vectors, one record per vector, and the failures.
    """
    pipe = pipeline or Pipeline()
    files = find_audio_files(paths, recursive=recursive)
    vectors: list[NDArray[np.float32]] = []
    records: list[dict[str, Any]] = []
    failures: list[Failure] = []
    bar = _progress(len(files), progress, f"embedding with {embedder.name}")

    def fail(path: Path, err: BaseException) -> None:
        log.info("skipping %s: %s", path, err)
        failures.append(Failure(str(path), type(err).__name__, str(err)))

    def emit(path: Path, fe: FrameEmbeddings) -> None:
        try:
            pooled = pipe(fe)
        except AudiovecError as err:
            fail(path, err)
            return
        many = len(pooled) > 1
        for i in range(len(pooled)):
            records.append(
                {
                    "id": f"{path}#{i}" if many else str(path),
                    "path": str(path),
                    "segment": i,
                    "start": float(pooled.starts[i]),
                    "end": float(pooled.ends[i]),
                    "duration": float(fe.duration),
                }
            )
        vectors.append(pooled.vectors)

    batch: list[tuple[Path, Any]] = []

    def flush() -> None:
        if not batch:
            return
        outs: list[FrameEmbeddings | None]
        try:
            outs = list(embedder.embed_batch([a for _, a in batch]))
        except AudiovecError:
            outs = []
            for path, audio in batch:  # isolate the file that broke the batch
                try:
                    outs.append(embedder.embed(audio))
                except AudiovecError as err:
                    fail(path, err)
                    outs.append(None)
        for (path, _), fe in zip(batch, outs, strict=False):
            if fe is not None:
                emit(path, fe)
        bar.update(len(batch))
        batch.clear()

    for path in files:
        try:
            duration = info(path).duration
            if duration > stream_above_s and hasattr(embedder, "embed_file"):
                flush()
                emit(path, embedder.embed_file(path))
                bar.update(1)
                continue
            batch.append((path, load(path)))
        except AudiovecError as err:
            fail(path, err)
            bar.update(1)
            continue
        if len(batch) >= batch_size:
            flush()
    flush()
    bar.close()
    dim = pipe.output_dim(embedder.dim)
    stacked = np.concatenate(vectors).astype(np.float32) if vectors else np.zeros((0, dim), np.float32)
    spec = {"embedder": embedder.spec().model_dump(mode="json"), "pipeline": pipe.model_dump(mode="json")}
    return ExtractResult(stacked, records, failures, spec)


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, enabled: bool, desc: str) -> Any:
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="file")

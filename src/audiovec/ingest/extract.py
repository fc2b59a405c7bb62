"""Pooled vectors of many files in one array, with their records: what ``audiovec embed`` writes.

:func:`extract` runs the ingest path (:class:`~audiovec.ingest.Ingest`) over files and folders, pools each item's
frames and collects the vectors with one record per vector (the ids and metadata of
:mod:`audiovec.ingest.records`). A file that cannot be read or embedded is recorded in
:attr:`ExtractResult.failures` with its typed error, and the run goes on.

Example:
    >>> from audiovec import get_embedder, Pipeline
    >>> from audiovec.data import demo_dir
    >>> from audiovec.ingest import extract
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

from audiovec.embedders.base import Embedder
from audiovec.errors import AudiovecError, ConfigError
from audiovec.ingest.cache import EmbeddingCache
from audiovec.ingest.engine import STREAM_ABOVE_S, Ingest
from audiovec.ingest.records import vector_records
from audiovec.ingest.results import Failure
from audiovec.ingest.sources import sources_from_paths
from audiovec.pooling import Pipeline
from audiovec.progress import Callback

__all__ = ["ExtractResult", "extract", "load_vectors"]

log = logging.getLogger(__name__)


@dataclass
class ExtractResult:
    """Pooled vectors of many files, with one metadata record per vector.

    Attributes:
        vectors: ``float32[n, dim]``.
        records: One dict per vector: ``id`` (``<path>#<segment>``) and the record fields of
            :mod:`audiovec.ingest.records` (``_item`` = the path, ``_segment``, ``_segments``, ``_start``, ``_end``,
            ``_duration``).
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
                        failures=np.array(json.dumps([x.as_dict() for x in self.failures])),
                        spec=np.array(json.dumps(self.spec)),
                    )
                else:
                    f.write((json.dumps({"type": "header", "spec": self.spec, "dim": self.dim}) + "\n").encode())
                    for rec, vec in zip(self.records, self.vectors, strict=False):
                        row = {"type": "vector", **rec, "vector": [float(v) for v in vec]}
                        f.write((json.dumps(row) + "\n").encode())
                    for fail in self.failures:
                        f.write((json.dumps({"type": "failure", **fail.as_dict()}) + "\n").encode())
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


def extract(
    paths: Iterable[str | os.PathLike[str]],
    embedder: Embedder,
    pipeline: Pipeline | None = None,
    *,
    batch_size: int = 16,
    stream_above_s: float = STREAM_ABOVE_S,
    recursive: bool = True,
    cache: EmbeddingCache | str | os.PathLike[str] | None = None,
    workers: int | None = None,
    progress: bool | Callback | None = True,
) -> ExtractResult:
    """Embed files and folders into pooled vectors.

    Args:
        paths: Files and/or folders (folders are searched for audio files, recursively by default).
        embedder: Any :class:`~audiovec.Embedder`.
        pipeline: Pooling recipe; default mean pooling over the whole file.
        batch_size: Files per ingest batch (short files of a batch share ``embed_batch`` calls).
        stream_above_s: Files longer than this are streamed (bounded memory) instead of decoded whole.
        recursive: Search folders recursively.
        cache: A frame cache (or its folder): files already embedded with the same embedder are not embedded
            again.
        workers: Embedding processes (``None``: one per core; 1: this process only); see :class:`Ingest`.
        progress: Report progress (``True``: a bar on a terminal, log lines otherwise; or a
            :class:`~audiovec.progress.Callback`).

    Returns:
        The vectors, one record per vector, and the failures.
    """
    pipe = pipeline or Pipeline()
    sources = sources_from_paths(paths, recursive=recursive)
    ingest = Ingest(embedder, cache=cache, batch_size=batch_size, stream_above_s=stream_above_s, workers=workers)
    label = embedder.name
    vectors: list[NDArray[np.float32]] = []
    records: list[dict[str, Any]] = []
    failures: list[Failure] = []
    for item in ingest.run(sources, progress=progress):
        failure = item.failures.get(label)
        if failure is None:
            try:
                pooled = pipe(item.frames[label])
            except AudiovecError as err:
                failure = Failure.of(item.source, label, err)
        if failure is not None:
            log.info("skipping %s: %s", failure.source, failure.message)
            failures.append(failure)
            continue
        ids, metas = vector_records(item.source.key, pooled, duration=item.frames[label].duration)
        records.extend({"id": i, **m} for i, m in zip(ids, metas, strict=True))
        vectors.append(pooled.vectors)
    dim = pipe.output_dim(embedder.dim)
    stacked = np.concatenate(vectors).astype(np.float32) if vectors else np.zeros((0, dim), np.float32)
    spec = {"embedder": ingest.spec(label).model_dump(mode="json"), "pipeline": pipe.model_dump(mode="json")}
    return ExtractResult(stacked, records, failures, spec)

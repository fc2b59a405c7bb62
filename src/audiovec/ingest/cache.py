"""An on-disk cache of frame embeddings keyed by (embedder spec, audio content hash).

Frame-level embeddings are cached (not pooled vectors), so every pooling and windowing choice reuses one
extraction. Keys use the *content* of the file (SHA-256), not its path or mtime: a renamed file is still a hit, an
edited one is a miss. Each entry is one file written atomically (a temporary file renamed into place), so an
interrupted run leaves only complete entries and resumes where it stopped. Entries can carry JSON metadata (e.g.
the measurements taken when the entry was computed).

Layout: ``ROOT/<spec key>/spec.json`` and ``ROOT/<spec key>/<hash[:2]>/<hash>.frames``. An entry is a small binary
file, cheap to write and read: the magic ``AVFRAMES``, the length of a JSON header (8 bytes, little-endian), the
header (shapes, metadata), then the raw ``float32`` vectors and ``float64`` timestamps.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np

from audiovec.embedders.base import EmbedderSpec
from audiovec.embedders.framing import nonfinite_rows
from audiovec.embeddings import FrameEmbeddings

__all__ = ["EmbeddingCache"]

_MAGIC = b"AVFRAMES"
_SUFFIX = ".frames"


class EmbeddingCache:
    """Frame embeddings on disk, keyed by embedder spec and audio content.

    Args:
        root: Cache folder (created when needed).

    Example:
        >>> cache = EmbeddingCache("/tmp/audiovec-cache")  # doctest: +SKIP
        >>> hit = cache.get(emb.spec(), digest)  # (frames, metadata) or None  # doctest: +SKIP
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self._spec_dirs: dict[str, Path] = {}  # spec JSON -> its folder (the spec's key is a hash: computed once)
        self._made: set[Path] = set()

    def _dir(self, spec: EmbedderSpec) -> Path:
        ident = spec.model_dump_json()
        folder = self._spec_dirs.get(ident)
        if folder is None:
            folder = self._spec_dirs[ident] = self.root / spec.key()
        return folder

    def _path(self, spec: EmbedderSpec, digest: str) -> Path:
        return self._dir(spec) / digest[:2] / f"{digest}{_SUFFIX}"

    def __contains__(self, key: tuple[EmbedderSpec, str]) -> bool:
        return self._path(*key).is_file()

    def get(self, spec: EmbedderSpec, digest: str) -> tuple[FrameEmbeddings, dict[str, Any]] | None:
        """The cached frames and their metadata, or ``None``.

        An unreadable entry, or one holding NaN or infinite vectors (which audiovec no longer produces), is a miss
        and is removed.
        """
        path = self._path(spec, digest)
        try:
            data = path.read_bytes()
        except OSError:  # not cached (or unreadable: a miss)
            return None
        try:
            if data[:8] != _MAGIC:
                raise ValueError("not a cache entry")
            (n,) = struct.unpack_from("<Q", data, 8)
            header = json.loads(data[16 : 16 + n])
            rows, dim = int(header["rows"]), int(header["dim"])
            start = 16 + n
            vectors = np.frombuffer(data, np.float32, rows * dim, start).reshape(rows, dim)
            if len(nonfinite_rows(vectors)):
                raise ValueError("non-finite vectors")
            timestamps = np.frombuffer(data, np.float64, rows, start + 4 * rows * dim)
            meta = dict(header["meta"])
            fe = FrameEmbeddings(
                vectors=vectors.copy(),
                timestamps=timestamps.copy(),
                duration=float(header["duration"]),
                window_s=float(header["window_s"]),
                hop_s=float(header["hop_s"]),
                source=header.get("source"),
                model=spec.name,
            )
        except (ValueError, KeyError, TypeError, struct.error):
            path.unlink(missing_ok=True)
            return None
        return fe, meta

    def put(self, spec: EmbedderSpec, digest: str, frames: FrameEmbeddings, meta: dict[str, Any] | None = None) -> Path:
        """Store frames (and JSON-able metadata) atomically; returns the entry's path."""
        path = self._path(spec, digest)
        if path.parent not in self._made:
            path.parent.mkdir(parents=True, exist_ok=True)
            spec_file = self._dir(spec) / "spec.json"
            if not spec_file.exists():
                spec_file.write_text(spec.model_dump_json(indent=2))
            self._made.add(path.parent)
        vectors = np.ascontiguousarray(frames.vectors, dtype=np.float32)
        timestamps = np.ascontiguousarray(frames.timestamps, dtype=np.float64)
        header = json.dumps(
            {
                "rows": int(vectors.shape[0]),
                "dim": int(vectors.shape[1]) if vectors.ndim == 2 else 0,
                "duration": frames.duration,
                "window_s": frames.window_s,
                "hop_s": frames.hop_s,
                "source": frames.source,
                "meta": meta or {},
            }
        ).encode()
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as f:
                f.write(_MAGIC + struct.pack("<Q", len(header)) + header)
                f.write(vectors.tobytes())
                f.write(timestamps.tobytes())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return path

    def size_bytes(self) -> int:
        """Total size of the cache on disk."""
        return sum(p.stat().st_size for p in self.root.rglob(f"*{_SUFFIX}")) if self.root.exists() else 0

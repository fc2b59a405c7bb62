"""An on-disk cache of frame embeddings keyed by (embedder spec, audio content hash).

Frame-level embeddings are cached (not pooled vectors), so every pooling and windowing choice reuses one
extraction. Keys use the *content* of the file (SHA-256), not its path or mtime: a renamed file is still a hit, an
edited one is a miss. Each entry is one ``.npz`` written atomically (temp file + rename), so an interrupted run
leaves only complete entries and resumes where it stopped. Entries can carry JSON metadata (e.g. the
measurements taken when the entry was computed).

Layout: ``ROOT/<spec key>/spec.json`` and ``ROOT/<spec key>/<hash[:2]>/<hash>.npz``.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from audiovec.embedders.base import EmbedderSpec
from audiovec.embeddings import FrameEmbeddings

__all__ = ["EmbeddingCache"]


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

    def _path(self, spec: EmbedderSpec, digest: str) -> Path:
        return self.root / spec.key() / digest[:2] / f"{digest}.npz"

    def __contains__(self, key: tuple[EmbedderSpec, str]) -> bool:
        return self._path(*key).is_file()

    def get(self, spec: EmbedderSpec, digest: str) -> tuple[FrameEmbeddings, dict[str, Any]] | None:
        """The cached frames and their metadata, or ``None`` (also for an unreadable entry, which is removed)."""
        path = self._path(spec, digest)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                fe = FrameEmbeddings(
                    vectors=z["vectors"].astype(np.float32),
                    timestamps=z["timestamps"].astype(np.float64),
                    duration=float(meta.pop("_duration")),
                    window_s=float(meta.pop("_window_s")),
                    hop_s=float(meta.pop("_hop_s")),
                    source=meta.pop("_source", None),
                    model=spec.name,
                )
        except (OSError, ValueError, KeyError):
            path.unlink(missing_ok=True)
            return None
        return fe, meta

    def put(self, spec: EmbedderSpec, digest: str, frames: FrameEmbeddings, meta: dict[str, Any] | None = None) -> Path:
        """Store frames (and JSON-able metadata) atomically; returns the entry's path."""
        path = self._path(spec, digest)
        path.parent.mkdir(parents=True, exist_ok=True)
        spec_file = self.root / spec.key() / "spec.json"
        if not spec_file.exists():
            spec_file.write_text(spec.model_dump_json(indent=2))
        record = {
            **(meta or {}),
            "_duration": frames.duration,
            "_window_s": frames.window_s,
            "_hop_s": frames.hop_s,
            "_source": frames.source,
        }
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, vectors=frames.vectors, timestamps=frames.timestamps, meta=np.array(json.dumps(record)))
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    def size_bytes(self) -> int:
        """Total size of the cache on disk."""
        return sum(p.stat().st_size for p in self.root.rglob("*.npz")) if self.root.exists() else 0

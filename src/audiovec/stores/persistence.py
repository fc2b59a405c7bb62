"""Store files on disk: the manifest that says what a store is, and crash-safe file writes.

An on-disk store is a directory holding ``manifest.json`` (a :class:`StoreManifest`, written once at creation)
beside the backend's own files. Files are replaced with :func:`audiovec._files.atomic_write` (a temporary file,
fsync, rename), so
after a crash every file holds either its old or its complete new content.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from audiovec._files import atomic_write
from audiovec.errors import StoreError
from audiovec.stores.config import IndexConfig, Metric, pydantic_message

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "StoreManifest",
    "new_manifest",
    "read_manifest",
    "write_manifest",
]

MANIFEST_NAME = "manifest.json"
"""The manifest's file name inside a store directory."""

FORMAT_VERSION = 1
"""Layout version of store directories written by this audiovec."""


class StoreManifest(BaseModel):
    """``manifest.json`` of an on-disk store: what it is and how it was built (never changes after creation).

    Attributes:
        format: Always ``"audiovec-store"``.
        format_version: Layout version of the directory.
        store: Backend name (``"exact"``, ``"faiss"``).
        dim: Vector dimension.
        metric: ``cosine``, ``ip`` or ``l2``.
        index: Index config at creation.
        audiovec_version: Version that created the store.
        created: Creation time (ISO 8601, UTC).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["audiovec-store"] = "audiovec-store"
    format_version: int = FORMAT_VERSION
    store: str
    dim: int = Field(ge=1)
    metric: Metric
    index: IndexConfig
    audiovec_version: str = "unknown"
    created: str = ""


def _audiovec_version() -> str:
    try:
        from importlib.metadata import version

        return version("audiovec")
    except Exception:  # pragma: no cover - not installed
        return "unknown"


def new_manifest(store: str, dim: int, metric: Metric, index: IndexConfig) -> StoreManifest:
    """The manifest of a store created now by this audiovec version."""
    return StoreManifest(
        store=store,
        dim=dim,
        metric=metric,
        index=index,
        audiovec_version=_audiovec_version(),
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )


def write_manifest(directory: Path, manifest: StoreManifest) -> None:
    """Atomically write ``manifest.json`` into ``directory``."""
    text = json.dumps(manifest.model_dump(mode="json"), indent=2) + "\n"

    def write(tmp: Path) -> None:
        tmp.write_text(text, encoding="utf-8")

    atomic_write(directory / MANIFEST_NAME, write)


def read_manifest(path: Path) -> StoreManifest | None:
    """Read the manifest of the store directory ``path``.

    Returns:
        The manifest, or ``None`` when ``path`` does not exist or is an empty directory (a new store).

    Raises:
        StoreError: ``path`` is a file, a non-empty directory that is not a store, or the manifest is unreadable
            or from a newer format.
    """
    if not path.exists():
        return None
    if not path.is_dir():
        raise StoreError(f"{path} exists and is not a directory; a store lives in a directory")
    mpath = path / MANIFEST_NAME
    if not mpath.exists():
        if any(path.iterdir()):
            raise StoreError(f"{path} is a non-empty directory without {MANIFEST_NAME}; refusing to use it as a store")
        return None
    try:
        data = json.loads(mpath.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise StoreError(f"cannot read {mpath}: {err}") from err
    version = data.get("format_version") if isinstance(data, dict) else None
    if isinstance(version, int) and version > FORMAT_VERSION:
        raise StoreError(f"{path} uses store format {version}; this audiovec reads format {FORMAT_VERSION} (upgrade)")
    try:
        return StoreManifest.model_validate(data)
    except ValidationError as err:
        raise StoreError(f"{mpath} is not a valid store manifest: {pydantic_message(err)}") from None

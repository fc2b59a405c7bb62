"""What goes into the ingest path: :class:`Source` and the folder scan that turns paths into sources.

A source is a file, bytes or decoded audio, with a key (its vectors' ids derive from it) and metadata.

Example:
    >>> from audiovec.data import demo_dir
    >>> from audiovec.ingest import find_audio_files
    >>> len(find_audio_files([demo_dir()]))
    42
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audiovec.audio import AUDIO_EXTENSIONS, Audio
from audiovec.errors import ConfigError

__all__ = ["Source", "find_audio_files", "sources_from_paths"]


@dataclass(frozen=True, eq=False)
class Source:
    """One input of the ingest path: exactly one of a file ``path``, encoded ``data`` or decoded ``audio``.

    Attributes:
        key: The item's key: its vectors' ids are ``<key>#<segment>`` (see :mod:`audiovec.ingest.records`).
        path: An audio file.
        data: The bytes of an encoded audio file (an upload).
        audio: Decoded audio.
        name: A printable name for messages (default: the path, or the key).
        metadata: The caller's metadata, stored with every vector of the item.
        digest: The SHA-256 of the content when already known (saves hashing it again).
    """

    key: str
    path: str | None = None
    data: bytes | None = None
    audio: Audio | None = None
    name: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    digest: str | None = None

    def __post_init__(self) -> None:
        given = sum(x is not None for x in (self.path, self.data, self.audio))
        if given != 1:
            raise ConfigError(f"a Source needs exactly one of path, data or audio (got {given}) for {self.key!r}")
        if not isinstance(self.key, str) or not self.key:
            raise ConfigError(f"a Source needs a non-empty string key, got {self.key!r}")

    @classmethod
    def of(
        cls,
        origin: str | os.PathLike[str] | bytes | Audio | Source,
        key: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Source:
        """A source from a path, bytes or audio (the key defaults to the path, or the audio's source name).

        Raises:
            ConfigError: Bytes or audio without a key (and, for audio, without a source name).
        """
        if isinstance(origin, Source):
            return origin
        meta = dict(metadata or {})
        if isinstance(origin, (str, os.PathLike)):
            path = os.fspath(origin)
            return cls(key or path, path=path, metadata=meta)
        if isinstance(origin, Audio):
            k = key or origin.source
            if not k:
                raise ConfigError("audio without a source name needs a key")
            return cls(k, audio=origin, metadata=meta)
        if isinstance(origin, (bytes, bytearray, memoryview)):
            if not key:
                raise ConfigError("bytes need a key")
            return cls(key, data=bytes(origin), metadata=meta)
        raise ConfigError(f"cannot ingest a {type(origin).__name__}; pass a path, bytes, Audio or Source")

    @property
    def label(self) -> str:
        """The name used in messages and failure records."""
        return self.name or self.path or self.key


def find_audio_files(
    paths: Iterable[str | os.PathLike[str]],
    recursive: bool = True,
    extensions: Iterable[str] = AUDIO_EXTENSIONS,
) -> list[Path]:
    """Expand files and folders into a sorted, de-duplicated list of audio files.

    Files named explicitly are kept whatever their extension (so a bad file is reported, not silently
    skipped); folders contribute files with one of ``extensions`` (default: the containers the decoder reads,
    :data:`audiovec.audio.AUDIO_EXTENSIONS`), hidden files excluded.
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


def sources_from_paths(paths: Iterable[str | os.PathLike[str]], recursive: bool = True) -> list[Source]:
    """One :class:`Source` per audio file under ``paths`` (see :func:`find_audio_files`), keyed by its path."""
    return [Source(str(p), path=str(p)) for p in find_audio_files(paths, recursive=recursive)]

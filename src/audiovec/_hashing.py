"""Content hashing: one place for the SHA-256 digests that key caches, name weights and de-duplicate uploads."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from typing import Any

__all__ = ["file_blocks", "json_digest", "sha256_bytes", "sha256_file", "sha256_files", "sha256_parts"]

_BLOCK = 1 << 20


def file_blocks(path: str | os.PathLike[str], block: int = _BLOCK) -> Iterator[bytes]:
    """A file's bytes, ``block`` bytes at a time.

    Raises:
        OSError: The file cannot be read.
    """
    with open(path, "rb") as f:
        while chunk := f.read(block):
            yield chunk


def sha256_parts(parts: Iterable[bytes | bytearray | memoryview]) -> str:
    """Hex SHA-256 of the concatenation of ``parts``, hashed one part at a time (bounded memory)."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part)
    return h.hexdigest()


def sha256_file(path: str | os.PathLike[str], block: int = _BLOCK) -> str:
    """Hex SHA-256 of a file's bytes, read in blocks of ``block`` bytes (bounded memory).

    Raises:
        OSError: The file cannot be read.
    """
    return sha256_parts(file_blocks(path, block))


def sha256_bytes(data: bytes | bytearray | memoryview) -> str:
    """Hex SHA-256 of in-memory bytes."""
    return hashlib.sha256(data).hexdigest()


def sha256_files(paths: Iterable[str | os.PathLike[str]]) -> str:
    """One hex SHA-256 over several files: the digest of their digests, in the order given."""
    return sha256_parts(bytes.fromhex(sha256_file(p)) for p in paths)


def json_digest(value: Any, length: int = 16) -> str:
    """A stable hex digest of a JSON-able value (keys sorted, compact separators), cut to ``length`` characters."""
    blob = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:length]

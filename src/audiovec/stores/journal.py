"""The write-ahead journal of an on-disk store: a change is on disk before the call that made it returns.

A directory store (:class:`~audiovec.stores.ExactStore`, :class:`~audiovec.stores.FaissStore`) writes its full
state only when it is saved, which can take seconds for a large index. Between saves every ``add``, ``upsert`` and
``delete`` is also appended to ``journal.wal`` in the store's directory and flushed to disk (``fdatasync``) before the
call returns; opening the store replays the journal on top of the last saved state, and a save removes it. So an
acknowledged change survives ``kill -9`` or a power cut, as in a database.

**Group commit.** Appending happens under the store's lock, in the order the changes were applied; the flush
happens outside it, and one flush covers every record appended before it, so concurrent writers share flushes.

**Records.** After an 8-byte magic, each record is ``u32 payload length, u32 CRC-32, payload``; the payload is
``u8 op`` (add, upsert, delete), the ids (``u8`` kind, ``u32`` count, then int64s, or lengths and UTF-8 bytes),
and for add/upsert the ``float32[n, dim]`` vectors as the store keeps them and the metadata as JSON texts. A delete
by filter is journaled as the ids it deleted, so replaying never depends on how filters are evaluated.

**Replay is idempotent.** Every record names its ids, and replay applies, per id, "add if absent", "replace" or
"remove" in the original order; replaying records that the saved state already contains (a crash between writing a
save and removing the journal) gives the same state.

**A torn tail** (the last record cut short by a crash: it was never acknowledged) is dropped with a warning;
damage before the last record raises :class:`~audiovec.errors.JournalError` rather than guess.
"""

from __future__ import annotations

import logging
import os
import struct
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from audiovec._files import GroupSync, fsync_dir
from audiovec.errors import JournalError
from audiovec.stores.records import Id

__all__ = ["JOURNAL_NAME", "Journal", "JournalRecord"]

log = logging.getLogger("audiovec.stores")

JOURNAL_NAME = "journal.wal"
"""The journal's file name inside a store directory."""

_MAGIC = b"AVWAL\x00\x01\n"
_HEAD = struct.Struct("<II")  # payload length, CRC-32 of the payload
_U32 = struct.Struct("<I")
_OPS: dict[str, int] = {"add": 1, "upsert": 2, "delete": 3}
_OP_NAMES = {v: k for k, v in _OPS.items()}
_MAX_RECORD = 1 << 31

Op = Literal["add", "upsert", "delete"]


@dataclass(frozen=True)
class JournalRecord:
    """One journaled change.

    Attributes:
        op: ``"add"``, ``"upsert"`` or ``"delete"``.
        ids: The ids it concerns, in order.
        vectors: ``float32[n, dim]`` as stored (add/upsert), else ``None``.
        metas: Compact JSON text per vector (add/upsert), else ``None``.
    """

    op: Op
    ids: list[Id]
    vectors: NDArray[np.float32] | None = None
    metas: list[str] | None = None


def _encode_texts(texts: list[str]) -> bytes:
    raw = [t.encode("utf-8", "surrogatepass") for t in texts]
    lengths = np.fromiter((len(b) for b in raw), dtype="<u4", count=len(raw))
    return lengths.tobytes() + b"".join(raw)


def _decode_texts(buf: memoryview, pos: int, n: int) -> tuple[list[str], int]:
    lengths = np.frombuffer(buf, dtype="<u4", count=n, offset=pos).tolist()
    pos += 4 * n
    out = []
    for size in lengths:
        out.append(bytes(buf[pos : pos + size]).decode("utf-8", "surrogatepass"))
        pos += size
    return out, pos


def encode(record: JournalRecord) -> bytes:
    """The payload of a record (see the module docs)."""
    ids = record.ids
    parts = [bytes([_OPS[record.op]])]
    if ids and isinstance(ids[0], str):
        parts += [b"\x01", _U32.pack(len(ids)), _encode_texts([str(i) for i in ids])]
    else:
        parts += [b"\x00", _U32.pack(len(ids)), np.asarray(ids, dtype="<i8").tobytes()]
    if record.op != "delete":
        assert record.vectors is not None and record.metas is not None
        x = np.ascontiguousarray(record.vectors, dtype="<f4")
        parts += [_U32.pack(x.shape[1]), x.tobytes(), _encode_texts(record.metas)]
    return b"".join(parts)


def decode(payload: bytes) -> JournalRecord:
    """The record a payload holds.

    Raises:
        ValueError: The payload is not a valid record.
    """
    buf = memoryview(payload)
    op = _OP_NAMES.get(buf[0])
    if op is None:
        raise ValueError(f"unknown operation {buf[0]}")
    kind, n = buf[1], _U32.unpack_from(buf, 2)[0]
    pos = 6
    ids: list[Id]
    if kind == 1:
        texts, pos = _decode_texts(buf, pos, n)
        ids = list(texts)
    elif kind == 0:
        ids = np.frombuffer(buf, dtype="<i8", count=n, offset=pos).tolist()
        pos += 8 * n
    else:
        raise ValueError(f"unknown id kind {kind}")
    if op == "delete":
        if pos != len(buf):
            raise ValueError("trailing bytes")
        return JournalRecord("delete", ids)
    dim = _U32.unpack_from(buf, pos)[0]
    pos += 4
    vectors = np.frombuffer(buf, dtype="<f4", count=n * dim, offset=pos).reshape(n, dim).copy()
    pos += 4 * n * dim
    metas, pos = _decode_texts(buf, pos, n)
    if pos != len(buf):
        raise ValueError("trailing bytes")
    return JournalRecord(op, ids, vectors, metas)  # type: ignore[arg-type]


class Journal:
    """The append-only, flushed journal of one store directory (see the module docs).

    Args:
        directory: The store's directory.
    """

    def __init__(self, directory: Path) -> None:
        self.path = directory / JOURNAL_NAME
        self._fd: int | None = None
        self._cond = threading.Condition()
        self._sync = GroupSync(self._flush)
        self._failed: BaseException | None = None
        self._size = 0

    # ------------------------------------------------------------------ reading
    def records(self) -> Iterator[JournalRecord]:
        """The records on disk, oldest first; a torn last record is cut off (it was never acknowledged).

        Raises:
            JournalError: A record before the last one is damaged, or the file is not a journal.
        """
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        if len(data) < len(_MAGIC):  # a crash while the file was being started
            return
        if data[: len(_MAGIC)] != _MAGIC:
            raise JournalError(f"{self.path} is not an audiovec store journal (or a newer format of it)")
        pos = len(_MAGIC)
        while pos < len(data):
            end = pos + _HEAD.size
            good = end <= len(data)
            if good:
                size, crc = _HEAD.unpack_from(data, pos)
                good = 0 < size < _MAX_RECORD and end + size <= len(data)
                good = good and zlib.crc32(data[end : end + size]) == crc
            if not good:
                if pos + _HEAD.size + self._claimed(data, pos) >= len(data) or not any(data[pos:]):
                    log.warning(
                        "%s: dropping an incomplete last record (%d bytes; written when the process stopped, "
                        "never acknowledged)",
                        self.path,
                        len(data) - pos,
                    )
                    self._truncate_to(pos)
                    return
                raise JournalError(
                    f"{self.path} is damaged at byte {pos} (a record before the last fails its checksum); move it "
                    "aside to open the store as it was last saved"
                )
            try:
                record = decode(data[end : end + size])
            except (ValueError, IndexError, UnicodeDecodeError) as err:
                raise JournalError(f"{self.path}: unreadable record at byte {pos}: {err}") from None
            yield record
            pos = end + size

    @staticmethod
    def _claimed(data: bytes, pos: int) -> int:
        if pos + _HEAD.size > len(data):
            return 0
        return int(_HEAD.unpack_from(data, pos)[0])

    def _truncate_to(self, size: int) -> None:
        with open(self.path, "r+b") as fh:
            fh.truncate(size)
            os.fsync(fh.fileno())

    # ------------------------------------------------------------------ writing
    def _open(self) -> int:
        if self._fd is None:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            size = os.fstat(fd).st_size
            if size < len(_MAGIC):
                os.ftruncate(fd, 0)
                os.write(fd, _MAGIC)
                os.fsync(fd)
                fsync_dir(self.path.parent)
                size = len(_MAGIC)
            self._fd, self._size = fd, size
        return self._fd

    def append(self, record: JournalRecord) -> int:
        """Append a record (call under the store's lock, after the change was applied); returns its ticket.

        Raises:
            JournalError: The journal cannot be written (the store then refuses further writes: reopen it).
        """
        payload = encode(record)
        head = _HEAD.pack(len(payload), zlib.crc32(payload))
        with self._cond:
            self._check()
            try:
                fd = self._open()
                view = memoryview(head + payload)
                while view:
                    view = view[os.write(fd, view) :]
            except OSError as err:
                self._failed = err
                raise JournalError(f"cannot write the store journal {self.path}: {err}") from err
            self._size += len(head) + len(payload)
            return self._sync.ticket()

    def wait(self, ticket: int) -> None:
        """Return once record ``ticket`` is on disk (group commit: one flush serves every waiting writer).

        Raises:
            JournalError: The flush failed; the change may not be durable and the store refuses further writes.
        """
        self._sync.wait(ticket)

    def _flush(self) -> None:
        with self._cond:
            self._check()
            fd = self._fd
        if fd is None:
            return
        try:
            os.fdatasync(fd)
        except OSError as err:
            self._failed = err
            self._check()

    def _check(self) -> None:
        if self._failed is not None:
            raise JournalError(
                f"the store journal {self.path} failed ({self._failed}); writes are refused until the store is reopened"
            )

    @property
    def size(self) -> int:
        """Bytes in the journal file (0 when there is none)."""
        return self._size

    def reset(self) -> None:
        """Remove the journal after the store's state was saved (call under the store's lock)."""
        self.close()  # every record is in the saved state now
        with self._cond:
            if self.path.exists():
                self.path.unlink()
                fsync_dir(self.path.parent)
            self._size = 0

    def close(self) -> None:
        """Close the file (the journal stays on disk until the next :meth:`reset`)."""
        self._sync.settle()
        with self._cond:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

"""Bit-packed landmark postings: a CSR table over the high hash bits plus one packed word each.

The postings of an index, sorted by hash, are stored as two arrays:

``offsets uint32[2**bucket_bits + 1]``
    Postings whose hash has the high bits ``b`` (the top ``bucket_bits`` of the ``hash_bits``-bit hash) are the
    rows ``offsets[b]:offsets[b + 1]``.
``words uint8[...]``
    Row ``i`` is the ``width``-bit little-endian field at bit ``i * width``:
    ``low_hash << (track_bits + time_bits) | track_slot << time_bits | time``, where ``low_hash`` is the
    hash without its bucket bits. Eight zero bytes pad the end so any field can be read with one 64-bit load.

Index format 3 stores no track slot (``track_bits == 0``): every track owns a range of one global time axis
(``bases``: where each track's frame 0 lies on it), and the time field is the anchor's position on that axis. One
axis of ``T`` frames needs ``log2(T)`` bits where a slot plus a per-track time needs ``log2(tracks) +
log2(longest track)``: 23 bits instead of 27 for 1,700 minutes of music in 532 tracks. Format 2 stores the slot.

``bucket_bits`` is chosen to minimise the total size (about one bucket per 22 postings), and the other widths are
just wide enough for the largest value. With the default config this is about 3.1 bytes per landmark instead of
12, with exactly the same postings (so exactly the same matches).

A lookup binary-searches each query hash inside its bucket, all query hashes at once (NumPy), reading only the
words it touches, so the arrays can stay memory-mapped.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["MAX_WIDTH", "Found", "PackedLayout", "PackedPostings", "choose_layout", "pack"]

MAX_WIDTH = 57  # a field plus its bit shift (<= 7) must fit in one 64-bit load
_PAD = 8


@dataclass(frozen=True)
class PackedLayout:
    """Bit widths of a packed posting table."""

    hash_bits: int
    bucket_bits: int
    track_bits: int
    time_bits: int

    @property
    def low_bits(self) -> int:
        """Hash bits stored in each word (those not implied by the bucket)."""
        return self.hash_bits - self.bucket_bits

    @property
    def width(self) -> int:
        """Bits per posting."""
        return self.low_bits + self.track_bits + self.time_bits

    def nbytes(self, n: int) -> int:
        """Bytes of the two arrays for ``n`` postings."""
        return 4 * ((1 << self.bucket_bits) + 1) + (n * self.width + 7) // 8 + _PAD


def choose_layout(n: int, hash_bits: int, max_track: int, max_time: int) -> PackedLayout | None:
    """The smallest layout for ``n`` postings, or ``None`` when a posting would not fit in :data:`MAX_WIDTH` bits."""
    track_bits = int(max_track).bit_length()
    time_bits = int(max_time).bit_length()
    best: PackedLayout | None = None
    for b in range(0, min(hash_bits, 26) + 1):
        layout = PackedLayout(hash_bits, b, track_bits, time_bits)
        if layout.width > MAX_WIDTH:
            continue
        if best is None or layout.nbytes(n) < best.nbytes(n):
            best = layout
    return best


def pack(
    hashes: NDArray[np.integer[Any]],
    tracks: NDArray[np.integer[Any]],
    times: NDArray[np.integer[Any]],
    layout: PackedLayout,
) -> tuple[NDArray[np.uint32], NDArray[np.uint8]]:
    """Pack postings sorted by hash into ``(offsets, words)`` (``times``: positions on the time axis in format 3)."""
    n = len(hashes)
    h = np.asarray(hashes, dtype=np.uint64)
    buckets = h >> np.uint64(layout.low_bits)
    counts = np.bincount(buckets.astype(np.int64), minlength=1 << layout.bucket_bits)
    offsets = np.zeros((1 << layout.bucket_bits) + 1, dtype=np.uint32)
    np.cumsum(counts, out=offsets[1:])
    low = h & np.uint64((1 << layout.low_bits) - 1)
    vals = (
        (low << np.uint64(layout.track_bits + layout.time_bits))
        | (np.asarray(tracks, dtype=np.uint64) << np.uint64(layout.time_bits))
        | np.asarray(times, dtype=np.uint64)
    )
    w = layout.width
    nbytes = (n * w + 7) // 8 + _PAD
    words = np.zeros(nbytes, dtype=np.uint8)
    if n and w:
        step = 1 << 20  # postings per chunk, a multiple of 8 so that every chunk starts on a byte
        for i in range(0, n, step):
            chunk = np.ascontiguousarray(vals[i : i + step], dtype="<u8")
            bits = np.unpackbits(chunk.view(np.uint8).reshape(-1, 8), axis=1, bitorder="little")[:, :w]
            packed = np.packbits(bits.reshape(-1), bitorder="little")
            start = i * w // 8
            words[start : start + len(packed)] = packed
    return offsets, words


class _Words:
    """Byte ranges of the packed words: slices of an array in memory, or positioned reads of the file.

    A memory-mapped array is read with ``os.pread`` on its file, not through the mapping: touching a mapping maps
    whole neighbourhoods of pages into the process (the kernel's fault-around), so a query that reads 3 MB of
    postings spread over an 80 MB index would hold most of the index resident. Positioned reads copy only what a
    query needs (the file stays in the OS page cache). Where ``os.pread`` is missing (Windows) the mapping is read.
    """

    def __init__(self, words: NDArray[np.uint8]) -> None:
        self.array = words
        self._fd: int | None = None
        self._offset = 0
        name = getattr(words, "filename", None) if isinstance(words, np.memmap) else None
        if isinstance(name, (str, os.PathLike)) and hasattr(os, "pread"):
            self._fd = os.open(name, os.O_RDONLY)
            self._offset = int(words.offset)  # type: ignore[attr-defined]

    def __del__(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def window(self, first: NDArray[np.int64], last: NDArray[np.int64]) -> tuple[NDArray[np.uint8], NDArray[np.int64]]:
        """Bytes ``[first[i], last[i])`` (ascending ``first``) in one buffer, and where each range starts in it.

        Eight zero bytes end the buffer, so any field can be read with one 64-bit load. An array in memory is
        returned whole, with the ranges where they are.
        """
        if not isinstance(self.array, np.memmap):
            return self.array, first
        # merge overlapping or touching ranges (neighbouring buckets share a byte), read each merged range once
        reach = np.maximum.accumulate(last)
        new = np.r_[True, first[1:] > reach[:-1]] if len(first) else np.zeros(0, dtype=bool)
        group = np.cumsum(new) - 1
        g_first = first[new]
        g_last = np.maximum.reduceat(last, np.flatnonzero(new)) if len(first) else last
        if self._fd is not None:
            fd, at = self._fd, self._offset
            parts = [
                os.pread(fd, int(b - a), at + int(a)) for a, b in zip(g_first.tolist(), g_last.tolist(), strict=True)
            ]
        else:
            parts = [self.array[a:b].tobytes() for a, b in zip(g_first.tolist(), g_last.tolist(), strict=True)]
        sizes = np.array([len(x) for x in parts], dtype=np.int64)
        if np.any(sizes != g_last - g_first):
            raise OSError("the fingerprint index file is shorter than its layout says (damaged index)")
        g_start = np.cumsum(sizes) - sizes
        buf = np.frombuffer(b"".join(parts) + bytes(_PAD), dtype=np.uint8)
        return buf, g_start[group] + (first - g_first[group])


@dataclass(frozen=True)
class Found:
    """The postings of a set of query hashes, read once (see :meth:`PackedPostings.lookup`).

    Attributes:
        lo: First row of each query hash (rows in the whole index).
        hi: One past its last row.
    """

    lo: NDArray[np.int64]
    hi: NDArray[np.int64]
    _postings: PackedPostings
    _buf: NDArray[np.uint8]
    _shift: NDArray[np.int64]  # per query hash: bit address in _buf minus bit address in the index

    def postings(
        self, which: NDArray[np.int64], rows: NDArray[np.int64]
    ) -> tuple[NDArray[np.uint32], NDArray[np.uint32]]:
        """``(track slots, anchor times)`` of ``rows``, each a row of query hash ``which`` (same length)."""
        pp = self._postings
        bitpos = rows.astype(np.uint64) * np.uint64(pp.layout.width) + self._shift[which].astype(np.uint64)
        return pp._decode(_read_fields(self._buf, bitpos, pp.layout.width))


def _read_fields(buf: NDArray[np.uint8], bitpos: NDArray[np.uint64], width: int) -> NDArray[np.uint64]:
    """The ``width``-bit little-endian fields at bit addresses ``bitpos`` of ``buf``."""
    if width == 0:
        return np.zeros(len(bitpos), dtype=np.uint64)
    byte = (bitpos >> np.uint64(3)).astype(np.int64)
    v = np.zeros(len(bitpos), dtype=np.uint64)
    for j in range(8):
        v |= buf[byte + j].astype(np.uint64) << np.uint64(8 * j)
    out: NDArray[np.uint64] = (v >> (bitpos & np.uint64(7))) & np.uint64((1 << width) - 1)
    return out


class PackedPostings:
    """Read access to packed postings (the arrays may be memory-mapped).

    Args:
        layout: The bit widths.
        offsets: The bucket table.
        words: The packed postings; a memory-mapped array is read with positioned reads (see :class:`_Words`).
        n: Number of postings.
        bases: For postings on one global time axis (``layout.track_bits == 0``): ``(starts, slots)``, where
            track ``slots[i]`` owns the axis from ``starts[i]`` (ascending) to the next start. ``None``: the
            postings hold their track slot (format 2).
    """

    def __init__(
        self,
        layout: PackedLayout,
        offsets: NDArray[np.uint32],
        words: NDArray[np.uint8],
        n: int,
        bases: tuple[NDArray[np.int64], NDArray[np.int64]] | None = None,
    ) -> None:
        if bases is not None and layout.track_bits:
            raise ValueError("postings on a global time axis store no track slot (track_bits must be 0)")
        self.layout = layout
        self.offsets = offsets
        self.words = words
        self.n = n
        self.bases = bases
        self._words = _Words(words)

    def release(self) -> None:
        """Hand the pages of a memory-mapped bucket table back to the OS (they stay in its page cache).

        A long-running process that matches many queries then holds only the pages of the match in progress,
        not, over time, the whole table. Arrays in memory are left alone.
        """
        advise = getattr(mmap, "MADV_DONTNEED", None)
        mapped = getattr(self.offsets, "_mmap", None) if isinstance(self.offsets, np.memmap) else None
        if advise is not None and mapped is not None:
            mapped.madvise(advise)

    @property
    def nbytes(self) -> int:
        """Bytes held by the two arrays."""
        return int(self.offsets.nbytes + self.words.nbytes)

    def _decode(self, v: NDArray[np.uint64]) -> tuple[NDArray[np.uint32], NDArray[np.uint32]]:
        """``(track slots, anchor times)`` of packed fields."""
        tb = self.layout.time_bits
        times = (v & np.uint64((1 << tb) - 1)).astype(np.int64)
        if self.bases is not None:
            starts, slots = self.bases
            pos = np.searchsorted(starts, times, side="right") - 1
            return slots[pos].astype(np.uint32), (times - starts[pos]).astype(np.uint32)
        tracks = ((v >> np.uint64(tb)) & np.uint64((1 << self.layout.track_bits) - 1)).astype(np.uint32)
        return tracks, times.astype(np.uint32)

    def lookup(self, uq: NDArray[np.uint32]) -> Found:
        """The rows of each (sorted, unique) query hash, with their buckets read once for :meth:`Found.postings`."""
        lay = self.layout
        w = lay.width
        h = np.asarray(uq, dtype=np.uint64)
        bucket = (h >> np.uint64(lay.low_bits)).astype(np.int64)
        start = np.asarray(self.offsets[bucket]).astype(np.int64)
        end = np.asarray(self.offsets[bucket + 1]).astype(np.int64)
        # the bytes of every bucket the query needs (query hashes are sorted, so their buckets are too)
        first = (start * w) >> 3
        last = np.maximum((end * w + 7) >> 3, first)
        keep = np.r_[True, bucket[1:] != bucket[:-1]] if len(bucket) else np.zeros(0, dtype=bool)
        buf, at = self._words.window(first[keep], last[keep])
        shift = (np.repeat(at - first[keep], np.diff(np.r_[np.flatnonzero(keep), len(bucket)]))) * 8
        if lay.low_bits == 0:
            return Found(start, end, self, buf, shift)
        low = h & np.uint64((1 << lay.low_bits) - 1)

        def low_at(rows: NDArray[np.int64], which: NDArray[np.int64]) -> NDArray[np.uint64]:
            bitpos = rows.astype(np.uint64) * np.uint64(w) + shift[which].astype(np.uint64)
            out: NDArray[np.uint64] = _read_fields(buf, bitpos, w) >> np.uint64(lay.track_bits + lay.time_bits)
            return out

        lo = _bisect(start, end, low, low_at, right=False)
        hi = _bisect(lo, end, low, low_at, right=True)
        return Found(lo, hi, self, buf, shift)

    def _all(self) -> NDArray[np.uint8]:
        size = len(self.words)
        buf, _ = self._words.window(np.zeros(1, dtype=np.int64), np.array([size], dtype=np.int64))
        return buf

    def unpack(self) -> dict[str, NDArray[np.uint32]]:
        """All postings as the three ``uint32`` arrays ``hashes``, ``tracks``, ``times``."""
        w = self.layout.width
        bitpos = np.arange(self.n, dtype=np.uint64) * np.uint64(w)
        fields = _read_fields(self._all(), bitpos, w)
        del bitpos
        counts = np.diff(np.asarray(self.offsets).astype(np.int64)).astype(np.int64)
        buckets = np.repeat(np.arange(len(counts), dtype=np.uint64), counts)
        low = fields >> np.uint64(self.layout.track_bits + self.layout.time_bits)
        hashes = ((buckets << np.uint64(self.layout.low_bits)) | low).astype(np.uint32)
        tracks, times = self._decode(fields)
        return {"hashes": hashes, "tracks": tracks, "times": times}


def _bisect(
    lo: NDArray[np.int64],
    hi: NDArray[np.int64],
    key: NDArray[np.uint64],
    low_at: Callable[[NDArray[np.int64], NDArray[np.int64]], NDArray[np.uint64]],
    *,
    right: bool,
) -> NDArray[np.int64]:
    """Per query hash ``i``: the first row in ``lo[i]:hi[i]`` whose low hash is ``>= key[i]`` (``> key`` if right)."""
    lo, hi = lo.copy(), hi.copy()
    active = np.flatnonzero(lo < hi)
    while len(active):
        mid = (lo[active] + hi[active]) // 2
        k = low_at(mid, active)
        go_right = k <= key[active] if right else k < key[active]
        lo[active] = np.where(go_right, mid + 1, lo[active])
        hi[active] = np.where(go_right, hi[active], mid)
        active = active[lo[active] < hi[active]]
    return lo

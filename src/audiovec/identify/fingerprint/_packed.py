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
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["MAX_WIDTH", "PackedLayout", "PackedPostings", "choose_layout", "pack"]

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


class PackedPostings:
    """Read access to packed postings (the arrays may be memory-mapped).

    Args:
        layout: The bit widths.
        offsets: The bucket table.
        words: The packed postings.
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

    def release(self) -> None:
        """Hand the pages of memory-mapped arrays back to the OS (they stay in its page cache, re-read on demand).

        A long-running process that matches many queries then holds only the pages of the match in progress,
        not, over time, the whole index. Arrays in memory are left alone.
        """
        advise = getattr(mmap, "MADV_DONTNEED", None)
        for array in (self.offsets, self.words):
            mapped = getattr(array, "_mmap", None) if isinstance(array, np.memmap) else None
            if advise is not None and mapped is not None:
                mapped.madvise(advise)

    @property
    def nbytes(self) -> int:
        """Bytes held by the two arrays."""
        return int(self.offsets.nbytes + self.words.nbytes)

    def _fields(self, idx: NDArray[np.int64]) -> NDArray[np.uint64]:
        w = self.layout.width
        if w == 0:
            return np.zeros(len(idx), dtype=np.uint64)
        bitpos = idx.astype(np.uint64) * np.uint64(w)
        byte = (bitpos >> np.uint64(3)).astype(np.int64)
        v = np.zeros(len(idx), dtype=np.uint64)
        for j in range(8):
            v |= np.asarray(self.words[byte + j]).astype(np.uint64) << np.uint64(8 * j)
        out: NDArray[np.uint64] = (v >> (bitpos & np.uint64(7))) & np.uint64((1 << w) - 1)
        return out

    def _low(self, idx: NDArray[np.int64]) -> NDArray[np.uint64]:
        out: NDArray[np.uint64] = self._fields(idx) >> np.uint64(self.layout.track_bits + self.layout.time_bits)
        return out

    def lookup(self, uq: NDArray[np.uint32]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """``(lo, hi)``: the rows of each (sorted, unique) query hash."""
        lay = self.layout
        h = np.asarray(uq, dtype=np.uint64)
        bucket = (h >> np.uint64(lay.low_bits)).astype(np.int64)
        start = np.asarray(self.offsets[bucket]).astype(np.int64)
        end = np.asarray(self.offsets[bucket + 1]).astype(np.int64)
        if lay.low_bits == 0:
            return start, end
        low = h & np.uint64((1 << lay.low_bits) - 1)
        return self._bisect(start, end, low, right=False), self._bisect(start, end, low, right=True)

    def _bisect(
        self, lo: NDArray[np.int64], hi: NDArray[np.int64], key: NDArray[np.uint64], *, right: bool
    ) -> NDArray[np.int64]:
        lo, hi = lo.copy(), hi.copy()
        active = np.flatnonzero(lo < hi)
        while len(active):
            mid = (lo[active] + hi[active]) // 2
            k = self._low(mid)
            go_right = k <= key[active] if right else k < key[active]
            lo[active] = np.where(go_right, mid + 1, lo[active])
            hi[active] = np.where(go_right, hi[active], mid)
            active = active[lo[active] < hi[active]]
        return lo

    def postings(self, idx: NDArray[np.int64]) -> tuple[NDArray[np.uint32], NDArray[np.uint32]]:
        """``(track slots, anchor times)`` of rows ``idx``."""
        v = self._fields(idx)
        tb = self.layout.time_bits
        times = (v & np.uint64((1 << tb) - 1)).astype(np.int64)
        if self.bases is not None:
            starts, slots = self.bases
            pos = np.searchsorted(starts, times, side="right") - 1
            return slots[pos].astype(np.uint32), (times - starts[pos]).astype(np.uint32)
        tracks = ((v >> np.uint64(tb)) & np.uint64((1 << self.layout.track_bits) - 1)).astype(np.uint32)
        return tracks, times.astype(np.uint32)

    def unpack(self) -> dict[str, NDArray[np.uint32]]:
        """All postings as the three ``uint32`` arrays ``hashes``, ``tracks``, ``times``."""
        idx = np.arange(self.n, dtype=np.int64)
        counts = np.diff(np.asarray(self.offsets).astype(np.int64)).astype(np.int64)
        buckets = np.repeat(np.arange(len(counts), dtype=np.uint64), counts)
        low = self._low(idx)
        hashes = ((buckets << np.uint64(self.layout.low_bits)) | low).astype(np.uint32)
        tracks, times = self.postings(idx)
        return {"hashes": hashes, "tracks": tracks, "times": times}

"""Short-time spectrum and spectral-peak picking, incremental so that long files stream in bounded memory.

Both stages consume their input piece by piece and give exactly what a one-shot computation would give:

* :class:`SpectrogramStream` frames samples every ``hop_length`` (the last frame is zero-padded, as
  :func:`audiovec.embedders.base.frame_count` does) and returns the log power (dB re. a full-scale sine) of the
  FFT bins between ``fmin`` and ``fmax``, as ``float32[frames, bins]``.
* :class:`PeakPicker` finds local maxima of that log spectrogram (:func:`maximum_filter`, equal to
  ``scipy.ndimage``'s, over a ``neighborhood_bins`` x ``neighborhood_frames`` box) louder than ``min_db``, and
  keeps, in every density block of ``block_frames`` frames, the strongest ``peaks_per_block``, with their level
  (which pairing uses). It works on cores of
  whole density blocks with enough neighbouring frames on each side for the box, so chunking never changes the
  result.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from audiovec.identify.fingerprint._config import FingerprintConfig

__all__ = ["PeakPicker", "Peaks", "SpectrogramStream", "concat_peaks", "top_k_per_block"]

#: Peaks as ``(frames int64[p], bins int64[p], levels float32[p])``.
Peaks = tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float32]]


class SpectrogramStream:
    """Incremental log-power STFT restricted to the config's frequency band.

    Feed mono samples at ``config.sample_rate`` with :meth:`push`; call :meth:`flush` once at the end.
    """

    def __init__(self, config: FingerprintConfig) -> None:
        self.config = config
        n = config.n_fft
        # Periodic Hann window; a full-scale sine then peaks at (sum(w) / 2) ** 2 in power.
        self._window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)).astype(np.float32)
        self._ref_db = 20.0 * math.log10(float(self._window.sum()) / 2.0)
        self._lo, self._hi = config.bin_range
        self._buf = np.zeros(0, dtype=np.float32)
        self._seen = 0  # samples received
        self._emitted = 0  # frames returned

    @property
    def frames_emitted(self) -> int:
        """Frames returned so far."""
        return self._emitted

    def _spectrum(self, frames: NDArray[np.float32]) -> NDArray[np.float32]:
        spec = np.fft.rfft(frames * self._window, axis=1)[:, self._lo : self._hi]
        power = spec.real.astype(np.float32) ** 2 + spec.imag.astype(np.float32) ** 2
        out: NDArray[np.float32] = (10.0 * np.log10(np.maximum(power, 1e-20)) - self._ref_db).astype(np.float32)
        return out

    def push(self, samples: NDArray[np.float32]) -> NDArray[np.float32]:
        """Add samples; return the log spectrogram rows of every frame that is now complete."""
        x = np.asarray(samples, dtype=np.float32).reshape(-1)
        self._seen += len(x)
        buf = np.concatenate([self._buf, x]) if len(self._buf) else x
        n_fft, hop = self.config.n_fft, self.config.hop_length
        m = 0 if len(buf) < n_fft else 1 + (len(buf) - n_fft) // hop
        if m == 0:
            self._buf = buf
            return np.zeros((0, self._hi - self._lo), dtype=np.float32)
        frames = np.lib.stride_tricks.sliding_window_view(buf, n_fft)[::hop][:m]
        out = self._spectrum(frames)
        self._buf = buf[m * hop :].copy()
        self._emitted += m
        return out

    def flush(self) -> NDArray[np.float32]:
        """Return the remaining, zero-padded frames so the whole input is covered (at least one frame)."""
        n_fft, hop = self.config.n_fft, self.config.hop_length
        n = self._seen
        total = 1 if n <= n_fft else 1 + -(-(n - n_fft) // hop)
        missing = total - self._emitted
        if missing <= 0 or n == 0:
            return np.zeros((0, self._hi - self._lo), dtype=np.float32)
        need = n_fft + (missing - 1) * hop
        buf = np.zeros(need, dtype=np.float32)
        buf[: min(len(self._buf), need)] = self._buf[:need]
        frames = np.lib.stride_tricks.sliding_window_view(buf, n_fft)[::hop][:missing]
        self._buf = np.zeros(0, dtype=np.float32)
        self._emitted += missing
        return self._spectrum(frames)


def _running_max(x: NDArray[np.float32], n: int) -> NDArray[np.float32]:
    """Maximum over windows of ``n`` rows along axis 0, centred like SciPy's filters, ``-inf`` outside ``x``."""
    if n <= 1:
        return x
    pad = [(n // 2, n - 1 - n // 2)] + [(0, 0)] * (x.ndim - 1)
    y = np.pad(x, pad, constant_values=-np.inf)
    span = 1  # y[i] holds the maximum of the span rows starting at i
    while span * 2 <= n:
        y = np.maximum(y[:-span], y[span:])
        span *= 2
    if span < n:
        y = np.maximum(y[: len(y) - (n - span)], y[n - span :])
    return y


def maximum_filter(x: NDArray[np.float32], size: tuple[int, int]) -> NDArray[np.float32]:
    """``scipy.ndimage.maximum_filter(x, size, mode="constant", cval=-inf)`` in NumPy, equal to it exactly.

    A separable running maximum by doubling (``log2`` passes per axis). It spares identification the import of
    ``scipy.ndimage`` (about a quarter of a second), which is most of a one-query command's start-up.
    """
    rows = _running_max(x, size[0])
    out: NDArray[np.float32] = _running_max(rows.T, size[1]).T
    return out


def top_k_per_block(times: NDArray[np.int64], values: NDArray[np.float32], block: int, k: int) -> NDArray[np.bool_]:
    """Mask of the ``k`` largest ``values`` in every block of ``block`` consecutive time indices.

    Ties are broken by position (earlier first), so the result is deterministic. Fully vectorised.
    """
    n = len(times)
    if n == 0:
        return np.zeros(0, dtype=bool)
    blocks = times // block
    order = np.lexsort((np.arange(n), -values, blocks))
    sorted_blocks = blocks[order]
    first = np.searchsorted(sorted_blocks, sorted_blocks, side="left")
    rank = np.arange(n) - first
    keep = np.zeros(n, dtype=bool)
    keep[order[rank < k]] = True
    return keep


class PeakPicker:
    """Incremental spectral-peak picking with a target density.

    Feed log-spectrogram rows with :meth:`push` and finish with :meth:`flush`; each returns the newly final
    peaks as ``(frame, bin, level)`` arrays sorted by frame then bin (``bin`` counts from the config's lowest
    bin; ``level`` is the peak's log power in dB, ``float32``).

    Args:
        config: The fingerprint parameters.
        query: Use the query density (:attr:`FingerprintConfig.query_peaks_per_second`).
    """

    def __init__(self, config: FingerprintConfig, query: bool = False) -> None:
        self.config = config
        self._k = config.peaks_per_block(query)
        self._block = config.block_frames
        self._ctx = config.neighborhood_frames // 2
        # Cores of whole density blocks, about 8 s long, so blocks never straddle two cores.
        self._core = self._block * max(1, math.ceil(500 / self._block))
        self._rows: NDArray[np.float32] | None = None
        self._start = 0  # global frame index of self._rows[0]
        self._done = 0  # peaks of frames < _done have been returned

    def _process(self, end: int, final: bool) -> Peaks:
        assert self._rows is not None
        rows = self._rows
        lo = self._done - self._start
        hi = end - self._start
        ctx_hi = len(rows) if final else min(len(rows), hi + self._ctx)
        ctx_lo = max(0, lo - self._ctx)
        part = rows[ctx_lo:ctx_hi]
        size = (self.config.neighborhood_frames, self.config.neighborhood_bins)
        local_max = maximum_filter(part, size)
        core = slice(lo - ctx_lo, hi - ctx_lo)
        is_peak = (part[core] == local_max[core]) & (part[core] > self.config.min_db)
        t_rel, f = np.nonzero(is_peak)
        t = t_rel.astype(np.int64) + self._done
        vals = part[core][t_rel, f]
        keep = top_k_per_block(t, vals, self._block, self._k)
        self._done = end
        drop = max(0, (self._done - self._ctx) - self._start)
        if drop:
            self._rows = rows[drop:]
            self._start += drop
        return t[keep], f[keep].astype(np.int64), vals[keep].astype(np.float32)

    def push(self, rows: NDArray[np.float32]) -> Peaks:
        """Add spectrogram rows; return the peaks that can no longer change."""
        if len(rows):
            self._rows = rows if self._rows is None else np.concatenate([self._rows, rows])
        out: list[Peaks] = []
        while self._rows is not None:
            available = self._start + len(self._rows)
            end = self._done + self._core
            if available < end + self._ctx:
                break
            out.append(self._process(end, final=False))
        return concat_peaks(out)

    def flush(self) -> Peaks:
        """Return the peaks of every remaining frame."""
        out: list[Peaks] = []
        while self._rows is not None and self._done < self._start + len(self._rows):
            end = min(self._done + self._core, self._start + len(self._rows))
            out.append(self._process(end, final=True))
        return concat_peaks(out)


def concat_peaks(parts: list[Peaks]) -> Peaks:
    """The peaks of consecutive pieces, in order."""
    if not parts:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    if len(parts) == 1:
        return parts[0]
    return (
        np.concatenate([p[0] for p in parts]),
        np.concatenate([p[1] for p in parts]),
        np.concatenate([p[2] for p in parts]),
    )

"""The mel filterbank of every spectrogram front end here (log-mel, MFCC, Resemblyzer, musicnn, aiSFX), in NumPy.

By default it is the filterbank of Slaney's Auditory Toolbox, as ``librosa.filters.mel`` builds it by default
(``htk=False, norm="slaney"``): a mel scale that is linear below 1 kHz and logarithmic above, triangular filters
between consecutive mel-spaced edges, each scaled to unit area. It equals librosa's to float32 rounding (tested),
so audiovec's base install needs no librosa (and none of numba, llvmlite and scikit-learn that it brings).
``htk=True`` uses the HTK mel scale (``2595 * log10(1 + hz / 700)``) and ``norm="l1"`` scales every filter to
unit sum instead (librosa's ``htk=True, norm=1.0``, which aiSFX uses).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import NDArray

__all__ = ["htk_hz_to_mel", "htk_mel_to_hz", "hz_to_mel", "mel_filterbank", "mel_to_hz"]

_F_SP = 200.0 / 3  # Hz per mel in the linear part
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = np.log(6.4) / 27.0


def hz_to_mel(hz: NDArray[np.float64] | float) -> NDArray[np.float64]:
    """Slaney's mel scale: ``hz / (200/3)`` below 1 kHz, logarithmic (27 mels per factor 6.4) above."""
    f = np.asarray(hz, dtype=np.float64)
    linear = f / _F_SP
    with np.errstate(divide="ignore"):
        log = _MIN_LOG_MEL + np.log(np.maximum(f, 1e-300) / _MIN_LOG_HZ) / _LOGSTEP
    return np.where(f >= _MIN_LOG_HZ, log, linear)


def mel_to_hz(mel: NDArray[np.float64] | float) -> NDArray[np.float64]:
    """The inverse of :func:`hz_to_mel`."""
    m = np.asarray(mel, dtype=np.float64)
    return np.where(m >= _MIN_LOG_MEL, _MIN_LOG_HZ * np.exp(_LOGSTEP * (m - _MIN_LOG_MEL)), _F_SP * m)


def htk_hz_to_mel(hz: NDArray[np.float64] | float) -> NDArray[np.float64]:
    """The HTK mel scale: ``2595 * log10(1 + hz / 700)``."""
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def htk_mel_to_hz(mel: NDArray[np.float64] | float) -> NDArray[np.float64]:
    """The inverse of :func:`htk_hz_to_mel`."""
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(
    sample_rate: float,
    n_fft: int,
    n_mels: int,
    fmin: float = 0.0,
    fmax: float | None = None,
    *,
    htk: bool = False,
    norm: Literal["slaney", "l1"] = "slaney",
) -> NDArray[np.float32]:
    """``float32[n_mels, n_fft // 2 + 1]`` weights turning a power spectrum into mel band energies.

    Args:
        sample_rate: Sample rate of the signal, Hz.
        n_fft: FFT length (the spectrum has ``n_fft // 2 + 1`` bins).
        n_mels: Number of bands.
        fmin: Lowest edge, Hz.
        fmax: Highest edge, Hz (``None``: ``sample_rate / 2``).
        htk: Use the HTK mel scale instead of Slaney's (librosa's ``htk=True``).
        norm: ``"slaney"``: every filter has unit area (librosa's default); ``"l1"``: every filter's weights sum
            to 1 (librosa's ``norm=1.0``; an all-zero filter is left as it is, as librosa does).
    """
    fmax = sample_rate / 2.0 if fmax is None else fmax
    to_mel, to_hz = (htk_hz_to_mel, htk_mel_to_hz) if htk else (hz_to_mel, mel_to_hz)
    fft_hz = np.fft.rfftfreq(n_fft, d=1.0 / sample_rate)
    edges = to_hz(np.linspace(to_mel(fmin), to_mel(fmax), n_mels + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_hz[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper)).astype(np.float32)
    if norm == "l1":
        sums = weights.sum(axis=1, keepdims=True)
        tiny = np.finfo(np.float32).tiny
        weights /= np.where(sums < tiny, np.float32(1.0), sums)
    else:
        weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]  # unit area (Slaney normalisation)
    return weights

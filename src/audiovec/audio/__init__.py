"""Audio in: decode any common format safely, stream long files in blocks, resample, and know the formats.

* :mod:`audiovec.audio` (this package) — :class:`Audio`, :func:`load`, :func:`stream`, :func:`info`,
  :func:`resample`, :func:`resample_blocks`, :func:`to_mono`; every failure is a typed
  :class:`~audiovec.errors.AudioError` that names the source.
* :mod:`audiovec.audio.formats` — which containers the decoder reads, their extensions and magic numbers.

Example:
    >>> from audiovec.audio import Audio
    >>> import numpy as np
    >>> Audio.from_array(np.zeros(8000, dtype=np.float32), 8000).duration
    1.0
"""

from __future__ import annotations

from audiovec.audio import _io
from audiovec.audio._io import *  # noqa: F403 - the decoding API is this package's API
from audiovec.audio.formats import AUDIO_EXTENSIONS, FORMATS, AudioFormat

__all__ = [*_io.__all__, "AUDIO_EXTENSIONS", "FORMATS", "AudioFormat"]

"""Decoding: load, stream, resample, mix down and validate.

Decoding goes through libsndfile (``soundfile``), which reads WAV, FLAC, OGG/Vorbis, OGG/Opus, MP3, AIFF and
more without any system package. Resampling uses ``soxr`` (the SoX resampler, "high quality" preset), in one shot
for :func:`load` and as a continuous stream for :func:`stream`, so blocks join without clicks.

Every function checks its input and raises a typed error from :mod:`audiovec.errors` whose message names the
source: a missing file, a path that cannot be opened (with the system's reason), undecodable data, a known but
unsupported format (MP4/AAC, WMA...), zero samples, NaN/Inf samples, or an implausible sample rate.

Truncated files are caught too, although libsndfile decodes whatever is there without complaint: when decoding
stops, the position it reached is compared with the length the container declares
(:mod:`audiovec.audio._lengths`), and a shortfall of more than
:data:`~audiovec.audio._lengths.TRUNCATION_TOLERANCE` samples raises :class:`~audiovec.errors.AudioDecodeError`
unless the caller passes ``allow_truncated=True``. The same holds when libsndfile itself stops short (an MP3
without a length header, whose length it only estimates).

Example:
    >>> from audiovec.audio import Audio
    >>> import numpy as np
    >>> a = Audio.from_array(np.zeros(16000, dtype=np.float32), 16000)
    >>> a.duration, a.channels
    (1.0, 1)
"""

from __future__ import annotations

import errno
import io
import logging
import os
import stat
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any, TypeAlias

import numpy as np
import soundfile as sf
import soxr
from numpy.typing import NDArray

from audiovec.audio._lengths import (
    TRUNCATION_TOLERANCE,
    DeclaredLength,
    count_mpeg_samples,
    declared_frames,
    read_declared_length,
)
from audiovec.audio.formats import describe_unreadable
from audiovec.errors import (
    AudioDecodeError,
    AudioError,
    AudioFileNotFoundError,
    ConfigError,
    EmptyAudioError,
    InvalidSampleRateError,
    NonFiniteAudioError,
    UnsupportedFormatError,
)

__all__ = [
    "MAX_SAMPLE_RATE",
    "MIN_SAMPLE_RATE",
    "Audio",
    "AudioInfo",
    "AudioSource",
    "info",
    "load",
    "resample",
    "resample_blocks",
    "stream",
    "to_mono",
]

#: Lowest sample rate accepted (Hz). Anything lower is treated as a corrupt header.
MIN_SAMPLE_RATE = 100
#: Highest sample rate accepted (Hz); 768 kHz is the highest rate of real converters, 1 MHz leaves room for
#: ultrasonic recorders.
MAX_SAMPLE_RATE = 1_000_000
_RESAMPLE_QUALITY = "HQ"
#: Frames decoded per libsndfile call (so that buffers stay bounded, and a decode error is located to a chunk).
_READ_CHUNK = 1 << 16

log = logging.getLogger(__name__)

#: What :func:`load`, :func:`stream` and :func:`info` accept: a path, raw bytes, or a binary file object.
AudioSource: TypeAlias = str | os.PathLike[str] | bytes | bytearray | memoryview | IO[bytes]


@dataclass(frozen=True, eq=False)
class Audio:
    """Decoded audio held in memory.

    Attributes:
        samples: ``float32`` samples, shape ``[samples]`` for mono or ``[channels, samples]``. Integer PCM is
            scaled to [-1, 1); float sources are kept as they are (never clipped).
        sample_rate: Samples per second.
        source: A printable name of where the audio came from (path, ``"<bytes>"``...), used in error messages.
        offset: Start time of these samples inside the source, in seconds (non-zero for streamed blocks and
            for loads with ``offset``).
    """

    samples: NDArray[np.float32]
    sample_rate: int
    source: str | None = None
    offset: float = 0.0
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_array(
        cls,
        samples: NDArray[Any] | list[float],
        sample_rate: int,
        source: str | None = None,
        *,
        channels_first: bool = True,
        validate: bool = True,
    ) -> Audio:
        """Wrap an array as :class:`Audio`.

        Args:
            samples: 1-D mono samples, or 2-D ``[channels, samples]`` (``[samples, channels]`` when
                ``channels_first=False``). Converted to ``float32``.
            sample_rate: Sample rate in Hz.
            source: Optional name used in error messages.
            channels_first: Layout of a 2-D array.
            validate: Check for emptiness, NaN/Inf and a plausible sample rate.

        Raises:
            EmptyAudioError, NonFiniteAudioError, InvalidSampleRateError: When ``validate`` finds a problem.
            ConfigError: When the array has more than two dimensions.
        """
        arr = np.asarray(samples, dtype=np.float32)
        if arr.ndim == 2 and not channels_first:
            arr = arr.T
        if arr.ndim == 2 and arr.shape[0] == 1:
            arr = arr[0]
        if arr.ndim not in (1, 2):
            raise ConfigError(f"audio samples must be 1-D or 2-D, got shape {arr.shape}")
        arr = np.ascontiguousarray(arr)
        if validate:
            _check_sample_rate(sample_rate, source)
            _check_samples(arr, source)
        return cls(arr, int(sample_rate), source)

    @property
    def channels(self) -> int:
        """Number of channels."""
        return 1 if self.samples.ndim == 1 else int(self.samples.shape[0])

    @property
    def num_samples(self) -> int:
        """Number of samples per channel."""
        return int(self.samples.shape[-1])

    @property
    def duration(self) -> float:
        """Duration in seconds."""
        return self.num_samples / self.sample_rate

    def to_mono(self) -> Audio:
        """Return a mono copy (channel mean); ``self`` when already mono."""
        if self.samples.ndim == 1:
            return self
        return Audio(to_mono(self.samples), self.sample_rate, self.source, self.offset, self.metadata)

    def resample(self, sample_rate: int) -> Audio:
        """Return the audio at another sample rate (soxr, high quality); ``self`` when already there."""
        if sample_rate == self.sample_rate:
            return self
        _check_sample_rate(sample_rate, "target sample rate", exc=ConfigError)
        out = resample(self.samples, self.sample_rate, sample_rate)
        return Audio(out, int(sample_rate), self.source, self.offset, self.metadata)

    def prepared(self, sample_rate: int) -> Audio:
        """Return mono audio at ``sample_rate``: what an embedder needs."""
        return self.to_mono().resample(sample_rate)

    def slice(self, start: float, end: float | None = None) -> Audio:
        """Return the part between ``start`` and ``end`` seconds (relative to this audio's first sample)."""
        i0 = max(0, round(start * self.sample_rate))
        i1 = self.num_samples if end is None else min(self.num_samples, round(end * self.sample_rate))
        return Audio(
            np.ascontiguousarray(self.samples[..., i0:i1]),
            self.sample_rate,
            self.source,
            self.offset + i0 / self.sample_rate,
            self.metadata,
        )

    def __repr__(self) -> str:
        return (
            f"Audio(source={self.source!r}, sample_rate={self.sample_rate}, channels={self.channels}, "
            f"duration={self.duration:.3f}s)"
        )


@dataclass(frozen=True)
class AudioInfo:
    """What :func:`info` reads from a header without decoding the samples."""

    source: str
    sample_rate: int
    channels: int
    frames: int
    duration: float
    format: str
    subtype: str
    size_bytes: int | None


# --------------------------------------------------------------------------------------------- helpers
def to_mono(samples: NDArray[np.float32]) -> NDArray[np.float32]:
    """Average ``[channels, samples]`` down to ``[samples]``; 1-D input is returned as is."""
    if samples.ndim == 1:
        return samples
    return _mix([samples[c] for c in range(samples.shape[0])])


def _mix(channels: list[NDArray[np.float32]]) -> NDArray[np.float32]:
    """The average of equally long channels, summed in float32 in channel order (one pass per channel).

    Seven times faster than a float64 mean over a ``[channels, samples]`` array, and it reads the columns of a
    decoder's interleaved ``[frames, channels]`` buffer without transposing it first; both layouts give the
    same result.
    """
    out = np.array(channels[0], dtype=np.float32, copy=True)
    for channel in channels[1:]:
        out += channel
    if len(channels) > 1:
        out *= np.float32(1.0 / len(channels))
    return out


def resample(samples: NDArray[np.float32], orig_sr: int, target_sr: int) -> NDArray[np.float32]:
    """Resample ``[samples]`` or ``[channels, samples]`` with soxr's high-quality preset."""
    if orig_sr == target_sr:
        return samples
    x = samples.T if samples.ndim == 2 else samples
    y = soxr.resample(np.ascontiguousarray(x), orig_sr, target_sr, quality=_RESAMPLE_QUALITY)
    y = np.asarray(y, dtype=np.float32)
    return np.ascontiguousarray(y.T if samples.ndim == 2 else y)


def _describe(source: AudioSource) -> str:
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"<bytes: {len(source)} B>"
    name = getattr(source, "name", None)
    return str(name) if isinstance(name, str) else "<file object>"


_SAMPLE_RATE_RULE = f"expected an integer in [{MIN_SAMPLE_RATE}, {MAX_SAMPLE_RATE}]"


def _check_sample_rate(sr: float, source: str | None, exc: type[Exception] = InvalidSampleRateError) -> None:
    if not (isinstance(sr, (int, np.integer)) or float(sr).is_integer()) or not (
        MIN_SAMPLE_RATE <= sr <= MAX_SAMPLE_RATE
    ):
        msg = f"implausible sample rate {sr!r} Hz ({_SAMPLE_RATE_RULE})"
        if exc is InvalidSampleRateError:
            raise InvalidSampleRateError(msg, source)
        raise exc(f"{source}: {msg}" if source else msg)


def _check_samples(samples: NDArray[np.float32], source: str | None) -> None:
    if samples.shape[-1] == 0:
        raise EmptyAudioError("audio has zero samples", source)
    if not np.isfinite(samples).all():
        bad = int(np.count_nonzero(~np.isfinite(samples)))
        raise NonFiniteAudioError(f"audio contains {bad} NaN or infinite sample(s)", source)


def _riff_sample_rate(head: bytes) -> int | None:
    """Sample rate from a RIFF/WAVE ``fmt`` chunk, to explain headers that libsndfile refuses."""
    if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
        return None
    pos, end = 12, len(head)
    while pos + 8 <= end:
        cid, size = head[pos : pos + 4], struct.unpack("<I", head[pos + 4 : pos + 8])[0]
        if cid == b"fmt " and pos + 16 <= end:
            return int(struct.unpack("<I", head[pos + 12 : pos + 16])[0])
        pos += 8 + size + (size & 1)
    return None


def _os_error(err: OSError, name: str) -> AudioError:
    """The typed error for a path the system refuses to open: "not found" only when it does not exist."""
    if err.errno == errno.ENOENT:
        return AudioFileNotFoundError("no such file", name)
    code = errno.errorcode.get(err.errno or 0, "")
    reason = f"{err.strerror or err} ({code})" if code else str(err.strerror or err)
    return AudioDecodeError(f"cannot open: {reason}", name)


def _open_path(path: str | os.PathLike[str], name: str) -> tuple[IO[bytes], int]:
    """Open a regular file for reading, with its size; every refusal is a typed error with the system's reason."""
    try:
        mode = os.stat(path).st_mode
        if stat.S_ISDIR(mode):
            raise AudioDecodeError("is a directory, not an audio file", name)
        if not stat.S_ISREG(mode):
            raise AudioDecodeError(
                "not a regular file (a pipe, device or socket); pass its bytes or a file object instead", name
            )
        fileobj = open(path, "rb")  # noqa: SIM115 - closed by _Opened.close()
        return fileobj, os.fstat(fileobj.fileno()).st_size
    except OSError as err:
        raise _os_error(err, name) from err
    except ValueError as err:  # a NUL byte in the path
        raise AudioDecodeError(f"cannot open: {err}", name) from err


class _Opened:
    """Open a source with libsndfile, turning every failure into a typed error that names the source.

    It also keeps track of the decoding position, so that it can tell where decoding stops and compare that
    with the length the container declares (see :meth:`read`).
    """

    def __init__(self, source: AudioSource, *, allow_truncated: bool = False) -> None:
        self.name = _describe(source)
        self.size: int | None = None
        self.allow_truncated = allow_truncated
        fileobj: IO[bytes]
        if isinstance(source, (str, os.PathLike)):
            fileobj, self.size = _open_path(source, self.name)
        elif isinstance(source, (bytes, bytearray, memoryview)):
            self.size = len(source)
            fileobj = io.BytesIO(bytes(source))
        elif hasattr(source, "read"):
            fileobj = source
            if not (hasattr(source, "seekable") and source.seekable()):
                fileobj = io.BytesIO(source.read())
        else:
            raise ConfigError(f"cannot read audio from a {type(source).__name__}; pass a path, bytes or a file")
        self._owned = fileobj is not source
        self._fileobj = fileobj
        try:
            start = self._start = fileobj.tell()
            head = fileobj.read(4096)
            declared = read_declared_length(fileobj, start, head) if head else None
            fileobj.seek(start)
        except OSError as err:
            self.close()
            raise AudioDecodeError(f"cannot read: {err}", self.name) from err
        if not head:
            self.close()
            raise EmptyAudioError("file is empty (0 bytes)", self.name)
        try:
            self.sf = sf.SoundFile(fileobj)
        except (sf.LibsndfileError, RuntimeError, TypeError) as err:
            self.close()
            raise self._open_error(head, declared, err) from err
        try:
            _check_sample_rate(self.sf.samplerate, self.name)
        except AudioError:
            self.close()
            raise
        self._declared = declared
        self._declared_frames = (
            declared_frames(declared, int(self.sf.frames), str(self.sf.subtype), int(self.sf.channels))
            if declared is not None
            else None
        )
        self._pos = 0  # the decoder's position, in frames
        self._seek_pos = 0  # where the last seek went (nothing decoded since, while _pos == _seek_pos)
        self._ended = False
        self._warned = False

    def _open_error(self, head: bytes, declared: DeclaredLength | None, err: BaseException) -> AudioError:
        fmt = describe_unreadable(head, self.name)
        if fmt is not None:
            return UnsupportedFormatError(
                f"{fmt} is not supported by the decoder (libsndfile: WAV, FLAC, OGG/Vorbis/Opus, MP3, AIFF "
                "and more); convert it first, e.g. `ffmpeg -i INPUT output.flac`",
                self.name,
            )
        riff_sr = _riff_sample_rate(head)
        if riff_sr is not None and not (MIN_SAMPLE_RATE <= riff_sr <= MAX_SAMPLE_RATE):
            return InvalidSampleRateError(
                f"WAV header declares an implausible sample rate of {riff_sr} Hz ({_SAMPLE_RATE_RULE})", self.name
            )
        if declared is not None and declared.cut is not None:
            return AudioDecodeError(
                f"not decodable as audio: truncated file, {declared.cut} ({_sf_message(err)})", self.name
            )
        return AudioDecodeError(f"not decodable as audio ({_sf_message(err)})", self.name)

    def read(self, frames: int, mono: bool = False) -> NDArray[np.float32]:
        """Read up to ``frames`` frames (``-1``: to the end) as ``[channels, frames]`` float32.

        With ``mono``, as ``[frames]``: the channels averaged as :func:`to_mono` does.

        Fewer frames than asked means that decoding has stopped, and the position it stopped at is checked
        against the declared length (see :meth:`_check_end`).
        """
        channels = int(self.sf.channels)
        parts: list[NDArray[np.float32]] = []
        got = 0
        while not self._ended and (frames < 0 or got < frames):
            want = _READ_CHUNK if frames < 0 else min(_READ_CHUNK, frames - got)
            part, failure = self._read_chunk(np.empty((want, channels), np.float32))
            self._pos += len(part)
            got += len(part)
            if len(part):
                parts.append(part)
            if failure is not None:
                self._ended = True
                self._warn(failure)
            elif len(part) < want:
                self._ended = True
                self._check_end()
        data = np.concatenate(parts) if len(parts) > 1 else parts[0] if parts else np.zeros((0, channels), np.float32)
        if mono:
            return _mix([data[:, c] for c in range(channels)])
        return np.ascontiguousarray(data.T)

    def _read_chunk(self, buf: NDArray[np.float32]) -> tuple[NDArray[np.float32], str | None]:
        """Decode into ``buf``: the frames read, and why decoding failed (when it did and that is allowed).

        Raises:
            AudioDecodeError: Decoding failed, and ``allow_truncated`` is off or nothing was decoded before.
        """
        try:
            return np.asarray(self.sf.read(out=buf), dtype=np.float32), None
        except (sf.LibsndfileError, RuntimeError) as err:
            kept = self._salvage(len(buf)) if self.allow_truncated else buf[:0]
            message = f"decoding failed after {self._seconds(self._pos + len(kept))}"
            if self._declared_frames is not None and self._declared is not None:
                message += f" of the {self._seconds(self._declared_frames)} {self._declared.where} declares"
            message += f", data corrupt or truncated ({_sf_message(err)})"
            if not self.allow_truncated or self._pos + len(kept) == 0:
                raise AudioDecodeError(message, self.name) from err
            return kept, message

    def _salvage(self, frames: int) -> NDArray[np.float32]:
        """After a decode error, decode the failed chunk again in small steps: the audio before the damage."""
        step = 1024
        kept: list[NDArray[np.float32]] = []
        try:
            self.sf.close()
            self._fileobj.seek(self._start)
            self.sf = sf.SoundFile(self._fileobj)
            self.sf.seek(self._pos)
            while sum(map(len, kept)) + step <= frames:
                part = self.sf.read(out=np.empty((step, self.sf.channels), np.float32))
                kept.append(part)
                if len(part) < step:
                    break
        except (sf.LibsndfileError, RuntimeError, OSError):
            pass  # what was decoded before this failure is kept
        return np.concatenate(kept) if kept else np.zeros((0, self.sf.channels), np.float32)

    def _check_end(self) -> None:
        """Decoding stopped at ``self._pos``: a file that declares more is truncated.

        Raises:
            AudioDecodeError: The file is truncated and ``allow_truncated`` is off (otherwise a warning is logged).
        """
        problem = self._truncation()
        if problem is None:
            return
        if not self.allow_truncated:
            raise AudioDecodeError(f"{problem}; pass allow_truncated=True to keep the decoded part", self.name)
        self._warn(problem)

    def _truncation(self) -> str | None:
        """Why decoding that stops at ``self._pos`` has not decoded the whole file, or ``None``."""
        declared = self._declared
        if declared is None:
            return None
        nothing_since_seek = self._pos == self._seek_pos and self._pos > 0
        ends = f"the audio ends {'before' if nothing_since_seek else 'at'} {self._seconds(self._pos)}"
        if declared.cut is not None:
            return (
                f"truncated file: {declared.cut}; {ends}, and {declared.where} declares no total length, "
                "so how much is missing is unknown"
            )
        if declared.mpeg_start is not None:
            return self._stopped_early(declared.mpeg_start, ends)
        if self._declared_frames is None or self._declared_frames - self._pos <= TRUNCATION_TOLERANCE:
            return None
        return (
            f"truncated file: {ends}, but {declared.where} declares {self._seconds(self._declared_frames)} "
            f"(at most {TRUNCATION_TOLERANCE} samples may be missing)"
        )

    def _stopped_early(self, mpeg_start: int, ends: str) -> str | None:
        """Why libsndfile stopped short of the frames of an MP3 without a length header, or ``None``.

        It estimates the length of such a file from the first frame's bitrate alone, and decodes no further.
        """
        here = self._fileobj.tell()
        try:
            counted = count_mpeg_samples(self._fileobj, self._start, mpeg_start)
        except OSError:
            return None
        finally:
            self._fileobj.seek(here)
        if counted is None or counted - self._pos <= TRUNCATION_TOLERANCE:
            return None
        return (
            f"the decoder stopped early: {ends}, but the MPEG frames of the file hold {self._seconds(counted)}; "
            "libsndfile estimates the length of an MP3 without a Xing, Info or VBRI header from its first frame, "
            "which fails for a variable bitrate, so give the file such a header "
            "(e.g. `ffmpeg -i INPUT.mp3 -c:a copy OUTPUT.mp3`)"
        )

    def _seconds(self, frames: int) -> str:
        return f"{frames / self.sf.samplerate:.3f} s"

    def _warn(self, problem: str) -> None:
        if not self._warned:
            log.warning(
                "%s: %s; keeping the %s decoded (allow_truncated=True)", self.name, problem, self._seconds(self._pos)
            )
            self._warned = True

    def seek_seconds(self, offset: float) -> None:
        if offset < 0:
            raise ConfigError(f"offset must be >= 0 seconds, got {offset}")
        if offset == 0:
            return
        frame = round(offset * self.sf.samplerate)
        if self.sf.frames and frame >= self.sf.frames:
            self._pos = int(self.sf.frames)
            self._check_end()  # past the audio that is there, but not past what the header declares: truncated
            raise EmptyAudioError(
                f"offset {offset:.3f}s is past the end of the audio ({self.sf.frames / self.sf.samplerate:.3f}s)",
                self.name,
            )
        try:
            self.sf.seek(frame)
        except (sf.LibsndfileError, RuntimeError) as err:
            raise AudioDecodeError(f"cannot seek to {offset:.3f}s ({_sf_message(err)})", self.name) from err
        self._pos = self._seek_pos = frame

    def close(self) -> None:
        if hasattr(self, "sf"):
            self.sf.close()
        if self._owned:
            self._fileobj.close()

    def __enter__(self) -> _Opened:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _sf_message(err: BaseException) -> str:
    text = str(err)
    return text.split(": ", 1)[1] if text.startswith("Error opening") and ": " in text else text


def _frames_for(seconds: float | None, sr: int) -> int:
    if seconds is None:
        return -1
    if seconds <= 0:
        raise ConfigError(f"duration must be > 0 seconds, got {seconds}")
    return round(seconds * sr)


# --------------------------------------------------------------------------------------------- public API
def info(source: AudioSource) -> AudioInfo:
    """Read the header of an audio source without decoding it.

    Raises:
        AudioError: A subclass describing why the source cannot be read.
    """
    with _Opened(source) as f:
        frames = int(f.sf.frames)
        return AudioInfo(
            source=f.name,
            sample_rate=int(f.sf.samplerate),
            channels=int(f.sf.channels),
            frames=frames,
            duration=frames / f.sf.samplerate,
            format=str(f.sf.format),
            subtype=str(f.sf.subtype),
            size_bytes=f.size,
        )


def load(
    source: AudioSource,
    sr: int | None = None,
    mono: bool = True,
    offset: float = 0.0,
    duration: float | None = None,
    *,
    allow_truncated: bool = False,
) -> Audio:
    """Decode audio into memory.

    A truncated file (one that stops before the length its header declares, see ``docs/audio.md``) raises
    :class:`~audiovec.errors.AudioDecodeError` when decoding reaches the cut; a window (``offset``,
    ``duration``) that ends before the cut is returned.

    Args:
        source: A path, raw bytes, or a binary file object.
        sr: Target sample rate; ``None`` keeps the file's own rate.
        mono: Average all channels into one.
        offset: Start reading at this time, in seconds.
        duration: Read at most this many seconds (``None``: to the end).
        allow_truncated: Instead of raising, return the audio decoded up to where decoding stops in a truncated
            file (or, after some audio, in a damaged one, or in an MP3 the decoder cannot read whole), and log a
            warning.

    Returns:
        The decoded :class:`Audio`; ``offset`` is recorded on it.

    Raises:
        AudioFileNotFoundError: The path does not exist.
        AudioDecodeError: The data is corrupt, truncated or not audio, or the path cannot be opened (the message
            gives the system's reason: permission denied, a symbolic link loop, a directory...).
        UnsupportedFormatError: A known format the decoder cannot read (MP4/AAC, WMA...).
        EmptyAudioError: No samples (or ``offset`` beyond the end).
        NonFiniteAudioError: NaN or infinite samples.
        InvalidSampleRateError: An implausible sample rate in the file.
        ConfigError: Bad arguments (negative offset, non-positive duration, implausible ``sr``).

    Example:
        >>> audio = load("clip.flac", sr=16000)  # doctest: +SKIP
    """
    if sr is not None:
        _check_sample_rate(sr, "target sample rate", exc=ConfigError)
    with _Opened(source, allow_truncated=allow_truncated) as f:
        f.seek_seconds(offset)
        data = f.read(_frames_for(duration, f.sf.samplerate), mono=mono)
        file_sr = int(f.sf.samplerate)
        name = f.name
    _check_samples(data, name)
    if data.ndim == 2 and data.shape[0] == 1:
        data = data[0]
    if sr is not None and sr != file_sr:
        data = resample(data, file_sr, sr)
        _check_samples(data, name)
    return Audio(data, sr or file_sr, name, float(offset))


def stream(
    source: AudioSource,
    block_s: float,
    sr: int | None = None,
    mono: bool = True,
    offset: float = 0.0,
    duration: float | None = None,
    *,
    allow_truncated: bool = False,
) -> Iterator[Audio]:
    """Yield consecutive blocks of a long source without loading it whole.

    Memory stays bounded by the block size whatever the file's length. Resampling is done by one continuous
    soxr stream, so the concatenated blocks equal a one-shot resample up to the resampler's precision, and each
    block's ``offset`` gives its start time in seconds.

    Args:
        source: A path, raw bytes, or a binary file object.
        block_s: Block length in seconds (of the output sample rate); the last block may be shorter.
        sr: Target sample rate; ``None`` keeps the file's own rate.
        mono: Average all channels into one.
        offset: Start at this time, in seconds.
        duration: Stop after this many seconds (``None``: at the end).
        allow_truncated: As :func:`load`: end the stream at the cut of a truncated file (with a warning)
            instead of raising.

    Yields:
        :class:`Audio` blocks.

    Raises:
        AudioError: As :func:`load`; a problem discovered mid-file is raised when that block is reached: a
            truncated file raises :class:`~audiovec.errors.AudioDecodeError` after the blocks before its cut.
    """
    if block_s <= 0:
        raise ConfigError(f"block_s must be > 0, got {block_s}")
    if sr is not None:
        _check_sample_rate(sr, "target sample rate", exc=ConfigError)
    with _Opened(source, allow_truncated=allow_truncated) as f:
        f.seek_seconds(offset)
        file_sr = int(f.sf.samplerate)
        out_sr = sr or file_sr
        remaining = _frames_for(duration, file_sr)
        in_block = max(1, round(block_s * file_sr))
        out_block = max(1, round(block_s * out_sr))
        channels = 1 if mono else int(f.sf.channels)
        rs = (
            soxr.ResampleStream(file_sr, out_sr, channels, dtype="float32", quality=_RESAMPLE_QUALITY)
            if out_sr != file_sr
            else None
        )
        pending: list[NDArray[np.float32]] = []
        pending_len = 0
        emitted = 0
        got_any = False
        while True:
            want = in_block if remaining < 0 else min(in_block, remaining)
            block = f.read(max(want, 0), mono=mono)
            last = block.shape[-1] < want or want == 0
            if remaining >= 0:
                remaining -= block.shape[-1]
            if block.shape[-1]:
                got_any = True
                if not np.isfinite(block).all():
                    t = (emitted / out_sr) + offset
                    raise NonFiniteAudioError(f"NaN or infinite samples in the block at {t:.3f}s", f.name)
            if rs is not None:
                x = block if block.ndim == 1 else np.ascontiguousarray(block.T)
                y = np.asarray(rs.resample_chunk(x, last=last), dtype=np.float32)
                block = y if y.ndim == 1 else np.ascontiguousarray(y.T)
            if block.ndim == 2 and block.shape[0] == 1:
                block = block[0]
            if block.shape[-1]:
                pending.append(block)
                pending_len += block.shape[-1]
            while pending_len >= out_block or (last and pending_len > 0):
                cat = np.concatenate(pending, axis=-1) if len(pending) > 1 else pending[0]
                take = min(out_block, cat.shape[-1])
                out, rest = cat[..., :take], cat[..., take:]
                pending = [rest] if rest.shape[-1] else []
                pending_len = rest.shape[-1]
                yield Audio(np.ascontiguousarray(out), out_sr, f.name, offset + emitted / out_sr)
                emitted += take
            if last:
                break
        if not got_any:
            raise EmptyAudioError("audio has zero samples", f.name)


def resample_blocks(blocks: Iterable[Audio], sample_rate: int) -> Iterator[Audio]:
    """Mix consecutive blocks down to mono and resample them to ``sample_rate`` with one continuous resampler.

    What every streaming embedder needs: the concatenated output equals a one-shot mix-down and resample of the
    whole signal (up to the resampler's precision), whatever the block sizes. The resampler's tail is flushed
    as a last block.

    Args:
        blocks: Consecutive :class:`Audio` blocks (any rate and channel count, the same for all blocks).
        sample_rate: Output rate.

    Yields:
        Mono float32 :class:`Audio` blocks at ``sample_rate`` (keeping each input block's source and offset).

    Raises:
        ConfigError: The blocks change sample rate.
        NonFiniteAudioError: A block contains NaN or Inf, before or after resampling (checked after, where both
            show; a non-finite sample may be reported with the next block, as the resampler delays its output).
        EmptyAudioError: There are no blocks.
    """
    rs: soxr.ResampleStream | None = None
    first_sr: int | None = None
    last_source: str | None = None
    for block in blocks:
        if first_sr is None:
            first_sr = block.sample_rate
            if first_sr != sample_rate:
                rs = soxr.ResampleStream(first_sr, sample_rate, 1, dtype="float32", quality=_RESAMPLE_QUALITY)
        elif block.sample_rate != first_sr:
            raise ConfigError(f"stream changes sample rate from {first_sr} to {block.sample_rate} Hz")
        x = to_mono(block.samples)
        if rs is not None:
            x = np.asarray(rs.resample_chunk(x, last=False), dtype=np.float32)
        last_source = block.source
        yield Audio(_finite_block(x, block.source), sample_rate, block.source, block.offset)
    if first_sr is None:
        raise EmptyAudioError("stream yielded no blocks")
    if rs is not None:
        tail = np.asarray(rs.resample_chunk(np.zeros(0, np.float32), last=True), dtype=np.float32)
        if len(tail):
            yield Audio(_finite_block(tail, last_source), sample_rate, last_source)


def _finite_block(x: NDArray[np.float32], source: str | None) -> NDArray[np.float32]:
    """``x`` (contiguous) once it is known to be finite; checked after resampling, which can overflow float32."""
    if not np.isfinite(x.sum(dtype=np.float64)):  # finite float32 values cannot overflow a float64 sum
        raise NonFiniteAudioError("stream block contains NaN or infinite samples (after resampling)", source)
    return np.ascontiguousarray(x)

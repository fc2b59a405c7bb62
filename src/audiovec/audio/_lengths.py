"""What a container says about its own length, so that a truncated file is told apart from a complete one.

The decoder (libsndfile) does not report a file that stops short: it decodes what is there. So
:mod:`audiovec.audio._io` compares where decoding stops with what the header declares, and this module reads
that declaration from the container's own bytes:

* WAV, RF64, W64 and AU declare the byte size of their sample data; AIFF declares its frame count.
* FLAC declares its frame count in STREAMINFO; MP3 in a Xing, Info or VBRI header, when it has one. For both,
  the decoder's own frame count is that declaration.
* An MP3 without such a header declares nothing, but every MPEG frame header gives the frame's length: a last
  frame that runs past the end of the file is a cut, and counting the frames (:func:`count_mpeg_samples`) shows
  when the decoder, which only estimates the length of such a file, stops short of it.
* Ogg (Vorbis, Opus) declares no total length, but a complete stream ends with a whole page that carries the
  end-of-stream mark: a file whose last page is cut, or lacks that mark, has lost its end.

:func:`read_declared_length` reads only headers and the last few KB; only :func:`count_mpeg_samples` reads a
whole file.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import IO

from audiovec.audio.formats import _id3_end, _is_mpeg_audio_frame

__all__ = ["TRUNCATION_TOLERANCE", "DeclaredLength", "count_mpeg_samples", "declared_frames", "read_declared_length"]

#: Samples per channel that decoding may fall short of the declared length before a file counts as truncated.
#: MP3 decoders drop the encoder's delay and padding and their own priming (up to about two MPEG frames of
#: 1,152 samples plus 529); a WAV whose last frame is cut loses less than one sample.
TRUNCATION_TOLERANCE = 4096

#: Sizes that streaming writers put in a header before the length is known: they declare nothing.
_UNKNOWN_SIZES = (0, 0xFFFFFFFF)
#: Bytes per sample of the uncompressed libsndfile subtypes.
_SAMPLE_BYTES = {
    "PCM_S8": 1,
    "PCM_U8": 1,
    "PCM_16": 2,
    "PCM_24": 3,
    "PCM_32": 4,
    "FLOAT": 4,
    "DOUBLE": 8,
    "ULAW": 1,
    "ALAW": 1,
}
_W64_RIFF = bytes.fromhex("726966662e91cf11a5d628db04c10000")
_W64_DATA = bytes.fromhex("64617461f3acd3118cd100c04f8edb8a")
#: Largest Ogg page: a 27-byte header, 255 lacing values and 255 segments of 255 bytes.
_OGG_MAX_PAGE = 27 + 255 + 255 * 255
_OGG_CAPTURE = b"OggS\x00"
_OGG_END_OF_STREAM = 0x04
_MAX_CHUNKS = 1000


@dataclass(frozen=True)
class DeclaredLength:
    """A container's statement of its length.

    Attributes:
        where: The part of the file that declares it, for messages (``"its WAV data chunk"``).
        frames: Frames (samples per channel) declared outright (AIFF's COMM chunk).
        data_bytes: Declared byte size of the sample data (WAV, RF64, W64, AU).
        decoder_count: The decoder's own frame count is the header's figure (FLAC, MP3 with a Xing header).
        cut: Why the container itself shows that its end is missing (Ogg, MP3), or ``None``.
        mpeg_start: Where the first frame of an MP3 without a length header starts: nothing declares its length,
            and the decoder only estimates it, so its frames are counted (:func:`count_mpeg_samples`).
    """

    where: str
    frames: int | None = None
    data_bytes: int | None = None
    decoder_count: bool = False
    cut: str | None = None
    mpeg_start: int | None = None


class _Reader:
    """Reads byte ranges of a seekable file object, relative to where the audio starts."""

    def __init__(self, fileobj: IO[bytes], start: int) -> None:
        self.fileobj = fileobj
        self.start = start
        self.size = fileobj.seek(0, 2) - start

    def at(self, offset: int, n: int) -> bytes:
        if offset < 0 or offset >= self.size:
            return b""
        self.fileobj.seek(self.start + offset)
        return self.fileobj.read(n)


def read_declared_length(fileobj: IO[bytes], start: int, head: bytes) -> DeclaredLength | None:
    """What the container starting at ``start`` in ``fileobj`` declares about its length.

    Args:
        fileobj: A seekable binary file object; its position is left anywhere (the caller restores it).
        start: Where the audio starts in ``fileobj``.
        head: The first bytes of the audio (a few KB), already read.

    Returns:
        The declaration, or ``None`` when the container declares nothing usable.

    Raises:
        OSError: The file object cannot be read or sought.
    """
    r = _Reader(fileobj, start)
    if len(head) >= 12 and head[:4] in (b"RIFF", b"RIFX", b"RF64") and head[8:12] == b"WAVE":
        return _riff(r, big_endian=head[:4] == b"RIFX", rf64=head[:4] == b"RF64")
    if head.startswith(_W64_RIFF):
        return _w64(r)
    if len(head) >= 12 and head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return _aiff(r)
    if head.startswith(b".snd") and len(head) >= 12:
        offset, size = struct.unpack(">II", head[4:12])
        return _data_length("its AU header", offset, size, r.size)
    if head.startswith(b"OggS"):
        return _ogg(r)
    id3 = _id3_end(head)
    if head.startswith(b"fLaC") or (id3 and head[id3 : id3 + 4] == b"fLaC"):
        return DeclaredLength("its FLAC STREAMINFO block", decoder_count=True)
    return _mp3(r, id3)


def declared_frames(declared: DeclaredLength, decoder_frames: int, subtype: str, channels: int) -> int | None:
    """The frames a declaration amounts to, given what the decoder reports about the opened file.

    Args:
        declared: What :func:`read_declared_length` found.
        decoder_frames: The decoder's frame count (for WAV and the like, the frames actually present).
        subtype: The decoder's sample encoding (``"PCM_16"``...).
        channels: Number of channels.

    Returns:
        The declared number of frames, or ``None`` when it cannot be told.
    """
    if declared.frames is not None:
        return declared.frames
    if declared.decoder_count:
        return decoder_frames if decoder_frames > 0 else None
    if declared.data_bytes is None:
        return None
    width = _SAMPLE_BYTES.get(subtype)
    return declared.data_bytes // (width * channels) if width and channels > 0 else None


# ------------------------------------------------------------------------------------------ containers
def _data_length(where: str, data_start: int, data_bytes: int, size: int) -> DeclaredLength | None:
    """A declared data size, kept only when it claims more bytes than the file holds (else nothing is cut)."""
    if data_bytes in _UNKNOWN_SIZES or data_start + data_bytes <= size:
        return None
    return DeclaredLength(where, data_bytes=data_bytes)


def _riff(r: _Reader, *, big_endian: bool, rf64: bool) -> DeclaredLength | None:
    fmt = ">I" if big_endian else "<I"
    pos, ds64_data = 12, None
    for _ in range(_MAX_CHUNKS):
        header = r.at(pos, 8)
        if len(header) < 8:
            return None
        cid, size = header[:4], struct.unpack(fmt, header[4:])[0]
        if cid == b"ds64" and rf64:
            body = r.at(pos + 8, 16)
            ds64_data = struct.unpack("<Q", body[8:16])[0] if len(body) == 16 else None
        if cid == b"data":
            if rf64 and size == 0xFFFFFFFF and ds64_data is not None:
                size = ds64_data
            return _data_length("its WAV data chunk", pos + 8, size, r.size)
        pos += 8 + size + (size & 1)
    return None


def _w64(r: _Reader) -> DeclaredLength | None:
    pos = 40  # the riff GUID, a 64-bit size and the wave GUID
    for _ in range(_MAX_CHUNKS):
        header = r.at(pos, 24)
        if len(header) < 24:
            return None
        guid, size = header[:16], struct.unpack("<Q", header[16:])[0]
        if guid == _W64_DATA:
            return _data_length("its W64 data chunk", pos + 24, size - 24, r.size)
        if size < 24:
            return None
        pos += size + (-size % 8)
    return None


def _aiff(r: _Reader) -> DeclaredLength | None:
    pos = 12
    for _ in range(_MAX_CHUNKS):
        header = r.at(pos, 8)
        if len(header) < 8:
            return None
        cid, size = header[:4], struct.unpack(">I", header[4:])[0]
        if cid == b"COMM":
            body = r.at(pos + 8, 6)
            return (
                DeclaredLength("its AIFF COMM chunk", frames=struct.unpack(">I", body[2:6])[0])
                if len(body) == 6
                else None
            )
        pos += 8 + size + (size & 1)
    return None


def _mp3(r: _Reader, id3: int) -> DeclaredLength | None:
    """An MP3 declares its length in a Xing/Info (LAME, FFmpeg) or VBRI (Fraunhofer) header, if it has one.

    Without one, nothing declares the length, but a file cut at a random byte almost always ends inside an MPEG
    frame, whose header gives its length: a last frame that runs past the end of the audio is a cut.
    """
    frame = r.at(id3, 200)
    length = _mpeg_frame_length(frame, 0)
    if length is None:
        return None
    if (frame[1] >> 1) & 3 == 1:  # layer III
        mpeg1 = (frame[1] >> 3) & 3 == 3
        mono = frame[3] >> 6 == 3
        tag = 4 + ((17 if mono else 32) if mpeg1 else (9 if mono else 17))  # after the side information
        if frame[tag : tag + 4] in (b"Xing", b"Info") and len(frame) >= tag + 8:
            if struct.unpack(">I", frame[tag + 4 : tag + 8])[0] & 1:  # the frame count is present
                return DeclaredLength(f"its {frame[tag : tag + 4].decode()} header", decoder_count=True)
        elif frame[36:40] == b"VBRI":
            return DeclaredLength("its VBRI header", decoder_count=True)
    cut = _mpeg_tail_problem(r, id3, frame[:4])
    return DeclaredLength("an MP3 without a Xing, Info or VBRI header", cut=cut, mpeg_start=id3)


#: Bitrates in kbit/s by (MPEG-1?, layer), for bitrate indexes 1 to 14.
_MPEG_BITRATES = {
    (True, 3): (32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (True, 2): (32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (True, 1): (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (False, 3): (32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (False, 2): (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (False, 1): (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
#: Sample rates by the version bits (3: MPEG-1, 2: MPEG-2, 0: MPEG-2.5).
_MPEG_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}
#: The longest MPEG audio frame (layer II at 384 kbit/s and 32 kHz, or layer III at 160 kbit/s and 8 kHz).
_MPEG_MAX_FRAME = 2881
#: How much of the end of an MP3 is searched for its last frames.
_MPEG_TAIL = 16384
#: How much of an MP3 is read at a time when its frames are counted.
_MPEG_BLOCK = 1 << 20


def _mpeg_frame_length(data: bytes, pos: int) -> int | None:
    """Length in bytes of the MPEG audio frame whose header is at ``pos``, or ``None`` (no header, free format)."""
    if not _is_mpeg_audio_frame(data, pos):
        return None
    version, layer = (data[pos + 1] >> 3) & 3, (data[pos + 1] >> 1) & 3
    index, padding = data[pos + 2] >> 4, (data[pos + 2] >> 1) & 1
    if index == 0:
        return None
    bitrate = _MPEG_BITRATES[version == 3, layer][index - 1] * 1000
    rate = _MPEG_RATES[version][(data[pos + 2] >> 2) & 3]
    if layer == 3:
        return (12 * bitrate // rate + padding) * 4
    return (144 if version == 3 or layer == 2 else 72) * bitrate // rate + padding


def _next_frame(tail: bytes, pos: int, first: bytes) -> int | None:
    """Where the frame at ``pos`` ends, when a frame of the same stream as ``first`` starts there."""
    length = _mpeg_frame_length(tail, pos)
    if length is None or (tail[pos + 1] ^ first[1]) & 0xFE or (tail[pos + 2] ^ first[2]) & 0x0C:
        return None  # not a frame, or one of another version, layer or sample rate
    return pos + length


def _first_chained_frame(tail: bytes, first: bytes, start: int = 0) -> int | None:
    """The first frame from ``start`` followed at once by another: sync bytes inside a frame are never taken for one."""
    pos = tail.find(b"\xff", start)
    while pos >= 0:
        end = _next_frame(tail, pos, first)
        if end is not None and end < len(tail) and _next_frame(tail, end, first) is not None:
            return pos
        pos = tail.find(b"\xff", pos + 1)
    return None


def _samples_per_frame(header: bytes) -> int:
    layer, mpeg1 = (header[1] >> 1) & 3, (header[1] >> 3) & 3 == 3
    return 384 if layer == 3 else 1152 if layer == 2 or mpeg1 else 576


def count_mpeg_samples(fileobj: IO[bytes], start: int, mpeg_start: int) -> int | None:
    """Samples per channel in the MPEG frames of an MP3, counted by walking every frame header.

    Reads the file in blocks of 1 MiB (about a second per hour of audio). Bytes between frames that are not a
    frame of the same stream are skipped up to the next two chained frames.

    Args:
        fileobj: A seekable binary file object; its position is left anywhere (the caller restores it).
        start: Where the audio starts in ``fileobj``.
        mpeg_start: Where its first frame starts, relative to ``start``.

    Returns:
        The count, or ``None`` when the first frame cannot be read.

    Raises:
        OSError: The file object cannot be read or sought.
    """
    r = _Reader(fileobj, start)
    first = r.at(mpeg_start, 4)
    if _mpeg_frame_length(first, 0) is None:
        return None
    end, pos, frames = _audio_end(r), mpeg_start, 0
    while True:
        block = r.at(pos, min(_MPEG_BLOCK, end - pos))
        i = 0
        while i + 4 <= len(block):
            following = _next_frame(block, i, first)
            if following is None:  # bytes that are not a frame: skip to the next chained frames
                resync = _first_chained_frame(block, first, i + 1)
                if resync is None:
                    i = max(i + 1, len(block) - 2 * _MPEG_MAX_FRAME)
                    break
                i = resync
            elif following > len(block):
                break  # the frame goes on in the next block (or is cut, in the last)
            else:
                frames += 1
                i = following
        if pos + len(block) >= end:
            break
        pos += max(i, 1)
    return frames * _samples_per_frame(first)


def _mpeg_tail_problem(r: _Reader, id3: int, first: bytes) -> str | None:
    """Why the last MPEG frame shows a cut (it runs past the end of the audio), or ``None``."""
    end = _audio_end(r)
    start = max(id3, end - _MPEG_TAIL)
    tail = r.at(start, end - start)
    pos = _first_chained_frame(tail, first)
    while pos is not None:
        following = _next_frame(tail, pos, first)
        if following is None or following == len(tail):
            return None
        if following > len(tail):
            return "its last MPEG audio frame is cut short (the file ends inside it)"
        pos = following if _next_frame(tail, following, first) is not None else None  # else: junk, not a cut
    return None


def _audio_end(r: _Reader) -> int:
    """Where an MP3's frames end: before a trailing ID3v1 tag and APEv2 tag, if any."""
    end = r.size
    if r.at(end - 128, 3) == b"TAG":
        end -= 128
    footer = r.at(end - 32, 32)
    if len(footer) == 32 and footer.startswith(b"APETAGEX"):
        size, flags = struct.unpack("<II", footer[12:16] + footer[20:24])
        end -= size + (32 if flags & 0x80000000 else 0)
    return max(end, 0)


def _ogg(r: _Reader) -> DeclaredLength | None:
    """Check the end of an Ogg file: a whole last page carrying the end-of-stream mark."""
    window = min(r.size, 2 * _OGG_MAX_PAGE + 27)
    cut = _ogg_tail_problem(r.at(r.size - window, window), at_file_start=window == r.size)
    return DeclaredLength("Ogg", cut=cut) if cut else None


def _ogg_page_end(tail: bytes, pos: int) -> int | None:
    """Where the page starting at ``pos`` ends, or ``None`` when its header is cut."""
    if pos + 27 > len(tail):
        return None
    segments = tail[pos + 26]
    if pos + 27 + segments > len(tail):
        return None
    return pos + 27 + segments + sum(tail[pos + 27 : pos + 27 + segments])


def _ogg_tail_problem(tail: bytes, *, at_file_start: bool) -> str | None:
    """Why the last bytes of an Ogg file show a cut, or ``None``.

    The walk starts at a page it can trust (the file's first byte, or a page followed at once by another page),
    so that the bytes ``OggS`` inside compressed data are never taken for a page.
    """
    pos = 0 if at_file_start and tail.startswith(_OGG_CAPTURE) else _first_chained_page(tail)
    if pos is None:
        return None
    while True:
        end = _ogg_page_end(tail, pos)
        if end is None or end > len(tail):
            return "its last Ogg page is cut short (a complete Ogg stream ends with a whole page marked as its end)"
        if tail.startswith(_OGG_CAPTURE, end):
            pos = end
            continue
        following = tail.find(_OGG_CAPTURE, end)
        chained = _first_chained_page(tail, following) if following >= 0 else None
        if chained is not None:  # damaged bytes between pages: go on from the next page
            pos = chained
            continue
        if tail[pos + 5] & _OGG_END_OF_STREAM:
            return None
        return "its last Ogg page does not carry the end-of-stream mark (a complete Ogg stream ends with one)"


def _first_chained_page(tail: bytes, start: int = 0) -> int | None:
    """The first position from ``start`` where a page starts and is followed by another page (or the end)."""
    pos = tail.find(_OGG_CAPTURE, start)
    while pos >= 0:
        end = _ogg_page_end(tail, pos)
        if end is not None and (end == len(tail) or tail.startswith(_OGG_CAPTURE, end)):
            return pos
        pos = tail.find(_OGG_CAPTURE, pos + 1)
    return None

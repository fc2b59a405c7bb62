"""Audio-format facts in one place: what the decoder reads, how containers are recognised, what is refused.

Decoding goes through libsndfile, which reads WAV (also RF64/W64), FLAC, OGG (Vorbis, Opus), MP3, AIFF, AU and CAF.
It does **not** read MP4/M4A (AAC, ALAC), raw AAC (ADTS), WMA, WebM/Matroska, AMR, WavPack or Monkey's Audio:
those are recognised (from their bytes, or their extension as a last resort) so that errors say "unsupported",
not "corrupt".

* :data:`FORMATS` — every readable container: name, media type and the extension audiovec stores it under.
* :data:`AUDIO_EXTENSIONS` — the file extensions picked up when a folder is scanned (readable containers only).
* :func:`sniff` — the container of some bytes, from their magic numbers (what the search service trusts).
* :func:`describe_unreadable` — the name of a container the decoder cannot read, for error messages.

Example:
    >>> from audiovec.audio.formats import sniff
    >>> sniff(b"fLaC" + bytes(64)).name
    'flac'
    >>> ".m4a" in AUDIO_EXTENSIONS
    False
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from audiovec.errors import UnsupportedUploadError

__all__ = [
    "AUDIO_EXTENSIONS",
    "FORMATS",
    "UNREADABLE_EXTENSIONS",
    "AudioFormat",
    "describe_unreadable",
    "sniff",
]


@dataclass(frozen=True)
class AudioFormat:
    """A container the decoder reads.

    Attributes:
        name: Short name (``"wav"``, ``"flac"``...).
        media_type: The MIME type (what the service serves stored files back with).
        extension: The extension audiovec gives a stored file of this format.
        extensions: Every file extension of this format, as found in the wild.
    """

    name: str
    media_type: str
    extension: str
    extensions: tuple[str, ...]


WAV = AudioFormat("wav", "audio/wav", ".wav", (".wav", ".wave", ".rf64"))
FLAC = AudioFormat("flac", "audio/flac", ".flac", (".flac",))
OGG = AudioFormat("ogg", "audio/ogg", ".ogg", (".ogg", ".oga", ".opus"))
MP3 = AudioFormat("mp3", "audio/mpeg", ".mp3", (".mp3",))
AIFF = AudioFormat("aiff", "audio/aiff", ".aiff", (".aif", ".aiff", ".aifc"))
AU = AudioFormat("au", "audio/basic", ".au", (".au", ".snd"))
CAF = AudioFormat("caf", "audio/x-caf", ".caf", (".caf",))
W64 = AudioFormat("w64", "audio/x-w64", ".w64", (".w64",))

#: Every readable container, by name.
FORMATS: dict[str, AudioFormat] = {f.name: f for f in (WAV, FLAC, OGG, MP3, AIFF, AU, CAF, W64)}

#: File extensions picked up when a folder is scanned: the readable containers' (lower case, with the dot).
AUDIO_EXTENSIONS: frozenset[str] = frozenset(e for f in FORMATS.values() for e in f.extensions)

#: Extensions of audio containers the decoder cannot read, with their names.
UNREADABLE_EXTENSIONS: dict[str, str] = {
    ".m4a": "MP4/M4A (AAC or ALAC)",
    ".mp4": "MP4/M4A (AAC or ALAC)",
    ".aac": "AAC (ADTS)",
    ".wma": "ASF/WMA",
    ".webm": "Matroska/WebM",
    ".mkv": "Matroska/WebM",
    ".amr": "AMR",
    ".ape": "Monkey's Audio",
    ".wv": "WavPack",
    ".ac3": "AC-3",
}

# Magic numbers of containers the decoder cannot read: (bytes, offset, name, is_audio).
_OTHER_SIGNATURES: tuple[tuple[bytes, int, str, bool], ...] = (
    (b"ftyp", 4, "MP4/M4A", True),
    (b"\x1a\x45\xdf\xa3", 0, "Matroska/WebM", True),
    (b"\x30\x26\xb2\x75\x8e\x66\xcf\x11", 0, "ASF/WMA", True),
    (b"#!AMR", 0, "AMR", True),
    (b"wvpk", 0, "WavPack", True),
    (b"MAC ", 0, "Monkey's Audio", True),
    (b"%PDF", 0, "PDF", False),
    (b"\x89PNG", 0, "PNG image", False),
    (b"\xff\xd8\xff", 0, "JPEG image", False),
    (b"GIF8", 0, "GIF image", False),
    (b"PK\x03\x04", 0, "ZIP archive", False),
    (b"\x7fELF", 0, "ELF executable", False),
    (b"MThd", 0, "MIDI file", False),
)

_W64_GUID = bytes.fromhex("726966662e91cf11a5d628db04c10000")


def _id3_end(head: bytes) -> int:
    """Length of a leading ID3v2 tag (0 when there is none)."""
    if len(head) >= 10 and head[:3] == b"ID3" and all(b < 0x80 for b in head[6:10]):
        size = (head[6] << 21) | (head[7] << 14) | (head[8] << 7) | head[9]
        footer = 10 if head[5] & 0x10 else 0
        return 10 + size + footer
    return 0


def _is_mpeg_audio_frame(head: bytes, pos: int) -> bool:
    if pos + 4 > len(head):
        return False
    b1, b2 = head[pos + 1], head[pos + 2]
    return (
        head[pos] == 0xFF
        and (b1 & 0xE0) == 0xE0  # frame sync
        and (b1 & 0x18) != 0x08  # MPEG version not reserved
        and (b1 & 0x06) != 0x00  # layer I/II/III (00 is AAC's ADTS)
        and (b2 & 0xF0) != 0xF0  # bitrate index not "bad"
        and (b2 & 0x0C) != 0x0C  # sample-rate index not reserved
    )


def _is_adts(head: bytes) -> bool:
    return len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xF6) == 0xF0


def sniff(data: bytes) -> AudioFormat:
    """The container of ``data``, from its magic bytes (never from a name or a declared content type).

    Args:
        data: The whole file, or at least its head (a leading ID3 tag, which may hold cover art, is skipped).

    Raises:
        UnsupportedUploadError: Not a container the decoder reads; ``what`` names what the bytes look like
            (an unreadable audio container, a document, an image...) when recognised.
    """
    head = bytes(data)
    if len(head) >= 12 and head[:4] in (b"RIFF", b"RIFX", b"RF64") and head[8:12] == b"WAVE":
        return WAV
    if head.startswith(_W64_GUID):
        return W64
    if len(head) >= 12 and head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return AIFF
    if head.startswith(b".snd"):
        return AU
    if head.startswith(b"caff"):
        return CAF
    if head.startswith(b"OggS"):
        return OGG
    pos = _id3_end(head)
    if head.startswith(b"fLaC") or (pos and head[pos : pos + 4] == b"fLaC"):
        return FLAC
    if _is_mpeg_audio_frame(head, pos):
        return MP3
    what = _recognise(head[:64], audio_only=False)
    message = f"{what} is not a supported audio format" if what else "the upload is not a recognised audio file"
    raise UnsupportedUploadError(message, what=what)


def _recognise(head: bytes, *, audio_only: bool) -> str | None:
    for magic, offset, name, is_audio in _OTHER_SIGNATURES:
        if (is_audio or not audio_only) and head[offset : offset + len(magic)] == magic:
            return name
    if _is_adts(head):
        return "AAC (ADTS)"
    if not audio_only and (head[:5].lower() in (b"<!doc", b"<html", b"<?xml") or head[:1] in (b"{", b"[")):
        return "a text document"
    return None


def describe_unreadable(head: bytes, name: str = "") -> str | None:
    """Name an *audio* container the decoder cannot read, from its first bytes or, failing that, its extension.

    Args:
        head: The first bytes of the data (64 are enough).
        name: The file name, if any (its extension is the last resort).

    Returns:
        A name such as ``"MP4/M4A (AAC or ALAC)"``, or ``None`` when the data is not a known unreadable format.
    """
    what = _recognise(head[:64], audio_only=True)
    if what == "MP4/M4A":
        return UNREADABLE_EXTENSIONS[".m4a"]
    return what or UNREADABLE_EXTENSIONS.get(Path(name).suffix.lower())

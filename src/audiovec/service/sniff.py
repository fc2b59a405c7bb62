"""Recognise an uploaded file's audio format from its bytes, never from its name or declared content type."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AudioKind", "UnsupportedUpload", "sniff"]


@dataclass(frozen=True)
class AudioKind:
    """A recognised container.

    Attributes:
        name: Short name (``"wav"``, ``"flac"``...).
        media_type: The MIME type the service serves it back with.
        extension: File extension used in the service's own storage.
    """

    name: str
    media_type: str
    extension: str


WAV = AudioKind("wav", "audio/wav", ".wav")
FLAC = AudioKind("flac", "audio/flac", ".flac")
OGG = AudioKind("ogg", "audio/ogg", ".ogg")
MP3 = AudioKind("mp3", "audio/mpeg", ".mp3")
AIFF = AudioKind("aiff", "audio/aiff", ".aiff")
AU = AudioKind("au", "audio/basic", ".au")
CAF = AudioKind("caf", "audio/x-caf", ".caf")
W64 = AudioKind("w64", "audio/x-w64", ".w64")

KINDS = {k.name: k for k in (WAV, FLAC, OGG, MP3, AIFF, AU, CAF, W64)}

_W64_GUID = bytes.fromhex("726966662e91cf11a5d628db04c10000")


class UnsupportedUpload(ValueError):
    """The bytes are not a supported audio container; ``what`` names what they look like, when known."""

    def __init__(self, what: str | None) -> None:
        self.what = what
        super().__init__(
            f"{what} is not a supported audio format" if what else "the upload is not a recognised audio file"
        )


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


def sniff(data: bytes) -> AudioKind:
    """The container of ``data``, from its magic bytes.

    Args:
        data: The whole file (a leading ID3 tag, which may hold cover art, is skipped).

    Raises:
        UnsupportedUpload: Not a container the decoder reads; names a recognised non-audio or unsupported type.
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
    if pos and head[pos : pos + 4] == b"fLaC":
        return FLAC
    if head.startswith(b"fLaC"):
        return FLAC
    if _is_mpeg_audio_frame(head, pos):
        return MP3
    raise UnsupportedUpload(_describe_other(head[:64]))


def _describe_other(head: bytes) -> str | None:
    table: list[tuple[bytes, int, str]] = [
        (b"ftyp", 4, "MP4/M4A"),
        (b"\x1a\x45\xdf\xa3", 0, "Matroska/WebM"),
        (b"\x30\x26\xb2\x75\x8e\x66\xcf\x11", 0, "ASF/WMA"),
        (b"#!AMR", 0, "AMR"),
        (b"wvpk", 0, "WavPack"),
        (b"MAC ", 0, "Monkey's Audio"),
        (b"%PDF", 0, "PDF"),
        (b"\x89PNG", 0, "PNG image"),
        (b"\xff\xd8\xff", 0, "JPEG image"),
        (b"GIF8", 0, "GIF image"),
        (b"PK\x03\x04", 0, "ZIP archive"),
        (b"\x7fELF", 0, "ELF executable"),
        (b"MThd", 0, "MIDI file"),
    ]
    for magic, offset, name in table:
        if head[offset : offset + len(magic)] == magic:
            return name
    if len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xF6) == 0xF0:
        return "AAC (ADTS)"
    if head[:5].lower() in (b"<!doc", b"<html", b"<?xml") or head[:1] in (b"{", b"["):
        return "a text document"
    return None

"""Audio-format facts: containers recognised from their bytes, one list of readable extensions."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf

from audiovec.audio import AUDIO_EXTENSIONS, load
from audiovec.audio.formats import FORMATS, UNREADABLE_EXTENSIONS, describe_unreadable, sniff
from audiovec.errors import UnsupportedFormatError, UnsupportedUploadError


def encoded(x: np.ndarray, sr: int = 16000, fmt: str = "WAV", subtype: str = "PCM_16") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, sr, format=fmt, subtype=subtype)
    return buf.getvalue()


@pytest.fixture(scope="module")
def tone() -> np.ndarray:
    t = np.arange(16000) / 16000
    return (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def test_sniff_recognises_containers_from_bytes_not_names(tone):
    assert sniff(encoded(tone)).name == "wav"
    assert sniff(encoded(tone, fmt="FLAC")).name == "flac"
    assert sniff(encoded(tone, fmt="OGG", subtype="VORBIS")).name == "ogg"
    assert sniff(encoded(tone, fmt="AIFF")).name == "aiff"
    assert sniff(encoded(tone, fmt="MP3", subtype="MPEG_LAYER_III")).name == "mp3"
    id3 = b"ID3\x04\x00\x00\x00\x00\x00\x0a" + b"\x00" * 10  # a 10-byte ID3v2 tag, then FLAC
    assert sniff(id3 + encoded(tone, fmt="FLAC")).name == "flac"
    for data, what in [
        (b"%PDF-1.7 ...", "PDF"),
        (b"\x00\x00\x00\x20ftypM4A " + b"\x00" * 20, "MP4/M4A"),
        (b"\x1a\x45\xdf\xa3" + b"\x00" * 20, "Matroska/WebM"),
        (b"\x7fELF\x02\x01", "ELF executable"),
        (b"<html><body>", "a text document"),
        (b"\x00" * 64, None),
    ]:
        with pytest.raises(UnsupportedUploadError) as info:
            sniff(data)
        assert info.value.what == what


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_every_sniffable_format_decodes(tone, name):
    """What the sniffer accepts, the decoder reads (libsndfile formats written here, then sniffed and decoded)."""
    writable = {"wav": ("WAV", "PCM_16"), "flac": ("FLAC", "PCM_16"), "ogg": ("OGG", "VORBIS"),
                "mp3": ("MP3", "MPEG_LAYER_III"), "aiff": ("AIFF", "PCM_16"), "au": ("AU", "PCM_16"),
                "caf": ("CAF", "PCM_16"), "w64": ("W64", "PCM_16")}  # fmt: skip
    fmt, subtype = writable[name]
    data = encoded(tone, fmt=fmt, subtype=subtype)
    assert sniff(data).name == name
    audio = load(data)
    assert audio.duration == pytest.approx(1.0, abs=0.06)


def test_extension_lists_agree():
    """Folder scans pick up readable containers only; every readable format's extensions are in the list."""
    for fmt in FORMATS.values():
        assert fmt.extension in fmt.extensions
        assert set(fmt.extensions) <= AUDIO_EXTENSIONS
    assert not AUDIO_EXTENSIONS & set(UNREADABLE_EXTENSIONS)
    assert ".m4a" not in AUDIO_EXTENSIONS and ".aac" not in AUDIO_EXTENSIONS


def test_unreadable_containers_are_named_not_called_corrupt(tmp_path):
    assert describe_unreadable(b"\x00\x00\x00\x20ftypM4A ") == "MP4/M4A (AAC or ALAC)"
    assert describe_unreadable(b"\x00" * 16, "song.wma") == "ASF/WMA"
    assert describe_unreadable(b"%PDF-1.4") is None  # not audio: the decoder calls it undecodable
    path = tmp_path / "clip.m4a"
    path.write_bytes(b"\x00\x00\x00\x20ftypM4A " + b"\x00" * 200)
    with pytest.raises(UnsupportedFormatError, match="MP4/M4A"):
        load(path)

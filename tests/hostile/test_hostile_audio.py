"""Hostile audio input: every file that is cut, lies in its header, is not audio or cannot be opened.

Each case must end in a typed :class:`audiovec.errors.AudioError` subclass whose message names the source and
says what is wrong, never in a bare exception and never in a silently short decode. Every file is generated
here (a few seconds of noisy tone, encoded by libsndfile), so no third-party audio is needed.
"""

from __future__ import annotations

import errno
import functools
import io
import logging
import os
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audiovec import info, load, stream
from audiovec.audio import _io
from audiovec.audio._lengths import _mpeg_frame_length
from audiovec.errors import (
    AudioDecodeError,
    AudioError,
    AudioFileNotFoundError,
    EmptyAudioError,
    InvalidSampleRateError,
    NonFiniteAudioError,
    UnsupportedFormatError,
)

SECONDS = 6.0


@functools.cache
def encoded(fmt: str, subtype: str, sr: int = 16000, channels: int = 1, seconds: float = SECONDS) -> bytes:
    """A noisy 440 Hz tone (noise keeps the codecs from shrinking it to nothing), encoded by libsndfile."""
    t = np.arange(round(sr * seconds)) / sr
    x = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * np.random.default_rng(0).standard_normal(len(t))
    data = np.stack([x] * channels, axis=1) if channels > 1 else x
    buf = io.BytesIO()
    sf.write(buf, data.astype(np.float32), sr, format=fmt, subtype=subtype)
    return buf.getvalue()


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def expect(exc: type[AudioError], source: object, *fragments: str, loader: Callable[..., object] = load) -> AudioError:
    """Load ``source`` and check the typed error, that it names a path source, and the message fragments."""
    with pytest.raises(AudioError) as caught:
        loader(source)
    err = caught.value
    assert type(err) is exc, f"expected {exc.__name__}, got {type(err).__name__}: {err}"
    if isinstance(source, Path):
        assert str(source) in str(err), "the message must name the source"
    for fragment in fragments:
        assert fragment in str(err), f"{fragment!r} not in {str(err)!r}"
    return err


def drain(source: object, **kwargs: object) -> float:
    """Stream ``source`` to the end; the seconds yielded."""
    return sum(block.duration for block in stream(source, block_s=1.0, **kwargs))  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------- truncation
#: (name, libsndfile format, subtype, sample rate, where the header declares the length)
CUT_CASES = [
    ("mp3", "MP3", "MPEG_LAYER_III", 16000, "its Xing header declares 6.000 s"),
    ("wav", "WAV", "PCM_16", 16000, "its WAV data chunk declares 6.000 s"),
    ("float.wav", "WAV", "FLOAT", 16000, "its WAV data chunk declares 6.000 s"),
    ("stereo.wav", "WAV", "PCM_24", 16000, "its WAV data chunk declares 6.000 s"),
    ("rf64", "RF64", "PCM_16", 16000, "its WAV data chunk declares 6.000 s"),
    ("w64", "W64", "PCM_16", 16000, "its W64 data chunk declares 6.000 s"),
    ("aiff", "AIFF", "PCM_16", 16000, "its AIFF COMM chunk declares 6.000 s"),
    ("au", "AU", "PCM_16", 16000, "its AU header declares 6.000 s"),
    ("ogg", "OGG", "VORBIS", 16000, "its last Ogg page is cut short"),
    ("opus", "OGG", "OPUS", 48000, "its last Ogg page is cut short"),
]


def _cut_file(tmp_path: Path, name: str, fmt: str, subtype: str, sr: int) -> tuple[Path, Path]:
    channels = 2 if name.startswith("stereo") else 1
    data = encoded(fmt, subtype, sr, channels)
    return write(tmp_path, f"whole.{name}", data), write(tmp_path, f"half.{name}", data[: len(data) // 2])


@pytest.mark.parametrize(("name", "fmt", "subtype", "sr", "declares"), CUT_CASES, ids=[c[0] for c in CUT_CASES])
def test_a_file_cut_in_half_raises_and_names_both_durations(tmp_path, name, fmt, subtype, sr, declares):
    whole, half = _cut_file(tmp_path, name, fmt, subtype, sr)
    assert abs(load(whole).duration - SECONDS) < 0.01  # the same rule passes the complete file
    err = expect(AudioDecodeError, half, "truncated", declares, "allow_truncated=True")
    kept = load(half, allow_truncated=True)
    assert 0 < kept.duration < SECONDS * 0.75
    assert f"the audio ends at {kept.duration:.3f} s" in str(err)


@pytest.mark.parametrize(("name", "fmt", "subtype", "sr", "declares"), CUT_CASES, ids=[c[0] for c in CUT_CASES])
def test_streaming_a_cut_file_raises_when_it_reaches_the_cut(tmp_path, name, fmt, subtype, sr, declares):
    whole, half = _cut_file(tmp_path, name, fmt, subtype, sr)
    assert abs(drain(whole) - SECONDS) < 0.01
    blocks = stream(half, block_s=0.25, sr=16000)
    first = next(blocks)  # the intact part is delivered first
    assert first.duration == 0.25
    with pytest.raises(AudioDecodeError, match="truncated") as caught:
        list(blocks)
    assert str(half) in str(caught.value) and declares in str(caught.value)
    assert 0 < drain(half, allow_truncated=True) < SECONDS * 0.75


def test_allow_truncated_keeps_the_decoded_part_and_logs_a_warning(tmp_path, caplog):
    _, half = _cut_file(tmp_path, "mp3", "MP3", "MPEG_LAYER_III", 16000)
    with caplog.at_level(logging.WARNING, logger="audiovec.audio"):
        kept = load(half, allow_truncated=True)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert str(half) in warnings[0].getMessage() and "truncated" in warnings[0].getMessage()
    # the decoded part is the start of the whole file's audio, not noise
    whole = load(encoded("MP3", "MPEG_LAYER_III"))
    n = kept.num_samples - 2000
    assert np.allclose(kept.samples[:n], whole.samples[:n], atol=1e-4)


def test_a_window_inside_the_intact_part_of_a_cut_file_still_loads(tmp_path):
    _, half = _cut_file(tmp_path, "wav", "WAV", "PCM_16", 16000)
    assert load(half, offset=0.5, duration=1.0).duration == 1.0
    assert drain(half, duration=2.0) == 2.0
    # an offset past the cut (but inside the declared length) is the truncation, not "past the end"
    expect(AudioDecodeError, half, "truncated", loader=lambda s: load(s, offset=4.0))
    _, mp3 = _cut_file(tmp_path, "mp3", "MP3", "MPEG_LAYER_III", 16000)
    expect(AudioDecodeError, mp3, "truncated", "the audio ends before 5.000 s", loader=lambda s: load(s, offset=5.0))
    with pytest.raises(EmptyAudioError, match="past the end"):
        load(half, offset=4.0, allow_truncated=True)


#: A silent MPEG-1 layer III frame at 128 kbit/s, 44.1 kHz (417 bytes, 1,152 samples): a constant-bitrate MP3
#: without a Xing, Info or VBRI header is a run of these.
SILENT_FRAME = b"\xff\xfb\x90\x00" + bytes(413)


def test_an_mp3_without_a_length_header_cut_inside_a_frame(tmp_path):
    frames = SILENT_FRAME * 200
    whole = write(tmp_path, "bare.mp3", frames + b"TAG" + bytes(125))  # an ID3v1 tag after the last frame
    assert load(whole).num_samples == 200 * 1152
    cut = write(tmp_path, "cut.mp3", frames[: 100 * 417 + 150])
    expect(AudioDecodeError, cut, "truncated", "its last MPEG audio frame is cut short", "declares no total length")
    assert load(cut, allow_truncated=True).num_samples == 100 * 1152


def test_a_variable_bitrate_mp3_without_a_length_header_is_not_decoded_short_in_silence(tmp_path):
    data = encoded("MP3", "MPEG_LAYER_III")
    assert b"Xing" in data[:64], "libsndfile writes a Xing header"
    bare = write(tmp_path, "vbr.mp3", data[_mpeg_frame_length(data, 0) or 0 :])  # the frames alone
    # libsndfile estimates the length from the first frame's bitrate, and decodes no further
    err = expect(AudioDecodeError, bare, "the decoder stopped early", "the MPEG frames of the file hold 6.0")
    assert "truncated file" not in str(err)
    assert 0 < load(bare, allow_truncated=True).duration < SECONDS / 2


def test_a_cut_flac_names_the_declared_duration(tmp_path):
    data = encoded("FLAC", "PCM_16")
    half = write(tmp_path, "half.flac", data[: len(data) // 2])
    expect(AudioDecodeError, half, "corrupt or truncated", "of the 6.000 s its FLAC STREAMINFO block declares")
    kept = load(half, allow_truncated=True)  # up to the last whole read before the damage
    assert 0 < kept.duration < SECONDS / 2


def test_an_ogg_file_cut_at_a_page_boundary_has_no_end_of_stream_page(tmp_path):
    data = encoded("OGG", "VORBIS")
    last_page = data.rfind(b"OggS")
    assert data[last_page + 5] & 0x04, "libsndfile ends the stream with an end-of-stream page"
    cut = write(tmp_path, "pages.ogg", data[:last_page])
    expect(AudioDecodeError, cut, "truncated", "does not carry the end-of-stream mark")
    # bytes after a complete Ogg stream (a stray tag) are not a cut
    assert abs(load(data + b"TAG" + bytes(125)).duration - SECONDS) < 0.01


def test_ogg_vorbis_cut_inside_its_headers_is_truncated_not_empty(tmp_path):
    data = encoded("OGG", "VORBIS")
    cut = write(tmp_path, "headers.ogg", data[:3000])  # the Vorbis setup header is not complete yet
    expect(AudioDecodeError, cut, "truncated", "its last Ogg page is cut short")


def test_a_wav_header_declaring_more_data_than_present(tmp_path):
    wav = bytearray(encoded("WAV", "PCM_16", seconds=1.0))
    struct.pack_into("<I", wav, 40, 0x7FFFFFF0)
    path = write(tmp_path, "liar.wav", bytes(wav))
    expect(AudioDecodeError, path, "truncated", "the audio ends at 1.000 s", "declares 67108.864 s")
    # a streaming writer's placeholder size declares nothing
    struct.pack_into("<I", wav, 40, 0xFFFFFFFF)
    assert load(bytes(wav)).num_samples == 16000
    # a WAV missing a few bytes of its last frame is within the tolerance
    whole = encoded("WAV", "PCM_16")
    assert load(whole[:-3]).num_samples == round(SECONDS * 16000) - 2


def test_truncation_is_detected_for_bytes_and_file_objects(tmp_path):
    data = encoded("MP3", "MPEG_LAYER_III")
    half = data[: len(data) // 2]
    expect(AudioDecodeError, half, "truncated")
    with open(write(tmp_path, "half.mp3", half), "rb") as fh:
        expect(AudioDecodeError, fh, "truncated", str(tmp_path / "half.mp3"))


# ------------------------------------------------------------------------------------------ paths that cannot open
def test_a_symlink_loop_is_not_reported_as_missing(tmp_path):
    loop = tmp_path / "loop.wav"
    loop.symlink_to(tmp_path / "loop.wav")
    err = expect(AudioDecodeError, loop, "cannot open", "ELOOP")
    assert not isinstance(err, FileNotFoundError)
    with pytest.raises(AudioDecodeError, match="ELOOP"):
        drain(loop)


def test_a_dangling_symlink_is_a_missing_file(tmp_path):
    dangling = tmp_path / "dangling.wav"
    dangling.symlink_to(tmp_path / "nowhere.wav")
    expect(AudioFileNotFoundError, dangling, "no such file")
    expect(AudioFileNotFoundError, tmp_path / "absent.flac", "no such file")


def test_a_name_too_long_and_a_file_used_as_a_folder_give_the_os_reason(tmp_path):
    expect(AudioDecodeError, tmp_path / ("x" * 300 + ".wav"), "cannot open", "ENAMETOOLONG")
    plain = write(tmp_path, "plain.wav", encoded("WAV", "PCM_16", seconds=0.1))
    expect(AudioDecodeError, plain / "inner.wav", "cannot open", "ENOTDIR")


def test_a_nul_byte_in_a_path_is_a_typed_error():
    expect(AudioDecodeError, "clip\x00.wav", "cannot open")


def test_permission_denied_gives_the_os_reason(tmp_path, monkeypatch):
    path = write(tmp_path, "locked.wav", encoded("WAV", "PCM_16", seconds=0.1))

    def denied(*args: object, **kwargs: object) -> object:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))

    monkeypatch.setattr(_io, "open", denied, raising=False)  # the module's own open(), not the builtin
    err = expect(AudioDecodeError, path, "cannot open", "Permission denied", "EACCES")
    assert not isinstance(err, FileNotFoundError)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file_gives_permission_denied(tmp_path):
    path = write(tmp_path, "locked.wav", encoded("WAV", "PCM_16", seconds=0.1))
    path.chmod(0)
    expect(AudioDecodeError, path, "Permission denied")


def test_a_pipe_or_device_is_not_opened_as_a_file(tmp_path):
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    fd = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)  # a writer, so that opening cannot block
    try:
        os.write(fd, encoded("WAV", "PCM_16", seconds=0.01))
        expect(AudioDecodeError, fifo, "not a regular file")
    finally:
        os.close(fd)
    expect(AudioDecodeError, Path(os.devnull), "not a regular file")


# ------------------------------------------------------------------------------- cases that already hold, kept held
def test_a_directory_passed_as_a_file(tmp_path):
    expect(AudioDecodeError, tmp_path, "is a directory")


@pytest.mark.parametrize("source", ["path", "bytes"])
def test_an_empty_file(tmp_path, source):
    path = write(tmp_path, "empty.mp3", b"")
    expect(EmptyAudioError, path if source == "path" else b"", "0 bytes")


@pytest.mark.parametrize(
    ("fmt", "subtype"), [("WAV", "PCM_16"), ("WAV", "FLOAT"), ("AIFF", "PCM_16"), ("AU", "PCM_16")]
)
def test_zero_length_audio(tmp_path, fmt, subtype):
    buf = io.BytesIO()
    sf.write(buf, np.zeros(0, np.float32), 16000, format=fmt, subtype=subtype)
    path = write(tmp_path, f"zero.{fmt.lower()}", buf.getvalue())
    expect(EmptyAudioError, path, "zero samples")
    with pytest.raises(EmptyAudioError):
        drain(path)


@pytest.mark.parametrize(
    ("name", "head"),
    [
        ("riff.wav", b"RIFF\x24\x00\x00\x00WAVEfmt "),
        ("flac.flac", b"fLaC\x00\x00\x00\x22"),
        ("ogg.ogg", b"OggS\x00\x02"),
        ("id3.mp3", b"ID3\x04\x00\x00\x00\x00\x00\x10"),
        ("aiff.aiff", b"FORM\x00\x00\x00\x04AIFF"),
        ("au.au", b".snd\x00\x00\x00\x18"),
    ],
)
def test_header_only_files(tmp_path, name, head):
    path = write(tmp_path, name, head)
    with pytest.raises(AudioError) as caught:
        load(path)
    assert isinstance(caught.value, (AudioDecodeError, EmptyAudioError)), repr(caught.value)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("png.wav", b"\x89PNG\r\n\x1a\n" + bytes(200)),
        ("text.mp3", b"hello, this is not audio\n" * 40),
        ("noise.flac", np.random.default_rng(1).bytes(4096)),
        ("html.ogg", b"<!doctype html><html><body>nope</body></html>" * 20),
        ("zeros.wav", bytes(4096)),
    ],
)
def test_non_audio_bytes_with_an_audio_extension(tmp_path, name, data):
    expect(AudioDecodeError, write(tmp_path, name, data), "not decodable")


def test_a_known_container_the_decoder_cannot_read(tmp_path):
    m4a = write(tmp_path, "song.m4a", b"\x00\x00\x00\x20ftypM4A \x00\x00\x02\x00" + bytes(200))
    expect(UnsupportedFormatError, m4a, "MP4/M4A", "ffmpeg")


def test_nan_and_inf_in_a_float_wav(tmp_path):
    path = tmp_path / "nan.wav"
    sf.write(path, np.array([0.0, np.nan, 0.1, np.inf, -np.inf], np.float32), 16000, subtype="FLOAT")
    expect(NonFiniteAudioError, path, "3 NaN or infinite")
    with pytest.raises(NonFiniteAudioError):
        drain(path)


@pytest.mark.parametrize("rate", [0, 1, 99, 4_000_000_000])
def test_absurd_sample_rate_in_a_wav_header(tmp_path, rate):
    wav = bytearray(encoded("WAV", "PCM_16", seconds=0.1))
    struct.pack_into("<I", wav, 24, rate)
    expect(InvalidSampleRateError, write(tmp_path, "rate.wav", bytes(wav)), "implausible sample rate", "100")


@pytest.mark.parametrize("channels", [0, 1025, 65535])
def test_huge_or_zero_declared_channel_count(tmp_path, channels):
    wav = bytearray(encoded("WAV", "PCM_16", seconds=0.1))
    struct.pack_into("<H", wav, 22, channels)
    path = write(tmp_path, "channels.wav", bytes(wav))
    expect(AudioDecodeError, path, "not decodable")
    with pytest.raises(AudioDecodeError):
        info(path)

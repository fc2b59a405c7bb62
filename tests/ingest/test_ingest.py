"""The ingest path: read once, decode once per sample rate, stream long files, cache, typed failures, records."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

import audiovec.audio._io as audio_io
import audiovec.ingest.engine as engine
from audiovec import Audio, Pipeline, get_embedder, load
from audiovec.data import demo_dir
from audiovec.errors import ConfigError, EmbeddingError
from audiovec.ingest import (
    EmbeddingCache,
    Ingest,
    Source,
    extract,
    find_audio_files,
    parse_vector_id,
    sources_from_paths,
    vector_id,
    vector_records,
)
from audiovec.ingest.records import ITEM, RESERVED_KEYS, SEGMENT, SHA256

KICKS = sorted((demo_dir() / "kick").glob("*.flac"))


@pytest.fixture
def two_rates():
    """Two models at 16 kHz and one at 22.05 kHz."""
    return {
        "mfcc": get_embedder("mfcc"),
        "logmel": get_embedder("logmel", n_mels=32),
        "mfcc22": get_embedder("mfcc", sample_rate=22050),
    }


def test_each_file_is_read_once_and_decoded_once_for_every_model(two_rates, monkeypatch):
    reads: list[str] = []
    real_read = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        reads.append(str(self))
        return real_read(self)

    opened: list[object] = []
    real_opened = audio_io._Opened

    class Opened(real_opened):  # type: ignore[misc, valid-type]
        def __init__(self, source, **kwargs):
            opened.append(source)
            super().__init__(source, **kwargs)

    decodes: list[str] = []
    real_load = engine.load

    def load_once(source, *a, **kw):
        decodes.append(getattr(source, "name", str(source)))
        return real_load(source, *a, **kw)

    resamples: list[int] = []
    real_resample = Audio.resample

    def resample(self, sr):
        if sr != self.sample_rate:
            resamples.append(sr)
        return real_resample(self, sr)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    monkeypatch.setattr(audio_io, "_Opened", Opened)
    monkeypatch.setattr(engine, "load", load_once)
    monkeypatch.setattr(Audio, "resample", resample)
    results = Ingest(two_rates, hash_content=True).process([Source(str(p), path=str(p)) for p in KICKS])
    assert all(r.ok and set(r.frames) == set(two_rates) for r in results)
    assert sorted(reads) == sorted(map(str, KICKS))  # one read per file from disk ...
    assert not [s for s in opened if isinstance(s, (str, Path))]  # ... and nothing else opened the path
    assert sorted(decodes) == sorted(map(str, KICKS))  # one decode per file, for three models
    native = {load(p).sample_rate for p in KICKS}
    per_file = len({16000, 22050} - native)
    assert len(resamples) == per_file * len(KICKS)  # once per model sample rate, shared by the two 16 kHz models
    assert all(len(r.digest or "") == 64 for r in results)


def test_frames_equal_embedding_the_loaded_file(two_rates):
    [item] = Ingest(two_rates).process([Source.of(KICKS[0])])
    for label, emb in two_rates.items():
        ref = emb.embed(load(KICKS[0]))
        np.testing.assert_array_equal(item.frames[label].vectors, ref.vectors)  # same samples, same model call
        assert item.frames[label].source == str(KICKS[0])
        assert item.stats[label].decode_s > 0 and item.stats[label].embed_s > 0


def test_long_audio_is_streamed_through_embed_file(monkeypatch):
    emb = get_embedder("mfcc")
    calls: list[str] = []
    real_file, real_embed = emb.embed_file, emb.embed
    monkeypatch.setattr(emb, "embed_file", lambda src, *a, **k: calls.append("file") or real_file(src, *a, **k))
    monkeypatch.setattr(emb, "embed", lambda audio: calls.append("embed") or real_embed(audio))
    src = Source.of(KICKS[0])
    duration = load(KICKS[0]).duration
    streamed = Ingest(emb, stream_above_s=duration / 2).process([src])[0]
    whole = Ingest(emb, stream_above_s=duration * 2).process([src])[0]
    assert calls == ["file", "embed"]
    assert streamed.stats["mfcc"].streamed and not whole.stats["mfcc"].streamed
    a, b = streamed.frames["mfcc"], whole.frames["mfcc"]
    assert a.vectors.shape == b.vectors.shape and a.duration == pytest.approx(b.duration)
    np.testing.assert_allclose(a.vectors, b.vectors, rtol=1e-4, atol=1e-3)


def test_cache_second_run_embeds_nothing_and_keeps_the_first_measurements(tmp_path, monkeypatch):
    emb = get_embedder("mfcc")
    cache = EmbeddingCache(tmp_path / "cache")
    first = Ingest(emb, cache=cache).process(sources_from_paths(KICKS))
    monkeypatch.setattr(emb, "embed", lambda audio: pytest.fail("embedded again"))
    monkeypatch.setattr(emb, "embed_batch", lambda audios: pytest.fail("embedded again"))
    again = Ingest(emb, cache=cache).process(sources_from_paths(KICKS))
    for a, b in zip(first, again, strict=True):
        assert b.stats["mfcc"].cached and not a.stats["mfcc"].cached
        assert b.stats["mfcc"].embed_s == pytest.approx(a.stats["mfcc"].embed_s)
        np.testing.assert_array_equal(a.frames["mfcc"].vectors, b.frames["mfcc"].vectors)
        assert a.digest == b.digest


def test_failures_are_typed_per_item_and_the_batch_goes_on(tmp_path):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk")
    sources = [Source.of(KICKS[0]), Source.of(bad), Source.of(tmp_path / "missing.ogg"), Source.of(KICKS[1])]
    results = Ingest(get_embedder("mfcc"), batch_size=4).process(sources)
    assert [r.source.key for r in results] == [s.key for s in sources]  # input order
    assert results[0].ok and results[3].ok
    assert results[1].failures["mfcc"].error == "AudioDecodeError" and results[1].failures["mfcc"].embedder is None
    assert results[2].failures["mfcc"].error == "AudioFileNotFoundError"
    with pytest.raises(FileNotFoundError):
        results[2].frames_of("mfcc")


def test_a_batch_that_breaks_the_model_is_retried_item_by_item():
    emb = get_embedder("mfcc")
    real = emb.embed

    def embed(audio):
        if audio.source == str(KICKS[2]):
            raise EmbeddingError("this file breaks the model")
        return real(audio)

    emb.embed_batch = lambda audios: (_ for _ in ()).throw(EmbeddingError("batch broke"))  # type: ignore[method-assign]
    emb.embed = embed  # type: ignore[method-assign]
    results = Ingest(emb, batch_size=8).process(sources_from_paths(KICKS))
    assert [r.ok for r in results] == [i != 2 for i in range(len(KICKS))]
    assert results[2].failures["mfcc"].embedder == "mfcc"


def test_max_duration_and_the_shared_model_lock():
    emb = get_embedder("mfcc")
    [long] = Ingest(emb, max_duration_s=0.01).process([Source.of(KICKS[0])])
    assert long.failures["mfcc"].error == "AudioTooLongError" and "limit" in long.failures["mfcc"].message
    lock = threading.Lock()
    lock.acquire()
    threading.Timer(0.2, lock.release).start()
    [item] = Ingest(emb, lock=lock).process([Source.of(KICKS[0])])
    assert item.stats["mfcc"].wait_s >= 0.15


def test_sources_from_bytes_and_audio():
    data = KICKS[0].read_bytes()
    audio = load(KICKS[0])
    a, b = Ingest(get_embedder("mfcc"), hash_content=True).process(
        [Source("k", data=data, name="upload.flac"), Source.of(audio, key="decoded")]
    )
    np.testing.assert_array_equal(a.frames["mfcc"].vectors, b.frames["mfcc"].vectors)
    assert a.frames["mfcc"].source == "upload.flac" and a.size_bytes == len(data)
    assert a.digest is not None and b.digest is None  # decoded audio has no file content to hash
    with pytest.raises(ConfigError, match="exactly one"):
        Source("x", path="a.wav", data=b"RIFF")
    with pytest.raises(ConfigError, match="key"):
        Source.of(b"RIFF")


def test_records_one_id_scheme_and_one_key_set():
    emb = get_embedder("mfcc")
    frames = emb.embed(load(KICKS[0]))
    pooled = Pipeline.parse("mean+l2", segments="0.2:0.1")(frames)
    ids, metas = vector_records(
        "kits/a#b.flac", pooled, duration=frames.duration, metadata={"label": "kick"}, digest="ab" * 32
    )
    assert ids == [vector_id("kits/a#b.flac", i) for i in range(len(pooled))]
    assert [parse_vector_id(i) for i in ids] == [("kits/a#b.flac", i) for i in range(len(pooled))]
    assert all(m[ITEM] == "kits/a#b.flac" and m["label"] == "kick" and m[SHA256] == "ab" * 32 for m in metas)
    assert [m[SEGMENT] for m in metas] == list(range(len(pooled)))
    assert set(metas[0]) == set(RESERVED_KEYS) | {"label"}
    with pytest.raises(ConfigError, match="'_'"):
        vector_records("x", pooled, duration=1.0, metadata={"_item": "spoof"})
    with pytest.raises(ConfigError):
        parse_vector_id("no-segment")


def test_extract_is_the_ingest_path_plus_pooling():
    emb, pipe = get_embedder("mfcc"), Pipeline.parse("mean_std+l2")
    res = extract([demo_dir() / "kick"], emb, pipe, batch_size=3, progress=False)
    files = find_audio_files([demo_dir() / "kick"])
    assert [r["_item"] for r in res.records] == [str(p) for p in files]
    assert [r["id"] for r in res.records] == [f"{p}#0" for p in files]
    ref = np.stack([pipe(emb.embed(load(p))).vectors[0] for p in files])
    np.testing.assert_allclose(res.vectors, ref, rtol=1e-5, atol=1e-6)


def test_run_streams_any_number_of_sources_with_progress(caplog):
    from audiovec.progress import LogCallback

    cb = LogCallback(description="kicks", unit="file", every_s=0.0)
    with caplog.at_level("INFO", logger="audiovec.progress"):
        out = list(Ingest(get_embedder("mfcc"), batch_size=2).run(iter(KICKS), progress=cb, total=len(KICKS)))
    assert len(out) == len(KICKS) and cb.value == len(KICKS) and cb.closed
    lines = [r.getMessage() for r in caplog.records if r.name == "audiovec.progress"]
    assert lines[-1].startswith(f"kicks: {len(KICKS)}/{len(KICKS)} files (100%)") and "in all" in lines[-1]


def test_stats_time_each_step():
    t0 = time.perf_counter()
    [item] = Ingest(get_embedder("mfcc")).process([Source.of(KICKS[0])])
    st = item.stats["mfcc"]
    assert 0 < st.total_s <= time.perf_counter() - t0

"""Hostile values: finite but enormous samples, and NaN/Inf wherever vectors are made.

No embedder output, pooled vector or stored vector may be NaN or infinite. Audio whose samples are finite but
absurd (±1e19 up to ±3e38, or tiny values among huge ones) overflows most models; the result is a
:class:`~audiovec.errors.NonFiniteEmbeddingError` that names the input, recorded as a failure by batch jobs
(``audiovec embed``, the ingest path in this process and in worker processes, ``audiovec bench``), never a vector.
"""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import soundfile as sf

from audiovec import Audio, FramedEmbedder, FrameEmbeddings, Pipeline, get_embedder
from audiovec.audio import load
from audiovec.cli import main
from audiovec.data import demo_dir
from audiovec.embedders import EmbedderSpec, FrameGeometry
from audiovec.errors import AudioError, NonFiniteAudioError, NonFiniteEmbeddingError
from audiovec.ingest import EmbeddingCache, Ingest, Source, extract, load_vectors
from audiovec.ingest import workers as ingest_workers
from audiovec.pooling import Pool, Segments, l2_normalize
from audiovec.testing import embedder_checks

SR = 16000


def _square(peak: float, seconds: float = 1.0, seed: int = 0) -> np.ndarray:
    """A full-scale random square wave at ``peak`` (float64, so peaks beyond float32 can be written)."""
    return np.where(np.random.default_rng(seed).standard_normal(int(seconds * SR)) >= 0, peak, -peak)


def _mixed(seconds: float = 1.0) -> np.ndarray:
    """Tiny values (±1e-30) with every seventh sample at ±3e38."""
    x = _square(1e-30, seconds)
    x[::7] = np.sign(x[::7]) * 3e38
    return x


#: Finite sample values that overflow the classical embedders: (name, samples).
EXTREME = [
    ("peak-1e19", _square(1e19)),
    ("peak-1e30", _square(1e30)),
    ("peak-3e38", _square(3e38)),
    ("tiny-and-huge", _mixed()),
]


def _wav(path: Path, samples: np.ndarray, subtype: str = "FLOAT") -> Path:
    sf.write(path, samples, SR, subtype=subtype)
    return path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Three demo kicks, two demo snares and one float WAV peaking at 1e19."""
    root = tmp_path / "in"
    for label, n in (("kick", 3), ("snare", 2)):
        (root / label).mkdir(parents=True)
        for f in sorted((demo_dir() / label).iterdir())[:n]:
            shutil.copy(f, root / label / f.name)
    _wav(root / "kick" / "huge.wav", _square(1e19))
    return root


# --------------------------------------------------------------------------------------------- embedders
@pytest.mark.parametrize("name", ["mfcc", "logmel"])
@pytest.mark.parametrize(("what", "samples"), EXTREME, ids=[w for w, _ in EXTREME])
def test_extreme_samples_raise_a_typed_error_naming_the_input(name, what, samples):
    emb = get_embedder(name)
    with pytest.raises(NonFiniteEmbeddingError, match=rf"^{what}: {name} produced NaN or infinite values") as err:
        emb.embed(Audio.from_array(samples.astype(np.float32), SR, what))
    assert err.value.source == what
    assert "of 99 frame(s)" in str(err.value) and "[-1, 1]" in str(err.value)


def test_a_batch_names_the_one_input_that_overflows():
    """The refusal is about the output, not a cap on the input: loud but harmless samples embed as before."""
    emb = get_embedder("mfcc")
    good = Audio.from_array(_square(0.5, seed=1).astype(np.float32), SR, "good")
    loud = Audio.from_array(_square(1e15, seed=2).astype(np.float32), SR, "loud")
    bad = Audio.from_array(_square(1e30).astype(np.float32), SR, "bad")
    with pytest.raises(NonFiniteEmbeddingError, match=r"^bad: "):
        emb.embed_batch([good, loud, bad, good])
    assert all(np.isfinite(fe.vectors).all() for fe in emb.embed_batch([good, loud]))


def test_streamed_files_are_refused_too(tmp_path):
    path = _wav(tmp_path / "huge.wav", _square(1e30, seconds=3.0))
    emb = get_embedder("mfcc")
    with pytest.raises(NonFiniteEmbeddingError) as err:
        emb.embed_file(path, block_s=1.0)
    assert err.value.source == str(path)
    with pytest.raises(NonFiniteEmbeddingError):
        emb.embed(load(path))


def test_float64_wavs_beyond_float32_are_non_finite_audio_and_below_it_overflow_the_model(tmp_path):
    beyond = _wav(tmp_path / "beyond.wav", _square(1e300), "DOUBLE")
    inside = _wav(tmp_path / "inside.wav", _square(1e19), "DOUBLE")
    emb = get_embedder("mfcc")
    with pytest.raises(NonFiniteAudioError):
        emb.embed_file(beyond)
    with pytest.raises(NonFiniteEmbeddingError, match=r"inside\.wav"):
        emb.embed_file(inside)


class _Bands(FramedEmbedder):
    """Log energy in 4 bands, computed in float32 (so enormous samples overflow it)."""

    name: ClassVar[str] = "bands"
    geometry = FrameGeometry(sample_rate=SR, frame_length=256, hop_length=128, dim=4)

    def _embed_frames(self, x: Any) -> Any:
        frames = np.lib.stride_tricks.sliding_window_view(x, 256)[::128].astype(np.float32)
        power = (np.abs(np.fft.rfft(frames, axis=1))[:, 1:129] ** 2).astype(np.float32)
        return np.log(power.reshape(len(frames), 4, 32).sum(-1) + 1e-6).astype(np.float32)


class _Unchecked(_Bands):
    """Builds its own result, bypassing the template's output check, as a plugin overriding ``embed`` may."""

    name: ClassVar[str] = "unchecked"

    def embed(self, audio: Audio) -> FrameEmbeddings:
        x = audio.to_mono().samples
        n = max(1, 1 + (len(x) - 256) // 128)
        with np.errstate(all="ignore"):
            v = self._embed_frames(np.pad(x, (0, max(0, 256 - len(x)))))[:n]
        return FrameEmbeddings(v, (np.arange(n) * 128 + 128) / SR, len(x) / SR, 256 / SR, 128 / SR, audio.source)


def test_the_conformance_kit_checks_extreme_input():
    check = dict(embedder_checks())["extreme_input"]
    check(_Bands())  # overflows, and the template refuses the output: passes
    with pytest.raises(AssertionError, match="non-finite values"):
        check(_Unchecked())


def test_the_conformance_kit_refuses_a_crash_on_extreme_input():
    class Crashes(_Bands):
        def _embed_frames(self, x: Any) -> Any:
            if np.abs(x).max() > 1e6:
                raise RuntimeError("input out of range")
            return super()._embed_frames(x)

    with pytest.raises(AssertionError, match="EmbeddingError"):
        dict(embedder_checks())["extreme_input"](Crashes())


# --------------------------------------------------------------------------------------------- pooling
def _frames(vectors: np.ndarray, source: str = "clip.wav") -> FrameEmbeddings:
    n = len(vectors)
    return FrameEmbeddings(vectors, np.arange(n) * 0.5 + 0.25, n * 0.5, 0.5, 0.5, source, "test")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_pooling_refuses_non_finite_frames_naming_the_source(bad):
    v = np.ones((8, 4), np.float32)
    v[5, 2] = bad
    with pytest.raises(NonFiniteEmbeddingError, match=r"^clip\.wav: test produced .* in 1 of 8 frame\(s\)"):
        Pipeline.parse("mean+l2")(_frames(v))


def test_pooling_refuses_a_bad_frame_even_where_the_mode_would_skip_it():
    v = np.ones((100, 4), np.float32)
    v[1] = np.nan  # linear_concat:4 samples frames 0, 33, 66 and 99 only
    with pytest.raises(NonFiniteEmbeddingError):
        Pipeline.parse("linear_concat:4")(_frames(v))


def test_pooling_refuses_a_pooled_vector_that_overflows_float32():
    """Finite float64 frames (as a plugin might return) beyond float32's range: the pooled vector would be Inf."""
    v = np.full((6, 4), 1e300)
    pipe = Pipeline(steps=[Segments(window_s=1.0), Pool(mode="max")])
    with pytest.raises(NonFiniteEmbeddingError, match=r"^clip\.wav: pooling segments\(1s/1s\)\+max produced .* 3 of 3"):
        pipe(_frames(v))


def test_every_pooling_of_finite_frames_is_finite_and_l2_gives_unit_vectors():
    rng = np.random.default_rng(0)
    base = rng.standard_normal((20, 8))
    for scale in (1e-40, 1e-30, 1e-20, 1.0, 1e30, 3.4e38 / np.abs(base).max()):
        frames = _frames((base * scale).astype(np.float32))
        for mode in ("mean", "max", "mean_std", "linear_concat:8"):
            out = Pipeline.parse(f"{mode}+l2", segments="4:2")(frames).vectors
            assert np.isfinite(out).all(), (scale, mode)
            np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-5, err_msg=f"{scale} {mode}")


def test_l2_normalize_scales_before_the_norm():
    x = np.array([[1e-20, 2e-20], [3e300, 4e300], [0.0, 0.0], [6e-45, 8e-45]])
    out = l2_normalize(x, axis=1)
    assert out.dtype == np.float32 and np.isfinite(out).all()
    np.testing.assert_allclose(out, [[0.4472136, 0.8944272], [0.6, 0.8], [0, 0], [0.6, 0.8]], rtol=2e-6, atol=0)
    assert l2_normalize(np.zeros((0, 3))).shape == (0, 3)


# --------------------------------------------------------------------------------------------- batch jobs
def test_ingest_records_the_failure_and_keeps_the_rest(folder):
    sources = sorted(str(p) for p in folder.rglob("*.*"))
    results = list(Ingest(get_embedder("mfcc"), batch_size=8, workers=1).run(sources))
    assert [r.source.key for r in results] == sources
    failed = {r.source.key: r.failures["mfcc"] for r in results if "mfcc" in r.failures}
    huge = str(folder / "kick" / "huge.wav")
    assert list(failed) == [huge]
    assert failed[huge].error == "NonFiniteEmbeddingError" and failed[huge].message.startswith("mfcc produced NaN")
    assert isinstance(failed[huge].exception, NonFiniteEmbeddingError)
    assert all(np.isfinite(r.frames["mfcc"].vectors).all() for r in results if r.source.key != huge)


def test_worker_processes_send_the_failure_back(folder):
    """What a worker does with a batch (its own copy of the ingest, results pickled back), in this process."""
    huge = Source.of(str(folder / "kick" / "huge.wav"))
    kick = Source.of(str(sorted((folder / "kick").glob("*.flac"))[0]))
    copy = pickle.loads(pickle.dumps(Ingest(get_embedder("mfcc"), workers=2)))
    previous, ingest_workers._ingest = ingest_workers._ingest, copy
    try:
        results = pickle.loads(pickle.dumps(ingest_workers._work([kick, huge])))
    finally:
        ingest_workers._ingest = previous
    assert results[0].ok and not results[1].ok
    err = results[1].failures["mfcc"].exception
    assert isinstance(err, NonFiniteEmbeddingError) and err.source == huge.label
    assert str(err).startswith(f"{huge.label}: mfcc produced NaN")


def test_worker_pool_records_the_failure(folder):
    sources = sorted(str(p) for p in folder.rglob("*.*"))
    results = list(Ingest(get_embedder("mfcc"), batch_size=1, workers=2).run(sources))
    assert [r.source.key for r in results] == sources
    assert [r.source.key for r in results if not r.ok] == [str(folder / "kick" / "huge.wav")]
    assert {f.error for r in results for f in r.failures.values()} == {"NonFiniteEmbeddingError"}


class _PluginEmbedder:
    """A plugin written against the protocol only (no base class): returns NaN frames for loud input."""

    name = "plugin"
    sample_rate = SR
    dim = 3
    window_s = hop_s = 0.5

    def embed(self, audio: Audio) -> FrameEmbeddings:
        n = max(1, int(audio.duration / self.hop_s))
        value = np.nan if np.abs(audio.samples).max() > 1e10 else 1.0
        v = np.full((n, self.dim), value, np.float32)
        return FrameEmbeddings(v, np.arange(n) * 0.5 + 0.25, audio.duration, 0.5, 0.5, audio.source, self.name)

    def embed_batch(self, audios: Any) -> list[FrameEmbeddings]:
        return [self.embed(a) for a in audios]

    def embed_file(self, source: Any, block_s: float = 60.0) -> FrameEmbeddings:
        return self.embed(load(source))

    def spec(self) -> EmbedderSpec:
        return EmbedderSpec(name=self.name, version="1", params={})


def test_ingest_refuses_non_finite_frames_of_any_embedder_and_never_caches_them(folder, tmp_path):
    cache = EmbeddingCache(tmp_path / "cache")
    sources = sorted(str(p) for p in folder.rglob("*.*"))
    results = list(Ingest(_PluginEmbedder(), cache=cache, workers=1).run(sources))
    huge = str(folder / "kick" / "huge.wav")
    assert [r.source.key for r in results if not r.ok] == [huge]
    failure = next(r for r in results if not r.ok).failures["plugin"]
    assert failure.error == "NonFiniteEmbeddingError" and failure.message.startswith("plugin produced")
    assert len(list((tmp_path / "cache").rglob("*.frames"))) == len(sources) - 1


def test_a_cached_entry_with_nan_is_a_miss_and_is_removed(tmp_path):
    cache = EmbeddingCache(tmp_path)
    spec = EmbedderSpec(name="mfcc", version="1", params={})
    path = cache.put(spec, "ab" * 32, _frames(np.full((4, 3), np.nan, np.float32)))
    assert cache.get(spec, "ab" * 32) is None
    assert not path.exists()


def test_extract_never_returns_the_vector(folder):
    res = extract([folder], get_embedder("mfcc"), Pipeline.parse("mean_std+l2"), workers=1, progress=False)
    assert res.vectors.shape == (5, 40) and np.isfinite(res.vectors).all()
    assert [(f.source, f.error) for f in res.failures] == [
        (str(folder / "kick" / "huge.wav"), "NonFiniteEmbeddingError")
    ]
    assert "huge.wav" not in " ".join(r["_item"] for r in res.records)


@pytest.mark.filterwarnings("default::RuntimeWarning")  # as a user runs it: warnings are not errors
def test_cli_embed_reports_the_file_as_failed_and_writes_only_finite_vectors(folder, tmp_path, capsys):
    out = tmp_path / "v.jsonl"
    rc = main(["embed", str(folder), "-o", str(out), "--no-progress", "--workers", "1"])
    assert rc == 1
    err = capsys.readouterr().err
    assert f"FAILED {folder / 'kick' / 'huge.wav'}: NonFiniteEmbeddingError" in err and "1 file(s) failed" in err
    res = load_vectors(out)
    assert len(res.records) == 5 and np.isfinite(res.vectors).all()
    assert [f.error for f in res.failures] == ["NonFiniteEmbeddingError"]


@pytest.mark.filterwarnings("default::RuntimeWarning")  # as a user runs it: warnings are not errors
def test_cli_bench_records_a_failed_extraction_and_still_writes_its_report(folder, tmp_path, capsys):
    config = tmp_path / "bench.toml"
    config.write_text(
        f"""
name = "hostile"
output_dir = "{tmp_path / "results"}"
k = 2
bootstrap = 10
n_latency_queries = 3
linear_probe = false
cache = false
workers = 1
progress = false
resource_files = 1
embedding_map_points = 50
[dataset]
kind = "folder"
path = "{folder}"
[[embedders]]
name = "mfcc"
poolings = ["mean+l2"]
[[stores]]
name = "exact"
"""
    )
    rc = main(["bench", str(config)])
    assert rc == 1  # a file failed
    assert (tmp_path / "results" / "report.html").is_file()
    pd = pytest.importorskip("pandas")
    files = pd.read_csv(tmp_path / "results" / "files.csv")
    bad = files[files["path"] == str(folder / "kick" / "huge.wav")]
    assert len(bad) == 1 and bad["error"].iloc[0].startswith("NonFiniteEmbeddingError: ")
    assert (files["error"].isna()).sum() == 5


def test_a_typed_audio_error_is_also_accepted_by_the_kit():
    """An embedder that refuses absurd audio up front (an AudioError) passes the extreme-input check."""

    class Refuses(_Bands):
        def _prepare(self, audio: Audio) -> Any:
            x = super()._prepare(audio)
            if np.abs(x).max() > 1e6:
                raise AudioError("samples far outside [-1, 1]", audio.source)
            return x

    dict(embedder_checks())["extreme_input"](Refuses())

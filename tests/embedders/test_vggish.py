"""VGGish: conformance, exact framing against the SavedModel itself, packed batching, loading and offline rules.

The real VGGish weights (TF Hub, ~290 MB) cannot be downloaded here, so the tests load a tiny SavedModel built
in a fixture with the same signature and framing as ``https://tfhub.dev/google/vggish/1``: a 1-D float32
waveform at 16 kHz -> log-mel spectrogram (25 ms / 10 ms, no padding) -> patches of 96 frames every 96 frames
-> ``[N, 128]`` (here: per-band mean and std of each patch, times a fixed orthogonal matrix).
"""

from __future__ import annotations

import io
import logging
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

import audiovec
from audiovec import Audio, get_embedder, load
from audiovec.embedders import _tf, frame_count
from audiovec.embedders.vggish import DEFAULT_VGGISH_HANDLE, VGGishEmbedder
from audiovec.errors import ConfigError, MissingDependencyError, ModelDownloadError, ModelLoadError
from audiovec.testing import check_embedder, synthetic_signal
from http_files import serve_files

SR, FRAME, HOP = 16000, 15600, 15360


def build_tiny_vggish(path: Path, *, seed: int = 0, patch_hop: int = 96, two_d: bool = False) -> Path:
    """Save a SavedModel with VGGish's signature (``patch_hop``/``two_d`` make deliberately wrong variants)."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((128, 128)))
    spec = tf.TensorSpec([None, None] if two_d else [None], tf.float32)

    class TinyVGGish(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.proj = tf.Variable(q.astype(np.float32))
            self.mel = tf.constant(tf.signal.linear_to_mel_weight_matrix(64, 257, SR, 125.0, 7500.0))

        @tf.function(input_signature=[spec])
        def __call__(self, waveform):
            if two_d:
                waveform = tf.reshape(waveform, [-1])
            stft = tf.abs(tf.signal.stft(waveform, frame_length=400, frame_step=160, fft_length=512))
            log_mel = tf.math.log(tf.matmul(stft, self.mel) + 0.01)
            patches = tf.signal.frame(log_mel, 96, patch_hop, axis=0)
            feats = tf.concat([tf.reduce_mean(patches, 1), tf.math.reduce_std(patches, 1)], axis=1)
            return tf.matmul(feats, self.proj)

    tf.saved_model.save(TinyVGGish(), str(path))
    return path


@pytest.fixture(scope="session")
def tiny_vggish(tmp_path_factory) -> Path:
    return build_tiny_vggish(tmp_path_factory.mktemp("vggish") / "tiny_vggish")


@pytest.fixture(scope="session")
def emb(tiny_vggish) -> VGGishEmbedder:
    return VGGishEmbedder(model=str(tiny_vggish))


@pytest.fixture(scope="session")
def raw_model(tiny_vggish):
    """The SavedModel called directly on a whole waveform, as a TF Hub user would."""
    import tensorflow as tf

    model = tf.saved_model.load(str(tiny_vggish))
    return lambda x: model(tf.constant(np.asarray(x, dtype=np.float32))).numpy()


def _signal(n_samples: int, seed: int = 0) -> np.ndarray:
    return synthetic_signal(n_samples / SR, SR, seed=seed)


def test_conformance(emb):
    results = check_embedder(emb)
    assert len(results) == 11 and all(r.passed for r in results)
    assert emb.dim == 128 and emb.sample_rate == SR
    assert emb.window_s == pytest.approx(0.975) and emb.hop_s == pytest.approx(0.96)


def test_frames_equal_the_model_on_the_whole_waveform(tiny_vggish, emb, raw_model):
    x = _signal(11 * HOP + FRAME, seed=2)  # exactly 12 whole examples
    ref = raw_model(x)
    assert ref.shape == (12, 128)
    # small chunks (2 frames per chunk) and small model calls (3 examples) must not change a single vector
    chunky = VGGishEmbedder(model=str(tiny_vggish), chunk_s=2.0, batch_size=3)
    for e in (emb, chunky):
        fe = e.embed(Audio(x, SR, "x"))
        np.testing.assert_allclose(fe.vectors, ref, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(fe.timestamps, (np.arange(12) * HOP + FRAME / 2) / SR)
    blocks = [Audio(x[i : i + 11200], SR, "x") for i in range(0, len(x), 11200)]
    np.testing.assert_allclose(chunky.embed_stream(blocks).vectors, ref, rtol=1e-5, atol=1e-5)


def test_tail_and_short_input_are_zero_padded_to_one_frame(emb, raw_model):
    x = _signal(3 * HOP + 5000, seed=3)
    ref = raw_model(x)  # the model itself drops the incomplete tail
    fe = emb.embed(Audio(x, SR, "x"))
    assert len(ref) == 3 and len(fe) == frame_count(len(x), FRAME, HOP) == 4
    np.testing.assert_allclose(fe.vectors[:3], ref, rtol=1e-5, atol=1e-5)
    padded = np.concatenate([x, np.zeros(3 * HOP + FRAME - len(x), np.float32)])
    np.testing.assert_allclose(fe.vectors[3], raw_model(padded)[3], rtol=1e-5, atol=1e-5)
    assert fe.timestamps[-1] == pytest.approx((3 * HOP + len(x)) / 2 / SR)
    short = _signal(4000, seed=4)
    assert len(raw_model(short)) == 0  # the model returns nothing for < 0.975 s; we return one padded frame
    fe = emb.embed(Audio(short, SR, "short"))
    np.testing.assert_allclose(fe.vectors, raw_model(np.pad(short, (0, FRAME - 4000))), rtol=1e-5, atol=1e-5)


def test_embed_batch_packs_inputs_into_few_model_calls(tiny_vggish):
    e = VGGishEmbedder(model=str(tiny_vggish), batch_size=16)
    calls = []
    fn = e._fn
    e._fn = lambda wave: calls.append(int(wave.shape[0])) or fn(wave)
    audios = [Audio(_signal(round(d * SR), seed=i), SR, f"a{i}") for i, d in enumerate((0.5, 1.3, 2.8, 0.2, 4.0))]
    batch = e.embed_batch(audios)
    assert [len(fe) for fe in batch] == [1, 2, 3, 1, 5]
    assert len(calls) == 1  # 12 examples + 4 one-hop gaps fit in one call of 16
    calls.clear()
    singles = [e.embed(a) for a in audios]
    assert len(calls) == 5
    for b, s in zip(batch, singles, strict=True):
        np.testing.assert_allclose(b.vectors, s.vectors, rtol=1e-5, atol=1e-5)
    calls.clear()
    e.embed(Audio(_signal(40 * HOP + FRAME), SR, "long"))  # 41 examples -> calls of at most 16
    assert len(calls) == 3 and max(calls) <= 15 * HOP + FRAME


def test_spec_fingerprints_the_weights(tmp_path, tiny_vggish, emb):
    again = VGGishEmbedder(model=str(tiny_vggish), chunk_s=5, batch_size=4, device="cpu")
    assert again.spec() == emb.spec() and again.spec().key() == emb.spec().key()
    assert emb.spec().params["model"] == str(tiny_vggish)
    assert VGGishEmbedder(model=tiny_vggish).spec() == emb.spec()  # a Path is accepted and stored as a string
    other_path = build_tiny_vggish(tmp_path / "other", seed=1)
    other = VGGishEmbedder(model=str(other_path))
    assert other.spec().params["weights_sha256"] != emb.spec().params["weights_sha256"]
    copy = tmp_path / "copy"
    shutil.copytree(tiny_vggish, copy)
    assert VGGishEmbedder(model=str(copy)).spec().params["weights_sha256"] == emb.spec().params["weights_sha256"]


def test_hub_handle_is_read_from_the_cache_offline(tmp_path, tiny_vggish, emb, monkeypatch, no_network):
    cache = tmp_path / "hub"
    shutil.copytree(tiny_vggish, _tf.hub_cached_path(DEFAULT_VGGISH_HANDLE, cache))
    x = Audio(_signal(3 * HOP + FRAME), SR, "x")
    e = VGGishEmbedder(cache_dir=str(cache), local_files_only=True)
    assert e.spec().params["model"] == DEFAULT_VGGISH_HANDLE
    np.testing.assert_array_equal(e.embed(x).vectors, emb.embed(x).vectors)
    # HF_HUB_OFFLINE=1 forbids the network too, and $TFHUB_CACHE_DIR is where hub itself would look
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(cache))
    assert VGGishEmbedder().spec() == e.spec()


def test_offline_without_a_cached_copy_raises_model_load_error(tmp_path, monkeypatch, no_network):
    with pytest.raises(ModelLoadError, match="not in the TF Hub cache") as info:
        VGGishEmbedder(cache_dir=str(tmp_path), local_files_only=True)
    assert DEFAULT_VGGISH_HANDLE in str(info.value)
    assert str(_tf.hub_cached_path(DEFAULT_VGGISH_HANDLE, tmp_path)) in str(info.value)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="HF_HUB_OFFLINE"):
        VGGishEmbedder(cache_dir=str(tmp_path))


def _tar_gz(folder) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path in sorted(folder.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(folder)), recursive=False)
    return buf.getvalue()


def test_online_handle_is_downloaded_into_the_cache_dir_as_tf_hub_serves_it(tmp_path, tiny_vggish, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("AUDIOVEC_OFFLINE", raising=False)
    with serve_files({"/vggish/1": _tar_gz(tiny_vggish)}) as served:
        handle = f"{served.url}/vggish/1"
        e = VGGishEmbedder(model=handle, cache_dir=str(tmp_path))
        assert served.requests == ["/vggish/1?tf-hub-format=compressed"]
        assert e.dim == 128 and e.spec().params["model"] == handle
        assert (_tf.hub_cached_path(handle, tmp_path) / "saved_model.pb").is_file()
        VGGishEmbedder(model=handle, cache_dir=str(tmp_path))  # cached: not downloaded again
        assert len(served.requests) == 1
        with pytest.raises(ModelDownloadError, match=r"/vggish/2\?tf-hub-format=compressed.*404"):
            VGGishEmbedder(model=f"{served.url}/vggish/2", cache_dir=str(tmp_path))


def test_unusable_models_raise_model_load_error(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        VGGishEmbedder(model=str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="not a SavedModel"):
        VGGishEmbedder(model=str(tmp_path / "empty"))
    with pytest.raises(ModelLoadError, match="does not frame audio like VGGish"):
        VGGishEmbedder(model=str(build_tiny_vggish(tmp_path / "half_hop", patch_hop=48)))
    with pytest.raises(ModelLoadError, match="1-D float32 waveform"):
        VGGishEmbedder(model=str(build_tiny_vggish(tmp_path / "two_d", two_d=True)))


def test_missing_tensorflow_names_the_extra(tiny_vggish, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow", None)
    with pytest.raises(MissingDependencyError, match=r"audiovec\[vggish\]"):
        VGGishEmbedder(model=str(tiny_vggish))


def test_device_selection(tiny_vggish, emb):
    import tensorflow as tf

    x = Audio(_signal(2 * HOP + FRAME), SR, "x")
    on_cpu = VGGishEmbedder(model=str(tiny_vggish), device="cpu")
    # "auto" runs on the CPU too unless TensorFlow sees a GPU, whose kernels round differently
    tol = 1e-3 if tf.config.list_physical_devices("GPU") else 0.0
    np.testing.assert_allclose(on_cpu.embed(x).vectors, emb.embed(x).vectors, rtol=tol, atol=tol)
    with pytest.raises(ConfigError, match="device"):
        VGGishEmbedder(model=str(tiny_vggish), device="tpu")
    if not tf.config.list_physical_devices("GPU"):
        with pytest.raises(ConfigError, match="sees 0 GPU"):
            VGGishEmbedder(model=str(tiny_vggish), device="gpu")
    else:  # pragma: no cover - only on machines with a GPU build of TensorFlow
        gpu = VGGishEmbedder(model=str(tiny_vggish), device="gpu")
        np.testing.assert_allclose(gpu.embed(x).vectors, emb.embed(x).vectors, rtol=1e-3, atol=1e-3)


def test_num_threads_after_tensorflow_started_is_logged_not_dropped_silently(tiny_vggish, emb, caplog):
    import tensorflow as tf

    current = tf.config.threading.get_intra_op_parallelism_threads()
    with caplog.at_level(logging.WARNING, logger="audiovec.embedders._tf"):
        e = VGGishEmbedder(model=str(tiny_vggish), num_threads=current + 3)
    assert f"num_threads={current + 3} ignored" in caplog.text
    assert tf.config.threading.get_intra_op_parallelism_threads() == current
    assert e.spec() == emb.spec()


def test_registry_builds_vggish(tiny_vggish):
    assert "vggish" in audiovec.list_embedders()
    e = get_embedder("vggish", model=str(tiny_vggish), batch_size=8)
    assert isinstance(e, VGGishEmbedder) and e.config.batch_size == 8
    with pytest.raises(ConfigError):
        get_embedder("vggish", model=str(tiny_vggish), batch_size=0)


@pytest.mark.shared
def test_streamed_file_matches_one_shot_on_real_music(shared_file, emb):
    """Real audio: a 98 s MP3 at 44.1 kHz, streamed and resampled block by block, gives the one-shot vectors."""
    path = shared_file("data/music/jamendo_11266.mp3")
    whole = emb.embed(load(path))
    streamed = emb.embed_file(path, block_s=7.0)
    assert whole.duration == pytest.approx(streamed.duration, abs=1e-3) and 95 < whole.duration < 100
    assert len(whole) == len(streamed) == frame_count(round(whole.duration * SR), FRAME, HOP)
    np.testing.assert_allclose(streamed.vectors, whole.vectors, rtol=1e-3, atol=1e-3)
    # music is not silence: the vectors move from frame to frame
    assert np.linalg.norm(np.diff(whole.vectors, axis=0), axis=1).min() > 0


def test_a_model_that_cannot_be_downloaded_fails_without_importing_tensorflow(tmp_path):
    code = (
        "import sys\n"
        "from audiovec import get_embedder\n"
        "from audiovec.errors import ModelDownloadError\n"
        "try:\n"
        f"    get_embedder('vggish', model=sys.argv[1], cache_dir={str(tmp_path)!r})\n"
        "except ModelDownloadError as err:\n"
        "    print('refused:', err)\n"
        "print('tensorflow imported:', 'tensorflow' in sys.modules)\n"
    )
    with serve_files({}) as served:
        out = subprocess.run(
            [sys.executable, "-c", code, f"{served.url}/vggish/1"], capture_output=True, text=True, timeout=120
        )
    assert out.returncode == 0, out.stderr
    assert "refused:" in out.stdout and "404" in out.stdout
    assert "tensorflow imported: False" in out.stdout

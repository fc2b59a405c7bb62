"""HEAR modules as audiovec embedders: the conformance kit, round trips through audiovec's own HEAR modules."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

pytest.importorskip("torch")

import audiovec
from audiovec import Audio
from audiovec.embedders.hear import HEAREmbedder
from audiovec.errors import ConfigError, EmbeddingError, ModelLoadError, NonFiniteEmbeddingError
from audiovec.testing import check_embedder, synthetic_signal


def test_a_hear_module_passes_the_conformance_kit(tiny_hear):
    emb = HEAREmbedder(module=tiny_hear, context_s=7.0)
    assert (emb.sample_rate, emb.dim, emb.framework) == (16000, 8, "torch")
    assert emb.hop_s == pytest.approx(0.01)
    assert emb.window_s == pytest.approx(0.01)  # the HEAR API does not say; the hop unless set
    assert emb.context_s == pytest.approx(7.0)
    results = check_embedder(emb)
    assert all(r.passed for r in results)


def test_frames_are_the_modules_own_output(tiny_hear):
    import torch

    module = __import__(tiny_hear)
    emb = HEAREmbedder(module=tiny_hear, window_s=0.025)
    x = synthetic_signal(2.5, 16000)
    fe = emb.embed(Audio(x, 16000))
    ref, ts = module.get_timestamp_embeddings(torch.from_numpy(x)[None], module.load_model())
    np.testing.assert_array_equal(fe.vectors, ref[0].numpy())
    np.testing.assert_allclose(fe.timestamps, ts[0].numpy().astype(np.float64) / 1000.0, atol=1e-6)
    assert fe.window_s == 0.025 and fe.duration == 2.5 and fe.model == "hear"


def test_long_inputs_are_cut_into_windows_on_one_grid(tiny_hear):
    emb = HEAREmbedder(module=tiny_hear, context_s=1.0)
    x = synthetic_signal(3.5, 16000, seed=2)
    fe = emb.embed(Audio(x, 16000))
    # frames every 10 ms, each belonging to the window its centre falls in: one regular grid
    np.testing.assert_allclose(fe.timestamps, 0.01 * np.arange(len(fe)), atol=1e-6)
    assert len(fe) == 351  # the centred module's frames at 0, 10, ..., 3500 ms
    # frames away from a join are the same as the module's on the whole clip
    whole = HEAREmbedder(module=tiny_hear, context_s=10.0).embed(Audio(x, 16000))
    np.testing.assert_array_equal(fe.vectors[:90], whole.vectors[:90])
    np.testing.assert_allclose(fe.vectors[110:190], whole.vectors[110:190], rtol=1e-5, atol=1e-5)
    assert not np.allclose(fe.vectors[100], whole.vectors[100])  # the join: the window's edge is padded
    streamed = emb.embed_stream(Audio(x[i : i + 5000], 16000) for i in range(0, len(x), 5000))
    np.testing.assert_array_equal(streamed.vectors, fe.vectors)
    np.testing.assert_array_equal(streamed.timestamps, fe.timestamps)
    batch = emb.embed_batch([Audio(x, 16000), Audio(x[:8000], 16000)])
    np.testing.assert_allclose(batch[0].vectors, fe.vectors, rtol=1e-5, atol=1e-5)
    assert len(batch[1]) == 51


@pytest.mark.parametrize("name", ["mfcc", "logmel"])
def test_round_trip_through_audiovecs_own_hear_module(name):
    ref = audiovec.get_embedder(name)
    emb = audiovec.embedders.hear.HEAREmbedder(module=f"audiovec.hear.{name}", window_s=ref.window_s)
    assert (emb.sample_rate, emb.dim, emb.hop_s) == (ref.sample_rate, ref.dim, pytest.approx(ref.hop_s))
    audio = Audio(synthetic_signal(3.0, 22050, channels=2, seed=4), 22050)
    a, b = ref.embed(audio), emb.embed(audio)
    np.testing.assert_array_equal(b.vectors, a.vectors)
    np.testing.assert_allclose(b.timestamps[:-1], a.timestamps[:-1], atol=1e-6)  # the padded last frame aside
    assert b.timestamps[-1] <= b.duration
    assert emb.spec().params["module_version"] == audiovec.__version__


def test_round_trip_conformance_of_an_audiovec_hear_module():
    check_embedder(HEAREmbedder(module="audiovec.hear.mfcc", window_s=0.025, context_s=20.0))


def test_round_trip_yamnet(yamnet_tflite):
    ref = audiovec.get_embedder("yamnet", model=yamnet_tflite)
    emb = HEAREmbedder(module="audiovec.hear.yamnet", model_file_path=yamnet_tflite)
    assert (emb.dim, emb.hop_s) == (1024, pytest.approx(0.48))
    audio = Audio(synthetic_signal(4.0, 16000, seed=1), 16000)
    np.testing.assert_allclose(emb.embed(audio).vectors, ref.embed(audio).vectors, rtol=1e-5, atol=1e-6)


def test_weights_path_reaches_load_model(tiny_hear):
    x = Audio(synthetic_signal(1.0, 16000), 16000)
    one = HEAREmbedder(module=tiny_hear).embed(x).vectors
    two = HEAREmbedder(module=tiny_hear, model_file_path="2.0").embed(x).vectors
    np.testing.assert_allclose(two, one + np.log(2.0), rtol=1e-4, atol=1e-4)


def test_spec_pickle_and_registry_params(tiny_hear):
    emb = HEAREmbedder({"module": tiny_hear, "batch_size": 2}, device="cpu")
    params = emb.spec().params
    assert params["module"] == tiny_hear and params["module_version"] is None
    assert "device" not in params and "batch_size" not in params
    assert HEAREmbedder(module=tiny_hear, context_s=2.0).spec().key() != emb.spec().key()
    again = pickle.loads(pickle.dumps(emb))
    x = Audio(synthetic_signal(1.0, 16000), 16000)
    np.testing.assert_array_equal(again.embed(x).vectors, emb.embed(x).vectors)
    assert "tinyhear" in repr(emb)


def test_loading_errors(tiny_hear):
    with pytest.raises(ModelLoadError, match="cannot import the HEAR module 'no_such_hear_module'"):
        HEAREmbedder(module="no_such_hear_module")
    with pytest.raises(ModelLoadError, match="not a HEAR module"):
        HEAREmbedder(module="audiovec.pooling")
    with pytest.raises(ModelLoadError, match=r"torch.nn.Module or a tf.Module"):
        HEAREmbedder(module="nothear")
    with pytest.raises(ModelLoadError, match="load_model failed"):
        HEAREmbedder(module=tiny_hear, model_file_path="not a number")
    with pytest.raises(ConfigError, match="chunk_s does not apply"):
        HEAREmbedder(module=tiny_hear, chunk_s=5.0)
    with pytest.raises(ConfigError, match="module"):
        HEAREmbedder()
    with pytest.raises(ConfigError, match="device"):
        HEAREmbedder(module=tiny_hear, device="gpu")


def test_a_module_that_breaks_the_api_raises_embedding_error(tiny_hear, monkeypatch):
    emb = HEAREmbedder(module=tiny_hear)
    module = __import__(tiny_hear)
    real = module.get_timestamp_embeddings
    monkeypatch.setattr(module, "get_timestamp_embeddings", lambda audio, model: (real(audio, model)[0][:, :, :3], 0))
    with pytest.raises(EmbeddingError, match=r"expected \[1, frames, 8\]"):
        emb.embed(Audio(synthetic_signal(1.0, 16000), 16000))
    monkeypatch.setattr(module, "get_timestamp_embeddings", lambda audio, model: 1 / 0)
    with pytest.raises(EmbeddingError, match="ZeroDivisionError"):
        emb.embed(Audio(synthetic_signal(1.0, 16000), 16000))


def test_non_finite_output_is_refused(tiny_hear):
    emb = HEAREmbedder(module=tiny_hear)
    with pytest.raises(NonFiniteEmbeddingError):
        emb.embed(Audio(np.full(16000, 3e38, np.float32), 16000))


def test_a_tensorflow_hear_module(tiny_tf_hear):
    emb = HEAREmbedder(module=tiny_tf_hear)
    assert (emb.framework, emb.dim, emb.hop_s) == ("tf", 2, pytest.approx(0.02))
    x = synthetic_signal(1.01, 16000, seed=3)
    fe = emb.embed(Audio(x, 16000))
    assert len(fe) == 51
    np.testing.assert_allclose(fe.timestamps[:-1], 0.01 + 0.02 * np.arange(50), atol=1e-6)
    assert fe.timestamps[-1] == pytest.approx(1.01)  # the padded last frame's centre, inside the audio
    frames = np.pad(x, (0, 51 * 320 - len(x))).reshape(51, 320)
    np.testing.assert_allclose(fe.vectors[:, 0], frames.mean(1), atol=1e-6)
    np.testing.assert_allclose(fe.vectors[:, 1], np.sqrt((frames**2).mean(1)), rtol=1e-5)
    batch = emb.embed_batch([Audio(x, 16000), Audio(x[:4000], 16000)])
    np.testing.assert_allclose(batch[0].vectors, fe.vectors, rtol=1e-6, atol=1e-7)
    assert len(batch[1]) == 13


def test_the_registry_builds_it_by_name():
    from audiovec import get_embedder, list_embedders

    assert "hear" in list_embedders()
    emb = get_embedder("hear", module="audiovec.hear.mfcc")
    assert type(emb).__name__ == "HEAREmbedder" and emb.dim > 0

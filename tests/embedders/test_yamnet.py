"""YAMNet: real TFLite weights (conformance, exact framing, meaningful classes) and the TF SavedModel / Hub path."""

from __future__ import annotations

import hashlib
import re
import shutil

import numpy as np
import pytest
from ai_edge_litert import interpreter as litert

from audiovec import Audio, get_embedder, list_embedders, load
from audiovec.embedders import frame_count
from audiovec.embedders.yamnet import (
    DEFAULT_HANDLE,
    MODEL_ENV,
    YAMNetEmbedder,
    hub_cache_path,
    time_bare_interpreter,
)
from audiovec.errors import ConfigError, EmptyAudioError, ModelLoadError
from audiovec.testing import check_embedder, synthetic_signal
from fixtures_tf import CLASS_NAMES, make_tiny_yamnet

FRAME, HOP = 15600, 7680


@pytest.fixture(scope="module")
def tflite_path(shared_file):
    return shared_file("models/yamnet.tflite")


@pytest.fixture(scope="module")
def yamnet(tflite_path):
    return YAMNetEmbedder(model=str(tflite_path), num_threads=2)


@pytest.fixture(scope="module")
def speech_16k(shared_file):
    return load(shared_file("data/librosa/198-209-0000.ogg"), sr=16000).samples  # LibriSpeech, 13.9 s


@pytest.fixture(scope="module")
def tiny_savedmodel(tmp_path_factory):
    return make_tiny_yamnet(tmp_path_factory.mktemp("tiny_yamnet") / "model")


def _bare_tflite(path, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scores and embeddings of one bare-interpreter call on the whole waveform (the reference)."""
    it = litert.Interpreter(model_path=str(path), num_threads=1)
    index = it.get_input_details()[0]["index"]
    it.resize_tensor_input(index, [len(x)], strict=True)
    it.allocate_tensors()
    it.set_tensor(index, np.ascontiguousarray(x, dtype=np.float32))
    it.invoke()
    out = {int(d["shape"][-1]): it.get_tensor(d["index"]) for d in it.get_output_details()}
    return out[521], out[1024]


# ---------------------------------------------------------------------------------------- real TFLite weights
def test_registered_and_built_by_name(tflite_path):
    assert "yamnet" in list_embedders()
    emb = get_embedder("yamnet", model=str(tflite_path))
    assert isinstance(emb, YAMNetEmbedder) and emb.backend == "litert"
    assert (emb.dim, emb.sample_rate, emb.hop_s) == (1024, 16000, 0.48)
    assert emb.window_s == pytest.approx(0.975)


def test_conformance_real_weights(yamnet):
    """The whole kit, with a 120 s streamed input under the memory budget (the 600 s run is marked slow)."""
    results = check_embedder(yamnet, long_input_s=120.0)
    assert len(results) == 11 and all(r.passed for r in results)


@pytest.mark.slow
def test_conformance_real_weights_600s(yamnet):
    """The kit's default: a 600 s streamed input (1250 frames) with bounded traced memory."""
    results = check_embedder(yamnet)
    assert len(results) == 11 and all(r.passed for r in results)


@pytest.mark.parametrize("chunk_s", [30.0, 2.0])
@pytest.mark.parametrize(
    "n_samples",
    [1000, FRAME - 1, FRAME, FRAME + 1, FRAME + HOP, FRAME + HOP + 1, FRAME + 3 * HOP, FRAME + 27 * HOP, 200_003],
)
def test_frames_equal_one_interpreter_call_on_the_whole_waveform(tflite_path, speech_16k, n_samples, chunk_s):
    """Count and content: our chunked framing reproduces the model's own one-shot output frame for frame.

    The model pads to whole patches itself. At lengths where (n - 15600) is an exact multiple of 7680 its float32
    arithmetic sometimes adds one more patch that only re-covers the tail with zeros (e.g. 15600 + 3 * 7680);
    we return exactly the frames that cover the samples, so that patch is the only allowed difference.
    """
    emb = YAMNetEmbedder(model=str(tflite_path), chunk_s=chunk_s, num_threads=2)
    x = np.resize(speech_16k, n_samples)
    ours = emb.embed(Audio.from_array(x, 16000)).vectors
    scores, ref = _bare_tflite(tflite_path, x)
    n = frame_count(n_samples, FRAME, HOP)
    assert len(ours) == n
    on_boundary = n_samples > FRAME and (n_samples - FRAME) % HOP == 0
    assert len(ref) in ((n, n + 1) if on_boundary else (n,))
    np.testing.assert_allclose(ours, ref[:n], rtol=0, atol=1e-5)
    np.testing.assert_allclose(emb.frame_scores(Audio.from_array(x, 16000)).vectors, scores[:n], rtol=0, atol=1e-6)


def test_a_15360_sample_frame_would_not_match(tflite_path, speech_16k):
    """Why frame_length is 15600: a chunk ending 240 samples early changes its last frame a lot."""
    x = speech_16k[: FRAME + 9 * HOP]
    _, whole = _bare_tflite(tflite_path, x)
    _, short = _bare_tflite(tflite_path, x[: 15360 + 9 * HOP])
    assert len(short) == len(whole) == 10
    np.testing.assert_allclose(short[:9], whole[:9], atol=1e-5)
    assert np.abs(short[9] - whole[9]).max() > 0.05 * np.abs(whole[9]).max()


def test_top_classes_on_real_audio(yamnet, shared_file):
    for rel in (
        "data/librosa/198-209-0000.ogg",  # LibriSpeech read speech, 22.05 kHz
        "data/librosa/3436-172162-0000.ogg",
        "data/fsdd/7_jackson_3.flac",  # a spoken digit at 8 kHz
    ):
        (top, score), *_ = yamnet.classify(load(shared_file(rel)), top_k=3)
        assert top == "Speech" and score > 0.8, (rel, top, score)
    bird = [
        n
        for n, _ in yamnet.classify(
            load(shared_file("data/librosa/456440__inspectorj__bird-whistling-robin-single-13.ogg")), 3
        )
    ]
    assert "Bird" in bird, bird
    trumpet = [n for n, _ in yamnet.classify(load(shared_file("data/librosa/sorohanro_-_solo-trumpet-06.ogg")), 3)]
    assert "Trumpet" in trumpet, trumpet


def test_class_map_and_frame_scores(yamnet, speech_16k):
    names = yamnet.class_names
    assert len(names) == 521 and names[0] == "Speech" and names[132] == "Music"
    audio = Audio.from_array(speech_16k, 16000)
    fe, scores = yamnet.embed(audio), yamnet.frame_scores(audio)
    assert scores.vectors.shape == (len(fe), 521)
    np.testing.assert_array_equal(scores.timestamps, fe.timestamps)
    assert scores.vectors.min() >= 0.0 and scores.vectors.max() <= 1.0
    mean = dict(yamnet.classify(audio, top_k=521, pool="mean"))
    peak = dict(yamnet.classify(audio, top_k=521, pool="max"))
    assert mean["Speech"] == pytest.approx(float(scores.vectors[:, 0].mean()), rel=1e-6)
    assert peak["Speech"] == pytest.approx(float(scores.vectors[:, 0].max()), rel=1e-6)
    with pytest.raises(ConfigError):
        yamnet.classify(audio, top_k=0)
    with pytest.raises(ConfigError):
        yamnet.classify(audio, pool="median")  # type: ignore[arg-type]
    with pytest.raises(EmptyAudioError):
        yamnet.classify(Audio(np.zeros(0, np.float32), 16000, "empty"))


def test_class_map_location(tflite_path, tmp_path, shared_file):
    alone = tmp_path / "yamnet.tflite"
    shutil.copy(tflite_path, alone)
    emb = YAMNetEmbedder(model=str(alone))
    with pytest.raises(ModelLoadError, match=re.escape("yamnet_class_map.csv")):
        _ = emb.class_names
    csv = shared_file("models/yamnet_class_map.csv")
    assert YAMNetEmbedder(model=str(alone), class_map=str(csv)).class_names[0] == "Speech"


def test_spec_identifies_the_weights_not_the_path(tflite_path, tmp_path):
    a = YAMNetEmbedder(model=str(tflite_path))
    assert a.spec().params == {
        "backend": "litert",
        "weights": "yamnet.tflite",
        "sha256": hashlib.sha256(tflite_path.read_bytes()).hexdigest(),
    }
    copy = tmp_path / "yamnet.tflite"
    shutil.copy(tflite_path, copy)
    same = YAMNetEmbedder(model=str(copy), num_threads=1, chunk_s=5.0)
    assert same.spec().key() == a.spec().key()
    (tmp_path / "other").mkdir()
    changed = tmp_path / "other" / "yamnet.tflite"
    changed.write_bytes(tflite_path.read_bytes() + b"\0" * 16)  # still loads, different bytes
    assert YAMNetEmbedder(model=str(changed)).spec().key() != a.spec().key()


def test_model_is_loaded_once(tflite_path, monkeypatch, speech_16k):
    made = []

    class Counting(litert.Interpreter):
        def __init__(self, *args, **kwargs):
            made.append(kwargs)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(litert, "Interpreter", Counting)
    emb = YAMNetEmbedder(model=str(tflite_path), num_threads=3)
    audios = [Audio.from_array(speech_16k[: 16000 * s], 16000) for s in (1, 4, 9)]
    emb.embed_batch(audios)
    for a in audios:
        emb.embed(a)
        emb.classify(a)
    assert len(made) == 1 and made[0]["num_threads"] == 3


def test_model_errors_name_what_was_tried(tmp_path, no_network):
    with pytest.raises(ModelLoadError, match=re.escape("missing.tflite")):
        YAMNetEmbedder(model=str(tmp_path / "missing.tflite"))
    garbage = tmp_path / "garbage.tflite"
    garbage.write_bytes(b"not a flatbuffer" * 100)
    with pytest.raises(ModelLoadError, match=re.escape("garbage.tflite")):
        YAMNetEmbedder(model=str(garbage))
    with pytest.raises(ModelLoadError, match=re.escape("neither a .tflite file")):
        YAMNetEmbedder(model=str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError):
        YAMNetEmbedder(model=str(garbage), num_threads=0)


def test_environment_variable_selects_the_model(tflite_path, monkeypatch):
    monkeypatch.setenv(MODEL_ENV, str(tflite_path))
    emb = YAMNetEmbedder()
    assert emb.backend == "litert" and emb.spec().params["weights"] == "yamnet.tflite"


def test_offline_handle_not_in_cache_fails_without_network(tmp_path, monkeypatch, no_network):
    expected = hub_cache_path(DEFAULT_HANDLE, tmp_path)
    with pytest.raises(ModelLoadError, match=re.escape(str(expected))):
        YAMNetEmbedder(model=DEFAULT_HANDLE, cache_dir=str(tmp_path), local_files_only=True)
    monkeypatch.delenv(MODEL_ENV, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path))
    with pytest.raises(ModelLoadError, match="local_files_only"):
        YAMNetEmbedder()  # the default handle, offline by environment


def test_time_bare_interpreter(tflite_path, speech_16k):
    times = time_bare_interpreter(tflite_path, Audio.from_array(speech_16k[:48000], 16000), repeats=2)
    assert len(times) == 2 and all(t > 0 for t in times)
    with pytest.raises(ConfigError):
        time_bare_interpreter(tflite_path, Audio.from_array(speech_16k[:48000], 16000), repeats=0)


# ---------------------------------------------------------------------------------------- TF SavedModel / Hub
def test_savedmodel_frames_equal_one_call_on_the_whole_waveform(tiny_savedmodel, speech_16k):
    import tensorflow as tf

    emb = YAMNetEmbedder(model=str(tiny_savedmodel), chunk_s=2.0)
    assert emb.backend == "tensorflow" and emb.spec().params["weights"] == "model"
    model = tf.saved_model.load(str(tiny_savedmodel))
    xs = [speech_16k[:n] for n in (5000, FRAME + HOP, FRAME + 5 * HOP + 17, len(speech_16k))]
    batch = emb.embed_batch([Audio.from_array(x, 16000) for x in xs])
    for x, fe in zip(xs, batch, strict=True):
        scores, ref, _ = (t.numpy() for t in model(tf.constant(x)))
        assert len(fe) == len(ref) == frame_count(len(x), FRAME, HOP)
        np.testing.assert_allclose(fe.vectors, ref, rtol=1e-5, atol=1e-5)
        single = emb.embed(Audio.from_array(x, 16000))
        np.testing.assert_allclose(single.vectors, ref, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(emb.frame_scores(Audio.from_array(x, 16000)).vectors, scores, atol=1e-6)


def test_savedmodel_conformance(tiny_savedmodel):
    results = check_embedder(YAMNetEmbedder(model=str(tiny_savedmodel)), long_input_s=120.0)
    assert all(r.passed for r in results)


def test_hub_handle_is_served_from_the_cache_offline(tiny_savedmodel, tmp_path, no_network):
    handle = "https://tfhub.dev/google/yamnet/1"
    shutil.copytree(tiny_savedmodel, hub_cache_path(handle, tmp_path))
    emb = YAMNetEmbedder(model=handle, cache_dir=str(tmp_path), local_files_only=True)
    assert emb.backend == "tensorflow" and emb.spec().params["weights"] == handle
    local = YAMNetEmbedder(model=str(tiny_savedmodel))
    assert emb.spec().params["sha256"] == local.spec().params["sha256"]
    audio = Audio.from_array(synthetic_signal(3.0, 16000), 16000)
    np.testing.assert_array_equal(emb.embed(audio).vectors, local.embed(audio).vectors)
    assert emb.class_names == tuple(CLASS_NAMES)  # the SavedModel's own class-map asset
    assert emb.classify(audio, top_k=1)[0][0].startswith("tiny class ")


def test_savedmodel_without_yamnet_interface_is_rejected(tmp_path):
    import tensorflow as tf

    class NotYamnet(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
        def __call__(self, x):
            return x[None, :4], x[None, :8], x[None, :2]

    tf.saved_model.save(NotYamnet(), str(tmp_path / "m"))
    with pytest.raises(ModelLoadError, match="expected"):
        YAMNetEmbedder(model=str(tmp_path / "m"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match=re.escape("saved_model.pb")):
        YAMNetEmbedder(model=str(tmp_path / "empty"))

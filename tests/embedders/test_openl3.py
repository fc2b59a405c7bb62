"""OpenL3: conformance, agreement with openl3's own framing, both Keras generations, loading and validation.

The ``openl3`` package cannot be installed here (its setup.py downloads the weights), so the tests use tiny Keras
models with openl3's input and output shapes: ``[batch, 1, 48000]`` waveforms (its default "kapre" front end) or
``[batch, freq, time, 1]`` spectrograms (its "librosa" front end) -> ``[batch, 512]``. ``openl3_reference`` below
re-states, from ``openl3/core.py`` (``_preprocess_audio_batch``, ``_pad_audio``, ``get_audio_embedding``,
``_librosa_*_frontend``), what ``openl3.get_audio_embedding(audio, 48000, model=model, ...)`` computes.
"""

from __future__ import annotations

import sys
import types

import librosa
import numpy as np
import pytest

import audiovec
from audiovec import Audio, get_embedder, load
from audiovec.embedders.openl3 import LIBROSA_INPUT_SHAPES, OpenL3Embedder, librosa_frontend
from audiovec.errors import ConfigError, MissingDependencyError, ModelLoadError
from audiovec.testing import check_embedder, synthetic_signal

SR = 48000


def tiny_l3(keras_module, *, seed: int = 0, dim: int = 512, input_repr: str | None = None):
    """A small model with openl3's input/output shapes: a learned filterbank on 10 ms slices, pooled, projected.

    ``input_repr=None`` takes waveforms like openl3's kapre models; otherwise spectrograms like its librosa ones.
    """
    k = keras_module
    init = k.initializers.GlorotUniform
    if input_repr is None:
        inp = k.Input(shape=(1, SR))
        x = k.layers.Reshape((480, 100))(inp)
        x = k.layers.Dense(32, use_bias=False, kernel_initializer=init(seed=seed))(x)
        x = k.layers.Activation("softplus")(x)
        x = k.layers.GlobalAveragePooling1D()(x)
    else:
        inp = k.Input(shape=(*LIBROSA_INPUT_SHAPES[input_repr], 1))
        x = k.layers.Conv2D(8, (3, 3), strides=(2, 2), kernel_initializer=init(seed=seed))(inp)
        x = k.layers.Activation("relu")(x)
        x = k.layers.GlobalAveragePooling2D()(x)
    out = k.layers.Dense(dim, kernel_initializer=init(seed=seed + 1))(x)
    return k.Model(inp, out)


def openl3_reference(audio, model, *, center=True, hop_size=0.1, batch_size=32, input_repr=None):
    """openl3.get_audio_embedding's framing and model call, for 48 kHz mono input (see the module docstring)."""
    frame_len, hop_len = SR, int(hop_size * SR)
    x = np.asarray(audio, dtype=np.float32)
    if center:
        x = np.pad(x, (int(frame_len / 2.0), 0))
    if x.size < frame_len:
        pad = frame_len - x.size
    else:
        pad = int(np.ceil((x.size - frame_len) / float(hop_len))) * hop_len - (x.size - frame_len)
    x = np.pad(x, (0, max(pad, 0)))
    n = 1 + int((len(x) - frame_len) / float(hop_len))
    batch = np.stack([x[i * hop_len : i * hop_len + frame_len] for i in range(n)])[:, None, :]
    if input_repr is not None:
        batch = np.stack([_openl3_librosa_frontend(b[0], input_repr) for b in batch])[..., None]
    emb = model.predict(batch, verbose=0, batch_size=batch_size)
    return emb, np.arange(n) * hop_size


def _openl3_librosa_frontend(frame, input_repr):
    """openl3's ``_librosa_linear_frontend`` / ``_librosa_mel_frontend`` for one window (keyword arguments)."""
    if input_repr == "linear":
        s = np.abs(librosa.stft(frame, n_fft=512, hop_length=242, center=False))
    else:
        s = librosa.feature.melspectrogram(
            y=frame, sr=SR, n_mels=int(input_repr[3:]), n_fft=2048, hop_length=242, center=True, power=1.0,
            pad_mode="reflect",
        )  # fmt: skip
    s = librosa.power_to_db(s, ref=1.0, amin=1e-10, top_db=80.0)
    return s - s.max()


@pytest.fixture(scope="session")
def keras3():
    import keras

    return keras


@pytest.fixture(scope="session")
def tf_keras():
    import tf_keras

    return tf_keras


@pytest.fixture(scope="session")
def model(keras3):
    return tiny_l3(keras3)


@pytest.fixture(scope="session")
def emb(model):
    return OpenL3Embedder(model=model)


@pytest.fixture(scope="session")
def music(shared_file):
    """20 s of real music (the Jamendo excerpt), mono at 48 kHz."""
    return load(shared_file("data/music/jamendo_11266_query_69s-89s.mp3"), sr=SR).to_mono()


def test_conformance(emb):
    results = check_embedder(emb)
    assert len(results) == 11 and all(r.passed for r in results)
    assert (emb.dim, emb.sample_rate, emb.frame_length, emb.hop_length) == (512, SR, SR, 4800)


@pytest.mark.shared
@pytest.mark.parametrize("center", [True, False])
@pytest.mark.parametrize("hop_s", [0.1, 0.25, 1.0])
def test_vectors_equal_openl3_get_audio_embedding_on_real_music(model, music, center, hop_s):
    # chunk_s and batch_size far from openl3's must not change a single vector
    e = OpenL3Embedder(model=model, center=center, hop_s=hop_s, batch_size=7, chunk_s=1.7)
    for seconds in (0.3, 1.0, 2.37, 7.9):
        x = music.samples[: round(seconds * SR)]
        ref, ref_ts = openl3_reference(x, model, center=center, hop_size=hop_s)
        fe = e.embed(Audio(x, SR, "music"))
        assert fe.vectors.shape == ref.shape, (seconds, fe.vectors.shape, ref.shape)
        np.testing.assert_allclose(fe.vectors, ref, rtol=1e-4, atol=1e-5)
        assert fe.duration == pytest.approx(len(x) / SR)
        # our timestamps: the centre of the part of each window inside the audio; openl3's window centres
        # (ref_ts with center=True) wherever the whole window lies inside the audio
        start = ref_ts - 0.5 if center else ref_ts
        expected = (np.maximum(start, 0.0) + np.minimum(start + 1.0, fe.duration)) / 2
        np.testing.assert_allclose(fe.timestamps, expected, atol=1e-9)
        inside = (start >= 0) & (start + 1.0 <= fe.duration)
        np.testing.assert_allclose(fe.timestamps[inside], (start + 0.5)[inside], atol=1e-9)
        assert np.all(np.diff(fe.timestamps) > 0)


@pytest.mark.shared
def test_embed_batch_equals_openl3_list_input(model, emb, music):
    clips = [music.samples[a : a + n] for a, n in ((0, 30000), (SR, 3 * SR + 123), (5 * SR, SR // 2), (9 * SR, 2 * SR))]
    batch = emb.embed_batch([Audio(c, SR, f"clip{i}") for i, c in enumerate(clips)])
    for clip, fe in zip(clips, batch, strict=True):
        ref, _ = openl3_reference(clip, model)
        np.testing.assert_allclose(fe.vectors, ref, rtol=1e-4, atol=1e-5)


@pytest.mark.shared
@pytest.mark.parametrize("center", [True, False])
def test_streaming_a_44k_stereo_file_matches_one_shot(model, shared_file, center):
    """Real audio at 44.1 kHz stereo: streamed blocks, resampled on the fly, give the one-shot vectors."""
    path = shared_file("data/music/jamendo_11266_query_69s-89s.mp3")
    e = OpenL3Embedder(model=model, center=center, hop_s=0.5)
    whole = e.embed(load(path))
    streamed = e.embed_file(path, block_s=3.3)
    assert len(whole) == len(streamed) and whole.duration == pytest.approx(streamed.duration, abs=1e-4)
    np.testing.assert_allclose(streamed.vectors, whole.vectors, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(streamed.timestamps, whole.timestamps)
    blocks = [Audio(synthetic_signal(1.1, 22050, channels=2, seed=5, start=1.1 * i), 22050, "s") for i in range(4)]
    one = Audio(np.concatenate([b.samples for b in blocks], axis=1), 22050, "s")
    np.testing.assert_allclose(e.embed_stream(blocks).vectors, e.embed(one).vectors, rtol=1e-3, atol=1e-3)


def test_tf_keras_models_and_plain_callables_give_the_same_vectors(keras3, tf_keras, model, emb):
    legacy = tiny_l3(tf_keras, seed=7)
    legacy.set_weights(model.get_weights())
    x = Audio(synthetic_signal(3.3, SR, seed=8), SR, "x")
    ref = emb.embed(x).vectors
    np.testing.assert_allclose(OpenL3Embedder(model=legacy).embed(x).vectors, ref, rtol=1e-4, atol=1e-5)
    seen = []

    def plain(batch):  # no predict method: just a function of [batch, 1, 48000]
        seen.append(batch.shape)
        return model(batch, training=False)

    np.testing.assert_allclose(OpenL3Embedder(model=plain).embed(x).vectors, ref, rtol=1e-4, atol=1e-5)
    assert seen[0] == (1, 1, SR) and all(s[1:] == (1, SR) and s[0] <= 32 for s in seen)


@pytest.mark.parametrize("input_repr", ["linear", "mel128", "mel256"])
def test_librosa_frontend_matches_openl3_preprocessing(keras3, input_repr):
    m = tiny_l3(keras3, input_repr=input_repr, seed=3)
    e = OpenL3Embedder(model=m, frontend="librosa", input_repr=input_repr, hop_s=0.5)
    x = synthetic_signal(2.2, SR, seed=9)
    ref, _ = openl3_reference(x, m, hop_size=0.5, input_repr=input_repr)
    fe = e.embed(Audio(x, SR, "x"))
    np.testing.assert_allclose(fe.vectors, ref, rtol=1e-3, atol=1e-4)
    frames = np.stack([synthetic_signal(1.0, SR, seed=s) for s in (1, 2)])
    spec = librosa_frontend(frames, input_repr)
    assert spec.shape == (2, *LIBROSA_INPUT_SHAPES[input_repr]) and spec.dtype == np.float32
    np.testing.assert_allclose(spec[1], _openl3_librosa_frontend(frames[1], input_repr), atol=1e-3)
    assert spec.max() == 0.0 and spec.min() >= -80.0


def test_the_model_must_fit_the_configuration(keras3, model, tmp_path):
    with pytest.raises(ConfigError, match="6144-d vectors but embedding_size=512"):
        OpenL3Embedder(model=tiny_l3(keras3, dim=6144))
    assert OpenL3Embedder(model=tiny_l3(keras3, dim=6144), embedding_size=6144, hop_s=1.0).dim == 6144
    with pytest.raises(ConfigError, match="frontend='librosa'"):
        OpenL3Embedder(model=model, frontend="librosa")
    with pytest.raises(ConfigError, match="input_repr='linear'"):
        OpenL3Embedder(model=tiny_l3(keras3, input_repr="mel256"), frontend="librosa", input_repr="linear")
    with pytest.raises(ConfigError, match="not both"):
        OpenL3Embedder(model=model, model_path=str(tmp_path / "m.keras"))
    for bad in ({"hop_s": 0}, {"hop_s": 1.5}, {"hop_s": 1e-6}, {"embedding_size": 128}, {"input_repr": "mel64"}):
        with pytest.raises(ConfigError):
            OpenL3Embedder(model=model, **bad)

    def broken(batch):
        raise RuntimeError("kernel exploded")

    with pytest.raises(ModelLoadError, match="kernel exploded"):
        OpenL3Embedder(model=broken)


# Keras 3's own saving code trips NumPy 2's __array__(copy=...) deprecation; that is Keras', not ours.
@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")
@pytest.mark.filterwarnings("ignore:You are saving your model as an HDF5 file:UserWarning")
def test_model_path_loads_keras3_and_tf_keras_files(keras3, tf_keras, model, emb, tmp_path):
    x = Audio(synthetic_signal(2.0, SR, seed=11), SR, "x")
    ref = emb.embed(x).vectors
    model.save(tmp_path / "l3.keras")
    from_keras = OpenL3Embedder(model_path=tmp_path / "l3.keras")
    np.testing.assert_allclose(from_keras.embed(x).vectors, ref, rtol=1e-5, atol=1e-6)
    assert from_keras.spec().params["model"] == str(tmp_path / "l3.keras")
    legacy = tiny_l3(tf_keras)
    legacy.set_weights(model.get_weights())
    legacy.save(tmp_path / "l3.h5")
    np.testing.assert_allclose(
        OpenL3Embedder(model_path=str(tmp_path / "l3.h5")).embed(x).vectors, ref, rtol=1e-4, atol=1e-5
    )
    with pytest.raises(ModelLoadError, match="does not exist"):
        OpenL3Embedder(model_path=str(tmp_path / "missing.h5"))
    (tmp_path / "junk.h5").write_bytes(b"not a model")
    with pytest.raises(ModelLoadError) as info:
        OpenL3Embedder(model_path=str(tmp_path / "junk.h5"))
    for tried in ("keras.saving.load_model", "tf_keras.models.load_model", "load_audio_embedding_model_from_path"):
        assert tried in str(info.value)


def test_without_a_model_the_openl3_package_loader_is_used_once(model, monkeypatch):
    calls = []

    def load_audio_embedding_model(input_repr, content_type, embedding_size, frontend="kapre"):
        calls.append((input_repr, content_type, embedding_size, frontend))
        return model

    fake = types.ModuleType("openl3")
    fake.__version__ = "0.4.2-fake"
    fake.models = types.ModuleType("openl3.models")
    fake.models.load_audio_embedding_model = load_audio_embedding_model
    monkeypatch.setitem(sys.modules, "openl3", fake)
    monkeypatch.setitem(sys.modules, "openl3.models", fake.models)
    e = get_embedder("openl3", input_repr="mel128", content_type="env", hop_s=0.5)
    for seed in range(3):
        e.embed(Audio(synthetic_signal(1.5, SR, seed=seed), SR, "x"))
    assert calls == [("mel128", "env", 512, "kapre")]
    assert e.spec().params["model"] == "openl3==0.4.2-fake:mel128_env"

    def failing(*args, **kwargs):
        raise OSError("openl3_audio_mel128_env.h5 not found")

    fake.models.load_audio_embedding_model = failing
    with pytest.raises(ModelLoadError, match=r"load_audio_embedding_model\(input_repr='mel128'.*not found"):
        OpenL3Embedder(input_repr="mel128", content_type="env")


def test_missing_openl3_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "openl3", None)
    with pytest.raises(MissingDependencyError, match=r"audiovec\[openl3\]"):
        OpenL3Embedder()


def test_spec_and_hop_follow_openl3(keras3, model, emb):
    same = OpenL3Embedder(model=model, batch_size=3, chunk_s=2.0)
    assert same.spec() == emb.spec()
    assert OpenL3Embedder(model=model, hop_s=0.5).spec().key() != emb.spec().key()
    assert OpenL3Embedder(model=model, center=False).spec().key() != emb.spec().key()
    assert OpenL3Embedder(model=tiny_l3(keras3, seed=5)).spec().params["weights_sha256"] != emb._weights
    odd = OpenL3Embedder(model=model, hop_s=0.29)
    assert odd.hop_length == int(0.29 * SR) == 13919  # truncated like openl3's int(hop_size * TARGET_SR)
    assert odd.hop_s == pytest.approx(13919 / SR)


def test_device_selection_and_registry(model, emb):
    import tensorflow as tf

    x = Audio(synthetic_signal(1.5, SR, seed=12), SR, "x")
    # "auto" runs on the CPU too unless TensorFlow sees a GPU, whose kernels round differently
    tol = 1e-3 if tf.config.list_physical_devices("GPU") else 0.0
    on_cpu = OpenL3Embedder(model=model, device="cpu").embed(x).vectors
    np.testing.assert_allclose(on_cpu, emb.embed(x).vectors, rtol=tol, atol=tol)
    with pytest.raises(ConfigError, match="device"):
        OpenL3Embedder(model=model, device="gpu:7")
    assert "openl3" in audiovec.list_embedders()
    assert isinstance(get_embedder("openl3", model=model), OpenL3Embedder)

"""Hugging Face encoders: the real transformers code path on tiny random models of each architecture.

The models are built by ``hf_fixtures`` with ``save_pretrained`` and loaded back by path with
``local_files_only=True``. Random weights say nothing about meaning, so these tests check plumbing against
transformers itself: that a window gives exactly what transformers gives for it, that batching, padding, masks,
windowing and streaming do not change the vectors, and that loading fails loudly. Tests that need the real
checkpoints are at the end, marked ``slow``, and read them from the Hugging Face cache only.
"""

from __future__ import annotations

import hashlib
import shutil
import socket
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers

import audiovec
import hf_fixtures as hx
from audiovec import Audio, get_embedder, load
from audiovec.embedders.hf import (
    ASTEmbedder,
    CLAPEmbedder,
    HFAudioConfig,
    HFAudioEmbedder,
    HuBERTEmbedder,
    Wav2Vec2Embedder,
    WhisperEmbedder,
)
from audiovec.errors import ConfigError, EmptyAudioError, ModelLoadError, NonFiniteAudioError
from audiovec.testing import check_embedder, synthetic_signal


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny models on 2 shared cores: OpenMP's second thread only adds contention (10-100x slower when busy)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# --------------------------------------------------------------------------------------------- tiny models
@pytest.fixture(scope="session")
def w2v_dir(tmp_path_factory):
    return hx.build_wav2vec2(tmp_path_factory.mktemp("w2v_group"))


@pytest.fixture(scope="session")
def w2v_layer_dir(tmp_path_factory):
    return hx.build_wav2vec2(tmp_path_factory.mktemp("w2v_layer"), norm="layer")


@pytest.fixture(scope="session")
def hubert_dir(tmp_path_factory):
    return hx.build_hubert(tmp_path_factory.mktemp("hubert"))


@pytest.fixture(scope="session")
def wavlm_dir(tmp_path_factory):
    return hx.build_wavlm(tmp_path_factory.mktemp("wavlm"))


@pytest.fixture(scope="session")
def whisper_dir(tmp_path_factory):
    return hx.build_whisper(tmp_path_factory.mktemp("whisper"))


@pytest.fixture(scope="session")
def ast_dir(tmp_path_factory):
    return hx.build_ast(tmp_path_factory.mktemp("ast"))


@pytest.fixture(scope="session")
def clap_dir(tmp_path_factory):
    return hx.build_clap(tmp_path_factory.mktemp("clap"))


@pytest.fixture(scope="session")
def clap_fused_dir(tmp_path_factory):
    return hx.build_clap(tmp_path_factory.mktemp("clap_fused"), fusion=True)


@pytest.fixture(scope="session")
def w2v(w2v_dir):
    return Wav2Vec2Embedder(model=w2v_dir, local_files_only=True)


@pytest.fixture(scope="session")
def clap(clap_dir):
    return CLAPEmbedder(model=clap_dir, local_files_only=True)


def _audio(seconds: float, sr: int, seed: int = 0) -> Audio:
    return Audio.from_array(synthetic_signal(seconds, sr, seed=seed), sr, f"signal{seed}")


def _spy_batches(monkeypatch, emb) -> list[list[int]]:
    """Record the window lengths of every model call."""
    calls: list[list[int]] = []
    original = emb._backend.run

    def run(batch, frames):
        calls.append([len(b) for b in batch])
        return original(batch, frames)

    monkeypatch.setattr(emb._backend, "run", run)
    return calls


# --------------------------------------------------------------------------------------------- conformance
# (class, model fixture, params, long-input seconds). The 600 s input runs on one CNN and one Whisper model by
# default (they share the windowing/streaming code with the others); the rest run it in the slow test below.
CONFORMANCE = [
    pytest.param(Wav2Vec2Embedder, "w2v_dir", {}, 600.0, id="wav2vec2-groupnorm"),
    pytest.param(WhisperEmbedder, "whisper_dir", {}, 600.0, id="whisper"),
    pytest.param(Wav2Vec2Embedder, "w2v_layer_dir", {}, 60.0, id="wav2vec2-layernorm-mask"),
    pytest.param(Wav2Vec2Embedder, "w2v_dir", {"layer": "extract_features"}, 60.0, id="wav2vec2-extract_features"),
    pytest.param(HuBERTEmbedder, "hubert_dir", {"layer": 1}, 60.0, id="hubert-layer1"),
    pytest.param(HFAudioEmbedder, "wavlm_dir", {}, 60.0, id="hf-wavlm"),
    pytest.param(ASTEmbedder, "ast_dir", {}, 60.0, id="ast"),
    pytest.param(CLAPEmbedder, "clap_dir", {}, 60.0, id="clap"),
]


@pytest.mark.parametrize(("cls", "model", "params", "long_s"), CONFORMANCE)
def test_conformance(request, cls, model, params, long_s):
    emb = cls(model=request.getfixturevalue(model), local_files_only=True, **params)
    results = check_embedder(emb, long_input_s=long_s)
    assert len(results) == 11 and all(r.passed for r in results)


@pytest.mark.slow
@pytest.mark.parametrize(("cls", "model", "params", "long_s"), CONFORMANCE[2:])
def test_conformance_600s(request, cls, model, params, long_s):
    emb = cls(model=request.getfixturevalue(model), local_files_only=True, **params)
    assert all(r.passed for r in check_embedder(emb, long_input_s=600.0))


# --------------------------------------------------------------------------------------------- vs transformers
def _load_ref(path, cls=transformers.AutoModel):
    model = cls.from_pretrained(path, local_files_only=True).eval()
    fe = transformers.AutoFeatureExtractor.from_pretrained(path, local_files_only=True)
    return model, fe


@pytest.mark.parametrize("fixture", ["w2v_dir", "w2v_layer_dir", "hubert_dir"])
def test_cnn_models_match_transformers(request, fixture):
    """A window gives exactly transformers' output for it, for the last layer, a hidden layer and the CNN."""
    path = request.getfixturevalue(fixture)
    model, fe = _load_ref(path)
    n = 150  # an input of exactly 150 frames: (n - 1) * hop + receptive field, no tail padding
    x = synthetic_signal(((n - 1) * 320 + 325) / 16000, 16000, seed=7)
    assert len(x) == (n - 1) * 320 + 325
    inputs = torch.from_numpy(fe(x, sampling_rate=16000, return_tensors="np")["input_values"])
    with torch.inference_mode():
        ref = model(inputs, output_hidden_states=True)
    audio = Audio.from_array(x, 16000)
    for layer, expected in [("last", ref.last_hidden_state), (1, ref.hidden_states[1]), (0, ref.hidden_states[0])]:
        ours = HFAudioEmbedder(model=path, local_files_only=True, layer=layer).embed(audio)
        assert ours.vectors.shape == (n, 32)
        np.testing.assert_allclose(ours.vectors, expected[0].numpy(), atol=1e-5)
    feats = HFAudioEmbedder(model=path, local_files_only=True, layer="extract_features").embed(audio).vectors
    if hasattr(ref, "extract_features"):  # Wav2Vec2 returns them; HuBERT does not
        np.testing.assert_allclose(feats, ref.extract_features[0].numpy(), atol=1e-5)
    assert feats.shape == (n, 24)


def test_whisper_matches_encoder_and_keeps_only_frames_over_audio(whisper_dir):
    model, fe = _load_ref(whisper_dir)
    encoder = model.get_encoder()
    emb = WhisperEmbedder(model=whisper_dir, local_files_only=True)
    assert (emb.context_s, emb.hop_s, emb.dim) == (2.0, 0.02, 32)
    x = synthetic_signal(3.3, 16000, seed=2)
    fe_out = emb.embed(Audio.from_array(x, 16000))
    assert len(fe_out) == 165  # ceil(3.3 s / 20 ms): window 1 (2 s) gives 100 tokens, the 1.3 s tail 65, not 100
    assert fe_out.timestamps[-1] < 3.3 and fe_out.duration == pytest.approx(3.3)
    np.testing.assert_allclose(np.diff(fe_out.timestamps)[:-1], 0.02, atol=1e-9)
    for k, (a, b, n) in enumerate([(0, 32000, 100), (32000, len(x), 65)]):
        feats = fe(x[a:b], sampling_rate=16000, return_tensors="pt")["input_features"]
        with torch.inference_mode():
            ref = encoder(feats).last_hidden_state[0, :n].numpy()
        np.testing.assert_allclose(fe_out.vectors[k * 100 : k * 100 + n], ref, atol=1e-5)
    # a shorter context: 1 s of audio per window, zero-padded to the encoder's 2 s
    short = WhisperEmbedder(model=whisper_dir, local_files_only=True, context_s=1.0)
    assert short.context_s == 1.0 and len(short.embed(Audio.from_array(x, 16000))) == 165
    with pytest.raises(ConfigError, match="outside Whisper's input length"):
        WhisperEmbedder(model=whisper_dir, local_files_only=True, context_s=2.5)


def test_ast_matches_transformers_pooled_output(ast_dir):
    model, fe = _load_ref(ast_dir)
    emb = ASTEmbedder(model=ast_dir, local_files_only=True)
    assert emb.output == "pooled" and emb.context_s == emb.hop_s == emb.window_s == 1.0
    x = synthetic_signal(2.4, 16000, seed=3)
    out = emb.embed(Audio.from_array(x, 16000))
    assert len(out) == 3
    np.testing.assert_allclose(out.timestamps, [0.5, 1.5, 2.2])  # centres of 0-1, 1-2 and 2-2.4 s
    for k, (a, b) in enumerate([(0, 16000), (16000, 32000), (32000, len(x))]):
        inputs = fe(x[a:b], sampling_rate=16000, return_tensors="pt")
        with torch.inference_mode():
            ref = model(**inputs)
        np.testing.assert_allclose(out.vectors[k], ref.pooler_output[0].numpy(), atol=1e-5)
    mean_layer = HFAudioEmbedder(model=ast_dir, local_files_only=True, layer=1).embed(
        Audio.from_array(x[:16000], 16000)
    )
    with torch.inference_mode():
        hidden = model(**fe(x[:16000], sampling_rate=16000, return_tensors="pt"), output_hidden_states=True)
    np.testing.assert_allclose(mean_layer.vectors[0], hidden.hidden_states[1][0].mean(0).numpy(), atol=1e-5)


def test_clap_audio_matches_transformers(clap_dir, clap):
    model, fe = _load_ref(clap_dir)
    x = synthetic_signal(0.7, 48000, seed=4)
    ours = clap.embed(Audio.from_array(x, 48000)).vectors
    inputs = fe(x, sampling_rate=48000, return_tensors="pt")
    with torch.inference_mode():
        ref = model.get_audio_features(**inputs).pooler_output
    ref = torch.nn.functional.normalize(ref, dim=-1)[0].numpy()
    np.testing.assert_allclose(ours[0], ref, atol=1e-5)
    assert np.linalg.norm(ours, axis=1) == pytest.approx(1.0, abs=1e-5)


# --------------------------------------------------------------------------------------------- batching
def test_group_norm_models_batch_only_equal_lengths(monkeypatch, w2v_dir):
    """wav2vec2-base style: no attention mask, so padding would leak; equal-length windows share a call."""
    emb = Wav2Vec2Embedder(model=w2v_dir, local_files_only=True, batch_size=8)
    calls = _spy_batches(monkeypatch, emb)
    audios = [_audio(25.0, 16000, 1), _audio(12.0, 16000, 2), _audio(10.0, 16000, 3), _audio(1.3, 16000, 4)]
    batch = emb.embed_batch(audios)
    assert all(len(set(c)) == 1 for c in calls), calls
    assert sorted(len(c) for c in calls) == [1, 1, 1, 4]  # 4 full 10 s windows together; tails of 5, 2, 1.3 s alone
    for a, b in zip(audios, batch, strict=True):
        np.testing.assert_allclose(b.vectors, emb.embed(a).vectors, atol=1e-5)
    # the property is not free: a naive zero-padded batch (what the model sees without grouping) differs
    model, fe = _load_ref(w2v_dir)
    short, long_ = audios[3].samples, audios[0].samples[:32000]
    padded = fe([short, long_], sampling_rate=16000, padding="longest", return_tensors="pt")
    with torch.inference_mode():
        naive = model(padded["input_values"]).last_hidden_state[0, : len(batch[3])].numpy()
    assert np.abs(naive - batch[3].vectors).max() > 1e-2


def test_layer_norm_models_pad_with_attention_mask(monkeypatch, w2v_layer_dir):
    emb = Wav2Vec2Embedder(model=w2v_layer_dir, local_files_only=True, batch_size=8)
    calls = _spy_batches(monkeypatch, emb)
    audios = [_audio(d, 16000, i) for i, d in enumerate((1.3, 4.0, 2.2, 0.01))]
    batch = emb.embed_batch(audios)
    assert len(calls) == 1 and len(set(calls[0])) == 4  # one padded call with four different lengths
    for a, b in zip(audios, batch, strict=True):
        np.testing.assert_allclose(b.vectors, emb.embed(a).vectors, atol=1e-4)


def test_batch_size_bounds_every_model_call(monkeypatch, w2v_dir):
    emb = Wav2Vec2Embedder(model=w2v_dir, local_files_only=True, batch_size=2)
    calls = _spy_batches(monkeypatch, emb)
    out = emb.embed(_audio(55.0, 16000))
    assert max(len(c) for c in calls) == 2 and sum(len(c) for c in calls) == 6
    assert len(out) == 55 * 50  # a uniform 20 ms grid across the six windows, no frame lost at boundaries
    np.testing.assert_allclose(np.diff(out.timestamps)[:-1], 0.02, atol=1e-9)  # the last frame is clipped


def test_model_is_loaded_once(monkeypatch, w2v_dir):
    calls = []
    original = transformers.AutoModel.from_pretrained

    def counting(*args, **kwargs):
        calls.append(args[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(transformers.AutoModel, "from_pretrained", counting)
    emb = Wav2Vec2Embedder(model=w2v_dir, local_files_only=True)
    for i in range(3):
        emb.embed(_audio(1.0 + i, 16000, i))
    emb.embed_batch([_audio(0.5, 16000), _audio(0.7, 16000)])
    assert calls == [str(w2v_dir)]


# --------------------------------------------------------------------------------------------- long files
def test_streamed_file_equals_one_shot_on_real_music(w2v, shared_file):
    """A 98 s MP3 at 44.1 kHz: streamed in odd-sized blocks (continuous resampling) == decoded and embedded whole."""
    path = shared_file("data/music/jamendo_11266.mp3")
    whole = w2v.embed(load(path))
    streamed = w2v.embed_file(path, block_s=7.3)
    assert len(whole) == len(streamed) == whole.duration // 0.02 + 1
    np.testing.assert_allclose(streamed.timestamps, whole.timestamps)
    diff = np.abs(streamed.vectors - whole.vectors).max() / np.abs(whole.vectors).max()
    assert diff < 1e-3, diff  # only the resampler's block joins differ


def test_one_shot_embed_of_a_long_array_never_copies_it_whole(w2v_dir):
    """Windows are cut lazily and run batch by batch: memory grows with batch_size, not with the input."""
    emb = Wav2Vec2Embedder(model=w2v_dir, local_files_only=True, batch_size=2)
    x = (np.random.default_rng(0).standard_normal(300 * 16000) * 0.1).astype(np.float32)
    tracemalloc.start()
    try:
        out = emb.embed(Audio(x, 16000, "long"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(out) == 300 * 50
    assert peak < 0.5 * x.nbytes, (peak, x.nbytes)


def test_stream_errors(w2v):
    with pytest.raises(EmptyAudioError):
        w2v.embed_stream([])
    with pytest.raises(EmptyAudioError):
        w2v.embed_stream([Audio(np.zeros(0, np.float32), 16000, "empty")])
    bad = synthetic_signal(1.0, 16000)
    bad[5] = np.inf
    with pytest.raises(NonFiniteAudioError):
        w2v.embed_stream([_audio(1.0, 16000), Audio(bad, 16000, "bad")])
    with pytest.raises(ConfigError, match="changes sample rate"):
        w2v.embed_stream([_audio(1.0, 16000), _audio(1.0, 22050)])


# --------------------------------------------------------------------------------------------- CLAP
def test_clap_text_shares_the_audio_space(clap):
    texts = ["a dog barking", "rain on a roof", "a cat", "", "the same dog barking again and again"]
    vecs = clap.embed_text(texts)
    assert vecs.shape == (5, clap.dim) and vecs.dtype == np.float32
    assert clap.dim == clap.embed(_audio(0.5, 48000)).dim == 16
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(vecs, clap.embed_text(texts))  # deterministic
    one_by_one = np.concatenate([clap.embed_text([t]) for t in texts])  # padding + mask do not leak
    np.testing.assert_allclose(vecs, one_by_one, atol=1e-5)
    sims = vecs @ vecs.T
    assert sims[np.triu_indices(5, 1)].max() < 0.9999  # different texts, different vectors
    assert clap.embed_text([]).shape == (0, 16)
    with pytest.raises(ConfigError, match="list of strings"):
        clap.embed_text("a dog")
    with pytest.raises(ConfigError, match="expects strings"):
        clap.embed_text(["ok", 3])


@pytest.mark.parametrize("fixture", ["clap_dir", "clap_fused_dir"])
def test_clap_is_deterministic_and_leaves_numpy_rng_alone(request, fixture):
    """CLAP's feature extractor crops at random and (fusion) flips a random is_longer: none of it may happen."""
    emb = CLAPEmbedder(model=request.getfixturevalue(fixture), local_files_only=True, batch_size=3)
    audios = [_audio(d, 48000, i) for i, d in enumerate((2.5, 0.3, 1.0, 3.7))]
    np.random.seed(1234)  # noqa: NPY002 - the legacy global generator is what the feature extractor uses
    expected_next = np.random.random()  # noqa: NPY002
    np.random.seed(1234)  # noqa: NPY002
    first = emb.embed_batch(audios)
    assert np.random.random() == expected_next  # noqa: NPY002 - global state untouched
    again = [emb.embed(a) for a in audios]
    for a, b in zip(first, again, strict=True):
        np.testing.assert_allclose(a.vectors, b.vectors, atol=1e-5)
    assert [len(f) for f in first] == [3, 1, 1, 4]


def test_fused_clap_uses_no_fusion_for_windows(clap_fused_dir):
    """A window is never longer than the model's input, so is_longer is False, as in the original LAION code."""
    model, fe = _load_ref(clap_fused_dir)
    emb = CLAPEmbedder(model=clap_fused_dir, local_files_only=True)
    x = synthetic_signal(0.8, 48000, seed=9)
    inputs = fe(x, sampling_rate=48000, return_tensors="pt")
    with torch.inference_mode():
        plain = model.get_audio_features(inputs["input_features"], is_longer=torch.zeros(1, 1, dtype=torch.bool))
        fused = model.get_audio_features(inputs["input_features"], is_longer=torch.ones(1, 1, dtype=torch.bool))
    ours = emb.embed(Audio.from_array(x, 48000)).vectors[0]
    np.testing.assert_allclose(ours, plain.pooler_output[0].numpy(), atol=1e-5)
    assert np.abs(ours - fused.pooler_output[0].numpy()).max() > 1e-3  # transformers' random pick would differ


# --------------------------------------------------------------------------------------------- config, loading
def test_config_validation(w2v_dir):
    with pytest.raises(ConfigError, match="model"):
        HFAudioEmbedder()
    for bad in ({"device": "gpu"}, {"batch_size": 0}, {"chunk_s": 5.0}, {"dtype": "int8"}, {"layer": True}):
        with pytest.raises(ConfigError):
            HFAudioEmbedder(model=w2v_dir, local_files_only=True, **bad)
    for layer in (3, -4):  # 2 transformer layers: hidden_states[0..2]
        with pytest.raises(ConfigError, match="out of range"):
            Wav2Vec2Embedder(model=w2v_dir, local_files_only=True, layer=layer)
    assert HFAudioConfig(model="x").model_dump()["layer"] == "last"


def test_layers_and_dims(w2v_dir, whisper_dir, clap_dir):
    last = Wav2Vec2Embedder(model=w2v_dir, local_files_only=True)
    a = _audio(2.0, 16000)
    np.testing.assert_array_equal(
        last.embed(a).vectors, Wav2Vec2Embedder(model=w2v_dir, local_files_only=True, layer=2).embed(a).vectors
    )  # for this architecture hidden_states[-1] is the last hidden state
    assert Wav2Vec2Embedder(model=w2v_dir, local_files_only=True, layer="extract_features").dim == 24
    with pytest.raises(ConfigError, match="extract_features"):
        WhisperEmbedder(model=whisper_dir, local_files_only=True, layer="extract_features")
    with pytest.raises(ConfigError, match="layer='last'"):
        CLAPEmbedder(model=clap_dir, local_files_only=True, layer=1)


def test_device_selection(w2v_dir):
    emb = Wav2Vec2Embedder(model=w2v_dir, local_files_only=True, device="cpu")
    assert emb.device == "cpu" and next(emb._backend.model.parameters()).device.type == "cpu"
    if torch.cuda.is_available():
        gpu = Wav2Vec2Embedder(model=w2v_dir, local_files_only=True, device="cuda")
        a = _audio(3.0, 16000)
        np.testing.assert_allclose(gpu.embed(a).vectors, emb.embed(a).vectors, atol=1e-3)
    else:
        with pytest.raises(ConfigError, match="no CUDA device"):
            Wav2Vec2Embedder(model=w2v_dir, local_files_only=True, device="cuda")
        assert Wav2Vec2Embedder(model=w2v_dir, local_files_only=True, device="auto").device == "cpu"


def test_bfloat16_runs_and_returns_float32(w2v_dir):
    a = _audio(2.0, 16000)
    ref = Wav2Vec2Embedder(model=w2v_dir, local_files_only=True).embed(a).vectors
    low = Wav2Vec2Embedder(model=w2v_dir, local_files_only=True, dtype="bfloat16").embed(a).vectors
    assert low.dtype == np.float32
    cos = (ref * low).sum(1) / np.linalg.norm(ref, axis=1) / np.linalg.norm(low, axis=1)
    assert cos.min() > 0.98


def test_presets_refuse_other_families(w2v_dir, whisper_dir):
    with pytest.raises(ConfigError, match="expects a whisper checkpoint"):
        WhisperEmbedder(model=w2v_dir, local_files_only=True)
    with pytest.raises(ConfigError, match="hubert"):
        HuBERTEmbedder(model=whisper_dir, local_files_only=True)
    assert HFAudioEmbedder(model=whisper_dir, local_files_only=True).model_type == "whisper"


@pytest.fixture
def no_network(monkeypatch):
    """Fail the test on any attempt to open a connection or resolve a name."""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    return attempts


def test_missing_models_raise_model_load_error_without_network(tmp_path, monkeypatch, no_network, w2v_dir):
    with pytest.raises(ModelLoadError, match="no/such/dir"):
        HFAudioEmbedder(model=str(tmp_path / "no/such/dir"), local_files_only=True)
    with pytest.raises(ModelLoadError, match=r"facebook/wav2vec2-base.*local_files_only=True"):
        Wav2Vec2Embedder(local_files_only=True, cache_dir=tmp_path / "empty-cache")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # honoured even without local_files_only
    with pytest.raises(ModelLoadError, match="local_files_only=True"):
        HuBERTEmbedder(cache_dir=tmp_path / "empty-cache")
    assert no_network == []
    # a directory without its preprocessor config is incomplete: no silent defaults
    partial = tmp_path / "partial"
    shutil.copytree(w2v_dir, partial)
    (partial / "preprocessor_config.json").unlink()
    with pytest.raises(ModelLoadError, match="partial"):
        HFAudioEmbedder(model=partial, local_files_only=True)


def test_unsupported_architecture_is_a_model_load_error(tmp_path):
    cfg = transformers.BertConfig(
        vocab_size=10, hidden_size=8, num_hidden_layers=1, num_attention_heads=1, intermediate_size=8
    )
    transformers.BertModel(cfg).save_pretrained(tmp_path / "bert")
    with pytest.raises(ModelLoadError, match="model_type 'bert'"):
        HFAudioEmbedder(model=tmp_path / "bert", local_files_only=True)


def _fake_hub_cache(cache: Path, repo: str, src: Path) -> str:
    """Lay ``src`` out as the Hugging Face cache does: blobs named by hash, a snapshot of links, refs/main."""
    root = cache / f"models--{repo.replace('/', '--')}"
    commit = "0123456789abcdef0123456789abcdef01234567"
    snap = root / "snapshots" / commit
    (root / "blobs").mkdir(parents=True)
    snap.mkdir(parents=True)
    (root / "refs").mkdir()
    (root / "refs" / "main").write_text(commit)
    for f in src.iterdir():
        digest = hashlib.sha256(f.read_bytes()).hexdigest()
        shutil.copy(f, root / "blobs" / digest)
        (snap / f.name).symlink_to(Path("../../blobs") / digest)
    return commit


def test_loads_a_hub_id_from_the_cache_offline_and_spec_names_the_weights(tmp_path, no_network, w2v_dir):
    commit = _fake_hub_cache(tmp_path / "cache", "someone/tiny-wav2vec2", w2v_dir)
    emb = Wav2Vec2Embedder(model="someone/tiny-wav2vec2", cache_dir=tmp_path / "cache", local_files_only=True)
    a = _audio(1.5, 16000)
    np.testing.assert_array_equal(
        emb.embed(a).vectors, Wav2Vec2Embedder(model=w2v_dir, local_files_only=True).embed(a).vectors
    )
    params = emb.spec().params
    assert params["commit"] == commit and params["model"] == "someone/tiny-wav2vec2"
    weights = hashlib.sha256((w2v_dir / "model.safetensors").read_bytes()).hexdigest()
    local = Wav2Vec2Embedder(model=w2v_dir, local_files_only=True).spec().params
    assert params["weights_sha256"] == local["weights_sha256"]  # from the blob name vs. from reading the file
    assert hashlib.sha256(f"model.safetensors:{weights}".encode()).hexdigest()[:16] == local["weights_sha256"]
    assert no_network == []


def test_spec_identifies_weights_and_output(tmp_path, w2v_dir):
    other = hx.build_wav2vec2(tmp_path / "other", seed=42)  # same architecture, other weights
    a = Wav2Vec2Embedder(model=w2v_dir, local_files_only=True)
    b = Wav2Vec2Embedder(model=w2v_dir, local_files_only=True, batch_size=1, device="cpu")
    c = Wav2Vec2Embedder(model=other, local_files_only=True)
    d = Wav2Vec2Embedder(model=w2v_dir, local_files_only=True, layer=1)
    assert a.spec().key() == b.spec().key()  # batch size and device do not change the output
    moved = shutil.copytree(w2v_dir, tmp_path / "elsewhere" / w2v_dir.name)
    assert Wav2Vec2Embedder(model=moved, local_files_only=True).spec().key() == a.spec().key()  # same on any machine
    assert c.spec().params["weights_sha256"] != a.spec().params["weights_sha256"]
    assert len({a.spec().key(), d.spec().key()}) == 2
    assert a.spec().name == "wav2vec2" and a.spec().params["window_samples"] == 160000


def test_registry_and_lazy_imports(w2v_dir):
    assert {"hf", "wav2vec2", "hubert", "whisper", "ast", "clap"} <= set(audiovec.list_embedders())
    emb = get_embedder("hf", model=str(w2v_dir), local_files_only=True)
    assert isinstance(emb, HFAudioEmbedder) and emb.name == "hf"
    code = (
        "import sys, audiovec, audiovec.embedders.hf; audiovec.list_embedders(); "
        "print(sorted({'torch', 'transformers'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --------------------------------------------------------------------------------------------- real weights
def _cached(repo: str) -> str:
    """The Hub id if its weights are in the local Hugging Face cache; skip otherwise (there is no download here)."""
    from huggingface_hub import try_to_load_from_cache

    for name in ("model.safetensors", "pytorch_model.bin"):
        if isinstance(try_to_load_from_cache(repo, name), str):
            return repo
    pytest.skip(f"{repo} is not in the Hugging Face cache (huggingface-cli download {repo})")
    raise AssertionError


@pytest.mark.slow
def test_real_wav2vec2_base_matches_transformers(shared_file):
    repo = _cached("facebook/wav2vec2-base")
    emb = Wav2Vec2Embedder(model=repo, local_files_only=True)
    assert (emb.dim, emb.hop_s, emb.window_s, emb.context_s) == (768, 0.02, 0.025, 10.0)
    audio = load(shared_file("data/fsdd/5_nicolas_3.flac"), sr=16000)
    x = audio.samples[: (len(audio.samples) - 400) // 320 * 320 + 400]  # whole frames: no tail padding
    model, fe = _load_ref(repo)
    with torch.inference_mode():
        ref = model(torch.from_numpy(fe(x, sampling_rate=16000, return_tensors="np")["input_values"]))
    np.testing.assert_allclose(emb.embed(Audio(x, 16000)).vectors, ref.last_hidden_state[0].numpy(), atol=1e-4)
    assert check_embedder(emb, long_input_s=60.0)


@pytest.mark.slow
def test_real_clap_finds_sounds_by_text(shared_file):
    repo = _cached("laion/clap-htsat-unfused")
    clap = CLAPEmbedder(model=repo, local_files_only=True)
    clips = {
        "a dog barking": "data/librosa/pibble.ogg",
        "a bird singing": "data/librosa/456440__inspectorj__bird-whistling-robin-single-13.ogg",
        "a solo trumpet": "data/librosa/sorohanro_-_solo-trumpet-06.ogg",
    }
    audio = np.stack([clap.embed(load(shared_file(p))).vectors.mean(0) for p in clips.values()])
    text = clap.embed_text(list(clips))
    assert (audio @ text.T).argmax(axis=1).tolist() == [0, 1, 2]

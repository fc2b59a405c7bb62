"""Fixtures of the HEAR tests: a tiny HEAR module package written to a temporary folder on ``sys.path``."""

from __future__ import annotations

import importlib
import sys
import textwrap

import pytest

#: A minimal HEAR 2021 module in PyTorch: centred 25 ms frames every 10 ms (hearbaseline's layout, timestamps
#: ``j * 10`` ms), each a fixed random projection of the frame's log power spectrum, 8-d, at 16 kHz.
TINY_HEAR = """
import math
import torch

class TinyModel(torch.nn.Module):
    sample_rate = 16000
    scene_embedding_size = 8
    timestamp_embedding_size = 8
    frame = 400
    hop = 160

    def __init__(self, scale=1.0):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.register_buffer("window", torch.hann_window(self.frame))
        self.register_buffer("projection", torch.rand(self.frame // 2 + 1, 8, generator=g) * scale)

    def forward(self, audio):
        half = self.frame // 2
        x = torch.nn.functional.pad(audio, (half, half))
        n = 1 + audio.shape[1] // self.hop
        need = (n - 1) * self.hop + self.frame
        x = torch.nn.functional.pad(x, (0, max(0, need - x.shape[1])))
        frames = x.unfold(1, self.frame, self.hop)[:, :n]
        power = torch.fft.rfft(frames * self.window).abs() ** 2
        return torch.log(power.matmul(self.projection) + 1e-6)

def load_model(model_file_path=""):
    return TinyModel(float(model_file_path) if model_file_path else 1.0)

def get_timestamp_embeddings(audio, model):
    if audio.ndim != 2:
        raise ValueError("audio must be [n_sounds, n_samples]")
    with torch.no_grad():
        emb = model(audio.to(torch.float32))
    ts = torch.arange(emb.shape[1], dtype=torch.float32) * model.hop / model.sample_rate * 1000.0
    return emb, ts.expand(audio.shape[0], -1)

def get_scene_embeddings(audio, model):
    return get_timestamp_embeddings(audio, model)[0].mean(1)
"""


@pytest.fixture
def tiny_hear(tmp_path, monkeypatch):
    """Import name of the tiny HEAR module (``tinyhear``), importable for the test's duration."""
    (tmp_path / "tinyhear").mkdir()
    (tmp_path / "tinyhear" / "__init__.py").write_text(textwrap.dedent(TINY_HEAR))
    (tmp_path / "nothear.py").write_text(
        "def load_model(model_file_path=''):\n    return object()\n\n"
        "def get_timestamp_embeddings(audio, model):\n    raise NotImplementedError\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    yield "tinyhear"
    for name in ("tinyhear", "nothear"):
        sys.modules.pop(name, None)


@pytest.fixture(scope="session")
def yamnet_tflite(shared_file):
    return str(shared_file("models/yamnet.tflite"))


#: The same idea in TensorFlow: back-to-back 20 ms frames at 16 kHz (first centre 10 ms), each frame's mean and RMS.
TINY_TF_HEAR = """
import tensorflow as tf

class TinyTFModel(tf.Module):
    sample_rate = 16000
    scene_embedding_size = 2
    timestamp_embedding_size = 2
    hop = 320

def load_model(model_file_path=""):
    return TinyTFModel()

def get_timestamp_embeddings(audio, model):
    n = max(1, -(-int(audio.shape[1]) // model.hop))
    x = tf.pad(audio, [[0, 0], [0, n * model.hop - int(audio.shape[1])]])
    frames = tf.reshape(x, (tf.shape(x)[0], n, model.hop))
    emb = tf.stack([tf.reduce_mean(frames, -1), tf.sqrt(tf.reduce_mean(frames**2, -1))], -1)
    ts = (tf.range(n, dtype=tf.float32) * model.hop + model.hop / 2) / model.sample_rate * 1000.0
    return emb, tf.tile(ts[None], (tf.shape(audio)[0], 1))

def get_scene_embeddings(audio, model):
    return tf.reduce_mean(get_timestamp_embeddings(audio, model)[0], 1)
"""


@pytest.fixture
def tiny_tf_hear(tmp_path, monkeypatch):
    """Import name of the tiny TensorFlow HEAR module (``tinytfhear``)."""
    pytest.importorskip("tensorflow")
    (tmp_path / "tinytfhear.py").write_text(textwrap.dedent(TINY_TF_HEAR))
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    yield "tinytfhear"
    sys.modules.pop("tinytfhear", None)

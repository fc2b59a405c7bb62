"""audiovec embedders as HEAR 2021 modules: the official validator, and the values behind its shape checks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import audiovec  # noqa: E402
from audiovec.errors import ConfigError, EmptyAudioError, NonFiniteAudioError  # noqa: E402
from audiovec.hear import (  # noqa: E402
    HEARModel,
    as_hear_model,
    frame_centres,
    get_scene_embeddings,
    get_timestamp_embeddings,
)
from audiovec.hear import load_model as load_any  # noqa: E402
from audiovec.hear import mfcc as hear_mfcc  # noqa: E402
from audiovec.testing import synthetic_signal  # noqa: E402
from ci import skip_or_fail  # noqa: E402


def _validator(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("hear-validator", path=os.path.dirname(sys.executable)) or shutil.which("hear-validator")
    if exe is None:
        skip_or_fail("hearvalidator is not installed (pip install --no-deps hearvalidator==2021.0.2)")
    pytest.importorskip("tensorflow")  # the validator imports it
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=300, check=False)


def test_hear_validator_passes_mfcc():
    run = _validator("audiovec.hear.mfcc")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Looks good!" in run.stdout
    assert "torch.Size([16, 199, 20])" in run.stdout  # 2 s at 16 kHz: 199 frames of 20 MFCCs


def test_hear_validator_passes_yamnet(yamnet_tflite):
    run = _validator("audiovec.hear.yamnet", "-m", yamnet_tflite)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Looks good!" in run.stdout
    assert "torch.Size([16, 4, 1024])" in run.stdout


def test_hear_validator_passes_a_config_file(tmp_path):
    cfg = tmp_path / "logmel.toml"
    cfg.write_text('embedder = "logmel"\nn_mels = 32\npooling = "mean_std"\n')
    run = _validator("audiovec.hear", "-m", str(cfg))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "scene_embedding_size: 64" in run.stdout


def test_timestamp_embeddings_are_the_embedders_vectors():
    model = hear_mfcc.load_model()
    assert isinstance(model, torch.nn.Module)
    assert (model.sample_rate, model.timestamp_embedding_size, model.scene_embedding_size) == (16000, 20, 20)
    x = np.stack([synthetic_signal(1.3, 16000, seed=s) for s in range(3)])
    emb, ts = get_timestamp_embeddings(torch.from_numpy(x), model)
    assert emb.dtype == torch.float32 and emb.shape == (3, 129, 20)
    assert ts.shape == (3, 129)
    ref = audiovec.get_embedder("mfcc")
    for i in range(3):
        expected = ref.embed(audiovec.Audio(x[i], 16000)).vectors
        np.testing.assert_array_equal(emb[i].numpy(), expected)
    # centres of whole 25 ms frames every 10 ms, in milliseconds, the padded last frame included
    np.testing.assert_allclose(ts[0].numpy(), 12.5 + 10.0 * np.arange(129), atol=1e-3)
    np.testing.assert_array_equal(ts[0].numpy(), ts[2].numpy())
    scene = get_scene_embeddings(torch.from_numpy(x), model)
    assert scene.dtype == torch.float32 and scene.shape == (3, 20)
    np.testing.assert_allclose(scene.numpy(), emb.numpy().mean(1), rtol=1e-5, atol=1e-5)


def test_timestamps_follow_the_framing_of_each_embedder():
    yam_like = audiovec.get_embedder("logmel", window_s=0.975, hop_s=0.48)
    np.testing.assert_allclose(frame_centres(yam_like, 4), [0.4875, 0.9675, 1.4475, 1.9275])


def test_numpy_input_and_scene_pooling():
    model = as_hear_model("mfcc", pooling="mean_std", n_mfcc=13)
    assert (model.timestamp_embedding_size, model.scene_embedding_size) == (13, 26)
    x = synthetic_signal(2.0, 16000)[None]
    scene = get_scene_embeddings(x, model)
    assert isinstance(scene, torch.Tensor) and scene.shape == (1, 26)
    frames = audiovec.get_embedder("mfcc", n_mfcc=13).embed(audiovec.Audio(x[0], 16000)).vectors
    np.testing.assert_allclose(scene[0, :13].numpy(), frames.mean(0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(scene[0, 13:].numpy(), frames.std(0), rtol=1e-4, atol=1e-4)


def test_an_embedder_at_a_rate_hear_does_not_allow_declares_the_next_one():
    model = as_hear_model("mfcc", sample_rate=8000)
    assert model.sample_rate == 16000  # the embedder resamples from the declared rate
    x = synthetic_signal(1.0, 16000)[None]
    emb, _ = get_timestamp_embeddings(torch.from_numpy(x), model)
    expected = audiovec.get_embedder("mfcc", sample_rate=8000).embed(audiovec.Audio(x[0], 16000)).vectors
    np.testing.assert_array_equal(emb[0].numpy(), expected)
    with pytest.raises(ConfigError, match="above every sample rate"):
        as_hear_model("mfcc", sample_rate=96000)


def test_config_files_and_their_errors(tmp_path):
    cfg = tmp_path / "m.json"
    cfg.write_text(json.dumps({"embedder": "mfcc", "n_mfcc": 7}))
    assert load_any(str(cfg)).timestamp_embedding_size == 7
    assert load_any(str(cfg), n_mfcc=9).timestamp_embedding_size == 9  # keywords override the file
    assert hear_mfcc.load_model(str(cfg)).timestamp_embedding_size == 7
    params = tmp_path / "p.toml"
    params.write_text("n_mfcc = 5\n")
    assert hear_mfcc.load_model(str(params)).timestamp_embedding_size == 5
    with pytest.raises(ConfigError, match="needs an embedder"):
        load_any()
    with pytest.raises(ConfigError, match="no weights file"):
        hear_mfcc.load_model(str(tmp_path / "weights.bin"))
    other = tmp_path / "o.json"
    other.write_text(json.dumps({"embedder": "logmel"}))
    with pytest.raises(ConfigError, match="another embedder"):
        hear_mfcc.load_model(str(other))
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="table"):
        load_any(str(bad))
    with pytest.raises(ConfigError, match="cannot read"):
        load_any(str(tmp_path / "missing.json"))
    with pytest.raises(ConfigError, match="invalid mfcc configuration"):
        load_any(embedder="mfcc", n_mfcc=-1)
    with pytest.raises(ConfigError, match="scene pooling"):
        as_hear_model("mfcc", pooling="median")


def test_bad_input_raises_typed_errors():
    model = hear_mfcc.load_model()
    with pytest.raises(ConfigError, match=r"\[n_sounds, n_samples\]"):
        get_timestamp_embeddings(torch.zeros(16000), model)
    with pytest.raises(ConfigError, match="no sounds"):
        get_scene_embeddings(torch.zeros(0, 16000), model)
    with pytest.raises(ConfigError, match="audiovec HEAR module"):
        get_timestamp_embeddings(torch.zeros(1, 16000), torch.nn.Linear(2, 2))
    with pytest.raises(EmptyAudioError):
        get_timestamp_embeddings(torch.zeros(2, 0), model)
    x = torch.zeros(1, 16000)
    x[0, 5] = float("nan")
    with pytest.raises(NonFiniteAudioError):
        get_scene_embeddings(x, model)
    assert isinstance(model, HEARModel) and "MFCCEmbedder" in repr(model)
    emb = model(torch.zeros(2, 800))  # forward() is the timestamp embeddings
    assert emb.shape == (2, 4, 20)


def test_without_torch_the_import_names_the_install(tmp_path):
    code = textwrap.dedent(
        """
        import importlib.abc, sys

        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "torch":
                    raise ImportError("torch is not installed (blocked by the test)")

        sys.meta_path.insert(0, Block())
        import audiovec.embedders.hear  # the embedder side imports no framework until a module needs one
        from audiovec.errors import MissingDependencyError
        try:
            import audiovec.hear.mfcc
        except MissingDependencyError as err:
            print(err)
        """
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    assert "pip install 'audiovec[hear]'" in run.stdout

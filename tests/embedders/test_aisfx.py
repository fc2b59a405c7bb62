"""aiSFX: the real checkpoint shipped in the aisfx wheel, run by our own front end and network code.

Golden values come from the package's own code, in the test: its librosa spectrogram helper (with the axes it
returns transposed, which its blocking function needs), ``spectrogram_normalize`` and ``blocking``, and its own
``CrossNet``/``EmbeddingNet`` loaded from the same checkpoint (``aisfx.inference.model_get_embedding``).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ci import require_module

torch = pytest.importorskip("torch")
require_module("aisfx", "pip install --no-deps aisfx==0.1.2")

from audiovec import Audio, get_embedder, list_embedders, load  # noqa: E402
from audiovec._registry import MissingExtra  # noqa: E402
from audiovec.embedders import aisfx as aisfx_module  # noqa: E402
from audiovec.embedders.aisfx import (  # noqa: E402
    EMBEDDING_DIM,
    AiSFXEmbedder,
    _numpy_globals,
    default_checkpoint_path,
)
from audiovec.errors import ConfigError, MissingDependencyError, ModelLoadError  # noqa: E402
from audiovec.testing import check_embedder, synthetic_signal  # noqa: E402

DEMO = Path(__file__).resolve().parents[2] / "src" / "audiovec" / "data" / "demo"
SR = 44100


@pytest.fixture(scope="module")
def emb() -> AiSFXEmbedder:
    return AiSFXEmbedder(num_threads=2)


@pytest.fixture(scope="module")
def package_model():
    """aiSFX's own model (``inference.load_bestModel``) on its own checkpoint."""
    from aisfx import inference

    # torch >= 2.6 loads weights only; the checkpoint's dataset table holds NumPy integers (see _numpy_globals)
    with torch.serialization.safe_globals(_numpy_globals()):
        weights, datasets = torch.load(inference.get_path_modelWeights(), map_location="cpu")
    return inference.load_bestModel(weights, datasets, "cpu")


def _package_embeddings(model, x: np.ndarray, tmp_path: Path) -> np.ndarray:
    """``aisfx.inference.main``'s pipeline (librosa spectrogram, 'original' normalisation, hop 0.5) on ``x``."""
    pytest.importorskip("librosa")
    from aisfx import inference, preprocessing
    from aisfx.spectrogram import spectrogram_librosa

    path = tmp_path / "clip.wav"
    sf.write(path, x, SR, subtype="FLOAT")  # at 44.1 kHz already: librosa.load does not resample
    spec = spectrogram_librosa.compute_spectrogram(str(path), float(SR), 2048, 1024, 96, 0.0, 22050.0)
    # the helper returns [mels, frames]; blocking wants [frames, mels]
    spec = preprocessing.spectrogram_normalize(spec.T)
    return inference.model_get_embedding(spec, 0.5, True, model, "cpu").numpy()


def _whole_stft_frames(x: np.ndarray) -> np.ndarray:
    """Trim to a multiple of 1024 samples: librosa then has no spectrogram frame centred past the last sample."""
    return np.ascontiguousarray(x[: len(x) // 1024 * 1024], dtype=np.float32)


def test_registered_with_packaged_weights(emb):
    assert "aisfx" in list_embedders()
    built = get_embedder("aisfx", hop=1.0)
    assert isinstance(built, AiSFXEmbedder)
    assert (emb.dim, emb.sample_rate, emb.frame_length, emb.hop_length) == (EMBEDDING_DIM, SR, 103424, 51200)
    assert built.hop_length == 102400
    assert emb.checkpoint_path == default_checkpoint_path()
    params = emb.spec().params
    assert params["weights"] == "checkpoint.pth" and len(params["sha256"]) == 64
    assert "checkpoint" not in params and "device" not in params
    assert emb.spec() == AiSFXEmbedder(batch_size=3).spec() != built.spec()


def test_conformance_real_weights(emb):
    """The kit but its long input (a 4 GFLOP network per frame: 30 s take 7 s); see the next test and the slow one."""
    results = check_embedder(emb, skip=("long_input",))
    assert len(results) == 10 and all(r.passed for r in results)


def test_streamed_in_chunks_equals_one_shot():
    emb = AiSFXEmbedder(chunk_s=1.2, num_threads=2)  # 1 frame per chunk
    x = synthetic_signal(5.0, SR)
    whole = emb.embed(Audio.from_array(x, SR, "x")).vectors
    blocks = (Audio.from_array(x[i : i + 30000], SR, "x") for i in range(0, len(x), 30000))
    streamed = emb.embed_stream(blocks).vectors
    assert whole.shape == streamed.shape == (4, EMBEDDING_DIM)
    np.testing.assert_allclose(streamed, whole, rtol=0, atol=1e-4)


@pytest.mark.slow
def test_conformance_real_weights_600s(emb):
    assert all(r.passed for r in check_embedder(emb))


def test_one_block_equals_the_package(emb, package_model, tmp_path):
    """A 1.6 s cymbal (one block): the package's whole-file peak normalisation is our per-frame one."""
    x = _whole_stft_frames(0.5 * load(DEMO / "cymbal" / "sonicpi__drum_cymbal_hard__l0.flac", sr=SR).samples)
    ref = _package_embeddings(package_model, x, tmp_path)
    ours = emb.embed(Audio.from_array(x, SR, "cymbal")).vectors
    assert ref.shape == ours.shape == (1, EMBEDDING_DIM)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-4)  # measured: 7e-7 (values up to 4.8)


def test_blocks_every_half_block_equal_the_package(package_model, tmp_path):
    """7.8 s of demo one-shots, peak 1 (so the package's normalisation is a no-op), ``normalize="none"``."""
    files = sorted(DEMO.glob("*/*.flac"))[:12]
    x = _whole_stft_frames(np.concatenate([load(f, sr=SR).samples for f in files]))
    x /= np.abs(x).max()
    ref = _package_embeddings(package_model, x, tmp_path)
    ours = AiSFXEmbedder(normalize="none").embed(Audio.from_array(x, SR, "demo")).vectors
    assert len(ref) == 5 and len(ours) == 6  # the package drops the partial last block; we pad it
    np.testing.assert_allclose(ours[:5], ref, rtol=0, atol=1e-4)  # measured: 3e-6 (values up to 5.1)


def test_peak_normalisation_is_per_frame(emb):
    x = load(DEMO / "snare" / "sonicpi__sn_dolf__l0.flac", sr=SR).samples
    loud = emb.embed(Audio.from_array(x, SR, "a")).vectors
    quiet = emb.embed(Audio.from_array(0.01 * x, SR, "b")).vectors
    np.testing.assert_allclose(quiet, loud, rtol=0, atol=1e-4)
    raw = AiSFXEmbedder(normalize="none")
    assert not np.allclose(raw.embed(Audio.from_array(0.01 * x, SR, "c")).vectors, loud, atol=1e-2)
    assert raw.spec() != emb.spec()


def test_missing_package_names_the_no_deps_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(aisfx_module.importlib.util, "find_spec", lambda n, *a: None if n == "aisfx" else real(n, *a))
    with pytest.raises(MissingDependencyError, match=r"pip install --no-deps aisfx==0\.1\.2"):
        AiSFXEmbedder()
    assert "--no-deps aisfx==0.1.2" in str(MissingExtra("aisfx", ("aisfx",)))


def test_bad_checkpoints_raise_model_load_error(tmp_path):
    with pytest.raises(ModelLoadError, match="not found"):
        AiSFXEmbedder(checkpoint=str(tmp_path / "nope.pth"))
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelLoadError, match="could not read"):
        AiSFXEmbedder(checkpoint=str(junk))
    wrong = tmp_path / "wrong.pth"
    torch.save(({"embedding_net.conv_block1.conv1.weight": torch.zeros(3, 3)}, {}), wrong)
    with pytest.raises(ModelLoadError, match="not an aiSFX checkpoint"):
        AiSFXEmbedder(checkpoint=str(wrong))


def test_invalid_parameters():
    with pytest.raises(ConfigError):
        AiSFXEmbedder(hop=0)
    with pytest.raises(ConfigError):
        AiSFXEmbedder(normalize="rms")
    with pytest.raises(ConfigError):
        AiSFXEmbedder(device="tpu")

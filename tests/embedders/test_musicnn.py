"""musicnn: the real TF1 checkpoints shipped in the musicnn wheel, read and run by our own code.

Golden values. musicnn's own code (``musicnn.extractor.extractor``) needs the Keras 2 ``tf.compat.v1.layers``,
which TensorFlow >= 2.16 provides only when ``TF_USE_LEGACY_KERAS=1`` is set before TensorFlow is imported, and it
takes about 12 s; so the numbers below were recorded once by running it, in a separate process with
``TF_USE_LEGACY_KERAS=1`` (tensorflow 2.21, tf-keras 2.21, librosa 0.11, numpy 2.4), on :func:`_clip` written to a
float WAV at 16 kHz::

    taggram, tags, features = musicnn.extractor.extractor("clip.wav", model=MODEL, extract_features=True)

and :func:`test_the_package_itself` (marked slow) repeats that run live. ``_clip`` is scaled to 0.1 because
musicnn computes ``log10(10000 * mel + 1)`` in float16, which overflows to infinity for louder audio. musicnn's
log-mel values are float16 (3 significant digits), ours float32: that is the tolerance below. musicnn's extractor
also repeats the first patch's ``penultimate`` features for every later patch (a bug in its batch loop), so only
the first patch's are recorded.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ci import require_module

pytest.importorskip("tensorflow")

from audiovec import Audio, get_embedder, list_embedders, load
from audiovec._registry import MissingExtra
from audiovec.embedders import musicnn as musicnn_module
from audiovec.embedders.musicnn import MusicnnEmbedder, musicnn_frontend, package_dir
from audiovec.errors import ConfigError, MissingDependencyError, ModelLoadError
from audiovec.testing import check_embedder

require_module("musicnn.configuration", "pip install --no-deps musicnn==0.1.0")  # plain constants: builds nothing

DEMO = Path(__file__).resolve().parents[2] / "src" / "audiovec" / "data" / "demo"
SR = 16000

# MTT_musicnn: the top 5 tags of each of the two whole patches (index, probability)
TAGGRAM_TOP = [
    ([0, 2, 5, 24, 11], [0.26066, 0.17289, 0.16321, 0.12386, 0.11069]),
    ([16, 31, 2, 24, 4], [0.19030, 0.16953, 0.16775, 0.15585, 0.12413]),
]
PENULTIMATE_0 = [0.46085, -0.03288, -0.09226, 0.26880, -0.07870, 0.21931, 0.20711, 0.17959, -0.02419, -0.48089]
MAX_POOL = [
    [-0.0002, -0.6242, 7.1606, 0.0000, -0.0000, 0.0001, 0.2037, -0.0003],
    [-0.0002, -0.6242, 5.4506, 0.0000, -0.0000, 0.0001, 0.0632, -0.0003],
]
# MTT_vgg
VGG_POOL5 = [
    [0.5203, 0.3488, 0.4955, -0.5793, -0.0368, 0.1596, -0.0703, -0.4526],
    [1.0489, -0.0096, 0.2881, -0.2854, -0.0368, -0.2732, 0.1206, -0.0889],
]
VGG_TAGGRAM_TOP = [([5, 11, 0], [0.31052, 0.19477, 0.14204]), ([1, 2, 22], [0.20326, 0.13569, 0.12861])]


def _clip() -> np.ndarray:
    """7.8 s: the first 12 demo one-shots end to end (16 kHz files: no resampling), times 0.1."""
    files = sorted(DEMO.glob("*/*.flac"))[:12]
    return np.concatenate([load(f).samples for f in files]).astype(np.float32) * np.float32(0.1)


@pytest.fixture(scope="module")
def emb() -> MusicnnEmbedder:
    return MusicnnEmbedder()


@pytest.fixture(scope="module")
def clip() -> Audio:
    return Audio.from_array(_clip(), SR, "demo")


def test_registered_with_packaged_weights(emb):
    assert "musicnn" in list_embedders()
    assert isinstance(get_embedder("musicnn", layer="taggram"), MusicnnEmbedder)
    assert (emb.dim, emb.sample_rate, emb.frame_length, emb.hop_length, emb.layer) == (
        200,
        SR,
        48128,
        47872,
        "penultimate",
    )
    assert emb.weights_dir == package_dir() / "MTT_musicnn"
    params = emb.spec().params
    assert params["model"] == "MTT_musicnn" and params["layer"] == "penultimate" and len(params["sha256"]) == 64
    assert len(emb.tags) == 50 and emb.tags[0] == "guitar"


def test_conformance_real_weights(emb):
    results = check_embedder(emb, long_input_s=30.0)
    assert all(r.passed for r in results), [r for r in results if not r.passed]


def test_musicnn_layers_equal_the_package(emb, clip):
    pen = emb.embed(clip).vectors
    assert pen.shape == (3, 200)  # the package drops the partial last patch; we pad it
    np.testing.assert_allclose(pen[0, :10], PENULTIMATE_0, rtol=0, atol=5e-3)  # measured 1e-3 (float16 log-mel)
    tag = MusicnnEmbedder(layer="taggram").embed(clip).vectors
    for row, (top, probs) in zip(tag, TAGGRAM_TOP, strict=False):
        assert list(np.argsort(-row)[:5]) == top
        np.testing.assert_allclose(row[top], probs, rtol=0, atol=1e-3)  # measured 2.4e-4
    mp = MusicnnEmbedder(layer="max_pool").embed(clip).vectors
    assert mp.shape == (3, 753)
    np.testing.assert_allclose(mp[:2, :8], MAX_POOL, rtol=0, atol=0.02)  # measured 0.06 over all 753 (scale 44)


def test_vgg_layers_equal_the_package(clip):
    pool5 = MusicnnEmbedder(model="MTT_vgg").embed(clip).vectors
    assert pool5.shape == (3, 256)
    np.testing.assert_allclose(pool5[:2, :8], VGG_POOL5, rtol=0, atol=5e-3)  # measured 2e-3 over all 256
    tag = MusicnnEmbedder(model="MTT_vgg", layer="taggram").embed(clip).vectors
    for row, (top, probs) in zip(tag, VGG_TAGGRAM_TOP, strict=False):
        assert list(np.argsort(-row)[:3]) == top
        np.testing.assert_allclose(row[top], probs, rtol=0, atol=1e-3)  # measured 1.3e-4


def test_msd_models_load():
    for model, dim in (("MSD_musicnn", 200), ("MSD_vgg", 256)):
        emb = MusicnnEmbedder(model=model)
        assert emb.dim == dim and emb.tags[0] == "rock"
        assert emb.embed(Audio.from_array(_clip()[:SR], SR, "x")).vectors.shape == (1, dim)


@pytest.mark.slow
def test_the_package_itself(emb, clip, tmp_path):
    """musicnn's own extractor, live: same network on its own patches (1e-4), same front end (float16 rounding)."""
    pytest.importorskip("librosa")
    pytest.importorskip("tf_keras")
    wav, out = tmp_path / "clip.wav", tmp_path / "ref.npz"
    sf.write(wav, clip.samples, SR, subtype="FLOAT")
    script = (
        "import sys, numpy as np\n"
        "from musicnn.extractor import extractor, batch_data\n"
        "tg, _, f = extractor(sys.argv[1], model='MTT_musicnn', extract_features=True)\n"
        "np.savez(sys.argv[2], taggram=tg, max_pool=f['max_pool'], patches=batch_data(sys.argv[1], 187, 187)[0])\n"
    )
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="3")
    subprocess.run([sys.executable, "-c", script, str(wav), str(out)], env=env, check=True, capture_output=True)
    ref = np.load(out)
    patches = ref["patches"].astype(np.float32)
    tags = MusicnnEmbedder(layer="taggram")
    np.testing.assert_allclose(tags.embed_patches(patches), ref["taggram"], rtol=0, atol=1e-4)
    padded = np.concatenate([np.zeros(256, np.float32), clip.samples, np.zeros(48128, np.float32)])
    ours = musicnn_frontend(padded, 2, 187)
    np.testing.assert_allclose(ours, patches, rtol=0, atol=5e-3)  # float16 log10 in musicnn
    np.testing.assert_allclose(tags.embed(clip).vectors[:2], ref["taggram"], rtol=0, atol=1e-3)


def test_layer_must_belong_to_the_model():
    with pytest.raises(ConfigError, match="not a layer of MTT_musicnn"):
        MusicnnEmbedder(layer="pool5")
    with pytest.raises(ConfigError, match="not a layer of MTT_vgg"):
        MusicnnEmbedder(model="MTT_vgg", layer="penultimate")
    with pytest.raises(ConfigError):
        MusicnnEmbedder(model="MSD_musicnn_big")


def test_hop_s_overlaps_patches(emb, clip):
    half = MusicnnEmbedder(hop_s=1.5)
    assert half.hop_length == 94 * 256 and half.spec() != emb.spec()
    out = half.embed(clip).vectors
    np.testing.assert_allclose(out[0], emb.embed(clip).vectors[0], rtol=0, atol=1e-4)
    assert len(out) == 5


def test_missing_package_names_the_no_deps_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        musicnn_module.importlib.util, "find_spec", lambda n, *a: None if n == "musicnn" else real(n, *a)
    )
    with pytest.raises(MissingDependencyError, match=r"pip install --no-deps musicnn==0\.1\.0"):
        MusicnnEmbedder()
    assert "--no-deps musicnn==0.1.0" in str(MissingExtra("musicnn", ("musicnn",)))


def test_bad_weights_raise_model_load_error(tmp_path):
    with pytest.raises(ModelLoadError, match="no checkpoint"):
        MusicnnEmbedder(weights_dir=str(tmp_path))
    (tmp_path / ".index").write_bytes(b"junk")
    with pytest.raises(ModelLoadError, match="could not read"):
        MusicnnEmbedder(weights_dir=str(tmp_path))
    with pytest.raises(ModelLoadError):  # the vgg checkpoint has none of musicnn's variables
        MusicnnEmbedder(model="MTT_musicnn", weights_dir=str(package_dir() / "MTT_vgg"))

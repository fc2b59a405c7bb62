"""The base install (no extras) needs no librosa, numba, scikit-learn or any deep-learning framework."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import librosa
import numpy as np
import pytest

from audiovec.embedders._mel import hz_to_mel, mel_filterbank, mel_to_hz

BLOCKED = ["librosa", "numba", "llvmlite", "sklearn", "torch", "tensorflow", "pandas"]


def test_the_core_path_runs_with_the_packages_of_extras_unimportable(tmp_path, shared_file):
    """Load audio, embed with MFCC and log-mel, pool, store, search and fingerprint: all on the base packages."""
    track = shared_file("data/music/jamendo_11266.mp3")
    excerpt = shared_file("data/music/jamendo_11266_query_69s-89s.mp3")
    code = textwrap.dedent(
        f"""
        import sys
        import importlib.abc

        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {BLOCKED!r}:
                    raise ImportError(f"{{name}} is not installed (blocked by the test)")
                return None

        sys.meta_path.insert(0, Block())
        import numpy as np
        import soundfile as sf
        import audiovec
        from audiovec import Pipeline, get_embedder
        from audiovec.identify import Identifier

        sr = 16000
        t = np.arange(sr * 3) / sr
        for i, f in enumerate((220.0, 440.0, 880.0)):
            x = 0.3 * np.sin(2 * np.pi * f * t) * (1 + 0.5 * np.sin(3 * t))
            sf.write({str(tmp_path)!r} + f"/tone{{i}}.wav", x, sr)
        paths = [{str(tmp_path)!r} + f"/tone{{i}}.wav" for i in range(3)]
        store = audiovec.ExactStore(dim=40)
        for name in ("mfcc", "logmel"):
            emb = get_embedder(name, **({{"n_mfcc": 40}} if name == "mfcc" else {{"n_mels": 40}}))
            vectors = np.stack([Pipeline.parse("mean+l2")(emb.embed(audiovec.load(p))).vectors[0] for p in paths])
            if name == "mfcc":
                store.add(vectors, ids=[1, 2, 3])
                print("nearest", [h.id for h in store.search(vectors[1], k=1)[0]])
        ident = Identifier.create({str(tmp_path / "id")!r})
        ident.add({str(track)!r}, track_id="jamendo")
        print("identified", ident.identify({str(excerpt)!r}).track_id)
        print("loaded", sorted(m for m in {BLOCKED!r} if m in sys.modules))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    assert "nearest [2]" in lines and "loaded []" in lines
    assert "identified jamendo" in lines


@pytest.mark.parametrize(
    ("sr", "n_fft", "n_mels", "fmin", "fmax"),
    [
        (16000, 400, 64, 0.0, None),
        (16000, 512, 40, 125.0, 7500.0),
        (8000, 200, 40, 0.0, None),
        (22050, 2048, 128, 0.0, None),
        (44100, 1024, 96, 20.0, 16000.0),
        (16000, 400, 40, 0.0, 8000.0),
    ],
)
def test_mel_filterbank_equals_librosa(sr, n_fft, n_mels, fmin, fmax):
    ours = mel_filterbank(sr, n_fft, n_mels, fmin, fmax)
    theirs = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    assert ours.dtype == np.float32 and ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize(("sr", "n_fft", "n_mels"), [(44100, 2048, 96), (16000, 512, 40)])
def test_htk_l1_mel_filterbank_equals_librosa(sr, n_fft, n_mels):
    """aiSFX's filterbank: librosa's ``htk=True, norm=1.0``."""
    ours = mel_filterbank(sr, n_fft, n_mels, 0.0, sr / 2, htk=True, norm="l1")
    theirs = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=0.0, fmax=sr / 2, htk=True, norm=1.0)
    assert ours.dtype == np.float32 and ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-8)


def test_mel_scale_is_slaneys():
    hz = np.array([0.0, 200.0, 999.0, 1000.0, 4000.0, 11025.0])
    np.testing.assert_allclose(hz_to_mel(hz), librosa.hz_to_mel(hz), rtol=1e-12)
    np.testing.assert_allclose(mel_to_hz(hz_to_mel(hz)), hz, rtol=1e-12, atol=1e-9)

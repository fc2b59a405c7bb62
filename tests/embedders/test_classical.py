"""MFCC and log-mel: conformance, agreement with librosa, bit-exact chunking on any CPU, and meaning on real audio."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import scipy.fft

from audiovec import Audio, Pipeline, get_embedder, load
from audiovec.data import demo_metadata
from audiovec.testing import check_embedder, synthetic_signal

CONFIGS = [
    ("mfcc", {}),
    ("logmel", {}),
    ("mfcc", {"sample_rate": 8000, "n_mels": 32, "n_mfcc": 13, "window_s": 0.064, "hop_s": 0.032}),
    ("logmel", {"sample_rate": 22050, "n_mels": 128, "fmin": 50.0, "fmax": 8000.0}),
]


@pytest.mark.parametrize(("name", "params"), CONFIGS)
def test_conformance(name, params):
    results = check_embedder(get_embedder(name, **params))
    assert all(r.passed for r in results) and len(results) == 11


def _librosa_logmel(x: np.ndarray, sr: int, n_fft: int, hop: int, n_mels: int) -> np.ndarray:
    mel = librosa.feature.melspectrogram(
        y=x, sr=sr, n_fft=n_fft, hop_length=hop, center=False, power=2.0, n_mels=n_mels, window="hann"
    )
    return librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None).T


def test_logmel_and_mfcc_match_librosa(shared_file):
    audio = load(shared_file("data/fsdd/5_nicolas_3.flac"), sr=16000)
    ref = _librosa_logmel(audio.samples, 16000, 400, 160, 64)
    ours = get_embedder("logmel").embed(audio).vectors
    n = len(ref)
    assert len(ours) in (n, n + 1)  # we also emit a final zero-padded frame when samples are left over
    np.testing.assert_allclose(ours[:n], ref, atol=1e-3)
    mfcc_ref = scipy.fft.dct(ref, type=2, axis=1, norm="ortho")[:, :20]
    mfcc = get_embedder("mfcc").embed(audio).vectors
    np.testing.assert_allclose(mfcc[:n], mfcc_ref, atol=1e-2)


@pytest.mark.parametrize("name", ["mfcc", "logmel"])
def test_chunking_batching_and_streaming_are_exact(name):
    """Bit-identical on every CPU: each frame is computed in the same aligned 256-frame block in every path."""
    x = synthetic_signal(7.3, 16000)
    audio = Audio.from_array(x, 16000)
    whole = get_embedder(name, chunk_s=100).embed(audio).vectors
    assert len(whole) == 729  # two full blocks and a partial one
    for chunk_s in (0.37, 2.56, 3.0):
        np.testing.assert_array_equal(whole, get_embedder(name, chunk_s=chunk_s).embed(audio).vectors)
    blocks = [audio.slice(t, t + 0.61) for t in np.arange(0, 7.3, 0.61)]
    np.testing.assert_array_equal(whole, get_embedder(name, chunk_s=1.0).embed_stream(blocks).vectors)
    short = audio.slice(0, 1.1)
    batch = get_embedder(name, chunk_s=0.5).embed_batch([short, audio, short])
    np.testing.assert_array_equal(batch[1].vectors, whole)
    np.testing.assert_array_equal(batch[0].vectors, get_embedder(name).embed(short).vectors)
    np.testing.assert_array_equal(batch[0].vectors, batch[2].vectors)


def test_every_path_computes_the_same_blocks(monkeypatch):
    """Why the exactness holds whatever the BLAS: every path hands the maths the same blocks of frames.

    A matrix product may round a row differently depending on how many rows it computes at once, so a frame is
    only reproducible if it is always computed in the same block. Record the blocks of each path and compare.
    """
    from audiovec.embedders.classical import BLOCK_FRAMES, MFCCEmbedder

    seen: list[bytes] = []
    original = MFCCEmbedder._block

    def spy(self, frames):
        seen.append(np.ascontiguousarray(frames).tobytes())
        return original(self, frames)

    monkeypatch.setattr(MFCCEmbedder, "_block", spy)
    audio = Audio.from_array(synthetic_signal(7.3, 16000), 16000)
    runs = {}
    for label, emb, call in [
        ("one-shot", MFCCEmbedder(chunk_s=100), lambda e: e.embed(audio)),
        ("chunked", MFCCEmbedder(chunk_s=0.37), lambda e: e.embed(audio)),
        ("streamed", MFCCEmbedder(chunk_s=1.0), lambda e: e.embed_stream([audio.slice(0, 3.3), audio.slice(3.3)])),
    ]:
        assert emb.chunk_frames % BLOCK_FRAMES == 0
        seen.clear()
        call(emb)
        runs[label] = list(seen)
    assert [len(b) for b in runs["one-shot"]] == [len(b) for b in runs["chunked"]] == [len(b) for b in runs["streamed"]]
    assert runs["one-shot"] == runs["chunked"] == runs["streamed"]
    assert len(runs["one-shot"]) == 3  # 256 + 256 + 217 frames


def test_spec_identifies_output():
    a, b = get_embedder("mfcc"), get_embedder("mfcc", chunk_s=5)
    assert a.spec() == b.spec() and a.spec().key() == b.spec().key()  # chunking does not change output
    assert get_embedder("mfcc", n_mfcc=13).spec().key() != a.spec().key()
    assert a.spec().params["n_mfcc"] == 20 and a.spec().name == "mfcc"


def test_logmel_separates_kick_from_hihat_on_the_demo_set():
    """Real audio: kicks put more energy in the lowest mel bands than hi-hats, cymbals and claps."""
    emb = get_embedder("logmel", n_mels=40)
    pipe = Pipeline.parse("mean")
    low_minus_high = {}
    for row in demo_metadata():
        v = pipe(emb.embed(load(row["path"]))).vectors[0]
        low_minus_high.setdefault(row["label"], []).append(float(v[:6].mean() - v[-10:].mean()))
    kick = np.array(low_minus_high["kick"])
    for bright in ("hihat", "cymbal"):
        other = np.array(low_minus_high[bright])
        auc = float((kick[:, None] > other[None, :]).mean())  # P(random kick is darker than random other)
        assert auc >= 0.85, (bright, auc, low_minus_high)


def test_mfcc_mean_std_identifies_fsdd_speakers(shared_data):
    """Real audio: nearest-neighbour speaker identification on spoken digits, far above chance (1/6)."""
    rows = [p for p in sorted((shared_data / "fsdd").glob("*.flac")) if int(p.stem.split("_")[2]) < 10]
    emb = get_embedder("mfcc", sample_rate=8000, n_mels=40)
    pipe = Pipeline.parse("mean_std")
    x = np.stack([pipe(emb.embed(load(p))).vectors[0] for p in rows])
    x = (x - x.mean(0)) / (x.std(0) + 1e-9)
    speakers = np.array([p.stem.split("_")[1] for p in rows])
    digits = np.array([p.stem.split("_")[0] for p in rows])
    d = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    # a query may not match a recording of the same digit (so the speaker, not the word, must carry it)
    d[digits[:, None] == digits[None, :]] = np.inf
    acc = float((speakers[d.argmin(1)] == speakers).mean())
    assert len(rows) == 600
    assert acc > 0.8, acc


def test_demo_metadata_is_complete():
    rows = demo_metadata()
    assert len(rows) == 42
    assert {r["license"] for r in rows} <= {"CC0-1.0", "CC-BY-3.0"}
    assert len({r["label"] for r in rows}) == 9
    for r in rows:
        assert load(r["path"]).sample_rate == 16000

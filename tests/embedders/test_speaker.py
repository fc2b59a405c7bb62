"""Speaker embedders.

Resemblyzer runs its real pretrained GE2E weights (shipped inside the ``resemblyzer`` wheel): conformance, agreement
with ``VoiceEncoder.embed_utterance``, and speaker identity on real speech (FSDD). ECAPA-TDNN runs tiny models of
SpeechBrain's architecture, built here with deterministic weights and written in SpeechBrain's directory layout
(no ECAPA weights can be downloaded here): conformance, the loader's typed errors, and agreement with numbers that
SpeechBrain 1.1.2's own ``EncoderClassifier.encode_batch`` produced for the same model directory.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from audiovec import Audio, Pipeline, get_embedder, list_embedders, load
from audiovec.embedders.speaker import ECAPAEmbedder, ResemblyzerEmbedder, resemblyzer_preprocess
from audiovec.embedders.speaker._ecapa_net import ecapa_state_shapes
from audiovec.embedders.speaker._hyperparams import ECAPAArch
from audiovec.errors import ConfigError, EmptyAudioError, MissingDependencyError, ModelLoadError
from audiovec.testing import check_embedder, synthetic_signal


# ============================================================================================ Resemblyzer
@pytest.fixture(scope="module")
def rz():
    # One thread: on a small shared machine, PyTorch's multi-threaded LSTM is far slower under contention.
    return ResemblyzerEmbedder(num_threads=1)


@pytest.fixture(scope="module")
def voice_encoder():
    import warnings

    with warnings.catch_warnings():  # webrtcvad / scipy import-time deprecations inside resemblyzer
        warnings.simplefilter("ignore")
        from resemblyzer import VoiceEncoder

    return VoiceEncoder("cpu", verbose=False)


@pytest.fixture(scope="module")
def speech(shared_file):
    return load(shared_file("data/librosa/198-209-0000.ogg"), sr=16000)  # LibriSpeech, 13.9 s, one speaker


def test_resemblyzer_registered_and_described(rz):
    assert {"resemblyzer", "ecapa"} <= set(list_embedders())
    emb = get_embedder("resemblyzer", hop_s=0.5, num_threads=1)
    assert isinstance(emb, ResemblyzerEmbedder)
    assert (emb.dim, emb.sample_rate, emb.window_s, emb.hop_s) == (256, 16000, 1.6, 0.5)
    assert emb.weights_path.name == "pretrained.pt" and emb.weights_path.parent.name == "resemblyzer"


def test_resemblyzer_conformance():
    # hop = window halves the work of the 600 s check; framing is the same code for any hop
    results = check_embedder(ResemblyzerEmbedder(hop_s=1.6, num_threads=1, batch_size=64))
    assert all(r.passed for r in results) and len(results) == 11


def test_resemblyzer_mel_matches_resemblyzer(rz, speech):
    from resemblyzer.audio import wav_to_mel_spectrogram

    wav = speech.samples[:25600]
    ref = wav_to_mel_spectrogram(wav)[:160]
    ours = rz.mel_frames(wav[None])[0]
    assert ours.shape == (160, 40) and ours.dtype == np.float32
    # (the last mel frame reaches 2.5 ms past the window: Resemblyzer sees the next samples there, we see zeros)
    np.testing.assert_allclose(ours, ref, rtol=1e-3, atol=1e-6 * ref.max())


def test_resemblyzer_mean_l2_reproduces_embed_utterance(voice_encoder, speech):
    """Frames = Resemblyzer's partials; mean + L2 over them = ``VoiceEncoder.embed_utterance``."""
    emb = ResemblyzerEmbedder(hop_s=0.77, num_threads=1)  # Resemblyzer's default rate of 1.3 partials/s
    k = 5  # 25600 + k * 12320 samples: both sides cut exactly k + 1 partials at the same offsets
    wav = speech.samples[: 25600 + k * 12320]
    ref, partials, slices = voice_encoder.embed_utterance(wav, return_partials=True)
    fe = emb.embed(Audio(wav, 16000))
    assert len(fe) == len(partials) == k + 1
    assert [s.start for s in slices] == [i * 12320 for i in range(k + 1)]
    np.testing.assert_allclose(np.linalg.norm(fe.vectors, axis=1), 1.0, atol=1e-5)
    cos = (fe.vectors * partials).sum(1)
    assert cos[0] > 0.99999  # the first window's mel frames are identical up to the last one
    assert cos.min() > 0.99, cos  # later windows differ in their two edge mel frames only
    utterance = Pipeline.parse("mean+l2")(fe).vectors[0]
    assert float(utterance @ ref) > 0.999


def test_resemblyzer_identifies_fsdd_speakers(rz, shared_data):
    """Real speech: 240 spoken digits by 6 speakers; the nearest other-digit clip is almost always the speaker's."""
    rows = [p for p in sorted((shared_data / "fsdd").glob("*.flac")) if int(p.stem.split("_")[2]) < 4]
    speakers = np.array([p.stem.split("_")[1] for p in rows])
    digits = np.array([p.stem.split("_")[0] for p in rows])
    fes = rz.embed_batch([load(p) for p in rows])  # 8 kHz files, resampled by the embedder
    pipe = Pipeline.parse("mean+l2")
    x = np.stack([pipe(fe).vectors[0] for fe in fes])
    sim = x @ x.T
    same = speakers[:, None] == speakers[None, :]
    off_diag = ~np.eye(len(rows), dtype=bool)
    blocked = sim.copy()
    blocked[digits[:, None] == digits[None, :]] = -np.inf  # the word may not carry the match
    accuracy = float((speakers[blocked.argmax(1)] == speakers).mean())
    assert len(rows) == 240 and len(set(speakers)) == 6
    # measured: accuracy 0.97 (chance 1/6), mean cosine same 0.84 vs different 0.69 (300 clips)
    assert accuracy > 0.85, accuracy
    margin = float(sim[same & off_diag].mean() - sim[~same].mean())
    assert margin > 0.08, margin
    for s in np.unique(speakers):
        m = speakers == s
        assert sim[np.ix_(m, m)][off_diag[np.ix_(m, m)]].mean() > sim[np.ix_(m, ~m)].mean(), s


def test_resemblyzer_chunking_and_batch_size_do_not_change_output(speech):
    x = Audio(speech.samples[: 16000 * 6], 16000)
    a = ResemblyzerEmbedder(num_threads=1, chunk_s=100, batch_size=64).embed(x).vectors
    b = ResemblyzerEmbedder(num_threads=1, chunk_s=2.0, batch_size=1).embed(x).vectors
    assert a.shape == (7, 256)
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_resemblyzer_spec_identifies_weights_and_output(rz, tmp_path):
    spec = rz.spec()
    assert spec.name == "resemblyzer"
    assert spec.params["weights_path"] == "resemblyzer/pretrained.pt" and len(spec.params["weights_sha256"]) == 16
    assert not {"device", "batch_size", "num_threads", "chunk_s"} & set(spec.params)
    assert ResemblyzerEmbedder(num_threads=2, batch_size=3).spec().key() == spec.key()
    assert ResemblyzerEmbedder(hop_s=0.4).spec().key() != spec.key()
    copy = tmp_path / "ge2e.pt"
    shutil.copy(rz.weights_path, copy)
    other = ResemblyzerEmbedder(weights_path=str(copy))
    assert other.spec().params["weights_sha256"] == spec.params["weights_sha256"]  # same bytes, same identity


def test_resemblyzer_threads_are_restored(rz, speech):
    before = torch.get_num_threads()
    rz.embed(Audio(speech.samples[:16000], 16000))
    assert torch.get_num_threads() == before


def test_resemblyzer_load_errors(tmp_path):
    with pytest.raises(ModelLoadError, match="not found"):
        ResemblyzerEmbedder(weights_path=str(tmp_path / "missing.pt"))
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelLoadError, match=r"junk\.pt"):
        ResemblyzerEmbedder(weights_path=str(junk))
    wrong = tmp_path / "wrong.pt"
    torch.save({"model_state": {"linear.weight": torch.zeros(256, 256)}}, wrong)  # LSTM missing: would stay random
    with pytest.raises(ModelLoadError, match="does not fit"):
        ResemblyzerEmbedder(weights_path=str(wrong))
    with pytest.raises(ConfigError):
        ResemblyzerEmbedder(device="gpu0")
    with pytest.raises(ConfigError):
        ResemblyzerEmbedder(hop_s=2.0)  # gaps between 1.6 s windows
    if not torch.cuda.is_available():  # the same error, and message, as every torch embedder
        with pytest.raises(ConfigError, match="device='cuda' was requested but torch sees no CUDA device"):
            ResemblyzerEmbedder(device="cuda")


def test_resemblyzer_preprocess_trims_silence_and_matches_resemblyzer(speech):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from resemblyzer import preprocess_wav

    voice = speech.samples[: 16000 * 3] * 0.1  # quiet: volume normalisation raises it
    padded = np.concatenate([np.zeros(16000 * 2, np.float32), voice, np.zeros(16000 * 2, np.float32)])
    out = resemblyzer_preprocess(Audio(padded, 16000, "padded"))
    assert out.sample_rate == 16000 and out.source == "padded"
    assert out.num_samples < 16000 * 4  # most of the 4 s of silence is gone
    np.testing.assert_allclose(out.samples, preprocess_wav(padded), atol=1e-6)
    assert np.sqrt(np.mean(out.samples**2)) > np.sqrt(np.mean(voice**2))
    with pytest.raises(EmptyAudioError):
        resemblyzer_preprocess(Audio(np.zeros(16000, np.float32), 16000))


# ============================================================================================ ECAPA-TDNN
TINY = {
    "n_mels": 24,
    "channels": [16, 24, 24, 24, 48],  # 16 -> 24 exercises the residual shortcut convolution
    "kernel_sizes": [5, 3, 3, 3, 1],
    "dilations": [1, 2, 3, 4, 1],
    "attention_channels": 8,
    "res2net_scale": 4,
    "se_channels": 8,
    "lin_neurons": 16,
}

# The layout of speechbrain/spkrec-ecapa-voxceleb's hyperparams.yaml, with tiny sizes. pretrained_path is left
# at the Hub id on purpose: SpeechBrain would follow it to the network; audiovec reads the directory it is given.
HYPERPARAMS = """\
# ############################################################################
# Model: ECAPA big for Speaker verification (tiny test copy)
# ############################################################################

# Feature parameters
n_mels: {n_mels}

# Pretrain folder (HuggingFace)
pretrained_path: speechbrain/spkrec-ecapa-voxceleb

# Output parameters
out_n_neurons: 7

# Model params
compute_features: !new:speechbrain.lobes.features.Fbank
    n_mels: !ref <n_mels>{fbank_extra}

mean_var_norm: !new:speechbrain.processing.features.InputNormalization
    norm_type: sentence
    std_norm: False

embedding_model: !new:speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN
    input_size: !ref <n_mels>
    channels: {channels}
    kernel_sizes: {kernel_sizes}
    dilations: {dilations}
    attention_channels: {attention_channels}
    res2net_scale: {res2net_scale}
    se_channels: {se_channels}
    lin_neurons: {lin_neurons}{model_extra}

classifier: !new:speechbrain.lobes.models.ECAPA_TDNN.Classifier
    input_size: {lin_neurons}
    out_neurons: !ref <out_n_neurons>

mean_var_norm_emb: !new:speechbrain.processing.features.InputNormalization
    norm_type: global
    std_norm: False

modules:
    compute_features: !ref <compute_features>
    mean_var_norm: !ref <mean_var_norm>
    embedding_model: !ref <embedding_model>
    mean_var_norm_emb: !ref <mean_var_norm_emb>
    classifier: !ref <classifier>

label_encoder: !new:speechbrain.dataio.encoder.CategoricalEncoder

pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
    loadables:
        embedding_model: !ref <embedding_model>
        mean_var_norm_emb: !ref <mean_var_norm_emb>
        classifier: !ref <classifier>
        label_encoder: !ref <label_encoder>
    paths:
        embedding_model: !ref <pretrained_path>/embedding_model.ckpt
        mean_var_norm_emb: !ref <pretrained_path>/mean_var_norm_emb.ckpt
        classifier: !ref <pretrained_path>/classifier.ckpt
        label_encoder: !ref <pretrained_path>/label_encoder.txt
"""


def _uniform(n: int, stream: int) -> np.ndarray:
    """``n`` numbers uniform in [-1, 1) from SplitMix64: the same on every platform and NumPy version."""
    z = (np.arange(n, dtype=np.uint64) + np.uint64(stream << 32)) * np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / 2.0**53 * 2.0 - 1.0


def deterministic_state(arch: ECAPAArch) -> dict[str, torch.Tensor]:
    """A state dict of SpeechBrain's ECAPA_TDNN with fixed pseudo-random values (He-uniform kernels)."""
    state = {}
    for i, (key, shape) in enumerate(sorted(ecapa_state_shapes(arch).items())):
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(0)
            continue
        u = _uniform(int(np.prod(shape)), i).reshape(shape)
        if key.endswith("running_var"):
            a = 1.0 + 0.3 * u
        elif key.endswith("running_mean"):
            a = 0.1 * u
        elif len(shape) == 3:  # convolution kernels
            a = u * np.sqrt(6.0 / (shape[1] * shape[2]))
        elif key.endswith("conv.bias"):
            a = 0.1 * u
        elif key.endswith(".weight"):  # batch-norm scale
            a = 1.0 + 0.2 * u
        else:  # batch-norm shift
            a = 0.1 * u
        state[key] = torch.from_numpy(a.astype(np.float32))
    return state


def write_ecapa_dir(
    directory: Path, *, fbank_extra: str = "", model_extra: str = "", ckpt_arch: dict | None = None, **overrides
) -> Path:
    """Write a SpeechBrain-layout ECAPA directory: hyperparams.yaml + embedding_model.ckpt (+ the unused extras)."""
    p = {**TINY, **overrides}
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "hyperparams.yaml").write_text(
        HYPERPARAMS.format(fbank_extra=fbank_extra, model_extra=model_extra, **p), encoding="utf-8"
    )
    a = {**p, **(ckpt_arch or {})}
    arch = ECAPAArch(
        input_size=a["n_mels"],
        channels=tuple(a["channels"]),
        kernel_sizes=tuple(a["kernel_sizes"]),
        dilations=tuple(a["dilations"]),
        attention_channels=a["attention_channels"],
        res2net_scale=a["res2net_scale"],
        se_channels=a["se_channels"],
        lin_neurons=a["lin_neurons"],
        global_context=a.get("global_context", True),
    )
    torch.save(deterministic_state(arch), directory / "embedding_model.ckpt")
    # the files audiovec does not read, so that SpeechBrain itself can load the directory too
    lin, classes = a["lin_neurons"], 7
    torch.save({"weight": torch.ones(classes, lin) / lin}, directory / "classifier.ckpt")
    stats = {"count": 1, "glob_mean": torch.zeros(lin), "glob_std": torch.ones(lin)}
    torch.save(stats, directory / "mean_var_norm_emb.ckpt")
    labels = "".join(f"'speaker{i}' => {i}\n" for i in range(classes))
    (directory / "label_encoder.txt").write_text(labels + "================\n'starting_index' => 0\n")
    return directory


@pytest.fixture(scope="module")
def ecapa_dir(tmp_path_factory):
    return write_ecapa_dir(tmp_path_factory.mktemp("ecapa") / "tiny-ecapa")


@pytest.fixture(scope="module")
def ecapa(ecapa_dir):
    return ECAPAEmbedder(source=str(ecapa_dir), local_files_only=True, num_threads=1)


# SpeechBrain 1.1.2's output for the `ecapa_dir` model: EncoderClassifier.from_hparams(source=<the directory>,
# savedir=..., overrides={"pretrained_path": <the directory>}).encode_batch(wav) on
# wav = synthetic_signal(seconds, 16000, seed=7) * 0.5 (torch 2.13 CPU). Our implementation matched it to float32
# rounding on that machine; the test allows 1e-4 of the largest value, as other CPUs and torch builds round differently.
SPEECHBRAIN_REFERENCE = {
    3.0: [-84.0018, -16.9312, -16.4004, -34.1662, 3.94711, -8.16153, 25.2038, -28.7823,
          -5.23477, -3.30325, 5.93141, 12.4942, -39.3679, 6.63515, -2.34428, 70.3702],
    1.3: [-70.4221, -14.2306, -15.1154, -28.203, 5.42615, -8.45326, 21.637, -28.597,
          -6.66211, 1.38451, 0.756037, 15.9861, -33.6041, 3.43506, -4.83456, 60.2157],
}  # fmt: skip


def test_ecapa_registered_and_described(ecapa, ecapa_dir):
    assert isinstance(get_embedder("ecapa", source=str(ecapa_dir)), ECAPAEmbedder)
    assert (ecapa.dim, ecapa.sample_rate, ecapa.window_s, ecapa.hop_s) == (16, 16000, 3.0, 1.0)
    assert ecapa.model_files == (ecapa_dir / "hyperparams.yaml", ecapa_dir / "embedding_model.ckpt")
    assert ECAPAEmbedder.Config().source == "speechbrain/spkrec-ecapa-voxceleb"  # the default for users


def test_ecapa_conformance(ecapa):
    results = check_embedder(ecapa)
    assert all(r.passed for r in results) and len(results) == 11


@pytest.mark.parametrize("seconds", [3.0, 1.3])
def test_ecapa_matches_speechbrain_encode_batch(ecapa, seconds):
    wav = synthetic_signal(seconds, 16000, seed=7) * 0.5
    fe = ecapa.embed(Audio(wav, 16000))
    assert fe.vectors.shape == (1, 16)
    ref = np.array(SPEECHBRAIN_REFERENCE[seconds], dtype=np.float32)
    np.testing.assert_allclose(fe.vectors[0], ref, rtol=0, atol=1e-4 * np.abs(ref).max())


def test_ecapa_trims_the_zero_padding_of_short_windows(ecapa_dir):
    """A 1.3 s clip in a 3 s window gives what the model gives for the clip alone, not for clip + 1.7 s of zeros."""
    wav = Audio(synthetic_signal(1.3, 16000, seed=2), 16000)
    padded_window = ECAPAEmbedder(source=str(ecapa_dir), num_threads=1).embed(wav).vectors[0]
    exact_window = ECAPAEmbedder(source=str(ecapa_dir), num_threads=1, window_s=1.3, hop_s=1.3).embed(wav).vectors[0]
    untrimmed = ECAPAEmbedder(source=str(ecapa_dir), num_threads=1, trim_padding=False).embed(wav).vectors[0]
    np.testing.assert_allclose(padded_window, exact_window, rtol=1e-5, atol=1e-5)
    assert not np.allclose(untrimmed, exact_window, rtol=1e-2, atol=1e-2)


def test_ecapa_batching_is_exact(ecapa_dir):
    audios = [Audio(synthetic_signal(d, 16000, seed=i), 16000) for i, d in enumerate((7.0, 4.2, 0.3))]
    a = ECAPAEmbedder(source=str(ecapa_dir), num_threads=1, batch_size=1).embed_batch(audios)
    b = ECAPAEmbedder(source=str(ecapa_dir), num_threads=1, batch_size=64, chunk_s=4.0).embed_batch(audios)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x.vectors, y.vectors, rtol=1e-5, atol=1e-5)
    assert [len(x) for x in a] == [5, 3, 1]


def test_ecapa_reads_the_architecture_and_rate_from_hyperparams(tmp_path):
    d = write_ecapa_dir(
        tmp_path / "narrow",
        n_mels=20,
        lin_neurons=8,
        fbank_extra="\n    sample_rate: 8000\n    f_max: 3800",
        model_extra="\n    global_context: False",
        ckpt_arch={"global_context": False},
    )
    emb = ECAPAEmbedder(source=str(d), num_threads=1, window_s=2.0, hop_s=1.0)
    assert (emb.dim, emb.sample_rate, emb.frame_length) == (8, 8000, 16000)
    arch = emb.spec().params["architecture"]
    assert arch["global_context"] is False and arch["input_size"] == 20
    assert emb.embed(Audio(synthetic_signal(5.0, 8000), 8000)).vectors.shape == (4, 8)


def test_ecapa_spec_identifies_the_model_not_its_location(ecapa, ecapa_dir, tmp_path):
    spec = ecapa.spec()
    assert spec.params["source"] == "tiny-ecapa" and len(spec.params["weights_sha256"]) == 16
    assert spec.params["architecture"]["channels"] == TINY["channels"]
    assert not {"device", "batch_size", "num_threads", "chunk_s", "cache_dir", "local_files_only"} & set(spec.params)
    moved = shutil.copytree(ecapa_dir, tmp_path / "tiny-ecapa")
    assert ECAPAEmbedder(source=str(moved), batch_size=2).spec().key() == spec.key()
    assert ECAPAEmbedder(source=str(ecapa_dir), window_s=2.0).spec().key() != spec.key()
    retrained = write_ecapa_dir(tmp_path / "other" / "tiny-ecapa")
    doubled = {k: v * 2 for k, v in torch.load(retrained / "embedding_model.ckpt").items()}
    torch.save(doubled, retrained / "embedding_model.ckpt")
    assert ECAPAEmbedder(source=str(retrained)).spec().key() != spec.key()


def test_ecapa_missing_files_raise_model_load_error(tmp_path, no_network):
    with pytest.raises(ModelLoadError, match="not found"):
        ECAPAEmbedder(source=str(tmp_path / "nowhere"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelLoadError, match=r"lacks \['hyperparams.yaml', 'embedding_model.ckpt'\]"):
        ECAPAEmbedder(source=str(empty))


def test_ecapa_checkpoint_must_fit_the_described_model(tmp_path):
    d = write_ecapa_dir(tmp_path / "mismatch", ckpt_arch={"lin_neurons": 12})
    with pytest.raises(ModelLoadError, match=r"does not fit.*fc\.conv"):
        ECAPAEmbedder(source=str(d))
    (d / "embedding_model.ckpt").write_bytes(b"garbage")
    with pytest.raises(ModelLoadError, match="cannot read the ECAPA checkpoint"):
        ECAPAEmbedder(source=str(d))


@pytest.mark.parametrize(
    ("fbank_extra", "model_extra", "message"),
    [
        ("\n    deltas: True", "", "deltas"),
        ("", "\n    activation: !name:torch.nn.LeakyReLU", "LeakyReLU"),
        ("\n    n_fft: [oops", "", "cannot parse"),
    ],
)
def test_ecapa_unsupported_hyperparams_are_refused(tmp_path, fbank_extra, model_extra, message):
    d = write_ecapa_dir(tmp_path / "odd", fbank_extra=fbank_extra, model_extra=model_extra)
    with pytest.raises(ModelLoadError, match=message):
        ECAPAEmbedder(source=str(d))


def test_ecapa_hub_offline_never_touches_the_network(tmp_path, monkeypatch, no_network):
    with pytest.raises(ModelLoadError, match=r"spkrec-ecapa-voxceleb.*offline"):
        ECAPAEmbedder(local_files_only=True, cache_dir=str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match=r"hyperparams.yaml.*offline"):
        ECAPAEmbedder(source="someone/ecapa-model", cache_dir=str(tmp_path / "hub"))


def test_ecapa_config_errors(ecapa_dir):
    with pytest.raises(ConfigError):
        ECAPAEmbedder(source=str(ecapa_dir), hop_s=4.0)  # hop longer than the 3 s window
    with pytest.raises(ConfigError):
        ECAPAEmbedder(source=str(ecapa_dir), window_s=0.1)
    with pytest.raises(ConfigError):
        ECAPAEmbedder(source=str(ecapa_dir), device="tpu")
    with pytest.raises(ConfigError):
        ECAPAEmbedder(source=str(ecapa_dir), revison="main")  # typo: extra fields are refused


# ============================================================================================ both
def test_importing_the_module_imports_no_model_framework():
    code = (
        "import sys, audiovec, audiovec.embedders.speaker; audiovec.list_embedders(); "
        "print(sorted({'torch', 'resemblyzer', 'huggingface_hub', 'yaml', 'speechbrain'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_missing_packages_name_the_extra(monkeypatch, ecapa_dir):
    monkeypatch.setitem(sys.modules, "resemblyzer.voice_encoder", None)  # makes the import fail
    with pytest.raises(MissingDependencyError, match=r"audiovec\[speaker\]"):
        ResemblyzerEmbedder()
    monkeypatch.setitem(sys.modules, "yaml", None)
    with pytest.raises(MissingDependencyError, match="pyyaml"):
        ECAPAEmbedder(source=str(ecapa_dir))

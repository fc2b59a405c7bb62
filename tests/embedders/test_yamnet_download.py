"""YAMNet's default path: TF Hub's TFLite file downloaded once, checked, cached, read offline; no TensorFlow needed.

The "internet" here is a file server on 127.0.0.1 serving the real YAMNet TFLite weights from ``../shared``;
the published URL, size and SHA-256 are replaced by the server's URL and the served file's size and SHA-256.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import subprocess
import sys
import tarfile
import textwrap

import flatbuffers
import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema

from audiovec import Audio, load
from audiovec.embedders import _tf, frame_count, yamnet
from audiovec.embedders.yamnet import YAMNetEmbedder
from audiovec.errors import MissingDependencyError, ModelDownloadError, ModelLoadError
from http_files import serve_files

FRAME, HOP = 15600, 7680


@pytest.fixture(scope="module")
def weights(shared_file):
    return shared_file("models/yamnet.tflite").read_bytes(), shared_file("models/yamnet_class_map.csv").read_bytes()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("AUDIOVEC_CACHE", str(root))
    for name in ("AUDIOVEC_OFFLINE", "HF_HUB_OFFLINE", yamnet.MODEL_ENV):
        monkeypatch.delenv(name, raising=False)
    return root


@pytest.fixture
def hub(weights, monkeypatch):
    """A server holding the model and the class map; DEFAULT_MODEL / DEFAULT_CLASS_MAP point at it."""
    model, class_map = weights
    with serve_files({"/lite-model/yamnet/tflite/1": model, "/yamnet_class_map.csv": class_map}) as served:
        for attr, path, data in (
            ("DEFAULT_MODEL", "/lite-model/yamnet/tflite/1?lite-format=tflite", model),
            ("DEFAULT_CLASS_MAP", "/yamnet_class_map.csv", class_map),
        ):
            remote = dataclasses.replace(
                getattr(yamnet, attr),
                url=f"{served.url}{path}",
                sha256=hashlib.sha256(data).hexdigest(),
                size=len(data),
            )
            monkeypatch.setattr(yamnet, attr, remote)
        yield served


@pytest.fixture(scope="module")
def speech(shared_file):
    return load(shared_file("data/librosa/198-209-0000.ogg"), sr=16000).samples[: 16000 * 6]


def test_default_model_is_downloaded_once_checked_and_then_read_offline(hub, cache, shared_file, speech):
    emb = YAMNetEmbedder(num_threads=1)
    cached = yamnet.DEFAULT_MODEL.path()
    assert cached == cache / "yamnet" / "tflite-1" / "yamnet.tflite" and cached.is_file()
    assert emb.backend == "litert" and emb.spec().params["sha256"] == yamnet.DEFAULT_MODEL.sha256
    assert hub.requests == ["/lite-model/yamnet/tflite/1?lite-format=tflite"]
    assert sorted(p.name for p in cached.parent.iterdir()) == ["yamnet.tflite"]  # no temporary file left
    reference = YAMNetEmbedder(model=str(shared_file("models/yamnet.tflite")), num_threads=1)
    audio = Audio.from_array(speech, 16000)
    np.testing.assert_array_equal(emb.embed(audio).vectors, reference.embed(audio).vectors)

    # the class map comes with the default model, on first use of the class names
    assert emb.class_names[0] == "Speech" and len(emb.class_names) == 521
    assert hub.requests[-1] == "/yamnet_class_map.csv"
    n = len(hub.requests)

    # later loads never touch the network, also when told not to
    again = YAMNetEmbedder(num_threads=1, local_files_only=True)
    assert again.class_names == emb.class_names
    assert YAMNetEmbedder(num_threads=1).spec() == emb.spec()
    assert len(hub.requests) == n


def test_a_download_that_differs_from_the_published_checksum_is_refused(hub, cache, monkeypatch, weights):
    bad = dataclasses.replace(yamnet.DEFAULT_MODEL, sha256="0" * 64)
    monkeypatch.setattr(yamnet, "DEFAULT_MODEL", bad)
    with pytest.raises(ModelDownloadError, match="published SHA-256") as info:
        YAMNetEmbedder()
    assert "0" * 64 in str(info.value) and hashlib.sha256(weights[0]).hexdigest() in str(info.value)
    assert isinstance(info.value, ModelLoadError)
    folder = bad.path().parent
    assert not folder.exists() or not list(folder.iterdir())  # nothing half-written is left

    # a response cut short (or longer than published) is refused the same way
    monkeypatch.setattr(yamnet, "DEFAULT_MODEL", dataclasses.replace(bad, size=len(weights[0]) + 10))
    with pytest.raises(ModelDownloadError, match="incomplete download"):
        YAMNetEmbedder()
    monkeypatch.setattr(yamnet, "DEFAULT_MODEL", dataclasses.replace(bad, size=len(weights[0]) - 10))
    with pytest.raises(ModelDownloadError, match="more than the published size"):
        YAMNetEmbedder()
    assert not folder.exists() or not list(folder.iterdir())


def test_a_failed_download_names_the_url(hub, cache, monkeypatch):
    missing = dataclasses.replace(yamnet.DEFAULT_MODEL, url=f"{hub.url}/nowhere")
    monkeypatch.setattr(yamnet, "DEFAULT_MODEL", missing)
    with pytest.raises(ModelDownloadError, match=r"/nowhere.*404"):
        YAMNetEmbedder()


def test_offline_without_a_cached_model_says_where_it_looked_and_never_imports_tensorflow(tmp_path):
    code = textwrap.dedent(
        """
        import sys
        from audiovec.embedders.yamnet import YAMNetEmbedder
        from audiovec.errors import ModelLoadError
        try:
            YAMNetEmbedder()
        except ModelLoadError as err:
            print(type(err).__name__, err)
        print("tensorflow imported:", "tensorflow" in sys.modules)
        """
    )
    env = {"AUDIOVEC_CACHE": str(tmp_path), "AUDIOVEC_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "ModelLoadError" in out.stdout and "AUDIOVEC_OFFLINE=1" in out.stdout
    assert str(tmp_path / "yamnet" / "tflite-1" / "yamnet.tflite") in out.stdout
    assert "tensorflow imported: False" in out.stdout
    assert "tensorflow" not in out.stderr.lower()  # no screen of TensorFlow logs


def test_a_missing_runtime_is_named_before_anything_is_downloaded(hub, cache, monkeypatch):
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    with pytest.raises(MissingDependencyError, match=r"audiovec\[yamnet\]"):
        YAMNetEmbedder()
    assert hub.requests == []


def _fixed_input(content: bytes) -> bytes:
    """The same model with its input fixed to one 0.975 s patch, like TF Hub's published TFLite file."""
    model = schema.ModelT.InitFromPackedBuf(content, 0)
    graph = model.subgraphs[0]
    tensor = graph.tensors[graph.inputs[0]]
    tensor.shape = np.array([FRAME], np.int32)
    tensor.shapeSignature = np.array([FRAME], np.int32)
    builder = flatbuffers.Builder(len(content) + 65536)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def test_a_fixed_input_tflite_model_runs_one_patch_per_call(weights, tmp_path, shared_file, speech):
    fixed = tmp_path / "yamnet_fixed.tflite"
    fixed.write_bytes(_fixed_input(weights[0]))
    emb = YAMNetEmbedder(model=str(fixed), num_threads=1, chunk_s=2.0)
    reference = YAMNetEmbedder(model=str(shared_file("models/yamnet.tflite")), num_threads=1)
    assert emb._backend.fixed and not reference._backend.fixed
    for n in (5000, FRAME, FRAME + 3 * HOP + 11, len(speech)):
        audio = Audio.from_array(speech[:n], 16000)
        got, want = emb.embed(audio), reference.embed(audio)
        assert len(got) == len(want) == frame_count(n, FRAME, HOP)
        np.testing.assert_allclose(got.vectors, want.vectors, atol=1e-5, rtol=1e-5)
        np.testing.assert_allclose(emb.frame_scores(audio).vectors, reference.frame_scores(audio).vectors, atol=1e-5)


def _savedmodel_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in (("saved_model.pb", b"graph"), ("variables/variables.index", b"index")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_tf_hub_handles_download_into_the_tf_hub_cache_without_importing_tensorflow(tmp_path):
    with serve_files({"/google/yamnet/1": _savedmodel_tar()}) as served:
        handle = f"{served.url}/google/yamnet/1"
        code = textwrap.dedent(
            f"""
            import sys
            from audiovec.embedders import _tf
            path = _tf.resolve_saved_model({handle!r}, cache_dir={str(tmp_path)!r}, local_files_only=False,
                                           extra="yamnet-tf", feature="test")
            print(path)
            print("tensorflow imported:", "tensorflow" in sys.modules or "tensorflow_hub" in sys.modules)
            """
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert served.requests == ["/google/yamnet/1?tf-hub-format=compressed"]
    cached = _tf.hub_cached_path(handle, tmp_path)
    assert out.stdout.splitlines() == [str(cached), "tensorflow imported: False"]
    assert (cached / "saved_model.pb").read_bytes() == b"graph"
    assert (cached / "variables" / "variables.index").is_file()
    assert handle in cached.with_name(cached.name + ".descriptor.txt").read_text()
    # the cache is then used as is, offline
    assert _tf.resolve_saved_model(handle, cache_dir=tmp_path, local_files_only=True, extra="x", feature="t") == cached


def test_a_tf_hub_archive_that_escapes_its_folder_is_refused(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("../../evil.txt")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"evil"))
    with serve_files({"/m/1": buf.getvalue()}) as served, pytest.raises(ModelDownloadError, match="cannot unpack"):
        _tf.resolve_saved_model(f"{served.url}/m/1", cache_dir=tmp_path, local_files_only=False, extra="x", feature="t")
    assert not (tmp_path.parent / "evil.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == []

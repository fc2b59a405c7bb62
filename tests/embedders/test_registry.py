"""The embedder registry: entry points, lazy imports, install hints and a real third-party plugin."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import audiovec
from audiovec import get_embedder, list_embedders, register_embedder
from audiovec._registry import Registry
from audiovec.embedders import embedder_info, registry
from audiovec.errors import (
    ConfigError,
    DuplicatePluginError,
    MissingDependencyError,
    PluginLoadError,
    UnknownPluginError,
)
from audiovec.testing import check_embedder


def test_import_is_light():
    code = textwrap.dedent(
        """
        import sys, audiovec
        audiovec.list_embedders()
        heavy = [m for m in ("torch", "tensorflow", "faiss", "pymilvus", "librosa", "numba") if m in sys.modules]
        print(",".join(heavy))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_builtins_come_from_our_entry_points():
    names = list_embedders()
    assert {"mfcc", "logmel"} <= set(names)
    info = embedder_info("mfcc")
    assert info.distribution == "audiovec"
    assert info.target == "audiovec.embedders.classical:MFCCEmbedder"
    assert info.group == "audiovec.embedders"


def test_unknown_name_lists_available():
    with pytest.raises(UnknownPluginError, match="mfcc"):
        get_embedder("no-such-model")


def test_bad_config_is_a_config_error():
    with pytest.raises(ConfigError, match="n_mfcc"):
        get_embedder("mfcc", n_mfcc=0)
    with pytest.raises(ConfigError, match="Nyquist"):
        get_embedder("logmel", sample_rate=8000, fmax=6000)
    with pytest.raises(ConfigError, match="Extra inputs"):
        get_embedder("mfcc", n_mfc=13)


def test_third_party_plugin_is_discovered_and_conforms():
    # tests/plugins/audiovec-example-plugin is pip-installed by .ci/run and by the README install step
    assert "spectral-stats" in list_embedders()
    info = embedder_info("spectral-stats")
    assert info.distribution == "audiovec-example-plugin"
    emb = get_embedder("spectral-stats", frame=1024, hop=512)
    assert emb.dim == 4 and emb.hop_s == 512 / 16000
    check_embedder(emb, long_input_s=600)


def _fresh() -> Registry[object]:
    return Registry("audiovec.test-nothing", "thing", lambda o: None if isinstance(o, type) else "not a class")


def test_register_refuses_silent_replacement():
    reg = _fresh()

    class A:
        name = "a"

    class B:
        name = "b"

    reg.register("x", A)
    with pytest.raises(DuplicatePluginError, match="clobber=True"):
        reg.register("x", B)
    reg.register("x", B, clobber=True)
    assert reg.load("x") is B
    with pytest.raises(DuplicatePluginError):
        register_embedder("mfcc", "audiovec.embedders.classical:LogMelEmbedder")


def test_import_string_is_lazy_and_errors_are_typed():
    reg = _fresh()
    reg.register("later", "json:JSONDecoder")
    assert reg.load("later").__name__ == "JSONDecoder"
    reg.register("broken", "audiovec_no_such_module:Thing")  # registering does not import
    with pytest.raises(PluginLoadError, match="audiovec_no_such_module"):
        reg.load("broken")
    reg.register("noattr", "json:NoSuchThing")
    with pytest.raises(PluginLoadError, match="NoSuchThing"):
        reg.load("noattr")
    reg.register("notclass", "json:dumps")
    with pytest.raises(PluginLoadError, match="not a class"):
        reg.load("notclass")
    with pytest.raises(PluginLoadError, match=r"package\.module:Class"):
        reg.register("bad", "no_colon")


def test_missing_extra_names_the_pip_command(tmp_path, monkeypatch):
    pkg = tmp_path / "needs_missing_dep.py"
    pkg.write_text(
        textwrap.dedent(
            """
            from audiovec._optional import require

            class NeedsTorch:
                name = "needs"

                def __init__(self, **kw):
                    require("audiovec_fake_torch", extra="transformers", feature="NeedsTorch")

                def embed(self, a): ...
                def embed_batch(self, a): ...
                def embed_file(self, source, block_s=60.0): ...
                def spec(self): ...
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    register_embedder("needs-missing", "needs_missing_dep:NeedsTorch")
    try:
        with pytest.raises(MissingDependencyError, match=r"pip install 'audiovec\[transformers\]'") as err:
            get_embedder("needs-missing")
        assert isinstance(err.value, ImportError)
    finally:
        registry._infos.pop("needs-missing", None)


def test_an_embedder_must_offer_embed_file():
    """``embed_file`` is part of the Embedder protocol: callers stream long files without duck typing."""

    class NoFiles:
        name = "no-files"

        def embed(self, audio): ...
        def embed_batch(self, audios): ...
        def spec(self): ...

    with pytest.raises(PluginLoadError, match="lacks embed_file"):
        register_embedder("no-files", NoFiles)
    assert "no-files" not in list_embedders()

    class WithFiles(NoFiles):
        def embed_file(self, source, block_s=60.0): ...

    register_embedder("with-files", WithFiles)
    try:
        assert get_embedder("with-files").name == "no-files"
    finally:
        registry._infos.pop("with-files", None)
        registry._loaded.pop("with-files", None)


def test_runtime_registered_class_works_end_to_end():
    class Loud(audiovec.FramedEmbedder):
        name = "loudness-test"

        @property
        def dim(self) -> int:
            return 1

        @property
        def sample_rate(self) -> int:
            return 8000

        @property
        def frame_length(self) -> int:
            return 80

        @property
        def hop_length(self) -> int:
            return 80

        def _embed_frames(self, x):
            return np.sqrt((x.reshape(-1, 80) ** 2).mean(1, keepdims=True)).astype(np.float32)

    register_embedder("loudness-test", Loud)
    try:
        emb = get_embedder("loudness-test")
        fe = emb.embed(audiovec.Audio.from_array(np.full(800, 0.5), 8000))
        np.testing.assert_allclose(fe.vectors[:, 0], 0.5, rtol=1e-6)
        with pytest.raises(PluginLoadError):
            register_embedder("not-an-embedder", int)
    finally:
        registry._infos.pop("loudness-test", None)
        registry._loaded.pop("loudness-test", None)

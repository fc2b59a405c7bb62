"""Fusion: several embedders pooled, normalised, weighted and concatenated into one registered embedder."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from audiovec import get_embedder
from audiovec.audio import Audio
from audiovec.errors import ConfigError
from audiovec.pooling import l2_normalize, mean_pool, mean_std_pool
from audiovec.testing import check_embedder

MEMBERS = ["mfcc", {"name": "logmel", "pooling": "mean_std", "weight": 3.0}]


def _clip(seed: int, seconds: float = 2.0, sr: int = 16000) -> Audio:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    x = 0.3 * np.sin(2 * np.pi * (200 + 150 * seed) * t) + 0.05 * rng.standard_normal(len(t))
    return Audio(x.astype(np.float32), sr, source=f"clip{seed}")


def test_fusion_passes_the_embedder_checks():
    check_embedder(get_embedder("fusion", members=MEMBERS, window_s=1.0))


def test_fused_cosine_is_the_weighted_mean_of_the_members_cosines():
    fused = get_embedder("fusion", members=MEMBERS)
    mfcc, logmel = get_embedder("mfcc"), get_embedder("logmel")
    a, b = _clip(1), _clip(2)
    fa, fb = fused.embed(a).vectors, fused.embed(b).vectors
    assert fa.shape == (1, 20 + 128)  # a clip shorter than the window is one fused vector
    assert np.linalg.norm(fa) == pytest.approx(1.0, abs=1e-5)

    def cos(u, v):
        return float(l2_normalize(u) @ l2_normalize(v))

    c_mfcc = cos(mean_pool(mfcc.embed(a).vectors), mean_pool(mfcc.embed(b).vectors))
    c_logmel = cos(mean_std_pool(logmel.embed(a).vectors), mean_std_pool(logmel.embed(b).vectors))
    assert float(fa[0] @ fb[0]) == pytest.approx((1 * c_mfcc + 3 * c_logmel) / 4, abs=1e-5)


def test_long_audio_gives_one_fused_vector_per_window():
    fused = get_embedder("fusion", members=["mfcc", "logmel"], window_s=1.0, hop_s=0.5)
    fe = fused.embed(_clip(3, seconds=4.0))
    assert len(fe) == 7 and fe.hop_s == 0.5 and fe.window_s == 1.0
    np.testing.assert_allclose(np.diff(fe.timestamps), 0.5)


def test_the_spec_names_every_member_and_changes_with_any_of_them():
    a = get_embedder("fusion", members=MEMBERS).spec()
    b = get_embedder("fusion", members=["mfcc", {"name": "logmel", "pooling": "mean_std", "weight": 1.0}]).spec()
    c = get_embedder("fusion", members=[{"name": "mfcc", "params": {"n_mfcc": 13}}, MEMBERS[1]]).spec()
    assert [m["name"] for m in a.params["members"]] == ["mfcc", "logmel"]
    assert a.params["members"][0]["params"]["n_mfcc"] == 20
    assert len({a.key(), b.key(), c.key()}) == 3


def test_a_pickled_fusion_rebuilds_its_members():
    fused = get_embedder("fusion", members=MEMBERS)
    again = pickle.loads(pickle.dumps(fused))
    assert again.spec() == fused.spec()
    clip = _clip(4)
    np.testing.assert_allclose(again.embed(clip).vectors, fused.embed(clip).vectors, rtol=1e-6)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"members": []}, "at least 1"),
        ({}, "members"),
        ({"members": ["mfccc"]}, "did you mean 'mfcc'"),
        ({"members": [{"name": "mfcc", "pooling": "median"}]}, "pooling"),
        ({"members": [{"name": "mfcc", "weight": 0}]}, "greater than 0"),
        ({"members": ["mfcc"], "windows": 2}, "did you mean 'window_s'"),
    ],
)
def test_bad_fusions_say_what_is_wrong(params, message):
    with pytest.raises(Exception, match=message) as info:
        get_embedder("fusion", **params)
    assert isinstance(info.value, (ConfigError, LookupError)) or "Error" in type(info.value).__name__


def test_a_fusion_indexes_and_searches_a_collection(tmp_path):
    from audiovec import Collection
    from audiovec.data import demo_dir

    sfx = Collection.create(tmp_path / "fused", "fusion", {"members": ["mfcc", "logmel"]}, store="exact")
    folder = demo_dir()
    files = sorted(p for p in folder.rglob("*.flac"))[:6]
    summary = sfx.index([str(p) for p in files], workers=1)
    assert summary.added == 6
    hits = sfx.search(str(files[0]), k=3)
    assert hits[0]["path"].endswith(files[0].name) and hits[0]["score"] == pytest.approx(1.0, abs=1e-4)


def test_a_fusion_is_a_service_preset(tmp_path):
    requests = pytest.importorskip("requests")
    from audiovec.data import demo_dir
    from audiovec.service import EmbedderPreset, ServiceSettings
    from audiovec.service.server import BackgroundServer

    preset = EmbedderPreset(name="fusion", params={"members": ["mfcc", "logmel"]}, description="MFCC + log-mel")
    settings = ServiceSettings(data_dir=tmp_path / "data", embedders={"timbre": preset})
    files = sorted(demo_dir().rglob("*.flac"))[:4]
    with BackgroundServer(settings) as srv, requests.Session() as http:
        api = f"{srv.url}/api/v1"
        r = http.post(f"{api}/collections", json={"name": "sfx", "embedder": "timbre", "pooling": "mean+l2"})
        assert r.status_code == 201, r.text
        upload = [("files", (p.name, p.read_bytes(), "application/octet-stream")) for p in files]
        assert http.post(f"{api}/collections/sfx/items", files=upload).status_code == 201
        r = http.post(f"{api}/collections/sfx/search", files={"file": (files[2].name, files[2].read_bytes())})
        assert r.status_code == 200, r.text
        assert r.json()["results"][0]["filename"] == files[2].name

"""Fitted projections: each step's arithmetic, the chain, saving and loading, k-means and its agreement scores."""

from __future__ import annotations

import numpy as np
import pytest

from audiovec.errors import ConfigError
from audiovec.projections import Projection, cluster_agreement, kmeans


def _blobs(n=400, dim=30, classes=5, spread=3.0, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    centres = rng.normal(size=(classes, dim)) * spread
    return rng.normal(size=(n, dim)) + centres[y] + 5.0, y  # + a constant offset every vector shares


def test_center_removes_the_fitted_mean_and_applies_it_to_new_vectors():
    x, _ = _blobs()
    p = Projection("center").fit(x[:300])
    np.testing.assert_allclose(p.transform(x[:300]).mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(p.transform(x[300:]), x[300:] - x[:300].mean(0), rtol=1e-5, atol=1e-5)


def test_pca_matches_the_leading_variance_and_whitening_gives_unit_variance():
    x, _ = _blobs()
    p = Projection("pca:4").fit(x)
    z = p.transform(x)
    evals = np.linalg.eigvalsh(np.cov(x.T))[::-1][:4]
    np.testing.assert_allclose(z.var(0, ddof=1), evals, rtol=1e-4)
    w = Projection("pca:4:whiten").fit(x).transform(x)
    np.testing.assert_allclose(w.var(0, ddof=1), 1.0, rtol=1e-4)
    assert p.bytes_per_vector() == 16.0


def test_lda_finds_classes_minus_one_directions_that_separate_the_labels():
    x, y = _blobs(classes=4, spread=0.6)
    lda = Projection("lda").fit(x, y)
    z = lda.transform(x)
    assert z.shape == (len(x), 3)

    def ratio(v):  # between-class over within-class variance
        means = np.stack([v[y == c].mean(0) for c in range(4)])
        return means.var(0).sum() / np.mean([v[y == c].var(0).sum() for c in range(4)])

    assert ratio(z) > 2 * ratio(x)
    assert Projection("lda:2").fit(x, y).transform(x).shape[1] == 2


def test_supervised_steps_need_labels_and_unlabelled_rows_are_left_out_of_their_fit():
    x, y = _blobs()
    with pytest.raises(ConfigError, match="supervised"):
        Projection("lda").fit(x)
    labels = [None if i % 3 == 0 else str(v) for i, v in enumerate(y)]
    z = Projection("center+lda").fit(x, labels).transform(x)
    assert z.shape == (len(x), 4)
    with pytest.raises(ConfigError, match="two labels"):
        Projection("lda").fit(x, ["a"] * len(x))


def test_scalar_quantisation_stores_one_byte_per_dimension_within_half_a_step():
    x, _ = _blobs()
    p = Projection("sq8").fit(x)
    step = (x.max(0) - x.min(0)) / 255
    assert np.all(np.abs(p.transform(x) - x) <= step / 2 + 1e-4)
    assert p.bytes_per_vector() == x.shape[1]


def test_product_quantisation_error_falls_with_more_sub_vectors_and_costs_one_byte_each():
    x, _ = _blobs(n=600, dim=32)
    errs = []
    for m in (2, 8):
        p = Projection(f"pq:{m}").fit(x)
        errs.append(float(((p.transform(x) - x) ** 2).sum(1).mean()))
        assert p.bytes_per_vector() == m
    assert errs[1] < errs[0] < float(((x - x.mean(0)) ** 2).sum(1).mean())


def test_nca_is_supervised_and_reduces_to_the_asked_dimension():
    pytest.importorskip("sklearn")
    x, y = _blobs(n=150, dim=10)
    z = Projection("nca:3:iters=10").fit(x, y).transform(x)
    assert z.shape == (150, 3)


def test_autoencoder_bottleneck_is_deterministic_and_its_encoder_runs_without_torch():
    pytest.importorskip("torch")
    x, _ = _blobs(n=200, dim=12)
    a = Projection("ae:8-3:epochs=5").fit(x, seed=1)
    b = Projection("ae:8-3:epochs=5").fit(x, seed=1)
    za, zb = a.transform(x), b.transform(x)
    assert za.shape == (200, 3)
    np.testing.assert_allclose(za, zb, rtol=1e-6)
    assert np.isfinite(za).all() and za.std() > 0


def test_save_and_load_round_trip_with_what_it_was_fitted_on(tmp_path):
    x, y = _blobs()
    p = Projection("center+lda:3").fit(x, y, fitted_on={"dataset": "blobs", "rows": "all"})
    path = p.save(tmp_path / "p.npz")
    q = Projection.load(path)
    np.testing.assert_array_equal(q.transform(x), p.transform(x))
    assert q.spec() == p.spec() and q.spec()["fitted_on"]["dataset"] == "blobs"
    assert q.spec()["fitted_on"]["n_vectors"] == len(x) and q.spec()["key"] == p.spec()["key"]
    other = Projection("center+lda:3").fit(x[:200], y[:200], fitted_on={"dataset": "blobs", "rows": "first 200"})
    assert other.spec()["key"] != p.spec()["key"]  # the key names what it was fitted on


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("pcaa:4", "did you mean 'pca'"),
        ("sq8+pca:4", "must be the last step"),
        ("pca:4:whitten", "unknown argument"),
        ("lda:shrink=2", "shrink"),
        ("pq", "number of sub-vectors"),
        ("ae:10-x", "integers"),
        ("", "empty"),
    ],
)
def test_bad_specs_say_what_is_wrong(spec, message):
    with pytest.raises(ConfigError, match=message):
        Projection(spec)


def test_transform_refuses_an_unfitted_chain_and_another_dimension():
    x, _ = _blobs()
    with pytest.raises(ConfigError, match="not fitted"):
        Projection("center").transform(x)
    p = Projection("center").fit(x)
    with pytest.raises(ConfigError, match="fitted on dim 30"):
        p.transform(x[:, :5])


def test_kmeans_nmi_matches_scikit_learn_and_purity_counts_majorities():
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    x, y = _blobs(spread=1.0)
    _, assign = kmeans(x, 5, seed=0, n_init=5)
    purity, nmi = cluster_agreement(x, y, seed=0)
    assert nmi == pytest.approx(sklearn_metrics.normalized_mutual_info_score(y, assign), abs=1e-9)
    counts = np.zeros((5, 5))
    np.add.at(counts, (assign, y), 1)
    assert purity == pytest.approx(counts.max(1).sum() / len(y))
    well, _ = cluster_agreement(*_blobs(spread=10.0))
    assert well > 0.95  # well-separated blobs are recovered

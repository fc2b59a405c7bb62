"""Projections in the benchmark: fitted on the other folds of groups only, so shuffled labels cannot leak."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from audiovec import Benchmark
from audiovec.benchmark.projected import cross_fitted_quality, projection_file
from audiovec.benchmark.retrieval import quality
from audiovec.projections import Projection
from vectorsets import make_vector_set

pytest.importorskip("sklearn")


def _data(n=400, dim=60, classes=8, groups=10, signal=0.0, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    x = rng.normal(size=(n, dim)) + 4.0 + signal * rng.normal(size=(classes, dim))[y]
    g = np.arange(n) % groups
    return x, [f"c{v}" for v in y], [f"g{v}" for v in g]


def _leaky(vs, spec):
    """The mistake cross-fitting prevents: fit on every vector (queries included), then score."""
    labels = list(vs.labels)
    x = Projection(spec).fit(vs.x, labels).transform(vs.x)
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    return quality(dataclasses.replace(vs, x=x.astype(np.float32)), 10, bootstrap=200, linear_probe=False).row


def test_a_supervised_projection_cannot_beat_chance_on_shuffled_labels():
    # Labels carry no information about the vectors: nothing fitted on other folds can find any.
    x, labels, groups = _data(n=300, dim=150, signal=0.0)  # many dimensions: room to overfit
    vs = make_vector_set(x, labels, groups)
    chance = 1 / 8
    scores, _ = cross_fitted_quality(vs, "center+lda", 10, bootstrap=500, seed=0)
    row = scores.row
    assert row["top1_acc_lo"] <= chance + 0.01, row  # within its interval of chance
    assert row["top1_acc"] < chance + 0.08
    # The test has power: fitting on the queries themselves "learns" the shuffled labels far beyond chance.
    leaky = _leaky(vs, "center+lda")
    assert leaky["top1_acc_lo"] > chance + 0.4, leaky


def test_with_real_structure_the_cross_fitted_lda_beats_the_raw_vectors():
    x, labels, groups = _data(signal=0.35, seed=1)
    vs = make_vector_set(x, labels, groups)
    raw = quality(vs, 10, bootstrap=200, linear_probe=False).row
    scores, fitted = cross_fitted_quality(vs, "center+lda", 10, bootstrap=200)
    assert scores.row["map_at_k"] > raw["map_at_k"] + 0.1
    assert scores.row["dim"] == 7 and scores.row["bytes_per_vector"] == 28
    assert scores.row["pooling"] == "p -> center+lda" and scores.row["folds"] == 5
    assert fitted.fitted and fitted.fitted_on["rows"] == "all"
    # every valid query is scored exactly once, in row order, and the pairs come from within folds
    assert list(scores.query_rows) == list(np.flatnonzero(vs.queries))
    inn, out = scores.similarities
    assert len(inn) > 100 and len(out) > 100 and inn.mean() > out.mean()


def test_folds_never_split_a_group_and_hold_out_each_group_once():
    x, labels, groups = _data(n=120, groups=3)
    vs = make_vector_set(x, labels, groups)
    scores, _ = cross_fitted_quality(vs, "center", 10, folds=5, bootstrap=50)
    assert scores.row["folds"] == 3  # fewer groups than folds: one group per fold
    # centring fitted on other groups is not centring on all: the scores differ from a full fit, but are valid
    assert 0 <= scores.row["top1_acc"] <= 1 and scores.row["n_queries"] == int(vs.queries.sum())


def test_the_benchmark_scores_projections_next_to_the_raw_vectors_and_saves_the_fits(tmp_path):
    result = Benchmark(
        output_dir=str(tmp_path / "out"),
        progress=False,
        bootstrap=100,
        embedders=[{"name": "mfcc", "poolings": ["mean_std+l2"]}],
        projections=["center", "pca:8+sq8", "center+lda"],
        sizes=[],
    ).run()
    q = result.quality.set_index("pooling")
    assert set(q.index) == {
        "mean_std+l2",
        "mean_std+l2 -> center",
        "mean_std+l2 -> pca:8+sq8",
        "mean_std+l2 -> center+lda",
    }
    assert q.loc["mean_std+l2", "bytes_per_vector"] == 160
    assert q.loc["mean_std+l2 -> pca:8+sq8", "bytes_per_vector"] == 8
    assert q.loc["mean_std+l2", "kmeans_nmi"] > 0
    # the same queries, so the verdict's paired test can compare them
    ids = {k: list(v["ids"]) for k, v in result.per_query.items()}
    assert ids["mfcc|mean_std+l2 -> center"] == ids["mfcc|mean_std+l2"]
    saved = sorted(p.name for p in (tmp_path / "out" / "projections").iterdir())
    assert len(saved) == 3
    lda = Projection.load(projection_file(tmp_path / "out", "mfcc", "mean_std+l2", "center+lda"))
    assert lda.fitted_on["embedder"] == "mfcc" and lda.fitted_on["n_vectors"] == q.loc["mean_std+l2", "n_vectors"]
    assert result.verdict.smallest is not None and result.verdict.smallest.pooling == "mean_std+l2 -> pca:8+sq8"


def test_a_bad_projection_is_refused_when_the_config_is_built():
    from audiovec.errors import ConfigError

    with pytest.raises((ConfigError, ValueError), match="did you mean 'lda'"):
        Benchmark(projections=["ldaa"])

"""Retrieval quality as pure functions: quality_against (degraded queries vs a clean index), the query rule."""

from __future__ import annotations

import numpy as np
import pytest

from audiovec.benchmark.retrieval import pair_similarities, quality, quality_against
from audiovec.errors import ConfigError
from vectorsets import make_vector_set as _vs


def _reference(qx, ql, qg, x, labels, groups, k):
    """Brute force: cosine similarity, own group masked, ties to the lower row; (valid, top1, AP@k) per query."""
    sim = (qx / np.linalg.norm(qx, axis=1, keepdims=True)) @ (x / np.linalg.norm(x, axis=1, keepdims=True)).T
    sim[qg[:, None] == groups[None, :]] = -np.inf
    valid, top1, ap = [], [], []
    for i in range(len(qx)):
        n_rel = int(((labels == ql[i]) & (groups != qg[i])).sum())
        if n_rel == 0:
            continue
        order = np.lexsort((np.arange(len(x)), -sim[i]))[:k]
        order = order[np.isfinite(sim[i][order])]
        rel = labels[order] == ql[i]
        prec = np.cumsum(rel) / np.arange(1, len(rel) + 1)
        valid.append(i)
        top1.append(float(rel[0]))
        ap.append(float((prec * rel).sum() / min(k, n_rel)))
    return np.array(valid), np.array(top1), np.array(ap)


def test_quality_against_matches_a_brute_force_reference_with_noisy_queries():
    rng = np.random.default_rng(3)
    n, k = 120, 5
    labels = np.array([f"c{i % 6}" for i in range(n)], dtype=object)
    groups = np.array([f"g{i % 9}" for i in range(n)], dtype=object)
    groups[:3] = "lonely"  # labels c0, c1, c2 once in their own group: still valid (other c0 vectors elsewhere)
    centres = rng.standard_normal((6, 8))
    x = centres[[int(s[1:]) for s in labels]] + 0.9 * rng.standard_normal((n, 8))
    noisy = x + 0.8 * rng.standard_normal(x.shape)
    index, queries = _vs(x, labels, groups), _vs(noisy, labels, groups)
    got = quality_against(queries, index, k, ks=[1, 3], bootstrap=50)
    valid, top1, ap = _reference(noisy, labels, groups, x, labels, groups, k)
    assert got.row["n_queries"] == len(valid) == n
    np.testing.assert_array_equal(got.query_rows, valid)
    np.testing.assert_allclose(got.per_query["top1_acc"], top1)
    np.testing.assert_allclose(got.per_query["map_at_k"], ap)
    assert got.row["top1_acc"] == pytest.approx(top1.mean())
    assert got.row["map_at_k_lo"] <= got.row["map_at_k"] <= got.row["map_at_k_hi"]
    assert {"top3_acc", "topk_acc", "precision_at_k", "knn_acc"} <= set(got.per_query)
    assert got.query_ids == [f"f{i}#0" for i in valid]


def test_a_query_never_finds_its_own_clean_version_nor_its_group():
    # item i's clean vector is identical to its query; every other vector is an orthogonal wrong-label one,
    # except one same-label vector far away in another group
    x = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [-0.2, 0, -1]], np.float32)
    labels = ["a", "b", "c", "a"]
    groups = ["g0", "g1", "g2", "g3"]
    index, queries = _vs(x, labels, groups), _vs(x, labels, groups)
    got = quality_against(queries, index, 1, bootstrap=20)
    # only items 0 and 3 have a same-label vector outside their group; neither is its own nearest match
    assert got.row["n_queries"] == 2
    np.testing.assert_array_equal(got.query_rows, [0, 3])
    assert got.row["top1_acc"] == 0.0  # 1.0 if the clean copy of the query were allowed


def test_quality_against_on_identical_vectors_equals_quality():
    rng = np.random.default_rng(0)
    n = 60
    labels = [f"c{i % 4}" for i in range(n)]
    groups = [f"g{i % 5}" for i in range(n)]
    vs = _vs(rng.standard_normal((n, 6)), labels, groups)
    a = quality(vs, 4, ks=[1, 2], bootstrap=50, linear_probe=False)
    b = quality_against(vs, vs, 4, ks=[1, 2], bootstrap=50)
    for name in ("top1_acc", "top2_acc", "topk_acc", "map_at_k", "precision_at_k", "knn_acc"):
        np.testing.assert_array_equal(a.per_query[name], b.per_query[name])
        assert a.row[f"{name}_lo"] == b.row[f"{name}_lo"]
    assert a.row["n_queries"] == b.row["n_queries"]


def test_quality_against_takes_a_subset_of_the_items_and_checks_the_pairing():
    rng = np.random.default_rng(1)
    n = 30
    labels = [f"c{i % 3}" for i in range(n)]
    groups = [f"g{i % 4}" for i in range(n)]
    x = rng.standard_normal((n, 5))
    index = _vs(x, labels, groups)
    sub = [2, 5, 11]
    queries = _vs(x[sub], [labels[i] for i in sub], [groups[i] for i in sub], items=sub)
    got = quality_against(queries, index, 3, bootstrap=20)
    full = quality_against(index, index, 3, bootstrap=20)
    np.testing.assert_array_equal(got.per_query["map_at_k"], full.per_query["map_at_k"][sub])
    wrong = _vs(x[sub], [labels[i] for i in sub], ["elsewhere"] * 3, items=sub)
    with pytest.raises(ConfigError, match="group"):
        quality_against(wrong, index, 3)
    with pytest.raises(ConfigError, match="metric"):
        quality_against(_vs(x, labels, groups, metric="l2"), index, 3)


def test_separation_pairs_come_from_valid_queries_only():
    rng = np.random.default_rng(2)
    # class "solo" lives in one group only: it can never have an in-class pair under the group rule
    labels = ["a"] * 20 + ["b"] * 20 + ["solo"] * 20
    groups = [f"g{i % 4}" for i in range(40)] + ["s"] * 20
    x = np.zeros((60, 5))
    x[:40, :4] = rng.standard_normal((40, 4))
    x[40:, 4] = 1.0  # orthogonal to every other vector: any pair with a solo vector has similarity 0
    vs = _vs(x, labels, groups)
    inn, out = pair_similarities(vs, np.random.default_rng(0), n_pairs=2000)
    assert len(inn) > 0 and len(out) > 0
    assert not np.isclose(out, 0.0, atol=1e-12).any()
    assert not np.isclose(inn, 0.0, atol=1e-12).any()

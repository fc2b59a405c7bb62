"""Benchmark metrics against scikit-learn and NumPy references."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.neighbors import KNeighborsClassifier

from audiovec.errors import ConfigError
from audiovec.metrics import (
    METRICS,
    average_precision_at_k,
    bootstrap_ci,
    fit_growth,
    knn_vote_accuracy,
    latency_percentiles,
    linear_probe_accuracy,
    precision_at_k,
    recall_at_k,
    relevance_matrix,
    separation_auc,
    top_k_accuracy,
    weighted_score,
)

RNG = np.random.default_rng(42)


def test_average_precision_matches_sklearn_on_full_rankings():
    for _ in range(20):
        n = 30
        y = RNG.random(n) < 0.3
        y[0] = True
        scores = RNG.random(n)
        order = np.argsort(-scores)
        rel = y[order][None, :]
        ours = average_precision_at_k(rel, n_relevant=[y.sum()])[0]
        assert ours == pytest.approx(average_precision_score(y, scores))


def test_precision_topk_and_ap_at_k_by_hand():
    rel = np.array([[1, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]], dtype=bool)
    np.testing.assert_allclose(precision_at_k(rel, 2), [0.5, 0, 0])
    np.testing.assert_allclose(top_k_accuracy(rel, 1), [1, 0, 0])
    np.testing.assert_allclose(top_k_accuracy(rel, 4), [1, 1, 0])
    # query 0: hits at ranks 1 and 3 -> (1/1 + 2/3) / min(4, 5 relevant) = 0.41667
    np.testing.assert_allclose(average_precision_at_k(rel, n_relevant=[5, 1, 3], k=4), [(1 + 2 / 3) / 4, 0.25, 0])
    np.testing.assert_allclose(average_precision_at_k(rel, k=4), [(1 + 2 / 3) / 2, 0.25, 0])
    with pytest.raises(ConfigError):
        precision_at_k(rel, 0)


def test_relevance_matrix_pads_ragged_rows():
    rel = relevance_matrix(["a", "b"], [["a", "b", "a"], ["b"]])
    assert rel.tolist() == [[True, False, True], [True, False, False]]


def test_separation_auc_matches_roc_auc_with_ties():
    pos = np.round(RNG.normal(1.0, 1.0, 200), 1)
    neg = np.round(RNG.normal(0.0, 1.0, 300), 1)
    y = np.r_[np.ones(200), np.zeros(300)]
    assert separation_auc(pos, neg) == pytest.approx(roc_auc_score(y, np.r_[pos, neg]))
    assert separation_auc(np.array([2.0]), np.array([1.0])) == 1.0
    assert np.isnan(separation_auc(np.array([]), neg))


def test_knn_vote_matches_sklearn_when_no_ties():
    x = RNG.normal(size=(120, 4))
    y = RNG.integers(0, 3, 120)
    xq = RNG.normal(size=(40, 4))
    yq = RNG.integers(0, 3, 40)
    d = ((xq[:, None] - x[None]) ** 2).sum(-1)
    nn = np.argsort(d, axis=1)[:, :5]
    neighbour_labels = y[nn]
    ours = knn_vote_accuracy(yq, neighbour_labels, 5)
    ref = KNeighborsClassifier(5).fit(x, y).predict(xq) == yq
    counts = np.array([np.bincount(row, minlength=3) for row in neighbour_labels])
    no_tie = np.array([(c == c.max()).sum() == 1 for c in counts])
    assert no_tie.sum() > 20
    np.testing.assert_array_equal(ours[no_tie], ref[no_tie])
    # tie: two labels with 2 votes each -> the one with the better rank wins
    assert knn_vote_accuracy(["b"], [["b", "a", "a", "b", "c"]], 5).tolist() == [1.0]


def test_recall_at_k():
    assert recall_at_k([[1, 2, 3], [4, 5, 6]], [[1, 2, 9], [4, 5, 6]], 3) == pytest.approx(5 / 6)
    assert recall_at_k([[1]], [[2, 1]], 1) == 0.0


def test_bootstrap_ci_brackets_the_mean_and_narrows():
    v = RNG.random(50)
    m, lo, hi = bootstrap_ci(v)
    assert lo < m < hi and m == pytest.approx(v.mean())
    _, lo2, hi2 = bootstrap_ci(np.tile(v, 20))
    assert hi2 - lo2 < (hi - lo) / 2
    assert bootstrap_ci(v, seed=1) != bootstrap_ci(v, seed=2)


def test_latency_percentiles_in_ms():
    lat = latency_percentiles(np.arange(1, 101) / 1000)
    assert lat["p50_ms"] == pytest.approx(50.5) and lat["p99_ms"] == pytest.approx(99.01)


def test_fit_growth_recovers_linear_and_power_laws():
    n = np.array([5, 25, 50, 100, 250])
    lin = fit_growth(n, 3 * n + 2)
    assert lin.slope == pytest.approx(3) and lin.intercept == pytest.approx(2) and lin.r2_linear == pytest.approx(1)
    pw = fit_growth(n, 5 * n**1.5)
    assert pw.exponent == pytest.approx(1.5) and pw.coefficient == pytest.approx(5)
    assert np.isnan(fit_growth([5], [1]).slope)


def test_weighted_score_minmax_direction_and_weights():
    rows = [
        {"extract_s": 1.0, "top1_acc": 0.5},
        {"extract_s": 3.0, "top1_acc": 0.9},
        {"extract_s": 2.0, "top1_acc": 0.7},
    ]
    s = weighted_score(rows, {"extract_s": 1, "top1_acc": 1})
    # extract (lower better): 1, 0, 0.5 ; accuracy: 0, 1, 0.5 -> equal halves
    np.testing.assert_allclose(s, [50, 50, 50])
    s = weighted_score(rows, {"extract_s": 3, "top1_acc": 1})
    np.testing.assert_allclose(s, [75, 25, 50])
    assert weighted_score(rows, {"custom": 1}, {"custom": True}) == [0.0, 0.0, 0.0]  # missing everywhere
    with pytest.raises(ConfigError, match="unknown metric"):
        weighted_score(rows, {"nonsense": 1})
    assert all(m.higher_is_better in (True, False) for m in METRICS.values())


def test_linear_probe_is_group_aware():
    # each group has one label and a group-specific offset: a probe that sees the group in training can
    # memorise offsets; one that never sees the test group's offset cannot, and falls to chance.
    rng = np.random.default_rng(3)
    groups = np.repeat(np.arange(40), 5)
    labels = groups % 2
    offsets = rng.normal(size=(40, 16)) * 5
    x = (offsets[groups] + rng.normal(size=(200, 16)) * 0.1).astype(np.float32)
    leaky, _ = linear_probe_accuracy(x, labels, groups=None)
    fair, folds = linear_probe_accuracy(x, labels, groups=groups)
    assert leaky > 0.7  # memorised group offsets
    assert fair < 0.65 and len(folds) == 5  # unseen groups: chance level
    # and a real signal survives group-aware folds
    x2 = x.copy()
    x2[:, 0] += labels * 60
    assert linear_probe_accuracy(x2, labels, groups=groups)[0] > 0.95


def test_linear_probe_leaves_out_items_whose_class_has_no_training_example():
    # classes a and b spread over 8 groups and perfectly separable; class c lives in one group only, so in its
    # test fold the probe has never seen c: it cannot be right, and those items are left out, as kNN leaves out a
    # query with no same-label vector outside its group
    from audiovec.metrics import linear_probe_predictions

    rng = np.random.default_rng(0)
    labels = np.array(["a", "b"] * 40 + ["c"] * 10)
    groups = np.concatenate([np.arange(80) % 8, np.full(10, 99)])
    x = rng.normal(size=(90, 4)).astype(np.float32)
    x[:, 0] += np.where(labels == "a", 8, np.where(labels == "b", -8, 0))
    correct, fold_of = linear_probe_predictions(x, labels, groups=groups)
    assert np.isnan(correct[labels == "c"]).all() and (fold_of[labels == "c"] == -1).all()
    assert np.isfinite(correct[labels != "c"]).all()
    acc, folds = linear_probe_accuracy(x, labels, groups=groups)
    assert acc == 1.0 and (folds == 1.0).all()  # scored on a and b only: 80/90 = 0.89 if c counted as wrong


def test_recall_counts_ties_at_the_kth_distance_as_hits():
    # the index returned 5 where the exact search listed 4; both lie at the k-th distance
    assert recall_at_k([[1, 2, 5]], [[1, 2, 4]], 3) == pytest.approx(2 / 3)
    assert recall_at_k([[1, 2, 5]], [[1, 2, 4]], 3, ties=[{5}]) == 1.0
    assert recall_at_k([[1, 5, 6]], [[1, 2, 4]], 3, ties=[{5, 6, 7}]) == 1.0  # never above 1 per query


def test_exact_index_on_duplicated_vectors_has_recall_one():
    from audiovec.benchmark.stores import exact_truth
    from audiovec.benchmark.vectors import VectorSet, codes, n_relevant

    rng = np.random.default_rng(0)
    base = rng.normal(size=(20, 8))
    x = np.concatenate([base, base, base]).astype(np.float32)  # every vector three times: ties everywhere
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    n = len(x)
    labels = np.array(["l"] * n, dtype=object)
    groups = np.array([f"g{i}" for i in range(n)], dtype=object)
    lc, gc = codes(labels), codes(groups)
    ids = [f"v{i}" for i in range(n)]
    vs = VectorSet("e", "p", "cosine", x, np.arange(n), ids, [{}] * n, labels, groups, lc, gc, n_relevant(lc, gc))
    q = np.arange(0, n, 3)
    truth, ties = exact_truth(vs, q, 2)
    # an exact index that breaks every tie the other way (the last copies first)
    found = []
    for i in q:
        j = int(i) % 20
        found.append([f"v{j + 40}", f"v{j + 20}"])
    assert recall_at_k(found, truth, 2) < 1.0  # without ties: the first copy counts as missed
    assert recall_at_k(found, truth, 2, ties=ties) == 1.0


def test_weight_presets_rank_quality_first_and_keep_the_resource_weighting():
    from audiovec.metrics import DEFAULT_WEIGHTS, WEIGHT_PRESETS, metric_info, resolve_weights

    quality = {"map_at_k", "top1_acc", "topk_acc", "precision_at_k", "knn_acc", "linear_probe_acc"}
    w = DEFAULT_WEIGHTS
    assert sum(v for m, v in w.items() if m in quality) > sum(w.values()) / 2
    assert max(w, key=w.get) == "map_at_k"
    res = WEIGHT_PRESETS["resources"]
    assert not set(res) & quality and res["extract_s"] == 35 and res["rss_mb"] == 25
    assert "peak_mem_mb" not in set().union(*WEIGHT_PRESETS.values())  # tracemalloc never ranks
    assert resolve_weights("resources") == (res, "resources")
    assert resolve_weights({"top3_acc": 2}) == ({"top3_acc": 2.0}, None)
    assert metric_info("top3_acc").higher_is_better and metric_info("top0_acc") is None
    for bad in ("fastest", {"speed": 1}, {"top1_acc": 0}):
        with pytest.raises(ConfigError):
            resolve_weights(bad)

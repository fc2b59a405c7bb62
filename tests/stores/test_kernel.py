"""The exact-search kernel: correctness against brute force, shape independence, ties, group exclusion.

Exact assertions here compare the kernel with itself (other shapes, other blocks) or with references whose every
operation is exact (small-integer data) or identical (the kernel's own per-pair computation); comparisons with a
float64 BLAS brute force state their tolerance, because that reference's last bits depend on the CPU.
"""

from __future__ import annotations

import numpy as np
import pytest

from audiovec.stores import exact_search
from audiovec.stores.kernel import _pair_values, _row_sums, merge_topk, raw_to_score_distance
from audiovec.stores.validation import prepare_vectors

METRICS = ["cosine", "ip", "l2"]


def rand(n, dim=16, seed=0):
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


def data(metric, n=300, nq=20, dim=16, seed=1):
    x, q = rand(n, dim, seed), rand(nq, dim, seed + 1)
    if metric == "cosine":
        x, q = prepare_vectors(x, dim, normalize=True), prepare_vectors(q, dim, normalize=True)
    return q, x


def reference(q, x, k, metric, query_groups=None, vector_groups=None):
    """Brute force from the kernel's own per-pair values: every pair computed, full sort, ties to the lower row."""
    nq, n = len(q), len(x)
    qi, vi = np.divmod(np.arange(nq * n), n)
    raw = _pair_values(q, x, qi, vi, metric == "l2").reshape(nq, n)
    key = raw.astype(np.float64) if metric == "l2" else -raw.astype(np.float64)
    if query_groups is not None:
        key[query_groups[:, None] == vector_groups[None, :]] = np.nan
    kk = min(k, n)
    pad = np.inf if metric == "l2" else -np.inf
    rows, vals = np.full((nq, kk), -1), np.full((nq, kk), pad, np.float32)
    for i in range(nq):
        allowed = np.flatnonzero(~np.isnan(key[i]))
        order = allowed[np.lexsort((allowed, key[i, allowed]))][:kk]
        rows[i, : len(order)], vals[i, : len(order)] = order, raw[i, order]
    return vals, rows


def float64_values(q, x, metric):
    q64, x64 = q.astype(np.float64), x.astype(np.float64)
    if metric == "l2":
        return ((q64[:, None, :] - x64[None]) ** 2).sum(-1)
    return q64 @ x64.T


# ------------------------------------------------------------------------------------------- correctness
@pytest.mark.parametrize("metric", METRICS)
def test_matches_the_per_pair_brute_force_exactly(metric):
    q, x = data(metric)
    raw, rows = exact_search(q, x, 7, metric)
    ref_raw, ref_rows = reference(q, x, 7, metric)
    assert np.array_equal(rows, ref_rows) and np.array_equal(raw, ref_raw)


@pytest.mark.parametrize("metric", METRICS)
def test_near_ties_that_float32_products_misorder_are_ranked_exactly(metric):
    # 400 copies of one vector, each nudged by a few ulps: float32 BLAS products cannot tell most of them apart,
    # so the kernel must keep every near-tie as a candidate and rank it by its exactly computed value
    rng = np.random.default_rng(5)
    base = rng.standard_normal(64).astype(np.float32)
    x = base + (rng.integers(-4, 5, size=(400, 64)) * np.spacing(np.abs(base))).astype(np.float32)
    q = (base + rng.standard_normal((8, 64)).astype(np.float32) * 1e-3).astype(np.float32)
    if metric == "cosine":
        x, q = prepare_vectors(x, 64, normalize=True), prepare_vectors(q, 64, normalize=True)
    for k in (1, 10, 150):
        raw, rows = exact_search(q, x, k, metric)
        ref_raw, ref_rows = reference(q, x, k, metric)
        assert np.array_equal(rows, ref_rows) and np.array_equal(raw, ref_raw), k


@pytest.mark.parametrize("metric", METRICS)
def test_agrees_with_a_float64_blas_brute_force_within_rounding(metric):
    # the float64 reference's own last bits depend on the CPU's BLAS, so this comparison has a tolerance: values
    # within 1e-5 (relative to the largest), and a different row only where the reference sees a near-tie
    q, x = data(metric)
    k, tol = 7, 1e-5
    raw, rows = exact_search(q, x, k, metric)
    full = float64_values(q, x, metric)
    sign = 1.0 if metric == "l2" else -1.0
    best = np.sort(sign * full, axis=1)[:, :k] * sign
    scale = np.abs(full).max()
    assert np.allclose(raw, best, rtol=0, atol=tol * scale)
    order = np.argsort(sign * full, axis=1, kind="stable")[:, :k]
    differ = rows != order
    got, expected = np.take_along_axis(full, rows, 1), np.take_along_axis(full, order, 1)
    assert np.all(np.abs(got - expected)[differ] <= tol * scale), "a row differs from float64 beyond a near-tie"


def test_values_are_exact_on_integer_data_and_ties_go_to_the_lower_row():
    # small integers: every product and partial sum is exact in float32 and float64, so the reference is exact
    rng = np.random.default_rng(3)
    x = rng.integers(-2, 3, size=(500, 6)).astype(np.float32)  # many exact ties
    q = rng.integers(-2, 3, size=(30, 6)).astype(np.float32)
    xi, qi = x.astype(np.int64), q.astype(np.int64)
    for metric, values in (("ip", qi @ xi.T), ("l2", ((qi[:, None] - xi[None]) ** 2).sum(-1))):
        raw, rows = exact_search(q, x, 25, metric)
        key = values if metric == "l2" else -values
        order = np.argsort(key, axis=1, kind="stable")[:, :25]  # stable: equal values keep the lower row first
        assert np.array_equal(rows, order), metric
        assert np.array_equal(raw, np.take_along_axis(values, order, 1).astype(np.float32)), metric


def test_ties_go_to_the_lower_row_and_k_is_clipped():
    x = np.array([[1, 0], [0, 1], [1, 0], [1, 0]], np.float32)
    raw, idx = exact_search(np.array([[1, 0]], np.float32), x, 10, "ip")
    assert idx.tolist() == [[0, 2, 3, 1]] and raw.tolist() == [[1.0, 1.0, 1.0, 0.0]]
    raw, idx = exact_search(np.array([[1, 0]], np.float32), x, 2, "ip")
    assert idx.tolist() == [[0, 2]]
    assert exact_search(np.zeros((0, 2), np.float32), x, 3, "ip")[1].shape == (0, 3)
    assert exact_search(np.ones((2, 2), np.float32), np.zeros((0, 2), np.float32), 3, "ip")[1].shape == (2, 0)


def test_identical_vectors_are_all_candidates_and_come_back_in_row_order():
    x = np.tile(rand(1, 8, 9), (1000, 1))
    for metric in METRICS:
        raw, rows = exact_search(rand(3, 8, 10), x, 5, metric)
        assert rows.tolist() == [[0, 1, 2, 3, 4]] * 3
        assert np.all(raw == raw[:, :1])


# ------------------------------------------------------------------------------------------- shape independence
@pytest.mark.parametrize("metric", METRICS)
def test_results_do_not_depend_on_batch_block_or_subset(metric):
    q, x = data(metric, n=2000, nq=40, dim=48, seed=11)
    raw, rows = exact_search(q, x, 10, metric)
    # one query per block, and every query alone: a different matrix product shape each time
    raw2, rows2 = exact_search(q, x, 10, metric, block_elems=1)
    assert np.array_equal(raw2, raw) and np.array_equal(rows2, rows)
    alone = [exact_search(q[i : i + 1], x, 10, metric) for i in range(len(q))]
    assert np.array_equal(np.concatenate([r for r, _ in alone]), raw)
    assert np.array_equal(np.concatenate([i for _, i in alone]), rows)
    # a subset of the vectors that holds every hit (a filter): the same hits, values identical to the last bit
    keep = np.union1d(np.unique(rows), np.arange(0, len(x), 3))
    sub_raw, sub_rows = exact_search(q, x[keep], 10, metric)
    assert np.array_equal(keep[sub_rows], rows) and np.array_equal(sub_raw, raw)
    # precomputed squared norms change nothing
    sq = np.einsum("ij,ij->i", x, x)
    raw3, rows3 = exact_search(q, x, 10, metric, sqnorms=sq)
    assert np.array_equal(raw3, raw) and np.array_equal(rows3, rows)


def test_merge_of_blocks_equals_one_search():
    q, x = data("ip", n=1000, nq=10, seed=4)
    raw, rows = exact_search(q, x, 10, "ip")
    best_raw, best_ids = np.zeros((10, 0), np.float32), np.zeros((10, 0), np.int64)
    for s in range(0, 1000, 128):
        r, i = exact_search(q, x[s : s + 128], 10, "ip")
        best_raw, best_ids = merge_topk(best_raw, best_ids, r, i + s, 10, "ip")
    assert np.array_equal(best_ids, rows) and np.array_equal(best_raw, raw)


# ------------------------------------------------------------------------------------------- groups
@pytest.mark.parametrize("metric", METRICS)
def test_group_exclusion_matches_the_brute_force(metric):
    q, x = data(metric, n=400, nq=30, seed=7)
    rng = np.random.default_rng(8)
    vg = rng.integers(0, 12, size=400).astype(np.int64)
    qg = rng.integers(0, 12, size=30).astype(np.int64)
    raw, rows = exact_search(q, x, 15, metric, query_groups=qg, vector_groups=vg)
    ref_raw, ref_rows = reference(q, x, 15, metric, qg, vg)
    assert np.array_equal(rows, ref_rows) and np.array_equal(raw, ref_raw)
    assert not np.any(vg[rows] == qg[:, None]), "a query was matched with its own group"
    # an all-vs-all search (the benchmark's use): a vector never finds itself or its group
    raw, rows = exact_search(x, x, 5, metric, query_groups=vg, vector_groups=vg)
    assert not np.any(vg[rows] == vg[:, None])


def test_group_exclusion_pads_rows_with_too_few_allowed_vectors():
    x = np.array([[1, 0], [0, 1], [1, 1], [2, 0], [0, 2]], np.float32)
    vg = np.array([0, 0, 1, 1, 2])
    q = np.array([[1, 0], [1, 0], [1, 0]], np.float32)
    qg = np.array([1, 9, 0])  # queries 0 and 2 may use 3 vectors each, query 1 all 5
    raw, rows = exact_search(q, x, 4, "ip", query_groups=qg, vector_groups=vg)
    assert rows.tolist() == [[0, 1, 4, -1], [3, 0, 2, 1], [3, 2, 4, -1]]
    assert raw.tolist() == [[1.0, 0.0, 0.0, -np.inf], [2.0, 1.0, 1.0, 0.0], [2.0, 1.0, 0.0, -np.inf]]
    raw, rows = exact_search(q, x, 4, "l2", query_groups=qg, vector_groups=vg)
    assert rows[0].tolist() == [0, 1, 4, -1] and raw[0, 3] == np.inf
    # a query whose group holds every vector gets padding only
    raw, rows = exact_search(q[:1], x, 2, "cosine", query_groups=np.array([5]), vector_groups=np.full(5, 5))
    assert rows.tolist() == [[-1, -1]] and raw.tolist() == [[-np.inf, -np.inf]]


def test_group_exclusion_keeps_ties_in_row_order():
    x = np.ones((6, 3), np.float32)
    raw, rows = exact_search(
        np.ones((2, 3), np.float32), x, 3, "ip", query_groups=np.array([0, 1]), vector_groups=np.array([0, 1] * 3)
    )
    assert rows.tolist() == [[1, 3, 5], [0, 2, 4]] and raw.tolist() == [[3.0] * 3] * 2


def test_group_arguments_are_checked():
    x = rand(4, 2)
    with pytest.raises(ValueError, match="both"):
        exact_search(x, x, 2, "ip", query_groups=np.zeros(4, np.int64))
    with pytest.raises(ValueError, match="shape"):
        exact_search(x, x, 2, "ip", query_groups=np.zeros(3, np.int64), vector_groups=np.zeros(4, np.int64))


# ------------------------------------------------------------------------------------------- helpers
def test_raw_to_score_distance():
    assert raw_to_score_distance("cosine", 0.25) == (0.25, 0.75)
    assert raw_to_score_distance("ip", -3.0) == (-3.0, -3.0)
    assert raw_to_score_distance("l2", 4.0) == (-4.0, 4.0)
    assert raw_to_score_distance("l2", -1e-7) == (-0.0, 0.0)  # rounding below zero is clipped


def test_merge_topk():
    a_raw, a_ids = np.array([[0.9, 0.1]], np.float32), np.array([[1, -1]])
    b_raw, b_ids = np.array([[0.5, 0.95]], np.float32), np.array([[2, 3]])
    raw, ids = merge_topk(a_raw, a_ids, b_raw, b_ids, 3, "ip")
    assert ids.tolist() == [[3, 1, 2]] and np.allclose(raw, [[0.95, 0.9, 0.5]])
    raw, ids = merge_topk(a_raw, a_ids, b_raw, b_ids, 2, "l2")
    assert ids.tolist() == [[2, 1]]


def test_row_sums_depend_only_on_the_row():
    # the kernel's exactness rests on this: a row's sum is the same whatever the array it sits in
    rng = np.random.default_rng(13)
    for d in (1, 3, 8, 9, 127, 128, 129, 512, 1000, 4096):
        a = rng.standard_normal((200, d)) * 10.0 ** rng.integers(-6, 6, size=(200, d))
        full = _row_sums(a.copy())
        assert np.array_equal(_row_sums(a[:1].copy()), full[:1])
        assert np.array_equal(_row_sums(a[:37].copy()), full[:37])
        idx = rng.integers(0, 200, size=64)
        assert np.array_equal(_row_sums(a[idx]), full[idx])
        assert np.array_equal(_row_sums(np.asfortranarray(a)), full)


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("k", [1, 5, 499, 500, 600])
def test_one_query_gives_what_the_batch_gives(metric, k):
    # one query takes a matrix-vector path; on tie-heavy integer data and on near ties it must agree bit for bit
    rng = np.random.default_rng(5)
    x = rng.integers(-2, 3, size=(500, 6)).astype(np.float32)
    q = rng.integers(-2, 3, size=(8, 6)).astype(np.float32)
    near_q, near_x = data(metric, n=500, nq=8, dim=32, seed=21)
    for qq, xx in ((q, x), (near_q, near_x)):
        raw, rows = exact_search(qq, xx, k, metric)
        for i in range(len(qq)):
            one_raw, one_rows = exact_search(qq[i : i + 1], xx, k, metric)
            assert np.array_equal(one_rows, rows[i : i + 1]) and np.array_equal(one_raw, raw[i : i + 1])
        assert np.array_equal(exact_search(qq[:1], xx, k, metric)[1], reference(qq[:1], xx, k, metric)[1])

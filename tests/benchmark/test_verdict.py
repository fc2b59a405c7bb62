"""The verdict: best configuration, statistical ties by paired bootstrap, fastest, smallest, Pareto set."""

from __future__ import annotations

import numpy as np
import pytest

from audiovec.benchmark.verdict import (
    build_verdict,
    load_per_query,
    paired_bootstrap,
    pareto_front,
    save_per_query,
)

SCHEMA = {"metric", "metric_label", "alpha", "best", "tied", "fastest", "smallest", "pareto", "sentences", "weights",
          "preset"}  # fmt: skip


def _bootstrap_ci(v, seed=0, n=2000):
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, len(v), size=(n, len(v)))].mean(1)
    return [float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))]


def _table(per_query, dims, metric="map_at_k"):
    rows = []
    for key, v in per_query.items():
        e, p = key.split("|")
        lo, hi = _bootstrap_ci(v[metric])
        rows.append({"embedder": e, "pooling": p, "dim": dims[key], "n_queries": len(v[metric]),
                     metric: float(v[metric].mean()), f"{metric}_lo": lo, f"{metric}_hi": hi})  # fmt: skip
    return rows


def _per_query(values):
    ids = np.asarray([f"q{i}#0" for i in range(len(values))])
    return {"ids": ids, "map_at_k": np.asarray(values, dtype=np.float64)}


@pytest.fixture
def three():
    rng = np.random.default_rng(0)
    n = 300
    base = rng.uniform(0, 1, n)  # how hard each query is, shared by every model
    pq = {
        "big|mean": _per_query(np.clip(base + 0.10, 0, 1)),
        # on average 0.005 lower, but query by query it goes both ways: a tie
        "twin|mean": _per_query(np.clip(base + 0.10 + rng.normal(-0.005, 0.2, n), 0, 1)),
        # 0.03 lower on every query: its interval overlaps the best's by eye, yet it is worse on the same queries
        "close|mean": _per_query(np.clip(base + 0.07, 0, 1)),
        # the same model, a worse and wider pooling: dominated by big|mean
        "big|max": _per_query(np.clip(base - 0.1, 0, 1)),
    }
    models = [
        {"embedder": "big", "rtf_median": 20.0, "extract_s_mean": 0.2},
        {"embedder": "twin", "rtf_median": 50.0, "extract_s_mean": 0.08},
        {"embedder": "close", "rtf_median": 400.0, "extract_s_mean": 0.01},
    ]
    dims = {"big|mean": 1024, "twin|mean": 512, "close|mean": 40, "big|max": 2048}
    return _table(pq, dims), models, pq


def test_paired_bootstrap_ties_on_noise_and_separates_a_constant_shift():
    rng = np.random.default_rng(1)
    a = rng.uniform(0, 1, 400)
    diff, lo, hi = paired_bootstrap(a, a - 0.03)
    assert diff == pytest.approx(0.03) and lo == pytest.approx(0.03) and hi == pytest.approx(0.03)
    noise = rng.normal(0, 0.2, 400)
    diff, lo, hi = paired_bootstrap(a, a + noise - noise.mean())  # differences that average exactly zero
    assert diff == pytest.approx(0.0, abs=1e-12) and lo < 0 < hi
    assert all(np.isnan(paired_bootstrap(np.zeros(0), np.zeros(0))))


def test_verdict_names_the_best_and_ties_by_paired_bootstrap_not_by_overlapping_intervals(three):
    quality, models, pq = three
    v = build_verdict(quality, models, pq, metric="map_at_k", k=10, weights={"map_at_k": 1.0}, preset=None)
    assert v is not None
    d = v.to_dict()
    assert set(d) == SCHEMA
    assert d["metric"] == "map_at_k" and d["metric_label"] == "mAP@10" and d["alpha"] == 0.05
    assert (d["best"]["embedder"], d["best"]["pooling"]) == ("big", "mean")
    assert d["best"]["ci"][0] <= d["best"]["value"] <= d["best"]["ci"][1]
    assert [t["embedder"] for t in d["tied"]] == ["twin"]
    t = d["tied"][0]
    assert set(t) == {"embedder", "pooling", "value", "ci", "diff", "diff_ci"}
    assert t["diff_ci"][0] <= 0 <= t["diff_ci"][1]
    close = next(r for r in quality if r["embedder"] == "close")
    assert close["map_at_k_hi"] > d["best"]["ci"][0]  # the intervals overlap...
    assert "close" not in {t["embedder"] for t in d["tied"]}  # ...but on the same queries it is always lower
    assert d["fastest"] == {"embedder": "close", "pooling": "mean", "rtf": 400.0, "extract_s": 0.01}
    assert d["smallest"] == {"embedder": "close", "pooling": "mean", "bytes_per_vector": 160}
    # big|max is beaten by big|mean on quality and size at the same speed; each of the others wins on something
    assert [(p["embedder"], p["pooling"]) for p in d["pareto"]] == [
        ("big", "mean"),
        ("twin", "mean"),
        ("close", "mean"),
    ]
    assert set(d["pareto"][0]) == {"embedder", "pooling", "quality", "rtf", "bytes_per_vector"}
    assert d["weights"] == {"map_at_k": 1.0} and d["preset"] is None
    assert [v.standing(e, "mean") for e in ("big", "twin", "close")] == ["best", "tied", ""]
    text = " ".join(d["sentences"])
    assert "big with mean pooling" in text and "twin" in text and "400" in text and "160 bytes" in text
    assert "seed" not in text.lower()


def test_ties_use_only_the_queries_both_configurations_scored():
    a = _per_query([1.0, 1.0, 1.0, 0.0])
    b = {"ids": np.asarray(["q0#0", "q1#0", "q2#0", "other#0"]), "map_at_k": np.asarray([1.0, 1.0, 1.0, 1.0])}
    quality = [
        {"embedder": "a", "pooling": "p", "dim": 4, "map_at_k": 0.75, "map_at_k_lo": 0.5, "map_at_k_hi": 1.0},
        {"embedder": "b", "pooling": "p", "dim": 4, "map_at_k": 1.0, "map_at_k_lo": 1.0, "map_at_k_hi": 1.0},
    ]
    v = build_verdict(quality, [], {"a|p": a, "b|p": b})
    assert v is not None and v.best.embedder == "b"
    (t,) = v.tied
    assert t.embedder == "a" and t.diff == 0.0 and t.diff_ci == [0.0, 0.0]  # q0..q2 agree; q3/other unpaired
    assert v.fastest is None  # no speed figures


def test_no_quality_no_verdict():
    assert (
        build_verdict([{"embedder": "a", "pooling": "p", "note": "quality needs at least two labels"}], [], {}) is None
    )


def test_pareto_front_keeps_equal_points_and_treats_nan_as_worst():
    assert pareto_front([(1, 1, 1), (1, 1, 1), (0, 2, 0)]) == [0, 1, 2]
    assert pareto_front([(1, float("nan"), 1), (1, 0, 1)]) == [1]
    assert pareto_front([(0.5, 10, -80), (0.6, 5, -160), (0.4, 5, -160)]) == [0, 1]


def test_per_query_values_round_trip(tmp_path, three):
    _, _, pq = three
    save_per_query(tmp_path / "pq.npz", pq)
    back = load_per_query(tmp_path / "pq.npz")
    assert set(back) == set(pq)
    for key in pq:
        np.testing.assert_array_equal(back[key]["map_at_k"], pq[key]["map_at_k"])
        assert back[key]["ids"].tolist() == pq[key]["ids"].tolist()


def test_a_folder_without_per_query_values_has_no_verdict(tmp_path, three):
    import pandas as pd

    from audiovec.benchmark import BenchmarkConfig, BenchmarkResult
    from audiovec.benchmark.verdict import verdict_from_dir
    from audiovec.errors import ConfigError

    quality, models, pq = three
    empty = pd.DataFrame()
    result = BenchmarkResult(BenchmarkConfig(), empty, pd.DataFrame(models), pd.DataFrame(quality), empty, empty,
                             empty, empty, per_query=pq)  # fmt: skip
    result.save(tmp_path / "new")
    assert verdict_from_dir(tmp_path / "new").best.embedder == "big"
    (tmp_path / "new" / "per_query.npz").unlink()
    assert BenchmarkResult.load(tmp_path / "new").verdict is None
    with pytest.raises(ConfigError, match="per-query"):
        verdict_from_dir(tmp_path / "new")


def test_sentence_numbers_have_three_significant_figures_and_no_exponents():
    from audiovec.benchmark.verdict import _fmt

    cases = {1410.3: "1,410", 12345.0: "12,300", 99.96: "100", 0.556: "0.556", 0.000386: "0.000386", -0.0117: "-0.0117"}
    assert {v: _fmt(v) for v in cases} == cases
    assert _fmt(float("nan")) == "unknown"

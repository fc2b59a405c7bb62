"""Robustness stage on the bundled demo set with MFCC: degraded queries scored against the clean vectors."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from audiovec.audio import degrade as dg
from audiovec.benchmark.config import BenchmarkConfig, EmbedderEntry
from audiovec.benchmark.datasets import Dataset, Item, demo_dataset
from audiovec.benchmark.extraction import extract_dataset
from audiovec.benchmark.retrieval import quality
from audiovec.benchmark.robustness import ROW_KEYS, query_items, robustness
from audiovec.benchmark.vectors import pool_vectors
from audiovec.embedders import get_embedder
from audiovec.errors import ConfigError, MissingDependencyError

METRICS = ("top1_acc", "topk_acc", "precision_at_k", "map_at_k", "knn_acc", "top3_acc")
K = 5


@pytest.fixture(scope="module")
def clean():
    """The demo set, MFCC, and its clean vector sets for two poolings (extracted once for the module)."""
    ds = demo_dataset()
    cfg = BenchmarkConfig(
        embedders=[EmbedderEntry(name="mfcc", poolings=["mean_std+l2", "mean+l2"])],
        workers=1,
        resource_files=0,
        progress=False,
    )
    entry = cfg.embedders[0]
    label = cfg.embedder_label(entry)
    frames = extract_dataset(ds, cfg, None).frames[label]
    pipes = entry.pipelines()
    sets = [pool_vectors(ds, frames, p, label, cfg.metric) for p in pipes]
    return ds, get_embedder("mfcc"), pipes, sets


def run(clean, conditions, **kw):
    ds, emb, pipes, sets = clean
    kw = {"k": K, "ks": [1, 3], "bootstrap": 100, "seed": 0, **kw}
    return robustness(ds, emb, pipes, sets, conditions, **kw)


def by_condition(res, pooling):
    return {r["condition"]: r for r in res.rows if r["pooling"] == pooling}


def test_heavy_noise_lowers_quality_and_a_no_op_condition_equals_clean(clean):
    res = run(clean, ["pink:-20", "noise:-20", "gain:0", "excerpt:60"])
    assert not res.failures
    for vs in clean[3]:
        rows = by_condition(res, vs.pooling)
        base = rows["clean"]
        assert base["map_at_k"] > 0.15
        assert rows["pink:-20"]["map_at_k"] < base["map_at_k"] - 0.07, vs.pooling  # about half of clean
        assert rows["noise:-20"]["map_at_k"] < base["map_at_k"], vs.pooling
        for spec in ("gain:0", "excerpt:60"):  # the degraded path itself changes nothing
            for m in METRICS:
                assert rows[spec][m] == base[m], (vs.pooling, spec, m)
            np.testing.assert_array_equal(
                res.scores[(vs.pooling, spec)].per_query["map_at_k"],
                res.scores[(vs.pooling, "clean")].per_query["map_at_k"],
            )


def test_the_baseline_is_the_quality_table_on_the_same_queries(clean):
    res = run(clean, [])
    for vs in clean[3]:
        table = quality(vs, K, ks=[1, 3], bootstrap=100, seed=0, linear_probe=False).row
        base = by_condition(res, vs.pooling)["clean"]
        assert base["n_queries"] == table["n_queries"] == int(vs.queries.sum())
        for m in METRICS:
            assert base[m] == pytest.approx(table[m]), m


def test_rows_have_the_columns_levels_and_order_of_a_curve(clean):
    conds = ["noise:20", "noise:0", "excerpt:0.5", "gain:-20"]
    res = run(clean, conds)
    _, _, pipes, sets = clean
    assert len(res.rows) == len(pipes) * (1 + len(conds))
    assert [r["condition"] for r in res.rows] == (["clean", *conds]) * len(pipes)
    assert [r["pooling"] for r in res.rows] == [p.describe() for p in pipes for _ in range(1 + len(conds))]
    valid_items = sorted(set(sets[0].item[sets[0].queries].tolist()))
    assert res.items == valid_items
    for r in res.rows:
        assert list(r)[: len(ROW_KEYS)] == list(ROW_KEYS)
        assert r["embedder"] == "mfcc" and r["n_items"] == len(valid_items) and r["n_failed"] == 0
        for m in METRICS:
            assert r[f"{m}_lo"] <= r[m] <= r[f"{m}_hi"]
    rows = by_condition(res, pipes[0].describe())
    assert (rows["noise:0"]["degradation"], rows["noise:0"]["level"], rows["noise:0"]["level_value"]) == (
        "noise",
        "0 dB SNR",
        0.0,
    )
    assert rows["excerpt:0.5"]["level_value"] == 0.5 and rows["gain:-20"]["degradation"] == "gain"
    assert rows["clean"]["degradation"] == "clean" and math.isnan(rows["clean"]["level_value"])


def test_noise_is_reproducible_and_depends_on_the_seed(clean):
    a = run(clean, ["noise:0"], max_queries=12)
    b = run(clean, ["noise:0"], max_queries=12)
    c = run(clean, ["noise:0"], max_queries=12, seed=1)
    pool = clean[2][0].describe()
    qa = a.scores[(pool, "noise:0")]
    np.testing.assert_array_equal(qa.per_query["map_at_k"], b.scores[(pool, "noise:0")].per_query["map_at_k"])
    assert a.rows == b.rows
    assert c.items != a.items or not np.array_equal(
        qa.per_query["map_at_k"], c.scores[(pool, "noise:0")].per_query["map_at_k"]
    )


def test_max_queries_takes_a_stratified_seeded_subset_for_every_condition(clean):
    ds, _, _, sets = clean
    res = run(clean, ["gain:-20"], max_queries=9)
    assert len(res.items) == 9 and res.items == query_items(sets, 9, 0)
    assert res.items != query_items(sets, 9, 1)
    labels = Counter(ds[i].label for i in res.items)
    valid_labels = {ds[i].label for i in query_items(sets)}
    assert set(labels) == valid_labels and max(labels.values()) - min(labels.values()) <= 1  # every class
    for r in res.rows:
        assert r["n_items"] == 9 and r["n_queries"] == 9
    with pytest.raises(ConfigError, match="max_queries"):
        query_items(sets, 0)


def test_an_unreadable_query_file_is_recorded_and_the_rest_is_scored(clean, tmp_path):
    ds, emb, pipes, sets = clean
    victim = int(sets[0].item[sets[0].queries][0])
    broken = tmp_path / "broken.flac"
    broken.write_bytes(b"not audio at all")
    items = [Item(str(broken), it.label, it.group) if i == victim else it for i, it in enumerate(ds)]
    res = robustness(Dataset(items, "demo"), emb, pipes, sets, ["gain:-6", "noise:10"], k=K, bootstrap=50)
    assert {(f["item"], f["condition"]) for f in res.failures} == {(victim, "gain:-6"), (victim, "noise:10")}
    assert "AudioDecodeError" in res.failures[0]["error"]
    rows = by_condition(res, pipes[0].describe())
    assert rows["gain:-6"]["n_failed"] == 1 and rows["gain:-6"]["n_queries"] == rows["clean"]["n_queries"] - 1


def test_bad_arguments_fail_before_any_work(clean, monkeypatch):
    ds, emb, pipes, sets = clean
    with pytest.raises(ConfigError, match="unknown degradation"):
        robustness(ds, emb, pipes, sets, ["reverb:2"])
    with pytest.raises(ConfigError, match="pipelines for"):
        robustness(ds, emb, pipes[:1], sets, ["gain:-6"])
    with pytest.raises(ConfigError, match="does not match"):
        robustness(ds, emb, pipes[::-1], sets, ["gain:-6"])
    monkeypatch.setattr(dg, "codec_available", lambda codec: False)
    monkeypatch.setattr("audiovec.benchmark.robustness.load", lambda *a, **k: pytest.fail("work started"))
    with pytest.raises(MissingDependencyError, match="pip install"):
        robustness(ds, emb, pipes, sets, ["gain:-6", "mp3:64"])

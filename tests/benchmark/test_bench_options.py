"""Benchmark options: weights presets, ks apart from k, the probe per embedder, header-less manifests, growth fits."""

from __future__ import annotations

import json

import numpy as np
import pytest

from audiovec.benchmark import Benchmark, BenchmarkConfig, DatasetConfig, EmbedderEntry, StoreEntry, load_config
from audiovec.benchmark.datasets import ManifestDataset
from audiovec.benchmark.stores import MIN_GROWTH_SIZES, growth_rows
from audiovec.data import demo_dir
from audiovec.errors import ConfigError
from audiovec.metrics import WEIGHT_PRESETS


def _write(path, data):
    path.write_text(json.dumps(data))
    return path


def test_weights_are_a_preset_name_or_a_table(tmp_path):
    assert BenchmarkConfig().ranking_weights == (WEIGHT_PRESETS["quality"], "quality")
    cfg = load_config(_write(tmp_path / "a.json", {"weights": "resources"}))
    assert cfg.ranking_weights == (WEIGHT_PRESETS["resources"], "resources")
    cfg = load_config(_write(tmp_path / "b.json", {"weights": {"map_at_k": 3, "rss_mb": 1}}))
    assert cfg.ranking_weights == ({"map_at_k": 3.0, "rss_mb": 1.0}, None)
    with pytest.raises(ConfigError, match="unknown weights preset"):
        load_config(_write(tmp_path / "c.json", {"weights": "fast"}))
    with pytest.raises(ConfigError, match="unknown metrics"):
        load_config(_write(tmp_path / "d.json", {"weights": {"speed": 1}}))


def test_ks_are_set_apart_from_k_and_the_verdict_metric_is_checked(tmp_path):
    cfg = load_config(_write(tmp_path / "a.json", {"k": 10, "ks": [10, 1, 3, 3]}))
    assert cfg.k == 10 and cfg.ks == [1, 3, 10]
    for bad, match in (
        ({"ks": [0]}, "ks"),
        ({"ks": []}, "ks"),
        ({"verdict_metric": "extract_s"}, "verdict_metric"),
        ({"verdict_metric": "top5_acc", "ks": [1, 3]}, "top5_acc"),
    ):
        with pytest.raises(ConfigError, match=match):
            load_config(_write(tmp_path / "bad.json", bad))


def test_the_probe_is_switched_per_embedder(tmp_path):
    cfg = BenchmarkConfig(
        embedders=[EmbedderEntry(name="mfcc", label="m1", probe=False), EmbedderEntry(name="mfcc", label="m2")],
        linear_probe=True,
    )
    assert [cfg.probe_for(e) for e in cfg.embedders] == [False, True]
    off = cfg.model_copy(update={"linear_probe": False})
    assert [off.probe_for(e) for e in off.embedders] == [False, False]
    on = BenchmarkConfig(embedders=[EmbedderEntry(name="mfcc", probe=True)], linear_probe=False)
    assert on.probe_for(on.embedders[0]) is True


def test_a_run_scores_store_quality_on_the_quality_queries_and_skips_a_probe(tmp_path):
    cfg = BenchmarkConfig(
        embedders=[EmbedderEntry(name="mfcc", probe=False)], stores=[StoreEntry(name="exact")], sizes=[],
        n_latency_queries=5, ks=[1, 2], k=4, bootstrap=20, resource_files=0, embedding_map_points=0,
        output_dir=str(tmp_path / "out"), progress=False,
    )  # fmt: skip
    result = Benchmark(cfg).run()
    q = result.quality.iloc[0]
    st = result.stores.iloc[0]
    assert "linear_probe_acc" not in result.quality.columns
    assert {"top1_acc", "top2_acc", "topk_acc", "map_at_k"} <= set(result.quality.columns)
    # only 5 latency queries, but store quality is scored on all the quality queries, and an exact store
    # reproduces the exact-search figure
    assert st["n_latency_queries"] == 5 and st["store_n_queries"] == q["n_queries"] == 36
    assert st["store_top1_acc"] == q["top1_acc"] == st["exact_top1_acc"]
    # a subset of the queries for store quality: counted, and compared with exact search on the same queries
    sub = Benchmark(cfg.model_copy(update={"store_quality_queries": 9, "output_dir": str(tmp_path / "o2")})).run()
    st2 = sub.stores.iloc[0]
    assert st2["store_n_queries"] == 9 and st2["store_top1_acc"] == st2["exact_top1_acc"]
    assert "top2_acc" in result.ranking.columns


def test_a_manifest_without_a_header_line_reads_with_column_names(tmp_path):
    files = sorted((demo_dir() / "kick").glob("*.flac"))[:3]
    lines = [f"{p}\tkick\t{p.name.split('__')[0]}" for p in files]
    (tmp_path / "m.tsv").write_text("\n".join(lines) + "\n")
    ds = ManifestDataset(tmp_path / "m.tsv", group_col="kit", columns=["path", "label", "kit"], header=False)
    assert len(ds) == 3 and [it.path for it in ds] == [str(p) for p in files]
    assert {it.label for it in ds} == {"kick"} and ds[0].group == files[0].name.split("__")[0]
    # read as if the first line were a header, a file is lost and the columns are file names
    with pytest.raises(ConfigError, match="no column"):
        ManifestDataset(tmp_path / "m.tsv", group_col="kit")
    with pytest.raises(ConfigError, match="column names"):
        ManifestDataset(tmp_path / "m.tsv", header=False)
    cfg = DatasetConfig(kind="manifest", path="m.tsv", header=False, columns=["path", "label", "kit"], group_col="kit")
    assert cfg.columns == ["path", "label", "kit"]
    with pytest.raises(ValueError, match="needs 'columns'"):
        DatasetConfig(kind="manifest", path="m.tsv", header=False)
    with pytest.raises(ValueError, match="lack"):
        DatasetConfig(kind="manifest", path="m.tsv", columns=["file", "label"])
    with pytest.raises(ValueError, match="only for dataset kind 'manifest'"):
        DatasetConfig(kind="folder", path="x", columns=["path"])


def test_growth_is_fitted_only_from_four_sizes():
    def rows(sizes):
        return [{"embedder": "e", "pooling": "p", "store": "s", "size": n, "extract_s_total": 0.01 * n + 0.1,
                 "insert_s": 0.001 * n, "search_p50_ms": 0.2} for n in sizes]  # fmt: skip

    assert MIN_GROWTH_SIZES == 4
    assert growth_rows(rows([10, 20])) == [] and growth_rows(rows([10, 20, 40])) == []
    fits = {r["quantity"]: r for r in growth_rows(rows([10, 20, 40, 80]))}
    assert set(fits) == {"extract_s_total", "insert_s", "search_p50_ms"}
    assert fits["extract_s_total"]["slope_per_file"] == pytest.approx(0.01) and fits["insert_s"]["points"] == 4
    assert np.isfinite(fits["insert_s"]["exponent"])


def test_the_robustness_stage_is_off_by_default_and_writes_its_table(tmp_path):
    from audiovec.benchmark import BenchmarkResult
    from audiovec.benchmark.config import DEMO_ROBUSTNESS

    assert BenchmarkConfig().robustness is None
    with pytest.raises(ValueError, match="malformed degradation"):  # pydantic's error, a ValueError
        BenchmarkConfig(robustness=["noise:loud"])
    BenchmarkConfig(robustness=list(DEMO_ROBUSTNESS))  # the demo set parses
    cfg = BenchmarkConfig(
        embedders=[EmbedderEntry(name="mfcc", poolings=["mean+l2", "mean_std+l2"])], stores=[StoreEntry(name="exact")],
        sizes=[], robustness=["noise:0", "gain:-20"], robustness_queries=12, k=4, ks=[1, 2], bootstrap=20,
        linear_probe=False, resource_files=0, embedding_map_points=0, workers=1, output_dir=str(tmp_path / "out"),
        progress=False,
    )  # fmt: skip
    result = Benchmark(cfg).run()
    rob = result.robustness
    assert len(rob) == 2 * 3  # two poolings x (clean baseline, two conditions)
    for col in ("embedder", "pooling", "degradation", "level", "level_value", "n_queries", "map_at_k", "map_at_k_lo",
                "map_at_k_hi", "top1_acc", "top2_acc"):  # fmt: skip
        assert col in rob.columns, col
    assert list(rob[rob["pooling"] == "mean+l2"]["degradation"]) == ["clean", "noise", "gain"]
    assert (rob["n_queries"] > 0).all() and (rob["n_queries"] <= 12).all()
    # a level change of the whole file leaves a cosine MFCC pooling nearly where it was; noise at 0 dB does not
    by = rob.set_index(["pooling", "degradation"])["map_at_k"]
    assert by[("mean+l2", "noise")] < by[("mean+l2", "clean")]
    again = BenchmarkResult.load(tmp_path / "out")
    assert (tmp_path / "out" / "robustness.csv").is_file() and len(again.robustness) == 6

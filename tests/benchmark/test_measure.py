"""Resource measurement: the per-call timer, the per-model probe, and the sample behind the t-SNE map."""

from __future__ import annotations

import math
import os
import pickle
import threading
import tracemalloc
from typing import ClassVar

import numpy as np
import pytest

from audiovec import Audio, get_embedder, load
from audiovec.benchmark import measure
from audiovec.benchmark.datasets import demo_dataset
from audiovec.benchmark.extraction import resource_sample
from audiovec.benchmark.measure import CallTimer, ResourceMonitor, probe_models
from audiovec.benchmark.report import embedding_map
from audiovec.benchmark.vectors import stratified_sample
from audiovec.errors import EmbeddingError
from audiovec.ingest import Ingest, Source


class _Clock:
    """Stands in for the ``time`` module inside ``measure``: wall and CPU clocks the test moves by hand."""

    def __init__(self) -> None:
        self.wall = 100.0
        self.cpu = 7.0

    def perf_counter(self) -> float:
        return self.wall

    def process_time(self) -> float:
        return self.cpu


def test_call_timer_reports_the_wall_and_cpu_deltas_of_its_block(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr(measure, "time", clock)
    with CallTimer() as t:
        clock.wall += 2.0
        clock.cpu += 0.5
    figures = t.as_dict()
    assert figures["wall_s"] == pytest.approx(2.0) and figures["cpu_s"] == pytest.approx(0.5)
    assert figures["cpu_percent"] == pytest.approx(25.0)
    assert math.isnan(figures["gpu_peak_mb"])  # torch with CUDA is not loaded here


def test_call_timer_starts_no_thread_and_no_memory_tracing():
    before = threading.active_count()
    with CallTimer():
        assert threading.active_count() == before
        assert not tracemalloc.is_tracing()


def test_call_timer_is_the_ingest_monitor_and_travels_to_other_processes():
    assert pickle.loads(pickle.dumps(CallTimer)) is CallTimer
    paths = [it.path for it in demo_dataset()][:3]
    ingest = Ingest(get_embedder("mfcc"), monitor=CallTimer)
    for res in ingest.run([Source(p, path=p) for p in paths]):
        figures = res.stats["mfcc"].resources
        assert set(figures) == {"wall_s", "cpu_s", "cpu_percent", "gpu_peak_mb"}
        assert figures["wall_s"] > 0 and figures["cpu_s"] >= 0


def test_resource_monitor_can_measure_two_blocks_in_turn():
    mon = ResourceMonitor(trace_memory=True)
    for _ in range(2):
        with mon:
            block = np.ones(2_000_000)  # 16 MB, traced
        assert mon.result.peak_traced_mb >= 15 and mon.result.peak_rss_mb > 0
        del block
    assert not tracemalloc.is_tracing()  # started by the monitor, stopped by it


class _Failing:
    """An embedder whose every call fails."""

    sample_rate: ClassVar[int] = 16000

    def embed(self, audio: Audio) -> None:
        raise EmbeddingError("broken on purpose")


def test_probe_measures_each_model_once_over_the_sample(monkeypatch):
    entered = []
    real_enter = ResourceMonitor.__enter__

    def counting_enter(self):
        entered.append(self)
        return real_enter(self)

    monkeypatch.setattr(ResourceMonitor, "__enter__", counting_enter)
    sample = [load(it.path) for it in demo_dataset()][:4]
    models = {"mfcc": get_embedder("mfcc"), "logmel": get_embedder("logmel"), "broken": _Failing()}
    probes = probe_models(models, sample, trace_memory=True)
    assert len(entered) == 3  # one monitor per model, not one per call
    for label in ("mfcc", "logmel"):
        assert probes[label].calls == 4
        assert probes[label].peak_traced_mb > 0 and probes[label].peak_rss_mb > 0
        assert 0 < probes[label].ram_percent < 100
    assert probes["broken"].calls == 0 and math.isnan(probes["broken"].peak_rss_mb)
    untraced = probe_models({"mfcc": models["mfcc"]}, sample[:1], trace_memory=False)["mfcc"]
    assert untraced.calls == 1 and math.isnan(untraced.peak_traced_mb) and untraced.peak_rss_mb > 0
    assert probe_models({"mfcc": models["mfcc"]}, [])["mfcc"].calls == 0


def test_resource_sample_takes_the_largest_files():
    ds = demo_dataset()
    sizes = {it.path: os.stat(it.path).st_size for it in ds}
    largest = sorted(sizes, key=sizes.get, reverse=True)[:3]
    sample = resource_sample(ds, 3)
    assert [a.source for a in sample] == largest
    assert resource_sample(ds, 0) == []


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_stratified_sample_is_bounded_even_across_groups_and_seeded(seed):
    groups = np.repeat([f"speaker{i}" for i in range(6)], [500, 500, 500, 500, 500, 40])
    take = stratified_sample(groups, 1000, seed)
    assert len(take) == 1000 and len(set(take.tolist())) == 1000
    assert (np.diff(take) > 0).all()  # sorted row indices
    counts = {g: int((groups[take] == g).sum()) for g in np.unique(groups)}
    assert counts["speaker5"] == 40  # a small group gives all it has...
    big = [counts[f"speaker{i}"] for i in range(5)]
    assert max(big) - min(big) <= 1 and sum(big) == 960  # ...and the others share the rest evenly
    np.testing.assert_array_equal(take, stratified_sample(groups, 1000, seed))
    assert not np.array_equal(take, stratified_sample(groups, 1000, seed + 100))


def test_stratified_sample_edge_cases():
    assert stratified_sample(["a", "b"], 5).tolist() == [0, 1]
    assert stratified_sample(["a", "b"], 0).tolist() == []
    one_each = stratified_sample([None, None, "x", "x"], 2)
    assert {None, "x"} == {[None, None, "x", "x"][i] for i in one_each}


def test_embedding_map_never_embeds_more_than_max_points():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 300)
    x = (rng.standard_normal((3000, 8)) + labels[:, None]).astype(np.float32)
    xy, rows = embedding_map(x, seed=0, max_points=60, strata=labels)
    assert xy.shape == (60, 2) and np.isfinite(xy).all()
    assert np.bincount(labels[rows]).tolist() == [6] * 10
    xy_small, rows_small = embedding_map(x[:3], max_points=60)
    assert xy_small.shape == (3, 2) and rows_small.tolist() == [0, 1, 2]

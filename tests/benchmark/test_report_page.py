"""The report page on a small made-up result: verdict first, weights, charts, robustness, number formats, map cache.

Runs in a second and needs no model: the tables are written here, the verdict is the ``summary.json`` entry the
benchmark writes (its documented schema) and ``robustness.csv`` follows the robustness stage's columns.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess

import numpy as np
import pandas as pd
import pytest

from audiovec.benchmark import BenchmarkConfig, BenchmarkResult, report
from audiovec.benchmark.report import (
    CHARTS,
    MAP_CACHE,
    format_number,
    pareto_front,
    rt_label,
    write_report,
)
from browser import find_chromium

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--enable-logging=stderr", "--v=0", "--virtual-time-budget=20000", "--hide-scrollbars",
]  # fmt: skip

KEYS = ["fast|mean+l2", "mid|mean+l2", "mid|max+l2", "slow|mean+l2"]

VERDICT = {
    "metric": "map_at_k",
    "metric_label": "mAP@10",
    "alpha": 0.05,
    "best": {"embedder": "mid", "pooling": "max+l2", "value": 0.612345, "ci": [0.551234, 0.671234]},
    "tied": [
        {
            "embedder": "slow",
            "pooling": "mean+l2",
            "value": 0.59,
            "ci": [0.52, 0.65],
            "diff": 0.022345,
            "diff_ci": [-0.0123, 0.0567],
        }
    ],
    "fastest": {"embedder": "fast", "pooling": "mean+l2", "rtf": 2312.4, "extract_s": 0.00123},
    "smallest": {"embedder": "fast", "pooling": "mean+l2", "bytes_per_vector": 160},
    "pareto": [
        {"embedder": "mid", "pooling": "max+l2", "quality": 0.612345, "rtf": 4.74, "bytes_per_vector": 1024},
        {"embedder": "fast", "pooling": "mean+l2", "quality": 0.31, "rtf": 2312.4, "bytes_per_vector": 160},
    ],
    "sentences": [
        "Best mAP@10: mid with max+l2 pooling, 0.612 (95 % interval 0.551 to 0.671) over 80 queries.",
        "Fastest: fast embeds 2,300 seconds of audio per second.",
    ],
    "weights": {"map_at_k": 35.0, "top1_acc": 25.0, "extract_s": 15.0, "bytes_per_vector": 25.0},
    "preset": "quality",
}


def _result(out, seed: int = 0) -> BenchmarkResult:
    rng = np.random.default_rng(seed)
    cfg = BenchmarkConfig(name="page", output_dir=str(out), embedding_map_points=200)
    models = pd.DataFrame(
        {
            "embedder": ["fast", "mid", "slow"],
            "dim": [40, 256, 1024],
            "rtf_median": [2312.4, 4.74, 0.0432],
            "extract_s_mean": [0.00123, 0.177, 21.5],
            "error": ["", "", ""],
        }
    )
    q = {"fast|mean+l2": 0.31, "mid|mean+l2": 0.5, "mid|max+l2": 0.612345, "slow|mean+l2": 0.59}
    quality = pd.DataFrame(
        [
            {
                "embedder": k.split("|")[0],
                "pooling": k.split("|")[1],
                "n_queries": 80,
                **{
                    f"{m}{s}": v + d
                    for m in ("top1_acc", "map_at_k")
                    for s, d in (("", 0), ("_lo", -0.06), ("_hi", 0.06))
                },
            }
            for k, v in q.items()
        ]
    )
    stores = pd.DataFrame(
        [
            {
                "embedder": k.split("|")[0],
                "pooling": k.split("|")[1],
                "store": store,
                "search_p50_ms": 0.1 * (i + 1) * (j + 1),
                "ann_recall": recall,
                "bytes_per_vector": 160 * (i + 1),
                "error": "",
            }
            for i, k in enumerate(KEYS)
            for j, (store, recall) in enumerate((("faiss/flat", 1.0), ("faiss/hnsw", 0.97)))
        ]
    )
    ranking = stores[["embedder", "pooling", "store"]].copy()
    ranking.insert(0, "rank", np.arange(1, len(ranking) + 1))
    ranking["score"] = np.linspace(90, 10, len(ranking))
    files = pd.DataFrame(
        [
            {"embedder": e, "path": f"f{i}.wav", "duration_s": 1.0 + i % 5, "extract_s": s * (1 + i % 3), "error": ""}
            for e, s in (("fast", 0.001), ("mid", 0.2), ("slow", 20.0))
            for i in range(30)
        ]
    )
    labels = np.array([f"digit{i % 4}" for i in range(60)])
    return BenchmarkResult(
        config=cfg,
        files=files,
        models=models,
        quality=quality,
        stores=stores,
        scaling=pd.DataFrame(),
        growth=pd.DataFrame(),
        ranking=ranking,
        distances={k: (rng.normal(0.8, 0.05, 500), rng.normal(0.6, 0.1, 500)) for k in KEYS},
        embeddings={k: (rng.normal(size=(60, 8)).astype(np.float32), labels) for k in KEYS},
        wall_s=12.3456,
    )


def _robustness(ci=("_ci_low", "_ci_high")) -> pd.DataFrame:
    rows = []
    for k in KEYS:
        e, p = k.split("|")
        for deg, level, value, m in (
            ("clean", "clean", np.nan, 0.6),
            ("noise", "20 dB SNR", 20.0, 0.5),
            ("noise", "0 dB SNR", 0.0, 0.2),
            ("mp3", "32 kbit/s", 32.0, 0.45),
            ("gsm", "GSM", np.nan, 0.3),
        ):
            rows.append(
                {
                    "embedder": e,
                    "pooling": p,
                    "degradation": deg,
                    "level": level,
                    "level_value": value,
                    "n_queries": 40,
                    "map_at_k": m,
                    f"map_at_k{ci[0]}": m - 0.05,
                    f"map_at_k{ci[1]}": m + 0.05,
                    "top1_acc": m,
                }
            )
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """A result folder with a verdict and robustness rows, and its report."""
    tmp_path = tmp_path_factory.mktemp("page")
    (tmp_path / "summary.json").write_text(json.dumps({"wall_s": 12.3456, "verdict": VERDICT}))
    _robustness().to_csv(tmp_path / "robustness.csv", index=False)
    path = write_report(_result(tmp_path), tmp_path, png=False)
    return tmp_path, path.read_text(encoding="utf-8")


def _figure(page: str, chart: str) -> tuple[list[dict], dict]:
    """The data and layout plotly draws in ``chart``."""
    start = page.index(f'<div class="chart" id="chart-{chart}">')
    call = page.index("Plotly.newPlot(", start) + len("Plotly.newPlot(")
    dec = json.JSONDecoder()
    rest = page[call:]
    values = []
    pos = 0
    for _ in range(3):
        while rest[pos] in " \n,":
            pos += 1
        value, pos = dec.raw_decode(rest, pos)
        values.append(value)
    assert values[0] == f"plot-{chart}"
    return values[1], values[2]


def _values(v) -> np.ndarray:
    """An array of a plotly trace: a list, or NumPy data plotly encoded as ``{"dtype", "bdata"}``."""
    if isinstance(v, dict):
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"])
    return np.asarray(v)


def _section(page: str, anchor: str) -> str:
    m = re.search(rf'<section id="{anchor}">(.*?)</section>', page, re.S)
    assert m, f"section {anchor} missing"
    return m.group(1)


def test_numbers_have_three_significant_figures():
    assert format_number(0.123456) == "0.123"
    assert format_number(12345.6) == "12,300"
    assert format_number(1.23456) == "1.23"
    assert format_number(0.000123456) == "0.000123"
    assert format_number(2.5e-7) == "2.50e-07"
    assert format_number(42) == "42" and format_number(42.0) == "42" and format_number(1024) == "1,024"
    assert format_number(float("nan")) == "" and format_number(None) == ""
    assert format_number(999.7) == "1,000"


@pytest.mark.parametrize(
    ("rtf", "label"),
    [(0.4, "0.4× RT"), (0.0432, "0.043× RT"), (2312.4, "2,300× RT"), (216.69, "220× RT"), (4.74, "4.7× RT"),
     (1.0, "1× RT"), (float("nan"), ""), (0.0, "")],
)  # fmt: skip
def test_real_time_labels_never_round_to_zero(rtf, label):
    assert rt_label(rtf) == label


def test_pareto_front():
    assert pareto_front([(0.9, 1.0), (0.8, 5.0), (0.7, 2.0), (0.9, 1.0)]) == [0, 1, 3]
    assert pareto_front([(0.5, float("nan")), (0.4, 1.0)]) == [1]


def test_weights_and_verdict_come_first(page):
    _, html = page
    weights = html.index('class="weights"')
    assert weights < html.index('<section id="verdict">') < html.index('<section id="tradeoff">')
    assert html.index('<section id="tradeoff">') < html.index('<section id="ranking">')
    top = html[weights : html.index("</p>", weights)]
    assert "preset <b>quality</b>" in top
    assert "map_at_k <b>35 %</b>" in top and "bytes_per_vector <b>25 %</b>" in top


def test_verdict_section(page):
    _, html = page
    v = _section(html, "verdict")
    for sentence in VERDICT["sentences"]:
        assert f"<li>{sentence}</li>" in v
    assert "Best mAP@10</dt><dd><b>mid | max+l2</b>: 0.612" in v and "[0.551, 0.671]" in v
    assert "Statistically tied with the best</dt><dd><b>slow | mean+l2</b>" in v
    assert "[−0.0123" not in v and "[-0.0123, 0.0567]" in v  # the difference's interval, three figures
    assert "Fastest</dt><dd><b>fast | mean+l2</b>: 2,300× RT, 1.23 ms per file" in v
    assert "Smallest per vector</dt><dd><b>fast | mean+l2</b>: 160 bytes per vector" in v
    pareto = v[v.index("Pareto-optimal set") :]
    assert "mid</td>" in pareto and "4.7× RT" in pareto and "1,024" in pareto


def test_no_verdict_renders_a_note_and_the_rest(tmp_path):
    html = write_report(_result(tmp_path), tmp_path, png=False).read_text(encoding="utf-8")
    assert "has no verdict" in _section(html, "verdict")
    for chart in ("quality_speed", "ranking", "quality", "distances", "embedding_map", "extraction"):
        assert f'id="chart-{chart}"' in html, chart
    assert 'id="robustness"' not in html and 'id="chart-robustness"' not in html
    assert "Ranking weights (preset <b>quality</b>)" in html  # from the configuration


def test_quality_speed_chart_marks_the_pareto_front(page):
    _, html = page
    data, layout = _figure(html, "quality_speed")
    front = next(t for t in data if t["name"] == "Pareto front")
    # fast (0.31 at 2312×) and mid|max (0.612 at 4.7×) are on the front; slow (0.59 at 0.043×) and mid|mean are not
    assert sorted(zip(front["x"], front["y"], strict=True)) == [(4.74, 0.612345), (2312.4, 0.31)]
    slow = next(t for t in data if t["name"] == "slow")
    assert slow["marker"]["symbol"] == ["circle"]
    mid = next(t for t in data if t["name"] == "mid")
    assert mid["marker"]["symbol"] == ["circle", "diamond"]
    assert layout["xaxis"]["type"] == "log" and layout["yaxis"]["range"] == [0, 1.0]
    assert not any(re.search(r"\b0[x×] RT", t) for t in layout["xaxis"]["ticktext"])


def test_small_multiples_cover_every_model(page):
    _, html = page
    for chart in ("distances", "embedding_map"):
        data, layout = _figure(html, chart)
        titles = [a["text"] for a in layout["annotations"]]
        for key in KEYS:
            assert any(t.startswith(key) for t in titles), (chart, key)
        axes = {t.get("xaxis", "x") for t in data}
        assert len(axes) == len(KEYS), chart
    data, _ = _figure(html, "embedding_map")
    assert all(len(_values(t["x"])) == 60 for t in data)
    # the same label has the same colour in every panel
    colours = {(label, c) for t in data for label, c in zip(t["text"], t["marker"]["color"], strict=True)}
    assert len(colours) == 4


def test_recall_and_quality_axes_are_capped_at_one(page):
    _, html = page
    for chart in ("recall_latency", "quality", "quality_speed"):
        _, layout = _figure(html, chart)
        assert layout["yaxis"]["range"][1] == 1.0, chart


def test_real_time_labels_on_the_page(page):
    _, html = page
    data, _ = _figure(html, "extraction")
    assert data[0]["text"] == ["2,300× RT", "4.7× RT", "0.043× RT"]
    assert not re.search(r"\b0[x×] RT", html)


def test_tables_scroll_and_show_three_figures(page):
    _, html = page
    tables = html.count("<table>")
    assert tables >= 4 and html.count('<div class="table-wrap"><table>') == tables
    q = _section(html, "quality")
    assert "0.612 <span" in q and "0.6123" not in q
    assert "[0.552, 0.672]" in q  # the interval beside the value, not three extra columns
    assert "map_at_k_lo" not in q


def test_robustness_section_from_csv(page):
    _, html = page
    r = _section(html, "robustness")
    for head in ("noise<br>", "20 dB SNR", "0 dB SNR", "mp3<br>", "gsm<br>"):
        assert head in r, head
    assert "clean</th>" in r and ">clean<" not in r.split("</thead>")[1]  # the baseline is a column, not a step
    assert "0.600 <span" in r and "[0.550, 0.650]" in r
    assert r.index("20 dB SNR") < r.index("0 dB SNR")  # mildest first
    data, layout = _figure(html, "robustness")
    panels = [a["text"] for a in layout["annotations"]]
    assert panels == ["noise", "mp3", "gsm"]
    fast = [t for t in data if t["name"] == "fast | mean+l2"]
    assert [t["x"] for t in fast] == [["clean", "20 dB SNR", "0 dB SNR"], ["clean", "32 kbit/s"], ["clean", "GSM"]]
    assert fast[0]["y"] == [0.6, 0.5, 0.2]
    assert layout["xaxis"]["type"] == "category"
    assert layout["yaxis"]["range"] == [0, 1.0]


def test_robustness_rows_with_lo_hi_bounds(tmp_path):
    result = _result(tmp_path)
    result.robustness = _robustness(ci=("_lo", "_hi"))
    html = write_report(result, tmp_path, png=False).read_text(encoding="utf-8")
    assert "[0.150, 0.250]" in _section(html, "robustness")


def test_empty_robustness_means_no_section(tmp_path):
    result = _result(tmp_path)
    result.robustness = pd.DataFrame()
    (tmp_path / "robustness.csv").write_text("\n")
    html = write_report(result, tmp_path, png=False).read_text(encoding="utf-8")
    assert 'id="robustness"' not in html


def test_maps_are_cached_in_the_results_folder(tmp_path, monkeypatch):
    first = write_report(_result(tmp_path), tmp_path, png=False).read_text(encoding="utf-8")
    assert (tmp_path / MAP_CACHE).is_file()

    def no_tsne(*args, **kwargs):
        raise AssertionError("t-SNE ran again")

    monkeypatch.setattr(report, "embedding_map", no_tsne)
    again = write_report(_result(tmp_path), tmp_path, png=False).read_text(encoding="utf-8")
    assert _figure(again, "embedding_map") == _figure(first, "embedding_map")
    # other vectors: the cache is stale and the maps are drawn again
    with pytest.raises(AssertionError, match="t-SNE ran again"):
        write_report(_result(tmp_path, seed=1), tmp_path, png=False)


def test_a_broken_map_cache_is_drawn_again(tmp_path):
    (tmp_path / MAP_CACHE).write_bytes(b"not a zip file")
    html = write_report(_result(tmp_path), tmp_path, png=False).read_text(encoding="utf-8")
    data, _ = _figure(html, "embedding_map")
    assert len(data) == len(KEYS)
    with np.load(tmp_path / MAP_CACHE) as z:
        assert {f"xy::{k}" for k in KEYS} <= set(z.files)


def test_map_sample_is_capped(tmp_path):
    result = _result(tmp_path)
    x = np.random.default_rng(0).normal(size=(report.MAP_POINTS * 2, 4)).astype(np.float32)
    result.embeddings = {"big|mean": (x, np.array([str(i % 3) for i in range(len(x))]))}
    result.config = result.config.model_copy(update={"embedding_map_points": 5000})
    html = write_report(result, tmp_path, png=False).read_text(encoding="utf-8")
    data, _ = _figure(html, "embedding_map")
    assert len(_values(data[0]["x"])) == report.MAP_POINTS


def test_page_renders_in_headless_chromium(page, tmp_path_factory):
    out, _ = page
    chromium = find_chromium("render the report")
    profile = tmp_path_factory.mktemp("chromium")
    url = (out / "report.html").as_uri()
    common = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}"]
    dom = subprocess.run([*common, "--dump-dom", url], capture_output=True, text=True, timeout=180)
    assert dom.returncode == 0, dom.stderr[-2000:]
    console = [ln for ln in dom.stderr.splitlines() if ":CONSOLE" in ln or "Uncaught" in ln]
    assert console == [], console
    for chart in CHARTS:
        if chart == "scaling":  # no scaling sweep in this result
            continue
        m = re.search(
            rf'<div class="chart" id="chart-{chart}">(.*?)</div>\s*(?=<div class="chart"|<p|</section>)',
            dom.stdout,
            re.S,
        )
        assert m and "main-svg" in m.group(1), f"chart {chart} was not drawn"

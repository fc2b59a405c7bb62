"""The report (PNG + self-contained HTML) and `audiovec bench --demo`, the README's main job."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from audiovec.benchmark import BenchmarkResult
from audiovec.benchmark.report import CHARTS, MAP_CACHE, write_report
from browser import find_chromium

SCRIPT = Path(sys.executable).with_name("audiovec")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--enable-logging=stderr", "--v=0", "--virtual-time-budget=20000",
]  # fmt: skip


@pytest.fixture(scope="module")
def demo_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    proc = subprocess.run(
        [str(SCRIPT), "bench", "--demo", "-o", str(out), "--no-progress"],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc


def test_bench_demo_runs_out_of_the_box(demo_results):
    out, proc = demo_results
    assert "[ranking]" in proc.stdout and f"report: {out / 'report.html'}" in proc.stdout
    result = BenchmarkResult.load(out)
    assert result.config.name == "demo" and len(result.files) >= 42
    assert {"faiss/flat", "faiss/hnsw"} <= set(result.stores["store"])
    assert sorted(set(result.scaling["size"])) == [6, 12, 24, 42]
    assert result.growth is not None and len(result.growth) > 0  # four sizes: the growth is fitted
    assert result.robustness is not None and set(result.robustness["condition"]) >= {"clean", "noise:0", "mp3:32"}


def _drawn_charts(out):
    """The charts the demo's report must have (the demo runs the robustness stage too)."""
    return list(CHARTS)


def test_report_files(demo_results):
    out, _ = demo_results
    page = (out / "report.html").read_text()
    assert "Plotly" in page and not re.search(r"<script[^>]*\bsrc=", page)  # plotly.js inlined: works offline
    for chart in _drawn_charts(out):
        assert f'id="chart-{chart}"' in page, chart
    for png in ("extraction", "duration_scatter", "quality", "ranking", "scaling"):
        assert (out / f"{png}.png").stat().st_size > 5000


def test_report_renders_in_headless_chromium_without_console_errors(demo_results, tmp_path):
    out, _ = demo_results
    chromium = find_chromium("render the report")
    shot = tmp_path / "report.png"
    common = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    url = (out / "report.html").as_uri()
    dom = subprocess.run([*common, "--dump-dom", url], capture_output=True, text=True, timeout=180)
    assert dom.returncode == 0, dom.stderr[-2000:]
    console = [ln for ln in dom.stderr.splitlines() if ":CONSOLE" in ln or "Uncaught" in ln]
    assert console == [], console
    for chart in _drawn_charts(out):
        m = re.search(
            rf'<div class="chart" id="chart-{chart}">(.*?)</div>\s*(?=<div class="chart"|<p|</section>)',
            dom.stdout,
            re.S,
        )
        assert m, f"chart {chart} missing from the rendered page"
        assert "main-svg" in m.group(1), f"chart {chart} was not drawn by plotly"
    shotp = subprocess.run(
        [*common, "--window-size=1400,4000", f"--screenshot={shot}", url], capture_output=True, timeout=180
    )
    assert shotp.returncode == 0 and shot.stat().st_size > 50_000


def test_demo_report_opens_with_its_verdict(demo_results):
    out, _ = demo_results
    summary = json.loads((out / "summary.json").read_text())
    page = (out / "report.html").read_text()
    verdict = summary["verdict"]
    assert verdict is not None and verdict["sentences"]
    section = re.search(r'<section id="verdict">(.*?)</section>', page, re.S)
    assert section and page.index('class="weights"') < section.start() < page.index('<section id="tradeoff">')
    for sentence in verdict["sentences"]:
        assert f"<li>{html.escape(sentence)}</li>" in section.group(1)
    best = verdict["best"]
    assert f"<b>{html.escape(best['embedder'])} | {html.escape(best['pooling'])}</b>" in section.group(1)
    assert f"preset <b>{summary['weights_preset']}</b>" in page
    assert not re.search(r"\b0[x×] RT", page)
    assert (out / MAP_CACHE).is_file()  # the redraw reuses the 2-D maps


def test_report_command_redraws_a_results_folder(demo_results, tmp_path):
    out, _ = demo_results
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    (copy / "report.html").unlink()
    proc = subprocess.run([str(SCRIPT), "report", str(copy)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (copy / "report.html").stat().st_size > 1_000_000
    assert write_report(BenchmarkResult.load(copy), copy, png=False).name == "report.html"
    for png in copy.glob("*.png"):
        png.unlink()
    proc = subprocess.run([str(SCRIPT), "report", str(copy), "--no-png"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (copy / "report.html").is_file() and not list(copy.glob("*.png"))

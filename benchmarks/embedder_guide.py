"""The tables of the "which embedder for which audio" guide (docs/choosing.md), from saved benchmark folders.

Each folder is the output of one ``audiovec bench`` run (``summary.json`` with its verdict, ``quality.csv``,
``models.csv`` and, when the run had a robustness stage, ``robustness.csv``). For every run this prints one
markdown table: each embedder x pooling with its mAP@k and top-1 and their 95 % intervals, where the verdict
puts it (best, tied with the best by the paired test, or lower) and its vector size; then one table of mAP@k
under each degradation of the queries, relative to the clean queries. (Speed is left to
``benchmarks/embed_speed.py``, which times each model alone in its own process; the benchmark runs here share
the machine.)

Usage::

    python benchmarks/embedder_guide.py "Drum one-shots=results/drums" "Spoken digits=results/fsdd-digit" ...

Writes ``benchmarks/results/embedder_guide.json`` (``--output``) with every number printed.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def _rows(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _num(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _fmt(x: float, digits: int = 3) -> str:
    return "—" if math.isnan(x) else f"{x:.{digits}f}"


def summarise(name: str, folder: Path) -> dict[str, Any]:
    """Everything the guide shows for one run."""
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    verdict = summary.get("verdict") or {}
    best = verdict.get("best") or {}
    tied = {(t["embedder"], t["pooling"]) for t in verdict.get("tied", [])}
    models = {r["embedder"]: r for r in _rows(folder / "models.csv")}
    configs = []
    quality = _rows(folder / "quality.csv")
    for r in quality:
        key = (r["embedder"], r["pooling"])
        standing = (
            "best" if key == (best.get("embedder"), best.get("pooling")) else ("tied" if key in tied else "lower")
        )
        configs.append(
            {
                "embedder": r["embedder"],
                "pooling": r["pooling"],
                "n_queries": int(_num(r["n_queries"])),
                "map": _num(r["map_at_k"]),
                "map_ci": [_num(r["map_at_k_lo"]), _num(r["map_at_k_hi"])],
                "top1": _num(r["top1_acc"]),
                "top1_ci": [_num(r["top1_acc_lo"]), _num(r["top1_acc_hi"])],
                "linear_probe": _num(r.get("linear_probe_acc")),
                "dim": int(_num(r["dim"])),
                "rtf": _num(models.get(r["embedder"], {}).get("rtf_median")),
                "standing": standing,
            }
        )
    configs.sort(key=lambda c: -c["map"])
    robust: dict[tuple[str, str], dict[str, float]] = {}
    conditions: list[str] = []
    for r in _rows(folder / "robustness.csv"):
        cond = r["condition"]
        if cond not in conditions:
            conditions.append(cond)
        robust.setdefault((r["embedder"], r["pooling"]), {})[cond] = _num(r["map_at_k"])
    return {
        "name": name,
        "folder": folder.name,
        "metric": verdict.get("metric_label", "mAP@k"),
        "k": int(_num(quality[0]["k"])) if quality else None,
        "configs": configs,
        "sentences": verdict.get("sentences", []),
        "robustness_conditions": conditions,
        "robustness": [{"embedder": e, "pooling": p, "map": values} for (e, p), values in robust.items()],
        "robustness_queries": max((int(_num(r["n_queries"])) for r in _rows(folder / "robustness.csv")), default=0),
    }


def markdown(run: dict[str, Any]) -> str:
    """One run's tables."""
    lines = [
        f"**{run['name']}** ({run['configs'][0]['n_queries'] if run['configs'] else 0} queries)",
        "",
        f"| embedder | pooling | {run['metric']} (95 % interval) | top-1 (95 % interval) | linear probe | verdict "
        "| bytes per vector |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in run["configs"]:
        standing = {"best": "**best**", "tied": "tied with the best", "lower": "lower"}[c["standing"]]
        lines.append(
            f"| {c['embedder']} | {c['pooling']} | {_fmt(c['map'])} ({_fmt(c['map_ci'][0])}–{_fmt(c['map_ci'][1])}) "
            f"| {_fmt(c['top1'])} ({_fmt(c['top1_ci'][0])}–{_fmt(c['top1_ci'][1])}) | {_fmt(c['linear_probe'])} "
            f"| {standing} | {4 * c['dim']:,} |"
        )
    if run["robustness"]:
        conds = [c for c in run["robustness_conditions"] if c != "clean"]
        lines += [
            "",
            f"{run['metric']} of degraded queries against the clean index ({run['robustness_queries']} queries), "
            "as a fraction of the same queries' clean score:",
            "",
            "| embedder | pooling | clean | " + " | ".join(conds) + " |",
            "|---|---|---|" + "---|" * len(conds),
        ]
        for r in sorted(run["robustness"], key=lambda r: -r["map"].get("clean", 0.0)):
            clean = r["map"].get("clean", math.nan)
            cells = [_fmt(r["map"].get(c, math.nan) / clean, 2) if clean else "—" for c in conds]
            lines.append(f"| {r['embedder']} | {r['pooling']} | {_fmt(clean)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", help="NAME=FOLDER, one per benchmark run")
    p.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results" / "embedder_guide.json")
    args = p.parse_args()
    runs = []
    for spec in args.runs:
        name, _, folder = spec.partition("=")
        runs.append(summarise(name, Path(folder)))
    for run in runs:
        print(markdown(run))
        print()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(runs, indent=1, allow_nan=True), encoding="utf-8")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()

"""Best single model vs fusion vs fusion + fitted projection, with paired tests (the tables of docs/projections.md).

Each folder is the output of one ``audiovec bench`` run whose config has ``fusion`` embedders and
``projections`` (``benchmarks/configs/fusion_*.toml``). For every run this prints:

1. the headline table: the best single model, the best fusion, the best fusion + projection and the best single
   model + projection (by mAP@k), each with mAP@k and top-1 and their 95 % intervals and bytes per vector;
2. the paired tests behind the headline: each gain as the mean per-query difference over the same queries with
   its 95 % paired-bootstrap interval, called *real* only when the interval excludes zero;
3. every projection against its raw vectors, for every model: whether mean-centring, LDA, PCA or quantisation
   helps here, and by how much.

Every projection was fitted on the other folds of groups and scored on the held-out fold's queries, so the
comparisons are fair to the raw vectors (:mod:`audiovec.benchmark.projected`).

Usage::

    python benchmarks/fusion_report.py "Drum one-shots=fusion-results/drums" "Spoken digits=fusion-results/fsdd-digit"

Writes ``benchmarks/results/fusion_report.json`` (``--output``) with every number printed.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from audiovec.benchmark.verdict import load_per_query, paired_bootstrap, paired_values

REPO = Path(__file__).resolve().parents[1]
ARROW = " -> "


def _fmt(x: float, digits: int = 3) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _key(row: pd.Series) -> str:
    return f"{row['embedder']}|{row['pooling']}"


def summarise(name: str, folder: Path, metric: str = "map_at_k") -> dict[str, Any]:
    """The headline configurations, their paired tests and every projection against its raw vectors."""
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    fusions = {e.get("label") or e["name"] for e in config["embedders"] if e["name"] == "fusion"}
    q = pd.read_csv(folder / "quality.csv")
    q = q[q[metric].notna()].copy()
    q["projected"] = q["pooling"].str.contains(ARROW, regex=False)
    q["fusion"] = q["embedder"].isin(fusions)
    per_query = load_per_query(folder / "per_query.npz")

    def best(mask: pd.Series) -> pd.Series | None:
        part = q[mask]
        return None if part.empty else part.loc[part[metric].idxmax()]

    picks = {
        "best single model": best(~q["fusion"] & ~q["projected"]),
        "best fusion": best(q["fusion"] & ~q["projected"]),
        "best fusion + projection": best(q["fusion"] & q["projected"]),
        "best single model + projection": best(~q["fusion"] & q["projected"]),
    }
    rows = []
    for role, r in picks.items():
        if r is not None:
            rows.append(
                {
                    "role": role,
                    "embedder": r["embedder"],
                    "pooling": r["pooling"],
                    "map_at_k": [float(r["map_at_k"]), float(r["map_at_k_lo"]), float(r["map_at_k_hi"])],
                    "top1_acc": [float(r["top1_acc"]), float(r["top1_acc_lo"]), float(r["top1_acc_hi"])],
                    "bytes_per_vector": float(r["bytes_per_vector"]),
                    "n_queries": int(r["n_queries"]),
                }
            )

    def test(a: pd.Series | None, b: pd.Series | None, what: str) -> dict[str, Any] | None:
        if a is None or b is None:
            return None
        out: dict[str, Any] = {"comparison": what, "a": _key(a), "b": _key(b)}
        for m in ("map_at_k", "top1_acc"):
            va, vb = paired_values(per_query[_key(a)], per_query[_key(b)], m)
            diff, lo, hi = paired_bootstrap(va, vb)
            out[m] = [diff, lo, hi]
            out[f"{m}_verdict"] = "real gain" if lo > 0 else ("real loss" if hi < 0 else "no detectable difference")
            out["n_paired"] = len(va)
        return out

    s, f = picks["best single model"], picks["best fusion"]
    fp, sp = picks["best fusion + projection"], picks["best single model + projection"]
    tests = [
        t
        for t in (
            test(f, s, "fusion vs best single model"),
            test(fp, f, "fusion + projection vs fusion"),
            test(fp, s, "fusion + projection vs best single model"),
            test(sp, s, "best single model + projection vs best single model"),
        )
        if t is not None
    ]
    projections = []
    for _, raw in q[~q["projected"]].iterrows():
        for _, pr in q[q["projected"] & (q["embedder"] == raw["embedder"])].iterrows():
            if not str(pr["pooling"]).startswith(str(raw["pooling"]) + ARROW):
                continue
            va, vb = paired_values(per_query[_key(pr)], per_query[_key(raw)], metric)
            diff, lo, hi = paired_bootstrap(va, vb)
            projections.append(
                {
                    "embedder": raw["embedder"],
                    "pooling": raw["pooling"],
                    "projection": str(pr["pooling"]).split(ARROW, 1)[1],
                    metric: float(pr[metric]),
                    "raw": float(raw[metric]),
                    "diff": [diff, lo, hi],
                    "bytes_per_vector": float(pr["bytes_per_vector"]),
                    "raw_bytes_per_vector": float(raw["bytes_per_vector"]),
                }
            )
    return {
        "name": name,
        "folder": str(folder),
        "metric": metric,
        "headline": rows,
        "tests": tests,
        "projections": projections,
    }


def markdown(run: dict[str, Any]) -> str:
    """The run's three tables in markdown."""
    lines = [
        f"### {run['name']}",
        "",
        "| | configuration | mAP@10 (95 % CI) | top-1 (95 % CI) | bytes/vector |",
        "|---|---|---|---|---|",
    ]
    for r in run["headline"]:
        m, t = r["map_at_k"], r["top1_acc"]
        lines.append(
            f"| {r['role']} | {r['embedder']} `{r['pooling']}` | {_fmt(m[0])} ({_fmt(m[1])}–{_fmt(m[2])}) | "
            f"{_fmt(t[0])} ({_fmt(t[1])}–{_fmt(t[2])}) | {r['bytes_per_vector']:,.0f} |"
        )
    lines += [
        "",
        "| paired test (same queries) | mAP@10 difference (95 % CI) | top-1 difference (95 % CI) |",
        "|---|---|---|",
    ]
    for t in run["tests"]:
        m, p = t["map_at_k"], t["top1_acc"]
        lines.append(
            f"| {t['comparison']} | {m[0]:+.3f} ({m[1]:+.3f} to {m[2]:+.3f}): {t['map_at_k_verdict']} | "
            f"{p[0]:+.3f} ({p[1]:+.3f} to {p[2]:+.3f}): {t['top1_acc_verdict']} |"
        )
    lines += [
        "",
        "| model | projection | mAP@10 | raw | difference (95 % CI) | bytes/vector (raw) |",
        "|---|---|---|---|---|---|",
    ]
    for p in run["projections"]:
        d = p["diff"]
        lines.append(
            f"| {p['embedder']} `{p['pooling']}` | `{p['projection']}` | {_fmt(p['map_at_k'])} | {_fmt(p['raw'])} | "
            f"{d[0]:+.3f} ({d[1]:+.3f} to {d[2]:+.3f}) | "
            f"{p['bytes_per_vector']:,.0f} ({p['raw_bytes_per_vector']:,.0f}) |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help='"Display name=result folder"')
    ap.add_argument("--output", default=str(REPO / "benchmarks" / "results" / "fusion_report.json"))
    args = ap.parse_args()
    runs = []
    for item in args.runs:
        name, _, folder = item.partition("=")
        run = summarise(name, Path(folder))
        runs.append(run)
        print(markdown(run), end="\n\n")
    Path(args.output).write_text(json.dumps(runs, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()

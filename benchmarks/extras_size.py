"""Installed size of ``audiovec`` and of each of its extras, each in a fresh virtual environment.

For the base package and every extra in ``pyproject.toml`` (or ``--extras``), this creates a virtual environment,
runs ``pip install "<checkout>[extra]"`` and measures the size of its ``site-packages`` (bytes on disk, ``du``
style), the size above the base package, and the largest distributions it brought. Torch is constrained to
``--torch`` (default ``2.13.0``, whose Linux wheel on PyPI is CPU-only; a bare ``torch`` requirement can resolve to
wheels with GBs of CUDA libraries on other platforms or versions).

Usage::

    python benchmarks/extras_size.py                        # every extra (downloads several GB once; pip caches)
    python benchmarks/extras_size.py --extras faiss,serve   # a few

Writes ``benchmarks/results/extras_size.json`` (``--output``) and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import tomllib

REPO = Path(__file__).resolve().parents[1]


def _tree_bytes(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            p = os.path.join(root, f)
            if not os.path.islink(p):
                total += os.lstat(p).st_blocks * 512
    return total


def _site_packages(venv: Path) -> Path:
    return next((venv / "lib").glob("python*/site-packages"))


def _distributions(site: Path) -> dict[str, int]:
    """Bytes per top-level entry of site-packages, grouped by the distribution that owns it (via RECORD)."""
    owner: dict[str, str] = {}
    for record in site.glob("*.dist-info/RECORD"):
        name = record.parent.name.split("-")[0]
        for line in record.read_text(errors="replace").splitlines():
            top = line.split(",")[0].split("/")[0]
            if top and not top.endswith(".dist-info"):
                owner.setdefault(top, name)
    sizes: dict[str, int] = {}
    for entry in site.iterdir():
        size = _tree_bytes(entry) if entry.is_dir() else entry.lstat().st_blocks * 512
        name = owner.get(entry.name, entry.name)
        sizes[name] = sizes.get(name, 0) + size
    return sizes


def measure(extra: str | None, workdir: Path, constraints: Path) -> dict[str, Any]:
    venv = workdir / (extra or "base")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    target = f"{REPO}[{extra}]" if extra else str(REPO)
    t0 = time.perf_counter()
    proc = subprocess.run([*pip, "-c", str(constraints), target], capture_output=True, text=True)
    took = time.perf_counter() - t0
    if proc.returncode != 0:
        return {"extra": extra, "error": proc.stderr[-2000:]}
    site = _site_packages(venv)
    dists = _distributions(site)
    top = sorted(dists.items(), key=lambda kv: -kv[1])[:6]
    out = {
        "extra": extra or "(base)",
        "site_packages_mb": round(_tree_bytes(site) / 2**20, 1),
        "largest_mb": {k: round(v / 2**20, 1) for k, v in top},
        "install_s": round(took, 1),
    }
    shutil.rmtree(venv, ignore_errors=True)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    extras_all = list(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    default = [e for e in extras_all if e not in ("all", "test", "dev", "docs")]
    p.add_argument("--extras", default=",".join(default), help="comma-separated extras (default: every backend)")
    p.add_argument("--torch", default="2.13.0", help="the torch version allowed (default 2.13.0, CPU on Linux)")
    p.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results" / "extras_size.json")
    args = p.parse_args()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="audiovec-extras-") as tmp:
        work = Path(tmp)
        constraints = work / "constraints.txt"
        constraints.write_text(f"torch=={args.torch}\n")
        for extra in [None, *[e for e in args.extras.split(",") if e]]:
            row = measure(extra, work, constraints)
            rows.append(row)
            print(json.dumps(row), flush=True)
    base = next((r["site_packages_mb"] for r in rows if r.get("extra") == "(base)"), 0.0)
    for r in rows:
        if "site_packages_mb" in r:
            r["above_base_mb"] = round(r["site_packages_mb"] - base, 1)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps({"python": sys.version.split()[0], "torch": args.torch, "rows": rows}, indent=2) + "\n"
    )
    print("\n| extra | installed (MB) | above the base (MB) | largest |\n|---|---|---|---|")
    for r in rows:
        if "site_packages_mb" in r:
            largest = ", ".join(f"{k} {v:.0f}" for k, v in list(r["largest_mb"].items())[:3])
            print(f"| `{r['extra']}` | {r['site_packages_mb']:,.0f} | {r['above_base_mb']:,.0f} | {largest} |")
        else:
            print(f"| `{r['extra']}` | failed | | |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

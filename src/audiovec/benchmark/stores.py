"""Vector-store measurement: insertion, search, ANN recall, quality through the store, storage, scaling.

Measured for each store: insertion, single and batched search, ANN recall against the exact kernel, top-1 accuracy
through the store, storage, and the same costs at growing data sizes.

Every store is opened in a fresh temporary folder with :func:`audiovec.stores.get_store` (``directory=``), filled
with the vector set's ids and records (:mod:`audiovec.ingest.records`), and closed and removed afterwards. The ground
truth for recall is :func:`audiovec.stores.exact_search`, the kernel every store is measured against.
"""

from __future__ import annotations

import logging
import math
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from audiovec.benchmark.config import StoreEntry
from audiovec.benchmark.retrieval import per_query_scores
from audiovec.benchmark.vectors import VectorSet
from audiovec.errors import AudiovecError
from audiovec.metrics import fit_growth, latency_percentiles, recall_at_k
from audiovec.stores import Eq, Not, VectorStore, exact_search, get_store

__all__ = [
    "GROWTH_QUANTITIES",
    "MIN_GROWTH_SIZES",
    "TIE_TOLERANCE",
    "exact_truth",
    "growth_rows",
    "insert",
    "measure_store",
    "open_store",
    "scaling_row",
]

log = logging.getLogger(__name__)

#: The costs whose growth with data size is fitted.
GROWTH_QUANTITIES = ("extract_s_total", "insert_s", "search_p50_ms")

#: Fewest data sizes a growth fit is made from: with fewer, the scaling table shows the measured points and no fit
#: is reported (two points always fit a line, three barely constrain a power law).
MIN_GROWTH_SIZES = 4


def open_store(entry: StoreEntry, dim: int, metric: str, directory: Path) -> VectorStore:
    """Open the store an entry describes inside ``directory``."""
    params = dict(entry.params)
    if entry.index is not None:
        params["index"] = entry.index
    return get_store(entry.name, params, directory=directory, dim=dim, metric=metric, id_type="str")


def insert(store: VectorStore, vs: VectorSet, rows: NDArray[np.int64], batch: int = 10000) -> float:
    """Insert the given rows of a vector set in batches, then save; returns the seconds it took."""
    t0 = time.perf_counter()
    for s in range(0, len(rows), batch):
        sl = rows[s : s + batch]
        store.add(vs.x[sl], ids=[vs.ids[i] for i in sl], metadata=[vs.records[i] for i in sl])
    store.save()
    return time.perf_counter() - t0


def _timed_searches(store: VectorStore, x: NDArray[np.float32], k: int, params: dict[str, Any] | None) -> Any:
    """Single-query searches of every row of ``x`` (after one warm-up): latencies and the ids found."""
    store.search(x[:1], k=k, params=params)  # warm-up (lazy loads, caches)
    lat, found = [], []
    for i in range(len(x)):
        t0 = time.perf_counter()
        hits = store.search(x[i : i + 1], k=k, params=params)[0]
        lat.append(time.perf_counter() - t0)
        found.append([h.id for h in hits])
    return lat, found


#: Relative tolerance within which a distance equals the ``k``-th true distance (float32 rounding of the stores).
TIE_TOLERANCE = 1e-5


def exact_truth(
    vs: VectorSet, q_idx: NDArray[np.int64], k: int, block: int = 64
) -> tuple[list[list[str]], list[set[str]]]:
    """The ground truth of ANN recall: the exact ``k`` nearest ids of each query, and the ids tied with the ``k``-th.

    A vector is *tied* when its similarity (inner product, or ``-L2²``) to the query equals the ``k``-th true
    neighbour's within :data:`TIE_TOLERANCE` (relative) and it is not among the first ``k``; an index that returns it
    instead has not missed anything (:func:`audiovec.metrics.recall_at_k` with ``ties``).
    """
    kk = min(k, len(vs))
    metric: Any = vs.metric
    _, rows = exact_search(vs.x[q_idx], vs.x, kk, metric)
    truth = [[vs.ids[j] for j in row] for row in rows]
    ties: list[set[str]] = []
    x = vs.x.astype(np.float32)
    sq = (x.astype(np.float64) ** 2).sum(1) if vs.metric == "l2" else None
    for s in range(0, len(q_idx), block):
        qi = q_idx[s : s + block]
        sims = (x @ x[qi].T).astype(np.float64).T  # [queries, n]
        if sq is not None:
            sims = 2 * sims - sq[None, :] - sq[qi][:, None]  # -L2²
        for r, row in enumerate(rows[s : s + block]):
            if len(row) == 0:
                ties.append(set())
                continue
            kth = sims[r, row[-1]]
            near = np.flatnonzero(sims[r] >= kth - TIE_TOLERANCE * max(1.0, abs(kth)))
            ties.append({vs.ids[j] for j in near} - set(truth[s + r]))
    return truth, ties


def measure_store(
    entry: StoreEntry,
    vs: VectorSet,
    q_idx: NDArray[np.int64],
    truth: tuple[list[list[str]], list[set[str]]],
    k: int,
    workdir: Path,
    quality_rows: NDArray[np.int64] | None = None,
) -> dict[str, Any]:
    """Insert every vector of ``vs``, then time searches with the vectors ``q_idx`` as queries.

    ``truth`` is :func:`exact_truth` of the same queries, computed once for all the stores. ``quality_rows`` are
    the queries of ``store_top1_acc`` (default: every valid query, those of the quality table); ``exact_top1_acc``
    is exact search's top-1 accuracy on the same queries, so the two compare like for like.

    Returns:
        ``insert_s``, ``insert_per_vector_ms``, ``insert_vps``, ``search_p50/p95/p99_ms``, ``search_qps``,
        ``n_latency_queries`` (the ``q_idx`` timed), ``ann_recall`` (recall@k of those queries against exact search,
        ties at the ``k``-th distance counting as hits), ``store_top1_acc`` (top-1 accuracy through the store on
        ``quality_rows``, by default the quality table's queries, the query's own group excluded by a metadata filter)
        with ``store_n_queries`` and ``exact_top1_acc`` (exact search on the same queries), ``disk_mb`` and
        ``bytes_per_vector``.
    """
    n = len(vs)
    k = min(k, n)
    sp = entry.search_params or None
    store = open_store(entry, int(vs.x.shape[1]), vs.metric, workdir)
    try:
        insert_s = insert(store, vs, np.arange(n, dtype=np.int64))
        lat, found = _timed_searches(store, vs.x[q_idx], k, sp)
        t0 = time.perf_counter()
        store.search(vs.x[q_idx], k=k, params=sp)
        batch_s = time.perf_counter() - t0
        top1 = []
        qrows = np.flatnonzero(vs.queries) if quality_rows is None else np.asarray(quality_rows, dtype=np.int64)
        for qi in qrows:
            flt = Not(Eq("group", str(vs.groups[qi])))
            hits = store.search(vs.x[qi : qi + 1], k=1, filter=flt, params=sp)[0]
            top1.append(float(bool(hits) and hits[0].metadata.get("label") == vs.labels[qi]))
    finally:
        store.close()
    disk = _dir_size(workdir)
    lp = latency_percentiles(lat)
    return {
        "insert_s": insert_s,
        "insert_per_vector_ms": 1000 * insert_s / n,
        "insert_vps": n / insert_s if insert_s > 0 else math.nan,
        "search_p50_ms": lp["p50_ms"],
        "search_p95_ms": lp["p95_ms"],
        "search_p99_ms": lp["p99_ms"],
        "search_qps": len(q_idx) / batch_s if batch_s > 0 else math.nan,
        "n_latency_queries": len(q_idx),
        "ann_recall": recall_at_k(found, truth[0], k, ties=truth[1]),
        "store_top1_acc": float(np.mean(top1)) if top1 else math.nan,
        "store_n_queries": len(top1),
        "exact_top1_acc": _exact_top1(vs, qrows),
        "disk_mb": disk / 2**20,
        "bytes_per_vector": disk / n,
    }


def _exact_top1(vs: VectorSet, rows: NDArray[np.int64]) -> float:
    """Top-1 accuracy of exact search (group rule) for the given query rows."""
    if len(rows) == 0:
        return math.nan
    return float(per_query_scores(vs.x[rows], vs.labels[rows], vs.group_codes[rows], vs, 1)["top1_acc"].mean())


def scaling_row(entry: StoreEntry, vs: VectorSet, rows: NDArray[np.int64], k: int) -> dict[str, Any]:
    """Insertion time and single-query p50 latency with only ``rows`` of the vector set in a fresh store."""
    out: dict[str, Any] = {}
    workdir = Path(tempfile.mkdtemp(prefix="audiovec-scale-"))
    try:
        store = open_store(entry, int(vs.x.shape[1]), vs.metric, workdir)
        try:
            out["insert_s"] = insert(store, vs, rows)
            lat, _ = _timed_searches(
                store, vs.x[rows[: min(50, len(rows))]], min(k, len(rows)), entry.search_params or None
            )
            out["search_p50_ms"] = latency_percentiles(lat)["p50_ms"]
        finally:
            store.close()
    except AudiovecError as err:
        out["error"] = f"{type(err).__name__}: {err}"
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return out


def growth_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fitted growth (linear slope and power-law exponent) of each cost, per (embedder, pooling, store).

    A cost measured at fewer than :data:`MIN_GROWTH_SIZES` sizes gets no fit (its points stay in the scaling table).
    """
    out = []
    keys = sorted({(r["embedder"], r["pooling"], r["store"]) for r in rows})
    for key in keys:
        sub = [r for r in rows if (r["embedder"], r["pooling"], r["store"]) == key]
        for quantity in GROWTH_QUANTITIES:
            pts = [(r["size"], r[quantity]) for r in sub if quantity in r and np.isfinite(r[quantity])]
            if len({p[0] for p in pts}) < MIN_GROWTH_SIZES:
                continue
            fit = fit_growth([p[0] for p in pts], [p[1] for p in pts])
            out.append(
                {
                    "embedder": key[0],
                    "pooling": key[1],
                    "store": key[2],
                    "quantity": quantity,
                    "slope_per_file": fit.slope,
                    "exponent": fit.exponent,
                    "r2_linear": fit.r2_linear,
                    "points": len(pts),
                }
            )
    return out


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())

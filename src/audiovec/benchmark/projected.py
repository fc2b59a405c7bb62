"""Fitted projections scored honestly: every fit on the training side of the group rule, never on its queries.

For a vector set and a projection spec (:class:`audiovec.projections.Projection`), the items are split into folds
of whole groups (:func:`audiovec.metrics.group_folds`, the linear probe's rule). For each fold, the projection is
fitted on the vectors of the *other* folds (with their labels, for the supervised steps), every vector is
projected with that fit, and the fold's valid queries are searched among all the other vectors with their own
group excluded — the same search and metrics as :func:`~audiovec.benchmark.retrieval.quality`. The per-query
scores of all folds are pooled into one row with bootstrap intervals, comparable query by query with the raw
vectors (the verdict's paired test). In-class and out-of-class similarities are drawn within each fold, since
two folds' projections live in different coordinates.

A last fit on every vector is what the benchmark saves (:func:`projection_file`: ``projections/*.npz`` in the
output folder), with what it was fitted on, for use on new data.
"""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from audiovec.benchmark.retrieval import QualityScores, pair_similarities, per_query_scores, summarise
from audiovec.benchmark.vectors import VectorSet
from audiovec.metrics import group_folds, separation_auc
from audiovec.pooling import l2_normalize
from audiovec.projections import Projection

__all__ = ["cross_fitted_quality", "projected_name", "projection_file", "save_projection"]

#: How a projected configuration is named in the ``pooling`` column: ``"<pooling> -> <projection>"``.
ARROW = " -> "


def projected_name(pooling: str, spec: str) -> str:
    """The ``pooling`` column of a projected configuration: ``"mean+l2 -> center+lda"``."""
    return f"{pooling}{ARROW}{Projection(spec).describe()}"


def _apply(proj: Projection, vs: VectorSet) -> VectorSet:
    x = proj.transform(vs.x)
    if vs.metric == "cosine":
        x = l2_normalize(x)
    return dataclasses.replace(vs, x=np.ascontiguousarray(x, dtype=np.float32))


def cross_fitted_quality(
    vs: VectorSet,
    spec: str,
    k: int,
    *,
    ks: tuple[int, ...] | list[int] = (),
    folds: int = 5,
    bootstrap: int = 1000,
    seed: int = 0,
    dataset: str = "",
    n_pairs: int = 20000,
) -> tuple[QualityScores, Projection]:
    """Quality of ``vs`` under projection ``spec``, each fold's queries scored with a fit on the other folds.

    Args:
        vs: The raw vectors (one embedder × pooling).
        spec: Projection spec (``"center"``, ``"center+lda"``, ``"pca:64+sq8"``...).
        k: Depth of the metrics (``map_at_k``...), as in :func:`~audiovec.benchmark.retrieval.quality`.
        ks: Extra top-``n`` hit rates.
        folds: Folds of groups (fewer when there are fewer groups; at least 2).
        bootstrap: Bootstrap resamples of the intervals.
        seed: Seed of the intervals, the folds and the fits.
        dataset: Dataset name, recorded in what each fit was fitted on.
        n_pairs: In-class and out-of-class similarity pairs drawn, spread over the folds.

    Returns:
        The scores (row: ``pooling`` is ``"<pooling> -> <spec>"``, with ``projection``, ``dim`` (projected),
        ``bytes_per_vector``, ``folds`` and ``fitted_on``) and the projection fitted on every vector.

    Raises:
        ConfigError: A bad spec, or a supervised projection on a set without two labels.
    """
    proj_all = Projection(spec)
    name = projected_name(vs.pooling, spec)
    labels: list[Any] = [None if c < 0 else lab for lab, c in zip(vs.labels, vs.label_codes, strict=True)]
    row: dict[str, Any] = {"embedder": vs.embedder, "pooling": name, "n_vectors": len(vs), "k": k}
    row["projection"] = proj_all.describe()
    labelled = vs.labelled
    if labelled.sum() < 2 or len(np.unique(vs.label_codes[labelled])) < 2:
        row["note"] = "quality needs at least two labels"
        return QualityScores(row=row), proj_all
    fold_of = group_folds([str(v) for v in labels], list(vs.groups), folds, seed)
    n_folds = int(fold_of.max()) + 1
    rng = np.random.default_rng(seed)
    parts: list[tuple[np.ndarray[Any, Any], dict[str, Any]]] = []
    inn_all, out_all = [], []
    out_dim = bytes_per = None
    for f in range(n_folds):
        train = np.flatnonzero(fold_of != f)
        proj = Projection(spec).fit(
            vs.x[train],
            [labels[i] for i in train] if proj_all.supervised else None,
            seed=seed,
            fitted_on={"dataset": dataset, "rows": f"fold {f + 1} of {n_folds} held out"},
        )
        out_dim, bytes_per = proj.out_dim, proj.bytes_per_vector()
        index = _apply(proj, vs)
        q = np.flatnonzero(vs.queries & (fold_of == f)).astype(np.int64)
        if len(q):
            parts.append((q, per_query_scores(index.x[q], vs.labels[q], vs.group_codes[q], index, k, ks)))
        # in/out-of-class pairs among this fold's valid queries only (one coordinate system per pair)
        in_fold = dataclasses.replace(index, n_relevant=np.where(fold_of == f, vs.n_relevant, 0))
        inn, outc = pair_similarities(in_fold, rng, max(1, n_pairs // n_folds))
        inn_all.append(inn)
        out_all.append(outc)
    q_all = np.concatenate([q for q, _ in parts]) if parts else np.zeros(0, np.int64)
    order = np.argsort(q_all, kind="stable")
    per_query = {m: np.concatenate([pq[m] for _, pq in parts])[order] for m in (parts[0][1] if parts else {})}
    q_all = q_all[order]
    row.update({"dim": out_dim, "bytes_per_vector": bytes_per, "folds": n_folds})
    row["fitted_on"] = f"other folds ({n_folds} folds of whole groups)"
    row["n_queries"] = len(q_all)
    summarise(row, per_query, bootstrap, seed)
    inn, outc = np.concatenate(inn_all), np.concatenate(out_all)
    row["separation_auc"] = separation_auc(inn, outc)
    row["in_class_sim_mean"] = float(inn.mean()) if inn.size else math.nan
    row["out_class_sim_mean"] = float(outc.mean()) if outc.size else math.nan
    proj_all.fit(
        vs.x,
        labels if proj_all.supervised else None,
        seed=seed,
        fitted_on={"dataset": dataset, "embedder": vs.embedder, "pooling": vs.pooling, "rows": "all"},
    )
    scores = QualityScores(
        row=row,
        per_query=per_query,
        query_rows=q_all,
        query_ids=[vs.ids[i] for i in q_all],
        similarities=(inn, outc),
    )
    return scores, proj_all


def projection_file(out: str | Path, embedder: str, pooling: str, spec: str) -> Path:
    """Where a benchmark run in ``out`` saves the fit of ``spec`` on every vector of (``embedder``, ``pooling``).

    Example:
        >>> projection_file("results", "mfcc", "mean_std+l2", "center+lda").name
        'mfcc_mean_std_l2_center_lda.npz'
    """
    slug = re.sub(r"[^A-Za-z0-9.=-]+", "_", f"{embedder}__{pooling}__{Projection(spec).describe()}").strip("_")
    return Path(out) / "projections" / f"{slug}.npz"


def save_projection(proj: Projection, out: Path, embedder: str, pooling: str) -> Path:
    """Write a fitted projection to :func:`projection_file` (the folder is created)."""
    path = projection_file(out, embedder, pooling, proj.describe())
    path.parent.mkdir(parents=True, exist_ok=True)
    return proj.save(path)

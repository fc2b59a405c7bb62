"""Pooled vectors of one (embedder, pooling) with everything the evaluation needs, computed once.

A :class:`VectorSet` holds the vectors of every item of the dataset (one per segment), their store records
(:mod:`audiovec.ingest.records`), labels and groups. **The group rule** is decided here, once: a vector's group is
its item's group, or the item itself when the dataset has no groups; a query's own group is never a valid match,
and a query is *valid* when at least one vector with its label lies outside its group (``n_relevant > 0``).

For the cosine metric the vectors are L2-normalised here, once (skipped when the pooling already did it); every
later stage — exact search, pair similarities, stores — works on these unit vectors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from audiovec.benchmark.datasets import Dataset
from audiovec.embeddings import FrameEmbeddings
from audiovec.ingest.records import vector_records
from audiovec.pooling import L2Normalize, Pipeline, l2_normalize

__all__ = ["VectorSet", "codes", "n_relevant", "pool_vectors", "stratified_sample"]


@dataclass
class VectorSet:
    """The pooled vectors of one (embedder, pooling) and what evaluating them needs.

    Attributes:
        embedder: Embedder label.
        pooling: Pooling description (``Pipeline.describe()``).
        metric: ``cosine`` (vectors are unit length), ``ip`` or ``l2``.
        x: ``float32[n, dim]``.
        item: Dataset index of each vector.
        ids: Store id of each vector (``<path>#<segment>``).
        records: Store metadata of each vector (``label``, ``group`` and the ``_``-prefixed record fields).
        labels: Label of each vector (``None`` when unlabelled).
        groups: Group of each vector (the item's group, or ``file:<path>`` without groups).
        label_codes: Integer code of each label (``-1`` for unlabelled vectors).
        group_codes: Integer code of each group.
        n_relevant: Vectors sharing the label outside the group (0: not a valid query).
    """

    embedder: str
    pooling: str
    metric: str
    x: NDArray[np.float32]
    item: NDArray[np.int64]
    ids: list[str]
    records: list[dict[str, Any]]
    labels: NDArray[Any]
    groups: NDArray[Any]
    label_codes: NDArray[np.int64]
    group_codes: NDArray[np.int64]
    n_relevant: NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.x)

    @property
    def key(self) -> str:
        """``"embedder|pooling"``, the key of its arrays in a saved result."""
        return f"{self.embedder}|{self.pooling}"

    @property
    def labelled(self) -> NDArray[np.bool_]:
        """Which vectors have a label."""
        out: NDArray[np.bool_] = self.label_codes >= 0
        return out

    @property
    def queries(self) -> NDArray[np.bool_]:
        """Valid queries under the group rule: a relevant vector exists outside the query's own group."""
        out: NDArray[np.bool_] = self.n_relevant > 0
        return out


def codes(values: Sequence[Any] | NDArray[Any]) -> NDArray[np.int64]:
    """Integer codes of values (by their string form, in sorted order); ``None`` gets ``-1``."""
    arr = list(values)
    present = [v for v in arr if v is not None]
    _, inv = np.unique(np.asarray([str(v) for v in present]), return_inverse=True)
    out = np.full(len(arr), -1, dtype=np.int64)
    out[[i for i, v in enumerate(arr) if v is not None]] = inv.astype(np.int64)
    return out


def n_relevant(label_codes: NDArray[np.int64], group_codes: NDArray[np.int64]) -> NDArray[np.int64]:
    """Per vector: how many vectors share its label outside its group (0 for unlabelled vectors)."""
    out = np.zeros(len(label_codes), dtype=np.int64)
    has = label_codes >= 0
    if not has.any():
        return out
    lab, grp = label_codes[has], group_codes[has]
    per_label = np.bincount(lab)
    pair = lab * (int(group_codes.max()) + 1) + grp
    _, inv, counts = np.unique(pair, return_inverse=True, return_counts=True)
    out[has] = per_label[lab] - counts[inv]
    return out


def stratified_sample(strata: Sequence[Any] | NDArray[Any], n: int, seed: int = 0) -> NDArray[np.int64]:
    """Indices of ``min(n, len(strata))`` items spread evenly over the strata (groups, labels), seeded, sorted.

    Items are taken round-robin over the strata in a seeded order, each stratum's items in a seeded order: every
    stratum gives ``n // n_strata`` or one more item, except those with fewer items, which give them all (the
    rest is shared among the others). ``None`` is a stratum of its own.

    Example:
        >>> stratified_sample(["a"] * 8 + ["b"] * 2, 4).tolist()  # two of each group, not four of "a"
        [4, 6, 8, 9]
    """
    m = len(strata)
    if n >= m:
        return np.arange(m, dtype=np.int64)
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(m)
    _, code = np.unique(np.asarray([str(strata[i]) for i in perm]), return_inverse=True)
    counts = np.bincount(code)
    by_stratum = np.argsort(code, kind="stable")  # positions in ``perm``, stratum by stratum, seeded order within
    rank = np.empty(m, dtype=np.int64)
    rank[by_stratum] = np.arange(m) - np.repeat(np.cumsum(counts) - counts, counts)
    turn = rng.permutation(len(counts))[code]  # the seeded order of the strata within one round
    take = np.lexsort((turn, rank))[:n]
    out: NDArray[np.int64] = np.sort(perm[take]).astype(np.int64)
    return out


def pool_vectors(
    dataset: Dataset,
    frames: Mapping[int, FrameEmbeddings],
    pipeline: Pipeline,
    embedder: str,
    metric: str,
) -> VectorSet:
    """Pool the frames of every embedded item and build the :class:`VectorSet`.

    Args:
        dataset: The dataset (labels, groups, paths).
        frames: Frame embeddings by dataset index (items that failed are simply absent).
        pipeline: The pooling recipe.
        embedder: The embedder's label.
        metric: The evaluation metric; ``cosine`` normalises the vectors (once).
    """
    vecs: list[NDArray[np.float32]] = []
    items: list[int] = []
    ids: list[str] = []
    records: list[dict[str, Any]] = []
    for i in sorted(frames):
        it = dataset[i]
        pooled = pipeline(frames[i])
        group = it.group or f"file:{it.path}"
        vid, meta = vector_records(
            it.path, pooled, duration=frames[i].duration, metadata={"label": it.label, "group": group}
        )
        vecs.append(pooled.vectors)
        items.extend([i] * len(pooled))
        ids.extend(vid)
        records.extend(meta)
    dim = pipeline.output_dim(next(iter(frames.values())).dim) if frames else 0
    x = np.concatenate(vecs).astype(np.float32) if vecs else np.zeros((0, dim), np.float32)
    if metric == "cosine" and not any(isinstance(s, L2Normalize) for s in pipeline.steps):
        x = l2_normalize(x, axis=1)
    idx = np.asarray(items, dtype=np.int64)
    labels = np.asarray([dataset[i].label for i in idx], dtype=object)
    groups = np.asarray([r["group"] for r in records], dtype=object)
    label_codes, group_codes = codes(labels), codes(groups)
    return VectorSet(
        embedder=embedder,
        pooling=pipeline.describe(),
        metric=metric,
        x=x,
        item=idx,
        ids=ids,
        records=records,
        labels=labels,
        groups=groups,
        label_codes=label_codes,
        group_codes=group_codes,
        n_relevant=n_relevant(label_codes, group_codes),
    )

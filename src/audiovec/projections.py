"""Fitted steps after pooling: mean-centring, PCA, LDA, NCA, an autoencoder, scalar and product quantisation.

A :class:`Projection` is a chain of steps written as one spec string, fitted on a set of pooled vectors (with
labels, for the supervised steps), applied to any vectors of the same dimension, and saved with what it was
fitted on::

    proj = Projection.parse("center+pca:64:whiten")
    proj.fit(train_vectors, fitted_on={"dataset": "drums", "rows": "kits other than kit3"})
    low = proj.transform(vectors)                    # float32[n, 64]
    proj.save("pca64.npz"); Projection.load("pca64.npz")

Steps (``+`` chains them, left to right):

* ``center`` — subtract the mean of the fitted set. Raw cosine of pooled frame features is dominated by a constant
  offset shared by every sound (pooled MFCCs of two unrelated sounds often have cosine above 0.9); removing it
  is the simplest fitted step and often the most useful one.
* ``pca:N`` / ``pca:N:whiten`` — the first ``N`` principal components (centred), optionally scaled to unit
  variance.
* ``lda`` / ``lda:N`` — linear discriminant analysis (supervised): at most ``classes - 1`` directions that
  separate the labels, with a shrunk within-class covariance (``shrink=0.1`` by default; ``lda:16:shrink=0.3``)
  so that it stays well-posed when there are fewer vectors than dimensions.
* ``nca:N`` — neighbourhood components analysis (supervised; scikit-learn's, the ``bench`` extra).
* ``ae`` / ``ae:300-200-100-50-20`` — a fully connected autoencoder (MSE, Adam) on standardised inputs; the
  vector is the bottleneck (the last size). Sizes, ``epochs=``, ``lr=`` and ``batch=`` are configurable; needs
  torch.
* ``sq8`` — 8-bit scalar quantisation per dimension (range of the fitted set): one byte per dimension.
* ``pq:M`` — product quantisation into ``M`` sub-vectors of 256 centroids each: ``M`` bytes per vector.

Quantisers return the reconstructed vectors (what a search over the codes compares), so quality is measured on
exactly what is stored, and :meth:`Projection.bytes_per_vector` reports the code size.

In the :class:`~audiovec.Benchmark`, every projection is fitted strictly on the training side of the group rule:
on the other folds of groups, never on the queries it is scored on (:mod:`audiovec.benchmark.projected`).
"""

from __future__ import annotations

import itertools
import json
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from audiovec._files import atomic_write
from audiovec._hashing import json_digest
from audiovec.errors import ConfigError, MissingDependencyError

__all__ = [
    "PROJECTION_KINDS",
    "Projection",
    "ProjectionStep",
    "cluster_agreement",
    "kmeans",
]

Array = NDArray[np.float32]


# --------------------------------------------------------------------------------------------- k-means
def kmeans(
    x: NDArray[np.floating[Any]], k: int, *, seed: int = 0, iters: int = 25, n_init: int = 1
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Lloyd's k-means with k-means++ seeding: ``(centroids float64[k, dim], assignment int64[n])``.

    ``k`` is clipped to the number of distinct rows; an emptied cluster is re-seeded with the point farthest
    from its centroid. With ``n_init > 1`` the best of that many seedings (lowest inertia) is kept.
    Deterministic for a given ``seed``.
    """
    x64 = np.asarray(x, dtype=np.float64)
    if len(x64) == 0:
        raise ConfigError("k-means needs at least one vector")
    k = max(1, min(k, len(np.unique(x64, axis=0))))
    best: tuple[float, NDArray[np.float64], NDArray[np.int64]] | None = None
    for run in range(max(1, n_init)):
        centroids, assign = _lloyd(x64, k, seed + 7919 * run, iters)
        inertia = float(((x64 - centroids[assign]) ** 2).sum())
        if best is None or inertia < best[0]:
            best = (inertia, centroids, assign)
    assert best is not None
    return best[1], best[2]


def _lloyd(x64: NDArray[np.float64], k: int, seed: int, iters: int) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    n = len(x64)
    rng = np.random.default_rng(seed)
    sq = (x64**2).sum(1)
    centroids = np.empty((k, x64.shape[1]))
    centroids[0] = x64[rng.integers(n)]
    d2 = np.maximum(sq - 2 * x64 @ centroids[0] + centroids[0] @ centroids[0], 0.0)
    for c in range(1, k):
        total = d2.sum()
        i = int(rng.choice(n, p=d2 / total)) if total > 0 else int(rng.integers(n))
        centroids[c] = x64[i]
        d2 = np.minimum(d2, np.maximum(sq - 2 * x64 @ x64[i] + sq[i], 0.0))
    assign = np.zeros(n, dtype=np.int64)
    for it in range(iters):
        dist = sq[:, None] - 2 * x64 @ centroids.T + (centroids**2).sum(1)[None, :]
        new = dist.argmin(1)
        if it and np.array_equal(new, assign):
            break
        assign = new
        for c in range(k):
            members = assign == c
            if members.any():
                centroids[c] = x64[members].mean(0)
            else:  # re-seed an empty cluster with the worst-served point
                far = int(dist[np.arange(n), assign].argmax())
                centroids[c] = x64[far]
                assign[far] = c
    return centroids, assign


def cluster_agreement(x: NDArray[np.floating[Any]], labels: Sequence[Any], *, seed: int = 0) -> tuple[float, float]:
    """How well k-means (k = number of labels, best of 5 seedings) recovers the labels: ``(purity, NMI)``, in [0, 1].

    Purity: share of vectors whose cluster's majority label is theirs. NMI: mutual information of clusters and
    labels over the mean of their entropies (arithmetic normalisation, as scikit-learn's default).
    """
    lab = np.unique(np.asarray(labels, dtype=object).astype(str), return_inverse=True)[1]
    if len(lab) == 0:
        return math.nan, math.nan
    _, assign = kmeans(x, int(lab.max()) + 1, seed=seed, n_init=5)
    table = np.zeros((int(assign.max()) + 1, int(lab.max()) + 1))
    np.add.at(table, (assign, lab), 1.0)
    n = table.sum()
    purity = float(table.max(1).sum() / n)
    p = table / n
    pc, pl = p.sum(1), p.sum(0)
    nz = p > 0
    mi = float((p[nz] * np.log(p[nz] / np.outer(pc, pl)[nz])).sum())
    hc = float(-(pc[pc > 0] * np.log(pc[pc > 0])).sum())
    hl = float(-(pl[pl > 0] * np.log(pl[pl > 0])).sum())
    denom = (hc + hl) / 2
    nmi = mi / denom if denom > 0 else 1.0
    return purity, float(min(max(nmi, 0.0), 1.0))


# --------------------------------------------------------------------------------------------- steps
class ProjectionStep(ABC):
    """One fitted step. Subclasses set :attr:`kind`, parse their arguments, and implement fit/transform."""

    kind: ClassVar[str]
    supervised: ClassVar[bool] = False
    #: Bytes per dimension of what the step stores (quantisers); ``None`` for float32 outputs.
    code_bytes: ClassVar[float | None] = None

    def __init__(self, args: Sequence[str], options: Mapping[str, str]) -> None:
        self.args = list(args)
        self.options = dict(options)
        self.state: dict[str, NDArray[Any]] = {}

    def describe(self) -> str:
        """The step as written in a spec string."""
        return ":".join([self.kind, *self.args, *(f"{k}={v}" for k, v in sorted(self.options.items()))])

    @property
    def fitted(self) -> bool:
        """Whether :meth:`fit` (or :meth:`Projection.load`) gave the step its state."""
        return bool(self.state)

    @abstractmethod
    def fit(self, x: NDArray[np.float64], y: NDArray[np.int64] | None, seed: int) -> None:
        """Fit on ``x`` (float64); ``y`` holds integer labels (``-1`` unlabelled) for supervised steps."""

    @abstractmethod
    def transform(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """Apply the fitted step."""

    def bytes_for(self, dim: int) -> float | None:
        """Stored bytes per vector for an output of ``dim`` dimensions (quantisers), else ``None``."""
        return None

    # helpers for subclasses
    def _int_arg(self, default: int | None) -> int | None:
        ints = [a for a in self.args if a.isdigit()]
        return int(ints[0]) if ints else default

    def _float_opt(self, name: str, default: float) -> float:
        try:
            return float(self.options.get(name, default))
        except ValueError as err:
            raise ConfigError(f"{self.kind}: {name}={self.options[name]!r} is not a number") from err

    def _check_args(self, allowed_flags: Sequence[str] = (), allowed_options: Sequence[str] = ()) -> None:
        for a in self.args:
            if not a.isdigit() and a not in allowed_flags:
                raise ConfigError(f"{self.kind}: unknown argument {a!r} (see audiovec.projections)")
        for key in self.options:
            if key not in allowed_options:
                known = ", ".join(allowed_options) or "none"
                raise ConfigError(f"{self.kind}: unknown option {key!r}; known: {known}")


class Center(ProjectionStep):
    """Subtract the mean of the fitted set."""

    kind = "center"

    def __init__(self, args: Sequence[str], options: Mapping[str, str]) -> None:
        super().__init__(args, options)
        if self.args or self.options:
            raise ConfigError("center takes no arguments")

    def fit(self, x: NDArray[np.float64], y: NDArray[np.int64] | None, seed: int) -> None:
        self.state = {"mean": x.mean(0)}

    def transform(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        out: NDArray[np.float64] = x - self.state["mean"]
        return out


class PCA(ProjectionStep):
    """Principal components of the centred fitted set (``pca:N``; ``whiten`` scales each to unit variance)."""

    kind = "pca"

    def __init__(self, args: Sequence[str], options: Mapping[str, str]) -> None:
        super().__init__(args, options)
        self._check_args(allowed_flags=("whiten",))
        self.n = self._int_arg(None)
        self.whiten = "whiten" in self.args

    def fit(self, x: NDArray[np.float64], y: NDArray[np.int64] | None, seed: int) -> None:
        mean = x.mean(0)
        _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
        n = min(self.n or vt.shape[0], vt.shape[0], max(1, len(x) - 1))
        comps = vt[:n]
        if self.whiten:
            std = s[:n] / math.sqrt(max(len(x) - 1, 1))
            comps = comps / np.maximum(std, 1e-12 * max(float(std[0]), 1e-30))[:, None]
        self.state = {"mean": mean, "components": comps}

    def transform(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        out: NDArray[np.float64] = (x - self.state["mean"]) @ self.state["components"].T
        return out


class LDA(ProjectionStep):
    """Linear discriminant analysis with a shrunk within-class covariance (``lda:N:shrink=0.1``)."""

    kind = "lda"
    supervised = True

    def __init__(self, args: Sequence[str], options: Mapping[str, str]) -> None:
        super().__init__(args, options)
        self._check_args(allowed_options=("shrink",))
        self.n = self._int_arg(None)
        self.shrink = self._float_opt("shrink", 0.1)
        if not 0.0 <= self.shrink <= 1.0:
            raise ConfigError(f"lda: shrink must lie in [0, 1], got {self.shrink}")

    def fit(self, x: NDArray[np.float64], y: NDArray[np.int64] | None, seed: int) -> None:
        import scipy.linalg

        xl, yl = _labelled(self.kind, x, y)
        classes = np.unique(yl)
        mean = xl.mean(0)
        # Work in the span of the centred data: exact, and cheap when there are fewer vectors than dimensions.
        _, s, vt = np.linalg.svd(xl - mean, full_matrices=False)
        basis = vt[s > s[0] * 1e-9] if s.size and s[0] > 0 else vt[:1]
        z = (xl - mean) @ basis.T
        means = np.stack([z[yl == c].mean(0) for c in classes])
        within = z - means[np.searchsorted(classes, yl)]
        sw = within.T @ within / max(len(z) - len(classes), 1)
        sw = (1 - self.shrink) * sw + self.shrink * np.trace(sw) / len(sw) * np.eye(len(sw))
        counts = np.asarray([(yl == c).sum() for c in classes], dtype=np.float64)
        sb = (means.T * counts) @ means / len(z)
        evals, evecs = scipy.linalg.eigh(sb, sw + 1e-12 * np.trace(sw) * np.eye(len(sw)))
        order = np.argsort(evals)[::-1]
        n = min(self.n or len(classes) - 1, len(classes) - 1, len(order))
        self.state = {"mean": mean, "components": (basis.T @ evecs[:, order[: max(n, 1)]]).T}

    def transform(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        out: NDArray[np.float64] = (x - self.state["mean"]) @ self.state["components"].T
        return out


class NCA(ProjectionStep):
    """Neighbourhood components analysis (scikit-learn), initialised by PCA (``nca:N``)."""

    kind = "nca"
    supervised = True

    def __init__(self, args: Sequence[str], options: Mapping[str, str]) -> None:
        super().__init__(args, options)
        self._check_args(allowed_options=("iters",))
        self.n = self._int_arg(None)
        self.iters = int(self._float_opt("iters", 50))

    def fit(self, x: NDArray[np.float64], y: NDArray[np.int64] | None, seed: int) -> None:
        from audiovec._optional import require

        require("sklearn", extra="bench", feature="the nca projection", package="scikit-learn")
        from sklearn.neighbors import NeighborhoodComponentsAnalysis

        xl, yl = _labelled(self.kind, x, y)
        mean, scale = xl.mean(0), xl.std(0) + 1e-12
        n = min(self.n or xl.shape[1], xl.shape[1])
        nca = NeighborhoodComponentsAnalysis(n_components=n, init="pca", max_iter=self.iters, random_state=seed)
        nca.fit((xl - mean) / scale, yl)
        self.state = {"mean": mean, "scale": scale, "components": np.asarray(nca.components_, dtype=np.float64)}

    def transform(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        out: NDArray[np.float64] = ((x - self.state["mean"]) / self.state["scale"]) @ self.state["components"].T
        return out


class Autoencoder(ProjectionStep):
    """A fully connected autoencoder (``ae:300-200-100-50-20``; ``epochs=``, ``lr=``, ``batch=``); needs torch.

    Encoder: input → each size in turn (ReLU between layers, none after the bottleneck); the decoder mirrors it.
    Inputs are standardised with the fitted set's mean and deviation; trained with MSE and Adam on mini-batches
    shuffled with the fit's seed, on ``threads=1`` torch thread by default (the layers are small: more threads
    only wait on each other, and on a busy machine many times slower). The vector is the bottleneck.
    """

    kind = "ae"
    DEFAULT_SIZES: ClassVar[tuple[int, ...]] = (300, 200, 100, 50, 20)

    def __init__(self, args: Sequence[str], options: Mapping[str, str]) -> None:
        super().__init__(args, options)
        for key in self.options:
            if key not in ("epochs", "lr", "batch", "threads"):
                raise ConfigError(f"ae: unknown option {key!r}; known: batch, epochs, lr, threads")
        if len(self.args) > 1:
            raise ConfigError("ae takes one argument: the layer sizes, e.g. ae:300-200-100-50-20")
        try:
            self.sizes = tuple(int(s) for s in self.args[0].split("-")) if self.args else self.DEFAULT_SIZES
        except ValueError as err:
            raise ConfigError(f"ae: layer sizes must be integers joined by '-', got {self.args[0]!r}") from err
        if not self.sizes or min(self.sizes) < 1:
            raise ConfigError(f"ae: layer sizes must be positive, got {self.sizes}")
        self.epochs = int(self._float_opt("epochs", 200))
        self.lr = self._float_opt("lr", 1e-3)
        self.batch = int(self._float_opt("batch", 64))
        self.threads = int(self._float_opt("threads", 1))

    def _torch(self) -> Any:
        try:
            import torch
        except ImportError as err:
            raise MissingDependencyError(
                "the 'ae' projection needs torch: pip install 'audiovec[hear]' (or torch itself)"
            ) from err
        return torch

    def _net(self, dim: int) -> tuple[Any, Any]:
        torch = self._torch()
        nn = torch.nn
        dims = [dim, *self.sizes]
        enc: list[Any] = []
        for i, (a, b) in enumerate(itertools.pairwise(dims)):
            enc.append(nn.Linear(a, b))
            if i < len(dims) - 2:
                enc.append(nn.ReLU())
        back = dims[::-1]
        dec: list[Any] = []
        for i, (a, b) in enumerate(itertools.pairwise(back)):
            dec.append(nn.Linear(a, b))
            if i < len(back) - 2:
                dec.append(nn.ReLU())
        return nn.Sequential(*enc), nn.Sequential(*dec)

    def fit(self, x: NDArray[np.float64], y: NDArray[np.int64] | None, seed: int) -> None:
        from audiovec.embedders._torch import torch_threads

        torch = self._torch()
        with torch_threads(torch, self.threads):
            self._train(torch, x, seed)

    def _train(self, torch: Any, x: NDArray[np.float64], seed: int) -> None:
        mean, scale = x.mean(0), x.std(0) + 1e-8
        z = torch.from_numpy(((x - mean) / scale).astype(np.float32))
        gen = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        enc, dec = self._net(x.shape[1])
        opt = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=self.lr)
        for _ in range(self.epochs):
            order = torch.randperm(len(z), generator=gen)
            for start in range(0, len(z), self.batch):
                part = z[order[start : start + self.batch]]
                opt.zero_grad()
                loss = torch.nn.functional.mse_loss(dec(enc(part)), part)
                loss.backward()
                opt.step()
        self.state = {"mean": mean, "scale": scale}
        for i, p in enumerate(enc.parameters()):
            self.state[f"enc{i}"] = p.detach().numpy().astype(np.float64)

    def transform(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        h: NDArray[np.float64] = (x - self.state["mean"]) / self.state["scale"]
        n_layers = len(self.sizes)
        for i in range(n_layers):  # the encoder in numpy: no torch needed to apply a fitted autoencoder
            h = h @ self.state[f"enc{2 * i}"].T + self.state[f"enc{2 * i + 1}"]
            if i < n_layers - 1:
                h = np.maximum(h, 0.0)
        return h


class ScalarQuantizer(ProjectionStep):
    """8-bit scalar quantisation per dimension over the fitted set's range (``sq8``): one byte per dimension."""

    kind = "sq8"

    def __init__(self, args: Sequence[str], options: Mapping[str, str]) -> None:
        super().__init__(args, options)
        if self.args or self.options:
            raise ConfigError("sq8 takes no arguments")

    def fit(self, x: NDArray[np.float64], y: NDArray[np.int64] | None, seed: int) -> None:
        lo, hi = x.min(0), x.max(0)
        self.state = {"lo": lo, "step": np.maximum(hi - lo, 1e-12) / 255.0}

    def transform(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        codes = np.clip(np.rint((x - self.state["lo"]) / self.state["step"]), 0, 255)
        out: NDArray[np.float64] = codes * self.state["step"] + self.state["lo"]
        return out

    def bytes_for(self, dim: int) -> float | None:
        return float(dim)


class ProductQuantizer(ProjectionStep):
    """Product quantisation (``pq:M``): ``M`` contiguous sub-vectors, 256 k-means centroids each, ``M`` bytes."""

    kind = "pq"

    def __init__(self, args: Sequence[str], options: Mapping[str, str]) -> None:
        super().__init__(args, options)
        self._check_args()
        m = self._int_arg(None)
        if not m:
            raise ConfigError("pq needs the number of sub-vectors, e.g. pq:16")
        self.m = m

    def _splits(self, dim: int) -> list[NDArray[np.intp]]:
        if self.m > dim:
            raise ConfigError(f"pq:{self.m} needs at least {self.m} dimensions, got {dim}")
        return list(np.array_split(np.arange(dim), self.m))

    def fit(self, x: NDArray[np.float64], y: NDArray[np.int64] | None, seed: int) -> None:
        self.state = {}
        for j, cols in enumerate(self._splits(x.shape[1])):
            self.state[f"c{j}"], _ = kmeans(x[:, cols], 256, seed=seed + j, iters=20)

    def transform(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        out = np.empty_like(x)
        for j, cols in enumerate(self._splits(x.shape[1])):
            c = self.state[f"c{j}"]
            sub = x[:, cols]
            d = (sub**2).sum(1)[:, None] - 2 * sub @ c.T + (c**2).sum(1)[None, :]
            out[:, cols] = c[d.argmin(1)]
        return out

    def bytes_for(self, dim: int) -> float | None:
        return float(self.m)


def _labelled(kind: str, x: NDArray[np.float64], y: NDArray[np.int64] | None) -> tuple[Any, Any]:
    if y is None:
        raise ConfigError(f"the {kind} projection is supervised: fit it with labels")
    keep = y >= 0
    if len(np.unique(y[keep])) < 2:
        raise ConfigError(f"the {kind} projection needs at least two labels among the vectors it is fitted on")
    return x[keep], y[keep]


_STEPS: dict[str, type[ProjectionStep]] = {
    c.kind: c for c in (Center, PCA, LDA, NCA, Autoencoder, ScalarQuantizer, ProductQuantizer)
}
#: The step kinds a spec string may name.
PROJECTION_KINDS: tuple[str, ...] = tuple(_STEPS)


# --------------------------------------------------------------------------------------------- the chain
class Projection:
    """A chain of fitted steps, written as a spec string (``"center+lda"``, ``"pca:64:whiten+sq8"``).

    Args:
        spec: Steps joined by ``+``; each is ``kind[:arg...][:key=value...]`` (see the module docs).

    Raises:
        ConfigError: An unknown step, a bad argument, or a quantiser that is not the last step.
    """

    def __init__(self, spec: str) -> None:
        parts = [p.strip() for p in spec.split("+") if p.strip()]
        if not parts:
            raise ConfigError("empty projection spec")
        self.steps: list[ProjectionStep] = []
        for part in parts:
            kind, *rest = part.split(":")
            cls = _STEPS.get(kind.strip().lower())
            if cls is None:
                from audiovec._registry import did_you_mean

                hint = did_you_mean(kind, list(_STEPS))
                raise ConfigError(
                    f"unknown projection step {kind!r}"
                    + (f"; {hint}" if hint else "")
                    + f"; known: {', '.join(_STEPS)}"
                )
            args = [r for r in rest if "=" not in r]
            options = dict(r.split("=", 1) for r in rest if "=" in r)
            self.steps.append(cls(args, options))
        for step in self.steps[:-1]:
            if step.bytes_for(1) is not None:
                raise ConfigError(f"{step.kind} quantises: it must be the last step of {spec!r}")
        self.fitted_on: dict[str, Any] = {}
        self.in_dim: int | None = None
        self.out_dim: int | None = None

    @classmethod
    def parse(cls, spec: str) -> Projection:
        """Build from a spec string (the constructor, named for symmetry with ``Pipeline``)."""
        return cls(spec)

    def describe(self) -> str:
        """The normalised spec string."""
        return "+".join(s.describe() for s in self.steps)

    @property
    def supervised(self) -> bool:
        """Whether a step needs labels to fit."""
        return any(s.supervised for s in self.steps)

    @property
    def fitted(self) -> bool:
        """Whether every step is fitted."""
        return all(s.fitted for s in self.steps)

    def fit(
        self,
        x: NDArray[np.floating[Any]],
        labels: Sequence[Any] | NDArray[Any] | None = None,
        *,
        seed: int = 0,
        fitted_on: Mapping[str, Any] | None = None,
    ) -> Projection:
        """Fit every step in turn on ``x`` (each on the previous one's output).

        Args:
            x: ``[n, dim]`` vectors.
            labels: One label per row (``None`` entries: unlabelled); needed by the supervised steps.
            seed: Seed of the random parts (k-means, NCA, the autoencoder).
            fitted_on: What the vectors were (dataset, rows, fold), kept with the fit and in :meth:`spec`.

        Returns:
            ``self``.

        Raises:
            ConfigError: A supervised step without two labels, or an empty ``x``.
        """
        h = np.asarray(x, dtype=np.float64)
        if h.ndim != 2 or len(h) < 2:
            raise ConfigError(f"a projection is fitted on at least two vectors [n, dim], got shape {h.shape}")
        y: NDArray[np.int64] | None = None
        if labels is not None:
            lab = np.asarray([None if v is None else str(v) for v in labels], dtype=object)
            if len(lab) != len(h):
                raise ConfigError(f"{len(lab)} labels for {len(h)} vectors")
            known = np.asarray([v is not None for v in lab])
            y = np.full(len(h), -1, dtype=np.int64)
            if known.any():
                y[known] = np.unique(lab[known].astype(str), return_inverse=True)[1]
        self.in_dim = int(h.shape[1])
        for i, step in enumerate(self.steps):
            step.fit(h, y, seed + i)
            h = step.transform(h)
        self.out_dim = int(h.shape[1])
        self.fitted_on = {"n_vectors": len(h), "labelled": int((y >= 0).sum()) if y is not None else 0}
        self.fitted_on.update(fitted_on or {})
        return self

    def transform(self, x: NDArray[np.floating[Any]]) -> Array:
        """Apply the fitted chain: ``float32[n, out_dim]``.

        Raises:
            ConfigError: Not fitted, or ``x`` has another dimension than the fitted vectors.
        """
        if not self.fitted:
            raise ConfigError(f"projection {self.describe()!r} is not fitted")
        h = np.asarray(x, dtype=np.float64)
        if h.ndim != 2 or h.shape[1] != self.in_dim:
            raise ConfigError(f"projection {self.describe()!r} was fitted on dim {self.in_dim}, got shape {h.shape}")
        for step in self.steps:
            h = step.transform(h)
        return h.astype(np.float32)

    def bytes_per_vector(self, in_dim: int | None = None) -> float:
        """Stored bytes per output vector: the quantiser's code size, else ``out_dim × 4`` (float32).

        Args:
            in_dim: Input dimension, for an unfitted chain whose output size it determines (centring, quantisers).
        """
        dim = self.out_dim if self.out_dim is not None else in_dim
        if dim is None:
            raise ConfigError("bytes_per_vector of an unfitted projection needs in_dim")
        code = self.steps[-1].bytes_for(dim)
        return float(code) if code is not None else float(dim * 4)

    def spec(self) -> dict[str, Any]:
        """The chain, its dimensions, what it was fitted on and a key over all of it (for caches and results)."""
        body: dict[str, Any] = {"projection": self.describe(), "in_dim": self.in_dim, "out_dim": self.out_dim}
        body["fitted_on"] = dict(self.fitted_on)
        return {**body, "key": json_digest(body)}

    def save(self, path: str | Path) -> Path:
        """Write the fitted chain to one ``.npz`` file (arrays and a JSON spec), atomically."""
        if not self.fitted:
            raise ConfigError(f"projection {self.describe()!r} is not fitted")
        arrays: dict[str, NDArray[Any]] = {"__spec__": np.frombuffer(json.dumps(self.spec()).encode(), np.uint8)}
        for i, step in enumerate(self.steps):
            for name, value in step.state.items():
                arrays[f"{i}/{name}"] = value
        target = Path(path)

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)  # type: ignore[arg-type]

        atomic_write(target, write)
        return target

    @classmethod
    def load(cls, path: str | Path) -> Projection:
        """Read a chain written by :meth:`save`."""
        with np.load(Path(path), allow_pickle=False) as data:
            spec = json.loads(bytes(data["__spec__"]).decode())
            proj = cls(spec["projection"])
            for key in data.files:
                if key != "__spec__":
                    i, name = key.split("/", 1)
                    proj.steps[int(i)].state[name] = data[key]
        proj.in_dim, proj.out_dim, proj.fitted_on = spec["in_dim"], spec["out_dim"], spec["fitted_on"]
        return proj

    def __repr__(self) -> str:
        state = f"fitted on {self.fitted_on.get('n_vectors')} vectors" if self.fitted else "not fitted"
        return f"Projection({self.describe()!r}, {state})"

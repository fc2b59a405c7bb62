"""The vector-store conformance checks (see :func:`check_vector_store`).

A store is tested through a *factory*, ``factory(path, dim, metric) -> VectorStore``, which must

* create a new, empty store when nothing exists at ``path``, and reopen the same store when called again
  with the same ``path`` (that is how persistence is checked);
* pass ``dim`` and ``metric`` through, so reopening with another ``dim`` raises
  :class:`~audiovec.errors.DimensionMismatchError` and with another metric :class:`~audiovec.errors.ConfigError`.

``path`` is a fresh location inside a scratch directory for every store a check creates. A file-based backend
treats it as its directory; a server backend may derive a collection name from it. Example::

    from audiovec.stores import FaissStore
    from audiovec.testing import check_vector_store

    check_vector_store(lambda path, dim, metric: FaissStore(path, dim=dim, metric=metric, index="hnsw"))

or one pytest case per check::

    @pytest.mark.parametrize(("name", "check"), store_checks())
    def test_store(name, check, tmp_path):
        check(my_factory, tmp_path)

Checks read ``store.index.exact`` (results must equal brute force) and ``store.index.lossy`` (vectors are
compressed, so returned vectors and scores are approximate) to set their tolerances. No check compares scores
bit for bit: two kernels (or one BLAS kernel on two matrix shapes) may differ in the last bits, so scores are
compared within ``2e-4`` (relative above 1), and two result lists count as the same when they differ only by
near-ties, hits whose scores are that close (see :func:`assert_same_hits`).
"""

from __future__ import annotations

import itertools
import math
import tempfile
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from audiovec.errors import (
    AudiovecError,
    ConfigError,
    DimensionMismatchError,
    DuplicateIdError,
    FilterError,
    FilterTooLargeError,
    InvalidIdError,
    InvalidMetadataError,
    InvalidVectorError,
    StoreError,
)
from audiovec.metrics import recall_at_k
from audiovec.stores import ExactStore, Hit, SearchParams, VectorStore
from audiovec.stores.filters import (
    MAX_FILTER_BYTES,
    MAX_FILTER_DEPTH,
    MAX_FILTER_TERMS,
    MAX_FILTER_VALUES,
    And,
    Eq,
    FilterLike,
    In,
    Not,
    Or,
    Range,
    compile_filter,
)
from audiovec.stores.records import MAX_K, MAX_METADATA_BYTES, MAX_METADATA_DEPTH, MAX_VECTOR_NORM
from audiovec.stores.validation import short_repr
from audiovec.testing._embedder_checks import CheckResult, run_checks

__all__ = [
    "SCORE_TOL",
    "StoreCheck",
    "StoreFactory",
    "assert_same_hits",
    "check_vector_store",
    "clustered_vectors",
    "store_checks",
]

StoreFactory = Callable[[Path, int, str], VectorStore]
"""``factory(path, dim, metric)``: create the store at ``path`` or reopen it."""

StoreCheck = Callable[[StoreFactory, Path], None]
"""``check(factory, workdir)``: raises ``AssertionError`` on failure."""


# --------------------------------------------------------------------------------------------- data
def clustered_vectors(
    n: int,
    dim: int,
    *,
    n_queries: int = 0,
    n_classes: int | None = None,
    seed: int = 0,
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Clustered vectors shaped like audio embeddings, for recall tests and benchmarks.

    A three-level mixture in a latent space of ``min(dim, 48)`` dimensions, linearly embedded into ``dim``:
    ``n_classes`` classes (sound categories, unequal sizes) whose "files" spread as widely as the classes
    themselves (classes overlap), and about 8 "segments" per file around it (windows of one recording are
    close); then a common offset and a little isotropic noise. Pure Gaussian noise has no neighbourhood
    structure and every ANN index looks bad on it; real embeddings do have structure.

    Args:
        n: Number of base vectors.
        dim: Dimension.
        n_queries: Number of queries: half are new segments of files in the base set, half segments of new files.
        n_classes: Number of classes (default ``max(4, round(sqrt(n) / 2))``).
        seed: Random seed. The output depends only on the arguments (two calls give identical arrays); its last
            bits may differ between CPUs, because the projection is a float64 matrix product (BLAS).

    Returns:
        ``(base float32[n, dim], queries float32[n_queries, dim])``.
    """
    rng = np.random.default_rng(seed)
    latent = min(dim, 48)
    proj = rng.standard_normal((latent, dim)) / math.sqrt(latent)
    offset = 0.3 * rng.standard_normal(dim)
    n_classes = n_classes or max(4, round(math.sqrt(n) / 2))
    class_p = rng.dirichlet(np.full(n_classes, 2.0))
    centers = rng.standard_normal((n_classes, latent))

    def files(m: int) -> NDArray[np.float64]:
        cls = rng.choice(n_classes, size=m, p=class_p)
        out: NDArray[np.float64] = centers[cls] + 1.0 * rng.standard_normal((m, latent))
        return out

    def segments(file_centers: NDArray[np.float64], m: int) -> NDArray[np.float32]:
        f = rng.integers(0, len(file_centers), size=m)
        z = file_centers[f] + 0.5 * rng.standard_normal((m, latent))
        x = z @ proj + offset + 0.05 * rng.standard_normal((m, dim))
        return x.astype(np.float32)

    base_files = files(max(1, n // 8))
    base = segments(base_files, n)
    half = n_queries // 2
    queries = np.concatenate([segments(base_files, half), segments(files(max(1, n_queries)), n_queries - half)])
    return base, queries.astype(np.float32)


# --------------------------------------------------------------------------------------------- helpers
def _rand(n: int, dim: int, seed: int) -> NDArray[np.float32]:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


def _unit(x: NDArray[np.float32]) -> NDArray[np.float32]:
    out: NDArray[np.float32] = (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)
    return out


def _flags(store: VectorStore) -> tuple[bool, bool]:
    """(exact, lossy) of a store's index."""
    index = getattr(store, "index", None)
    return bool(getattr(index, "exact", False)), bool(getattr(index, "lossy", False))


def _raises(
    exc: type[BaseException] | tuple[type[BaseException], ...], what: str, fn: Callable[[], object]
) -> BaseException:
    """Call ``fn``; return the exception it raised when it is an ``exc``, else fail with ``what``."""
    try:
        fn()
    except exc as err:
        return err
    except Exception as err:
        names = exc.__name__ if isinstance(exc, type) else " or ".join(e.__name__ for e in exc)
        raise AssertionError(f"{what}: raised {type(err).__name__} ({err}), expected {names}") from err
    names = exc.__name__ if isinstance(exc, type) else " or ".join(e.__name__ for e in exc)
    raise AssertionError(f"{what}: did not raise {names}")


def _assert_hits(rows: list[list[Hit]], n_queries: int, what: str) -> list[list[Hit]]:
    assert isinstance(rows, list), f"{what}: search returned {type(rows).__name__}, expected a list"
    assert len(rows) == n_queries, f"{what}: {len(rows)} result lists for {n_queries} queries"
    for row in rows:
        assert isinstance(row, list), f"{what}: a result row is {type(row).__name__}, expected a list"
        for h in row:
            assert isinstance(h, Hit), f"{what}: a hit is {type(h).__name__}, expected audiovec.stores.Hit"
            assert type(h.id) in (int, str), f"{what}: hit id {h.id!r} is {type(h.id).__name__}, not int/str"
            assert isinstance(h.score, float) and isinstance(h.distance, float), f"{what}: score/distance not float"
            assert math.isfinite(h.score) and math.isfinite(h.distance), f"{what}: non-finite score in {h}"
            assert isinstance(h.metadata, dict), f"{what}: hit metadata is {type(h.metadata).__name__}"
        scores = [h.score for h in row]
        assert all(a >= b - 1e-5 for a, b in itertools.pairwise(scores)), (
            f"{what}: hits are not sorted best first (scores {scores})"
        )
        assert len({h.id for h in row}) == len(row), f"{what}: the same id appears twice in one result list"
    return rows


SCORE_TOL = 2e-4
"""How far two scores of the same (query, record) pair may differ between kernels (relative above 1)."""


def _close(a: float, b: float, tol: float) -> bool:
    return abs(a - b) <= tol * max(1.0, abs(a), abs(b))


def assert_same_hits(
    got: list[list[Hit]], expected: list[list[Hit]], what: str = "results", tol: float = SCORE_TOL
) -> None:
    """Assert that two searches found the same hits, up to near-ties.

    Per query: as many hits; scores rank by rank within ``tol``; and where the ids differ, each id is a near-tie:
    the other list has it with a score within ``tol``, or, missing there, its score is within ``tol`` of the other
    list's last score (it and another record tied for the last place).

    Raises:
        AssertionError: A query's hits differ by more than near-ties.
    """
    assert len(got) == len(expected), f"{what}: {len(got)} result lists, expected {len(expected)}"
    for j, (a, b) in enumerate(zip(got, expected, strict=True)):
        assert len(a) == len(b), f"{what}, query {j}: {len(a)} hits, expected {len(b)}"
        for x, y in zip(a, b, strict=True):
            assert _close(x.score, y.score, tol), f"{what}, query {j}: score {x.score} where {y.score} was expected"
        for this, other in ((a, b), (b, a)):
            scores = {h.id: h.score for h in other}
            for i, h in enumerate(this):
                if h.id == other[i].id:
                    continue
                found = scores.get(h.id)
                near = found is not None and _close(h.score, found, tol)
                assert near or (found is None and _close(h.score, other[-1].score, tol)), (
                    f"{what}, query {j}: id {h.id!r} (score {h.score}) at rank {i} is not a near-tie of "
                    f"{[(x.id, x.score) for x in other]}"
                )


def _metric_truth(metric: str, q: NDArray[np.float32], x: NDArray[np.float32]) -> NDArray[np.float64]:
    """Expected score of every (query, vector) pair in float64."""
    q64, x64 = q.astype(np.float64), x.astype(np.float64)
    if metric == "cosine":
        result: NDArray[np.float64] = _unit(q64) @ _unit(x64).T  # type: ignore[arg-type]
        return result
    if metric == "ip":
        ip: NDArray[np.float64] = q64 @ x64.T
        return ip
    d2: NDArray[np.float64] = ((q64[:, None, :] - x64[None, :, :]) ** 2).sum(-1)
    return -d2


def _check_relation(metric: str, h: Hit, what: str) -> None:
    if metric == "cosine":
        assert abs(h.score + h.distance - 1.0) <= 1e-5, f"{what}: cosine distance {h.distance} != 1 - score {h.score}"
        assert -1.0 - 1e-4 <= h.score <= 1.0 + 1e-4, f"{what}: cosine score {h.score} outside [-1, 1]"
    elif metric == "ip":
        assert h.score == h.distance, f"{what}: ip score {h.score} != distance {h.distance}"
    else:
        assert h.distance >= 0.0, f"{what}: negative l2 distance {h.distance}"
        assert h.score == -h.distance, f"{what}: l2 score {h.score} != -distance {h.distance}"


# --------------------------------------------------------------------------------------------- checks
def _check_protocol(factory: StoreFactory, workdir: Path, dim: int) -> None:
    """The object satisfies the VectorStore protocol and reports its dim/metric; a new store is empty."""
    with factory(workdir / "s", dim, "cosine") as s:
        assert isinstance(s, VectorStore), f"{type(s).__name__} does not satisfy audiovec.stores.VectorStore"
        assert isinstance(s.name, str) and s.name, "name must be a non-empty string"
        assert s.dim == dim, f"dim {s.dim!r} != {dim}"
        assert s.metric == "cosine", f"metric {s.metric!r} != 'cosine'"
        assert s.id_type in (None, "int", "str"), f"id_type {s.id_type!r}"
        assert isinstance(getattr(s.index, "kind", None), str), "index config has no 'kind'"
        assert s.count() == 0, f"a new store has count() == {s.count()}"


def _check_empty_store(factory: StoreFactory, workdir: Path, dim: int) -> None:
    """An empty store searches, gets, counts and deletes without errors and finds nothing."""
    with factory(workdir / "s", dim, "cosine") as s:
        q = _rand(2, dim, 1)
        assert _assert_hits(s.search(q, k=5), 2, "empty store") == [[], []], "an empty store returned hits"
        assert s.search(q, k=5, filter=Eq("label", "x")) == [[], []], "an empty store returned filtered hits"
        assert s.search(np.zeros((0, dim), np.float32), k=5) == [], "no queries should give []"
        assert s.get([1, 2]) == [], "get on an empty store returned records"
        assert s.delete([1]) == 0, "delete on an empty store reported deletions"
        assert s.delete(filter=Eq("label", "x")) == 0, "delete(filter) on an empty store reported deletions"
        assert s.count(Eq("label", "x")) == 0, "count(filter) on an empty store is not 0"


def _check_add_search(factory: StoreFactory, workdir: Path, dim: int) -> None:
    """Batch add returns one id per vector; a stored vector finds itself; one 1-D query gives one list."""
    with factory(workdir / "s", dim, "cosine") as s:
        _, lossy = _flags(s)
        x = _rand(200, dim, 2)
        ids = s.add(x)
        assert isinstance(ids, list) and len(ids) == 200, f"add returned {type(ids).__name__} of length {len(ids)}"
        assert len(set(ids)) == 200, "generated ids are not unique"
        assert all(type(i) is int for i in ids), f"generated ids should be plain ints, got {type(ids[0]).__name__}"
        assert s.count() == 200, f"count() {s.count()} after adding 200"
        rows = _assert_hits(s.search(x[:10], k=5), 10, "search")
        for j, row in enumerate(rows):
            assert len(row) == 5, f"query {j}: {len(row)} hits for k=5 over 200 records"
            top = [h.id for h in row] if lossy else [row[0].id]
            assert ids[j] in top, f"query {j}: the stored vector itself ({ids[j]!r}) is not the top hit: {top}"
            assert set(h.id for h in row) <= set(ids), f"query {j}: hits with unknown ids"
        single = _assert_hits(s.search(x[3], k=3), 1, "1-D query")
        assert len(single[0]) == 3, "a 1-D query should give one list of k hits"


def _check_scores(factory: StoreFactory, workdir: Path, dim: int, metrics: Sequence[str]) -> None:
    """Scores are higher-is-better and distances in metric units (1-cos, ip, squared L2), matching NumPy."""
    rng = np.random.default_rng(3)
    x = _rand(120, dim, 3) * rng.uniform(0.5, 2.0, size=(120, 1)).astype(np.float32)
    q = _rand(6, dim, 4) * 1.5
    for metric in metrics:
        with factory(workdir / f"s_{metric}", dim, metric) as s:
            exact, lossy = _flags(s)
            assert s.metric == metric, f"store created with metric {metric!r} reports {s.metric!r}"
            s.add(x, ids=list(range(120)))
            rows = _assert_hits(s.search(q, k=10), len(q), metric)
            truth = _metric_truth(metric, q, x)
            for j, row in enumerate(rows):
                assert len(row) == 10, f"{metric}: {len(row)} hits for k=10"
                for h in row:
                    _check_relation(metric, h, metric)
                    assert isinstance(h.id, int)
                    expected = float(truth[j, h.id])
                    tol = (0.15 if lossy else SCORE_TOL) * max(1.0, abs(expected))
                    assert abs(h.score - expected) <= tol, (
                        f"{metric}: score of id {h.id} is {h.score}, NumPy says {expected:.6f}"
                    )
                if exact:
                    best = np.sort(truth[j])[::-1][:10]
                    got = np.array([h.score for h in row])
                    assert np.allclose(got, best, rtol=SCORE_TOL, atol=SCORE_TOL), (
                        f"{metric}: an exact index returned scores {got}, brute force gives {best}"
                    )


def _check_id_kinds(factory: StoreFactory, workdir: Path, dim: int, id_types: Sequence[str]) -> None:
    """Ids of each kind (int, str) round-trip as plain int/str; mixing kinds raises and stores nothing."""
    samples: dict[str, list[Any]] = {
        "int": [0, 7, -3, 2**40, 2**62],
        "str": ["kick.wav", "ünïcode-ид-鼓", "with space", "x" * 200, "0"],
    }
    for kind in id_types:
        ids = samples[kind]
        other = samples["str" if kind == "int" else "int"]
        x = _rand(len(ids), dim, 5)
        path = workdir / f"s_{kind}"
        with factory(path, dim, "cosine") as s:
            assert s.add(x, ids=ids) == ids, f"{kind} ids: add did not return the given ids"
            assert s.id_type == kind, f"id_type is {s.id_type!r} after adding {kind} ids"
            recs = s.get(ids)
            assert [r.id for r in recs] == ids, f"{kind} ids: get returned {[r.id for r in recs]}"
            assert all(type(r.id) is type(ids[0]) for r in recs), f"{kind} ids: get returned ids of another type"
            hits = s.search(x, k=1)
            assert all(type(row[0].id) is type(ids[0]) for row in hits), f"{kind} ids: hits have another id type"
            _raises(
                (ValueError, AudiovecError), f"{kind} store: adding {other[:1]!r}", partial(s.add, x[:1], other[:1])
            )
            mixed: list[Any] = [ids[0], other[0]] if kind == "str" else [123456, "mixed"]
            _raises((ValueError, AudiovecError), "a batch mixing int and str ids", partial(s.add, x[:2], mixed))
            assert s.count() == len(ids), f"{kind} ids: count changed to {s.count()} after rejected batches"
            gen = s.add(_rand(3, dim, 6))
            assert len(set(gen)) == 3 and not set(gen) & set(ids), f"{kind}: generated ids {gen} collide"
            assert all(type(g) is type(ids[0]) for g in gen), f"{kind} store generated ids of another type: {gen}"
        with factory(path, dim, "cosine") as s:
            assert s.id_type == kind, f"reopened store has id_type {s.id_type!r}, expected {kind!r}"
            assert [r.id for r in s.get(ids)] == ids, f"{kind} ids: not found after reopening"


def _check_get(factory: StoreFactory, workdir: Path, dim: int) -> None:
    """Get returns found records in the order asked (missing skipped), with their vectors and metadata."""
    with factory(workdir / "s", dim, "cosine") as s:
        _, lossy = _flags(s)
        x = _rand(20, dim, 7)
        s.add(x, ids=list(range(20)), metadata=[{"i": i} for i in range(20)])
        recs = s.get([5, 999, 2, 5])
        assert [r.id for r in recs] == [5, 2], f"get([5, 999, 2, 5]) returned ids {[r.id for r in recs]}"
        for r in recs:
            assert isinstance(r.id, int)
            assert r.vector.dtype == np.float32 and r.vector.shape == (dim,), (
                f"vector {r.vector.dtype} {r.vector.shape}"
            )
            want = _unit(x[r.id])
            if lossy:
                cos = float(r.vector @ want) / max(float(np.linalg.norm(r.vector)), 1e-12)
                assert cos >= 0.7, f"id {r.id}: decoded vector has cosine {cos:.3f} with the input"
            else:
                assert np.allclose(r.vector, want, atol=1e-5), f"id {r.id}: get returned another vector"
            assert r.metadata == {"i": r.id}, f"id {r.id}: metadata {r.metadata}"
        assert s.get(3)[0].id == 3, "get(3) with a single id should work"


def _check_metadata_round_trip(factory: StoreFactory, workdir: Path, dim: int) -> None:
    """Arbitrary JSON metadata comes back equal from get and search; non-JSON metadata is rejected."""
    metas: list[dict[str, Any]] = [
        {
            "path": "/data/drums/kick 01.wav",
            "label": "kick",
            "group": 3,
            "duration": 0.4375,
            "model": "clap-htsat",
            "segment": {"start": 0.0, "end": 0.5},
            "tags": ["808", "dry", 1, None, True],
            "flag": False,
            "none": None,
            "big": 2**53 + 1,
            "neg": -12.5e-7,
            "text": "quotes \" ' \\ and newlines\n\t and ünïcode 鼓",
        },
        {},
        {"label": "snare", "nested": {"a": {"b": [1, 2, {"c": "d"}]}}},
    ]
    with factory(workdir / "s", dim, "cosine") as s:
        x = _rand(3, dim, 8)
        s.add(x, ids=[1, 2, 3], metadata=metas)
        got = {r.id: r.metadata for r in s.get([1, 2, 3])}
        assert got == dict(zip([1, 2, 3], metas, strict=True)), f"metadata changed in get: {got}"
        for j, row in enumerate(s.search(x, k=1)):
            assert row[0].metadata == metas[j], f"metadata changed in search hit {j}: {row[0].metadata}"
        s.add(_rand(1, dim, 9), ids=[4])
        assert s.get([4])[0].metadata == {}, "a record added without metadata should have {}"
        bad_metas: list[Any] = [{"x": float("nan")}, {"x": {1, 2}}, {1: "non-str key"}, {"x": object()}]
        for bad in bad_metas:
            _raises((ValueError, AudiovecError), f"metadata {bad!r}", partial(s.add, _rand(1, dim, 10), [9], [bad]))
        assert s.count() == 4, f"count() {s.count()} after rejected metadata"


def _check_k_larger_than_store(factory: StoreFactory, workdir: Path, dim: int) -> None:
    """Any k above the number of records (also above MAX_K) returns every record once; k < 1 is rejected."""
    with factory(workdir / "s", dim, "l2") as s:
        s.add(_rand(5, dim, 11), ids=[10, 11, 12, 13, 14])
        for k in (50, MAX_K + 1, 10**6):
            rows = _assert_hits(s.search(_rand(3, dim, 12), k=k), 3, f"k={k} over 5 records")
            for row in rows:
                assert sorted(h.id for h in row) == [10, 11, 12, 13, 14], f"k={k} over 5 records returned {row}"
        filtered = s.search(_rand(1, dim, 12), k=MAX_K + 1, filter=In("nope", [1]))
        assert filtered == [[]], f"k={MAX_K + 1} with a filter matching nothing returned {filtered}"
        bad_k: tuple[Any, ...] = (0, -1, 2.0, True, "10")
        for bad in bad_k:
            _raises(ConfigError, f"k={bad!r}", partial(s.search, _rand(1, dim, 13), k=bad))


def _check_delete(factory: StoreFactory, workdir: Path, dim: int) -> None:
    """Delete by ids and by filter returns the number deleted; deleted records are gone everywhere."""
    with factory(workdir / "s", dim, "cosine") as s:
        x = _rand(60, dim, 14)
        labels = ["a", "b", "c"]
        s.add(x, ids=list(range(60)), metadata=[{"label": labels[i % 3]} for i in range(60)])
        assert s.delete([0, 1, 2, 999]) == 3, "delete([0, 1, 2, 999]) should report 3"
        assert s.count() == 57, f"count() {s.count()} after deleting 3 of 60"
        assert s.get([0, 1, 2]) == [], "deleted records are still returned by get"
        gone = {0, 1, 2}
        for row in s.search(x[:3], k=57):
            assert not gone & {h.id for h in row}, "a deleted record is still returned by search"
            assert len(row) == 57, f"{len(row)} hits for k=57 over 57 records"
        assert s.delete([0, 1]) == 0, "deleting already deleted ids should report 0"
        n_b = sum(1 for i in range(3, 60) if i % 3 == 1)
        assert s.delete(filter=Eq("label", "b")) == n_b, f"delete(filter=label=='b') should report {n_b}"
        assert s.count() == 57 - n_b and s.count(Eq("label", "b")) == 0, "records matching the filter remain"
        for row in s.search(x[:5], k=10):
            assert all(h.metadata["label"] != "b" for h in row), "a record deleted by filter is still found"
        _raises((ValueError, AudiovecError), "delete() with neither ids nor filter", lambda: s.delete())
        _raises((ValueError, AudiovecError), "delete() with both", lambda: s.delete([3], filter=Eq("label", "a")))


def _check_upsert(factory: StoreFactory, workdir: Path, dim: int) -> None:
    """Upsert replaces vector and metadata of existing ids and inserts new ones."""
    with factory(workdir / "s", dim, "cosine") as s:
        _, lossy = _flags(s)
        x = _rand(30, dim, 15)
        s.add(x, ids=list(range(30)), metadata=[{"v": 1} for _ in range(30)])
        new = _rand(2, dim, 16)
        assert s.upsert(new, ids=[5, 100], metadata=[{"v": 2}, {"v": 3}]) == [5, 100], "upsert returned other ids"
        assert s.count() == 31, f"count() {s.count()} after upserting 1 existing + 1 new id into 30"
        r5 = s.get([5])[0]
        assert r5.metadata == {"v": 2}, f"upsert did not replace the metadata: {r5.metadata}"
        if not lossy:
            assert np.allclose(r5.vector, _unit(new[0]), atol=1e-5), "upsert did not replace the vector"
        top = s.search(new[0], k=3)[0]
        assert top[0].id == 5 or (lossy and 5 in [h.id for h in top]), f"the upserted vector does not find id 5: {top}"
        old_hits = [h for h in s.search(x[5], k=31)[0] if h.id == 5]
        assert len(old_hits) == 1, "id 5 should appear exactly once among all records"
        expected = float(_unit(x[5]) @ _unit(new[0]))
        if not lossy:
            assert abs(old_hits[0].score - expected) < 1e-4, (
                f"searching the old vector still scores id 5 as {old_hits[0].score} (new vector gives {expected:.4f})"
            )
        s.upsert(new[1], ids=[100])
        assert s.get([100])[0].metadata == {}, "upsert without metadata should leave {}"
        _raises(DuplicateIdError, "upsert with an id repeated in the batch", lambda: s.upsert(x[:2], ids=[7, 7]))
        _raises((ValueError, AudiovecError), "upsert without ids", partial(s.upsert, x[:1], None))  # type: ignore[arg-type]
        assert s.count() == 31, f"count() {s.count()} after rejected upserts"


def _check_duplicate_ids(factory: StoreFactory, workdir: Path, dim: int) -> None:
    """Add with a taken or repeated id raises DuplicateIdError and stores nothing from the batch."""
    with factory(workdir / "s", dim, "cosine") as s:
        x = _rand(10, dim, 17)
        s.add(x, ids=list(range(10)))
        _raises(DuplicateIdError, "add with an existing id", lambda: s.add(_rand(3, dim, 18), ids=[10, 11, 5]))
        assert s.count() == 10, f"count() {s.count()}: part of a rejected batch was stored"
        assert s.get([10, 11]) == [], "new ids of a rejected batch were stored"
        _raises(DuplicateIdError, "add with an id repeated in the batch", lambda: s.add(_rand(2, dim, 19), [20, 20]))
        assert s.count() == 10 and s.get([20]) == [], "a batch with repeated ids stored something"
        assert s.add(_rand(2, dim, 20), ids=[10, 11]) == [10, 11], "the store is unusable after a rejected batch"
        assert s.count() == 12


def _check_wrong_dimension(factory: StoreFactory, workdir: Path, dim: int) -> None:
    """Vectors or queries of the wrong width raise DimensionMismatchError; nothing is stored."""
    with factory(workdir / "s", dim, "cosine") as s:
        s.add(_rand(3, dim, 21))
        _raises(DimensionMismatchError, f"add {dim + 1}-d vectors", lambda: s.add(_rand(2, dim + 1, 22)))
        _raises(DimensionMismatchError, f"search {dim - 1}-d queries", lambda: s.search(_rand(1, dim - 1, 23)))
        _raises(DimensionMismatchError, "upsert wrong width", lambda: s.upsert(_rand(1, dim + 2, 24), ids=[0]))
        _raises(InvalidVectorError, "a 3-D array", lambda: s.add(np.zeros((2, 2, dim), np.float32)))
        assert s.count() == 3, f"count() {s.count()} after rejected vectors"


def _check_invalid_vectors(factory: StoreFactory, workdir: Path, dim: int) -> None:
    """NaN/Inf vectors and queries, zero vectors in a cosine store, and non-numbers raise InvalidVectorError."""
    with factory(workdir / "s", dim, "cosine") as s:
        s.add(_rand(3, dim, 25))
        for bad_value in (np.nan, np.inf, -np.inf):
            batch = _rand(4, dim, 26)
            batch[2, 1] = bad_value
            _raises(InvalidVectorError, f"a batch with {bad_value} in row 2", partial(s.add, batch))
            _raises(InvalidVectorError, f"a {bad_value} query", partial(s.search, batch[2:3]))
        _raises(InvalidVectorError, "a zero vector in a cosine store", lambda: s.add(np.zeros((1, dim), np.float32)))
        _raises(InvalidVectorError, "strings as vectors", lambda: s.add(np.array([["a"] * dim])))
        _raises(InvalidVectorError, "float64 overflowing float32", lambda: s.add(np.full((1, dim), 1e300)))
        assert s.count() == 3, f"count() {s.count()} after rejected vectors"
        assert len(s.add(_rand(2, dim, 27).astype(np.float64))) == 2, "float64 input should be accepted"


def _filter_metadata(n: int) -> list[dict[str, Any]]:
    labels = ["kick", "snare", "hat", "tom"]
    out = []
    for i in range(n):
        m: dict[str, Any] = {
            "label": labels[i % 4],
            "duration": (i % 17) * 0.25,
            "flag": i % 2 == 0,
            "path": f"/x/{i}.wav",
        }
        if i % 5:
            m["group"] = i % 10
        out.append(m)
    return out


def _assert_filtered(
    s: VectorStore,
    q: NDArray[np.float32],
    f: FilterLike,
    expected: set[int],
    truth: NDArray[np.float64],
    exact: bool,
    when: str = "",
) -> None:
    """count(f) and search(filter=f) agree with the ``expected`` matching ids (best ones when ``exact``)."""
    what = f"filter {f}{when}"
    assert s.count(f) == len(expected), f"count({f}){when} = {s.count(f)}, the reference says {len(expected)}"
    rows = _assert_hits(s.search(q, k=10, filter=f), len(q), what)
    for j, row in enumerate(rows):
        got = [h.id for h in row]
        assert len(got) == min(10, len(expected)), (
            f"{what}: {len(got)} hits, expected {min(10, len(expected))} ({len(expected)} records match)"
        )
        assert set(got) <= expected, f"{what}: hits {sorted(set(got) - expected)} do not match"
        if exact and expected:
            ranked = sorted(expected, key=lambda i: -truth[j, i])[:10]
            best = np.array([truth[j, i] for i in ranked])
            assert np.allclose([h.score for h in row], best, atol=SCORE_TOL), (
                f"{what}: an exact index did not return the best matching records"
            )


def _check_filters(factory: StoreFactory, workdir: Path, dim: int) -> None:
    """Filtered search returns min(k, matches) hits, all matching; count(filter) agrees with the reference.

    Among the filters: one matching nothing, one matching everything, one matching a single record; and the
    same filters again after deletes and an upsert.
    """
    n = 400
    metas = _filter_metadata(n)
    filters: list[FilterLike] = [
        Eq("label", "kick"),
        In("group", [1, 2]),
        Range("duration", ge=1.0, lt=2.5),
        Eq("label", "snare") & Range("duration", gt=3),
        Or(Eq("flag", True), In("label", ["tom"])),
        Not(Eq("label", "kick")),
        Not(In("group", [1, 2, 3])),
        {"label": "hat", "duration": {"gte": 2}},
        {"$or": [{"group": 4}, {"path": "/x/3.wav"}]},
        Eq("path", "/x/17.wav"),
        Eq("label", "nope"),
        Range("duration", ge=0),
        Eq("flag", 1),
        Eq("group", 1.0),
        Range("label", gt=0),
    ]
    x = _rand(n, dim, 28)
    q = _rand(3, dim, 29)
    with factory(workdir / "s", dim, "cosine") as s:
        exact, _ = _flags(s)
        s.add(x, ids=list(range(n)), metadata=metas)
        truth = _metric_truth("cosine", q, x)
        for f in filters:
            pred = compile_filter(f)
            _assert_filtered(s, q, f, {i for i in range(n) if pred(metas[i])}, truth, exact)
        # every third record deleted, record 5 replaced: filters see the writes
        assert s.delete([i for i in range(0, n, 3)]) == len(range(0, n, 3))
        live = {i: metas[i] for i in range(n) if i % 3}
        live[5] = {**metas[5], "label": "solo"}
        x[5] = _rand(1, dim, 30)[0]
        s.upsert(x[5:6], ids=[5], metadata=[live[5]])
        truth = _metric_truth("cosine", q, x)
        for f in [*filters, Eq("label", "solo"), Eq("path", "/x/3.wav")]:
            pred = compile_filter(f)
            expected = {i for i, m in live.items() if pred(m)}
            _assert_filtered(s, q, f, expected, truth, exact, " after deletes and an upsert")


def _check_persistence(factory: StoreFactory, workdir: Path, dim: int) -> None:
    """Close and reopen find everything (after adds, deletes and upserts); mismatched dim/metric raise."""
    path = workdir / "s"
    x = _rand(100, dim, 30)
    metas = _filter_metadata(100)
    q = _rand(5, dim, 31)
    s = factory(path, dim, "l2")
    s.add(x, ids=list(range(100)), metadata=metas)
    s.delete([0, 1, 2])
    s.delete(filter=Eq("path", "/x/50.wav"))
    s.upsert(x[3:5] * 2.0, ids=[3, 200], metadata=[{"label": "up"}, {"label": "new"}])
    before = s.search(q, k=10)
    records = {r.id: (r.vector, r.metadata) for r in s.get(list(range(300)))}
    count = s.count()
    s.close()
    with factory(path, dim, "l2") as s2:
        assert s2.count() == count, f"count() {s2.count()} after reopening, {count} before"
        again = {r.id: (r.vector, r.metadata) for r in s2.get(list(range(300)))}
        assert again.keys() == records.keys(), f"ids differ after reopening: {sorted(again.keys() ^ records.keys())}"
        for i, (v, m) in records.items():
            assert np.allclose(again[i][0], v, atol=1e-5), f"id {i}: vector changed after reopening"
            assert again[i][1] == m, f"id {i}: metadata changed after reopening"
        assert_same_hits(s2.search(q, k=10), before, "search results after reopening")
        assert s2.count(Eq("label", "up")) == 1, "filters do not work after reopening"
        gen = s2.add(_rand(2, dim, 32))
        assert not set(gen) & set(records), f"generated ids {gen} collide with stored ids after reopening"
    with factory(path, dim, "l2") as s3:
        assert s3.count() == count + 2, f"count() {s3.count()}: records added after reopening were lost"
    _raises(
        DimensionMismatchError, f"reopening a {dim}-d store with dim={dim + 1}", lambda: factory(path, dim + 1, "l2")
    )
    _raises(ConfigError, "reopening an l2 store with metric='ip'", lambda: factory(path, dim, "ip"))


def _check_close(factory: StoreFactory, workdir: Path, dim: int) -> None:
    """A with block closes (and saves) the store; using a closed store raises StoreError; closing twice is fine."""
    path = workdir / "s"
    with factory(path, dim, "cosine") as s:
        s.add(_rand(4, dim, 33), ids=["a", "b", "c", "d"])
    _raises(StoreError, "count() on a closed store", lambda: s.count())
    _raises(StoreError, "search on a closed store", lambda: s.search(_rand(1, dim, 34)))
    _raises(StoreError, "add on a closed store", lambda: s.add(_rand(1, dim, 35)))
    s.close()
    with factory(path, dim, "cosine") as s2:
        assert s2.count() == 4, f"records added inside a with block were not saved (count {s2.count()})"


def _check_search_params(factory: StoreFactory, workdir: Path, dim: int) -> None:
    """Per-query search parameters are accepted as a dict or SearchParams; unknown or invalid ones raise."""
    with factory(workdir / "s", dim, "cosine") as s:
        x = _rand(300, dim, 36)
        s.add(x)
        for params in ({"ef_search": 16, "nprobe": 2}, SearchParams(ef_search=200, nprobe=64), None):
            rows = _assert_hits(s.search(x[:2], k=5, params=params), 2, f"params={params}")
            assert all(len(r) == 5 for r in rows), f"params={params}: fewer than k hits"
        _raises(ConfigError, "unknown search parameter", lambda: s.search(x[:1], params={"bogus": 1}))
        _raises(ConfigError, "ef_search=0", lambda: s.search(x[:1], params={"ef_search": 0}))


def _check_large_batch(factory: StoreFactory, workdir: Path, dim: int) -> None:
    """One add call takes 10,000 vectors (batches, not one call per vector)."""
    with factory(workdir / "s", dim, "ip") as s:
        x = _rand(10_000, dim, 37)
        ids = s.add(x, metadata=[{"i": i} for i in range(10_000)])
        assert len(ids) == 10_000 and s.count() == 10_000, f"{len(ids)} ids, count() {s.count()}"
        assert len(s.search(x[:3], k=10)[0]) == 10


def _nested(op: str, depth: int) -> dict[str, Any]:
    """A dict filter nesting ``op`` (``$and``/``$or``/``$not``) ``depth`` times around one equality."""
    f: dict[str, Any] = {"label": "a"}
    for _ in range(depth):
        f = {op: f} if op == "$not" else {op: [f]}
    return f


def _check_hostile_ids(factory: StoreFactory, workdir: Path, dim: int) -> None:
    """Ids of the wrong type, kind, shape or range raise InvalidIdError from add, upsert, get and delete."""
    bad: list[Any] = [
        [1.5],
        [float("nan")],
        [True],
        [np.bool_(False)],
        [2**63],
        [-(2**63) - 1],
        [10**5000],  # too long for repr: the message must still be made
        [b"ab"],
        [None],
        [[1]],
        [(1, 2)],
        ["a"],  # a str id in an int store
        [np.float64(3.0)],
        np.array([[3]]),
        np.array([3.0]),
        np.array([b"x"]),
        b"x",
        1.5,
    ]
    with factory(workdir / "s", dim, "cosine") as s:
        s.add(_rand(2, dim, 40), ids=[1, 2])
        one = _rand(1, dim, 41)
        for ids in bad:
            _raises(InvalidIdError, f"add(ids={short_repr(ids)})", partial(s.add, one, ids))
            _raises(InvalidIdError, f"upsert(ids={short_repr(ids)})", partial(s.upsert, one, ids))
            _raises(InvalidIdError, f"get({short_repr(ids)})", partial(s.get, ids))
            _raises(InvalidIdError, f"delete({short_repr(ids)})", partial(s.delete, ids))
        unordered: Any = {3}
        _raises(InvalidIdError, "add(ids={3}): one id per vector needs an order", partial(s.add, one, unordered))
        _raises(InvalidIdError, "upsert(ids=None)", partial(s.upsert, one, None))  # type: ignore[arg-type]
        _raises(InvalidIdError, "get(None)", partial(s.get, None))  # type: ignore[arg-type]
        _raises(InvalidIdError, "add with more ids than vectors", partial(s.add, one, [7, 8]))
        assert s.count() == 2 and [r.id for r in s.get([1, 2])] == [1, 2], "a rejected call changed the store"
    with factory(workdir / "t", dim, "cosine") as s:
        s.add(_rand(1, dim, 42), ids=["a"])
        for ids in ([""], ["x" * 513], ["é" * 257], ["\ud800"], ["a\x00b"], [7]):
            _raises(InvalidIdError, f"str store: add(ids={short_repr(ids)})", partial(s.add, _rand(1, dim, 43), ids))
            _raises(InvalidIdError, f"str store: get({short_repr(ids)})", partial(s.get, ids))
        assert s.count() == 1, f"count() {s.count()} after rejected str ids"


def _check_hostile_metadata(factory: StoreFactory, workdir: Path, dim: int) -> None:
    """Metadata that is not a JSON object within the limits raises InvalidMetadataError and stores nothing."""
    cycle: dict[str, Any] = {"label": "loop"}
    cycle["self"] = cycle
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(MAX_METADATA_DEPTH + 5):
        node["x"] = {}
        node = node["x"]
    bad: list[Any] = [
        {"x": float("nan")},
        {"x": -float("inf")},
        {"x": np.float32("nan")},
        {"x": [1, float("nan")]},
        {1: "non-str key"},
        {("t",): 1},
        {None: 1},
        cycle,
        [cycle],  # not a mapping
        deep,
        {"x": "y" * (MAX_METADATA_BYTES + 1)},
        {"x": "é" * (MAX_METADATA_BYTES // 2 + 1)},  # few characters, too many bytes
        {"x": np.zeros(MAX_METADATA_BYTES, np.float32)},
        {f"k{i}": i for i in range(MAX_METADATA_BYTES // 4)},
        {"x": {1, 2}},
        {"x": b"bytes"},
        {"x": object()},
        {"x": 1 + 2j},
        {"x": "\ud800"},
        {"\udc80": 1},
        {"x": ["ok", {"y": "\ud83d"}]},
        {"x": 2**63},
        {"x": [-(2**63) - 1]},
        {"x": 10**5000},  # too long for repr: the message must still be made
        {"x": np.uint64(2**64 - 1)},
        "not a mapping",
        42,
    ]
    with factory(workdir / "s", dim, "cosine") as s:
        s.add(_rand(1, dim, 44), ids=[1], metadata=[{"keep": True}])
        one = _rand(1, dim, 45)
        for meta in bad:
            what = f"metadata {short_repr(meta)}"
            _raises(InvalidMetadataError, f"add with {what}", partial(s.add, one, [2], [meta]))
            _raises(InvalidMetadataError, f"upsert with {what}", partial(s.upsert, one, [1], [meta]))
        _raises(InvalidMetadataError, "two metadata records for one vector", partial(s.add, one, [3], [{}, {}]))
        _raises(InvalidMetadataError, "metadata as a string", partial(s.add, one, [3], "text"))  # type: ignore[arg-type]
        err = _raises(InvalidMetadataError, "a metadata cycle", partial(s.add, one, [3], [cycle]))
        assert "itself" in str(err), f"a metadata cycle is reported as {err}, not as a record containing itself"
        assert s.count() == 1, f"count() {s.count()} after rejected metadata"
        assert s.get([1])[0].metadata == {"keep": True}, "a rejected upsert changed the stored metadata"


def _check_filter_limits(factory: StoreFactory, workdir: Path, dim: int) -> None:
    """Filters beyond the documented limits raise FilterTooLargeError from search, count and delete."""
    too_large: list[tuple[str, Any]] = [
        (f"$and nested {MAX_FILTER_DEPTH + 1} deep", _nested("$and", MAX_FILTER_DEPTH + 1)),
        ("$or nested 1000 deep", _nested("$or", 1000)),
        ("$not nested 5000 deep", _nested("$not", 5000)),
        (f"$or of {MAX_FILTER_TERMS + 1} terms", {"$or": [{"label": f"x{i}"} for i in range(MAX_FILTER_TERMS + 1)]}),
        (f"$in of {MAX_FILTER_VALUES + 1} values", {"group": {"$in": list(range(MAX_FILTER_VALUES + 1))}}),
        (
            f"$nin lists of {MAX_FILTER_VALUES + 2} values",
            {"a": {"$nin": list(range(MAX_FILTER_VALUES // 2 + 1))}, "b": list(range(MAX_FILTER_VALUES // 2 + 1))},
        ),
        (f"a string of {MAX_FILTER_BYTES + 1} bytes", {"label": "x" * (MAX_FILTER_BYTES + 1)}),
    ]
    cycle: dict[str, Any] = {"label": "a"}
    cycle["$or"] = [cycle]
    malformed: list[tuple[str, Any]] = [
        ("a filter containing itself", cycle),
        ("a list as a value in a list", {"label": [[1]]}),
        ("bytes", {"label": b"x"}),
        ("NaN", {"duration": {"gt": float("nan")}}),
        ("an int beyond int64", {"group": 2**64}),
        ("a 5000-digit int", {"group": 10**5000}),
        ("a lone surrogate", {"label": "\ud800"}),
        ("a non-str field", {1: "a"}),
        ("an unknown operator", {"label": {"$regex": "a"}}),
        ("$and of a mapping", {"$and": {"label": "a"}}),
        ("an empty $or", {"$or": []}),
        ("None", {"label": None}),
    ]
    with factory(workdir / "s", dim, "cosine") as s:
        s.add(_rand(4, dim, 46), ids=[1, 2, 3, 4], metadata=[{"label": "a", "group": i} for i in range(4)])
        q = _rand(1, dim, 47)
        for what, f in too_large:
            _raises(FilterTooLargeError, f"search with {what}", partial(s.search, q, 3, f))
            _raises(FilterTooLargeError, f"count with {what}", partial(s.count, f))
            _raises(FilterTooLargeError, f"delete with {what}", partial(s.delete, filter=f))
        for what, f in malformed:
            _raises(FilterError, f"search with {what}", partial(s.search, q, 3, f))
            _raises(FilterError, f"count with {what}", partial(s.count, f))
        assert s.count() == 4, f"count() {s.count()} after rejected filters"


def _check_wide_filters(factory: StoreFactory, workdir: Path, dim: int) -> None:
    """Wide $in/$nin lists (10,000 to 20,000 values), a wide $or and the deepest filter allowed work exactly."""
    n = 5  # few records: Milvus Lite evaluates an $in as one comparison per value and record
    metas = [{"label": f"l{i % 4}", "group": i, "tag": f"t{i}", "flag": i % 2 == 0} for i in range(n)]
    deepest: dict[str, Any] = {"tag": {"$in": ["t1", "t2", "t3", 5, True]}}
    for level in range(MAX_FILTER_DEPTH):  # alternating $and/$or, each beside one comparison
        if level % 2:
            deepest = {"$or": [deepest, {"group": -level}]}
        else:
            deepest = {"$and": [deepest, {"group": {"$gte": 0, "$lt": n - level % 3}}]}
    filters: list[tuple[str, FilterLike]] = [
        ("$in of 20,002 ints", In("group", [*range(100, 20100), 3, 5])),
        ("$in of 10,001 strings", {"tag": {"$in": [f"x{i}" for i in range(10000)] + ["t1"]}}),
        ("$nin of 10,002 ints", {"group": {"$nin": [*range(1000, 11000), 1, 2]}}),
        ("$or of 1000 equalities of one field", Or(*[Eq("label", f"l{i}") for i in range(2, 1002)])),
        ("$or of 300 fields", Or(*[Eq(f"f{i}", i) for i in range(300)], Eq("group", 4))),
        ("$and of 500 negations", And(*[Not(Eq(f"f{i}", i)) for i in range(499)], Not(Eq("group", 4)))),
        (f"$and/$or nested {MAX_FILTER_DEPTH} deep", deepest),
    ]
    x = _rand(n, dim, 48)
    q = _rand(2, dim, 49)
    with factory(workdir / "s", dim, "cosine") as s:
        exact, _ = _flags(s)
        s.add(x, ids=list(range(n)), metadata=metas)
        truth = _metric_truth("cosine", q, x)
        for what, f in filters:
            pred = compile_filter(f)
            expected = {i for i in range(n) if pred(metas[i])}
            assert 0 < len(expected) < n, f"{what}: the check's filter should match some records, not all"
            _assert_filtered(s, q, f, expected, truth, exact, f" ({what})")


def _check_huge_vectors(factory: StoreFactory, workdir: Path, dim: int, metrics: Sequence[str]) -> None:
    """A cosine store takes any finite non-zero vector (3e38, 1e-30); ip/l2 refuse vectors longer than the limit."""
    if "cosine" in metrics:
        x = np.zeros((4, dim), np.float32)
        x[0] = 3e38  # its squared norm overflows float32
        x[1, :2] = (1e-30, -1e-30)  # its squared norm underflows
        x[2, 0] = 1e-45  # the smallest float32
        x[3, 1] = 1.0
        with factory(workdir / "cos", dim, "cosine") as s:
            _, lossy = _flags(s)
            assert s.add(x, ids=[0, 1, 2, 3]) == [0, 1, 2, 3]
            if not lossy:
                for r in s.get([0, 1, 2]):
                    assert np.allclose(r.vector, _unit(x[int(r.id)].astype(np.float64)), atol=1e-5), (
                        f"id {r.id}: stored {r.vector[:4]}, expected the unit vector of the input"
                    )
            hits = _assert_hits(s.search(x[:3], k=4), 3, "huge and tiny queries")
            for j, row in enumerate(hits):
                assert j in [h.id for h in row[:2]], f"the vector {j} (huge or tiny) does not find itself: {row}"
            _raises(InvalidVectorError, "a zero vector", partial(s.add, np.zeros((1, dim), np.float32)))
    for metric in [m for m in metrics if m != "cosine"]:
        long = np.zeros((1, dim), np.float32)
        long[0, 0] = MAX_VECTOR_NORM * 4
        fine = np.full((1, dim), MAX_VECTOR_NORM / (2 * math.sqrt(dim)), np.float32)
        with factory(workdir / metric, dim, metric) as s:
            s.add(_rand(3, dim, 50), ids=[1, 2, 3])
            _raises(InvalidVectorError, f"{metric}: a vector of length {long[0, 0]:g}", partial(s.add, long, [4]))
            _raises(InvalidVectorError, f"{metric}: a query of length {long[0, 0]:g}", partial(s.search, long))
            _raises(InvalidVectorError, f"{metric}: 3e38", partial(s.add, np.full((1, dim), 3e38, np.float32), [4]))
            assert s.add(fine, ids=[5]) == [5], f"{metric}: a vector of length {MAX_VECTOR_NORM / 2:g} was refused"
            _assert_hits(s.search(np.concatenate([fine, _rand(1, dim, 51)]), k=4), 2, f"{metric}: long vectors")
            assert s.count() == 4, f"{metric}: count() {s.count()} after rejected vectors"


def _make_recall_check(min_recall: float, n: int, n_queries: int) -> Callable[[StoreFactory, Path, int], None]:
    def check_recall(factory: StoreFactory, workdir: Path, dim: int) -> None:
        base, queries = clustered_vectors(n, dim, n_queries=n_queries, seed=38)
        ref = ExactStore(dim=dim, metric="cosine")
        ref.add(base)
        truth = [[h.id for h in row] for row in ref.search(queries, k=10)]
        with factory(workdir / "s", dim, "cosine") as s:
            for start in range(0, n, 1000):
                s.add(base[start : start + 1000])
            train = getattr(s, "train", None)
            if callable(train) and not getattr(s, "is_trained", True):
                train()
            found = [[h.id for h in row] for row in s.search(queries, k=10)]
        recall = recall_at_k(found, truth, 10)
        assert recall >= min_recall, f"recall@10 = {recall:.3f} against ExactStore, below {min_recall}"

    check_recall.__doc__ = f"recall@10 against ExactStore on {n} clustered vectors is at least {min_recall}."
    return check_recall


def store_checks(
    *,
    dim: int = 16,
    metrics: Sequence[str] = ("cosine", "ip", "l2"),
    id_types: Sequence[str] = ("int", "str"),
    min_recall: float = 0.95,
    recall_n: int = 5000,
    recall_queries: int = 200,
) -> list[tuple[str, StoreCheck]]:
    """Every conformance check as ``(name, check)``; ``check(factory, workdir)`` raises ``AssertionError``.

    Args:
        dim: Vector dimension used by the checks (at least 4).
        metrics: Metrics the backend supports (the score check runs for each).
        id_types: Id kinds the backend supports.
        min_recall: Lowest acceptable recall@10 against :class:`~audiovec.stores.ExactStore`.
        recall_n: Size of the clustered data set of the recall check.
        recall_queries: Queries of the recall check.

    Raises:
        ValueError: ``dim`` below 4 or an unknown metric or id type.
    """
    if dim < 4:
        raise ValueError(f"dim must be at least 4, got {dim}")
    if not set(metrics) <= {"cosine", "ip", "l2"} or not set(id_types) <= {"int", "str"}:
        raise ValueError(f"unknown metric or id type in {metrics!r} / {id_types!r}")
    recall = _make_recall_check(min_recall, recall_n, recall_queries)
    table: list[tuple[str, Callable[..., None], tuple[Any, ...]]] = [
        ("protocol", _check_protocol, ()),
        ("empty_store", _check_empty_store, ()),
        ("add_search", _check_add_search, ()),
        ("scores", _check_scores, (tuple(metrics),)),
        ("id_kinds", _check_id_kinds, (tuple(id_types),)),
        ("get", _check_get, ()),
        ("metadata_round_trip", _check_metadata_round_trip, ()),
        ("k_larger_than_store", _check_k_larger_than_store, ()),
        ("delete", _check_delete, ()),
        ("upsert", _check_upsert, ()),
        ("duplicate_ids", _check_duplicate_ids, ()),
        ("wrong_dimension", _check_wrong_dimension, ()),
        ("invalid_vectors", _check_invalid_vectors, ()),
        ("huge_vectors", _check_huge_vectors, (tuple(metrics),)),
        ("hostile_ids", _check_hostile_ids, ()),
        ("hostile_metadata", _check_hostile_metadata, ()),
        ("filters", _check_filters, ()),
        ("filter_limits", _check_filter_limits, ()),
        ("wide_filters", _check_wide_filters, ()),
        ("persistence", _check_persistence, ()),
        ("close", _check_close, ()),
        ("search_params", _check_search_params, ()),
        ("large_batch", _check_large_batch, ()),
        ("recall", recall, ()),
    ]

    def bind(fn: Callable[..., None], extra: tuple[Any, ...]) -> StoreCheck:
        def check(factory: StoreFactory, workdir: Path) -> None:
            fn(factory, Path(workdir), dim, *extra)

        check.__name__ = check.__qualname__ = fn.__name__.lstrip("_")
        check.__doc__ = fn.__doc__
        return check

    return [(name, bind(fn, extra)) for name, fn, extra in table]


def check_vector_store(
    factory: StoreFactory,
    *,
    dim: int = 16,
    metrics: Sequence[str] = ("cosine", "ip", "l2"),
    id_types: Sequence[str] = ("int", "str"),
    min_recall: float = 0.95,
    skip: Sequence[str] = (),
    workdir: str | Path | None = None,
) -> list[CheckResult]:
    """Run every conformance check on the stores made by ``factory``.

    Args:
        factory: ``factory(path, dim, metric)`` creates the store at ``path`` or reopens it (see module docs).
        dim: Vector dimension used by the checks.
        metrics: Metrics the backend supports.
        id_types: Id kinds the backend supports.
        min_recall: Lowest acceptable recall@10 against ExactStore on clustered data.
        skip: Names of checks to leave out (see :func:`store_checks`).
        workdir: Scratch directory (a fresh sub-directory per check); default: a temporary directory.

    Returns:
        One :class:`CheckResult` per check run.

    Raises:
        AssertionError: At least one check failed; the message lists each failure.
    """
    with tempfile.TemporaryDirectory(prefix="audiovec-store-checks-") as tmp:
        root = Path(workdir) if workdir is not None else Path(tmp)

        def in_scratch(name: str, check: StoreCheck) -> None:
            scratch = root / name
            scratch.mkdir(parents=True, exist_ok=True)
            check(factory, scratch)

        checks = store_checks(dim=dim, metrics=metrics, id_types=id_types, min_recall=min_recall)
        return run_checks(
            [(name, partial(in_scratch, name, check)) for name, check in checks if name not in skip],
            f"{factory!r} failed {{n}} store conformance check(s)",
        )

"""The vector-store conformance kit, run on every built-in backend and index, and on deliberately broken stores."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from audiovec.errors import AudiovecError
from audiovec.stores import ExactStore, FaissStore, Hit, get_store
from audiovec.stores.records import RawHit
from audiovec.testing import CheckResult, check_vector_store, clustered_vectors, recall_at_k, store_checks
from audiovec.testing._store_checks import assert_same_hits


def _faiss(index: dict[str, Any]):
    def factory(path: Path, dim: int, metric: str) -> FaissStore:
        return FaissStore(path, dim=dim, metric=metric, index=index)

    factory.__qualname__ = f"FaissStore[{index['kind']}]"
    return factory


FACTORIES = {
    "exact": lambda path, dim, metric: ExactStore(path, dim=dim, metric=metric),
    "faiss-flat": _faiss({"kind": "flat"}),
    "faiss-hnsw": _faiss({"kind": "hnsw", "m": 16, "ef_construction": 64, "ef_search": 32}),
    # small train_size: the IVF kinds train early, so most checks run on a trained index, not on the buffer
    "faiss-ivf": _faiss({"kind": "ivf", "nlist": 16, "nprobe": 8, "train_size": 200}),
    "faiss-ivf_pq": _faiss({"kind": "ivf_pq", "nlist": 16, "nprobe": 8, "pq_m": 16, "train_size": 2500}),
    "faiss-ivf_sq8": _faiss({"kind": "ivf_sq8", "nlist": 16, "nprobe": 16, "train_size": 400}),
}
CHECKS = store_checks()


@pytest.mark.parametrize("backend", list(FACTORIES))
@pytest.mark.parametrize(("name", "check"), CHECKS, ids=[name for name, _ in CHECKS])
def test_builtin_backends_conform(backend, name, check, tmp_path):
    check(FACTORIES[backend], tmp_path)


def _in_directory(name: str, **params: Any):
    def factory(path: Path, dim: int, metric: str):
        return get_store(name, directory=path, dim=dim, metric=metric, **params)

    factory.__qualname__ = f"get_store({name!r}, directory=...)"
    return factory


@pytest.mark.parametrize("factory", [_in_directory("exact"), _in_directory("faiss", index="hnsw")], ids=str)
@pytest.mark.parametrize("name", ["persistence", "close", "id_kinds"])
def test_stores_opened_in_a_directory_conform(factory, name, tmp_path):
    dict(CHECKS)[name](factory, tmp_path)


def test_ivf_checks_ran_on_trained_indexes(tmp_path):
    # guards the factory settings above: with a large train_size the IVF checks would only test the buffer
    with FACTORIES["faiss-ivf"](tmp_path / "s", 16, "cosine") as s:
        s.add(np.random.default_rng(0).standard_normal((200, 16)).astype(np.float32))
        assert s.is_trained


def test_check_vector_store_reports_results(tmp_path):
    results = check_vector_store(FACTORIES["exact"], workdir=tmp_path, skip=("large_batch",))
    assert all(isinstance(r, CheckResult) and r.passed for r in results)
    assert {r.name for r in results} == {name for name, _ in CHECKS} - {"large_batch"}


def test_store_checks_arguments():
    assert [name for name, _ in store_checks(metrics=("l2",), id_types=("str",))] == [name for name, _ in CHECKS]
    with pytest.raises(ValueError, match="dim"):
        store_checks(dim=2)
    with pytest.raises(ValueError, match="unknown"):
        store_checks(metrics=("hamming",))


def test_clustered_vectors_and_recall():
    base, queries = clustered_vectors(1000, 32, n_queries=10, seed=1)
    again, _ = clustered_vectors(1000, 32, n_queries=10, seed=1)
    assert base.shape == (1000, 32) and queries.shape == (10, 32) and base.dtype == np.float32
    assert np.array_equal(base, again)
    assert not np.array_equal(base, clustered_vectors(1000, 32, seed=2)[0])
    # structure: a point's nearest neighbour is much closer than a random point
    d = ((base[:50, None] - base[None]) ** 2).sum(-1)
    np.fill_diagonal(d[:, :50], np.inf)
    assert np.median(d.min(1)) < 0.5 * np.median(d)
    assert recall_at_k([[1, 2, 3]], [[1, 2, 4]], k=3) == pytest.approx(2 / 3)
    assert math.isnan(recall_at_k([], []))


def test_assert_same_hits_allows_near_ties_only():
    def row(*pairs):
        return [Hit(i, score, 1.0 - score) for i, score in pairs]

    a = [row((1, 0.9), (2, 0.8), (3, 0.79995), (4, 0.5))]
    assert_same_hits(a, [row((1, 0.9), (2, 0.8), (3, 0.79995), (4, 0.5))])
    assert_same_hits(a, [row((1, 0.9), (3, 0.8), (2, 0.79995), (4, 0.5))])  # a near-tie in the middle swapped
    assert_same_hits(a, [row((1, 0.9), (2, 0.8), (3, 0.79995), (9, 0.49995))])  # a near-tie for the last place
    assert_same_hits(a, [row((1, 0.9), (2, 0.8), (3, 0.79995), (4, 0.45))], tol=0.1)  # a looser tolerance
    for other, message in [
        (row((2, 0.9), (1, 0.8), (3, 0.79995), (4, 0.5)), "not a near-tie"),  # ids swapped, scores far apart
        (row((1, 0.9), (2, 0.8), (9, 0.79995), (4, 0.5)), "not a near-tie"),  # 3 is missing, and was not last
        (row((1, 0.9), (2, 0.8), (3, 0.79995), (4, 0.4)), "score 0.5 where 0.4"),
        (row((1, 0.9), (2, 0.8), (3, 0.79995)), "4 hits, expected 3"),
    ]:
        with pytest.raises(AssertionError, match=message):
            assert_same_hits(a, [other])
    with pytest.raises(AssertionError, match="1 result lists, expected 2"):
        assert_same_hits(a, [*a, *a])


# ------------------------------------------------------------------------------------------- broken stores
def _check(name: str):
    return dict(CHECKS)[name]


def _run_one(name: str, factory, tmp_path) -> str:
    with pytest.raises(AssertionError) as info:
        _check(name)(factory, tmp_path)
    return str(info.value)


class NoDuplicateCheck(ExactStore):
    """Forgets to look for existing ids: add stores a second record under a taken id."""

    def _existing(self, ids):
        return []


class DistanceAsScore(ExactStore):
    """Reports the raw L2 distance as the score (lower = better), the classic sign mistake."""

    def _hits(self, rows: list[list[RawHit]]) -> list[list[Hit]]:
        hits = super()._hits(rows)
        if self.metric != "l2":
            return hits
        return [[Hit(h.id, h.distance, h.distance, h.metadata) for h in row] for row in hits]


class IgnoresFilter(ExactStore):
    """Drops the filter on the floor."""

    def _search(self, queries, k, flt, params):
        return super()._search(queries, k, None, params)


class AcceptsNaN(ExactStore):
    """Skips vector validation."""

    def _prepare(self, vectors, what="vectors"):
        return np.asarray(vectors, dtype=np.float32).reshape(-1, self.dim)


class RandomANN(ExactStore):
    """An 'approximate' index that returns k random records."""

    def _search(self, queries, k, flt, params):
        rng = np.random.default_rng(0)
        out = []
        for _ in range(len(queries)):
            rows = rng.choice(self._n, size=min(k, self._n), replace=False)
            out.append([(self._ids[r], 0.0, self._meta_text[r]) for r in sorted(rows)])
        return out


class MetadataStringifier(ExactStore):
    """Stores metadata values as strings (a common shortcut with string-only metadata backends)."""

    def _get(self, ids):
        return [(i, v, {k: str(x) for k, x in json.loads(m).items()}) for i, v, m in super()._get(ids)]


class LeaksDeleted(ExactStore):
    """delete reports success but search still returns the deleted records."""

    def _delete(self, ids):
        return len([i for i in ids if i in self._row])


def _forgetful(path, dim, metric):
    """Ignores the path: every 'reopen' is a new, empty in-memory store."""
    return ExactStore(dim=dim, metric=metric)


@pytest.mark.parametrize(
    ("check", "factory", "message"),
    [
        ("duplicate_ids", lambda p, d, m: NoDuplicateCheck(p, dim=d, metric=m), "did not raise DuplicateIdError"),
        ("scores", lambda p, d, m: DistanceAsScore(p, dim=d, metric=m), "l2"),
        ("filters", lambda p, d, m: IgnoresFilter(p, dim=d, metric=m), "filter"),
        ("invalid_vectors", lambda p, d, m: AcceptsNaN(p, dim=d, metric=m), "did not raise InvalidVectorError"),
        ("recall", lambda p, d, m: RandomANN(p, dim=d, metric=m), "recall@10 = 0.0"),
        ("metadata_round_trip", lambda p, d, m: MetadataStringifier(p, dim=d, metric=m), "metadata changed in get"),
        ("delete", lambda p, d, m: LeaksDeleted(p, dim=d, metric=m), "count() 60 after deleting 3 of 60"),
        ("persistence", _forgetful, "after reopening"),
        ("close", _forgetful, "were not saved"),
    ],
)
def test_broken_store_fails_the_right_check(check, factory, message, tmp_path):
    assert message in _run_one(check, factory, tmp_path)


def test_broken_store_passes_unrelated_checks(tmp_path):
    # the checks are specific: a store that only ignores filters still passes the id and delete checks
    factory = lambda p, d, m: IgnoresFilter(p, dim=d, metric=m)  # noqa: E731
    for name in ("add_search", "duplicate_ids", "upsert", "persistence"):
        _check(name)(factory, tmp_path / name)


def test_check_vector_store_lists_every_failure(tmp_path):
    with pytest.raises(AssertionError) as info:
        check_vector_store(lambda p, d, m: NoDuplicateCheck(p, dim=d, metric=m), workdir=tmp_path, skip=("recall",))
    text = str(info.value)
    assert "failed" in text and "- duplicate_ids:" in text
    assert "- add_search:" not in text and "- filters:" not in text


def test_a_crashing_store_is_reported_not_raised(tmp_path):
    class Crashes(ExactStore):
        def _count(self, flt):
            raise RuntimeError("boom")

    with pytest.raises(AssertionError, match=r"- protocol: RuntimeError: boom"):
        check_vector_store(lambda p, d, m: Crashes(p, dim=d, metric=m), workdir=tmp_path, skip=("recall",))


def test_typed_errors_are_audiovec_errors(tmp_path):
    s = ExactStore(dim=4)
    with pytest.raises(AudiovecError):
        s.add(np.zeros((1, 5), np.float32))

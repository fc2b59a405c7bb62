"""Hostile inputs to the vector stores: every one gets its documented typed error, or works as documented.

The tables below are run on every local backend (ExactStore, FaissStore flat and HNSW, Milvus Lite): invalid ids
raise InvalidIdError, invalid metadata InvalidMetadataError, malformed filters FilterError and filters beyond the
limits FilterTooLargeError (both 400 in the service), a bad ``k`` ConfigError and bad vectors InvalidVectorError or
DimensionMismatchError; wide filters, huge ``k`` and huge or tiny cosine vectors work. Then the pieces one by one:
the filter limits, the SQLite and Milvus translations of the largest filters allowed, ``k`` and vector lengths.
"""

from __future__ import annotations

import math
import re
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from audiovec.errors import (
    ConfigError,
    DimensionMismatchError,
    FilterError,
    FilterTooLargeError,
    InvalidIdError,
    InvalidMetadataError,
    InvalidVectorError,
)
from audiovec.stores import And, Eq, In, Not, Or, Range, get_store
from audiovec.stores._milvus_expr import SERVER_MAX_DEPTH, lite_filter_expr, server_filter_expr
from audiovec.stores.filters import (
    MAX_FILTER_BYTES,
    MAX_FILTER_DEPTH,
    MAX_FILTER_TERMS,
    MAX_FILTER_VALUES,
    parse_filter,
    to_sqlite,
)
from audiovec.stores.records import MAX_K, MAX_VECTOR_NORM
from audiovec.stores.validation import cap_k, check_k, prepare_metadata, prepare_vectors
from vectors import rand

DIM = 8
N = 6
METAS: list[dict[str, Any]] = [
    {"label": f"l{i % 3}", "group": i, "tag": f"t{i}", "flag": i % 2 == 0, "d": i * 0.5} for i in range(N)
]


# ------------------------------------------------------------------------------------------- reference semantics
def reference(f: Any, meta: dict[str, Any]) -> bool:
    """The documented filter semantics, written out plainly (independent of the library's evaluator)."""
    missing = object()

    def same(stored: object, value: object) -> bool:
        if isinstance(value, bool):
            return type(stored) is bool and stored is value
        if isinstance(value, str):
            return type(stored) is str and stored == value
        return type(stored) in (int, float) and stored == value

    if isinstance(f, Eq):
        return same(meta.get(f.field, missing), f.value)
    if isinstance(f, In):
        return any(same(meta.get(f.field, missing), v) for v in f.values)
    if isinstance(f, Range):
        v = meta.get(f.field, missing)
        if type(v) not in (int, float):
            return False
        return all({">": v > b, ">=": v >= b, "<": v < b, "<=": v <= b}[op] for op, b in f.bounds())  # type: ignore[operator]
    if isinstance(f, And):
        return all(reference(c, meta) for c in f.filters)
    if isinstance(f, Or):
        return any(reference(c, meta) for c in f.filters)
    return not reference(f.filter, meta)


def nested(op: str, depth: int, leaf: dict[str, Any] | None = None) -> dict[str, Any]:
    """A dict filter nesting ``op`` ``depth`` times around ``leaf`` (built without recursion)."""
    f: dict[str, Any] = leaf or {"label": "l1"}
    for _ in range(depth):
        f = {op: f} if op == "$not" else {op: [f]}
    return f


def alternating(depth: int, width: int = 2, leaf: Any = None) -> Any:
    """And/Or alternating ``depth`` levels deep, each level beside ``width - 1`` comparisons."""
    f = leaf if leaf is not None else In("tag", ["t1", "t2", "t3", 1, True, 0.5])
    for level in range(depth):
        fields = [f"f{(level * 7 + j) % 40}" for j in range(width - 1)]
        if level % 2 == 0:  # And: beside comparisons most records pass
            f = And(f, *[In(x, [0, 1, "a", True, 0.5]) for x in fields])
        else:  # Or: beside comparisons few records pass
            f = Or(f, *[Eq(x, 2) for x in fields])
    return f


# ------------------------------------------------------------------------------------------- stores
BACKENDS = ["exact", "faiss-flat", "faiss-hnsw", "milvus-lite"]


def _make(backend: str, directory: Path, metric: str = "cosine") -> Any:
    if backend == "exact":
        return get_store("exact", dim=DIM, metric=metric)
    if backend.startswith("faiss"):
        return get_store("faiss", dim=DIM, metric=metric, index=backend.split("-")[1])
    pytest.importorskip("pymilvus")
    return get_store("milvus", directory=directory, dim=DIM, metric=metric, index="flat")


@pytest.fixture(scope="module", params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A cosine store of N records with int ids 0..N-1 and METAS, shared by the read-only hostile calls."""
    s = _make(request.param, tmp_path_factory.mktemp(request.param))
    s.add(rand(N, DIM, 1), ids=list(range(N)), metadata=METAS)
    yield s
    s.close()


Case = tuple[str, Callable[[Any], object], "type[Exception] | Callable[[Any, object], None]"]


def run_cases(store: Any, cases: list[Case]) -> None:
    """Run every case; each must raise its typed error (or pass its check) and leave the store unchanged."""
    failures = []
    for name, call, expected in cases:
        try:
            result = call(store)
        except Exception as err:
            if not (isinstance(expected, type) and isinstance(err, expected)):
                failures.append(f"{name}: {type(err).__name__}: {str(err)[:200]}")
            elif len(str(err)) > 600:
                failures.append(f"{name}: a {len(str(err))}-character message")
            continue
        if isinstance(expected, type):
            failures.append(f"{name}: no error, expected {expected.__name__}")
        else:
            try:
                expected(store, result)
            except AssertionError as err:
                failures.append(f"{name}: {err}")
    assert store.count() == N, f"the hostile calls changed the store: {store.count()} records"
    assert not failures, f"{len(failures)} of {len(cases)} hostile calls misbehaved:\n" + "\n".join(failures)


def _q() -> np.ndarray:
    return rand(1, DIM, 2)


ONE = rand(1, DIM, 3)

ID_CASES: list[Case] = [
    ("add ids=[1.5]", lambda s: s.add(ONE, ids=[1.5]), InvalidIdError),
    ("add ids=[nan]", lambda s: s.add(ONE, ids=[float("nan")]), InvalidIdError),
    ("add ids=[True]", lambda s: s.add(ONE, ids=[True]), InvalidIdError),
    ("add ids=[2**64]", lambda s: s.add(ONE, ids=[2**64]), InvalidIdError),
    ("add ids=2**64", lambda s: s.add(ONE, ids=2**64), InvalidIdError),
    ("add ids=[10**5000]", lambda s: s.add(ONE, ids=[10**5000]), InvalidIdError),
    ("add ids=[b'x']", lambda s: s.add(ONE, ids=[b"x"]), InvalidIdError),
    ("add ids=b'x'", lambda s: s.add(ONE, ids=b"x"), InvalidIdError),
    ("add ids=[None]", lambda s: s.add(ONE, ids=[None]), InvalidIdError),
    ("add ids=[[1]]", lambda s: s.add(ONE, ids=[[1]]), InvalidIdError),
    ("add ids={7} (no order)", lambda s: s.add(ONE, ids={7}), InvalidIdError),
    ("add ids=float array", lambda s: s.add(ONE, ids=np.array([7.0])), InvalidIdError),
    ("add ids=2-D array", lambda s: s.add(ONE, ids=np.array([[7]])), InvalidIdError),
    ("add ids=['\\ud800']", lambda s: s.add(ONE, ids=["\ud800"]), InvalidIdError),
    ("add ids=['x' * 10**6]", lambda s: s.add(ONE, ids=["x" * 10**6]), InvalidIdError),
    ("add 2 ids for 1 vector", lambda s: s.add(ONE, ids=[7, 8]), InvalidIdError),
    ("upsert ids=None", lambda s: s.upsert(ONE, ids=None), InvalidIdError),
    ("upsert ids=[-(2**63) - 1]", lambda s: s.upsert(ONE, ids=[-(2**63) - 1]), InvalidIdError),
    ("get [1.5]", lambda s: s.get([1.5]), InvalidIdError),
    ("get [2**70]", lambda s: s.get([2**70]), InvalidIdError),
    ("get b'x'", lambda s: s.get(b"x"), InvalidIdError),
    ("get None", lambda s: s.get(None), InvalidIdError),
    ("get [[1]]", lambda s: s.get([[1]]), InvalidIdError),
    ("get ['a'] from an int store", lambda s: s.get(["a"]), InvalidIdError),
    ("delete [10**5000]", lambda s: s.delete([10**5000]), InvalidIdError),
    ("delete [None]", lambda s: s.delete([None]), InvalidIdError),
    ("delete 1.5", lambda s: s.delete(1.5), InvalidIdError),
]


def _cycle() -> dict[str, Any]:
    d: dict[str, Any] = {"a": 1}
    d["self"] = d
    return d


def _deep(levels: int, as_list: bool = False) -> Any:
    v: Any = 1
    for _ in range(levels):
        v = [v] if as_list else {"x": v}
    return {"x": v}


def _add_meta(meta: Any) -> Callable[[Any], object]:
    return lambda s: s.add(ONE, ids=[100], metadata=[meta])


METADATA_CASES: list[Case] = [
    ("NaN", _add_meta({"a": float("nan")}), InvalidMetadataError),
    ("-inf", _add_meta({"a": -math.inf}), InvalidMetadataError),
    ("numpy NaN in a list", _add_meta({"a": [np.float32("nan")]}), InvalidMetadataError),
    ("a non-str key", _add_meta({1: "a"}), InvalidMetadataError),
    ("a tuple key", _add_meta({(1, 2): "a"}), InvalidMetadataError),
    ("a reference cycle", _add_meta(_cycle()), InvalidMetadataError),
    ("a 10 MB string", _add_meta({"a": "x" * 10_000_000}), InvalidMetadataError),
    ("dicts nested 1000 deep", _add_meta(_deep(1000)), InvalidMetadataError),
    ("lists nested 1000 deep", _add_meta(_deep(1000, as_list=True)), InvalidMetadataError),
    ("a set", _add_meta({"a": {1, 2}}), InvalidMetadataError),
    ("bytes", _add_meta({"a": b"x" * 10_000_000}), InvalidMetadataError),
    ("an object", _add_meta({"a": object()}), InvalidMetadataError),
    ("a complex number", _add_meta({"a": 1j}), InvalidMetadataError),
    ("a lone surrogate value", _add_meta({"a": "\ud800"}), InvalidMetadataError),
    ("a lone surrogate key", _add_meta({"\udc80": 1}), InvalidMetadataError),
    ("2**64", _add_meta({"a": 2**64}), InvalidMetadataError),
    ("10**5000", _add_meta({"a": 10**5000}), InvalidMetadataError),
    ("numpy uint64 max", _add_meta({"a": np.uint64(2**64 - 1)}), InvalidMetadataError),
    ("an array of 10**7 values", _add_meta({"a": np.zeros(10**7, np.float32)}), InvalidMetadataError),
    ("a list of 10**6 values", _add_meta({"a": [0] * 10**6}), InvalidMetadataError),
    ("a str instead of a mapping", _add_meta("label=kick"), InvalidMetadataError),
    ("a list instead of a mapping", _add_meta([("label", "kick")]), InvalidMetadataError),
    ("two records for one vector", lambda s: s.add(ONE, ids=[100], metadata=[{}, {}]), InvalidMetadataError),
    ("upsert with NaN", lambda s: s.upsert(ONE, ids=[0], metadata=[{"a": math.nan}]), InvalidMetadataError),
]


def _agrees(f: Any) -> Callable[[Any, object], None]:
    """A check that search(filter=f) found exactly the records the reference semantics match."""
    node = parse_filter(f)
    expected = {i for i, m in enumerate(METAS) if reference(node, m)}

    def check(store: Any, rows: object) -> None:
        got = {h.id for h in rows[0]}  # type: ignore[index]
        assert got == expected, f"found {sorted(got)}, the reference matches {sorted(expected)}"
        assert store.count(f) == len(expected), f"count {store.count(f)}, the reference matches {len(expected)}"

    return check


def _search(f: Any) -> Callable[[Any], object]:
    return lambda s: s.search(_q(), k=N, filter=f)


_or_1000 = {"$or": [{"tag": f"t{i}"} for i in range(0, 2000, 2)]}
_in_10002 = {"group": {"$in": [*range(1000, 11000), 2, 4]}}
_nin_10000 = {"tag": {"$nin": [f"t{i}" for i in range(3, 10003)]}}
_cyclic: dict[str, Any] = {"label": "l1"}
_cyclic["$or"] = [_cyclic]

FILTER_CASES: list[Case] = [
    ("$or of 1000 terms", _search(_or_1000), _agrees(_or_1000)),
    ("$in of 10,002 values", _search(_in_10002), _agrees(_in_10002)),
    ("$nin of 10,000 strings", _search(_nin_10000), _agrees(_nin_10000)),
    ("$and/$or nested 32 deep", _search(alternating(MAX_FILTER_DEPTH)), _agrees(alternating(MAX_FILTER_DEPTH))),
    ("$or of 1025 terms", _search({"$or": [{"tag": f"t{i}"} for i in range(1025)]}), FilterTooLargeError),
    ("$and nested 90 deep", _search(nested("$and", 90)), FilterTooLargeError),
    ("$not nested 300 deep", _search(nested("$not", 300)), FilterTooLargeError),
    ("$or nested 100,000 deep", _search(nested("$or", 100_000)), FilterTooLargeError),
    ("count, $not nested 300 deep", lambda s: s.count(nested("$not", 300)), FilterTooLargeError),
    ("delete, $and nested 90 deep", lambda s: s.delete(filter=nested("$and", 90)), FilterTooLargeError),
    ("$in of 100,001 values", _search({"group": {"$in": list(range(100_001))}}), FilterTooLargeError),
    ("a 2 MB string", _search({"label": "x" * 2_000_000}), FilterTooLargeError),
    ("a filter containing itself", _search(_cyclic), FilterError),
    ("bytes", _search({"label": b"x"}), FilterError),
    ("a nested list value", _search({"label": [[1]]}), FilterError),
    ("a dict in a list", _search({"label": [{"a": 1}]}), FilterError),
    ("10**5000", _search({"group": 10**5000}), FilterError),
    ("a lone surrogate", _search({"label": "\ud800"}), FilterError),
    ("a NaN bound", _search({"d": {"$gt": math.nan}}), FilterError),
    ("a field with a space", _search({"a b": 1}), FilterError),
    ("a 10 MB field name", _search({"x" * 10_000_000: 1}), FilterError),
    ("a non-str field", _search({1: 1}), FilterError),
    ("an unknown operator", _search({"label": {"$where": "1"}}), FilterError),
    ("None as a value", _search({"label": None}), FilterError),
    ("$and of a mapping", _search({"$and": {"label": "l1"}}), FilterError),
]


def _all_records(store: Any, rows: object) -> None:
    assert sorted(h.id for h in rows[0]) == list(range(N)), f"got {rows}"  # type: ignore[index]


K_CASES: list[Case] = [
    ("k=100,000", lambda s: s.search(_q(), k=100_000), _all_records),
    (f"k=MAX_K + 1 ({MAX_K + 1})", lambda s: s.search(_q(), k=MAX_K + 1), _all_records),
    ("k=2**70", lambda s: s.search(_q(), k=2**70), _all_records),
    ("k=numpy int64", lambda s: s.search(_q(), k=np.int64(10**9)), _all_records),
    ("k=0", lambda s: s.search(_q(), k=0), ConfigError),
    ("k=-1", lambda s: s.search(_q(), k=-1), ConfigError),
    ("k=1.0", lambda s: s.search(_q(), k=1.0), ConfigError),
    ("k='5'", lambda s: s.search(_q(), k="5"), ConfigError),
    ("k=True", lambda s: s.search(_q(), k=True), ConfigError),
    ("k=10**5000", lambda s: s.search(_q(), k=10**5000), _all_records),
]


def _finds_itself(store: Any, rows: object) -> None:
    hits = rows[0]  # type: ignore[index]
    assert hits and all(math.isfinite(h.score) for h in hits), f"hits {hits}"


def _vec(*values: float) -> np.ndarray:
    v = np.zeros(DIM, np.float32)
    v[: len(values)] = values
    return v


VECTOR_CASES: list[Case] = [
    ("a 3e38 query", lambda s: s.search(np.full(DIM, 3e38, np.float32), k=2), _finds_itself),
    ("a 1e-30 query", lambda s: s.search(np.full(DIM, 1e-30, np.float32), k=2), _finds_itself),
    ("the smallest float32 as a query", lambda s: s.search(_vec(1e-45), k=2), _finds_itself),
    ("a zero query", lambda s: s.search(np.zeros(DIM, np.float32)), InvalidVectorError),
    ("a NaN query", lambda s: s.search(_vec(math.nan)), InvalidVectorError),
    ("an inf vector", lambda s: s.add(_vec(math.inf)[None]), InvalidVectorError),
    ("1e300 in float64", lambda s: s.add(np.full((1, DIM), 1e300)), InvalidVectorError),
    ("complex vectors", lambda s: s.add(np.ones((1, DIM), complex)), InvalidVectorError),
    ("object vectors", lambda s: s.add(np.array([[object()] * DIM])), InvalidVectorError),
    ("ragged vectors", lambda s: s.add([[1.0] * DIM, [1.0]]), InvalidVectorError),
    ("a string as vectors", lambda s: s.add("abcdefgh"), InvalidVectorError),
    ("3-D vectors", lambda s: s.add(np.ones((1, 1, DIM), np.float32)), InvalidVectorError),
    ("wrong dimension", lambda s: s.add(np.ones((1, DIM + 1), np.float32)), DimensionMismatchError),
]

TABLES = {"ids": ID_CASES, "metadata": METADATA_CASES, "filters": FILTER_CASES, "k": K_CASES, "vectors": VECTOR_CASES}


@pytest.mark.parametrize("table", list(TABLES))
def test_hostile_calls_get_their_typed_errors(store: Any, table: str) -> None:
    run_cases(store, TABLES[table])


def test_milvus_lite_returns_every_record_for_a_huge_k(tmp_path: Path) -> None:
    with _make("milvus-lite", tmp_path) as s:
        s.add(rand(N, DIM, 5), ids=list(range(N)))
        assert sorted(h.id for h in s.search(_q(), k=2**70)[0]) == list(range(N))


def test_huge_cosine_vectors_are_stored_as_unit_vectors(tmp_path: Path) -> None:
    x = np.stack([np.full(DIM, 3e38, np.float32), _vec(1e-30, -1e-30), _vec(1e-45), _vec(0, 1)])
    for backend in ("exact", "faiss-flat"):
        with _make(backend, tmp_path / backend) as s:
            s.add(x, ids=[0, 1, 2, 3])
            got = {r.id: r.vector for r in s.get([0, 1, 2])}
            assert np.allclose(got[0], np.full(DIM, 1 / math.sqrt(DIM)), atol=1e-6)
            assert np.allclose(got[1], _vec(0.5**0.5, -(0.5**0.5)), atol=1e-6)
            assert np.allclose(got[2], _vec(1.0), atol=1e-6)
            assert [h.id for h in s.search(x[0], k=1)[0]] == [0]


@pytest.mark.parametrize("metric", ["ip", "l2"])
@pytest.mark.parametrize("backend", ["exact", "faiss-flat"])
def test_vectors_too_long_for_float32_scores_are_refused(backend: str, metric: str, tmp_path: Path) -> None:
    with _make(backend, tmp_path, metric) as s:
        s.add(rand(3, DIM, 4), ids=[1, 2, 3])
        with pytest.raises(InvalidVectorError, match=r"longer than 1e\+18 \(first at row 1, length 3e\+38\)"):
            s.add(np.stack([_vec(1), np.full(DIM, 3e38 / math.sqrt(DIM), np.float32)]), ids=[4, 5])
        with pytest.raises(InvalidVectorError, match="longer than"):
            s.search(_vec(2e18))
        longest = _vec(MAX_VECTOR_NORM)
        assert s.add(longest[None], ids=[6]) == [6]
        hits = s.search(np.stack([longest, -longest]), k=4)  # scores of about 1e36, still finite
        assert all(math.isfinite(h.score) and math.isfinite(h.distance) for row in hits for h in row)
        assert s.count() == 4


# ------------------------------------------------------------------------------------------- filter limits
def test_limits_are_exported_with_their_documented_values() -> None:
    assert (MAX_FILTER_DEPTH, MAX_FILTER_TERMS, MAX_FILTER_VALUES, MAX_FILTER_BYTES) == (32, 1024, 100_000, 1 << 20)
    assert issubclass(FilterTooLargeError, FilterError)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (nested("$and", MAX_FILTER_DEPTH + 1), r"nested at least 33 levels deep.*at most 32 levels"),
        (nested("$not", 10**6), r"nested at least 33 levels deep.*at most 32 levels"),
        ({"$or": [{"a": i} for i in range(2000)]}, r"at least 2000 comparisons; at most 1024"),
        ({"a": list(range(60_000)), "b": list(range(60_000))}, r"at least 120000 values.*at most 100000"),
        ({"a": "é" * 600_000}, r"take 1200001 bytes \(UTF-8\); at most 1048576"),
    ],
)
def test_filter_beyond_a_limit_names_the_limit_and_what_it_found(spec: Any, message: str) -> None:
    with pytest.raises(FilterTooLargeError, match=message):
        parse_filter(spec)


def test_nodes_check_the_limits_as_they_are_built() -> None:
    f: Any = Eq("a", 1)
    for _ in range(MAX_FILTER_DEPTH):
        f = Not(f)
    with pytest.raises(FilterTooLargeError, match=r"nested 33 levels deep"):
        Not(f)
    with pytest.raises(FilterTooLargeError, match=r"1025 comparisons"):
        Or(*[Eq("a", i) for i in range(1025)])
    with pytest.raises(FilterTooLargeError, match=r"100001 values"):
        Or(In("a", range(50_000)), In("b", range(50_000)), Eq("c", 1))
    assert len(In("a", range(MAX_FILTER_VALUES)).values) == MAX_FILTER_VALUES


def test_chained_operators_build_one_flat_node() -> None:
    f = Eq("a", 0)
    g = Eq("a", 0)
    for i in range(1, 1000):
        f = f & Eq("a", i)
        g = g | Eq("a", i)
    assert isinstance(f, And) and len(f.filters) == 1000 and all(isinstance(c, Eq) for c in f.filters)
    assert isinstance(g, Or) and len(g.filters) == 1000
    assert (Eq("a", 1) & Eq("b", 2)) == And(Eq("a", 1), Eq("b", 2))


def test_a_mapping_that_contains_itself_is_a_filter_error() -> None:
    f: dict[str, Any] = {"label": "a"}
    f["$and"] = [{"$not": f}]
    with pytest.raises(FilterError, match="contains itself"):
        parse_filter(f)
    shared = {"label": "a"}  # the same mapping twice is no cycle
    assert parse_filter({"$or": [shared, shared]}) == Or(Eq("label", "a"), Eq("label", "a"))


def test_wide_filters_within_the_limits_parse() -> None:
    assert len(parse_filter({"g": {"$in": list(range(MAX_FILTER_VALUES))}}).values) == MAX_FILTER_VALUES  # type: ignore[union-attr]
    wide = parse_filter({"$or": [{"tag": f"t{i}"} for i in range(MAX_FILTER_TERMS)]})
    assert isinstance(wide, Or) and len(wide.filters) == MAX_FILTER_TERMS
    assert isinstance(parse_filter(nested("$and", MAX_FILTER_DEPTH)), And)


# ------------------------------------------------------------------------------------------- SQLite translation
def _deep_not() -> Any:
    f: Any = Eq("f1", 1)
    for _ in range(MAX_FILTER_DEPTH):
        f = Not(f)
    return f


def _and_not() -> Any:
    f: Any = In("f2", [0, "a", True])
    for level in range(MAX_FILTER_DEPTH):
        f = Not(f) if level % 2 else And(f, Eq(f"f{level}", level % 3))
    return f


SHAPES: dict[str, Callable[[], Any]] = {
    "alternating And/Or 32 deep": lambda: alternating(MAX_FILTER_DEPTH),
    "Not nested 32 deep": _deep_not,
    "And/Not alternating 32 deep": _and_not,
    "Or of 1024 fields": lambda: Or(*[Eq(f"f{i % 40}", i % 3) for i in range(MAX_FILTER_TERMS)]),
    "Or of 1024 equalities of one field": lambda: Or(*[Eq("f3", i) for i in range(MAX_FILTER_TERMS)]),
    "And of 1024 negations": lambda: And(*[Not(Eq(f"f{i % 40}", i)) for i in range(MAX_FILTER_TERMS)]),
    "31 levels of 32 operands": lambda: alternating(31, width=32),
    "32 Ands of 32 in an Or": lambda: Or(
        *[And(*[Eq(f"f{(i + j) % 40}", j % 3) for j in range(32)]) for i in range(32)]
    ),
    "In of 100,000 mixed values": lambda: In("f0", [*range(50_000), *(f"s{i}" for i in range(49_998)), True, 0.5]),
}


@pytest.fixture(scope="module")
def table() -> tuple[sqlite3.Connection, list[dict[str, Any]]]:
    import json
    import random

    rng = random.Random(7)
    metas = [
        {f"f{j}": rng.choice([0, 1, 2, "a", True, False, 0.5, None, [1]]) for j in rng.sample(range(40), 12)}
        for _ in range(300)
    ]
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE r (i INTEGER PRIMARY KEY, meta TEXT)")
    db.executemany("INSERT INTO r VALUES (?, ?)", [(i, json.dumps(m)) for i, m in enumerate(metas)])
    return db, metas


def test_sqlite_takes_every_filter_up_to_the_limits(table: Any) -> None:
    db, metas = table
    for name, make in SHAPES.items():
        f = make()
        rows = 40 if isinstance(f, In) else len(metas)  # the plain reference compares values one by one
        sql, params = to_sqlite(f)
        got = {i for (i,) in db.execute(f"SELECT i FROM r WHERE i < ? AND {sql}", [rows, *params])}
        assert got == {i for i, m in enumerate(metas[:rows]) if reference(f, m)}, name


# ------------------------------------------------------------------------------------------- Milvus translation
def _longest_chain(expr: str) -> int:
    """The most operands joined by and/or at one parenthesis level (what the server nests one node per)."""
    depth, counts, best = 0, {0: 1}, 1
    for token in re.findall(r'"(?:[^"\\]|\\.)*"|[()]|\b(?:and|or)\b', expr):
        if token == "(":
            depth += 1
            counts[depth] = 1
        elif token == ")":
            best = max(best, counts.pop(depth))
            depth -= 1
        elif token in ("and", "or"):
            counts[depth] += 1
    return max(best, *counts.values())


def test_server_expressions_group_long_chains() -> None:
    wide = Or(*[Eq(f"f{i % 40}", i) for i in range(MAX_FILTER_TERMS)])
    assert _longest_chain(server_filter_expr(wide)) <= 4
    assert _longest_chain(server_filter_expr(Or(Eq("a", 1), Eq("b", 2), Eq("c", 3)))) == 3  # short ones unchanged
    assert server_filter_expr(alternating(MAX_FILTER_DEPTH)).count("(") > MAX_FILTER_DEPTH  # the deepest filter renders


def test_server_expressions_too_deep_for_the_server_raise_filter_too_large() -> None:
    with pytest.raises(FilterTooLargeError, match=rf"nests \d+ levels .* at most {SERVER_MAX_DEPTH}"):
        server_filter_expr(alternating(31, width=32))


def test_milvus_lite_parses_every_filter_up_to_the_limits_and_never_sees_a_deeper_one() -> None:
    parser = pytest.importorskip("milvus_lite.search.filter")
    for name, make in SHAPES.items():
        if not name.startswith("In of"):
            parser.parse_expr(lite_filter_expr(make()))  # its recursive parser must not run out of stack
    with pytest.raises(FilterTooLargeError):
        lite_filter_expr(parse_filter(nested("$or", 100)))


def test_milvus_lite_evaluates_wide_in_and_nin_lists(tmp_path: Path) -> None:
    with _make("milvus-lite", tmp_path) as s:
        s.add(rand(N, DIM, 5), ids=list(range(N)), metadata=METAS)
        f = {"tag": {"$in": [f"x{i}" for i in range(17_000)] + ["t2"]}, "group": {"$nin": list(range(100, 10_100))}}
        assert [h.id for h in s.search(_q(), k=N, filter=f)[0]] == [2]


# ------------------------------------------------------------------------------------------- k, ids, metadata
def test_k_has_no_upper_bound_and_cap_k_serves_top_k_limited_backends() -> None:
    assert check_k(10**30) == 10**30
    with pytest.raises(ConfigError, match="at least 1"):
        check_k(0)
    calls: list[int] = []

    def matching(n: int) -> Callable[[], int]:
        return lambda: calls.append(n) or n  # type: ignore[func-returns-value]

    assert cap_k(10, MAX_K, matching(50), "a Milvus search") == 10 and calls == []
    assert cap_k(100_000, MAX_K, matching(50), "a Milvus search") == MAX_K
    with pytest.raises(ConfigError, match=r"k=100000 asks for more than 16384 hits.*and 20000 records match"):
        cap_k(100_000, MAX_K, matching(20_000), "a Milvus search")


def test_messages_about_huge_values_stay_short() -> None:
    for meta, pattern in [
        ({"a": b"x" * 10**7}, "bytes"),
        ({"a": 10**5000}, "16610-bit integer"),
        ({"a": [object()] * 10}, "object"),
        ({"k" * 10**6: float("nan")}, "not valid JSON"),
    ]:
        with pytest.raises(InvalidMetadataError, match=pattern) as err:
            prepare_metadata([meta], 1)
        assert len(str(err.value)) < 300
    with pytest.raises(FilterError) as ferr:
        parse_filter({"x" * 10**7: 1})
    assert len(str(ferr.value)) < 300


def test_a_metadata_cycle_is_named_as_one() -> None:
    with pytest.raises(InvalidMetadataError, match=r"metadata\[0\]\.self: contains itself"):
        prepare_metadata([_cycle()], 1)


def test_an_overflowing_norm_is_not_reported_as_zero() -> None:
    out = prepare_vectors(np.array([[3e38, 3e38], [1e-30, 0.0]], np.float32), 2, normalize=True)
    assert np.allclose(out, [[0.5**0.5, 0.5**0.5], [1.0, 0.0]])
    with pytest.raises(InvalidVectorError, match=r"zero norm.*row 1"):
        prepare_vectors(np.array([[3e38, 0.0], [0.0, 0.0]], np.float32), 2, normalize=True)

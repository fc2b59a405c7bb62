"""The filter language: construction, dict form, reference semantics, Milvus and SQLite translations."""

from __future__ import annotations

import json
import random
import sqlite3
from typing import Any

import numpy as np
import pytest

from audiovec.errors import FilterError, FilterTooLargeError
from audiovec.stores._milvus_expr import lite_filter_expr, milvus_expr, server_filter_expr
from audiovec.stores.filters import (
    And,
    Eq,
    In,
    Not,
    Or,
    Range,
    compile_filter,
    filter_fields,
    filter_key,
    matches,
    parse_filter,
    to_dict,
    to_milvus_expr,
    to_sqlite,
)

# ------------------------------------------------------------------------------------------- construction


@pytest.mark.parametrize(
    "field",
    ["", "1abc", "a-b", "a.b", "a b", 'label"] or 1==1 or x["', "x" * 65, "ü", "$meta", "a]", None, 3],
)
def test_fields_must_be_identifiers(field):
    with pytest.raises(FilterError, match="identifier"):
        Eq(field, 1)
    with pytest.raises(FilterError):
        Range(field, ge=1)


def test_valid_fields():
    assert Eq("_x9", 1).field == "_x9"
    assert Eq("A" * 64, 1).field == "A" * 64


@pytest.mark.parametrize(
    "value", [None, [1], {"a": 1}, b"x", float("nan"), float("inf"), 2**63, -(2**63) - 1, object()]
)
def test_eq_rejects_bad_values(value):
    with pytest.raises(FilterError):
        Eq("x", value)


def test_eq_rejects_lone_surrogates():
    with pytest.raises(FilterError, match="Unicode"):
        Eq("x", "\ud800")


def test_numpy_scalars_become_python_values():
    f = Eq("x", np.float32(0.5))
    assert type(f.value) is float and f.value == 0.5
    assert type(Eq("x", np.int64(3)).value) is int
    assert Eq("x", np.bool_(True)).value is True
    assert type(Range("x", lt=np.float64(2.0)).lt) is float


def test_in_validation():
    assert In("x", ["a", 1]).values == ("a", 1)
    assert In("x", (v for v in [1, 2])).values == (1, 2)
    with pytest.raises(FilterError, match="empty"):
        In("x", [])
    with pytest.raises(FilterError, match="list"):
        In("x", "abc")
    with pytest.raises(FilterError):
        In("x", [None])
    assert len(In("x", range(20000)).values) == 20000  # wide lists are fine up to MAX_FILTER_VALUES in all
    with pytest.raises(FilterTooLargeError, match="at most 100000"):
        In("x", range(100_001))


def test_range_validation():
    assert Range("d", ge=0.5).bounds() == [(">=", 0.5)]
    assert Range("d", gt=1, le=2).bounds() == [(">", 1), ("<=", 2)]
    with pytest.raises(FilterError, match="at least one"):
        Range("d")
    with pytest.raises(FilterError, match="not both"):
        Range("d", gt=1, ge=1)
    with pytest.raises(FilterError, match="not both"):
        Range("d", lt=1, le=1)
    with pytest.raises(FilterError, match="numbers"):
        Range("d", ge=True)
    with pytest.raises(FilterError, match="numbers"):
        Range("d", ge="a")


def test_boolean_nodes_and_operators():
    a, b, c = Eq("x", 1), Eq("y", 2), Eq("z", 3)
    assert (a & b) == And(a, b)
    assert (a | b) == Or(a, b)
    assert ~a == Not(a)
    assert And([a, b, c]).filters == (a, b, c)
    with pytest.raises(FilterError, match="at least one"):
        And()
    with pytest.raises(FilterError, match="at least one"):
        Or([])
    with pytest.raises(FilterError, match="filter nodes"):
        And(a, {"x": 1})  # type: ignore[arg-type]
    with pytest.raises(FilterError, match="filter node"):
        Not("x")  # type: ignore[arg-type]


def test_nodes_are_immutable_and_hashable():
    f = Eq("x", 1)
    with pytest.raises(AttributeError):
        f.value = 2  # type: ignore[misc]
    assert len({Eq("x", 1), Eq("x", 1), In("x", [1, 2])}) == 2


# ------------------------------------------------------------------------------------------- dict form


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"label": "kick"}, Eq("label", "kick")),
        ({"label": ["kick", "snare"]}, In("label", ["kick", "snare"])),
        ({"d": {"gte": 0.5}}, Range("d", ge=0.5)),
        ({"d": {"$gt": 0, "$lte": 2}}, Range("d", gt=0, le=2)),
        ({"d": {"ge": 1, "le": 2}}, Range("d", ge=1, le=2)),
        ({"label": {"ne": "kick"}}, Not(Eq("label", "kick"))),
        ({"label": {"nin": ["a"]}}, Not(In("label", ["a"]))),
        ({"label": {"eq": "a", "in": ["a", "b"]}}, And(Eq("label", "a"), In("label", ["a", "b"]))),
        ({"label": "kick", "d": {"gte": 0.5}}, And(Eq("label", "kick"), Range("d", ge=0.5))),
        ({"$or": [{"a": 1}, {"b": 2}]}, Or(Eq("a", 1), Eq("b", 2))),
        ({"$and": [{"a": 1}]}, And(Eq("a", 1))),
        ({"$not": {"a": True}}, Not(Eq("a", True))),
        (
            {"d": {"gt": 1}, "$or": [{"a": 1}, {"$not": {"b": [1, 2]}}]},
            And(Range("d", gt=1), Or(Eq("a", 1), Not(In("b", [1, 2])))),
        ),
    ],
)
def test_parse_filter(spec, expected):
    assert parse_filter(spec) == expected
    assert parse_filter(expected) is expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({}, "empty filter"),
        ({"a": {}}, "empty operator"),
        ({"a": {"like": "x%"}}, "unknown operator 'like'"),
        ({"$xor": []}, "unknown filter operator"),
        ({"$or": []}, "non-empty list"),
        ({"$and": {"a": 1}}, "non-empty list"),
        ({"a": None}, "None"),
        ({"a": {"in": "abc"}}, "needs a list"),
        ({"a": {"gt": 1, "gte": 2}}, "not both"),
        ({"bad field": 1}, "identifier"),
        ("label == 'kick'", "mapping"),
        (["a"], "mapping"),
    ],
)
def test_parse_filter_errors(spec, message):
    with pytest.raises(FilterError, match=message):
        parse_filter(spec)


def test_to_dict_round_trip_and_key():
    filters = [
        Eq("a", 1),
        Eq("a", True),
        Eq("a", 1.5),
        In("b", ["x", 2, False]),
        Range("c", gt=-1, le=3.5),
        And(Eq("a", "x"), Or(Not(Eq("b", 2)), Range("c", lt=0))),
    ]
    for f in filters:
        d = to_dict(f)
        assert json.loads(json.dumps(d)) == d  # plain JSON
        assert parse_filter(d) == f
        assert filter_key(f) == filter_key(parse_filter(d))
    # == on nodes follows Python (1 == True); the key keeps JSON types apart
    assert Eq("a", 1) == Eq("a", True)
    assert filter_key(Eq("a", 1)) != filter_key(Eq("a", True))
    assert filter_fields(filters[-1]) == {"a", "b", "c"}


# ------------------------------------------------------------------------------------------- semantics
META: dict[str, Any] = {
    "label": "kick",
    "one_int": 1,
    "one_float": 1.0,
    "flag": True,
    "zero_flag": False,
    "text_one": "1",
    "none": None,
    "tags": ["kick", "808"],
    "seg": {"start": 0.0},
    "d": 0.75,
}


@pytest.mark.parametrize(
    ("f", "expected"),
    [
        (Eq("label", "kick"), True),
        (Eq("label", "Kick"), False),
        (Eq("one_int", 1), True),
        (Eq("one_int", 1.0), True),  # numbers compare numerically
        (Eq("one_float", 1), True),
        (Eq("one_int", True), False),  # a bool never equals a number
        (Eq("flag", 1), False),
        (Eq("flag", True), True),
        (Eq("zero_flag", False), True),
        (Eq("zero_flag", 0), False),
        (Eq("text_one", 1), False),  # a string never equals a number
        (Eq("one_int", "1"), False),
        (Eq("missing", 1), False),
        (Eq("tags", "kick"), False),  # lists are not searched
        (Eq("none", 0), False),
        (In("label", ["snare", "kick"]), True),
        (In("one_int", ["1", True]), False),
        (In("flag", [1, True]), True),
        (In("missing", [1]), False),
        (Range("d", gt=0.5, lt=1), True),
        (Range("d", ge=0.75, le=0.75), True),
        (Range("d", gt=0.75), False),
        (Range("flag", ge=0), False),  # bools are not numbers
        (Range("label", gt=0), False),
        (Range("none", gt=0), False),
        (Range("missing", gt=0), False),
        (Range("one_int", ge=1, lt=1.5), True),
        (Not(Eq("label", "kick")), False),
        (Not(Eq("missing", 1)), True),  # a missing field satisfies Not
        (Not(Range("label", gt=0)), True),
        (And(Eq("label", "kick"), Range("d", lt=1)), True),
        (And(Eq("label", "kick"), Range("d", gt=1)), False),
        (Or(Eq("label", "snare"), Eq("flag", True)), True),
        (Or(Eq("label", "snare"), Eq("missing", 1)), False),
    ],
)
def test_reference_semantics(f, expected):
    assert matches(f, META) is expected
    assert compile_filter(to_dict(f))(META) is expected


# ------------------------------------------------------------------------------------------- Milvus


@pytest.mark.parametrize(
    ("f", "expr"),
    [
        (Eq("label", "kick"), 'metadata["label"] == "kick"'),
        (Eq("n", 3), 'metadata["n"] == 3'),
        (Eq("n", -3), 'metadata["n"] == -3'),
        (Eq("d", 0.5), 'metadata["d"] == 0.5'),
        (Eq("d", 1e-05), 'metadata["d"] == 1e-05'),
        (Eq("d", 1e20), 'metadata["d"] == 1e+20'),
        (Eq("d", 2.0), 'metadata["d"] == 2.0'),
        (Eq("flag", True), 'metadata["flag"] == true'),
        (Eq("flag", False), 'metadata["flag"] == false'),
        (In("label", ["kick", "snare"]), 'metadata["label"] in ["kick", "snare"]'),
        (In("x", [1, "a", True, 0.5]), 'metadata["x"] in [1, "a", true, 0.5]'),
        (Range("d", ge=0.5), 'metadata["d"] >= 0.5'),
        (Range("d", gt=0, lt=2), '(metadata["d"] > 0 and metadata["d"] < 2)'),
        (Range("d", ge=-1.5, le=2), '(metadata["d"] >= -1.5 and metadata["d"] <= 2)'),
        (Not(Eq("label", "kick")), 'not (metadata["label"] == "kick")'),
        (
            And(Eq("label", "kick"), Or(Eq("g", 1), Not(In("g", [2, 3])))),
            '(metadata["label"] == "kick" and (metadata["g"] == 1 or not (metadata["g"] in [2, 3])))',
        ),
        (And(Eq("a", 1)), 'metadata["a"] == 1'),
        ({"label": "kick", "duration": {"gte": 0.5}}, '(metadata["label"] == "kick" and metadata["duration"] >= 0.5)'),
    ],
)
def test_to_milvus_expr(f, expr):
    assert to_milvus_expr(f) == expr


def test_to_milvus_expr_bare_fields_and_other_json_field():
    f = Eq("label", "kick") & Range("d", lt=1)
    assert to_milvus_expr(f, json_field=None) == '(label == "kick" and d < 1)'
    assert to_milvus_expr(f, json_field="meta") == '(meta["label"] == "kick" and meta["d"] < 1)'
    with pytest.raises(FilterError, match="identifier"):
        to_milvus_expr(f, json_field='m"]')


@pytest.mark.parametrize(
    ("value", "literal"),
    [
        ('say "hi"', r'"say \"hi\""'),
        ("back\\slash", r'"back\\slash"'),
        ("line\nbreak\ttab\rcr", r'"line\nbreak\ttab\rcr"'),
        ("bell\x07 nul\x00", r'"bell\u0007 nul\u0000"'),
        ("it's", '"it\'s"'),
        ("ünïcode 鼓 🥁", '"ünïcode 鼓 🥁"'),
        ('" or 1 == 1 or "', r'"\" or 1 == 1 or \""'),
    ],
)
def test_milvus_string_escaping(value, literal):
    expr = to_milvus_expr(Eq("s", value))
    assert expr == f'metadata["s"] == {literal}'
    # Milvus reads double-quoted literals with Go's strconv.Unquote; every escape we emit (\" \\ \n \r \t \uXXXX)
    # means the same in JSON, so json.loads decodes the literal as Milvus will.
    assert json.loads(literal) == value
    assert "\n" not in expr and "\r" not in expr
    # the literal ends exactly at the end of the expression: nothing escapes the quotes
    body = literal[1:-1]
    assert all(body[i - 1] == "\\" for i, c in enumerate(body) if c == '"')


# ------------------------------------------------------------------------------------------- Milvus dialects
def _leaves(f, positive=True):
    """``(leaf, positive)`` for every leaf: positive when under an even number of Not."""
    if isinstance(f, (And, Or)):
        return [pair for c in f.filters for pair in _leaves(c, positive)]
    if isinstance(f, Not):
        return _leaves(f.filter, not positive)
    return [(f, positive)]


def _python_exact(leaf):
    """Whether Python's comparison alone gives the reference result for a leaf (no True == 1 confusion)."""
    if isinstance(leaf, Range):
        return not any(matches(leaf, {leaf.field: x}) for x in (0, 1))
    values = leaf.values if isinstance(leaf, In) else (leaf.value,)
    return all(isinstance(v, str) or (not isinstance(v, bool) and v not in (0, 1)) for v in values)


def _split_in(f):
    """The server dialect's rewrite, spelled out: a mixed-type In becomes an Or of one In per literal type."""
    if isinstance(f, In):
        groups = {}
        for v in f.values:
            groups.setdefault(type(v), []).append(v)
        return f if len(groups) == 1 else Or(*(In(f.field, vals) for vals in groups.values()))
    if isinstance(f, (And, Or)):
        return type(f)(*(_split_in(c) for c in f.filters))
    if isinstance(f, Not):
        return Not(_split_in(f.filter))
    return f


def test_milvus_dialects_agree_with_the_plain_rendering():
    rng = random.Random(99)
    mixed = guarded = same_as_plain = 0
    for _ in range(500):
        f = _random_filter(rng)
        plain = to_milvus_expr(f)
        assert milvus_expr(f, "plain") == plain
        # server: the plain rendering of the filter with mixed-type In lists split per type
        assert server_filter_expr(f) == to_milvus_expr(_split_in(f))
        mixed += server_filter_expr(f) != plain
        # lite: a leaf gets a type guard exactly when Python alone could get it wrong (or it sits under a Not)
        lite = lite_filter_expr(f)
        for leaf, positive in _leaves(f):
            leaf_lite = lite_filter_expr(Not(leaf) if not positive else leaf)
            assert ("metadata_types" in leaf_lite) == (not positive or not _python_exact(leaf)), (leaf, positive)
        if all(p and _python_exact(leaf) and not isinstance(leaf, In) for leaf, p in _leaves(f)):
            assert lite == plain, f  # nothing to guard: Lite gets the plain expression
            same_as_plain += 1
        guarded += "metadata_types" in lite
    assert mixed > 20 and guarded > 100 and same_as_plain > 20  # every branch was exercised


# ------------------------------------------------------------------------------------------- SQLite


def _table(metas):
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE r (i INTEGER PRIMARY KEY, meta TEXT)")
    db.executemany("INSERT INTO r VALUES (?, ?)", [(i, json.dumps(m, ensure_ascii=False)) for i, m in enumerate(metas)])
    return db


def _sqlite_matches(f, metas, db=None):
    db = db or _table(metas)
    sql, params = to_sqlite(f, "meta")
    return {i for (i,) in db.execute(f"SELECT i FROM r WHERE {sql}", params)}


def test_to_sqlite_shape():
    sql, params = to_sqlite(Eq("label", "kick") & Not(Range("d", gt=1)))
    assert "json_extract(meta, ?)" in sql and "NOT" in sql
    assert "$.label" in params and "kick" in params and 1 in params
    assert "kick" not in sql  # values are bound, never inlined
    with pytest.raises(FilterError):
        to_sqlite(Eq("a", 1), column="meta; DROP TABLE r")


_POOL: list[Any] = [
    "kick",
    "snare",
    "Kick",
    "1",
    "",
    'it\'s "quoted" \\ ',
    "ünï 鼓",
    0,
    1,
    2,
    -3,
    2**40,
    0.0,
    1.0,
    0.5,
    -2.25,
    1e20,
    0.1,
    True,
    False,
    None,
    [1, 2],
    {"a": 1},
]
_FIELDS = ["a", "b", "c"]


def _random_meta(rng: random.Random) -> dict[str, Any]:
    return {f: rng.choice(_POOL) for f in _FIELDS if rng.random() < 0.8}


def _random_filter(rng: random.Random, depth: int = 0):
    scalars = [v for v in _POOL if isinstance(v, (str, int, float, bool)) and not isinstance(v, (list, dict))]
    roll = rng.random()
    if depth < 3 and roll < 0.35:
        kids = [_random_filter(rng, depth + 1) for _ in range(rng.randint(1, 3))]
        return And(*kids) if rng.random() < 0.5 else Or(*kids)
    if depth < 3 and roll < 0.45:
        return Not(_random_filter(rng, depth + 1))
    field = rng.choice(_FIELDS)
    kind = rng.random()
    if kind < 0.4:
        return Eq(field, rng.choice(scalars))
    if kind < 0.7:
        return In(field, rng.sample(scalars, rng.randint(1, 4)))
    nums = [-3, -0.5, 0, 0.1, 0.5, 1, 1.0, 2, 1e20]
    bounds: dict[str, Any] = {}
    if rng.random() < 0.7:
        bounds[rng.choice(["gt", "ge"])] = rng.choice(nums)
    if rng.random() < 0.7 or not bounds:
        bounds[rng.choice(["lt", "le"])] = rng.choice(nums)
    return Range(field, **bounds)


def test_sqlite_translation_agrees_with_reference():
    rng = random.Random(1234)
    metas = [_random_meta(rng) for _ in range(300)]
    db = _table(metas)
    non_trivial = 0
    for _ in range(400):
        f = _random_filter(rng)
        pred = compile_filter(f)
        expected = {i for i, m in enumerate(metas) if pred(m)}
        assert _sqlite_matches(f, metas, db) == expected, f"SQLite and the reference disagree on {f}"
        non_trivial += 0 < len(expected) < len(metas)
    assert non_trivial > 150  # the random filters actually discriminate


def test_sqlite_large_in_list():
    metas = [{"g": i} for i in range(100)] + [{"g": str(i)} for i in range(100)]
    f = In("g", [*range(0, 32000, 2), "3", "5"])  # 16002 values: more than SQLite has parameters
    assert _sqlite_matches(f, metas) == {i for i in range(0, 100, 2)} | {103, 105}

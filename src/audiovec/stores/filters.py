"""A small typed metadata filter language, shared by every vector store.

A filter is a tree of immutable nodes:

* :class:`Eq` ``(field, value)``: the field equals a scalar (``str``, ``int``, ``float`` or ``bool``);
* :class:`In` ``(field, values)``: the field equals one of several scalars;
* :class:`Range` ``(field, gt=, ge=, lt=, le=)``: the field is a number within the bounds;
* :class:`And` ``(*filters)``, :class:`Or` ``(*filters)``, :class:`Not` ``(filter)``.

Nodes combine with ``&``, ``|`` and ``~``::

    from audiovec.stores import Eq, In, Range
    f = Eq("label", "kick") & Range("duration", ge=0.5) | In("group", [3, 4])

The same filter can be written as a plain dict (for CLI flags, TOML and JSON configs), see :func:`parse_filter`::

    {"label": "kick", "duration": {"gte": 0.5}}          # label == "kick" and duration >= 0.5
    {"$or": [{"label": ["kick", "snare"]}, {"group": {"ne": 3}}]}

Semantics (every backend implements exactly these; the reference is :func:`matches`):

* ``field`` names a *top-level* key of a record's metadata and must be an identifier (``[A-Za-z_][A-Za-z0-9_]*``,
  at most 64 characters). Anything else is rejected with :class:`~audiovec.errors.FilterError`, so a field can
  never smuggle syntax into a Milvus expression or an SQL statement.
* Comparisons are type-strict, the way JSON sees types: a string equals only a string, a boolean only a boolean,
  and a number (``int`` or ``float``, never ``bool``) only a number, compared numerically (``1 == 1.0``).
  ``Eq("flag", True)`` does not match ``flag: 1``, and ``Eq("label", "1")`` does not match ``label: 1``.
* :class:`Range` matches numbers only; a string, boolean, list or missing field never satisfies a range.
* A missing field (or a list/object value) satisfies no :class:`Eq`, :class:`In` or :class:`Range`;
  :class:`Not` simply negates, so ``Not(Eq("label", "kick"))`` matches records that have no ``label`` at all.

Translations: :func:`to_milvus_expr` renders a Milvus boolean expression (over a JSON field, ``metadata`` by
default), and :func:`to_sqlite` renders an SQLite ``WHERE`` clause over a JSON text column (used by
:class:`~audiovec.stores.faiss.FaissStore`). The test suite checks that the SQLite translation agrees with
:func:`matches` on randomised data.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from audiovec.errors import FilterError

__all__ = [
    "And",
    "Eq",
    "Filter",
    "FilterLike",
    "In",
    "Not",
    "Or",
    "Range",
    "Scalar",
    "compile_filter",
    "filter_fields",
    "filter_key",
    "matches",
    "parse_filter",
    "to_dict",
    "to_milvus_expr",
    "to_sqlite",
]

Scalar = str | int | float | bool
"""A value a filter compares against."""

_FIELD_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}\Z")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_MAX_IN = 16384


def _check_field(field: object) -> str:
    if not isinstance(field, str) or not _FIELD_RE.match(field):
        raise FilterError(
            f"filter field must be an identifier ([A-Za-z_][A-Za-z0-9_]*, at most 64 characters), got {field!r}"
        )
    return field


def _check_scalar(value: object, where: str) -> Scalar:
    if isinstance(value, np.generic) and not isinstance(value, (np.str_, np.bytes_)):
        value = value.item()
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise FilterError(f"{where}: integer {value} is outside the int64 range")
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise FilterError(f"{where}: {value!r} is not a finite number")
        return float(value)
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise FilterError(f"{where}: string {value!r} is not valid Unicode (lone surrogate)") from None
        return str(value)
    raise FilterError(f"{where}: expected a str, int, float or bool, got {type(value).__name__} {value!r}")


def _check_number(value: object, where: str) -> int | float:
    v = _check_scalar(value, where)
    if isinstance(v, (bool, str)):
        raise FilterError(f"{where}: range bounds must be numbers, got {type(v).__name__} {v!r}")
    return v


class _Node:
    """Operators shared by every filter node."""

    __slots__ = ()

    def __and__(self, other: Filter) -> And:
        return And(self, other)  # type: ignore[arg-type]

    def __or__(self, other: Filter) -> Or:
        return Or(self, other)  # type: ignore[arg-type]

    def __invert__(self) -> Not:
        return Not(self)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Eq(_Node):
    """``field == value`` (type-strict, see the module docs).

    Args:
        field: A top-level metadata key (an identifier).
        value: A ``str``, ``int``, ``float`` or ``bool``.

    Raises:
        FilterError: Invalid field name or value.
    """

    field: str
    value: Scalar

    def __post_init__(self) -> None:
        _check_field(self.field)
        object.__setattr__(self, "value", _check_scalar(self.value, f"Eq({self.field!r})"))


@dataclass(frozen=True, init=False)
class In(_Node):
    """``field`` equals one of ``values`` (type-strict, like :class:`Eq`).

    Args:
        field: A top-level metadata key (an identifier).
        values: A non-empty iterable of scalars (at most 16384), stored as a tuple.

    Raises:
        FilterError: Invalid field name, an empty list, or an invalid value.
    """

    field: str
    values: tuple[Scalar, ...]

    def __init__(self, field: str, values: Iterable[Scalar]) -> None:
        _check_field(field)
        if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Iterable):
            raise FilterError(f"In({field!r}): values must be a list of scalars, got {values!r}")
        vals = tuple(_check_scalar(v, f"In({field!r})") for v in values)
        if not vals:
            raise FilterError(f"In({field!r}): values must not be empty")
        if len(vals) > _MAX_IN:
            raise FilterError(f"In({field!r}): at most {_MAX_IN} values, got {len(vals)}")
        object.__setattr__(self, "field", field)
        object.__setattr__(self, "values", vals)


@dataclass(frozen=True)
class Range(_Node):
    """A numeric range: ``gt``/``ge`` bound below, ``lt``/``le`` above; at least one bound.

    Args:
        field: A top-level metadata key (an identifier).
        gt: Strict lower bound.
        ge: Inclusive lower bound.
        lt: Strict upper bound.
        le: Inclusive upper bound.

    Raises:
        FilterError: No bound, both ``gt`` and ``ge`` (or ``lt`` and ``le``), or a non-numeric bound.
    """

    field: str
    gt: int | float | None = None
    ge: int | float | None = None
    lt: int | float | None = None
    le: int | float | None = None

    def __post_init__(self) -> None:
        _check_field(self.field)
        where = f"Range({self.field!r})"
        for name in ("gt", "ge", "lt", "le"):
            v = getattr(self, name)
            if v is not None:
                object.__setattr__(self, name, _check_number(v, f"{where}.{name}"))
        if self.gt is None and self.ge is None and self.lt is None and self.le is None:
            raise FilterError(f"{where}: give at least one of gt, ge, lt, le")
        if self.gt is not None and self.ge is not None:
            raise FilterError(f"{where}: give gt or ge, not both")
        if self.lt is not None and self.le is not None:
            raise FilterError(f"{where}: give lt or le, not both")

    def bounds(self) -> list[tuple[str, int | float]]:
        """The bounds that are set, as ``(op, value)`` with op in ``>``, ``>=``, ``<``, ``<=``."""
        ops = ((">", self.gt), (">=", self.ge), ("<", self.lt), ("<=", self.le))
        return [(op, v) for op, v in ops if v is not None]


def _check_children(kind: str, filters: tuple[object, ...]) -> tuple[Filter, ...]:
    if len(filters) == 1 and isinstance(filters[0], (list, tuple)):
        filters = tuple(filters[0])
    if not filters:
        raise FilterError(f"{kind}() needs at least one filter")
    for f in filters:
        if not isinstance(f, _FILTER_TYPES):
            raise FilterError(f"{kind}(): expected filter nodes, got {type(f).__name__} {f!r}")
    return filters  # type: ignore[return-value]


@dataclass(frozen=True, init=False)
class And(_Node):
    """All of ``filters`` match. ``And(a, b, c)`` or ``And([a, b, c])``."""

    filters: tuple[Filter, ...]

    def __init__(self, *filters: Filter) -> None:
        object.__setattr__(self, "filters", _check_children("And", filters))


@dataclass(frozen=True, init=False)
class Or(_Node):
    """At least one of ``filters`` matches. ``Or(a, b, c)`` or ``Or([a, b, c])``."""

    filters: tuple[Filter, ...]

    def __init__(self, *filters: Filter) -> None:
        object.__setattr__(self, "filters", _check_children("Or", filters))


@dataclass(frozen=True)
class Not(_Node):
    """``filter`` does not match (records missing the field do match ``Not(Eq(...))``)."""

    filter: Filter

    def __post_init__(self) -> None:
        if not isinstance(self.filter, _FILTER_TYPES):
            raise FilterError(f"Not(): expected a filter node, got {type(self.filter).__name__}")


Filter = Eq | In | Range | And | Or | Not
"""Any filter node."""

FilterLike = Filter | Mapping[str, Any]
"""A filter node or its dict form (see :func:`parse_filter`)."""

_FILTER_TYPES = (Eq, In, Range, And, Or, Not)


# ------------------------------------------------------------------------------------------- dict form
_RANGE_OPS = {"gt": "gt", "gte": "ge", "ge": "ge", "lt": "lt", "lte": "le", "le": "le"}
_OPS = ("eq", "ne", "in", "nin", "gt", "gte", "ge", "lt", "lte", "le")


def _parse_field(field: str, spec: object) -> Filter:
    _check_field(field)
    if isinstance(spec, Mapping):
        if not spec:
            raise FilterError(f"filter for {field!r}: empty operator mapping")
        parts: list[Filter] = []
        bounds: dict[str, Any] = {}
        for raw_op, value in spec.items():
            op = raw_op[1:] if isinstance(raw_op, str) and raw_op.startswith("$") else raw_op
            if op == "eq":
                parts.append(Eq(field, value))
            elif op == "ne":
                parts.append(Not(Eq(field, value)))
            elif op in ("in", "nin"):
                if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
                    raise FilterError(f"filter for {field!r}: {raw_op!r} needs a list, got {value!r}")
                node: Filter = In(field, tuple(value))
                parts.append(node if op == "in" else Not(node))
            elif op in _RANGE_OPS:
                key = _RANGE_OPS[op]
                if key in bounds:
                    raise FilterError(f"filter for {field!r}: bound {key!r} given twice")
                bounds[key] = value
            else:
                raise FilterError(f"filter for {field!r}: unknown operator {raw_op!r}; use one of {', '.join(_OPS)}")
        if bounds:
            parts.append(Range(field, **bounds))
        return parts[0] if len(parts) == 1 else And(*parts)
    if isinstance(spec, (list, tuple)):
        return In(field, tuple(spec))
    if spec is None:
        raise FilterError(f"filter for {field!r}: None is not a filter value")
    return Eq(field, spec)  # type: ignore[arg-type]


def parse_filter(spec: FilterLike) -> Filter:
    """Build a filter from its dict form (a filter node is returned unchanged).

    Grammar: a mapping whose entries are all required (``and``). An entry is one of

    * ``"field": scalar`` → :class:`Eq`; ``"field": [a, b]`` → :class:`In`;
    * ``"field": {"eq"|"ne"|"in"|"nin"|"gt"|"gte"|"lt"|"lte": ...}`` (``ge``/``le`` and a ``$`` prefix are
      accepted too; several operators are all required, range operators form one :class:`Range`);
    * ``"$and": [mapping, ...]``, ``"$or": [mapping, ...]``, ``"$not": mapping``.

    Args:
        spec: A filter node or a mapping.

    Returns:
        The filter node.

    Raises:
        FilterError: The mapping is empty, malformed, or names an invalid field, operator or value.

    Example:
        >>> parse_filter({"label": "kick", "duration": {"gte": 0.5}})
        And(filters=(Eq(field='label', value='kick'), Range(field='duration', gt=None, ge=0.5, lt=None, le=None)))
    """
    if isinstance(spec, _FILTER_TYPES):
        return spec
    if not isinstance(spec, Mapping):
        raise FilterError(f"a filter must be a filter node or a mapping, got {type(spec).__name__} {spec!r}")
    if not spec:
        raise FilterError("empty filter mapping; pass filter=None for no filter")
    parts: list[Filter] = []
    for key, value in spec.items():
        if key in ("$and", "$or"):
            if not isinstance(value, (list, tuple)) or not value:
                raise FilterError(f"{key!r} needs a non-empty list of filters, got {value!r}")
            children = [parse_filter(v) for v in value]
            parts.append(And(*children) if key == "$and" else Or(*children))
        elif key == "$not":
            parts.append(Not(parse_filter(value)))
        elif isinstance(key, str) and key.startswith("$"):
            raise FilterError(f"unknown filter operator {key!r}; use '$and', '$or' or '$not'")
        else:
            parts.append(_parse_field(key, value))
    return parts[0] if len(parts) == 1 else And(*parts)


def _as_filter(spec: FilterLike | None) -> Filter | None:
    return None if spec is None else parse_filter(spec)


def to_dict(f: FilterLike) -> dict[str, Any]:
    """The canonical dict form of a filter (``parse_filter(to_dict(f)) == f``)."""
    f = parse_filter(f)
    if isinstance(f, Eq):
        return {f.field: {"eq": f.value}}
    if isinstance(f, In):
        return {f.field: {"in": list(f.values)}}
    if isinstance(f, Range):
        names = {"gt": "gt", "ge": "gte", "lt": "lt", "le": "lte"}
        return {f.field: {names[n]: getattr(f, n) for n in ("gt", "ge", "lt", "le") if getattr(f, n) is not None}}
    if isinstance(f, And):
        return {"$and": [to_dict(c) for c in f.filters]}
    if isinstance(f, Or):
        return {"$or": [to_dict(c) for c in f.filters]}
    return {"$not": to_dict(f.filter)}


def filter_key(f: FilterLike) -> str:
    """A canonical string for a filter, usable as a cache key.

    Unlike ``==`` on nodes (where ``Eq("x", 1) == Eq("x", True)`` because ``1 == True`` in Python), the key keeps
    JSON types apart.
    """
    return json.dumps(to_dict(f), sort_keys=True, ensure_ascii=False)


def filter_fields(f: FilterLike) -> set[str]:
    """Every metadata field a filter refers to."""
    f = parse_filter(f)
    if isinstance(f, (Eq, In, Range)):
        return {f.field}
    if isinstance(f, (And, Or)):
        return set().union(*(filter_fields(c) for c in f.filters))
    return filter_fields(f.filter)


# ------------------------------------------------------------------------------------------- evaluation
_MISSING = object()


def _same(stored: object, value: Scalar) -> bool:
    """Type-strict JSON equality of a stored value and a filter scalar."""
    if isinstance(value, bool):
        return type(stored) is bool and stored is value
    if isinstance(value, str):
        return type(stored) is str and stored == value
    return type(stored) in (int, float) and stored == value


def compile_filter(f: FilterLike) -> Callable[[Mapping[str, Any]], bool]:
    """Compile a filter into a predicate over a metadata mapping (the reference semantics).

    Metadata is expected as decoded JSON (``str``, ``int``, ``float``, ``bool``, ``None``, ``list``, ``dict``).
    """
    f = parse_filter(f)
    if isinstance(f, Eq):
        field, value = f.field, f.value
        return lambda m: _same(m.get(field, _MISSING), value)
    if isinstance(f, In):
        field, values = f.field, f.values
        return lambda m: any(_same(m.get(field, _MISSING), v) for v in values)
    if isinstance(f, Range):
        field = f.field
        gt, ge, lt, le = f.gt, f.ge, f.lt, f.le

        def in_range(m: Mapping[str, Any]) -> bool:
            v = m.get(field, _MISSING)
            if type(v) not in (int, float):
                return False
            return (
                (gt is None or v > gt)
                and (ge is None or v >= ge)
                and (lt is None or v < lt)
                and (le is None or v <= le)
            )

        return in_range
    if isinstance(f, And):
        preds = [compile_filter(c) for c in f.filters]
        return lambda m: all(p(m) for p in preds)
    if isinstance(f, Or):
        preds = [compile_filter(c) for c in f.filters]
        return lambda m: any(p(m) for p in preds)
    inner = compile_filter(f.filter)
    return lambda m: not inner(m)


def matches(f: FilterLike, metadata: Mapping[str, Any]) -> bool:
    """Whether ``metadata`` satisfies ``f`` (the reference implementation every backend must agree with)."""
    return compile_filter(f)(metadata)


# ------------------------------------------------------------------------------------------- Milvus
def to_milvus_expr(f: FilterLike, *, json_field: str | None = "metadata") -> str:
    """Render a filter as a Milvus boolean expression.

    Args:
        f: The filter (node or dict form).
        json_field: The Milvus JSON field that holds the metadata, so ``label`` becomes ``metadata["label"]``.
            ``None`` renders bare field names (scalar columns, or the dynamic field of a collection created with
            ``enable_dynamic_field=True``).

    Returns:
        The expression, e.g. ``(metadata["label"] == "kick" and metadata["duration"] >= 0.5)``. Strings are
        quoted and escaped for Milvus' parser. (:class:`~audiovec.stores.milvus.MilvusStore` renders the same
        compiler's server and Milvus Lite dialects.)

    Raises:
        FilterError: Invalid filter, or ``json_field`` is not an identifier.

    Example:
        >>> to_milvus_expr({"label": ["kick", "snare"], "duration": {"lt": 2}})
        '(metadata["label"] in ["kick", "snare"] and metadata["duration"] < 2)'
    """
    from audiovec.stores._milvus_expr import milvus_expr  # the Milvus compiler builds on the nodes above

    f = parse_filter(f)
    if json_field is not None:
        _check_field(json_field)
    return milvus_expr(f, "plain", json_field=json_field)


# ------------------------------------------------------------------------------------------- SQLite
def to_sqlite(f: FilterLike, column: str = "meta") -> tuple[str, list[Any]]:
    """Render a filter as an SQLite boolean expression over a column of JSON text (JSON1 functions).

    Every leaf evaluates to 0 or 1 (never NULL), so ``NOT`` agrees with :func:`matches` on missing fields.
    Values are bound parameters; field names are validated identifiers, also passed as parameters.

    Args:
        f: The filter (node or dict form).
        column: The column holding each record's metadata as a JSON object (an identifier).

    Returns:
        ``(sql, params)`` for ``WHERE sql``.

    Raises:
        FilterError: Invalid filter or column name.
    """
    f = parse_filter(f)
    _check_field(column)
    params: list[Any] = []

    def typ(field: str) -> str:
        params.append(f"$.{field}")
        return f"json_type({column}, ?)"

    def val(field: str) -> str:
        params.append(f"$.{field}")
        return f"json_extract({column}, ?)"

    def leaf_eq(field: str, v: Scalar) -> str:
        if isinstance(v, bool):
            t = typ(field)
            return f"({t} IS '{'true' if v else 'false'}')"
        if isinstance(v, str):
            t = typ(field)
            x = val(field)
            params.append(v)
            return f"({t} IS 'text' AND {x} = ?)"
        t = typ(field)
        x = val(field)
        params.append(v)
        return f"(IFNULL({t}, '') IN ('integer', 'real') AND {x} = ?)"

    def render(node: Filter) -> str:
        if isinstance(node, Eq):
            return leaf_eq(node.field, node.value)
        if isinstance(node, In):
            strs = [v for v in node.values if isinstance(v, str)]
            nums = [v for v in node.values if not isinstance(v, (str, bool))]
            bools = sorted({"true" if v else "false" for v in node.values if isinstance(v, bool)})
            conds = []
            if strs:
                t, x = typ(node.field), val(node.field)
                params.append(json.dumps(strs, ensure_ascii=False))
                conds.append(f"({t} IS 'text' AND {x} IN (SELECT value FROM json_each(?)))")
            if nums:
                t, x = typ(node.field), val(node.field)
                params.append(json.dumps(nums))
                conds.append(f"(IFNULL({t}, '') IN ('integer', 'real') AND {x} IN (SELECT value FROM json_each(?)))")
            if bools:
                t = typ(node.field)
                conds.append(f"(IFNULL({t}, '') IN ({', '.join(repr(b) for b in bools)}))")
            return "(" + " OR ".join(conds) + ")"
        if isinstance(node, Range):
            t = typ(node.field)
            conds = [f"IFNULL({t}, '') IN ('integer', 'real')"]
            for op, v in node.bounds():
                conds.append(f"{val(node.field)} {op} ?")
                params.append(v)
            return "(" + " AND ".join(conds) + ")"
        if isinstance(node, (And, Or)):
            word = " AND " if isinstance(node, And) else " OR "
            return "(" + word.join(render(c) for c in node.filters) + ")"
        return f"(NOT {render(node.filter)})"

    return render(f), params

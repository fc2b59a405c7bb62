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

Limits (every filter node checks them when it is built, and :func:`parse_filter` checks the dict form, without
recursion, before building anything; beyond them :class:`~audiovec.errors.FilterTooLargeError`, a
:class:`~audiovec.errors.FilterError`, names the limit and what it found):

* :data:`MAX_FILTER_DEPTH` (32): ``And``/``Or``/``Not`` nested at most 32 levels deep, counting the dict form's
  implicit ``and`` (a mapping or operator mapping with several entries) and the ``not`` of ``ne``/``nin``; a
  comparison alone has depth 0. Every backend's expression parser must take the rendered filter: SQLite's parser
  stack overflowed at 90 nested ``$and`` and Milvus Lite's recursive parser spends about nine Python frames per
  level, while filters written by hand or generated from a form stay within a handful of levels.
* :data:`MAX_FILTER_TERMS` (1,024): comparisons (:class:`Eq`, :class:`In`, :class:`Range`). Each one is
  evaluated for every record a filter scans; many values of one field belong in one :class:`In`.
* :data:`MAX_FILTER_VALUES` (100,000): values compared against, all together: one per :class:`Eq` and every
  entry of every :class:`In` (``$in``/``$nin``) list. Wide lists are bound as one parameter (SQLite) or rendered
  as one ``in [...]`` list (Milvus), so they cost a set lookup per record, not one comparison per value.
* :data:`MAX_FILTER_BYTES` (1 MiB): field names and string values, in UTF-8 bytes, all together; the most a
  request or an expression sent to a Milvus server carries for the filter.

Translations: :func:`to_milvus_expr` renders a Milvus boolean expression (over a JSON field, ``metadata`` by
default), and :func:`to_sqlite` renders an SQLite ``WHERE`` clause over a JSON text column (used by
:class:`~audiovec.stores.faiss.FaissStore`). Both take every filter within the limits, however deep or wide. The
test suite checks that the SQLite translation agrees with :func:`matches` on randomised data.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from audiovec.errors import FilterError, FilterTooLargeError
from audiovec.stores.validation import short_repr

__all__ = [
    "MAX_FILTER_BYTES",
    "MAX_FILTER_DEPTH",
    "MAX_FILTER_TERMS",
    "MAX_FILTER_VALUES",
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

MAX_FILTER_DEPTH = 32
"""Deepest nesting of ``And``/``Or``/``Not`` in a filter (a comparison alone has depth 0; see the module docs)."""

MAX_FILTER_TERMS = 1024
"""Most comparisons (:class:`Eq`, :class:`In`, :class:`Range` nodes) in one filter."""

MAX_FILTER_VALUES = 100_000
"""Most values one filter compares against: one per :class:`Eq` plus every entry of every :class:`In` list."""

MAX_FILTER_BYTES = 1 << 20
"""Largest total size of one filter's field names and string values, in UTF-8 bytes (1 MiB)."""

_FIELD_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}\Z")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


# ------------------------------------------------------------------------------------------- limits
class _Size(NamedTuple):
    """How large a filter is, in the terms of the limits: nesting depth, comparisons, values, string bytes."""

    depth: int
    terms: int
    values: int
    nbytes: int


def _str_bytes(s: str) -> int:
    """UTF-8 length of ``s`` (lone surrogates count as three bytes; they are rejected elsewhere)."""
    return len(s) if s.isascii() else len(s.encode("utf-8", "surrogatepass"))


def _check_limits(depth: int, terms: int, values: int, nbytes: int = 0, *, at_least: bool = False) -> None:
    """Raise FilterTooLargeError naming the first limit exceeded; ``at_least``: counting stopped early."""
    within = depth <= MAX_FILTER_DEPTH and terms <= MAX_FILTER_TERMS and values <= MAX_FILTER_VALUES
    if within and nbytes <= MAX_FILTER_BYTES:
        return
    n = "at least " if at_least else ""
    if depth > MAX_FILTER_DEPTH:
        raise FilterTooLargeError(
            f"the filter is nested {n}{depth} levels deep (And/Or/Not, $and/$or/$not, the implicit 'and' of a "
            f"mapping with several entries, ne/nin); at most {MAX_FILTER_DEPTH} levels are allowed"
        )
    if terms > MAX_FILTER_TERMS:
        raise FilterTooLargeError(
            f"the filter has {n}{terms} comparisons; at most {MAX_FILTER_TERMS} are allowed "
            "(put the values of one field in a single $in list instead of one comparison each)"
        )
    if values > MAX_FILTER_VALUES:
        raise FilterTooLargeError(
            f"the filter compares against {n}{values} values (one per equality, plus every $in/$nin "
            f"entry, all together); at most {MAX_FILTER_VALUES} are allowed"
        )
    raise FilterTooLargeError(
        f"the filter's field names and string values take {n}{nbytes} bytes (UTF-8); at most {MAX_FILTER_BYTES} "
        "are allowed"
    )


def _sized(node: object, size: _Size) -> None:
    """Record ``size`` on a new node, or raise FilterTooLargeError when it exceeds a limit."""
    _check_limits(*size)
    object.__setattr__(node, "_size", size)


def _size_of(node: Filter) -> _Size:
    size: _Size = node._size  # type: ignore[union-attr]
    return size


def _combined(children: Iterable[Filter]) -> _Size:
    """The size of a logical node over ``children``: one level deeper than the deepest, the rest summed."""
    depth = terms = values = nbytes = 0
    for c in children:
        s = _size_of(c)
        depth, terms, values, nbytes = max(depth, s.depth), terms + s.terms, values + s.values, nbytes + s.nbytes
    return _Size(depth + 1, terms, values, nbytes)


# ------------------------------------------------------------------------------------------- nodes
def _check_field(field: object) -> str:
    if not isinstance(field, str) or not _FIELD_RE.match(field):
        raise FilterError(
            "filter field must be an identifier ([A-Za-z_][A-Za-z0-9_]*, at most 64 characters), "
            f"got {short_repr(field)}"
        )
    return field


def _check_scalar(value: object, where: str) -> Scalar:
    if isinstance(value, np.generic) and not isinstance(value, (np.str_, np.bytes_)):
        value = value.item()
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise FilterError(f"{where}: integer {short_repr(value)} is outside the int64 range")
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise FilterError(f"{where}: {value!r} is not a finite number")
        return float(value)
    if isinstance(value, str):
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise FilterError(
                    f"{where}: string {short_repr(value)} is not valid Unicode (lone surrogate)"
                ) from None
        return str(value)
    raise FilterError(f"{where}: expected a str, int, float or bool, got {type(value).__name__} {short_repr(value)}")


def _check_number(value: object, where: str) -> int | float:
    v = _check_scalar(value, where)
    if isinstance(v, (bool, str)):
        raise FilterError(f"{where}: range bounds must be numbers, got {type(v).__name__} {short_repr(v)}")
    return v


class _Node:
    """Operators shared by every filter node (``a & b & c`` builds one flat ``And``, ``|`` one flat ``Or``)."""

    __slots__ = ()

    def __and__(self, other: Filter) -> And:
        return And(*_operands(self, And), *_operands(other, And))

    def __or__(self, other: Filter) -> Or:
        return Or(*_operands(self, Or), *_operands(other, Or))

    def __invert__(self) -> Not:
        return Not(self)  # type: ignore[arg-type]


def _operands(f: object, kind: type[And] | type[Or]) -> tuple[Any, ...]:
    return f.filters if isinstance(f, kind) else (f,)


@dataclass(frozen=True)
class Eq(_Node):
    """``field == value`` (type-strict, see the module docs).

    Args:
        field: A top-level metadata key (an identifier).
        value: A ``str``, ``int``, ``float`` or ``bool``.

    Raises:
        FilterError: Invalid field name or value.
        FilterTooLargeError: The value is longer than :data:`MAX_FILTER_BYTES`.
    """

    field: str
    value: Scalar

    def __post_init__(self) -> None:
        _check_field(self.field)
        value = _check_scalar(self.value, f"Eq({self.field!r})")
        object.__setattr__(self, "value", value)
        _sized(self, _Size(0, 1, 1, len(self.field) + (_str_bytes(value) if isinstance(value, str) else 0)))


@dataclass(frozen=True, init=False)
class In(_Node):
    """``field`` equals one of ``values`` (type-strict, like :class:`Eq`).

    Args:
        field: A top-level metadata key (an identifier).
        values: A non-empty iterable of scalars, stored as a tuple; up to :data:`MAX_FILTER_VALUES` (with the
            other values of the filter it belongs to).

    Raises:
        FilterError: Invalid field name, an empty list, or an invalid value.
        FilterTooLargeError: More values, or longer strings, than the limits allow.
    """

    field: str
    values: tuple[Scalar, ...]

    def __init__(self, field: str, values: Iterable[Scalar]) -> None:
        _check_field(field)
        if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Iterable):
            raise FilterError(f"In({field!r}): values must be a list of scalars, got {short_repr(values)}")
        where = f"In({field!r})"
        vals = tuple(_check_scalar(v, where) for v in values)
        if not vals:
            raise FilterError(f"In({field!r}): values must not be empty")
        object.__setattr__(self, "field", field)
        object.__setattr__(self, "values", vals)
        nbytes = len(field) + sum(_str_bytes(v) for v in vals if isinstance(v, str))
        _sized(self, _Size(0, 1, len(vals), nbytes))


def _in_unchecked(field: str, values: tuple[Scalar, ...]) -> In:
    """An :class:`In` of values that are already valid scalars of valid nodes (merging comparisons)."""
    node = object.__new__(In)
    object.__setattr__(node, "field", field)
    object.__setattr__(node, "values", values)
    object.__setattr__(node, "_size", _Size(0, 1, len(values), 0))
    return node


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
        _sized(self, _Size(0, 1, 0, len(self.field)))

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
            raise FilterError(f"{kind}(): expected filter nodes, got {type(f).__name__} {short_repr(f)}")
    return filters  # type: ignore[return-value]


@dataclass(frozen=True, init=False)
class And(_Node):
    """All of ``filters`` match. ``And(a, b, c)`` or ``And([a, b, c])``.

    Raises:
        FilterError: No filters, or something other than filter nodes.
        FilterTooLargeError: The result would exceed a limit (see the module docs).
    """

    filters: tuple[Filter, ...]

    def __init__(self, *filters: Filter) -> None:
        children = _check_children("And", filters)
        object.__setattr__(self, "filters", children)
        _sized(self, _combined(children))


@dataclass(frozen=True, init=False)
class Or(_Node):
    """At least one of ``filters`` matches. ``Or(a, b, c)`` or ``Or([a, b, c])``.

    Raises:
        FilterError: No filters, or something other than filter nodes.
        FilterTooLargeError: The result would exceed a limit (see the module docs).
    """

    filters: tuple[Filter, ...]

    def __init__(self, *filters: Filter) -> None:
        children = _check_children("Or", filters)
        object.__setattr__(self, "filters", children)
        _sized(self, _combined(children))


@dataclass(frozen=True)
class Not(_Node):
    """``filter`` does not match (records missing the field do match ``Not(Eq(...))``).

    Raises:
        FilterError: ``filter`` is not a filter node.
        FilterTooLargeError: The result would be nested deeper than :data:`MAX_FILTER_DEPTH`.
    """

    filter: Filter

    def __post_init__(self) -> None:
        if not isinstance(self.filter, _FILTER_TYPES):
            raise FilterError(f"Not(): expected a filter node, got {type(self.filter).__name__}")
        _sized(self, _combined((self.filter,)))


Filter = Eq | In | Range | And | Or | Not
"""Any filter node."""

FilterLike = Filter | Mapping[str, Any]
"""A filter node or its dict form (see :func:`parse_filter`)."""

_FILTER_TYPES = (Eq, In, Range, And, Or, Not)


# ------------------------------------------------------------------------------------------- dict form
_RANGE_OPS = {"gt": "gt", "gte": "ge", "ge": "ge", "lt": "lt", "lte": "le", "le": "le"}
_OPS = ("eq", "ne", "in", "nin", "gt", "gte", "ge", "lt", "lte", "le")
_LISTS = (list, tuple, set, frozenset)
_SCALARS = (str, int, float)


def _check_dict_size(spec: Mapping[Any, Any]) -> None:
    """Check a dict-form filter against the limits before parsing it: iteratively, stopping at the first excess.

    It counts what the mapping shows at least (nested ``$and``/``$or``/``$not``, one comparison per field entry,
    the entries of ``in``/``nin`` lists), so that parsing, whose recursion follows the nesting, never starts on
    a filter that is too deep, contains itself, or is too large to be worth building; the nodes then check the
    exact figures as they are built.

    Raises:
        FilterTooLargeError: The filter exceeds a limit.
        FilterError: The filter contains itself.
    """
    terms = values = 0
    stack: list[tuple[Mapping[Any, Any], int, tuple[int, ...]]] = [(spec, 0, ())]
    while stack:
        mapping, depth, path = stack.pop()
        path = (*path, id(mapping))
        for key, value in mapping.items():
            if key == "$and" or key == "$or" or key == "$not":
                children = (value,) if key == "$not" else value
                if not isinstance(children, (list, tuple)):
                    continue  # the parser names the problem
                _check_limits(depth + 1, terms + len(children), values, at_least=True)  # one comparison each
                for child in children:
                    if type(child) is dict or isinstance(child, Mapping):
                        if id(child) in path:
                            raise FilterError(f"the filter contains itself: a {key} operand is an enclosing mapping")
                        _check_limits(depth + 1, terms, values, at_least=True)
                        stack.append((child, depth + 1, path))
                    elif isinstance(child, _FILTER_TYPES):
                        size = _size_of(child)
                        terms, values = terms + size.terms, values + size.values
                        _check_limits(depth + 1 + size.depth, terms, values, at_least=True)
            else:
                terms += 1
                if isinstance(value, _LISTS):
                    values += len(value)
                elif type(value) is dict or (not isinstance(value, _SCALARS) and isinstance(value, Mapping)):
                    values += sum(len(v) for v in value.values() if isinstance(v, _LISTS))
        _check_limits(depth, terms, values, at_least=True)


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
                    raise FilterError(f"filter for {field!r}: {raw_op!r} needs a list, got {short_repr(value)}")
                node: Filter = In(field, tuple(value))
                parts.append(node if op == "in" else Not(node))
            elif isinstance(op, str) and op in _RANGE_OPS:
                key = _RANGE_OPS[op]
                if key in bounds:
                    raise FilterError(f"filter for {field!r}: bound {key!r} given twice")
                bounds[key] = value
            else:
                raise FilterError(
                    f"filter for {field!r}: unknown operator {short_repr(raw_op)}; use one of {', '.join(_OPS)}"
                )
        if bounds:
            parts.append(Range(field, **bounds))
        return parts[0] if len(parts) == 1 else And(*parts)
    if isinstance(spec, (list, tuple)):
        return In(field, tuple(spec))
    if spec is None:
        raise FilterError(f"filter for {field!r}: None is not a filter value")
    return Eq(field, spec)  # type: ignore[arg-type]


def _parse_mapping(spec: object) -> Filter:
    """:func:`parse_filter` after the size check (recursion stays within :data:`MAX_FILTER_DEPTH` levels)."""
    if isinstance(spec, _FILTER_TYPES):
        return spec
    if not isinstance(spec, Mapping):
        raise FilterError(f"a filter must be a filter node or a mapping, got {type(spec).__name__} {short_repr(spec)}")
    if not spec:
        raise FilterError("empty filter mapping; pass filter=None for no filter")
    parts: list[Filter] = []
    for key, value in spec.items():
        if key in ("$and", "$or"):
            if not isinstance(value, (list, tuple)) or not value:
                raise FilterError(f"{key!r} needs a non-empty list of filters, got {short_repr(value)}")
            children = [_parse_mapping(v) for v in value]
            parts.append(And(*children) if key == "$and" else Or(*children))
        elif key == "$not":
            parts.append(Not(_parse_mapping(value)))
        elif isinstance(key, str) and key.startswith("$"):
            raise FilterError(f"unknown filter operator {short_repr(key)}; use '$and', '$or' or '$not'")
        else:
            parts.append(_parse_field(key, value))
    return parts[0] if len(parts) == 1 else And(*parts)


def parse_filter(spec: FilterLike) -> Filter:
    """Build a filter from its dict form (a filter node is returned unchanged).

    Grammar: a mapping whose entries are all required (``and``). An entry is one of

    * ``"field": scalar`` → :class:`Eq`; ``"field": [a, b]`` → :class:`In`;
    * ``"field": {"eq"|"ne"|"in"|"nin"|"gt"|"gte"|"lt"|"lte": ...}`` (``ge``/``le`` and a ``$`` prefix are
      accepted too; several operators are all required, range operators form one :class:`Range`);
    * ``"$and": [mapping, ...]``, ``"$or": [mapping, ...]``, ``"$not": mapping``.

    The limits (:data:`MAX_FILTER_DEPTH`, :data:`MAX_FILTER_TERMS`, :data:`MAX_FILTER_VALUES`,
    :data:`MAX_FILTER_BYTES`) are checked on the mapping before any node is built, without recursion.

    Args:
        spec: A filter node or a mapping.

    Returns:
        The filter node.

    Raises:
        FilterTooLargeError: The filter exceeds a limit.
        FilterError: The mapping is empty, malformed, contains itself, or names an invalid field, operator or
            value.

    Example:
        >>> parse_filter({"label": "kick", "duration": {"gte": 0.5}})
        And(filters=(Eq(field='label', value='kick'), Range(field='duration', gt=None, ge=0.5, lt=None, le=None)))
    """
    if isinstance(spec, Mapping):
        _check_dict_size(spec)
    return _parse_mapping(spec)


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


# ------------------------------------------------------------------------------------------- normal form
_Leaf = Eq | In | Range


@dataclass(frozen=True, slots=True)
class _Lit:
    """A comparison, or its negation."""

    node: _Leaf
    negated: bool


@dataclass(frozen=True, slots=True)
class _Group:
    """All (``conj``) or any of ``items``, none of them a group of the same kind; ``depth`` counts groups."""

    conj: bool
    items: tuple[_Lit | _Group, ...]
    depth: int


def _normal(f: Filter, negated: bool = False) -> _Lit | _Group:
    """The negation normal form of ``f`` (or of its negation): equivalent, since every comparison is two-valued.

    ``Not`` moves down to the comparisons (De Morgan), an ``And`` inside an ``And`` (``Or`` inside ``Or``) merges
    into it, a one-item group is its item, and the equalities of one field in an ``Or`` (their negations in an
    ``And``) become one :class:`In`, which every backend evaluates as one set lookup.
    """
    if isinstance(f, Not):
        return _normal(f.filter, not negated)
    if isinstance(f, (Eq, In, Range)):
        return _Lit(f, negated)
    conj = isinstance(f, And) != negated
    items: list[_Lit | _Group] = []
    for c in f.filters:
        n = _normal(c, negated)
        if isinstance(n, _Group) and n.conj == conj:
            items.extend(n.items)
        else:
            items.append(n)
    items = _merge_equalities(items, negated_in=conj)
    if len(items) == 1:
        return items[0]
    depth = 1 + max((i.depth for i in items if isinstance(i, _Group)), default=0)
    return _Group(conj, tuple(items), depth)


def _values(node: Eq | In) -> tuple[Scalar, ...]:
    return node.values if isinstance(node, In) else (node.value,)


def _merge_equalities(items: list[_Lit | _Group], negated_in: bool) -> list[_Lit | _Group]:
    """Merge the :class:`Eq`/:class:`In` literals of one field with ``negated == negated_in`` into one ``In``."""
    by_field: dict[str, list[int]] = {}
    for pos, item in enumerate(items):
        if isinstance(item, _Lit) and item.negated == negated_in and isinstance(item.node, (Eq, In)):
            by_field.setdefault(item.node.field, []).append(pos)
    merged = {positions[0]: positions for positions in by_field.values() if len(positions) > 1}
    if not merged:
        return items
    dropped = {pos for positions in merged.values() for pos in positions[1:]}
    out: list[_Lit | _Group] = []
    for pos, item in enumerate(items):
        if pos in merged:
            nodes = [items[p].node for p in merged[pos]]  # type: ignore[union-attr]
            values = tuple(v for node in nodes for v in _values(node))  # type: ignore[arg-type]
            out.append(_Lit(_in_unchecked(nodes[0].field, values), negated_in))
        elif pos not in dropped:
            out.append(item)
    return out


# ------------------------------------------------------------------------------------------- evaluation
_MISSING = object()


def _same(stored: object, value: Scalar) -> bool:
    """Type-strict JSON equality of a stored value and a filter scalar."""
    if isinstance(value, bool):
        return type(stored) is bool and stored is value
    if isinstance(value, str):
        return type(stored) is str and stored == value
    return type(stored) in (int, float) and stored == value


def _in_predicate(node: In) -> Callable[[Mapping[str, Any]], bool]:
    """Membership in ``node.values`` with :func:`_same`'s types: one set lookup, however long the list."""
    field = node.field
    strs = frozenset(v for v in node.values if isinstance(v, str))
    bools = frozenset(v for v in node.values if isinstance(v, bool))
    nums = frozenset(v for v in node.values if not isinstance(v, (str, bool)))

    def member(m: Mapping[str, Any]) -> bool:
        v = m.get(field, _MISSING)
        t = type(v)
        if t is str:
            return v in strs
        if t is int or t is float:
            return v in nums
        return t is bool and v in bools

    return member


def _leaf_predicate(node: _Leaf) -> Callable[[Mapping[str, Any]], bool]:
    if isinstance(node, Eq):
        field, value = node.field, node.value
        return lambda m: _same(m.get(field, _MISSING), value)
    if isinstance(node, In):
        return _in_predicate(node)
    field = node.field
    gt, ge, lt, le = node.gt, node.ge, node.lt, node.le

    def in_range(m: Mapping[str, Any]) -> bool:
        v = m.get(field, _MISSING)
        if type(v) not in (int, float):
            return False
        return (gt is None or v > gt) and (ge is None or v >= ge) and (lt is None or v < lt) and (le is None or v <= le)

    return in_range


def _compile(n: _Lit | _Group) -> Callable[[Mapping[str, Any]], bool]:
    if isinstance(n, _Lit):
        leaf = _leaf_predicate(n.node)
        return (lambda m: not leaf(m)) if n.negated else leaf
    preds = [_compile(i) for i in n.items]
    if n.conj:
        return lambda m: all(p(m) for p in preds)
    return lambda m: any(p(m) for p in preds)


def compile_filter(f: FilterLike) -> Callable[[Mapping[str, Any]], bool]:
    """Compile a filter into a predicate over a metadata mapping (the reference semantics).

    Metadata is expected as decoded JSON (``str``, ``int``, ``float``, ``bool``, ``None``, ``list``, ``dict``).
    An :class:`In` (and the equalities of one field under an ``Or``) costs one set lookup per record.
    """
    return _compile(_normal(parse_filter(f)))


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
        FilterTooLargeError: The filter exceeds a limit.
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
_SQL_CHAIN = 64  # operands per AND/OR chain: SQLite builds a left-deep tree from one, and refuses depth > 1000


def _sql_chain(parts: list[str], word: str) -> str:
    """``parts`` joined by ``word``, in parenthesised chains of at most :data:`_SQL_CHAIN` operands."""
    while len(parts) > _SQL_CHAIN:
        parts = ["(" + word.join(parts[i : i + _SQL_CHAIN]) + ")" for i in range(0, len(parts), _SQL_CHAIN)]
    return word.join(parts)


def to_sqlite(f: FilterLike, column: str = "meta") -> tuple[str, list[Any]]:
    """Render a filter as an SQLite boolean expression over a column of JSON text (JSON1 functions).

    Every leaf evaluates to 0 or 1 (never NULL), so ``NOT`` agrees with :func:`matches` on missing fields.
    Values are bound parameters (an :class:`In` list, however long, is one JSON parameter read with
    ``json_each``); field names are validated identifiers, also passed as parameters. The expression is built
    from the filter's negation normal form, with nested groups before the comparisons beside them and long
    chains split, so that any filter within the limits stays within SQLite's parser stack and expression depth.

    Args:
        f: The filter (node or dict form).
        column: The column holding each record's metadata as a JSON object (an identifier).

    Returns:
        ``(sql, params)`` for ``WHERE sql``.

    Raises:
        FilterTooLargeError: The filter exceeds a limit.
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

    def leaf_in(node: In) -> str:
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

    def leaf(node: _Leaf) -> str:
        if isinstance(node, Eq):
            return leaf_eq(node.field, node.value)
        if isinstance(node, In):
            return leaf_in(node)
        t = typ(node.field)
        conds = [f"IFNULL({t}, '') IN ('integer', 'real')"]
        for op, v in node.bounds():
            conds.append(f"{val(node.field)} {op} ?")
            params.append(v)
        return "(" + " AND ".join(conds) + ")"

    def render(n: _Lit | _Group) -> str:
        if isinstance(n, _Lit):
            sql = leaf(n.node)
            return f"(NOT {sql})" if n.negated else sql
        word = " AND " if n.conj else " OR "
        # the deepest group first: SQLite's parser then holds nothing else while it reads the nesting
        groups = sorted((i for i in n.items if isinstance(i, _Group)), key=lambda g: -g.depth)
        parts = [render(g) for g in groups]
        lits = [render(i) for i in n.items if isinstance(i, _Lit)]
        if lits:
            chain = _sql_chain(lits, word)
            parts.append(f"({chain})" if groups and len(lits) > 1 else chain)
        return "(" + _sql_chain(parts, word) + ")"

    return render(_normal(f)), params

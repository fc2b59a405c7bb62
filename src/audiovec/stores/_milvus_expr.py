"""The one compiler from filters to Milvus boolean expressions, in three dialects.

* ``"plain"``: the direct rendering, :func:`audiovec.stores.filters.to_milvus_expr`
  (``metadata["label"] == "kick"``, ``metadata["g"] in [1, 2]``).
* ``"server"``: for a Milvus server. As ``plain``, except that an ``In`` whose values mix literal types (strings,
  ints, floats, booleans) becomes one ``in`` per type joined with ``or``: Milvus 2.3 fails a mixed list (even ints
  with floats) with an internal assertion, and one list per type compares the same way (``in [1]`` matches a
  stored ``1.0``). And more than four operands of one ``and``/``or`` are grouped into a balanced tree
  (``((a or b) or (c or d)) or ...``): the server parses a chain into one nested node per operator, and its
  search fails once they nest about 50 deep (measured on 2.3.5: a chain of 50 ``or`` works, of 60 fails, as do 50
  nested ``not``). A filter whose rendering still nests deeper than :data:`SERVER_MAX_DEPTH` levels raises
  :class:`~audiovec.errors.FilterTooLargeError` before anything is sent.
* ``"lite"``: for Milvus Lite, which evaluates JSON paths in Python with Kleene logic: a missing key, or a
  comparison between types Python cannot order, is NULL (and NULL under ``not`` stays NULL, dropping the record),
  and ``True == 1``. Every Lite record also stores the JSON type of each top-level value in ``metadata_types``
  (:func:`value_types`), and a leaf that Python could get wrong is rendered with a type guard,
  ``(metadata_types["x"] is not null and metadata_types["x"] == "n" and metadata["x"] == 1)``, which makes it
  two-valued and exactly the reference semantics of :func:`~audiovec.stores.filters.matches`. Leaves under an
  even number of ``not`` s stay unguarded when Python alone is exact for them (``==`` a string or a number other
  than 0 and 1, a range that excludes 0 and 1): there a NULL acts as false, and each guard costs Lite another JSON
  parse per row.
"""

from __future__ import annotations

import json
from typing import Literal

from audiovec.errors import FilterTooLargeError
from audiovec.stores.filters import And, Eq, Filter, In, Or, Range, Scalar

__all__ = [
    "SERVER_MAX_DEPTH",
    "TYPES_FIELD",
    "Dialect",
    "lite_filter_expr",
    "literal",
    "milvus_expr",
    "server_filter_expr",
    "value_types",
]

Dialect = Literal["plain", "server", "lite"]
"""Which Milvus evaluator an expression is rendered for (see the module docs)."""

TYPES_FIELD = "metadata_types"
"""The JSON field of a Milvus Lite record holding the JSON type of each top-level metadata value."""

SERVER_MAX_DEPTH = 40
"""Deepest nesting of ``and``/``or``/``not`` operators sent to a Milvus server (its search fails near 50)."""

_FLAT = 4  # operands of one and/or written as a plain chain in the server dialect


def _kind(v: Scalar) -> str:
    """The JSON type letter of a scalar: ``b`` (boolean), ``s`` (string) or ``n`` (number)."""
    if isinstance(v, bool):
        return "b"
    if isinstance(v, str):
        return "s"
    return "n"


def literal(v: Scalar) -> str:
    """A scalar as a Milvus literal.

    Floats use the shortest round-trip form (``0.5``, ``1e-05``, ``1e+20``; Go's ParseFloat reads all of them).
    Strings are double-quoted literals that Milvus reads with Go's ``strconv.Unquote``: JSON string escaping is a
    subset of Go's, and printable Unicode stays as UTF-8.
    """
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    return json.dumps(v, ensure_ascii=False)


def _plain_eq_ok(v: Scalar) -> bool:
    """Whether Python's ``x == v`` is true only for the values the reference matches (no ``True == 1``)."""
    return isinstance(v, str) or (not isinstance(v, bool) and v != 0 and v != 1)


def _range_admits_bool(node: Range) -> bool:
    """Whether ``True``/``False`` (1/0 in Python) would satisfy the range's bounds."""

    def inside(x: int) -> bool:
        return (
            (node.gt is None or x > node.gt)
            and (node.ge is None or x >= node.ge)
            and (node.lt is None or x < node.lt)
            and (node.le is None or x <= node.le)
        )

    return inside(0) or inside(1)


def _joined(parts: list[str], word: str) -> str:
    return parts[0] if len(parts) == 1 else "(" + f" {word} ".join(parts) + ")"


def _chain(parts: list[tuple[str, int]], word: str) -> tuple[str, int]:
    """``parts`` (expression, nesting depth) joined by ``word`` in one chain, with the chain's nesting depth."""
    return _joined([p for p, _ in parts], word), max(d for _, d in parts) + len(parts) - 1


def _balanced(parts: list[tuple[str, int]], word: str) -> tuple[str, int]:
    """As :func:`_chain`, but more than :data:`_FLAT` operands form a balanced tree of short chains."""
    if len(parts) <= _FLAT:
        return _chain(parts, word)
    half = len(parts) // 2
    (left, dl), (right, dr) = _balanced(parts[:half], word), _balanced(parts[half:], word)
    return f"({left} {word} {right})", max(dl, dr) + 1


def milvus_expr(f: Filter, dialect: Dialect = "plain", *, json_field: str | None = "metadata") -> str:
    """Render a parsed filter as a Milvus boolean expression in ``dialect`` (see the module docs).

    Args:
        f: The filter node.
        dialect: ``"plain"``, ``"server"`` or ``"lite"``.
        json_field: The JSON field holding the metadata (``None``: bare field names; ``plain`` only).

    Returns:
        The expression.

    Raises:
        FilterTooLargeError: ``dialect="server"`` and the expression nests deeper than :data:`SERVER_MAX_DEPTH`.
    """
    server = dialect == "server"
    join = _balanced if server else _chain

    def ref(field: str) -> str:
        return f'{json_field}["{field}"]' if json_field is not None else field

    def eq(field: str, v: Scalar) -> str:
        return f"{ref(field)} == {literal(v)}"

    def typed(field: str, kind: str, cond: str) -> str:
        t = f'{TYPES_FIELD}["{field}"]'
        return f'({t} is not null and {t} == "{kind}" and {cond})'

    def leaf_in(node: In, positive: bool) -> tuple[str, int]:
        if dialect == "lite":
            plain: list[str] = []
            guarded: dict[str, list[Scalar]] = {}
            for v in node.values:
                if positive and _plain_eq_ok(v):
                    plain.append(eq(node.field, v))
                else:
                    guarded.setdefault(_kind(v), []).append(v)
            parts = plain + [
                typed(node.field, kind, "(" + " or ".join(eq(node.field, v) for v in vals) + ")")
                for kind, vals in guarded.items()
            ]
            return _joined(parts, "or"), 0
        lists: dict[type, list[Scalar]] = {}
        for v in node.values:
            lists.setdefault(type(v) if server else object, []).append(v)
        return join(
            [(f"{ref(node.field)} in [{', '.join(literal(v) for v in vals)}]", 0) for vals in lists.values()], "or"
        )

    def render(node: Filter, positive: bool) -> tuple[str, int]:
        if isinstance(node, Eq):
            cond = eq(node.field, node.value)
            if dialect != "lite" or (positive and _plain_eq_ok(node.value)):
                return cond, 0
            return typed(node.field, _kind(node.value), cond), 0
        if isinstance(node, In):
            return leaf_in(node, positive)
        if isinstance(node, Range):
            parts = [f"{ref(node.field)} {op} {literal(v)}" for op, v in node.bounds()]
            if dialect != "lite" or (positive and not _range_admits_bool(node)):
                return _joined(parts, "and"), len(parts) - 1
            return typed(node.field, "n", " and ".join(parts)), 0
        if isinstance(node, (And, Or)):
            return join([render(c, positive) for c in node.filters], "and" if isinstance(node, And) else "or")
        inner, depth = render(node.filter, not positive)
        return f"not ({inner})", depth + 1

    expr, depth = render(f, True)
    if server and depth > SERVER_MAX_DEPTH:
        raise FilterTooLargeError(
            f"this filter nests {depth} levels of and/or/not once written for a Milvus server, which takes at most "
            f"{SERVER_MAX_DEPTH}; nest fewer levels (the values of one field fit in a single $in list)"
        )
    return expr


def server_filter_expr(f: Filter) -> str:
    """Render a filter for a Milvus server (``metadata`` JSON field; mixed-type ``In`` lists split per type)."""
    return milvus_expr(f, "server")


def lite_filter_expr(f: Filter) -> str:
    """Render a filter for Milvus Lite, exact under its Python evaluation (type guards over ``metadata_types``)."""
    return milvus_expr(f, "lite")


def value_types(meta_json: str) -> str:
    """The ``metadata_types`` object of one metadata record: the JSON type of each scalar top-level value."""
    meta = json.loads(meta_json)
    out = {key: _kind(v) for key, v in meta.items() if isinstance(v, (str, bool, int, float))}
    return json.dumps(out, separators=(",", ":"))

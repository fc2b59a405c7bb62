"""Validation of what callers hand a store: vectors, ids, metadata and ``k``.

Every function checks its whole input before returning, so a store can reject a batch before storing any of it.
"""

from __future__ import annotations

import json
import json.encoder
import math
import os
from collections.abc import Callable, Iterable, Mapping, Set
from typing import Any, NoReturn

import numpy as np
from numpy.typing import ArrayLike, NDArray

from audiovec.errors import (
    ConfigError,
    DimensionMismatchError,
    InvalidIdError,
    InvalidMetadataError,
    InvalidVectorError,
)
from audiovec.stores.records import (
    INT64_MAX,
    INT64_MIN,
    MAX_METADATA_BYTES,
    MAX_METADATA_DEPTH,
    MAX_STR_ID_BYTES,
    MAX_VECTOR_NORM,
    Id,
    IdsArg,
    IdType,
    MetadataArg,
)

__all__ = [
    "cap_k",
    "check_k",
    "dump_metadata",
    "load_metadata",
    "prepare_ids",
    "prepare_metadata",
    "prepare_vectors",
    "short_repr",
]

_INT_ONLY = {int}
_STR_ONLY = {str}


def prepare_vectors(
    vectors: ArrayLike, dim: int, *, normalize: bool = False, what: str = "vectors"
) -> NDArray[np.float32]:
    """Validate a batch of vectors and return it as C-contiguous ``float32[n, dim]``.

    Args:
        vectors: ``[n, dim]`` or one ``[dim]`` vector; any real float or integer dtype.
        dim: Expected dimension.
        normalize: Scale every row to unit L2 norm (cosine stores); the input is never modified. Any finite
            vector other than zero is accepted, however large or small its components: a row whose squared norm
            overflows or underflows ``float32`` is scaled by its largest component first.
        what: Name used in error messages.

    Raises:
        InvalidVectorError: Not a numeric 1-D/2-D array, NaN/Inf (also after conversion to float32), a zero
            vector when ``normalize`` is set, or (without ``normalize``) a vector longer than
            :data:`~audiovec.stores.records.MAX_VECTOR_NORM`, whose scores could overflow ``float32``.
        DimensionMismatchError: Rows are not ``dim`` wide.
    """
    try:
        arr = np.asarray(vectors)
    except (ValueError, TypeError) as err:
        raise InvalidVectorError(f"{what} cannot be read as a numeric array: {err}") from None
    if arr.dtype.kind not in "fiu":
        raise InvalidVectorError(f"{what} must be a real float (or integer) array, got dtype {arr.dtype}")
    if arr.ndim == 1:
        arr = arr.reshape(1, -1) if arr.size else arr.reshape(0, dim)
    if arr.ndim != 2:
        raise InvalidVectorError(f"{what} must have shape [n, {dim}] or [{dim}], got {arr.shape}")
    if arr.shape[1] != dim:
        raise DimensionMismatchError(f"{what} have dimension {arr.shape[1]}, the store has dimension {dim}")
    if arr.dtype == np.float32:
        out = np.ascontiguousarray(arr)
    else:
        with np.errstate(over="ignore", invalid="ignore"):  # overflow to inf is reported below
            out = np.ascontiguousarray(arr, dtype=np.float32)
    if not out.size:
        return out
    if not normalize:
        # one pass (vdot: BLAS, and no overflow warning): NaN and Inf propagate into the sum of squares
        if not float(np.vdot(out, out)) <= _SQ_LIMIT:
            _check_lengths(out, what)
        return out
    # One pass gives both checks: a row's sum of squares is finite only if every element is (NaN and Inf
    # propagate). Outside [tiny, inf) it is NaN/Inf inside, a zero vector, or a norm that over- or underflowed.
    sq = np.einsum("ij,ij->i", out, out)
    if len(sq) == 1:  # one vector (a query): a Python comparison instead of two reductions
        one = float(sq[0])
        valid = _SQ_TINY <= one < math.inf  # NaN fails it
    else:
        valid = sq.min() >= _SQ_TINY and sq.max() < math.inf
    if not valid:
        if not np.isfinite(out).all():
            _raise_non_finite(out, what)
        return _unit_rows(out, sq, what)
    unit: NDArray[np.float32] = np.divide(out, np.sqrt(sq)[:, None])
    return unit


_SQ_TINY = float(np.finfo(np.float32).tiny)  # smallest normal float32: below it a sum of squares loses bits
_SQ_LIMIT = float(np.float32(MAX_VECTOR_NORM) ** 2)


def _unit_rows(out: NDArray[np.float32], sq: NDArray[np.float32], what: str) -> NDArray[np.float32]:
    """Unit rows of finite ``out`` whose squared norms ``sq`` are not all normal ``float32`` numbers.

    Rows that are all zero are rejected; the others are scaled by their largest component before their norm is
    taken, so neither the squares of huge components (``3e38``) overflow nor those of tiny ones (``1e-30``)
    vanish.
    """
    zero = np.flatnonzero(~out.any(axis=1))
    if len(zero):
        raise InvalidVectorError(
            f"{what}: {len(zero)} vector(s) have zero norm, every component 0 (first at row {int(zero[0])}); "
            "cosine similarity is undefined for them"
        )
    unit = np.empty_like(out)
    ok = (sq >= _SQ_TINY) & (sq < math.inf)
    unit[ok] = out[ok] / np.sqrt(sq[ok])[:, None]
    rescale = ~ok
    scaled = out[rescale] / np.abs(out[rescale]).max(axis=1, keepdims=True)
    unit[rescale] = scaled / np.sqrt(np.einsum("ij,ij->i", scaled, scaled))[:, None]
    return unit


def _check_lengths(out: NDArray[np.float32], what: str) -> None:
    """Refuse rows with NaN/Inf or longer than :data:`~audiovec.stores.records.MAX_VECTOR_NORM`."""
    if not np.isfinite(out).all():
        _raise_non_finite(out, what)
    sq = np.einsum("ij,ij->i", out, out)  # per row: a whole batch may sum beyond the limit, its rows not
    bad = np.flatnonzero(~(sq <= _SQ_LIMIT))
    if len(bad):
        length = float(np.linalg.norm(out[bad[0]].astype(np.float64)))
        raise InvalidVectorError(
            f"{what}: {len(bad)} vector(s) are longer than {MAX_VECTOR_NORM:g} (first at row {int(bad[0])}, length "
            f"{length:.3g}); scores against them could overflow float32"
        )


def _raise_non_finite(out: NDArray[np.float32], what: str) -> NoReturn:
    bad = np.flatnonzero(~np.isfinite(out).all(axis=1))
    raise InvalidVectorError(
        f"{what}: {len(bad)} vector(s) contain NaN or Inf (first at row {int(bad[0])}); nothing was stored"
    )


def prepare_ids(ids: IdsArg, n: int | None = None, *, what: str = "ids") -> tuple[list[Id], IdType | None]:
    """Validate ids and return them as plain Python values with their kind.

    Args:
        ids: A sequence or array of ids, or one id.
        n: Required length (the number of vectors), or ``None`` for any length.
        what: Name used in error messages.

    Returns:
        ``(ids, kind)``; ``kind`` is ``None`` only for an empty list.

    Raises:
        InvalidIdError: Booleans, floats or other types, a mix of ``int`` and ``str``, an int outside int64, an
            empty or too long string, a length different from ``n``, or (with ``n``: one id per vector) an
            unordered collection such as a set.
    """
    if isinstance(ids, (str, int, np.integer, np.str_)):
        ids = [ids]
    if n is not None and isinstance(ids, Set):
        raise InvalidIdError(
            f"{what} must be an ordered sequence, one per vector; a {type(ids).__name__} has no order to pair them"
        )
    if isinstance(ids, np.ndarray):
        if ids.ndim != 1:
            raise InvalidIdError(f"{what} must be one-dimensional, got shape {ids.shape}")
        if ids.dtype.kind in "iu":
            if ids.size and (ids.dtype.kind == "u" and int(ids.max()) > INT64_MAX):
                raise InvalidIdError(f"{what}: integer ids must fit in int64")
            values: list[Any] = ids.tolist()
            if n is not None and len(values) != n:
                raise InvalidIdError(f"got {len(values)} {what} for {n} vectors")
            return values, ("int" if values else None)  # plain ints within int64 by construction
        elif ids.dtype.kind in "UO":
            values = ids.tolist()
        else:
            raise InvalidIdError(f"{what} must be ints or strs, got an array of dtype {ids.dtype}")
    else:
        if isinstance(ids, (bytes, Mapping)) or not isinstance(ids, Iterable):
            raise InvalidIdError(f"{what} must be a sequence of ints or strs, got {type(ids).__name__}")
        values = list(ids)
    if n is not None and len(values) != n:
        raise InvalidIdError(f"got {len(values)} {what} for {n} vectors")
    kinds = set(map(type, values))
    if kinds == _INT_ONLY:
        if min(values) >= INT64_MIN and max(values) <= INT64_MAX:
            return values, "int"
    elif kinds == _STR_ONLY:
        joined = "".join(values)
        # ASCII text is valid Unicode and as many bytes as characters; anything else gets the detailed checks
        if (
            joined.isascii()
            and "\x00" not in joined
            and 0 < min(map(len, values)) <= max(map(len, values)) <= MAX_STR_ID_BYTES
        ):
            return values, "str"
    has_int = has_str = False
    for i, v in enumerate(values):
        t = type(v)
        if t is int:
            has_int = True
        elif t is str:
            has_str = True
        elif isinstance(v, (bool, np.bool_)):
            raise InvalidIdError(f"{what}[{i}] is a bool ({v!r}); ids must be int or str")
        elif isinstance(v, (int, np.integer)):
            values[i] = int(v)
            has_int = True
        elif isinstance(v, str):
            values[i] = str(v)
            has_str = True
        else:
            raise InvalidIdError(f"{what}[{i}] is {type(v).__name__} {short_repr(v)}; ids must be int or str")
    if has_int and has_str:
        raise InvalidIdError(f"{what} mix int and str; a store holds one kind of id")
    if has_int:
        lo, hi = min(values), max(values)
        if lo < INT64_MIN or hi > INT64_MAX:
            raise InvalidIdError(
                f"{what}: integer ids must fit in int64, got {short_repr(lo if lo < INT64_MIN else hi)}"
            )
        return values, "int"
    if has_str:
        for i, s in enumerate(values):
            if not s:
                raise InvalidIdError(f"{what}[{i}] is an empty string")
            if "\x00" in s:
                raise InvalidIdError(f"{what}[{i}] contains a NUL character")
            try:
                size = len(s.encode("utf-8"))
            except UnicodeEncodeError:
                raise InvalidIdError(f"{what}[{i}] {short_repr(s)} is not valid Unicode") from None
            if size > MAX_STR_ID_BYTES:
                raise InvalidIdError(
                    f"{what}[{i}] is {size} bytes long; string ids may have at most {MAX_STR_ID_BYTES}"
                )
        return values, "str"
    return values, None


def short_repr(value: object, limit: int = 60) -> str:
    """``repr(value)`` for an error message, at most about ``limit`` characters whatever the value.

    Inputs may be megabytes long (a string, a list) or integers too long for ``repr`` (Python refuses to print
    more than 4300 digits); those are described instead (``<list of 100000 items>``, ``<a 16610-bit integer>``).
    """
    if isinstance(value, int) and value.bit_length() > 256:
        return f"<a {value.bit_length()}-bit integer>"
    if isinstance(value, (list, tuple, dict, set, frozenset)) and len(value) > 8:
        return f"<{type(value).__name__} of {len(value)} items>"
    if isinstance(value, np.ndarray) and value.size > 8:
        return f"<array of shape {value.shape}>"
    try:
        text = repr(value)
    except Exception:  # a repr that fails (an int inside a container, a broken object) still gets a message
        return f"<{type(value).__name__}>"
    return text if len(text) <= limit else f"{text[: limit - 4]}...{text[-1]}"


_MAX_ITEMS = MAX_METADATA_BYTES // 2  # a JSON list of more items (each a value and a comma) exceeds the limit


def _to_json(v: Any, where: str, depth: int, active: set[int] | None = None) -> Any:
    """``v`` as plain JSON values, checked in detail; ``where`` names it in messages.

    ``active`` holds the ids of the containers being converted (the path to ``v``), so that a container holding
    itself is reported as such. Containers with more items than fit in :data:`MAX_METADATA_BYTES` are refused
    before they are converted.
    """
    t = type(v)
    if t is str or t is bool or v is None:
        return v
    if t is int:
        if not INT64_MIN <= v <= INT64_MAX:
            raise InvalidMetadataError(f"{where}: integer {short_repr(v)} is outside the int64 range")
        return v
    if t is float:
        if not math.isfinite(v):
            raise InvalidMetadataError(f"{where}: {v!r} is not valid JSON (only finite numbers are)")
        return v
    if isinstance(v, (Mapping, list, tuple, np.ndarray)):
        return _container_to_json(v, where, depth, set() if active is None else active)
    if isinstance(v, np.generic):
        return _to_json(v.item(), where, depth, active)
    if isinstance(v, bool):
        return bool(v)
    if isinstance(v, int):
        return _to_json(int(v), where, depth, active)
    if isinstance(v, float):
        return _to_json(float(v), where, depth, active)
    if isinstance(v, str):
        return str(v)
    if isinstance(v, os.PathLike):
        path = os.fspath(v)
        return path if isinstance(path, str) else _to_json(os.fsdecode(path), where, depth, active)
    raise InvalidMetadataError(f"{where}: {type(v).__name__} {short_repr(v)} is not JSON-serialisable")


def _container_to_json(v: Any, where: str, depth: int, active: set[int]) -> Any:
    """A mapping, list, tuple or array as JSON (see :func:`_to_json`)."""
    if id(v) in active:
        raise InvalidMetadataError(f"{where}: contains itself (a reference cycle); metadata must be a tree")
    if depth > MAX_METADATA_DEPTH:
        raise InvalidMetadataError(f"{where}: nested more than {MAX_METADATA_DEPTH} levels deep")
    size = v.size if isinstance(v, np.ndarray) else len(v)
    if size > _MAX_ITEMS:
        raise InvalidMetadataError(
            f"{where}: {size} items cannot fit in a metadata record of at most {MAX_METADATA_BYTES} bytes of JSON"
        )
    if isinstance(v, np.ndarray):
        return _to_json(v.tolist(), where, depth, active)
    active.add(id(v))
    try:
        if not isinstance(v, Mapping):
            return [_to_json(x, f"{where}[{i}]", depth + 1, active) for i, x in enumerate(v)]
        out = {}
        for key, val in v.items():
            if not isinstance(key, str):
                raise InvalidMetadataError(
                    f"{where}: key {short_repr(key)} is {type(key).__name__}; JSON keys must be str"
                )
            out[str(key)] = _to_json(val, f"{where}.{short_repr(key, 40) if len(key) > 40 else key}", depth + 1, active)
        return out
    finally:
        active.discard(id(v))


def _no_default(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def _make_encoder() -> Callable[[Any], str]:
    """The compact JSON encoder of metadata, built once: ``encode(obj) -> str``.

    Non-finite floats and types other than dict/list/tuple/str/int/float/bool/None raise ``ValueError`` or
    ``TypeError``. Where the interpreter has the C encoder, it is created once and called directly (what
    ``json.dumps`` does after building a new encoder on every call); otherwise a module-level ``JSONEncoder``.
    """
    encoder = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=_no_default)
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is not None:
        try:
            chunks = make(None, _no_default, json.encoder.encode_basestring, None, ":", ",", False, False, False)
            probe = {"a": [1, 2.5, True, None, "\u00e9\n"]}
            if "".join(chunks(probe, 0)) == encoder.encode(probe):
                return lambda obj: "".join(chunks(obj, 0))
        except (TypeError, ValueError):  # another interpreter's signature: use the public encoder
            pass
    return encoder.encode


_encode = _make_encoder()
_SCALARS = frozenset({str, int, float, bool, type(None)})


def _dump_flat(meta: Any) -> str | None:
    """The JSON text of a valid flat metadata dict, or ``None`` when the detailed check must decide.

    A flat dict of ``str`` keys and ``str``/``int``/``float``/``bool``/``None`` values (exact types) is encoded
    once; that text is both what is stored and what the size is measured on. Anything else (nested values,
    other types, NaN, ints outside int64, too large, lone surrogates) returns ``None``.
    """
    if type(meta) is not dict or not _STR_ONLY.issuperset(map(type, meta)):
        return None
    kinds = set(map(type, meta.values()))
    if not kinds <= _SCALARS:
        return None
    if int in kinds:
        for v in meta.values():
            if type(v) is int and (v > INT64_MAX or v < INT64_MIN):
                return None
    try:
        text = _encode(meta)
    except ValueError:  # NaN or Inf
        return None
    if text.isascii():  # valid Unicode, one byte per character
        return text if len(text) <= MAX_METADATA_BYTES else None
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate
        return None
    return text if size <= MAX_METADATA_BYTES else None


def _dump_checked(meta: Any, where: str) -> str:
    """Validate any metadata record in detail (naming the offending value) and return its JSON text."""
    if meta is None:
        return "{}"
    if not isinstance(meta, Mapping):
        raise InvalidMetadataError(f"{where} must be a mapping (dict), got {type(meta).__name__}")
    text = _encode(_to_json(meta, where, 0))
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidMetadataError(f"{where} contains a string that is not valid Unicode (lone surrogate)") from None
    if size > MAX_METADATA_BYTES:
        raise InvalidMetadataError(f"{where} is {size} bytes of JSON; the limit is {MAX_METADATA_BYTES}")
    return text


def dump_metadata(meta: Mapping[str, Any] | None, where: str = "metadata") -> str:
    """Validate one metadata record and return it as compact JSON text.

    Flat records (``str`` keys; ``str``, ``int``, ``float``, ``bool`` or ``None`` values) take a fast path: one
    encoding whose text is also what the size limit is checked on. Everything else, and every invalid record,
    goes through a detailed check whose error names the offending value.

    Raises:
        InvalidMetadataError: Not a mapping, not JSON-able (non-str keys, NaN, objects...), or larger than 64 KiB.
    """
    text = _dump_flat(meta)
    return text if text is not None else _dump_checked(meta, where)


_scan_json: Callable[[str, int], tuple[Any, int]] = getattr(json.JSONDecoder(), "scan_once")  # noqa: B009


def load_metadata(text: str) -> dict[str, Any]:
    """Parse a stored metadata record (compact JSON object text) into a new dict.

    Raises:
        json.JSONDecodeError: ``text`` is not one JSON value.
    """
    try:
        value, end = _scan_json(text, 0)
    except StopIteration:  # not a JSON value: let json.loads name the problem
        value, end = None, -1
    if end != len(text):  # surrounding whitespace, trailing text or a parse error: the standard parser decides
        value = json.loads(text)
    out: dict[str, Any] = value
    return out


def prepare_metadata(metadata: MetadataArg, n: int) -> list[str]:
    """Validate the metadata of a batch of ``n`` records and return one compact JSON object text per record.

    Args:
        metadata: ``None`` (empty metadata), one mapping per vector, or a single mapping when ``n == 1``.
        n: Number of vectors.

    Raises:
        InvalidMetadataError: Wrong length or an invalid record (see :func:`dump_metadata`).
    """
    if metadata is None:
        return ["{}"] * n
    if isinstance(metadata, Mapping):
        if n != 1:
            raise InvalidMetadataError(f"got one metadata mapping for {n} vectors; pass a list with one per vector")
        metadata = [metadata]
    if isinstance(metadata, (str, bytes)) or not isinstance(metadata, Iterable):  # type: ignore[unreachable]
        raise InvalidMetadataError(f"metadata must be a list of mappings, got {type(metadata).__name__}")
    metas = list(metadata)
    if len(metas) != n:
        raise InvalidMetadataError(f"got {len(metas)} metadata records for {n} vectors")
    out = list(map(_dump_flat, metas))
    for i, text in enumerate(out):
        if text is None:
            out[i] = _dump_checked(metas[i], f"metadata[{i}]")
    return out  # type: ignore[return-value]


def check_k(k: object) -> int:
    """Validate a search's ``k``: an int of at least 1.

    ``k`` has no upper bound: a search returns ``min(k, matching records)`` hits, so a ``k`` above the store's
    size returns every record (see :func:`cap_k` for backends with a top-k limit).

    Raises:
        ConfigError: Not an int, or below 1.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise ConfigError(f"k must be an int, got {type(k).__name__} {short_repr(k)}")
    if k < 1:
        raise ConfigError(f"k must be at least 1, got {k}")
    return int(k)


def cap_k(k: int, limit: int, matching: Callable[[], int], what: str) -> int:
    """The ``k`` to ask a backend that returns at most ``limit`` hits per search (Milvus: ``MAX_K``).

    Args:
        k: The ``k`` asked for (valid, see :func:`check_k`).
        limit: The backend's top-k limit.
        matching: Counts the records the search could return (those matching its filter); called only when
            ``k > limit``.
        what: The backend, for the message (``"a Milvus search"``).

    Returns:
        ``k`` up to ``limit``; above it ``limit``, which returns every matching record when no more match.

    Raises:
        ConfigError: ``k > limit`` and more than ``limit`` records match, so not all of them can be returned.
    """
    if k <= limit:
        return k
    n = matching()
    if n > limit:
        raise ConfigError(
            f"k={k} asks for more than {limit} hits, the most {what} returns, and {n} records match; ask for "
            f"k <= {limit} (or narrow the filter to {limit} records or fewer)"
        )
    return limit

"""Validation of what callers hand a store: vectors, ids, metadata and ``k``.

Every function checks its whole input before returning, so a store can reject a batch before storing any of it.
"""

from __future__ import annotations

import json
import json.encoder
import math
import os
from collections.abc import Callable, Iterable, Mapping
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
    MAX_K,
    MAX_METADATA_BYTES,
    MAX_STR_ID_BYTES,
    Id,
    IdsArg,
    IdType,
    MetadataArg,
)

__all__ = ["check_k", "dump_metadata", "load_metadata", "prepare_ids", "prepare_metadata", "prepare_vectors"]

_INT_ONLY = {int}
_STR_ONLY = {str}


def prepare_vectors(
    vectors: ArrayLike, dim: int, *, normalize: bool = False, what: str = "vectors"
) -> NDArray[np.float32]:
    """Validate a batch of vectors and return it as C-contiguous ``float32[n, dim]``.

    Args:
        vectors: ``[n, dim]`` or one ``[dim]`` vector; any real float or integer dtype.
        dim: Expected dimension.
        normalize: Scale every row to unit L2 norm (cosine stores); the input is never modified.
        what: Name used in error messages.

    Raises:
        InvalidVectorError: Not a numeric 1-D/2-D array, NaN/Inf (also after conversion to float32), or a zero
            vector when ``normalize`` is set.
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
        if not np.isfinite(out).all():
            _raise_non_finite(out, what)
        return out
    # One pass gives both checks: a row's sum of squares is finite only if every element is (NaN and Inf
    # propagate). A non-finite sum either has NaN/Inf inside or overflowed; the second is a zero-norm error.
    sq = np.einsum("ij,ij->i", out, out)
    if len(sq) == 1:  # one vector (a query): a Python comparison instead of two reductions
        one = float(sq[0])
        valid = 0.0 < one < math.inf  # NaN fails it
    else:
        valid = sq.min() > 0 and sq.max() < np.inf
    if not valid:
        if not np.isfinite(out).all():
            _raise_non_finite(out, what)
        zero = np.flatnonzero(~(sq > 0) | ~np.isfinite(sq))
        raise InvalidVectorError(
            f"{what}: {len(zero)} vector(s) have zero norm (first at row {int(zero[0])}); "
            "cosine similarity is undefined for them"
        )
    unit: NDArray[np.float32] = np.divide(out, np.sqrt(sq)[:, None])
    return unit


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
            empty or too long string, or a length different from ``n``.
    """
    if isinstance(ids, (str, int, np.integer, np.str_)):
        ids = [ids]
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
            raise InvalidIdError(f"{what}[{i}] is {type(v).__name__} {v!r}; ids must be int or str")
    if has_int and has_str:
        raise InvalidIdError(f"{what} mix int and str; a store holds one kind of id")
    if has_int:
        lo, hi = min(values), max(values)
        if lo < INT64_MIN or hi > INT64_MAX:
            raise InvalidIdError(f"{what}: integer ids must fit in int64, got {lo if lo < INT64_MIN else hi}")
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
                raise InvalidIdError(f"{what}[{i}] {s!r} is not valid Unicode") from None
            if size > MAX_STR_ID_BYTES:
                raise InvalidIdError(
                    f"{what}[{i}] is {size} bytes long; string ids may have at most {MAX_STR_ID_BYTES}"
                )
        return values, "str"
    return values, None


def _to_json(v: Any, where: str, depth: int) -> Any:
    t = type(v)
    if t is str or t is bool or v is None:
        return v
    if t is int:
        if not INT64_MIN <= v <= INT64_MAX:
            raise InvalidMetadataError(f"{where}: integer {v} is outside the int64 range")
        return v
    if t is float:
        if not math.isfinite(v):
            raise InvalidMetadataError(f"{where}: {v!r} is not valid JSON (only finite numbers are)")
        return v
    if depth > 32:
        raise InvalidMetadataError(f"{where}: nested more than 32 levels deep")
    if isinstance(v, Mapping):
        out = {}
        for key, val in v.items():
            if not isinstance(key, str):
                raise InvalidMetadataError(f"{where}: key {key!r} is {type(key).__name__}; JSON keys must be str")
            out[str(key)] = _to_json(val, f"{where}.{key}", depth + 1)
        return out
    if isinstance(v, (list, tuple)):
        return [_to_json(x, f"{where}[{i}]", depth + 1) for i, x in enumerate(v)]
    if isinstance(v, (np.generic, np.ndarray)):
        return _to_json(v.tolist() if isinstance(v, np.ndarray) else v.item(), where, depth)
    if isinstance(v, bool):
        return bool(v)
    if isinstance(v, int):
        return _to_json(int(v), where, depth)
    if isinstance(v, float):
        return _to_json(float(v), where, depth)
    if isinstance(v, str):
        return str(v)
    if isinstance(v, os.PathLike):
        return os.fspath(v) if isinstance(os.fspath(v), str) else _to_json(os.fsdecode(v), where, depth)
    raise InvalidMetadataError(f"{where}: {type(v).__name__} {v!r} is not JSON-serialisable")


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
    """Validate a search's ``k`` (an int from 1 to :data:`~audiovec.stores.records.MAX_K`).

    Raises:
        ConfigError: Not an int, or out of range.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise ConfigError(f"k must be an int, got {type(k).__name__} {k!r}")
    if not 1 <= int(k) <= MAX_K:
        raise ConfigError(f"k must be between 1 and {MAX_K}, got {k}")
    return int(k)

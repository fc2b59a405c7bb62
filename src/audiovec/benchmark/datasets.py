"""Labelled audio collections for benchmarks: folders, manifests, plain lists, and the bundled demo set.

Every dataset is a sequence of :class:`Item` (path, label, group, metadata). The **group** (drum kit, speaker,
recording, fold) drives fair evaluation: a query's neighbours from its own group are excluded, and linear-probe
folds never split a group, so near-duplicates (velocity layers of one drum, two takes of one speaker) cannot
inflate the scores.

Example:
    >>> from audiovec.benchmark.datasets import demo_dataset
    >>> ds = demo_dataset()
    >>> len(ds), sorted(ds.labels())[:3]
    (42, ['clap', 'cowbell', 'cymbal'])
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np

from audiovec.errors import ConfigError
from audiovec.ingest.paths import PathPattern

if TYPE_CHECKING:  # pragma: no cover
    from audiovec.benchmark.config import DatasetConfig
from audiovec.audio import AUDIO_EXTENSIONS

__all__ = [
    "DATA_ROOT_ENV",
    "Dataset",
    "FolderDataset",
    "Item",
    "ListDataset",
    "ManifestDataset",
    "build_dataset",
    "demo_dataset",
    "fields_pattern",
    "fsdd_dataset",
    "locate_data_root",
    "resolve_data_path",
]

#: Dataset kinds read from a ``path`` (a folder or a manifest file).
PATH_KINDS = ("folder", "manifest", "fsdd")


@dataclass(frozen=True)
class Item:
    """One labelled audio file.

    Attributes:
        path: The audio file.
        label: Class label (``None`` when unlabelled).
        group: Group key for fair evaluation (``None``: every item is its own group).
        metadata: Any other fields (stored with the vector).
    """

    path: str
    label: str | None = None
    group: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


class Dataset(Sequence[Item]):
    """A named, ordered collection of :class:`Item`."""

    def __init__(self, items: Sequence[Item], name: str = "dataset") -> None:
        self._items = list(items)
        self.name = name

    def __len__(self) -> int:
        return len(self._items)

    @overload
    def __getitem__(self, i: int) -> Item: ...

    @overload
    def __getitem__(self, i: slice) -> Dataset: ...

    def __getitem__(self, i: int | slice) -> Item | Dataset:
        if isinstance(i, slice):
            return Dataset(self._items[i], self.name)
        return self._items[i]

    def __iter__(self) -> Iterator[Item]:
        return iter(self._items)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, items={len(self)}, labels={len(self.labels())})"

    def labels(self) -> set[str]:
        """The distinct labels."""
        return {it.label for it in self._items if it.label is not None}

    def groups(self) -> set[str]:
        """The distinct groups."""
        return {it.group for it in self._items if it.group is not None}

    def subset(self, n: int, seed: int = 0) -> Dataset:
        """``n`` items, stratified by label (round-robin over labels in a seeded order), for scaling sweeps.

        Subsets are nested: ``subset(25)`` contains ``subset(5)`` for the same seed, so a scaling curve adds
        data instead of swapping it.
        """
        if n >= len(self):
            return Dataset(self._items, self.name)
        if n < 1:
            raise ConfigError(f"subset size must be >= 1, got {n}")
        rng = np.random.default_rng(seed)
        by_label: dict[str | None, list[int]] = {}
        for idx in rng.permutation(len(self._items)):
            by_label.setdefault(self._items[idx].label, []).append(int(idx))
        queues = [by_label[k] for k in sorted(by_label, key=lambda x: (x is None, str(x)))]
        order: list[int] = []
        while len(order) < len(self._items):
            for q in queues:
                if q:
                    order.append(q.pop(0))
        return Dataset([self._items[i] for i in sorted(order[:n])], f"{self.name}[{n}]")


class ListDataset(Dataset):
    """A dataset from plain paths, with optional parallel lists of labels and groups."""

    def __init__(
        self,
        paths: Sequence[str | os.PathLike[str]],
        labels: Sequence[str] | None = None,
        groups: Sequence[str] | None = None,
        name: str = "list",
    ) -> None:
        for other, what in ((labels, "labels"), (groups, "groups")):
            if other is not None and len(other) != len(paths):
                raise ConfigError(f"{len(paths)} paths but {len(other)} {what}")
        items = [
            Item(os.fspath(p), labels[i] if labels else None, groups[i] if groups else None)
            for i, p in enumerate(paths)
        ]
        super().__init__(items, name)


class FolderDataset(Dataset):
    """Audio files under ``root``; by default the label is the first sub-folder (``root/<label>/.../file.wav``).

    With ``fields_from``, a path pattern (the syntax of :mod:`audiovec.ingest.paths`, as ``audiovec index
    --label-from``) over each file's path relative to ``root`` gives the label (its ``{label}`` field), the group
    (its ``{group}`` field) or both; any other field goes to the item's metadata. For example
    ``"{group}/{fsid}-{label}-*"`` reads ``fold3/7061-6-0-0.wav`` as group ``fold3``, label ``6``, ``fsid``
    ``7061``. Every file must match the pattern.

    Args:
        root: The folder.
        group_pattern: Optional regular expression applied to the file name (without extension); its first
            capture group is the item's group (e.g. ``r"^([^_]+)__"`` for ``<kit>__<name>.wav``).
        extensions: File extensions to include.
        name: Dataset name (default: the folder name).
        fields_from: A path pattern naming ``{label}`` and/or ``{group}``.

    Raises:
        ConfigError: The folder does not exist or holds no audio; the pattern is invalid, names neither ``{label}``
            nor ``{group}``, or names ``{group}`` together with ``group_pattern``; a file does not match it.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        group_pattern: str | None = None,
        extensions: Sequence[str] = tuple(AUDIO_EXTENSIONS),
        name: str | None = None,
        fields_from: str | PathPattern | None = None,
    ) -> None:
        base = Path(root)
        if not base.is_dir():
            raise ConfigError(f"dataset folder not found: {base}")
        pattern = fields_pattern(fields_from, group_pattern)
        rx = re.compile(group_pattern) if group_pattern else None
        exts = {e.lower() for e in extensions}
        items, unmatched = [], []
        for p in sorted(base.rglob("*")):
            if not p.is_file() or p.suffix.lower() not in exts or p.name.startswith("."):
                continue
            rel = p.relative_to(base)
            label = rel.parts[0] if len(rel.parts) > 1 else None
            group = None
            if rx is not None:
                m = rx.search(p.stem)
                group = m.group(1) if m and m.groups() else None
            meta: dict[str, Any] = {}
            if pattern is not None:
                fields = pattern(rel.as_posix())
                if not _has_roles(pattern, fields):
                    unmatched.append(rel.as_posix())
                    continue
                label = fields.pop("label", label)
                group = fields.pop("group", group)
                meta = dict(fields)
            items.append(Item(str(p), label, group, meta))
        if unmatched and pattern is not None:
            raise _unmatched_error(base, pattern, unmatched, len(items) + len(unmatched))
        if not items:
            raise ConfigError(f"no audio files under {base}")
        super().__init__(items, name or base.name)


#: The fields of a ``fields_from`` pattern that set an item's label and group.
_ROLES = ("label", "group")


def fields_pattern(fields_from: str | PathPattern | None, group_pattern: str | None) -> PathPattern | None:
    """A folder dataset's ``fields_from`` pattern, checked (``None`` when not given).

    Raises:
        ConfigError: An invalid pattern, one naming neither ``{label}`` nor ``{group}``, or one naming
            ``{group}`` when ``group_pattern`` is given too.
    """
    if fields_from is None:
        return None
    pattern = PathPattern(fields_from) if isinstance(fields_from, str) else fields_from
    roles = [f for f in pattern.fields if f in _ROLES]
    if not roles:
        raise ConfigError(
            f"path pattern {pattern.pattern!r} names neither {{label}} nor {{group}} (its fields: "
            f"{', '.join(pattern.fields)}); name at least one, e.g. '{{group}}/{{label}}_*'"
        )
    if "group" in roles and group_pattern:
        raise ConfigError(
            f"the group comes either from the path pattern {pattern.pattern!r} or from group_pattern "
            f"{group_pattern!r}, not both"
        )
    return pattern


def _has_roles(pattern: PathPattern, fields: dict[str, str]) -> bool:
    """Whether a file's fields hold every role (label, group) its pattern names."""
    return all(f in fields for f in pattern.fields if f in _ROLES)


def _unmatched_error(base: Path, pattern: PathPattern, unmatched: list[str], total: int) -> ConfigError:
    """The error for files that a ``fields_from`` pattern does not match (naming the first few)."""
    shown = ", ".join(unmatched[:5]) + (", ..." if len(unmatched) > 5 else "")
    return ConfigError(
        f"{len(unmatched)} of {total} files under {base} do not match the path pattern {pattern.pattern!r} "
        f"(every file must give its {' and '.join(f for f in pattern.fields if f in _ROLES)}): {shown}; "
        "fix the pattern, or move those files out of the folder"
    )


class ManifestDataset(Dataset):
    """Items listed in a CSV/TSV manifest with path, label and group columns.

    Args:
        manifest: The CSV or TSV file (the delimiter is sniffed: tab or comma).
        path_col: Column holding the audio path, relative to ``root`` (default: the manifest's folder).
        label_col: Label column (``None``: unlabelled).
        group_col: Group column (``None``: no groups).
        root: Base folder for relative paths.
        name: Dataset name (default: the manifest's folder name).
        columns: Column names, in file order. With ``header=True`` they replace the names of the header line; with
            ``header=False`` (a manifest without a header line, as the dataset recipes write) they name the columns.
        header: Whether the first line names the columns (with ``header=False``, ``columns`` is required).

    Raises:
        ConfigError: The manifest or a named column is missing, ``header=False`` without ``columns``, or a line
            with more fields than ``columns`` names.
    """

    def __init__(
        self,
        manifest: str | os.PathLike[str],
        path_col: str = "path",
        label_col: str | None = "label",
        group_col: str | None = None,
        root: str | os.PathLike[str] | None = None,
        name: str | None = None,
        columns: Sequence[str] | None = None,
        header: bool = True,
    ) -> None:
        mpath = Path(manifest)
        if not mpath.is_file():
            raise ConfigError(f"manifest not found: {mpath}")
        if not header and not columns:
            raise ConfigError(f"manifest {mpath}: without a header line, give the column names ('columns')")
        base = Path(root) if root is not None else mpath.parent
        with open(mpath, encoding="utf-8", newline="") as f:
            head = f.readline()
            f.seek(0)
            delim = "\t" if "\t" in head else ","
            reader = csv.reader(f, delimiter=delim)
            names = list(columns) if columns else None
            if header:
                first = next(reader, [])
                names = names or first
            lines = [line for line in reader if any(v.strip() for v in line)]
        assert names is not None
        long = next((n for n, line in enumerate(lines, 2 if header else 1) if len(line) > len(names)), None)
        if long is not None:
            raise ConfigError(f"manifest {mpath}: line {long} has more fields than the {len(names)} columns {names}")
        rows = [dict(zip(names, line + [""] * (len(names) - len(line)), strict=True)) for line in lines]
        cols = set(names)
        for col in (path_col, label_col, group_col):
            if col is not None and col not in cols:
                raise ConfigError(f"manifest {mpath} has no column {col!r} (columns: {sorted(cols)})")
        items = []
        for row in rows:
            p = Path(row[path_col])
            items.append(
                Item(
                    str(p if p.is_absolute() else base / p),
                    row[label_col] if label_col else None,
                    row[group_col] if group_col else None,
                    {k: v for k, v in row.items() if k not in (path_col, label_col, group_col)},
                )
            )
        super().__init__(items, name or mpath.parent.name)


def demo_dataset() -> Dataset:
    """The 42-clip demo drum set shipped with audiovec: label = drum class, group = kit."""
    from audiovec.data import demo_dir

    return ManifestDataset(demo_dir() / "metadata.tsv", group_col="kit", name="demo-drums")


def fsdd_dataset(root: str | os.PathLike[str], label: Literal["digit", "speaker"] = "digit") -> Dataset:
    """The Free Spoken Digit Dataset (``{digit}_{speaker}_{index}.*``).

    With ``label="digit"`` the group is the speaker (a query must find the digit spoken by someone else); with
    ``label="speaker"`` the group is the digit (a query must find the speaker saying another word).
    """
    base = Path(root)
    files = sorted(p for p in base.iterdir() if p.suffix.lower() in AUDIO_EXTENSIONS) if base.is_dir() else []
    if not files:
        raise ConfigError(f"no FSDD files under {base}")
    items = []
    for p in files:
        parts = p.stem.split("_")
        if len(parts) != 3:
            raise ConfigError(f"not an FSDD file name (digit_speaker_index): {p.name}")
        digit, speaker, _ = parts
        lab, grp = (digit, speaker) if label == "digit" else (speaker, digit)
        items.append(Item(str(p), lab, grp, {"digit": digit, "speaker": speaker}))
    return Dataset(items, f"fsdd-{label}")


#: Dataset kinds read from ``path``.

#: Environment variable naming the data root that relative dataset paths of a config are read from.
DATA_ROOT_ENV = "AUDIOVEC_DATA"


def locate_data_root(flag: str | os.PathLike[str] | None = None) -> tuple[Path, str]:
    """The folder relative dataset paths are read from, and where that choice came from (for messages).

    The rule: ``flag`` (``audiovec bench --data-root DIR``, or a config's ``data_root``), else the
    :data:`DATA_ROOT_ENV` environment variable, else the working directory.
    """
    if flag:
        return Path(flag), f"the data root {flag} (--data-root or the config's data_root)"
    env = os.environ.get(DATA_ROOT_ENV)
    if env:
        return Path(env), f"the data root {env} (from {DATA_ROOT_ENV})"
    return Path.cwd(), f"the working directory {Path.cwd()} (no --data-root given and {DATA_ROOT_ENV} not set)"


def resolve_data_path(value: str, root: str | os.PathLike[str] | None = None, *, must_exist: bool = True) -> Path:
    """A dataset path of a config: absolute as written, or relative to the data root (see :func:`locate_data_root`).

    Raises:
        ConfigError: ``must_exist`` and nothing is there; the message names the path looked at, the config
            value, and how to set the data root.
    """
    path = Path(os.path.expanduser(value))
    if path.is_absolute():
        if must_exist and not path.exists():
            raise ConfigError(f"dataset path not found: {path} (config value {value!r}, an absolute path)")
        return path
    base, where = locate_data_root(root)
    path = base / path
    if must_exist and not path.exists():
        raise ConfigError(
            f"dataset path not found: {path} (config value {value!r}, relative to {where}); point the data "
            f"root at the folder holding it: audiovec bench CONFIG --data-root DIR, or {DATA_ROOT_ENV}=DIR"
        )
    return path


def build_dataset(cfg: DatasetConfig, seed: int = 0, data_root: str | os.PathLike[str] | None = None) -> Dataset:
    """Build the dataset a config describes (and apply its ``limit``).

    Args:
        cfg: The dataset section of a config.
        seed: Seed of the ``limit`` subset.
        data_root: The folder relative paths are read from (default: ``$AUDIOVEC_DATA``, else the working
            directory; see :func:`locate_data_root`).

    Raises:
        ConfigError: A path that does not exist (see :func:`resolve_data_path`), or a dataset that cannot be read.
    """
    ds: Dataset
    path = str(resolve_data_path(cfg.path, data_root)) if cfg.path and cfg.kind in PATH_KINDS else ""
    if cfg.kind == "demo":
        ds = demo_dataset()
    elif cfg.kind == "folder":
        ds = FolderDataset(path, group_pattern=cfg.group_pattern, fields_from=cfg.fields_from)
    elif cfg.kind == "manifest":
        ds = ManifestDataset(path, cfg.path_col, cfg.label_col, cfg.group_col, columns=cfg.columns, header=cfg.header)
    elif cfg.kind == "fsdd":
        ds = fsdd_dataset(path, cfg.label)
    else:
        paths = [resolve_data_path(p, data_root, must_exist=False) for p in cfg.paths or []]
        ds = ListDataset(paths, cfg.labels, cfg.groups)
    return ds.subset(cfg.limit, seed) if cfg.limit else ds

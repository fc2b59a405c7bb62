"""A collection's folder on disk: ``collection.json`` read and written in one place, and collections opened from it.

``collection.json`` holds the collection's :class:`~audiovec.service.collection.CollectionConfig`, the format, the
creation time, the embedder preset it was created with (so the collection keeps its model whatever the service's
presets become) and, for a collection in a Milvus server, where that server is::

    {"format": 2, "created": "...", "config": {...},
     "preset": {"name": "mfcc", "params": {"n_mfcc": 20}},
     "milvus": {"uri": "http://127.0.0.1:19530"}}

It is written atomically and last when a collection is created, so a folder without it holds no collection.
:func:`create_collection` and :func:`open_collection` work on any folder (what ``audiovec index`` and
``audiovec search`` use); :class:`~audiovec.service.manager.CollectionManager` keeps its collections under
``data_dir/collections/<name>`` and serves them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from audiovec._files import atomic_write
from audiovec.errors import CollectionNotFoundError, ConfigError, StoreError
from audiovec.service.collection import FORMAT, Collection, CollectionConfig, SharedEmbedder, StoreSpec, now
from audiovec.service.settings import EmbedderPreset, ServiceSettings

__all__ = ["CONFIG_NAME", "CollectionDoc", "create_collection", "name_for", "open_collection", "read_doc", "write_doc"]

#: The file that makes a folder a collection.
CONFIG_NAME = "collection.json"
#: Token for a Milvus server given by ``milvus.uri`` in ``collection.json`` (never written to the file).
MILVUS_TOKEN_ENV = "AUDIOVEC_MILVUS_TOKEN"


@dataclass(frozen=True)
class CollectionDoc:
    """The contents of ``collection.json``."""

    config: CollectionConfig
    created: str = ""
    format: int = FORMAT
    preset: EmbedderPreset | None = None
    milvus_uri: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The JSON document."""
        doc: dict[str, Any] = {"config": self.config.model_dump(mode="json"), "created": self.created}
        doc["format"] = self.format
        if self.preset is not None:
            doc["preset"] = self.preset.model_dump(mode="json", exclude={"description"})
        if self.milvus_uri:
            doc["milvus"] = {"uri": self.milvus_uri}
        return doc


def read_doc(folder: Path) -> CollectionDoc:
    """Read ``folder/collection.json``.

    Raises:
        CollectionNotFoundError: The folder holds no collection.
        StoreError: The file cannot be read or is not a collection config.
    """
    path = Path(folder) / CONFIG_NAME
    if not path.is_file():
        raise CollectionNotFoundError(f"no collection in {folder} (no {CONFIG_NAME})")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        preset = EmbedderPreset.model_validate(raw["preset"]) if raw.get("preset") else None
        milvus = raw.get("milvus") or {}
        return CollectionDoc(
            config=CollectionConfig.model_validate(raw["config"]),
            created=str(raw.get("created", "")),
            format=int(raw.get("format", 1)),
            preset=preset,
            milvus_uri=str(milvus["uri"]) if milvus.get("uri") else None,
        )
    except (OSError, ValueError, KeyError, TypeError, ValidationError) as err:
        raise StoreError(f"{path} is not a readable collection config: {err}") from None


def write_doc(folder: Path, doc: CollectionDoc) -> None:
    """Write ``folder/collection.json`` atomically."""
    text = json.dumps(doc.as_json(), indent=2)

    def write(tmp: Path) -> None:
        tmp.write_text(text, encoding="utf-8")

    atomic_write(Path(folder) / CONFIG_NAME, write)


def name_for(folder: Path) -> str:
    """A collection name from a folder name: lower-case, ``[a-z0-9_]``, starting with a letter."""
    name = re.sub(r"[^a-z0-9_]", "_", Path(folder).resolve().name.lower()).strip("_") or "collection"
    if not name[0].isalpha():
        name = "c_" + name
    return name[:63]


def _settings(doc: CollectionDoc, folder: Path) -> ServiceSettings:
    """Settings for a collection opened on its own: no duration limit, its Milvus server, every backend."""
    token = os.environ.get(MILVUS_TOKEN_ENV)
    return ServiceSettings(
        data_dir=Path(folder).parent,
        max_duration_s=1e9,
        milvus_uri=doc.milvus_uri,
        milvus_token=token,
        milvus_prefix="audiovec_",
    )


def _preset(doc: CollectionDoc, settings: ServiceSettings | None) -> EmbedderPreset:
    if doc.preset is not None:
        return doc.preset
    presets = (settings or ServiceSettings()).embedders
    if doc.config.embedder not in presets:
        raise ConfigError(
            f"collection {doc.config.name!r} uses embedder preset {doc.config.embedder!r}, which these settings "
            f"do not define (they offer {sorted(presets)})"
        )
    return presets[doc.config.embedder]


def open_collection(
    folder: str | os.PathLike[str],
    settings: ServiceSettings | None = None,
    shared: SharedEmbedder | None = None,
) -> Collection:
    """Open the collection in ``folder``.

    Args:
        folder: The collection's folder (the one holding ``collection.json``).
        settings: Service settings (default: those of a collection on its own — no duration limit, its Milvus
            server from ``collection.json``, token from ``$AUDIOVEC_MILVUS_TOKEN``).
        shared: An already loaded embedder (the service shares one per preset).

    Raises:
        CollectionNotFoundError: No collection there.
        ConfigError: Its embedder cannot be built.
    """
    root = Path(folder)
    doc = read_doc(root)
    s = settings if settings is not None else _settings(doc, root)
    if shared is None:
        from audiovec.embedders import get_embedder

        preset = _preset(doc, settings)
        shared = SharedEmbedder(get_embedder(preset.name, dict(preset.params)))
    col = Collection(root, doc.config, s, shared, doc.format)
    col.created = doc.created
    col.preset = doc.preset
    return col


def create_collection(
    folder: str | os.PathLike[str],
    *,
    embedder: str = "mfcc",
    params: dict[str, Any] | None = None,
    pooling: str = "mean+l2",
    segments: str | None = None,
    store: str = "faiss",
    index: str | dict[str, Any] = "flat",
    metric: str = "cosine",
    milvus_uri: str | None = None,
    keep_audio: bool = False,
    description: str = "",
) -> Collection:
    """What :meth:`Collection.create <audiovec.service.collection.Collection.create>` runs (arguments as there).

    Raises:
        ConfigError: Invalid settings, or a collection with other settings is already there.
    """
    from audiovec.embedders import get_embedder

    root = Path(folder)
    if milvus_uri and store != "milvus":
        raise ConfigError(f"a Milvus URI needs store='milvus', not {store!r}")
    preset = EmbedderPreset(name=embedder, params=dict(params or {}))
    try:
        config = CollectionConfig(
            name=name_for(root),
            embedder=embedder,
            pooling=pooling,
            segments=segments,
            store=StoreSpec(backend=store, index=index, metric=metric),
            keep_audio=keep_audio,
            description=description,
        )
    except ValidationError as err:
        raise ConfigError(f"invalid collection settings: {err}") from None
    if (root / CONFIG_NAME).is_file():
        existing = open_collection(root)
        cfg = existing.config
        mine = (cfg.embedder, existing.preset, cfg.pooling, cfg.segments, cfg.store)
        asked = (config.embedder, preset, config.pooling, config.segments, config.store)
        if mine != asked:
            existing.close()
            raise ConfigError(
                f"{root} already holds a collection made with other settings ({_describe(*mine)}); "
                f"asked for {_describe(*asked)}. Use another folder, or the same settings"
            )
        return existing
    doc = CollectionDoc(config, now(), FORMAT, preset, milvus_uri)
    shared = SharedEmbedder(get_embedder(embedder, dict(params or {})))
    fresh = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    col: Collection | None = None
    try:
        col = Collection(root, config, _settings(doc, root), shared)
        col.created, col.preset = doc.created, preset
        col.save(force=True)
        write_doc(root, doc)
        return col
    except BaseException:
        if col is not None:
            col.close()
        if fresh:
            shutil.rmtree(root, ignore_errors=True)
        raise


def _describe(embedder: str, preset: EmbedderPreset | None, pooling: str, segments: str | None, spec: Any) -> str:
    params = preset.params if preset is not None else {}
    return f"{embedder} {params}, {pooling}, segments {segments}, {spec.backend} {spec.index} {spec.metric}"

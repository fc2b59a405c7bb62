"""The :class:`CollectionManager`: create, open, list and drop the collections of one data folder.

The same manager serves the HTTP API and the ``audiovec collection`` admin commands.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

from audiovec.embedders import get_embedder
from audiovec.errors import AudiovecError, CollectionExistsError, CollectionNotFoundError, ConfigError
from audiovec.service.collection import FORMAT, NAME_PATTERN, Collection, CollectionConfig, SharedEmbedder, now
from audiovec.service.folder import CONFIG_NAME, CollectionDoc, open_collection, read_doc, write_doc
from audiovec.service.settings import EmbedderPreset, ServiceSettings

__all__ = ["CollectionManager"]

log = logging.getLogger(__name__)


class CollectionManager:
    """Create, open, list and drop the collections in ``settings.data_dir``.

    Collections are opened on first use and kept open; embedders are loaded once per preset and shared.

    Example:
        >>> manager = CollectionManager(ServiceSettings(data_dir=tmp))  # doctest: +SKIP
        >>> manager.create(CollectionConfig(name="sfx", embedder="mfcc"))  # doctest: +SKIP
    """

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.root = Path(settings.data_dir) / "collections"
        self._lock = threading.RLock()
        self._open: dict[str, Collection] = {}
        self._embedders: dict[str, SharedEmbedder] = {}
        self._unavailable: dict[str, str] = {}  # preset key -> why its embedder could not be built

    def _dir(self, name: str) -> Path:
        if not isinstance(name, str) or not re.match(NAME_PATTERN, name):
            raise CollectionNotFoundError(f"no collection {name!r}")
        return self.root / name

    def names(self) -> list[str]:
        """Names of the existing collections, sorted."""
        if not self.root.is_dir():
            return []
        return sorted(
            p.parent.name for p in self.root.glob(f"*/{CONFIG_NAME}") if re.match(NAME_PATTERN, p.parent.name)
        )

    def _preset(self, preset_name: str) -> EmbedderPreset:
        preset = self.settings.embedders.get(preset_name)
        if preset is None:
            raise ConfigError(
                f"unknown embedder preset {preset_name!r}; this service offers {sorted(self.settings.embedders)}"
            )
        return preset

    def _embedder(self, preset: EmbedderPreset) -> SharedEmbedder:
        """The loaded embedder of a preset, shared by every collection using the same model and parameters."""
        key = _preset_key(preset)
        with self._lock:
            if key not in self._embedders:
                try:
                    self._embedders[key] = SharedEmbedder(get_embedder(preset.name, dict(preset.params)))
                except AudiovecError as err:
                    self._unavailable[key] = str(err)
                    raise
                self._unavailable.pop(key, None)
            return self._embedders[key]

    def unavailable_reason(self, preset_name: str) -> str | None:
        """Why new collections cannot use a preset here, or ``None`` when they can.

        The preset's embedder is built once to find out (a missing optional package, a model file that is not
        there, weights that cannot be downloaded); a success is kept and shared by the collections that use it. A
        failure is remembered, so listing the presets does not retry it; creating a collection with the preset
        tries again.

        Raises:
            ConfigError: No such preset.
        """
        preset = self._preset(preset_name)
        key = _preset_key(preset)
        with self._lock:
            if key in self._unavailable:
                return self._unavailable[key]
        try:
            self._embedder(preset)
        except AudiovecError as err:
            return str(err)
        return None

    def get(self, name: str) -> Collection:
        """An existing collection (with the embedder preset it was created with, when it recorded one).

        Raises:
            CollectionNotFoundError: No such collection.
        """
        with self._lock:
            if name in self._open:
                return self._open[name]
            folder = self._dir(name)
            if not (folder / CONFIG_NAME).is_file():
                raise CollectionNotFoundError(f"no collection {name!r}")
            doc = read_doc(folder)
            preset = doc.preset or self._preset(doc.config.embedder)
            col = open_collection(folder, self.settings, self._embedder(preset))
            self._open[name] = col
            return col

    def create(self, config: CollectionConfig) -> Collection:
        """Create a collection (its folder, store and config).

        Raises:
            CollectionExistsError: The name is taken.
            ConfigError: Unknown preset, backend not enabled, pooling that does not fit the embedder...
        """
        with self._lock:
            folder = self._dir(config.name)
            if (folder / CONFIG_NAME).exists():
                raise CollectionExistsError(f"collection {config.name!r} already exists")
            preset = self._preset(config.embedder)
            shared = self._embedder(preset)
            if folder.exists():  # leftovers of a create that failed half-way
                shutil.rmtree(folder)
            folder.mkdir(parents=True)
            col: Collection | None = None
            try:
                col = Collection(folder, config, self.settings, shared)
                col.created = now()
                col.preset = preset.model_copy(update={"description": ""})
                col.save(force=True)
                write_doc(folder, CollectionDoc(config, col.created, FORMAT, col.preset))
            except BaseException:
                self._discard(folder, col)
                raise
            self._open[config.name] = col
            log.info("created collection %s (%s, %s, %s)", config.name, config.embedder, config.pooling, config.store)
            return col

    def _discard(self, folder: Path, col: Collection | None) -> None:
        """Remove a collection's folder, and its server-side Milvus collection (Lite lives in the folder)."""
        if col is not None:
            try:
                drop = getattr(col.store, "drop", None)
                if col.config.store.backend == "milvus" and self.settings.milvus_uri and callable(drop):
                    drop()
                else:
                    col.close()
            except AudiovecError as err:
                log.warning("could not drop the store of collection %s: %s", col.name, err)
        shutil.rmtree(folder, ignore_errors=True)

    def drop(self, name: str) -> None:
        """Delete a collection with its vectors and stored audio.

        Raises:
            CollectionNotFoundError: No such collection.
        """
        with self._lock:
            col = self.get(name)
            self._open.pop(name, None)
            (col.root / CONFIG_NAME).unlink(missing_ok=True)  # gone for readers first
            self._discard(col.root, col)
            log.info("dropped collection %s", name)

    def __iter__(self) -> Iterator[Collection]:
        for name in self.names():
            try:
                yield self.get(name)
            except CollectionNotFoundError:  # dropped meanwhile
                continue

    def save_all(self, force: bool = False) -> None:
        """Persist every open collection that changed."""
        with self._lock:
            cols = list(self._open.values())
        for col in cols:
            try:
                col.save(force=force)
            except AudiovecError as err:  # a dropped/closed store: nothing to save
                log.warning("could not save collection %s: %s", col.name, err)

    def __enter__(self) -> CollectionManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Save and close every open collection."""
        with self._lock:
            cols, self._open = list(self._open.values()), {}
        for col in cols:
            try:
                col.close()
            except AudiovecError as err:
                log.warning("could not close collection %s: %s", col.name, err)


def _preset_key(preset: EmbedderPreset) -> str:
    """The identity of a preset's embedder: its registry name and parameters (not its description)."""
    return json.dumps([preset.name, preset.params], sort_keys=True, default=str)

"""Shared helpers for the TensorFlow / Keras embedders (VGGish, OpenL3).

Nothing here imports TensorFlow at module import time: every function that needs it takes the module returned by
:func:`import_tensorflow`, which goes through :func:`audiovec._optional.require` so that a missing install names
the audiovec extra to install.

What lives here:

* model resolution: a TF Hub handle (downloaded into, or read offline from, the TF Hub cache; ``http(s)://``
  handles are downloaded by :mod:`audiovec._download`, without importing TensorFlow) or a local SavedModel
  folder, with ``local_files_only`` (and ``AUDIOVEC_OFFLINE=1`` or ``HF_HUB_OFFLINE=1``, see
  :func:`audiovec._download.offline`) forbidding any network access;
* weight fingerprints for :meth:`~audiovec.embedders.base.FramedEmbedder.spec`;
* device placement (``"auto"``, ``"cpu"``, ``"gpu"``, ``"gpu:1"``...) and thread settings.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from audiovec._download import extract_tar, fetch, offline
from audiovec._hashing import file_blocks, sha256_parts
from audiovec._optional import require
from audiovec.errors import ConfigError, ModelLoadError

__all__ = [
    "DEVICE_PATTERN",
    "array_digest",
    "configure_threads",
    "device_scope",
    "hub_cache_dir",
    "hub_cached_path",
    "import_hub",
    "import_tensorflow",
    "is_remote_handle",
    "load_saved_model",
    "resolve_device",
    "resolve_saved_model",
    "saved_model_digest",
    "start",
]

logger = logging.getLogger(__name__)

#: Accepted ``device`` values: ``auto`` (TensorFlow decides), ``cpu``, ``gpu``, optionally with an index.
DEVICE_PATTERN = r"^(auto|cpu|gpu)(:[0-9]+)?$"


def import_tensorflow(extra: str, feature: str) -> ModuleType:
    """Import TensorFlow or raise :class:`~audiovec.errors.MissingDependencyError` naming ``audiovec[extra]``."""
    return require("tensorflow", extra, feature)


def import_hub(extra: str, feature: str) -> ModuleType:
    """Import ``tensorflow_hub`` (naming ``audiovec[extra]`` when it is missing).

    ``tensorflow_hub`` imports ``pkg_resources``, which warns that it is deprecated on every import under
    setuptools >= 81; that warning is about tensorflow_hub, not about the caller, so it is silenced here.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
        return require("tensorflow_hub", extra, feature, package="tensorflow-hub")


# ------------------------------------------------------------------------------------------- model files
def is_remote_handle(handle: str) -> bool:
    """Whether ``handle`` is a URL-like TF Hub handle (``https://...``, ``gs://...``) rather than a local path."""
    return "://" in handle


def hub_cache_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The TF Hub cache folder: ``cache_dir``, else ``$TFHUB_CACHE_DIR``, else ``<tmp>/tfhub_modules``.

    This is the folder ``tensorflow_hub`` itself uses when neither its flag nor the environment says otherwise.
    """
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get("TFHUB_CACHE_DIR")
    return Path(env).expanduser() if env else Path(tempfile.gettempdir()) / "tfhub_modules"


def hub_cached_path(handle: str, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where ``tensorflow_hub`` caches ``handle``: ``<cache>/<sha1 of the handle>``."""
    return hub_cache_dir(cache_dir) / hashlib.sha1(handle.encode("utf8"), usedforsecurity=False).hexdigest()


def _is_saved_model(path: Path) -> bool:
    return (path / "saved_model.pb").is_file() or (path / "saved_model.pbtxt").is_file()


@contextlib.contextmanager
def _env(name: str, value: str | None) -> Iterator[None]:
    old = os.environ.get(name)
    if value is not None:
        os.environ[name] = value
    try:
        yield
    finally:
        if value is not None:
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old


def resolve_saved_model(
    handle: str,
    *,
    cache_dir: str | os.PathLike[str] | None,
    local_files_only: bool,
    extra: str,
    feature: str,
) -> Path:
    """Turn a TF Hub handle or a local path into a local SavedModel folder.

    Args:
        handle: A TF Hub handle (``"https://tfhub.dev/google/vggish/1"``) or a local SavedModel folder.
        cache_dir: TF Hub cache folder (see :func:`hub_cache_dir`).
        local_files_only: Never touch the network: a handle must already be in the cache. ``HF_HUB_OFFLINE=1``
            in the environment has the same effect.
        extra: The audiovec extra that provides ``tensorflow_hub`` (for the install hint).
        feature: Who asks, for messages.

    Returns:
        A folder holding ``saved_model.pb``.

    Raises:
        ModelLoadError: The path does not exist or is not a SavedModel, or the handle is not cached while
            offline. The message names what was tried.
        ModelDownloadError: The download failed (a subclass of ``ModelLoadError``).
        MissingDependencyError: A ``gs://`` handle needs ``tensorflow_hub``, which is not installed. ``http(s)://``
            handles are downloaded without it (and without importing TensorFlow).
    """
    if not is_remote_handle(handle):
        path = Path(handle).expanduser()
        if not path.exists():
            raise ModelLoadError(
                f"{feature}: no SavedModel at {str(path)!r} (path does not exist; TF Hub handles are URLs such as "
                "'https://tfhub.dev/google/vggish/1')"
            )
        if not path.is_dir() or not _is_saved_model(path):
            raise ModelLoadError(f"{feature}: {str(path)!r} is not a SavedModel folder (no saved_model.pb in it)")
        return path
    cached = hub_cached_path(handle, cache_dir)
    if cached.is_dir() and _is_saved_model(cached):
        return cached
    if offline(local_files_only):
        raise ModelLoadError(
            f"{feature}: {handle!r} is not in the TF Hub cache (looked for {str(cached)!r}) and network access is "
            "disabled (local_files_only=True, AUDIOVEC_OFFLINE=1 or HF_HUB_OFFLINE=1). Load it once with network "
            "access, or pass the path of a local SavedModel folder."
        )
    if handle.startswith(("http://", "https://")):
        return _download_hub_model(handle, cached, feature)
    hub = import_hub(extra, feature)  # gs:// and other storage handles need TF Hub's own file system layer
    cache = str(hub_cache_dir(cache_dir)) if cache_dir is not None else None
    try:
        with _env("TFHUB_CACHE_DIR", cache):
            resolved = Path(hub.resolve(handle))
    except Exception as err:
        raise ModelLoadError(
            f"{feature}: could not download or resolve TF Hub handle {handle!r} into cache "
            f"{str(hub_cache_dir(cache_dir))!r}: {type(err).__name__}: {err}"
        ) from err
    if not _is_saved_model(resolved):
        raise ModelLoadError(f"{feature}: TF Hub handle {handle!r} resolved to {str(resolved)!r}, not a SavedModel")
    return resolved


def _download_hub_model(handle: str, cached: Path, feature: str) -> Path:
    """Download an http(s) TF Hub handle into the TF Hub cache, as ``tensorflow_hub`` would, without TensorFlow.

    TF Hub serves a model as a gzipped tar of its SavedModel at ``<handle>?tf-hub-format=compressed``. It is
    streamed to a temporary file, unpacked into a folder beside ``cached`` and renamed into place, and a
    ``<cached>.descriptor.txt`` is written like the one ``tensorflow_hub`` writes, so either can read the cache.
    """
    url = handle + ("&" if "?" in handle else "?") + "tf-hub-format=compressed"
    archive = cached.with_name(cached.name + ".tar.gz")
    try:
        fetch(url, archive, feature=feature)
        extract_tar(archive, cached, feature=feature)
    finally:
        archive.unlink(missing_ok=True)
    if not _is_saved_model(cached):
        raise ModelLoadError(f"{feature}: the archive downloaded for {handle!r} holds no saved_model.pb")
    cached.with_name(cached.name + ".descriptor.txt").write_text(
        f"Module: {handle}\nDownloaded by: audiovec\n", encoding="utf-8"
    )
    return cached


def load_saved_model(tf: ModuleType, path: Path, feature: str) -> Any:
    """``tf.saved_model.load(path)``, with failures raised as :class:`~audiovec.errors.ModelLoadError`."""
    try:
        return tf.saved_model.load(str(path))
    except Exception as err:
        raise ModelLoadError(
            f"{feature}: could not load SavedModel {str(path)!r}: {type(err).__name__}: {err}"
        ) from err


# ------------------------------------------------------------------------------------------- fingerprints
def saved_model_digest(path: Path) -> str:
    """A short sha256 of a SavedModel's graph and variable index.

    ``variables/variables.index`` stores a checksum of every variable, so hashing it identifies the weights
    without reading the (large) variable data files.
    """

    def parts() -> Iterator[bytes]:
        for name in ("saved_model.pb", "saved_model.pbtxt", "variables/variables.index"):
            file = path / name
            if file.is_file():
                yield name.encode()
                yield from file_blocks(file)

    return sha256_parts(parts())[:16]


def array_digest(arrays: Iterable[Any]) -> str:
    """A short sha256 of a sequence of arrays (shapes, dtypes and bytes), e.g. a Keras model's ``get_weights()``."""

    def parts() -> Iterator[bytes]:
        for a in arrays:
            arr = np.ascontiguousarray(np.asarray(a))
            yield f"{arr.dtype.str}{arr.shape}".encode()
            yield arr.tobytes()

    return sha256_parts(parts())[:16]


# ------------------------------------------------------------------------------------------- execution
def resolve_device(tf: ModuleType, device: str) -> str | None:
    """Map a ``device`` setting to a TensorFlow device name (``None`` for ``"auto"``).

    Raises:
        ConfigError: The device is malformed, or asks for a GPU that TensorFlow does not see.
    """
    kind, _, index = device.lower().partition(":")
    if kind == "auto":
        return None
    if kind not in ("cpu", "gpu"):
        raise ConfigError(f"device must be 'auto', 'cpu', 'gpu' or 'gpu:N', got {device!r}")
    idx = int(index) if index else 0
    found = tf.config.list_physical_devices(kind.upper())
    if idx >= len(found):
        hint = " (tensorflow-cpu has no GPU support; install a CUDA build of tensorflow)" if kind == "gpu" else ""
        raise ConfigError(
            f"device {device!r} requested, but TensorFlow sees {len(found)} {kind.upper()} device(s){hint}"
        )
    return f"/{kind.upper()}:{idx}"


def start(extra: str, feature: str, device: str, num_threads: int | None) -> tuple[ModuleType, str | None]:
    """Import TensorFlow, apply ``num_threads`` and resolve ``device``: what a TensorFlow embedder does first.

    Returns:
        The ``tensorflow`` module and the device name for :func:`device_scope` (``None`` for ``"auto"``).

    Raises:
        MissingDependencyError: TensorFlow is not installed (the message names ``audiovec[extra]``).
        ConfigError: The device is malformed or not available.
    """
    tf = import_tensorflow(extra, feature)
    configure_threads(tf, num_threads)
    return tf, resolve_device(tf, device)


def device_scope(tf: ModuleType | None, device: str | None) -> contextlib.AbstractContextManager[Any]:
    """A ``tf.device`` context for ``device``, or a no-op context when it is ``None``."""
    if tf is None or device is None:
        return contextlib.nullcontext()
    scope: contextlib.AbstractContextManager[Any] = tf.device(device)
    return scope


def configure_threads(tf: ModuleType, num_threads: int | None) -> None:
    """Set TensorFlow's intra- and inter-op thread pools to ``num_threads`` (``None``: leave them alone).

    These are process-wide settings that TensorFlow accepts only before it runs its first operation; later
    requests for a different value are logged as a warning and ignored.
    """
    if num_threads is None:
        return
    threading = tf.config.threading
    current = (threading.get_intra_op_parallelism_threads(), threading.get_inter_op_parallelism_threads())
    if current == (num_threads, num_threads):
        return
    try:
        threading.set_intra_op_parallelism_threads(num_threads)
        threading.set_inter_op_parallelism_threads(num_threads)
    except RuntimeError as err:
        logger.warning(
            "num_threads=%d ignored: TensorFlow is already initialised with intra/inter-op threads %s (%s). "
            "Create the first TensorFlow embedder of the process with the thread count you want.",
            num_threads,
            current,
            err,
        )

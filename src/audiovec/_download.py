"""Weights downloaded once into a cache, checked against a published size and SHA-256, never half-written.

One place for every download audiovec makes (YAMNet's TFLite file and class map, TF Hub SavedModels):

* :func:`cache_root` is where downloads go: ``$AUDIOVEC_CACHE``, else ``$XDG_CACHE_HOME/audiovec``, else
  ``~/.cache/audiovec``.
* :func:`fetch` streams a URL into a temporary file beside its destination, with a per-read timeout and a size
  cap, checks the size and SHA-256 when they are published, and renames it into place with
  :func:`audiovec._files.atomic_write`. A failure or a mismatch deletes the temporary file; an existing good file
  is never replaced by a bad one.
* :func:`cached_file` returns a cached :class:`RemoteFile`, downloading it first unless the caller is offline.
  Offline (``local_files_only=True``, ``AUDIOVEC_OFFLINE=1`` or ``HF_HUB_OFFLINE=1``) the network is never
  touched: a missing file raises :class:`~audiovec.errors.ModelLoadError` naming where it looked.

Only the standard library is used, so saying "cannot download" never imports a deep-learning framework.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tarfile
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

from audiovec._files import atomic_write, fsync_dir
from audiovec.errors import ModelDownloadError, ModelLoadError

__all__ = ["CACHE_ENV", "OFFLINE_ENV", "RemoteFile", "cache_root", "cached_file", "extract_tar", "fetch", "offline"]

logger = logging.getLogger(__name__)

#: Environment variable naming the download cache folder.
CACHE_ENV = "AUDIOVEC_CACHE"
#: Environment variable that forbids every download when set to ``1`` (``HF_HUB_OFFLINE=1`` does the same).
OFFLINE_ENV = "AUDIOVEC_OFFLINE"

_TRUE = {"1", "true", "yes", "on"}
_BLOCK = 1 << 20
#: Seconds a single read may block (a stalled server fails instead of hanging); not a limit on the whole download.
READ_TIMEOUT_S = 30.0
#: Largest download accepted when the size is not published.
DEFAULT_MAX_BYTES = 2 << 30


def offline(local_files_only: bool = False) -> bool:
    """Whether downloads are forbidden: ``local_files_only``, ``AUDIOVEC_OFFLINE=1`` or ``HF_HUB_OFFLINE=1``."""
    if local_files_only:
        return True
    return any(os.environ.get(name, "").strip().lower() in _TRUE for name in (OFFLINE_ENV, "HF_HUB_OFFLINE"))


def cache_root() -> Path:
    """The download cache: ``$AUDIOVEC_CACHE``, else ``$XDG_CACHE_HOME/audiovec``, else ``~/.cache/audiovec``."""
    if env := os.environ.get(CACHE_ENV):
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "audiovec"


@dataclass(frozen=True)
class RemoteFile:
    """A file published at ``url`` with a known size and SHA-256.

    Attributes:
        url: Where to download it from.
        filename: Its name in the cache.
        sha256: Hex SHA-256 of its bytes, as published.
        size: Its size in bytes, as published.
        subdir: The cache sub-folder (``<cache_root>/<subdir>/<filename>``).
    """

    url: str
    filename: str
    sha256: str
    size: int
    subdir: str

    def path(self, cache_dir: str | os.PathLike[str] | None = None) -> Path:
        """Where the file is cached (under ``cache_dir``, default :func:`cache_root`)."""
        root = Path(cache_dir).expanduser() if cache_dir is not None else cache_root()
        return root / self.subdir / self.filename


def fetch(
    url: str,
    dest: Path,
    *,
    sha256: str | None = None,
    size: int | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    timeout: float = READ_TIMEOUT_S,
    feature: str = "audiovec",
) -> Path:
    """Download ``url`` to ``dest`` atomically, checking the published ``size`` and ``sha256`` when given.

    Args:
        url: An ``http(s)://`` or ``file://`` URL.
        dest: The final path; its folder is created.
        sha256: Expected hex SHA-256 (``None``: not checked).
        size: Expected size in bytes (``None``: not checked, but capped at ``max_bytes``).
        max_bytes: Refuse a response larger than this.
        timeout: Seconds one read may block.
        feature: Who downloads, for messages.

    Returns:
        ``dest``.

    Raises:
        ModelDownloadError: The download failed, was larger than allowed, or its size or SHA-256 differs from
            the published one (nothing is left at ``dest`` unless it was there before).
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    limit = size if size is not None else max_bytes
    logger.info("%s: downloading %s to %s", feature, url, dest)

    def download(tmp: Path) -> None:  # into the temporary file that atomic_write renames only if this returns
        digest = hashlib.sha256()
        got = 0
        request = urllib.request.Request(url, headers={"User-Agent": "audiovec"})
        with urllib.request.urlopen(request, timeout=timeout) as response, open(tmp, "wb") as out:
            while block := response.read(_BLOCK):
                got += len(block)
                if got > limit:
                    raise ModelDownloadError(
                        f"{feature}: {url} sent more than the {'published size of' if size else 'limit of'} "
                        f"{limit:,} bytes; download refused"
                    )
                digest.update(block)
                out.write(block)
        if size is not None and got != size:
            raise ModelDownloadError(f"{feature}: {url} sent {got:,} bytes, expected {size:,} (incomplete download)")
        if sha256 is not None and digest.hexdigest() != sha256.lower():
            raise ModelDownloadError(
                f"{feature}: {url} does not have the published SHA-256: expected {sha256}, got "
                f"{digest.hexdigest()}. The file was deleted; the server may have changed it."
            )

    try:
        atomic_write(dest, download)
    except (OSError, urllib.error.URLError, ValueError) as err:  # URLError, timeouts and HTTP errors are OSErrors
        raise ModelDownloadError(f"{feature}: could not download {url}: {type(err).__name__}: {err}") from err
    return dest


def cached_file(
    remote: RemoteFile,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    local_files_only: bool = False,
    feature: str = "audiovec",
    hint: str = "",
) -> Path:
    """The cached copy of ``remote``, downloaded (and checked) first if it is not there.

    A cached file whose size differs from the published one is downloaded again (its SHA-256 was checked when
    it was written, so a full hash is not recomputed on every load).

    Args:
        remote: What to get.
        cache_dir: The cache root (default :func:`cache_root`).
        local_files_only: Never download (also when :func:`offline` says so).
        feature: Who asks, for messages.
        hint: Appended to the offline error, e.g. how to pass a local file instead.

    Raises:
        ModelLoadError: Offline and the file is not cached.
        ModelDownloadError: The download failed or did not match the published checksum.
    """
    path = remote.path(cache_dir)
    if path.is_file() and path.stat().st_size == remote.size:
        return path
    if offline(local_files_only):
        raise ModelLoadError(
            f"{feature}: {remote.filename} is not in the cache (looked for {str(path)!r}) and downloads are "
            f"disabled (local_files_only=True, {OFFLINE_ENV}=1 or HF_HUB_OFFLINE=1). Run once with network "
            f"access to download it from {remote.url}{hint}"
        )
    return fetch(remote.url, path, sha256=remote.sha256, size=remote.size, feature=feature)


def extract_tar(archive: Path, dest: Path, *, feature: str = "audiovec") -> Path:
    """Unpack a (gzipped) tar archive into ``dest`` atomically: a folder beside it is renamed into place.

    Members that would land outside ``dest`` (absolute paths, ``..``, links) are refused (``tarfile``'s
    ``data`` filter).

    Raises:
        ModelDownloadError: The archive is not a readable tar file or holds unsafe members.
    """
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        if dest.exists():  # another process finished first: keep theirs
            shutil.rmtree(tmp, ignore_errors=True)
            return dest
        os.replace(tmp, dest)
    except (tarfile.TarError, OSError) as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ModelDownloadError(f"{feature}: cannot unpack {archive}: {type(err).__name__}: {err}") from err
    fsync_dir(dest.parent)
    return dest

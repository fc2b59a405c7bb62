"""Where a Hugging Face model is loaded from, and what identifies its weights in ``spec()``.

``model`` is a local directory written by ``save_pretrained`` or a Hub id. Online, transformers resolves and
downloads a Hub id into the Hugging Face cache. Offline (``local_files_only=True`` or ``HF_HUB_OFFLINE=1``), a Hub
id is looked up in the cache by path, without any Hub client call (huggingface_hub may contact the Hub even with
``local_files_only``), and its snapshot directory is loaded.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from audiovec._hashing import sha256_bytes, sha256_file
from audiovec.embedders.hf.config import HFAudioConfig
from audiovec.errors import ModelLoadError

__all__ = ["describe", "fingerprint", "resolve_source"]


def describe(c: HFAudioConfig, offline: bool) -> str:
    """The model and loading options, for error messages."""
    return (
        f"Hugging Face model {c.model!r} (revision={c.revision or 'default'}, local_files_only={offline}, "
        f"cache_dir={c.cache_dir or 'default'})"
    )


def resolve_source(c: HFAudioConfig, offline: bool) -> tuple[str, dict[str, Any]]:
    """Where to load from, and the keyword arguments for ``from_pretrained``.

    Raises:
        ModelLoadError: ``model`` looks like a path but is not a directory, or (offline) the Hub id is not cached.
    """
    path = Path(c.model).expanduser()
    if path.is_dir():
        return str(path), {"local_files_only": True}
    if path.is_absolute() or c.model.startswith((".", "~")) or c.model.count("/") > 1 or path.exists():
        raise ModelLoadError(f"cannot load {describe(c, offline)}: {c.model!r} is not a model directory")
    if not offline:
        kw: dict[str, Any] = {}
        if c.revision is not None:
            kw["revision"] = c.revision
        if c.cache_dir is not None:
            kw["cache_dir"] = c.cache_dir
        return c.model, kw
    try:
        from huggingface_hub import try_to_load_from_cache

        hit = try_to_load_from_cache(c.model, "config.json", cache_dir=c.cache_dir, revision=c.revision)
    except Exception as err:  # e.g. an invalid repo id
        raise ModelLoadError(f"cannot load {describe(c, offline)}: {type(err).__name__}: {err}") from err
    if not isinstance(hit, str):
        raise ModelLoadError(
            f"cannot load {describe(c, offline)}: it is not in the Hugging Face cache and the network may not be "
            f"used; download it once (huggingface-cli download {c.model}) or pass a local directory"
        )
    return str(Path(hit).parent), {"local_files_only": True}


def fingerprint(where: str, c: HFAudioConfig, hf_config: Any) -> dict[str, Any]:
    """Commit (Hub models) and a SHA-256 digest over the weight files' names and contents.

    ``where`` is the directory the model was loaded from, or a Hub id that transformers downloaded; then the
    snapshot directory is found in the cache. Files in the Hugging Face cache are links to blobs named by their
    SHA-256 (for weights, which are Git LFS files), so they are not read again.
    """
    root = Path(where)
    commit = getattr(hf_config, "_commit_hash", None)
    if not root.is_dir():
        try:
            from huggingface_hub import try_to_load_from_cache

            hit = try_to_load_from_cache(where, "config.json", cache_dir=c.cache_dir, revision=c.revision)
        except Exception:  # pragma: no cover - the model was loaded from there a moment ago
            hit = None
        if not isinstance(hit, str):
            return {"commit": commit, "weights_sha256": None}
        root = Path(hit).parent
    if root.parent.name == "snapshots" and re.fullmatch(r"[0-9a-f]{40}", root.name):
        commit = commit or root.name
    files: list[Path] = []
    for pattern in ("*.safetensors", "pytorch_model*.bin"):
        files = sorted(root.glob(pattern))
        if files:
            break
    digests = []
    for path in files:
        real = Path(os.path.realpath(path))
        blob = real.name if re.fullmatch(r"[0-9a-f]{64}", real.name) else sha256_file(real)
        digests.append(f"{path.name}:{blob}")
    weights = sha256_bytes("\n".join(digests).encode())[:16] if digests else None
    return {"commit": commit, "weights_sha256": weights}

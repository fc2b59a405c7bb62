"""Network policy of every embedder that can download weights (Hugging Face Hub, TF Hub)."""

from __future__ import annotations

import os

__all__ = ["offline_requested"]

_TRUE = {"1", "true", "yes", "on"}


def offline_requested(local_files_only: bool) -> bool:
    """True when no network access is allowed: ``local_files_only`` or the environment's ``HF_HUB_OFFLINE=1``."""
    return local_files_only or os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE

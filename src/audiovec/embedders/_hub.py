"""Network policy of every embedder that can download weights (Hugging Face Hub, TF Hub, checksummed files)."""

from __future__ import annotations

from audiovec._download import offline

__all__ = ["offline_requested"]


def offline_requested(local_files_only: bool) -> bool:
    """True when no network access is allowed: ``local_files_only``, ``AUDIOVEC_OFFLINE=1`` or ``HF_HUB_OFFLINE=1``.

    See :func:`audiovec._download.offline`, the one place this rule lives.
    """
    return offline(local_files_only)

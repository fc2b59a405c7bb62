"""The headless browser the report and search-page tests drive."""

from __future__ import annotations

import shutil

from ci import skip_or_fail


def find_chromium(purpose: str) -> str:
    """The Chromium executable; in CI (or with AUDIOVEC_REQUIRE_SHARED=1) a missing browser fails the test."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        skip_or_fail(f"chromium is not installed (apt-get install chromium), needed to {purpose}")
    return path

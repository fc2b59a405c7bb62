"""The headless browser the report and search-page tests drive."""

from __future__ import annotations

import os
import shutil

import pytest


def find_chromium(purpose: str) -> str:
    """The Chromium executable; in CI (or with AUDIOVEC_REQUIRE_SHARED=1) a missing browser fails the test."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI") or os.environ.get("AUDIOVEC_REQUIRE_SHARED") == "1":
            pytest.fail(f"chromium is not installed (apt-get install chromium); CI must {purpose}")
        pytest.skip("chromium not installed")
    return path

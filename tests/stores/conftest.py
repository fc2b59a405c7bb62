"""Fixtures of the store tests."""

from __future__ import annotations

import faiss
import pytest


@pytest.fixture(autouse=True)
def _one_faiss_thread():
    """One faiss thread: its OpenMP regions are very slow on an oversubscribed CI machine, and no test needs more."""
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(before)

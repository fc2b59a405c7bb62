"""Random vectors for store tests."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def rand(n: int, dim: int = 8, seed: int = 0) -> NDArray[np.float32]:
    """``n`` standard-normal ``float32`` vectors of ``dim`` dimensions (seeded)."""
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)

"""The peak picker's maximum filter equals SciPy's, and identification no longer imports scipy.ndimage."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy import ndimage

from audiovec.identify.fingerprint._peaks import maximum_filter


@pytest.mark.parametrize("shape", [(1, 1), (5, 3), (37, 64), (600, 257)])
@pytest.mark.parametrize("size", [(1, 1), (2, 3), (3, 3), (4, 7), (21, 31), (64, 1), (8, 16)])
def test_maximum_filter_equals_scipy(shape, size):
    x = np.random.default_rng(sum(shape) + sum(size)).standard_normal(shape).astype(np.float32)
    x[0, 0] = -np.inf
    want = ndimage.maximum_filter(x, size=size, mode="constant", cval=-np.inf)
    got = maximum_filter(x, size)
    assert got.dtype == x.dtype and np.array_equal(got, want)


def test_identifying_a_recording_does_not_import_scipy_ndimage(tmp_path, shared_file):
    track = shared_file("data/music/jamendo_11266.mp3")
    excerpt = shared_file("data/music/jamendo_11266_query_69s-89s.mp3")
    code = (
        "import sys\n"
        "from audiovec.identify import Identifier\n"
        f"ident = Identifier.create({str(tmp_path / 'id')!r})\n"
        f"ident.add({str(track)!r}, track_id='jamendo')\n"
        f"print(ident.identify({str(excerpt)!r}).track_id)\n"
        "print('scipy.ndimage' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["jamendo", "False"]

"""``audiovec identify`` against a fingerprint index imports only what identification needs (a cold start)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import soundfile as sf

from audiovec.identify import Identifier

#: Modules a fingerprint-only identification must not import: the vector mode's pooling, embedders, ingest path
#: and stores, the other commands of the command line, the heavy libraries of the extras, and pydantic (about
#: 0.1 s of a one-query command's CPU; the fingerprint config is a plain dataclass).
NOT_NEEDED = [
    "pydantic",
    "audiovec.pooling",
    "audiovec.embedders",
    "audiovec.embeddings",
    "audiovec.ingest",
    "audiovec.stores",
    "audiovec._registry",
    "audiovec.cli.bench",
    "audiovec.cli.embed",
    "audiovec.cli.index",
    "audiovec.cli.info",
    "audiovec.cli.service",
    "scipy",
    "pandas",
    "pyarrow",
    "sklearn",
    "torch",
    "tensorflow",
    "faiss",
]


def test_identify_on_a_fingerprint_index_imports_only_what_it_needs(tmp_path):
    rng = np.random.default_rng(0)
    track = tmp_path / "track.wav"
    sf.write(track, rng.standard_normal(8000 * 30).astype(np.float32) * 0.3, 8000)
    audio, sr = sf.read(track, dtype="float32")
    query = tmp_path / "query.wav"
    sf.write(query, audio[8000 * 10 : 8000 * 16], sr)
    db = tmp_path / "db"
    ident = Identifier.create(db)
    ident.add(track, "track")
    ident.save()

    code = (
        "import json, sys\n"
        "from audiovec.cli import main\n"
        f"status = main(['identify', '--db', {str(db)!r}, {str(query)!r}, '--json'])\n"
        f"print(json.dumps([status, [m for m in {NOT_NEEDED!r} if m in sys.modules]]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    result, (status, loaded) = (json.loads(line) for line in proc.stdout.splitlines())
    assert (status, result["track_id"], round(result["offset"])) == (0, "track", 10)
    assert loaded == [], f"imported by a fingerprint-only `audiovec identify`: {loaded}"


def test_a_fingerprint_only_identifier_builds_its_saved_pipeline_when_used(tmp_path):
    from audiovec.identify import default_pipeline

    Identifier.create(tmp_path / "db")
    ident = Identifier.open(tmp_path / "db")
    assert ident.pipeline == default_pipeline()
    ident.save()
    assert Identifier.open(tmp_path / "db").pipeline == default_pipeline()


def test_identify_on_a_fingerprint_index_starts_openblas_with_one_thread_and_leaves_the_environment(tmp_path):
    Identifier.create(tmp_path / "db")
    query = tmp_path / "query.wav"
    sf.write(query, np.random.default_rng(1).standard_normal(8000 * 3).astype(np.float32) * 0.3, 8000)
    code = (
        "import json, os, sys\n"
        "from audiovec.cli import main\n"
        f"status = main(['identify', '--db', {str(tmp_path / 'db')!r}, {str(query)!r}])\n"
        "from threadpoolctl import threadpool_info\n"
        "pools = [p['num_threads'] for p in threadpool_info() if p['internal_api'] == 'openblas']\n"
        "print(json.dumps([status, 'OPENBLAS_NUM_THREADS' in os.environ, pools]))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    status, env_left, pools = json.loads(proc.stdout.splitlines()[-1])
    assert (status, env_left) == (1, False)  # no match in an empty index; the variable was set while loading only
    assert all(n == 1 for n in pools), pools  # NumPy built without OpenBLAS: nothing to check

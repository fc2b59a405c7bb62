"""Spec keys are cache keys: the built-ins' keys must not change when their code is reorganised.

The expected keys were computed by the implementation that first wrote caches with them; a change here would
silently orphan every cached embedding, so a new key needs a new ``version`` and a deliberate update of this file.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from audiovec import get_embedder
from audiovec.embedders import EmbedderSpec

KEYS = [
    ("mfcc", {}, "ee755c1a10a53b6a"),
    ("logmel", {}, "0f048dd57c3fe722"),
    ("mfcc", {"sample_rate": 8000, "n_mfcc": 13, "chunk_s": 5}, "c7286f39bd3e3ad4"),
    ("logmel", {"n_mels": 40, "fmax": 6000.0}, "bde5bcffbcdf0b9f"),
    ("birdnet", {}, "1cc5cec460570536"),
    ("birdnet", {"overlap_s": 1.5, "num_threads": 1}, "7252997ed8697241"),
    ("resemblyzer", {}, "5fd98f8aa47433a4"),
    ("resemblyzer", {"hop_s": 0.5, "num_threads": 1, "device": "cpu"}, "72858f460d4f3557"),
]


@pytest.mark.parametrize(("name", "params", "key"), KEYS)
def test_builtin_spec_keys_are_unchanged(name, params, key):
    assert get_embedder(name, **params).spec().key() == key


def test_yamnet_tflite_spec_key_is_unchanged(shared_file):
    emb = get_embedder("yamnet", model=str(shared_file("models/yamnet.tflite")), num_threads=1)
    assert emb.spec().key() == "4b4012c93aa24ac2"


def test_key_is_the_digest_of_the_sorted_compact_json():
    spec = EmbedderSpec(name="x", version="2", params={"b": [1, 2.5], "a": None, "c": {"z": "é", "y": True}})
    blob = json.dumps(spec.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    assert spec.key() == hashlib.sha256(blob.encode()).hexdigest()[:16]
    assert (
        spec.key()
        == EmbedderSpec(name="x", version="2", params={"c": {"y": True, "z": "é"}, "b": [1, 2.5], "a": None}).key()
    )

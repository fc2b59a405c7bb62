"""Datasets (folder, manifest, list, FSDD, demo) and the embedding cache."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import soundfile as sf

from audiovec import get_embedder, load
from audiovec._hashing import sha256_file as file_sha256
from audiovec.benchmark.datasets import FolderDataset, ListDataset, ManifestDataset, demo_dataset, fsdd_dataset
from audiovec.data import demo_dir
from audiovec.errors import ConfigError
from audiovec.ingest import EmbeddingCache


def test_demo_dataset_labels_and_groups():
    ds = demo_dataset()
    assert len(ds) == 42 and len(ds.labels()) == 9
    assert ds.groups() == {"Audiophob", "rumpf_kit_z01_h2", "sonicpi"}
    assert all(it.metadata["license"] in {"CC0-1.0", "CC-BY-3.0"} for it in ds)


def test_subsets_are_stratified_nested_and_seeded():
    ds = demo_dataset()
    small, big = ds.subset(9), ds.subset(25)
    assert {it.label for it in small} == ds.labels()  # one per class first
    assert {it.path for it in small} <= {it.path for it in big}
    assert [it.path for it in ds.subset(9, seed=1)] != [it.path for it in small]
    assert len(ds.subset(100)) == 42
    with pytest.raises(ConfigError):
        ds.subset(0)


def test_folder_dataset_labels_from_subfolders_and_group_pattern(tmp_path):
    root = tmp_path / "set"
    shutil.copytree(demo_dir() / "kick", root / "kick")
    shutil.copytree(demo_dir() / "snare", root / "snare")
    (root / "notes.txt").write_text("not audio")
    ds = FolderDataset(root, group_pattern=r"^(.+?)__")
    assert len(ds) == 12 and ds.labels() == {"kick", "snare"}
    assert ds.groups() == {"audiophob", "rumpf_kit_z01_h2", "sonicpi"}
    with pytest.raises(ConfigError):
        FolderDataset(tmp_path / "missing")


def test_manifest_and_list_datasets(tmp_path, shared_data):
    drums = ManifestDataset(shared_data / "drums" / "metadata.tsv", group_col="kit")
    assert len(drums) == 869 and len(drums.groups()) == 18
    assert drums[0].metadata["instrument"] and load(drums[0].path).sample_rate == 16000
    csv_file = tmp_path / "m.csv"
    csv_file.write_text("file,cls\na.wav,x\n")
    with pytest.raises(ConfigError, match="no column 'path'"):
        ManifestDataset(csv_file)
    assert ManifestDataset(csv_file, path_col="file", label_col="cls")[0].path == str(tmp_path / "a.wav")
    lst = ListDataset(["a.wav", "b.wav"], labels=["x", "y"])
    assert [i.label for i in lst] == ["x", "y"]
    with pytest.raises(ConfigError):
        ListDataset(["a.wav"], labels=["x", "y"])


def test_fsdd_labels_and_groups(shared_data):
    by_digit = fsdd_dataset(shared_data / "fsdd", "digit")
    by_speaker = fsdd_dataset(shared_data / "fsdd", "speaker")
    assert len(by_digit) == 3000 and len(by_digit.labels()) == 10 and len(by_digit.groups()) == 6
    assert by_speaker.labels() == by_digit.groups()


def test_cache_round_trip_content_keyed_and_resilient(tmp_path):
    emb = get_embedder("mfcc")
    src = demo_dir() / "kick" / "sonicpi__bd_fat__l0.flac"
    copy = tmp_path / "renamed.flac"
    shutil.copy(src, copy)
    cache = EmbeddingCache(tmp_path / "cache")
    digest = file_sha256(src)
    assert file_sha256(copy) == digest  # content, not path
    assert cache.get(emb.spec(), digest) is None
    fe = emb.embed(load(src))
    path = cache.put(emb.spec(), digest, fe, {"extract_s": 0.5})
    got, meta = cache.get(emb.spec(), digest)
    np.testing.assert_array_equal(got.vectors, fe.vectors)
    np.testing.assert_array_equal(got.timestamps, fe.timestamps)
    assert got.duration == fe.duration and meta == {"extract_s": 0.5}
    assert (emb.spec(), digest) in cache
    assert cache.get(get_embedder("mfcc", n_mfcc=13).spec(), digest) is None  # other config: miss
    path.write_bytes(b"garbage")  # a corrupt entry is dropped, not fatal
    assert cache.get(emb.spec(), digest) is None and not path.exists()
    edited = tmp_path / "edited.flac"
    x, sr = sf.read(src)
    sf.write(edited, x * 0.5, sr)
    assert file_sha256(edited) != digest

"""Vector stores: shared validation, scores, registry, ExactStore and FaissStore specifics."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import faiss
import numpy as np
import pytest

import audiovec.stores as stores
from audiovec.errors import (
    ConfigError,
    DimensionMismatchError,
    DuplicateIdError,
    DuplicatePluginError,
    InvalidIdError,
    InvalidMetadataError,
    InvalidVectorError,
    PluginLoadError,
    StoreError,
    UnknownPluginError,
)
from audiovec.metrics import recall_at_k
from audiovec.stores import (
    Eq,
    ExactStore,
    FlatIndex,
    Hit,
    HNSWIndex,
    In,
    IVFFlatIndex,
    IVFPQIndex,
    IVFSQ8Index,
    Range,
    SearchParams,
    get_store,
    list_stores,
    parse_index,
    parse_metric,
    register_store,
    store_info,
)
from audiovec.stores.faiss import FaissStore, set_threads
from audiovec.stores.persistence import read_manifest
from audiovec.stores.records import MAX_METADATA_BYTES
from audiovec.stores.validation import prepare_ids, prepare_metadata, prepare_vectors
from audiovec.testing import clustered_vectors
from audiovec.testing._store_checks import assert_same_hits
from vectors import rand

# ------------------------------------------------------------------------------------------- configs


@pytest.mark.parametrize(
    ("name", "metric"),
    [
        ("cosine", "cosine"),
        ("COSINE", "cosine"),
        ("IP", "ip"),
        ("inner_product", "ip"),
        ("L2", "l2"),
        ("euclidean", "l2"),
    ],
)
def test_parse_metric(name, metric):
    assert parse_metric(name) == metric


def test_parse_metric_rejects_unknown():
    with pytest.raises(ConfigError, match="unknown metric 'hamming'"):
        parse_metric("hamming")


def test_parse_index():
    assert parse_index("hnsw") == HNSWIndex()
    assert parse_index(None) == FlatIndex()
    assert parse_index("IVF_FLAT") == IVFFlatIndex()
    assert parse_index({"kind": "ivf_flat", "nlist": 8}) == IVFFlatIndex(nlist=8)
    assert parse_index({"kind": "hnsw", "m": 8, "ef_search": 10}) == HNSWIndex(m=8, ef_search=10)
    cfg = IVFPQIndex(nlist=4)
    assert parse_index(cfg) is cfg
    with pytest.raises(ConfigError, match="unknown index kind 'annoy'"):
        parse_index("annoy")
    with pytest.raises(ConfigError, match="m"):
        parse_index({"kind": "hnsw", "m": 0})
    with pytest.raises(ConfigError, match="nlsit"):
        parse_index({"kind": "ivf", "nlsit": 8})
    with pytest.raises(ConfigError):
        parse_index(42)  # type: ignore[arg-type]


def test_index_structure_and_training_thresholds():
    assert HNSWIndex(ef_search=10).structure() == HNSWIndex(ef_search=99).structure()
    assert HNSWIndex(m=8).structure() != HNSWIndex(m=16).structure()
    assert IVFFlatIndex(nprobe=1, train_size=5).structure() == IVFFlatIndex(nprobe=9).structure()
    assert IVFFlatIndex(nlist=100).train_threshold() == 3900
    assert IVFFlatIndex(nlist=100, train_size=10).train_threshold() == 10
    assert IVFPQIndex(nlist=10).train_threshold() == 39 * 256
    assert IVFPQIndex(nlist=10, pq_nbits=4).min_train_points() == 16
    assert IVFPQIndex().resolved_m(512) == 128
    assert IVFPQIndex().resolved_m(30) == 6
    with pytest.raises(ConfigError, match="pq_m=7 must divide dim=512"):
        IVFPQIndex(pq_m=7).resolved_m(512)
    assert FlatIndex.exact and not HNSWIndex.exact
    assert IVFPQIndex.lossy and IVFSQ8Index.lossy and not IVFFlatIndex.lossy


def test_search_params_validation(tmp_path):
    s = ExactStore(dim=4)
    s.add(rand(3, 4))
    assert len(s.search(rand(1, 4), k=2, params=SearchParams(ef_search=5))[0]) == 2
    with pytest.raises(ConfigError, match="bogus"):
        s.search(rand(1, 4), params={"bogus": 1})
    with pytest.raises(ConfigError, match="nprobe"):
        s.search(rand(1, 4), params={"nprobe": -1})
    with pytest.raises(ConfigError, match="SearchParams or a dict"):
        s.search(rand(1, 4), params=[1])  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------- validation


def test_prepare_vectors_conversions():
    x = np.arange(12, dtype=np.int64).reshape(3, 4)
    out = prepare_vectors(x, 4)
    assert out.dtype == np.float32 and out.flags.c_contiguous and out.shape == (3, 4)
    assert prepare_vectors([1.0, 2.0, 3.0, 4.0], 4).shape == (1, 4)
    assert prepare_vectors(np.zeros((0, 4)), 4).shape == (0, 4)
    f = np.asfortranarray(rand(5, 4))
    assert prepare_vectors(f, 4).flags.c_contiguous


def test_prepare_vectors_normalises_without_touching_input():
    x = np.array([[3.0, 4.0], [0.0, 2.0]], np.float32)
    out = prepare_vectors(x, 2, normalize=True)
    assert np.allclose(out, [[0.6, 0.8], [0.0, 1.0]])
    assert x[0, 0] == 3.0


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (np.array([[True, False]]), InvalidVectorError, "dtype bool"),
        (np.array([[1 + 1j, 2]]), InvalidVectorError, "dtype complex"),
        (np.array([["a", "b"]]), InvalidVectorError, "dtype <U1"),
        (np.zeros((2, 2, 2)), InvalidVectorError, "shape"),
        ([[1.0, 2.0], [3.0]], InvalidVectorError, "numeric array"),
        (np.zeros((2, 3)), DimensionMismatchError, "dimension 3, the store has dimension 2"),
        (np.array([[1.0, np.nan], [1.0, 1.0], [np.inf, 0]]), InvalidVectorError, "2 vector.*first at row 0"),
        (np.array([[1.0, 1.0], [1e300, 0.0]]), InvalidVectorError, "row 1"),
    ],
)
def test_prepare_vectors_errors(value, error, message):
    with pytest.raises(error, match=message):
        prepare_vectors(value, 2)


def test_prepare_vectors_zero_vector_for_cosine():
    with pytest.raises(InvalidVectorError, match=r"zero norm.*row 1"):
        prepare_vectors(np.array([[1.0, 0.0], [0.0, 0.0]]), 2, normalize=True)
    assert prepare_vectors(np.zeros((1, 2)), 2).shape == (1, 2)  # fine without normalisation (ip, l2)


def test_prepare_ids():
    assert prepare_ids([3, np.int64(4)], 2) == ([3, 4], "int")
    assert prepare_ids(np.array([1, 2], np.uint8)) == ([1, 2], "int")
    assert prepare_ids(np.array(["a", "b"])) == (["a", "b"], "str")
    assert prepare_ids("abc") == (["abc"], "str")  # one id, not three characters
    assert prepare_ids(7) == ([7], "int")
    assert prepare_ids([]) == ([], None)
    ids, kind = prepare_ids([2**63 - 1, -(2**63)])
    assert kind == "int" and type(ids[0]) is int


@pytest.mark.parametrize(
    ("ids", "message"),
    [
        ([1, "a"], "mix int and str"),
        ([True], "bool"),
        ([np.bool_(True)], "bool"),
        ([1.0], "float"),
        ([None], "NoneType"),
        ([2**63], "int64"),
        (np.array([2**64 - 1], np.uint64), "int64"),
        ([""], "empty string"),
        (["a\x00b"], "NUL"),
        (["x" * 513], "513 bytes"),
        (["é" * 257], "514 bytes"),
        (["\ud800"], "Unicode"),
        (np.array([1.5]), "dtype float64"),
        (np.zeros((2, 2), np.int64), "one-dimensional"),
        ({"a": 1}, "sequence"),
    ],
)
def test_prepare_ids_errors(ids, message):
    with pytest.raises(InvalidIdError, match=message):
        prepare_ids(ids)


def test_prepare_ids_length():
    with pytest.raises(InvalidIdError, match="got 2 ids for 3 vectors"):
        prepare_ids([1, 2], 3)


def test_prepare_metadata():
    assert prepare_metadata(None, 2) == ["{}", "{}"]
    assert prepare_metadata({"a": 1}, 1) == ['{"a":1}']
    out = prepare_metadata(
        [{"f": np.float32(0.5), "i": np.int64(2), "b": np.bool_(True), "p": Path("/x/y.wav"), "t": (1, 2)}, None], 2
    )
    assert json.loads(out[0]) == {"f": 0.5, "i": 2, "b": True, "p": "/x/y.wav", "t": [1, 2]}
    assert out[1] == "{}"
    assert json.loads(prepare_metadata([{"arr": np.arange(3)}], 1)[0]) == {"arr": [0, 1, 2]}
    assert json.loads(prepare_metadata([{"u": "鼓"}], 1)[0]) == {"u": "鼓"}


@pytest.mark.parametrize(
    ("metadata", "n", "message"),
    [
        ({"a": 1}, 2, "one metadata mapping for 2 vectors"),
        ([{"a": 1}], 2, "got 1 metadata records for 2 vectors"),
        (["label"], 1, r"metadata\[0\] must be a mapping"),
        ("label", 1, "list of mappings"),
        ([{"x": float("nan")}], 1, r"metadata\[0\].x: nan"),
        ([{"x": {"y": [1, float("inf")]}}], 1, r"metadata\[0\].x.y\[1\]"),
        ([{1: "a"}], 1, "JSON keys must be str"),
        ([{"x": {2: "a"}}], 1, "JSON keys must be str"),
        ([{"x": 2**64}], 1, "int64"),
        ([{"x": {1, 2}}], 1, "set"),
        ([{"x": b"bytes"}], 1, "bytes"),
        ([{"x": "\udc00"}], 1, "Unicode"),
        ([{"x": "a" * MAX_METADATA_BYTES}], 1, "bytes of JSON; the limit is 65536"),
    ],
)
def test_prepare_metadata_errors(metadata, n, message):
    with pytest.raises(InvalidMetadataError, match=message):
        prepare_metadata(metadata, n)


def test_prepare_metadata_depth_limit():
    deep: dict = {}
    node = deep
    for _ in range(40):
        node["x"] = {}
        node = node["x"]
    with pytest.raises(InvalidMetadataError, match="32 levels"):
        prepare_metadata([deep], 1)


# ------------------------------------------------------------------------------------------- registry


def test_registry_lists_builtins_without_importing_backends():
    code = (
        "import sys, audiovec.stores as s; names = s.list_stores(); "
        "assert {'exact', 'faiss', 'milvus'} <= set(names), names; "
        "assert 'faiss' not in sys.modules and 'pymilvus' not in sys.modules, 'a backend was imported'; "
        "s.FaissStore; assert 'faiss' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_store_info_and_get_store(tmp_path):
    assert {"exact", "faiss"} <= set(list_stores())
    assert store_info("faiss").target == "audiovec.stores.faiss:FaissStore"
    assert store_info("exact").distribution == "audiovec"
    s = get_store("exact", dim=4, metric="l2")
    assert isinstance(s, ExactStore) and s.metric == "l2"
    f = get_store("faiss", {"path": tmp_path / "f", "dim": 4}, index="flat")
    assert isinstance(f, FaissStore) and f.index.kind == "flat" and f.metric == "cosine"
    f.close()
    with pytest.raises(ConfigError, match=r"invalid arguments for store 'exact'.*colour"):
        get_store("exact", dim=4, colour="red")
    with pytest.raises(UnknownPluginError, match=r"no vector store named 'nope'"):
        get_store("nope")


def test_register_store():
    class MyStore(ExactStore):
        name = "mine"

    register_store("test-mine", MyStore)
    try:
        assert isinstance(get_store("test-mine", dim=3), MyStore)
        with pytest.raises(DuplicatePluginError):
            register_store("test-mine", ExactStore)
        register_store("test-mine", ExactStore, clobber=True)
        assert type(get_store("test-mine", dim=3)) is ExactStore
    finally:
        stores.registry._infos.pop("test-mine", None)
        stores.registry._loaded.pop("test-mine", None)

    class NotAStore:
        name = "x"

        def add(self): ...

    with pytest.raises(PluginLoadError, match="lacks upsert, search, get, delete, count, close"):
        register_store("test-bad", NotAStore)


@pytest.mark.parametrize(
    ("name", "layout"),
    [("exact", ["data.npz", "manifest.json"]), ("faiss", ["index-000001.faiss", "manifest.json", "meta.sqlite"])],
)
def test_get_store_in_a_directory(name, layout, tmp_path):
    where = tmp_path / "nested" / "store"
    with get_store(name, directory=where, dim=4, metric="l2", index="flat") as s:
        assert s.path == where
        s.add(rand(3, 4), ids=["a", "b", "c"], metadata=[{"i": i} for i in range(3)])
    assert sorted(p.name for p in where.iterdir()) == layout and read_manifest(where).store == name
    with get_store(name, {"metric": "l2"}, directory=str(where)) as s:  # reopened: dim and index from the manifest
        assert (s.dim, s.count(), s.get(["b"])[0].metadata) == (4, 3, {"i": 1})
    with pytest.raises(ConfigError, match="directory= or path=, not both"):
        get_store(name, directory=where, path=tmp_path / "other", dim=4)
    with pytest.raises(ConfigError, match=r"invalid arguments for store .*colour"):
        get_store(name, directory=tmp_path / "x", dim=4, colour="red")
    with pytest.raises(DimensionMismatchError):
        get_store(name, directory=where, dim=5)


def test_get_store_directory_for_plugins():
    class Pathless(ExactStore):
        """A BaseVectorStore subclass whose constructor has no path: the inherited open_in cannot place it."""

        name = "pathless"

        def __init__(self, *, dim: int) -> None:
            super().__init__(dim=dim)

    class DuckStore:
        """A protocol-only store class (no BaseVectorStore, no open_in)."""

        name = "duck"

        def __init__(self, path=None, dim=2): ...

        def add(self): ...

        def upsert(self): ...

        def search(self): ...

        def get(self): ...

        def delete(self): ...

        def count(self): ...

        def close(self): ...

    register_store("test-pathless", Pathless)
    register_store("test-duck", DuckStore)
    try:
        assert isinstance(get_store("test-pathless", dim=3), Pathless)
        with pytest.raises(ConfigError, match=r"takes no 'path' argument; it must override the classmethod open_in"):
            get_store("test-pathless", directory="somewhere", dim=3)
        with pytest.raises(ConfigError, match=r"'test-duck' .*cannot be opened in a directory: give the class"):
            get_store("test-duck", directory="somewhere")
    finally:
        for name in ("test-pathless", "test-duck"):
            stores.registry._infos.pop(name, None)
            stores.registry._loaded.pop(name, None)


# ------------------------------------------------------------------------------------------- ExactStore


def test_exact_store_layout_and_reopen(tmp_path):
    path = tmp_path / "exact"
    with ExactStore(path, dim=4, metric="ip") as s:
        s.add(rand(5, 4), ids=["a", "b", "c", "d", "e"], metadata=[{"i": i} for i in range(5)])
    assert sorted(p.name for p in path.iterdir()) == ["data.npz", "manifest.json"]
    manifest = read_manifest(path)
    assert manifest is not None and (manifest.store, manifest.dim, manifest.metric) == ("exact", 4, "ip")
    with ExactStore(path) as s:
        assert (s.dim, s.metric, s.id_type, s.count()) == (4, "ip", "str", 5)
        assert s.get(["c"])[0].metadata == {"i": 2}
        assert "c" in s and "z" not in s and 3 not in s and len(s) == 5
        assert repr(s).startswith("ExactStore(") and "count=5" in repr(s)


def test_exact_store_path_errors(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError, match="not a directory"):
        ExactStore(tmp_path / "file", dim=4)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("x")
    with pytest.raises(StoreError, match=r"non-empty directory without manifest\.json"):
        ExactStore(tmp_path / "full", dim=4)
    (tmp_path / "empty").mkdir()
    ExactStore(tmp_path / "empty", dim=4).close()  # an empty directory becomes a store
    with pytest.raises(ConfigError, match="dim is required"):
        ExactStore(tmp_path / "new")
    with pytest.raises(ConfigError, match="does not support index 'hnsw'"):
        ExactStore(dim=4, index="hnsw")
    with pytest.raises(ConfigError, match="id_type"):
        ExactStore(dim=4, id_type="uuid")
    with pytest.raises(ConfigError, match="dim must be a positive int"):
        ExactStore(dim=0)
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir()), "a temporary directory was left behind"


def test_manifest_errors(tmp_path):
    path = tmp_path / "s"
    ExactStore(path, dim=4).close()
    with pytest.raises(StoreError, match="holds a 'exact' store, not a 'faiss' store"):
        FaissStore(path)
    with pytest.raises(DimensionMismatchError, match="holds 4-d vectors; it was opened with dim=5"):
        ExactStore(path, dim=5)
    with pytest.raises(ConfigError, match="uses metric 'cosine'; it was opened with metric='l2'"):
        ExactStore(path, metric="l2")
    data = json.loads((path / "manifest.json").read_text())
    (path / "manifest.json").write_text(json.dumps({**data, "format_version": 99}))
    with pytest.raises(StoreError, match="format 99"):
        ExactStore(path)
    (path / "manifest.json").write_text("{not json")
    with pytest.raises(StoreError, match="cannot read"):
        ExactStore(path)
    (path / "manifest.json").write_text(json.dumps({**data, "dim": "many"}))
    with pytest.raises(StoreError, match="not a valid store manifest"):
        ExactStore(path)


def test_exact_store_id_type_fixed_at_creation(tmp_path):
    s = ExactStore(tmp_path / "s", dim=2, id_type="str")
    assert s.id_type == "str"
    assert all(isinstance(i, str) and len(i) == 32 for i in s.add(rand(3, 2)))
    with pytest.raises(InvalidIdError, match="holds str ids; got int ids"):
        s.add(rand(1, 2), ids=[1])
    with pytest.raises(InvalidIdError, match="holds str ids; got int ids"):
        s.get([1])
    s.close()
    with pytest.raises(ConfigError, match="holds str ids; it was opened with id_type='int'"):
        ExactStore(tmp_path / "s", id_type="int")


def test_exact_store_one_at_a_time_and_ties():
    s = ExactStore(dim=2, metric="ip")
    for i in range(1000):
        s.add(np.array([1.0, float(i % 3)], np.float32), metadata={"i": i})
    assert s.count() == 1000 and s.get([999])[0].metadata == {"i": 999}
    hits = s.search(np.array([0.0, 1.0], np.float32), k=3)[0]
    assert [h.id for h in hits] == [2, 5, 8]  # equal scores: insertion order


@pytest.mark.parametrize("metric", ["cosine", "ip", "l2"])
def test_exact_store_results_do_not_depend_on_batching_or_filters(metric):
    # every score comes from the query and the record alone (audiovec.stores.kernel), so these hold bit for bit
    base, queries = clustered_vectors(3000, 32, n_queries=40, seed=12)
    s = ExactStore(dim=32, metric=metric)
    s.add(base[:1000], metadata=[{"g": i % 3} for i in range(1000)])
    for i in range(1000, 3000):  # one at a time: the store's rows come from many separate writes
        s.add(base[i], metadata={"g": i % 3})
    batch = s.search(queries, k=10)
    assert [s.search(q, k=10)[0] for q in queries] == batch
    everything = s.search(queries, k=3000)
    filtered = s.search(queries, k=10, filter=In("g", [0, 1]))
    assert filtered == [[h for h in row if h.metadata["g"] != 2][:10] for row in everything]
    assert [row[:10] for row in everything] == batch


def test_generated_ids_continue_after_explicit_ids():
    s = ExactStore(dim=2)
    s.add(rand(2, 2), ids=[10, 4])
    assert s.add(rand(2, 2)) == [11, 12]
    s.delete([11, 12])
    assert s.add(rand(1, 2)) == [13]  # never reused


def test_closed_store():
    s = ExactStore(dim=2)
    s.close()
    s.close()
    assert s.closed
    with pytest.raises(StoreError, match="ExactStore is closed"):
        s.count()
    with pytest.raises(StoreError, match="closed"):
        s.save()
    assert "closed" in repr(s)


def test_store_attributes_are_read_only():
    s = ExactStore(dim=2, metric="ip")
    assert (s.dim, s.metric, s.id_type, s.index, s.closed) == (2, "ip", None, FlatIndex(), False)
    for name in ("dim", "metric", "id_type", "index", "closed"):
        with pytest.raises(AttributeError, match=f"ExactStore.{name} is read-only"):
            setattr(s, name, None)
    assert ExactStore.dim.__doc__ == "Vector dimension."
    with pytest.raises(AttributeError, match="is_trained is read-only"):
        FaissStore(dim=2).is_trained = False


def test_hit_fields():
    s = ExactStore(dim=2, metric="l2")
    s.add(np.array([[3.0, 4.0]], np.float32), ids=["p"], metadata={"label": "kick"})
    (hit,) = s.search(np.zeros(2, np.float32), k=1)[0]
    assert hit == Hit("p", -25.0, 25.0, {"label": "kick"})


# ------------------------------------------------------------------------------------------- FaissStore: files


def index_files(path):
    return sorted(p.name for p in path.iterdir() if p.name.startswith("index-") or p.name.startswith("."))


def test_faiss_layout_and_generations(tmp_path):
    path = tmp_path / "f"
    s = FaissStore(path, dim=8)
    assert s.index == HNSWIndex()  # the default
    assert index_files(path) == ["index-000000.faiss"]
    s.add(rand(10))
    s.save()
    assert index_files(path) == ["index-000001.faiss"]
    s.save()  # nothing changed: no new generation
    assert index_files(path) == ["index-000001.faiss"]
    s.delete([0])
    s.close()
    assert sorted(p.name for p in path.iterdir()) == ["index-000002.faiss", "manifest.json", "meta.sqlite"]
    with FaissStore(path) as s:
        assert s.count() == 9 and s.tombstones == 1


@pytest.mark.parametrize("journal", [True, False])
def test_faiss_crash_during_a_save(tmp_path, journal):
    path = tmp_path / "f"
    s = FaissStore(path, dim=8, index="flat", journal=journal)
    s.add(rand(10), metadata=[{"i": i} for i in range(10)])
    s.save()
    s.add(rand(5, seed=1))
    s.delete([0, 1])
    # a crash after the next generation's index file was written, before SQLite committed:
    faiss.write_index(s._fx, str(path / "index-000002.faiss"))
    (path / ".index-000003.faiss.1234abcd.tmp").write_bytes(b"half a file")
    s._db.close()  # the process dies: the open transaction is rolled back
    with FaissStore(path) as s2:
        if journal:  # every acknowledged change is replayed from the journal
            assert s2.count() == 13 and [r.id for r in s2.get([0, 1, 10, 14])] == [10, 14]
        else:  # without a journal, changes since the last save are lost, cleanly
            assert s2.count() == 10 and [r.id for r in s2.get([0, 1, 10])] == [0, 1]
        assert s2.get([3])[0].metadata == {"i": 3}
        assert index_files(path) == ["index-000001.faiss"]  # leftovers of the crashed save are gone
        assert not list(path.glob("*.tmp")) and not list(path.glob(".*.tmp"))
        s2.add(rand(1, seed=2))
    with FaissStore(path) as s3:
        assert s3.count() == (14 if journal else 11)


def test_faiss_detects_missing_or_inconsistent_index(tmp_path):
    path = tmp_path / "f"
    with FaissStore(path, dim=8, index="flat") as s:
        s.add(rand(10))
    (path / "index-000001.faiss").rename(path / "elsewhere")
    with pytest.raises(StoreError, match=r"missing index-000001\.faiss"):
        FaissStore(path)
    faiss.write_index(faiss.IndexIDMap2(faiss.IndexFlatIP(8)), str(path / "index-000001.faiss"))
    with pytest.raises(StoreError, match="inconsistent: the index holds 0 8-d vectors, the metadata 10 records"):
        FaissStore(path)


def test_faiss_reopen_rules(tmp_path):
    path = tmp_path / "f"
    FaissStore(path, dim=8, index={"kind": "hnsw", "m": 8, "ef_search": 16}).close()
    with FaissStore(path, index={"kind": "hnsw", "m": 8, "ef_search": 100}) as s:
        assert s.index.ef_search == 100  # search-time parameters may change
    with pytest.raises(ConfigError, match="only ef_search may change"):
        FaissStore(path, index={"kind": "hnsw", "m": 16})
    with pytest.raises(ConfigError, match="built with index"):
        FaissStore(path, index="flat")


def test_faiss_in_memory_and_str_ids():
    with FaissStore(dim=4, index="flat", metric="ip") as s:
        ids = s.add(rand(3, 4), ids=["x", "y", "z"])
        s.save()  # no-op in memory
        assert ids == ["x", "y", "z"] and s.path is None
        assert [h.id for h in s.search(rand(3, 4), k=3)[0]] != []
        assert s.upsert(rand(1, 4), ids=["y"]) == ["y"] and s.count() == 3


def test_set_threads():
    before = faiss.omp_get_max_threads()
    try:
        FaissStore(dim=4, threads=3).close()
        assert faiss.omp_get_max_threads() == 3
        set_threads(2)
        assert faiss.omp_get_max_threads() == 2
        FaissStore(dim=4).close()  # threads=None leaves the setting alone
        assert faiss.omp_get_max_threads() == 2
    finally:
        faiss.omp_set_num_threads(before)
    with pytest.raises(ConfigError, match="threads"):
        set_threads(0)


def test_faiss_argument_errors():
    with pytest.raises(ConfigError, match="pq_m=5 must divide dim=8"):
        FaissStore(dim=8, index={"kind": "ivf_pq", "pq_m": 5})
    with pytest.raises(ConfigError, match="compact_ratio"):
        FaissStore(dim=8, compact_ratio=0)
    with pytest.raises(ConfigError, match="exact_threshold"):
        FaissStore(dim=8, exact_threshold=-1)


# ------------------------------------------------------------------------------------------- FaissStore: HNSW


def test_hnsw_tombstones_and_compaction(tmp_path):
    path = tmp_path / "f"
    x = rand(300, 8, 3)
    s = FaissStore(path, dim=8, index={"kind": "hnsw", "m": 8}, compact_ratio=0.5)
    s.add(x)
    assert s.delete(list(range(0, 100))) == 100
    s.upsert(x[200:210] + 0.01, ids=list(range(200, 210)))
    assert (s.tombstones, s.ntotal, s.count()) == (110, 310, 200)
    hits = s.search(x[:20], k=200)
    assert all(len(row) == 200 and min(h.id for h in row) >= 100 for row in hits)
    assert s.get(list(range(100))) == []
    s.save()  # 110 / 310 < 0.5: tombstones are persisted, not compacted
    s.close()
    s = FaissStore(path, compact_ratio=0.3)
    assert s.tombstones == 110 and s.ntotal == 310
    before = s.search(x[100:110], k=5)
    s.close()  # 110 / 310 > 0.3: compacted while saving
    s = FaissStore(path)
    assert (s.tombstones, s.ntotal, s.count()) == (0, 200, 200)
    assert_same_hits(s.search(x[100:110], k=5), before, "after compaction")
    s.delete([150])
    s.compact()
    assert (s.tombstones, s.ntotal) == (0, 199)
    s.close()


def test_hnsw_returns_k_hits_when_the_graph_runs_dry(monkeypatch):
    calls = []
    original = FaissStore._exact_over

    def spy(self, queries, fids, k):
        calls.append(len(fids))
        return original(self, queries, fids, k)

    monkeypatch.setattr(FaissStore, "_exact_over", spy)
    x = rand(2000, 8, 4)
    s = FaissStore(dim=8, index={"kind": "hnsw", "m": 4, "ef_search": 1}, exact_threshold=0)
    s.add(x, metadata=[{"g": i % 100} for i in range(2000)])
    s.delete(list(range(0, 2000, 2)))  # half the graph is tombstones
    for row in s.search(x[:10], k=900):
        assert len(row) == 900 and all(h.id % 2 == 1 for h in row)
    assert calls, "HNSW with ef=900 over 1000 live of 2000 nodes should have needed the exact fallback"
    calls.clear()
    # 20 records match; the graph walk through a selector finds only some of them, the fallback all
    expected = [i for i in range(1, 2000, 2) if i % 100 == 7]
    for row in s.search(x[:10], k=50, filter=Eq("g", 7)):
        assert sorted(h.id for h in row) == expected
    assert calls and set(calls) == {20}
    s.close()


def test_hnsw_exact_threshold_path_agrees_with_selector_path():
    x = rand(3000, 8, 5)
    metas = [{"g": i % 20} for i in range(3000)]
    q = rand(5, 8, 6)
    results = []
    for threshold in (0, 100_000):
        s = FaissStore(dim=8, index={"kind": "hnsw", "m": 16, "ef_search": 200}, exact_threshold=threshold)
        s.add(x, metadata=metas)
        results.append([[h.id for h in row] for row in s.search(q, k=10, filter=Range("g", lt=2))])
    assert recall_at_k(results[0], results[1]) >= 0.95


def test_hnsw_ef_search_per_query():
    base, queries = clustered_vectors(4000, 32, n_queries=100, seed=7)
    truth = ExactStore(dim=32)
    truth.add(base)
    gt = [[h.id for h in row] for row in truth.search(queries, k=10)]
    s = FaissStore(dim=32, index={"kind": "hnsw", "m": 4, "ef_construction": 16, "ef_search": 10})
    s.add(base)
    low = recall_at_k([[h.id for h in r] for r in s.search(queries, k=10, params={"ef_search": 10})], gt)
    high = recall_at_k([[h.id for h in r] for r in s.search(queries, k=10, params={"ef_search": 400})], gt)
    assert high > low and high >= 0.97


# ------------------------------------------------------------------------------------------- FaissStore: IVF


def ivf_store(path=None, **index):
    return FaissStore(path, dim=16, metric="l2", index={"kind": "ivf", "nlist": 8, "nprobe": 1, **index})


def test_ivf_buffers_until_trained_and_searches_exactly(tmp_path):
    path = tmp_path / "f"
    base, queries = clustered_vectors(1000, 16, n_queries=20, seed=8)
    ref = ExactStore(dim=16, metric="l2")
    ref.add(base)
    gt = [[h.id for h in row] for row in ref.search(queries, k=10)]
    s = ivf_store(path, train_size=600)
    s.add(base[:500])
    assert not s.is_trained
    exact_part = ExactStore(dim=16, metric="l2")
    exact_part.add(base[:500])
    # the buffer (a faiss flat index) and ExactStore are both exact; their kernels may differ in the last bits
    assert_same_hits(s.search(queries, k=10), exact_part.search(queries, k=10), "untrained IVF buffer")
    s.close()
    s = FaissStore(path)
    assert not s.is_trained and s.count() == 500
    s.add(base[500:])  # crosses train_size: trains and moves the buffer into the IVF lists
    assert s.is_trained and s.count() == 1000 and s.ntotal == 1000
    exhaustive = s.search(queries, k=10, params={"nprobe": 8})  # nprobe = nlist visits every cell: exact
    assert_same_hits(exhaustive, ref.search(queries, k=10), "IVF-flat with nprobe = nlist")
    coarse = recall_at_k([[h.id for h in r] for r in s.search(queries, k=10)], gt)
    assert coarse <= recall_at_k([[h.id for h in r] for r in exhaustive], gt)
    s.close()
    with FaissStore(path) as s:
        assert s.is_trained and s.count() == 1000
        assert s.delete([0, 1]) == 2 and s.ntotal == 998  # IVF removes for real: no tombstones
        assert s.get([5])[0].vector.shape == (16,)


def test_ivf_explicit_training():
    s = ivf_store()
    s.add(rand(5, 16))
    with pytest.raises(StoreError, match="needs at least 8 vectors; 5 available"):
        s.train()
    with pytest.raises(DimensionMismatchError):
        s.train(rand(100, 8))
    s.train(rand(200, 16, 9))  # a separate training sample
    assert s.is_trained and s.count() == 5 and s.ntotal == 5
    s.train()  # already trained: no-op
    assert len(s.search(rand(1, 16), k=5)[0]) == 5  # 5 records in 8 cells, nprobe=1: exact fallback fills k
    flat = FaissStore(dim=4, index="flat")
    flat.train()  # nothing to train
    assert flat.is_trained


@pytest.mark.parametrize("kind", ["ivf_pq", "ivf_sq8"])
def test_compressed_indexes_decode_approximately(kind):
    base, _ = clustered_vectors(3000, 16, seed=10)
    index = {"kind": kind, "nlist": 4, "nprobe": 4, "train_size": 2600}
    if kind == "ivf_pq":
        index.update(pq_m=8, pq_nbits=6)
    s = FaissStore(dim=16, metric="ip", index=index)
    s.add(base)
    assert s.is_trained and s.index.lossy
    rec = s.get([7])[0].vector
    assert not np.allclose(rec, base[7], atol=1e-6)  # compressed...
    assert np.linalg.norm(rec - base[7]) < 0.5 * np.linalg.norm(base[7])  # ...but close


def test_faiss_filter_cache_follows_writes():
    s = FaissStore(dim=4, index="flat")
    s.add(rand(10, 4), metadata=[{"l": "a"}] * 10)
    assert s.count(Eq("l", "a")) == 10
    s.add(rand(5, 4, 1), metadata=[{"l": "a"}] * 5)
    assert s.count(Eq("l", "a")) == 15
    s.upsert(rand(1, 4, 2), ids=[0], metadata={"l": "b"})
    assert s.count(Eq("l", "a")) == 14 and s.count({"l": "b"}) == 1
    assert [h.id for h in s.search(rand(1, 4), k=5, filter=Eq("l", "b"))[0]] == [0]
    assert s.delete(filter={"l": "a"}) == 14 and s.count() == 1


def test_faiss_duplicate_batch_leaves_store_untouched(tmp_path):
    s = FaissStore(tmp_path / "f", dim=4, index="hnsw")
    s.add(rand(3, 4), ids=[1, 2, 3])
    with pytest.raises(DuplicateIdError, match=r"1 id\(s\) are already stored, e.g. \[2\]"):
        s.add(rand(3, 4), ids=[4, 2, 5])
    assert s.count() == 3 and s.ntotal == 3
    s.close()


def test_one_vector_per_call_inserts():
    s = FaissStore(dim=8, index={"kind": "ivf", "nlist": 4, "train_size": 100})
    x = rand(300, 8, 11)
    for i in range(300):
        assert s.add(x[i], metadata={"i": i}) == [i]
    assert s.is_trained and s.count() == 300
    assert s.search(x[123], k=1)[0][0].id == 123


def test_public_surface():
    names = set(stores.__all__)
    assert "FaissStore" not in names  # lazy: a star import must not import faiss
    assert {"VectorStore", "Hit", "Record", "get_store", "list_stores", "register_store", "store_info"} <= names
    assert all(hasattr(stores, n) for n in names)
    assert "FaissStore" in dir(stores) and stores.FaissStore is FaissStore
    with pytest.raises(AttributeError):
        stores.NoSuchStore  # noqa: B018

"""The fast paths of adds and searches: same results and same typed errors as the detailed checks."""

from __future__ import annotations

import enum
import json
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

import audiovec.stores.faiss as faiss_store
from audiovec.errors import DuplicateIdError, InvalidIdError, InvalidMetadataError, InvalidVectorError
from audiovec.stores import Eq, ExactStore, Hit, In, Range
from audiovec.stores.faiss import FaissStore
from audiovec.stores.records import INT64_MAX, INT64_MIN, MAX_METADATA_BYTES, MAX_STR_ID_BYTES, new_hit
from audiovec.stores.validation import (
    _to_json,
    dump_metadata,
    load_metadata,
    prepare_ids,
    prepare_metadata,
    prepare_vectors,
)
from audiovec.testing._store_checks import assert_same_hits
from vectors import rand


def reference_dump(meta):
    """What the detailed check alone produces."""
    return json.dumps(_to_json(meta, "m", 0), ensure_ascii=False, allow_nan=False, separators=(",", ":"))


class Colour(enum.IntEnum):
    RED = 1


class Tag(str):
    pass


# ------------------------------------------------------------------------------------------- metadata


@pytest.mark.parametrize(
    "meta",
    [
        {},
        {"a": 1, "b": -2.5, "c": True, "d": None, "e": "text"},
        {"quote": 'say "hi"\n\t\\', "ctrl": "\x01", "uni": "鼓 é 🥁"},
        {"big": INT64_MAX, "small": INT64_MIN, "f": 1e300, "g": 5e-324, "h": 0.1},
        {"nested": {"x": [1, 2]}, "t": (1, "a")},
        {"np_f64": np.float64(0.5), "np_i": np.int64(3), "np_f32": np.float32(0.25), "np_b": np.bool_(False)},
        {"enum": Colour.RED, "sub": Tag("x"), "path": Path("/x/y.wav")},
        OrderedDict([("z", 1), ("a", 2)]),
    ],
)
def test_metadata_text_is_what_the_detailed_check_gives(meta):
    text = dump_metadata(meta)
    assert text == reference_dump(meta)
    assert load_metadata(text) == json.loads(text)


@pytest.mark.parametrize(
    ("meta", "message"),
    [
        ({"x": float("nan")}, r"metadata\[1\].x: nan"),
        ({"x": float("inf")}, r"metadata\[1\].x: inf"),
        ({"x": float("-inf")}, r"metadata\[1\].x: -inf"),
        ({"x": INT64_MAX + 1}, "int64"),
        ({"x": INT64_MIN - 1}, "int64"),
        ({1: "a"}, "JSON keys must be str"),
        ({"a": 1, None: 2}, "JSON keys must be str"),
        ({True: 1}, "JSON keys must be str"),
        ({"x": "\udc00"}, "Unicode"),
        ({"\udc00": 1}, "Unicode"),
        ({"x": "a" * MAX_METADATA_BYTES}, "bytes of JSON; the limit is 65536"),
        ({"x": "é" * (MAX_METADATA_BYTES // 2)}, "bytes of JSON; the limit is 65536"),
        ({"x": object()}, "not JSON-serialisable"),
        ({"x": b"raw"}, "bytes"),
    ],
)
def test_flat_metadata_errors_stay_typed(meta, message):
    with pytest.raises(InvalidMetadataError, match=message):
        prepare_metadata([{"ok": 1}, meta, {"ok": 2}], 3)


def test_metadata_size_limit_is_exact():
    room = MAX_METADATA_BYTES - len('{"x":""}')
    assert len(dump_metadata({"x": "a" * room}).encode()) == MAX_METADATA_BYTES
    with pytest.raises(InvalidMetadataError):
        dump_metadata({"x": "a" * (room + 1)})
    assert len(dump_metadata({"x": "é" * (room // 2)}).encode()) == MAX_METADATA_BYTES
    with pytest.raises(InvalidMetadataError):
        dump_metadata({"x": "é" * (room // 2) + "a"})


def test_prepare_metadata_mixes_fast_and_detailed_records():
    metas = [{"a": 1}, {"n": {"b": [1, 2]}}, None, {"f": np.float32(0.5)}]
    assert prepare_metadata(metas, 4) == ['{"a":1}', '{"n":{"b":[1,2]}}', "{}", '{"f":0.5}']


def test_load_metadata_accepts_any_json_object_text():
    assert load_metadata('{"a":1}') == {"a": 1}
    assert load_metadata(' { "a" : [1, 2] } ') == {"a": [1, 2]}
    first, second = load_metadata('{"a":{}}'), load_metadata('{"a":{}}')
    assert first == second and first is not second
    with pytest.raises(json.JSONDecodeError):
        load_metadata('{"a":1} trailing')
    with pytest.raises(json.JSONDecodeError):
        load_metadata("")


def test_new_hit_is_an_ordinary_hit():
    hit = new_hit("a", 0.5, 0.25, {"k": 1})
    assert hit == Hit("a", 0.5, 0.25, {"k": 1}) and repr(hit) == repr(Hit("a", 0.5, 0.25, {"k": 1}))
    with pytest.raises(AttributeError):
        hit.score = 1.0  # type: ignore[misc]


# ------------------------------------------------------------------------------------------- ids and vectors


def test_prepare_ids_fast_paths_keep_the_rules():
    assert prepare_ids(np.arange(3, dtype=np.int64)) == ([0, 1, 2], "int")
    assert prepare_ids(np.zeros(0, np.int64)) == ([], None)
    assert prepare_ids(["a", "鼓"]) == (["a", "鼓"], "str")
    assert prepare_ids([INT64_MIN, INT64_MAX]) == ([INT64_MIN, INT64_MAX], "int")
    with pytest.raises(InvalidIdError, match="got 3 ids for 2 vectors"):
        prepare_ids(np.arange(3), 2)
    with pytest.raises(InvalidIdError, match="int64"):
        prepare_ids([1, INT64_MAX + 1])
    with pytest.raises(InvalidIdError, match=r"ids\[1\] is an empty string"):
        prepare_ids(["a", ""])
    with pytest.raises(InvalidIdError, match="NUL"):
        prepare_ids(["a", "b\x00"])
    with pytest.raises(InvalidIdError, match="bytes long"):
        prepare_ids(["a" * (MAX_STR_ID_BYTES + 1)])
    with pytest.raises(InvalidIdError, match="bytes long"):
        prepare_ids(["é" * (MAX_STR_ID_BYTES // 2 + 1)])  # fewer characters than the limit, more bytes
    with pytest.raises(InvalidIdError, match="not valid Unicode"):
        prepare_ids(["\udc00"])


def test_prepare_vectors_normalises_and_rejects_like_before():
    x = rand(50, 16, 1) * 1000
    out = prepare_vectors(x, 16, normalize=True)
    assert np.allclose(out, x / np.linalg.norm(x, axis=1, keepdims=True), atol=1e-6)
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-6)
    with pytest.raises(InvalidVectorError, match=r"NaN or Inf.*row 1"):
        prepare_vectors(np.array([[1.0, 0.0], [np.nan, 0.0], [0.0, 0.0]]), 2, normalize=True)
    # a squared norm that overflows float32 is no zero vector: the row is scaled first, then normalised
    out = prepare_vectors(np.array([[1.0, 0.0], [1e20, 1e20]], np.float32), 2, normalize=True)
    assert np.allclose(out, [[1.0, 0.0], [0.5**0.5, 0.5**0.5]], atol=1e-7)


# ------------------------------------------------------------------------------------------- FaissStore adds


@pytest.mark.parametrize("index", ["flat", "hnsw", "ivf"])
def test_add_of_a_stored_id_is_refused_whole(index, tmp_path):
    s = FaissStore(tmp_path / "f", dim=8, index=index)
    s.add(rand(3), ids=["a", "b", "c"], metadata=[{"i": 0}, {"i": 1}, {"i": 2}])
    with pytest.raises(DuplicateIdError, match=r"2 id\(s\) are already stored, e.g. \['c', 'a'\]"):
        s.add(rand(3, seed=1), ids=["c", "d", "a"])
    assert s.count() == 3 and s.ntotal == 3 and s.get("d") == []
    assert [r.metadata for r in s.get(["a", "c"])] == [{"i": 0}, {"i": 2}]
    assert s.add(rand(1, seed=2), ids=["d"]) == ["d"]  # the store is still usable
    s.close()
    with FaissStore(tmp_path / "f") as again:
        assert again.count() == 4


def test_add_then_search_returns_the_stored_metadata():
    s = FaissStore(dim=8, index="flat")
    metas = [{"i": i, "name": f"é{i}", "nested": {"v": [i]}} for i in range(1200)]
    s.add(rand(1200), metadata=metas)
    rows = s.search(rand(2, seed=3), k=1100)  # more hits than one metadata lookup takes
    assert all(len(row) == 1100 for row in rows)
    assert all(h.metadata == metas[h.id] for row in rows for h in row)


# ------------------------------------------------------------------------------------------- filtered search


def filtered_store(index, n=600, **kwargs):
    s = FaissStore(dim=8, index=index, **kwargs)
    s.add(rand(n, seed=5), metadata=[{"g": i % 6, "i": i} for i in range(n)])
    return s


def reference(s, n=600):
    """An ExactStore holding what ``s`` holds."""
    ref = ExactStore(dim=8)
    records = s.get(list(range(n)))
    ref.add(np.stack([r.vector for r in records]), ids=[r.id for r in records], metadata=[r.metadata for r in records])
    return ref


INDEXES = ["flat", {"kind": "hnsw", "m": 16, "ef_search": 64}, {"kind": "ivf", "nlist": 4, "train_size": 200}]


@pytest.mark.parametrize("index", INDEXES, ids=["flat", "hnsw", "ivf"])
@pytest.mark.parametrize("threshold", [0, 4096], ids=["selector", "exact"])
def test_filtered_search_edge_cases(index, threshold):
    s = filtered_store(index, exact_threshold=threshold)
    q = rand(4, seed=6)
    assert s.search(q, k=5, filter=Eq("g", 99)) == [[], [], [], []]  # matches nothing
    assert [[h.id for h in row] for row in s.search(q, k=5, filter=Eq("i", 17))] == [[17]] * 4  # a single id
    everything = s.search(q, k=20, filter=Range("g", ge=0))
    assert all(len(row) == 20 for row in everything)
    ref = reference(s)
    if threshold:  # exact over the matching vectors
        assert_same_hits(everything, ref.search(q, k=20), "filter matching everything")
        assert_same_hits(s.search(q, k=7, filter=In("g", [1, 4])), ref.search(q, k=7, filter=In("g", [1, 4])))
    s.delete(list(range(0, 600, 2)))  # every even id, i.e. every record with an even g
    assert s.search(q, k=5, filter=Eq("g", 2)) == [[], [], [], []]
    assert s.search(q, k=5, filter=Eq("i", 17))[0][0].id == 17
    odd = s.search(q, k=50, filter=In("g", [1, 2, 3]))
    assert all(len(row) == 50 and all(h.id % 2 == 1 and h.metadata["g"] in (1, 3) for h in row) for row in odd)
    assert s.count(Range("g", ge=0)) == 300


def test_filtered_search_after_hnsw_tombstones_and_upserts():
    s = filtered_store({"kind": "hnsw", "m": 8})
    q = rand(3, seed=7)
    flt = Eq("g", 3)
    before = s.search(q, k=10, filter=flt)
    s.delete([h.id for h in before[0][:3]])
    s.upsert(rand(1, seed=8), ids=[4], metadata={"g": 3, "i": 4})
    after = s.search(q, k=100, filter=flt)
    assert s.tombstones == 4
    expected = {i for i in range(600) if i % 6 == 3} - {h.id for h in before[0][:3]} | {4}
    assert all({h.id for h in row} == expected for row in after)
    assert_same_hits(after, reference(s).search(q, k=100, filter=flt), "after tombstones")


def test_filtered_results_follow_writes_with_one_filter_object():
    s = filtered_store("hnsw")
    q = rand(1, seed=9)
    flt = Eq("g", 5)
    assert len(s.search(q, k=200, filter=flt)[0]) == 100
    s.add(rand(1, seed=10), ids=[1000], metadata={"g": 5})
    assert 1000 in {h.id for h in s.search(q, k=200, filter=flt)[0]}
    s.delete(filter=flt)
    assert s.search(q, k=5, filter=flt) == [[]]
    assert s.search(q, k=5, filter={"g": 5}) == [[]]


def test_matching_vectors_stay_within_the_cache_budget(monkeypatch):
    monkeypatch.setattr(faiss_store, "_VECTOR_CACHE_BYTES", 150 * 8 * 4)  # room for 150 vectors of 8 floats
    s = filtered_store("hnsw")
    q = rand(2, seed=11)
    ref = reference(s)
    for g in [0, 1, 2, 0, 1]:  # 100 matches each: at most one filter keeps its vectors at a time
        assert_same_hits(s.search(q, k=10, filter=Eq("g", g)), ref.search(q, k=10, filter=Eq("g", g)))
        assert s._fcache_bytes <= 150 * 8 * 4
    assert_same_hits(s.search(q, k=10, filter=Range("g", le=2)), ref.search(q, k=10, filter=Range("g", le=2)))
    assert s._fcache_bytes == 100 * 8 * 4  # 300 matches do not fit: searched without keeping them


def test_search_params_per_query_with_a_filter():
    s = filtered_store({"kind": "hnsw", "m": 4, "ef_search": 1}, exact_threshold=0)
    q = rand(2, seed=12)
    for ef in (1, 400, 1):
        rows = s.search(q, k=30, filter=In("g", [0, 1]), params={"ef_search": ef})
        assert all(len(row) == 30 and all(h.metadata["g"] in (0, 1) for h in row) for row in rows)

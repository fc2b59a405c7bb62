"""ray_index: the ingest path on a Ray cluster (audiovec.ingest.ray).

The default suite checks the actor's work and the driver's accounting in this process (no Ray processes, no ports).
The tests marked ``ray_cluster`` start a real local Ray cluster (a head and a second node, dashboard off) once per
session; Ray binds ports, so they run only in a loopback-only network namespace, as scripts/test does::

    unshare -n sh -c 'ip link set lo up && exec .venv/bin/python -m pytest -m ray_cluster tests/ingest/test_ray.py'

Outside one they skip; in CI (``CI`` set) they fail instead. The Milvus sink test also needs the session's Milvus
server (``milvus_server``), so it carries both markers.
"""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest

from audiovec import Pipeline, get_embedder
from audiovec._hashing import sha256_file
from audiovec.data import demo_dir
from audiovec.embedders.classical import MFCCConfig, MFCCEmbedder
from audiovec.errors import ConfigError, DimensionMismatchError, StoreError
from audiovec.ingest import Ingest, find_audio_files, sources_from_paths, vector_records
from audiovec.ingest.ray import PATH_FIELD, MilvusSink, RayIndexResult, ray_index
from audiovec.ingest.records import FILE, content_key, file_fields
from audiovec.stores import get_store

# Ray Data warns about its own deprecated settings when it builds its context (Ray 2.60): not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.*")

HERE = Path(__file__).resolve().parent
PIPE = "mean+l2"
SEGMENTS = "0.25"  # several vectors for the longer demo files: the skip check must see every segment


# ------------------------------------------------------------------------------------------- helpers
class KillerConfig(MFCCConfig):
    """MFCC, plus the ways this embedder kills its own process (left out of the spec: the vectors are MFCC's)."""

    marker: str = ""  # the first process to embed past kill_after calls creates this file and is SIGKILLed
    kill_after: int = 0  # embedding calls a process makes before the marker kills it
    poison: str = ""  # any process embedding a source whose name contains this is SIGKILLed


class KillerMFCC(MFCCEmbedder):
    """The ``mfcc`` embedder that kills its worker process, imported by the Ray workers as ``test_ray``."""

    Config = KillerConfig
    config: KillerConfig
    runtime_fields = ("chunk_s", "marker", "kill_after", "poison")
    calls = 0

    def _maybe_die(self, audios):
        cfg = self.config
        if cfg.poison and any(cfg.poison in (a.source or "") for a in audios):
            os.kill(os.getpid(), signal.SIGKILL)
        self.calls += 1
        if cfg.marker and self.calls > cfg.kill_after:
            try:
                fd = os.open(cfg.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                return
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            os.kill(os.getpid(), signal.SIGKILL)

    def embed(self, audio):
        self._maybe_die([audio])
        return super().embed(audio)

    def embed_batch(self, audios):
        self._maybe_die(audios)
        return super().embed_batch(audios)


def demo_files(n: int = 12) -> list[str]:
    files = find_audio_files([demo_dir()])
    return [str(f) for f in files[:: max(1, len(files) // n)][:n]]


def local_run(files, segments=None):
    """What the one-process ingest path gives for ``files``: {id: (vector, record)} keyed by content hash."""
    ingest = Ingest(get_embedder("mfcc"), hash_content=True)
    pipe = Pipeline.parse(PIPE, segments)
    out = {}
    for item in ingest.process(sources_from_paths(files)):
        if not item.ok:
            continue
        frames = item.frames["mfcc"]
        pooled = pipe(frames)
        ids, metas = vector_records(
            content_key(item.digest),
            pooled,
            duration=frames.duration,
            digest=item.digest,
            extra=file_fields(item.source.key),
        )
        out.update({i: (v, m) for i, v, m in zip(ids, pooled.vectors, metas, strict=True)})
    return out


def stored(store, ids):
    return {r.id: (r.vector, r.metadata) for r in store.get(list(ids))}


def assert_same_as_local(got, expected, *, exact=True, extra=()):
    assert sorted(got) == sorted(expected)
    for vid, (vec, meta) in expected.items():
        gvec, gmeta = got[vid]
        if exact:
            np.testing.assert_array_equal(gvec, vec, err_msg=vid)
        else:  # a cosine store renormalises
            np.testing.assert_allclose(gvec, vec, rtol=0, atol=1e-6, err_msg=vid)
        skip = {PATH_FIELD, FILE, *extra}
        assert {k: v for k, v in gmeta.items() if k not in skip} == {k: v for k, v in meta.items() if k not in skip}
        assert gmeta[PATH_FIELD]  # the path of one of the files with this content


@pytest.fixture(scope="session")
def files_and_broken(tmp_path_factory):
    """Twelve demo files, a copy of the first (same content, another path) and a file that is not audio."""
    root = tmp_path_factory.mktemp("ray-files")
    files = demo_files()
    copy = root / "copy-of-first.flac"
    shutil.copyfile(files[0], copy)
    broken = root / "broken.wav"
    broken.write_bytes(b"this is not audio" * 10)
    return files, str(copy), str(broken)


# ------------------------------------------------------------------------------------------- no cluster
def test_worker_rows_and_driver_accounting_match_a_local_run(files_and_broken):
    """The actor's work and the driver's accounting, called in this process (what Ray Data would call)."""
    pa = pytest.importorskip("pyarrow")
    from audiovec.ingest.ray import _collect, _DriverWriter, _IndexWorker, _Job

    files, copy, broken = files_and_broken
    paths = [*files, copy, broken]
    pipe = Pipeline.parse(PIPE, SEGMENTS)
    job = _Job("mfcc", {}, pipe, 20, None, None, True, 7, 3)
    worker = _IndexWorker(job)
    store = get_store("exact", dim=20, metric="ip")
    writer = _DriverWriter(store, 7, skip_existing=True)
    result = RayIndexResult(files=len(paths), dim=20)
    remaining = set(range(len(paths)))
    # the copy (12) in a batch with its original (0); the first batch comes back again, as after a retried task
    batches = [[0, 1, 2, 3, 12], [4, 5, 6, 7, 8], [9, 10, 11, 13], [0, 1, 2, 3, 12]]
    for batch in batches:
        table = pa.table({"i": batch, "path": [paths[i] for i in batch], "metadata": ['{"tag": 1}'] * len(batch)})
        _collect(worker(table), result, writer, remaining)
    writer.flush(result)

    assert not remaining
    assert [(f.source, f.error) for f in result.failures] == [(broken, "AudioDecodeError")]
    assert (result.indexed, result.skipped) == (len(files), 1)  # the copy: same content, same ids
    expected = local_run(files, SEGMENTS)
    assert result.vectors == len(expected) == store.count() > len(files)
    got = stored(store, expected)
    assert_same_as_local(got, {k: (v, {**m, "tag": 1}) for k, (v, m) in expected.items()})
    assert {m[PATH_FIELD] for _, m in got.values()} <= {*files, copy}


class RefusingStore:
    """A store that holds nothing and refuses every write."""

    def get(self, ids):
        return []

    def add(self, vectors, ids=None, metadata=None):
        raise StoreError("disk full")

    upsert = add


def test_a_write_the_store_refuses_makes_failures_not_a_crash(files_and_broken):
    pa = pytest.importorskip("pyarrow")
    from audiovec.ingest.ray import _collect, _DriverWriter, _IndexWorker, _Job

    files = files_and_broken[0][:3]
    digests = [
        item.digest for item in Ingest(get_embedder("mfcc"), hash_content=True).process(sources_from_paths(files))
    ]
    refused = sorted((f, "StoreError", "disk full", d) for f, d in zip(files, digests, strict=True))
    table = pa.table({"i": [0, 1, 2], "path": files, "metadata": ["{}"] * 3})
    job = _Job("mfcc", {}, Pipeline.parse(PIPE), 20, None, None, True, 1, 3)
    for where in ("driver", "actor"):  # a store on the driver; a Milvus sink written by the actors
        worker = _IndexWorker(job)
        writer = None
        if where == "driver":
            writer = _DriverWriter(RefusingStore(), 1, skip_existing=True)
        else:
            worker.store = RefusingStore()
        result = RayIndexResult(files=3, dim=20)
        _collect(worker(table), result, writer, {0, 1, 2})
        assert sorted((f.source, f.error, f.message, f.key) for f in result.failures) == refused, where
        assert (result.indexed, result.vectors) == (0, 0)


def test_arguments_are_checked_before_anything_starts(tmp_path):
    with pytest.raises(ConfigError, match="batch_size"):
        ray_index([demo_dir()], "mfcc", store=get_store("exact", dim=20), batch_size=0)
    with pytest.raises(ConfigError, match="'_'"):
        ray_index([demo_dir()], "mfcc", store=get_store("exact", dim=20), metadata=lambda p: {"_x": 1})
    with pytest.raises(ConfigError, match="server uri"):
        MilvusSink(str(tmp_path / "lite.db"))
    assert "secret" not in repr(MilvusSink("http://h:19530", token="secret"))


def test_result_summary():
    r = RayIndexResult(files=3, indexed=2, skipped=1, vectors=5, seconds=1.25)
    assert r.ok and r.summary() == "3 files: 2 indexed, 1 already stored, 0 failed; 5 vectors written in 1.2 s"


# ------------------------------------------------------------------------------------------- a real cluster
@pytest.fixture(scope="session")
def ray_cluster():
    """A local Ray cluster for the session: a head and one more node, one CPU each, dashboard off.

    The workers import this module (``test_ray``, for :class:`KillerMFCC`), so its folder goes on their PYTHONPATH;
    Ray's usage statistics are off (Ray Data would query a Prometheus server for them after every run).
    """
    from audiovec.testing._milvus_server import only_loopback_interfaces
    from ci import skip_or_fail  # here, not at the top: Ray's workers import this module without tests/support

    problems = []
    if not only_loopback_interfaces():
        problems.append(
            "needs a loopback-only network namespace (Ray binds ports): "
            "unshare -n sh -c 'ip link set lo up && exec .venv/bin/python -m pytest -m ray_cluster'"
        )
    try:
        import ray.data  # noqa: F401
    except ImportError as err:
        problems.append(f"Ray is not installed ({err}): pip install 'audiovec[ray]'")
    if problems:
        skip_or_fail("; ".join(problems))
    from ray.cluster_utils import Cluster

    saved = {k: os.environ.get(k) for k in ("PYTHONPATH", "RAY_USAGE_STATS_ENABLED")}
    os.environ["PYTHONPATH"] = os.pathsep.join([str(HERE), *([saved["PYTHONPATH"]] if saved["PYTHONPATH"] else [])])
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        yield cluster
    finally:
        cluster.shutdown()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.mark.ray_cluster
def test_cluster_run_into_a_local_store_matches_a_local_run_and_a_rerun_adds_nothing(ray_cluster, files_and_broken):
    import ray

    files, copy, broken = files_and_broken
    store = get_store("exact", dim=20, metric="ip")
    expected = local_run(files)
    result = ray_index(
        [*files, copy, broken], "mfcc", pipeline=PIPE, store=store, address=ray_cluster.address, batch_size=4,
        write_batch=5, metadata=lambda p: {"name": Path(p).name}, progress=False,
    )  # fmt: skip
    assert not ray.is_initialized()  # it connected, and disconnected
    assert (result.files, result.indexed, result.skipped, result.vectors) == (14, 12, 1, 12)
    assert [(f.source, f.error, f.embedder) for f in result.failures] == [(broken, "AudioDecodeError", None)]
    assert result.dim == 20 and result.spec["embedder"]["name"] == "mfcc"
    got = stored(store, expected)
    assert_same_as_local(got, expected, extra=("name",))
    assert all(m["name"] == Path(m[PATH_FIELD]).name for _, m in got.values())
    assert store.count() == 12

    again = ray_index([*files, copy], "mfcc", pipeline=PIPE, store=store, address=ray_cluster.address, progress=False)
    assert (again.indexed, again.skipped, again.vectors, again.failures) == (0, 13, 0, [])
    assert store.count() == 12

    with pytest.raises(DimensionMismatchError):
        ray_index(files, "mfcc", {"n_mfcc": 13}, PIPE, store=store, address=ray_cluster.address, progress=False)


@pytest.mark.ray_cluster
@pytest.mark.milvus_server
def test_cluster_writes_into_the_milvus_server_and_a_rerun_skips_every_file(ray_cluster, milvus_server):
    files = demo_files()
    expected = local_run(files, SEGMENTS)
    pipe = Pipeline.parse(PIPE, SEGMENTS)
    sink = MilvusSink(milvus_server.uri, collection="ray_index", index="flat", metric="cosine")
    first = ray_index(
        files, "mfcc", pipeline=pipe, store=sink, address=ray_cluster.address, batch_size=3, progress=False
    )
    assert (first.indexed, first.skipped, first.failures) == (12, 0, [])
    assert first.vectors == len(expected) > 12
    again = ray_index(files, "mfcc", pipeline=pipe, store=sink, address=ray_cluster.address, progress=False)
    assert (again.indexed, again.skipped, again.vectors) == (0, 12, 0)
    forced = ray_index(
        files[:4], "mfcc", pipeline=pipe, store=sink, address=ray_cluster.address, skip_existing=False, progress=False
    )
    assert (forced.indexed, forced.skipped) == (4, 0)  # written again, as upserts
    with strong_store(sink) as store:
        assert store.count() == len(expected)
        assert_same_as_local(stored(store, expected), expected, exact=False)


def strong_store(sink: MilvusSink):
    """The sink's collection, read with Strong consistency (it sees what the actors wrote at once)."""
    from audiovec.stores.milvus import MilvusStore

    return MilvusStore(sink.uri, collection=sink.collection, consistency="strong", timeout=60)


@pytest.mark.ray_cluster
@pytest.mark.parametrize("sink", [False, pytest.param(True, marks=pytest.mark.milvus_server)], ids=["store", "milvus"])
def test_a_worker_killed_mid_run_is_replaced_and_nothing_is_lost_or_duplicated(ray_cluster, tmp_path, sink, request):
    files = demo_files()
    expected = local_run(files)
    marker = tmp_path / "killed"
    killer = KillerMFCC(marker=str(marker), kill_after=1)  # the first process to start a second batch dies
    if sink:
        server = request.getfixturevalue("milvus_server")
        target = MilvusSink(server.uri, collection="ray_index_killed", index="flat", metric="ip")
    else:
        target = get_store("exact", dim=20, metric="ip")
    result = ray_index(
        files, killer, pipeline=PIPE, store=target, address=ray_cluster.address, batch_size=3, progress=False
    )
    assert marker.exists(), "no worker was killed"
    assert (result.indexed, result.skipped, result.failures) == (12, 0, [])
    with strong_store(target) if sink else target as store:
        assert store.count() == result.vectors == 12
        assert_same_as_local(stored(store, expected), expected)


@pytest.mark.ray_cluster
def test_a_file_that_kills_every_worker_is_reported_after_max_attempts(ray_cluster):
    files = demo_files(6)
    poison = files[2]
    store = get_store("exact", dim=20, metric="ip")
    result = ray_index(
        files, KillerMFCC(poison=poison), pipeline=PIPE, store=store, address=ray_cluster.address, batch_size=3,
        max_attempts=1, progress=False,
    )  # fmt: skip
    assert [(f.source, f.error) for f in result.failures] == [(poison, "WorkerDiedError")]
    assert (result.indexed, store.count()) == (5, 5)
    expected = local_run([f for f in files if f != poison])
    assert_same_as_local(stored(store, expected), expected)


@pytest.mark.ray_cluster
def test_audiovec_index_on_ray_matches_local_workers(ray_cluster, files_and_broken, tmp_path, capsys):
    from audiovec.cli import main
    from audiovec.service.collection import Collection

    files, copy, broken = files_and_broken
    common = [*files, copy, broken, "-e", "mfcc", "--pooling", PIPE, "--label-from", "{name}.flac", "--no-progress"]
    assert main(["index", *common, "--collection", str(tmp_path / "local"), "--workers", "1"]) == 1
    assert main(["index", *common, "--collection", str(tmp_path / "onray"), "--ray", ray_cluster.address]) == 1
    out = capsys.readouterr().out
    assert (
        out.count(f"added {len(files)} ({len(files)} vectors") == 2
        and out.count("skipped 1 already stored, failed 1") == 2
    )
    with Collection.open(tmp_path / "local") as local, Collection.open(tmp_path / "onray") as onray:
        ids = [f"{content_key(sha256_file(f))}#0" for f in files]
        a, b = local.store.get(ids), onray.store.get(ids)
        assert [r.id for r in a] == [r.id for r in b] == ids
        for x, y in zip(a, b, strict=True):
            np.testing.assert_allclose(x.vector, y.vector, rtol=0, atol=1e-6)
            same = {k: v for k, v in x.metadata.items() if k != "_added"}
            assert same == {k: v for k, v in y.metadata.items() if k != "_added"}
    assert main(["index", *common, "--collection", str(tmp_path / "onray"), "--ray", ray_cluster.address]) == 1
    assert f"added 0 (0 vectors, 0.00 h of audio), skipped {len(files) + 1}" in capsys.readouterr().out

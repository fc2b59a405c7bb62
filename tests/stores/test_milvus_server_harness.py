"""The real-Milvus test harness starts, serves and stops a Milvus 2.3.5 standalone server.

Run only inside a loopback-only network namespace (the server binds every interface)::

    unshare -n sh -c 'ip link set lo up; exec python -m pytest -m milvus_server tests/stores'
"""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from audiovec.testing._milvus_server import MilvusServer

pytestmark = [pytest.mark.milvus_server, pytest.mark.usefixtures("milvus_server_env")]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _process_gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"  # a zombie is gone too


def test_server_serves_and_stops(tmp_path: Path) -> None:
    import pymilvus
    from pymilvus import DataType, MilvusClient

    server = MilvusServer().start(tmp_path / "milvus", port=_free_port(), timeout=180)
    with server:
        pid = server.pid
        assert pid is not None
        assert server.running
        assert server.startup_seconds is not None
        assert server.uri.startswith("http://127.0.0.1:")

        client = MilvusClient(server.uri, timeout=30)
        try:
            assert client.get_server_version().startswith("v2.3")
            schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=True)
            schema.add_field("id", DataType.INT64, is_primary=True)
            schema.add_field("vector", DataType.FLOAT_VECTOR, dim=8)
            schema.add_field("label", DataType.VARCHAR, max_length=32)
            index = MilvusClient.prepare_index_params()
            build = {"M": 8, "efConstruction": 32}  # the server rejects HNSW without them
            index.add_index("vector", index_type="HNSW", metric_type="L2", params={**build, "params": build})
            client.create_collection("clips", schema=schema, index_params=index)

            rows = [
                {"id": i, "vector": [float(i == j) for j in range(8)], "label": "kick" if i % 2 else "snare"}
                for i in range(8)
            ]
            assert client.insert("clips", rows)["insert_count"] == 8

            # Default consistency (Bounded) hides fresh writes for a while: ask for Strong.
            counted = client.query("clips", filter="", output_fields=["count(*)"], consistency_level="Strong")
            assert counted[0]["count(*)"] == 8
            hits = client.search(
                "clips",
                [[0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0]],
                limit=2,
                filter='label == "kick"',
                output_fields=["label"],
                search_params={"metric_type": "L2", "params": {"ef": 16}},
                consistency_level="Strong",
            )
            assert hits[0][0]["id"] == 3
            assert hits[0][0]["entity"]["label"] == "kick"
            # Released: SIGTERM then exits in ~0.2 s. Still loaded: it waits the 10 s
            # gracefulStopTimeout. Dropped < ~10 s before: it hangs until SIGKILL.
            client.release_collection("clips")
        finally:
            client.close()

        health_url = server.health_url
        returncode = server.stop(timeout=15)

    assert returncode is not None  # -6 (its own panic on exit) or -9 (killed)
    assert not server.running
    assert _process_gone(pid)
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(health_url, timeout=2)
    # A plain MilvusClient(uri) would reuse pymilvus's cached channel and not notice.
    with pytest.raises(pymilvus.MilvusException, match="Fail connecting to server"):
        MilvusClient(server.uri, timeout=2, dedicated=True)


def test_start_failure_reports_log_tail(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = int(busy.getsockname()[1])
        server = MilvusServer()
        started = time.monotonic()
        with pytest.raises(RuntimeError, match="bind failed"):
            server.start(tmp_path / "milvus", port=port, timeout=60)
        assert time.monotonic() - started < 60
        assert not server.running


def test_a_second_server_starts_beside_a_running_one(tmp_path: Path, milvus_server: MilvusServer) -> None:
    """Every port a server binds is chosen free, including its embedded etcd's peer port (2380 by default)."""
    from pymilvus import MilvusClient

    assert milvus_server.running
    second = MilvusServer().start(tmp_path / "milvus", port=_free_port(), timeout=180)
    with second:
        assert second.uri != milvus_server.uri and second.health_url != milvus_server.health_url
        for server in (milvus_server, second):
            client = MilvusClient(server.uri, timeout=30, dedicated=True)
            try:
                assert client.get_server_version().startswith("v2.3")
            finally:
                client.close()
        second.stop(timeout=15)
    assert milvus_server.running

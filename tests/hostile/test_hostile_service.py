"""The search service under hostile clients.

Slow clients (a request head or body that never finishes), more connections than the cap, unexpected server
errors, the API docs behind the key, malformed HTTP, and a table of hostile requests that must each get a JSON 4xx
that leaks nothing. Every test talks to a real uvicorn server on 127.0.0.1 (``BackgroundServer``) with small
timeouts; slow clients are raw sockets. Sockets wait at most ``WAIT`` seconds, so a server that never answers or
never closes fails the test instead of hanging it.
"""

from __future__ import annotations

import io
import json
import socket
import sqlite3
import time
from collections.abc import Iterator
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
import soundfile as sf

from audiovec.data import demo_dir
from audiovec.service import ServiceSettings
from audiovec.service.collection import Collection
from audiovec.service.server import BackgroundServer

API = "/api/v1"
WAIT = 10.0  # the longest a test socket waits for the server; far beyond every deadline the tests set
ROOT = Path(__file__).resolve().parents[2]
DEMO = sorted(Path(demo_dir()).rglob("*.flac"))
GET_HEALTH = b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n"


# ------------------------------------------------------------------------------------------------ helpers
@contextmanager
def serve(tmp_path: Path, **overrides: Any) -> Iterator[BackgroundServer]:
    """A real server over a fresh data folder, with the given settings."""
    settings = ServiceSettings(data_dir=tmp_path / "data", autosave_s=0.5, **overrides)
    with BackgroundServer(settings) as srv:
        yield srv


def connect(srv: BackgroundServer) -> socket.socket:
    return socket.create_connection((srv.host, srv.port), timeout=WAIT)


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (fails the test if it stays open)."""
    chunks = []
    while True:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            break
        except TimeoutError:
            pytest.fail(f"the server kept the connection open for {WAIT} s")
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)


def parse(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lower-case names) and body of one raw HTTP/1.1 response with a Content-Length."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    assert sep, f"no complete response: {raw[:200]!r}"
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body[: int(headers.get("content-length", len(body)))]


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One response on a keep-alive connection (the connection stays open)."""
    raw = b""
    while b"\r\n\r\n" not in raw or len(raw.partition(b"\r\n\r\n")[2]) < _content_length(raw):
        data = sock.recv(65536)
        assert data, f"the server closed the connection mid-response: {raw[:200]!r}"
        raw += data
    return parse(raw)


def _content_length(raw: bytes) -> int:
    for line in raw.partition(b"\r\n\r\n")[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def json_error(body: bytes, status: int) -> dict[str, Any]:
    """The ``error`` object of a JSON error body, checked for its shape."""
    error = json.loads(body)["error"]
    assert error["status"] == status and error["type"] and error["message"], error
    return error


def wav_bytes(seconds: float, freq: float = 440.0, sr: int = 16000) -> bytes:
    t = np.arange(int(seconds * sr)) / sr
    buf = io.BytesIO()
    sf.write(buf, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


# ------------------------------------------------------------------------------------------------ slow clients
def test_a_request_head_that_does_not_arrive_in_time_is_closed(tmp_path):
    with serve(tmp_path, header_timeout_s=0.5) as srv, ExitStack() as stack:
        silent = stack.enter_context(connect(srv))  # connects and never sends a byte
        slowloris = stack.enter_context(connect(srv))  # a header line now and then, never the blank line
        slowloris.sendall(b"GET /health HTTP/1.1\r\nHost: test\r\n")
        for i in range(4):
            time.sleep(0.2)
            try:
                slowloris.sendall(b"X-Slow-%d: still here\r\n" % i)
            except OSError:  # closed already
                break
        kept = stack.enter_context(connect(srv))  # keep-alive: the next head has the same deadline
        kept.sendall(GET_HEALTH)
        assert read_response(kept)[0] == 200
        kept.sendall(b"GET /health HTTP/1.1\r\n")

        assert read_until_closed(silent) == b""
        assert read_until_closed(slowloris) == b""
        assert read_until_closed(kept) == b""
        assert requests.get(f"{srv.url}/health", timeout=WAIT).status_code == 200  # prompt clients are served


@pytest.mark.parametrize(
    ("framing", "partial_body"),
    [
        (b"Content-Length: 100\r\n", b'{"name": "sl'),
        (b"Transfer-Encoding: chunked\r\n", b'5\r\n{"nam\r\n'),
    ],
    ids=["content-length", "chunked"],
)
def test_a_request_body_that_does_not_arrive_in_time_gets_a_json_408_and_is_closed(tmp_path, framing, partial_body):
    with serve(tmp_path, body_timeout_s=0.5) as srv, closing(connect(srv)) as sock:
        head = f"POST {API}/collections HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n".encode()
        sock.sendall(head + framing + b"\r\n" + partial_body)
        status, headers, body = parse(read_until_closed(sock))
        assert status == 408 and headers["connection"] == "close"
        assert headers["content-type"] == "application/json"
        error = json_error(body, 408)
        assert error["type"] == "RequestTimeout" and "0.5 s" in error["message"]
        assert requests.get(f"{srv.url}{API}/collections", timeout=WAIT).json() == {"collections": []}


def test_connections_beyond_the_cap_are_refused_and_the_server_recovers(tmp_path):
    with serve(tmp_path, max_connections=4, header_timeout_s=30, keep_alive_timeout_s=30) as srv, ExitStack() as st:
        held = [st.enter_context(connect(srv)) for _ in range(4)]
        for sock in held:  # one exchange on each, so the server has counted all four
            sock.sendall(GET_HEALTH)
            assert read_response(sock)[0] == 200
        for _ in range(3):
            with closing(connect(srv)) as extra:
                status, headers, body = parse(read_until_closed(extra))
                assert status == 503 and headers["connection"] == "close"
                error = json_error(body, 503)
                assert error["type"] == "TooManyConnections" and "4 open connections" in error["message"]
        for sock in held:  # the held connections still work
            sock.sendall(GET_HEALTH)
            assert read_response(sock)[0] == 200
            sock.close()
        answer = None
        for _ in range(100):  # the server sees the closes asynchronously: retry, boundedly
            try:
                answer = requests.get(f"{srv.url}/health", timeout=WAIT)
            except requests.ConnectionError:
                answer = None
            if answer is not None and answer.status_code == 200:
                break
            time.sleep(0.05)
        assert answer is not None and answer.status_code == 200 and answer.json()["status"] == "ok"


# ------------------------------------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    "raw",
    [
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: test\r\nNo colon in this header\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: test\r\nContent-Length: abc\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: test\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"GET /\x00 HTTP/1.1\r\nHost: test\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: test\r\nX-Bad\x01Name: 1\r\n\r\n",
    ],
    ids=["not-http", "no-colon", "bad-length", "two-lengths", "nul-in-target", "gzip-body", "ctl-name"],
)
def test_malformed_http_gets_a_json_400(tmp_path, raw):
    with serve(tmp_path) as srv, closing(connect(srv)) as sock:
        sock.sendall(raw)
        status, headers, body = parse(read_until_closed(sock))
        assert status == 400 and headers["content-type"] == "application/json"
        assert json_error(body, 400)["type"] == "InvalidHTTPRequest"
        assert requests.get(f"{srv.url}/health", timeout=WAIT).status_code == 200


def test_an_unexpected_error_is_a_json_500_that_leaks_nothing(tmp_path, monkeypatch, caplog):
    caplog.set_level("ERROR", logger="audiovec.service")
    failures = [
        RuntimeError("boom in /srv/secret/store"),
        RecursionError("maximum recursion depth exceeded"),
        sqlite3.OperationalError("database is locked: /srv/secret/meta.db"),
        KeyError("secret-key-name"),
    ]
    with serve(tmp_path) as srv, requests.Session() as http:
        r = http.post(f"{srv.url}{API}/collections", json={"name": "drums", "pooling": "mean_std+l2"})
        assert r.status_code == 201, r.text
        for exc in failures:

            def broken(self: Collection, *args: Any, _exc: BaseException = exc, **kwargs: Any) -> Any:
                raise _exc

            monkeypatch.setattr(Collection, "search_vector", broken)
            r = http.post(f"{srv.url}{API}/collections/drums/search/vector", json={"vector": [0.5] * 40})
            assert r.status_code == 500, (exc, r.text)
            assert r.headers["content-type"] == "application/json"
            assert r.headers["x-content-type-options"] == "nosniff"
            assert json_error(r.content, 500)["type"] == "InternalServerError"
            for leak in ("secret", "Traceback", "boom", "recursion", type(exc).__name__):
                assert leak not in r.text, (leak, r.text)
        # an upload that fails unexpectedly inside the async route: the same
        monkeypatch.setattr(Collection, "add", lambda self, *a, **k: (_ for _ in ()).throw(RuntimeError("secret")))
        r = http.post(f"{srv.url}{API}/collections/drums/items", files=[("files", ("a.wav", wav_bytes(0.5)))])
        assert r.status_code == 500 and json_error(r.content, 500)["type"] == "InternalServerError"
        assert "secret" not in r.text
        # counted like any response
        assert 'route="/api/v1/collections/{name}/search/vector",status="500"} 4' in http.get(f"{srv.url}/metrics").text
    logged = caplog.text
    assert "Traceback" in logged and "RuntimeError: boom in /srv/secret/store" in logged  # the operator sees it all
    assert "POST /api/v1/collections/drums/search/vector" in logged


# ------------------------------------------------------------------------------------------------ API docs
def test_the_api_docs_need_the_key_when_one_is_set(tmp_path):
    key = "docs-key-0123456789abcdef"
    docs = ("/openapi.json", "/docs", "/redoc")
    with serve(tmp_path, api_key=key) as srv, requests.Session() as http:
        for path in docs:
            r = http.get(f"{srv.url}{path}")
            assert r.status_code == 401 and json_error(r.content, 401)["message"] == "missing or wrong API key"
            assert http.get(f"{srv.url}{path}", headers={"Authorization": f"Bearer {key}"}).status_code == 200
        schema = http.get(f"{srv.url}/openapi.json", headers={"X-API-Key": key}).json()
        assert f"{API}/collections" in schema["paths"]
        assert "/openapi.json" in http.get(f"{srv.url}/docs", headers={"X-API-Key": key}).text
        assert http.get(f"{srv.url}/").status_code == 200  # the page stays open: it asks the user for the key
        assert http.get(f"{srv.url}/health").status_code == 200
    with serve(tmp_path, api_key=key, public_docs=True) as srv:
        assert all(requests.get(f"{srv.url}{path}", timeout=WAIT).status_code == 200 for path in docs)
        assert requests.get(f"{srv.url}{API}/collections", timeout=WAIT).status_code == 401
    with serve(tmp_path) as srv:  # no key: nothing to protect them with
        assert all(requests.get(f"{srv.url}{path}", timeout=WAIT).status_code == 200 for path in docs)


# ------------------------------------------------------------------------------------------------ hostile inputs
KEY = "hostile-key-5f0c2b9e7d41a6"
GOOD_WAV = wav_bytes(0.5)
PDF = b"%PDF-1.4 not audio at all\n" * 10
DEEP_JSON = "[" * 5000 + "]" * 5000  # nesting that Python's json gives up on (RecursionError)
VECTOR = [0.5] * 40


@dataclass(frozen=True)
class Case:
    """One hostile request and the 4xx it must get. ``{item}`` in a path or JSON string is a stored item's id."""

    id: str
    method: str
    path: str
    status: int
    json: Any = None
    content: bytes | None = None
    data: dict[str, str] | None = None
    files: list[tuple[str, tuple[str, bytes]]] | None = None
    headers: dict[str, Any] = field(default_factory=dict)


def _create(id_: str, body: Any, status: int = 422) -> Case:
    return Case(f"create-{id_}", "POST", f"{API}/collections", status, json=body)


def _raw(id_: str, path: str, content: bytes, status: int, ctype: str = "application/json") -> Case:
    return Case(id_, "POST", path, status, content=content, headers={"Content-Type": ctype})


def _vector(id_: str, body: Any, status: int = 422) -> Case:
    return Case(f"vector-{id_}", "POST", f"{API}/collections/drums/search/vector", status, json=body)


def _item_query(id_: str, body: Any, status: int = 422) -> Case:
    return Case(f"item-query-{id_}", "POST", f"{API}/collections/drums/search/item", status, json=body)


def _get(id_: str, path: str, status: int = 404, **headers: Any) -> Case:
    return Case(id_, "GET", path, status, headers=headers)


def _upload(id_: str, status: int, files: Any = None, data: dict[str, str] | None = None) -> Case:
    files = [("files", ("a.wav", GOOD_WAV))] if files is None else files
    return Case(f"upload-{id_}", "POST", f"{API}/collections/drums/items", status, files=files, data=data)


def _clip(id_: str, status: int, data: dict[str, str], file: tuple[str, bytes] = ("q.wav", GOOD_WAV)) -> Case:
    return Case(f"clip-{id_}", "POST", f"{API}/collections/drums/search", status, files=[("file", file)], data=data)


COLLECTIONS = f"{API}/collections"
ITEMS = f"{API}/collections/drums/items"
CASES: list[Case] = [
    # collection names: only ^[a-z][a-z0-9_]{0,62}$, never a path
    *(
        _create(f"name-{i}", {"name": name})
        for i, name in enumerate(
            [
                "../etc",
                "",
                "a" * 64,
                "drüms",
                "🎵",
                "ｄｒｕｍｓ",
                "x\u202eyz",
                "x\x00",
                "Drums",
                "x/y",
                "x\\y",
                "..",
                ".",
                " drums",
                "drums\n",
                "_x",
                "1x",
                "CON",
                123,
                None,
                ["a"],
                {"a": 1},
                True,
            ]
        )
    ),
    _create("no-name", {}),
    _create("exists", {"name": "drums"}, 409),
    _create("embedder-path", {"name": "x", "embedder": "/etc/passwd"}, 400),
    _create("embedder-traversal", {"name": "x", "embedder": "../../models/yamnet"}, 400),
    _create("embedder-type", {"name": "x", "embedder": ["mfcc"]}),
    _create("pooling", {"name": "x", "pooling": "bogus"}),
    _create("pooling-huge", {"name": "x", "pooling": "mean:" + "9" * 40}),
    _create("segments-negative", {"name": "x", "segments": "-1:5"}),
    _create("segments-huge", {"name": "x", "segments": "1e308"}),
    _create("segments-zero", {"name": "x", "segments": "0"}),
    _create("segments-text", {"name": "x", "segments": "ten"}),
    _create("store-backend", {"name": "x", "store": {"backend": "sqlite"}}, 400),
    _create("store-path", {"name": "x", "store": {"backend": "faiss", "path": "/tmp/evil"}}),
    _create("store-index", {"name": "x", "store": {"index": "nope"}}),
    _create("store-nlist", {"name": "x", "store": {"index": {"kind": "ivf", "nlist": 10**30}}}),
    _create("store-metric", {"name": "x", "store": {"metric": "hamming"}}),
    _create("store-type", {"name": "x", "store": "faiss"}),
    _create("description-long", {"name": "x", "description": "a" * 5000}),
    _create("keep-audio-type", {"name": "x", "keep_audio": "maybe"}),
    _create("extra-field", {"name": "x", "model_path": "/etc/passwd"}),
    # bodies that are not the JSON object they should be
    *(
        _raw(f"create-body-{i}", COLLECTIONS, body, 422)
        for i, body in enumerate(
            [
                b"{",
                b"",
                b"null",
                b"[]",
                b"1",
                b'"drums"',
                b"{'name': 'x'}",
                b'{"name": "x"',
                b"\xff\xfe{}",
                b'{"name": NaN}',
            ]
        )
    ),
    _raw("create-body-deep", COLLECTIONS, DEEP_JSON.encode(), 400),
    _raw("create-body-repeated", COLLECTIONS, b'{"name": "x"}' * 3, 422),
    _raw("create-as-text", COLLECTIONS, b'{"name": "x"}', 422, "text/plain"),
    _raw("create-as-form", COLLECTIONS, b"name=x", 422, "application/x-www-form-urlencoded"),
    _raw("create-as-multipart", COLLECTIONS, b"--b\r\n\r\nx\r\n--b--\r\n", 422, "multipart/form-data; boundary=b"),
    _create("create-over-body-limit", {"name": "x", "description": "a" * 700_000}, 413),
    # vector queries: type, shape, dimension, finiteness, k
    _vector("empty", {"vector": []}),
    _vector("string", {"vector": "abc"}),
    _vector("nested", {"vector": [VECTOR]}),
    _vector("short", {"vector": VECTOR[:-1]}),
    _vector("long", {"vector": [*VECTOR, 0.5]}),
    _vector("too-long", {"vector": [0.5] * 70_000}),
    _vector("strings", {"vector": ["x"] * 40}),
    _vector("nulls", {"vector": [None] * 40}),
    _vector("bools-and-dicts", {"vector": [{}] * 40}),
    _vector("missing", {"k": 3}),
    _vector("extra-field", {"vector": VECTOR, "path": "/etc/passwd"}),
    *(
        _raw(
            f"vector-{name}",
            f"{API}/collections/drums/search/vector",
            f'{{"vector": [{v}{", 0.5" * 39}]}}'.encode(),
            422,
        )
        for name, v in [("nan", "NaN"), ("inf", "Infinity"), ("minus-inf", "-Infinity"), ("overflow", "1e999")]
    ),
    *(
        _vector(
            f"k-{name}", {"vector": VECTOR, "k": k}, 400 if name in ("huge", "int64", "uint64", "max-plus-1") else 422
        )
        for name, k in [
            ("zero", 0),
            ("negative", -1),
            ("max-plus-1", 101),
            ("huge", 10**30),
            ("int64", 2**63),
            ("uint64", 2**64),
            ("float", 1.5),
            ("text", "ten"),
            ("null", None),
            ("list", []),
            ("object", {}),
        ]
    ),
    _raw("vector-k-inf", f"{API}/collections/drums/search/vector", b'{"vector": [0.5], "k": 1e999}', 422),
    _vector("filter-string", {"vector": VECTOR, "filter": "label=kick"}),
    _vector("filter-list", {"vector": VECTOR, "filter": [{"label": "kick"}]}),
    _vector("filter-operator", {"vector": VECTOR, "filter": {"label": {"$where": "1 == 1"}}}, 400),
    _vector("filter-near", {"vector": VECTOR, "filter": {"label": {"near": 1}}}, 400),
    _vector("filter-field-name", {"vector": VECTOR, "filter": {"a b; drop": 1}}, 400),
    _vector("filter-nested-field", {"vector": VECTOR, "filter": {"label": {"eq": {"$ne": 1}}}}, 400),
    # item queries: ids are 32 hex digits of a stored item, nothing else
    _item_query("traversal", {"item_id": "../../../etc/passwd"}, 404),
    _item_query("zeros", {"item_id": "0" * 32}, 404),
    _item_query("upper", {"item_id": "{ITEM}"}, 404),
    _item_query("nul", {"item_id": "{item}\x00"}, 404),
    _item_query("huge", {"item_id": "x" * 100_000}, 404),
    _item_query("int", {"item_id": 123}),
    _item_query("list", {"item_id": ["{item}"]}),
    _item_query("exclude-self", {"item_id": "{item}", "exclude_self": "maybe"}),
    _item_query("k", {"item_id": "{item}", "k": -5}),
    # text queries
    Case("text-no-tower", "POST", f"{API}/collections/drums/search/text", 400, json={"text": "kick", "k": 5}),
    Case("text-empty", "POST", f"{API}/collections/drums/search/text", 422, json={"text": ""}),
    Case("text-type", "POST", f"{API}/collections/drums/search/text", 422, json={"text": 123}),
    Case("text-long", "POST", f"{API}/collections/drums/search/text", 400, json={"text": "a" * 2000}),
    # path traversal and odd names in paths
    *(
        _get(f"path-{i}", path)
        for i, path in enumerate(
            [
                f"{COLLECTIONS}/..%2F..%2Fetc%2Fpasswd",
                f"{COLLECTIONS}/%2e%2e",
                f"{COLLECTIONS}/NOPE",
                f"{COLLECTIONS}/drums%00",
                f"{COLLECTIONS}/%F0%9F%8E%B5",
                f"{COLLECTIONS}/ｄｒｕｍｓ",
                f"{COLLECTIONS}/{'a' * 5000}",
                f"{COLLECTIONS}/drums%0d%0aSet-Cookie:%20x=1",
                f"{ITEMS}/..%2F..%2Fcollection.json",
                f"{ITEMS}/%2e%2e%2f%2e%2e%2fcollection.json",
                f"{ITEMS}/..%5C..%5Ccollection.json",
                f"{ITEMS}/{{ITEM}}",
                f"{ITEMS}/{'0' * 32}",
                f"{ITEMS}/..%2F..%2Fcollection.json/audio",
                f"{ITEMS}/{{item}}%2F..%2F..%2Fcollection.json/audio",
                f"{ITEMS}/{{item}}%00/audio",
                f"{ITEMS}/{'f' * 32}/audio",
                f"{API}/collections/nope/items/{{item}}",
                "/static/..%2F..%2Fservice%2Fsettings.py",
                "/static/%2e%2e/app.py",
                "/static/..%5Capp.py",
                "/static/nope.js",
                f"{API.replace('v1', 'v2')}/collections",
                "/.env",
                "/nope",
            ]
        )
    ),
    Case("delete-traversal", "DELETE", f"{COLLECTIONS}/..%2Fdrums", 404),
    Case("delete-item-traversal", "DELETE", f"{ITEMS}/..%2F..%2Fcollection.json", 404),
    _get("range-beyond", f"{ITEMS}/{{item}}/audio", 416, Range="bytes=999999999-"),
    _get("range-malformed", f"{ITEMS}/{{item}}/audio", 400, Range="bytes=abc"),
    _get("range-unit", f"{ITEMS}/{{item}}/audio", 400, Range="items=0-1"),
    _get("range-backwards", f"{ITEMS}/{{item}}/audio", 400, Range="bytes=50-10"),
    Case(
        "cors-preflight-other-origin",
        "OPTIONS",
        COLLECTIONS,
        400,
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    ),
    # uploads: wrong content types, bad multipart, limits, names, metadata
    _upload("no-files", 422, files=[], data={"metadata": "{}"}),
    _raw("upload-as-json", ITEMS, b'{"files": ["a.wav"]}', 422),
    _raw("upload-as-text", ITEMS, b"hello", 422, "text/plain"),
    _raw("upload-bad-multipart", ITEMS, b"garbage without parts", 400, "multipart/form-data; boundary=abc"),
    _raw("upload-no-boundary", ITEMS, b"--abc\r\n\r\nx\r\n--abc--\r\n", 400, "multipart/form-data"),
    _upload("empty-file", 415, files=[("files", ("a.wav", b""))]),
    _upload("pdf", 415, files=[("files", ("a.wav", PDF))]),
    _upload("traversal-name", 415, files=[("files", ("../../../../etc/passwd", PDF))]),
    _upload("nul-name", 415, files=[("files", ("a\x00.wav", PDF))]),
    _upload("unicode-name", 415, files=[("files", ("🎵 ‮vaw.exe", PDF))]),
    _upload("long-name", 415, files=[("files", ("a" * 500 + ".wav", PDF))]),
    _upload("huge-name", 400, files=[("files", ("a" * 20_000 + ".wav", PDF))]),
    _upload("file-over-limit", 413, files=[("files", ("a.wav", b"RIFF" + b"\x00" * 300_000))]),
    _upload("request-over-limit", 413, files=[("files", (f"{i}.wav", b"\x00" * 200_000)) for i in range(3)]),
    _upload("too-many-files", 400, files=[("files", (f"{i}.wav", GOOD_WAV)) for i in range(4)]),
    _upload("wrong-field", 422, files=[("file", ("a.wav", GOOD_WAV))]),
    _upload("metadata-invalid", 400, data={"metadata": "{no"}),
    _upload("metadata-list-length", 400, data={"metadata": "[{}, {}]"}),
    _upload("metadata-string", 400, data={"metadata": '"kick"'}),
    _upload("metadata-number", 400, data={"metadata": "1e999"}),
    _upload("metadata-reserved", 400, data={"metadata": '{"_item": 1}'}),
    _upload("metadata-key", 400, data={"metadata": '{"a b": 1}'}),
    _upload("metadata-deep", 400, data={"metadata": DEEP_JSON}),
    _upload("metadata-deep-object", 400, data={"metadata": '{"a": ' * 3000 + "1" + "}" * 3000}),
    _upload("if-exists", 422, data={"if_exists": "overwrite"}),
    Case("upload-unknown-collection", "POST", f"{COLLECTIONS}/nope/items", 404, files=[("files", ("a.wav", GOOD_WAV))]),
    Case("upload-traversal", "POST", f"{COLLECTIONS}/..%2Fdrums/items", 404, files=[("files", ("a.wav", GOOD_WAV))]),
    # clip searches: form fields
    _clip("k-text", 422, {"k": "ten"}),
    _clip("k-negative", 400, {"k": "-5"}),
    _clip("k-zero", 400, {"k": "0"}),
    _clip("k-huge", 400, {"k": "9" * 30}),
    _clip("k-float", 422, {"k": "1e3"}),
    _clip("filter-invalid", 400, {"filter": "{bad"}),
    _clip("filter-list", 400, {"filter": "[1]"}),
    _clip("filter-long", 400, {"filter": json.dumps({"label": "a" * 20_000})}),
    _clip("filter-deep", 400, {"filter": DEEP_JSON}),
    _clip("filter-operator", 400, {"filter": '{"label": {"$regex": ".*"}}'}),
    _clip("junk-file", 415, {}, ("q.wav", b"junk" * 100)),
    _clip("empty-file", 415, {}, ("q.wav", b"")),
    Case("clip-no-file", "POST", f"{API}/collections/drums/search", 422, data={"k": "3"}),
    # methods
    Case("put-collections", "PUT", COLLECTIONS, 405, json={"name": "x"}),
    Case("patch-collection", "PATCH", f"{COLLECTIONS}/drums", 405, json={}),
    Case("delete-health", "DELETE", "/health", 405),
    Case("post-health", "POST", "/health", 405),
    Case("post-page", "POST", "/", 405),
    # the key
    _get("key-missing", COLLECTIONS, 401, **{"X-API-Key": None}),
    _get("key-wrong", COLLECTIONS, 401, **{"X-API-Key": KEY[:-1]}),
    _get("key-longer", COLLECTIONS, 401, **{"X-API-Key": KEY + "0"}),
    _get("key-bytes", COLLECTIONS, 401, **{"X-API-Key": b"\xff\xfe"}),
    _get("key-long", COLLECTIONS, 401, **{"X-API-Key": "k" * 10_000}),
    _get("key-bearer-empty", COLLECTIONS, 401, **{"X-API-Key": None, "Authorization": "Bearer "}),
    _get("key-basic", COLLECTIONS, 401, **{"X-API-Key": None, "Authorization": f"Basic {KEY}"}),
    _get("key-metrics", "/metrics", 401, **{"X-API-Key": None}),
    _get("key-openapi", "/openapi.json", 401, **{"X-API-Key": None}),
    _get("key-docs", "/docs", 401, **{"X-API-Key": None}),
]


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory):
    """One keyed server with small limits, a collection ``drums`` and one stored item, for the whole table."""
    data = tmp_path_factory.mktemp("hostile") / "data"
    settings = ServiceSettings(
        data_dir=data,
        api_key=KEY,
        max_file_mb=0.25,
        max_request_mb=0.5,
        max_files_per_request=3,
        max_text_chars=1000,
        cors_origins=["https://app.example"],
    )
    with BackgroundServer(settings) as srv, requests.Session() as http:
        http.headers["X-API-Key"] = KEY
        r = http.post(f"{srv.url}{COLLECTIONS}", json={"name": "drums", "pooling": "mean_std+l2"})
        assert r.status_code == 201, r.text
        r = http.post(f"{srv.url}{ITEMS}", files=[("files", (p.name, p.read_bytes())) for p in DEMO[:2]])
        assert r.status_code == 201, r.text
        yield srv, http, r.json()["added"][0]["id"]


def _fill(value: Any, item: str) -> Any:
    if isinstance(value, str):
        return value.replace("{item}", item).replace("{ITEM}", item.upper())
    if isinstance(value, dict):
        return {k: _fill(v, item) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, item) for v in value]
    return value


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_hostile_request_gets_a_json_4xx_that_leaks_nothing(hostile_server, case):
    srv, http, item = hostile_server
    r = http.request(
        case.method,
        srv.url + _fill(case.path, item),
        json=_fill(case.json, item),
        data=case.content if case.content is not None else case.data,
        files=case.files,
        headers=case.headers,
        timeout=WAIT,
    )
    assert r.status_code == case.status, r.text[:500]
    assert r.headers["content-type"] == "application/json", r.headers
    error = json_error(r.content, case.status)
    assert isinstance(error["type"], str) and isinstance(error["message"], str)
    for leak in (KEY, "Traceback", 'File "', "site-packages", str(ROOT), str(srv.settings.data_dir)):
        assert leak not in r.text, leak


def test_the_hostile_table_changed_nothing(hostile_server):
    srv, http, item = hostile_server
    collections = http.get(f"{srv.url}{COLLECTIONS}").json()["collections"]
    assert [(c["name"], c["items"]) for c in collections] == [("drums", 2)]
    assert http.get(f"{srv.url}{ITEMS}/{item}").status_code == 200

"""The search service: HTTP API behaviour, limits, safety, persistence and concurrency.

Most tests talk to a real uvicorn server on 127.0.0.1 (``BackgroundServer``) over HTTP with ``requests``; a few
fast checks use FastAPI's in-process client.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import requests
import soundfile as sf

from audiovec.data import demo_dir
from audiovec.service import CollectionManager, EmbedderPreset, ServiceSettings, create_app
from audiovec.service.server import BackgroundServer

DEMO = sorted(Path(demo_dir()).rglob("*.flac"))
API = "/api/v1"


def wav_bytes(x: np.ndarray, sr: int = 16000, fmt: str = "WAV", subtype: str = "PCM_16") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, sr, format=fmt, subtype=subtype)
    return buf.getvalue()


def tone(seconds: float, freq: float = 440.0, sr: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def label_of(path: Path) -> str:
    return path.parent.name


@pytest.fixture
def settings(tmp_path: Path) -> ServiceSettings:
    return ServiceSettings(data_dir=tmp_path / "data", autosave_s=0.2)


@pytest.fixture
def server(settings: ServiceSettings):
    with BackgroundServer(settings) as srv:
        yield srv


@pytest.fixture
def http():
    with requests.Session() as s:
        yield s


def create(http: requests.Session, url: str, name: str = "drums", **config) -> dict:
    r = http.post(f"{url}{API}/collections", json={"name": name, "pooling": "mean_std+l2", **config})
    assert r.status_code == 201, r.text
    return r.json()


def add_files(http: requests.Session, url: str, paths: list[Path], name: str = "drums", metadata=None):
    files = [("files", (p.name, p.read_bytes(), "application/octet-stream")) for p in paths]
    data = {"metadata": json.dumps(metadata)} if metadata is not None else None
    return http.post(f"{url}{API}/collections/{name}/items", files=files, data=data)


def search_clip(http, url, data: bytes, filename: str = "q.flac", name: str = "drums", **form):
    return http.post(
        f"{url}{API}/collections/{name}/search",
        files={"file": (filename, data)},
        data={k: str(v) for k, v in form.items()},
    )


# ------------------------------------------------------------------------------------------------ the API over HTTP
def test_collection_lifecycle_over_real_http(server, http):
    url = server.url
    health = http.get(f"{url}/health").json()
    assert health["status"] == "ok" and health["auth_required"] is False
    assert health["limits"]["max_k"] == server.settings.max_k and health["limits"]["max_files_per_request"] == 64
    info = create(http, url, description="drum one-shots")
    assert info["dim"] == 40 and info["items"] == 0 and info["pipeline"] == "mean_std+l2"
    assert info["embedder"]["name"] == "mfcc"
    r = http.post(f"{url}{API}/collections", json={"name": "drums"})
    assert r.status_code == 409 and r.json()["error"]["type"] == "CollectionExistsError"
    listed = http.get(f"{url}{API}/collections").json()["collections"]
    assert [c["name"] for c in listed] == ["drums"]

    r = add_files(http, url, DEMO, metadata=[{"label": label_of(p)} for p in DEMO])
    assert r.status_code == 201, r.text
    added = r.json()["added"]
    assert len(added) == len(DEMO) and not r.json()["failed"]
    assert len({a["id"] for a in added}) == len(DEMO)
    assert http.get(f"{url}{API}/collections/drums").json()["items"] == len(DEMO)

    # search by clip: the file itself comes first with cosine 1
    q = DEMO[5]
    r = search_clip(http, url, q.read_bytes(), q.name, k=5)
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["results"]) == 5
    assert body["results"][0]["filename"] == q.name
    assert body["results"][0]["score"] == pytest.approx(1.0, abs=1e-4)
    assert body["results"][0]["metadata"] == {"label": label_of(q)}
    scores = [h["score"] for h in body["results"]]
    assert scores == sorted(scores, reverse=True)
    assert {"decode_ms", "embed_ms", "search_ms"} <= set(body["timings"])
    assert "embed;dur=" in r.headers["Server-Timing"]

    # a filter restricts the results to matching metadata
    label = label_of(DEMO[0])
    r = search_clip(http, url, q.read_bytes(), q.name, k=50, filter=json.dumps({"label": label}))
    hits = r.json()["results"]
    assert hits and {h["metadata"]["label"] for h in hits} == {label}
    assert len(hits) == sum(label_of(p) == label for p in DEMO)

    # get, playback (the exact uploaded bytes, byte ranges), search by item, delete
    item = added[5]
    got = http.get(f"{url}{API}/collections/drums/items/{item['id']}").json()
    assert got["filename"] == q.name and got["sha256"] == hashlib.sha256(q.read_bytes()).hexdigest()
    audio = http.get(f"{url}{got['audio_url']}")
    assert audio.status_code == 200 and audio.content == q.read_bytes()
    assert audio.headers["content-type"] == "audio/flac"
    assert audio.headers["x-content-type-options"] == "nosniff"
    part = http.get(f"{url}{got['audio_url']}", headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and part.content == q.read_bytes()[:100]

    similar = http.post(f"{url}{API}/collections/drums/search/item", json={"item_id": item["id"], "k": 3}).json()
    assert len(similar["results"]) == 3 and item["id"] not in {h["id"] for h in similar["results"]}
    with_self = http.post(
        f"{url}{API}/collections/drums/search/item", json={"item_id": item["id"], "k": 1, "exclude_self": False}
    ).json()
    assert with_self["results"][0]["id"] == item["id"]

    assert http.delete(f"{url}{API}/collections/drums/items/{item['id']}").status_code == 204
    assert http.get(f"{url}{API}/collections/drums/items/{item['id']}").status_code == 404
    assert http.get(f"{url}{got['audio_url']}").status_code == 404
    r = search_clip(http, url, q.read_bytes(), q.name, k=1)
    assert r.json()["results"][0]["id"] != item["id"]
    assert http.get(f"{url}{API}/collections/drums").json()["items"] == len(DEMO) - 1

    assert http.delete(f"{url}{API}/collections/drums").status_code == 204
    assert http.get(f"{url}{API}/collections/drums").status_code == 404
    assert not (server.settings.data_dir / "collections" / "drums").exists()


def test_search_by_vector_excludes_embedding_and_checks_dimension(server, http):
    url = server.url
    create(http, url)
    added = add_files(http, url, DEMO[:6]).json()["added"]
    # the stored vector of an item, fetched by searching for it, is the query
    from audiovec import get_embedder
    from audiovec.audio import load
    from audiovec.pooling import Pipeline

    emb = get_embedder("mfcc")
    vec = Pipeline.parse("mean_std+l2")(emb.embed(load(DEMO[2], sr=16000))).vectors[0]
    r = http.post(f"{url}{API}/collections/drums/search/vector", json={"vector": vec.tolist(), "k": 2})
    assert r.status_code == 200
    body = r.json()
    assert body["results"][0]["id"] == added[2]["id"] and set(body["timings"]) == {"search_ms"}
    r = http.post(f"{url}{API}/collections/drums/search/vector", json={"vector": [0.1] * 7, "k": 2})
    assert r.status_code == 422 and r.json()["error"]["type"] == "DimensionMismatchError"
    r = http.post(f"{url}{API}/collections/drums/search/vector", json={"vector": vec.tolist(), "k": 10_000})
    assert r.status_code == 400 and "k must be" in r.json()["error"]["message"]


def test_text_search_needs_a_text_tower(server, http):
    create(http, server.url)
    r = http.post(f"{server.url}{API}/collections/drums/search/text", json={"text": "a snare", "k": 3})
    assert r.status_code == 400 and "no text tower" in r.json()["error"]["message"]


def test_text_search_with_a_clap_preset(tmp_path, http):
    import hf_fixtures as hx

    model = hx.build_clap(tmp_path / "clap")
    preset = EmbedderPreset(name="clap", params={"model": str(model), "local_files_only": True})
    settings = ServiceSettings(data_dir=tmp_path / "data", embedders={"clap": preset})
    with BackgroundServer(settings) as srv:
        r = http.post(f"{srv.url}{API}/collections", json={"name": "sfx", "embedder": "clap", "pooling": "mean+l2"})
        assert r.status_code == 201, r.text
        assert r.json()["text_search"] is True
        assert add_files(http, srv.url, DEMO[:4], name="sfx").status_code == 201
        r = http.post(f"{srv.url}{API}/collections/sfx/search/text", json={"text": "a kick drum", "k": 4})
        assert r.status_code == 200, r.text
        results = r.json()["results"]
        assert len(results) == 4
        # the service ranks exactly as the embedder's own text and audio vectors do
        from audiovec.audio import load
        from audiovec.embedders.hf import CLAPEmbedder
        from audiovec.pooling import Pipeline

        emb = CLAPEmbedder(model=model, local_files_only=True)
        t = emb.embed_text(["a kick drum"])[0]
        t = t / np.linalg.norm(t)
        pipe = Pipeline.parse("mean+l2")
        scores = {p.name: float(pipe(emb.embed(load(p, sr=emb.sample_rate))).vectors[0] @ t) for p in DEMO[:4]}
        assert [h["filename"] for h in results] == sorted(scores, key=lambda n: -scores[n])
        for h in results:
            assert h["score"] == pytest.approx(scores[h["filename"]], abs=1e-4)
        # mean_std vectors are not in the text space: refused
        r = http.post(f"{srv.url}{API}/collections", json={"name": "ms", "embedder": "clap", "pooling": "mean_std"})
        assert r.json()["text_search"] is False


def test_segmented_collection_finds_the_matching_segment(server, http):
    url = server.url
    create(http, url, name="long", segments="5")
    sr = 16000
    clips = [load_demo(DEMO[i], sr) for i in (0, 10, 20, 30)]
    # four 5 s sections, each one drum sound repeated
    sections = [np.resize(c, 5 * sr) for c in clips]
    long = np.concatenate(sections)
    r = http.post(
        f"{url}{API}/collections/long/items",
        files=[("files", ("long.wav", wav_bytes(long, sr)))],
        data={"metadata": json.dumps({"kind": "mix"})},
    )
    assert r.status_code == 201, r.text
    item = r.json()["added"][0]
    assert item["segments"] == 4 and item["metadata"] == {"kind": "mix"}
    info = http.get(f"{url}{API}/collections/long").json()
    assert info["items"] == 1 and info["vectors"] == 4
    # a short second file so that ranking has something to rank
    add_files(http, url, [DEMO[40]], name="long")
    query = np.resize(clips[2], 3 * sr)
    hit = search_clip(http, url, wav_bytes(query, sr), "q.wav", name="long", k=2).json()["results"][0]
    assert hit["id"] == item["id"] and (hit["start"], hit["end"]) == (10.0, 15.0)
    assert http.delete(f"{url}{API}/collections/long/items/{item['id']}").status_code == 204
    assert http.get(f"{url}{API}/collections/long").json()["vectors"] == 1


def load_demo(path: Path, sr: int) -> np.ndarray:
    from audiovec.audio import load

    return load(path, sr=sr).samples


# ------------------------------------------------------------------------------------------------ bad input
def test_bad_uploads_get_clear_4xx_json_errors(tmp_path, http):
    settings = ServiceSettings(data_dir=tmp_path / "d", max_file_mb=0.5, max_duration_s=20, max_query_duration_s=5)
    with BackgroundServer(settings) as srv:
        url = srv.url
        create(http, url)
        good = wav_bytes(tone(1.0))
        cases = [
            ("report.wav", b"%PDF-1.4 not audio at all" * 10, 415, "PDF is not a supported audio format"),
            ("empty.wav", b"", 415, "empty"),
            ("clip.m4a", b"\x00\x00\x00\x20ftypM4A " + b"\x00" * 200, 415, "MP4/M4A"),
            ("cut.wav", good[:30], 422, "cut.wav"),  # a WAV header and nothing else
            ("nan.wav", wav_bytes(np.full(1600, np.nan, np.float32), subtype="FLOAT"), 422, "NaN"),
            ("long.wav", wav_bytes(np.zeros(16000 * 21, np.float32), subtype="PCM_U8", fmt="WAV"), 413, "20 s limit"),
            ("big.wav", wav_bytes(np.zeros(16000 * 17, np.float32)), 413, "larger than 0.5 MiB"),
        ]
        for name, data, status, message in cases:
            r = http.post(f"{url}{API}/collections/drums/items", files=[("files", (name, data))])
            assert r.status_code == status, (name, r.text)
            err = r.json()["error"]
            assert err["status"] == status and message in err["message"], (name, err)
            assert str(settings.data_dir) not in err["message"]  # no server paths in messages
        # the name and declared type do not matter: a WAV called .mp3 with an image type is accepted as WAV
        r = http.post(f"{url}{API}/collections/drums/items", files=[("files", ("song.mp3", good, "image/png"))])
        assert r.status_code == 201 and r.json()["added"][0]["format"] == "wav"
        # queries have their own duration limit
        r = search_clip(http, url, wav_bytes(tone(6.0)), "q.wav")
        assert r.status_code == 413 and "5 s limit" in r.json()["error"]["message"]
        # one bad file in a batch: the others are added, the failure reported (207), nothing duplicated
        r = http.post(
            f"{url}{API}/collections/drums/items",
            files=[
                ("files", ("a.wav", good)),
                ("files", ("bad.wav", b"junk" * 100)),
                ("files", ("b.flac", DEMO[0].read_bytes())),
            ],
        )
        assert r.status_code == 207
        body = r.json()
        assert [a["filename"] for a in body["added"]] == ["a.wav", "b.flac"]
        assert body["failed"] == [
            {
                "index": 1,
                "filename": "bad.wav",
                "type": "UnsupportedUploadError",
                "status": 415,
                "message": body["failed"][0]["message"],
            }
        ]
        assert http.get(f"{url}{API}/collections/drums").json()["items"] == 3
        # malformed requests
        r = http.post(
            f"{url}{API}/collections/drums/items", files=[("files", ("a.wav", good))], data={"metadata": "{no"}
        )
        assert r.status_code == 400 and r.json()["error"]["type"] == "InvalidMetadataError"
        r = http.post(
            f"{url}{API}/collections/drums/items", files=[("files", ("a.wav", good))], data={"metadata": '{"_item": 1}'}
        )
        assert r.status_code == 400 and "service's own" in r.json()["error"]["message"]
        r = search_clip(http, url, good, filter='{"label": {"near": 1}}')
        assert r.status_code == 400 and r.json()["error"]["type"] == "FilterError"
        r = http.post(f"{url}{API}/collections/drums/search/vector", json={"vector": ["x"]})
        assert r.status_code == 422 and r.json()["error"]["type"] == "ValidationError"
        assert http.get(f"{url}{API}/collections/nope").json()["error"]["type"] == "CollectionNotFoundError"
        assert http.get(f"{url}{API}/collections/drums").json()["items"] == 3  # 1 + 2, nothing from bad requests


def test_request_body_limit_applies_with_and_without_content_length(tmp_path):
    settings = ServiceSettings(data_dir=tmp_path / "d", max_request_mb=0.25)
    with BackgroundServer(settings) as srv, requests.Session() as http:
        create(http, srv.url)
        big = b"\x00" * 400_000
        r = http.post(f"{srv.url}{API}/collections/drums/items", files=[("files", ("a.wav", big))])
        assert r.status_code == 413 and r.json()["error"]["type"] == "PayloadTooLarge"

        def chunks():  # chunked transfer: no Content-Length, the limit is enforced while reading
            yield b'--abc\r\nContent-Disposition: form-data; name="files"; filename="a.wav"\r\n\r\n'
            for _ in range(40):
                yield b"x" * 10_000

        r = http.post(
            f"{srv.url}{API}/collections/drums/items",
            data=chunks(),
            headers={"Content-Type": "multipart/form-data; boundary=abc"},
        )
        assert r.status_code == 413
        assert http.get(f"{srv.url}/health").status_code == 200


def test_requests_cannot_reach_server_paths(server, http):
    url = server.url
    create(http, url)
    item = add_files(http, url, DEMO[:1]).json()["added"][0]
    # no field of a collection config names a path or model file; unknown fields are refused
    for config in (
        {"name": "x", "store": {"backend": "faiss", "path": "/tmp/evil"}},
        {"name": "x", "embedder_params": {"model": "/etc/passwd"}},
        {"name": "../x"},
        {"name": "x", "embedder": "/etc/passwd"},
        {"name": "x", "store": {"backend": "sqlite"}},
    ):
        r = http.post(f"{url}{API}/collections", json=config)
        assert r.status_code in (400, 422), (config, r.text)
    assert [c["name"] for c in http.get(f"{url}{API}/collections").json()["collections"]] == ["drums"]
    for bad_id in ("..%2F..%2F..%2Fetc%2Fpasswd", "%2E%2E", item["id"] + "%00", item["id"].upper(), "0" * 32):
        r = http.get(f"{url}{API}/collections/drums/items/{bad_id}/audio")
        assert r.status_code == 404, bad_id
    r = http.get(f"{url}/static/..%2F..%2Fcollections.py")
    assert r.status_code == 404
    # every input the API takes, listed: none of them can carry a server path
    schema = http.get(f"{url}/openapi.json").json()
    params = {p["name"] for ops in schema["paths"].values() for op in ops.values() for p in op.get("parameters", [])}
    assert params == {"name", "item_id"}
    components = schema["components"]["schemas"]
    bodies = [
        op["requestBody"]["content"] for ops in schema["paths"].values() for op in ops.values() if "requestBody" in op
    ]
    refs = {c["schema"]["$ref"].rsplit("/", 1)[-1] for b in bodies for c in b.values()} | {"StoreSpec"}
    fields = {f for r in refs for f in components[r]["properties"]}
    assert fields == {
        *("name", "embedder", "pooling", "segments", "store", "keep_audio", "description"),  # CollectionConfig
        *("backend", "index", "metric"),  # StoreSpec
        *("files", "metadata", "if_exists", "file", "k", "filter"),  # uploads
        *("text", "item_id", "exclude_self", "vector"),  # JSON queries
    }


def test_api_key_cors_and_no_secret_in_logs(tmp_path, caplog, capfd):
    key = "s3cr3t-key-do-not-log-0123456789"
    settings = ServiceSettings(data_dir=tmp_path / "d", api_key=key, cors_origins=["https://app.example"])
    caplog.set_level("DEBUG")
    with BackgroundServer(settings, log_level="debug") as srv, requests.Session() as http:
        url = srv.url
        assert http.get(f"{url}/health").json()["auth_required"] is True  # open for load balancers
        assert http.get(f"{url}/").status_code == 200  # the page itself; its API calls need the key
        for path in (f"{API}/collections", "/metrics", f"{API}/stats"):
            r = http.get(f"{url}{path}")
            assert r.status_code == 401 and r.json()["error"]["message"] == "missing or wrong API key"
            assert r.headers["www-authenticate"] == "Bearer"
        assert http.get(f"{url}{API}/collections", headers={"X-API-Key": key + "x"}).status_code == 401
        assert http.get(f"{url}{API}/collections", headers={"X-API-Key": key}).status_code == 200
        assert http.get(f"{url}{API}/collections", headers={"Authorization": f"Bearer {key}"}).status_code == 200
        http.headers["X-API-Key"] = key
        create(http, url)
        add_files(http, url, DEMO[:2])
        # CORS: the configured origin may call the API from a browser, another origin may not
        pre = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "x-api-key"}
        ok = http.options(f"{url}{API}/collections", headers={"Origin": "https://app.example", **pre})
        assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == "https://app.example"
        bad = http.options(f"{url}{API}/collections", headers={"Origin": "https://evil.example", **pre})
        assert "access-control-allow-origin" not in bad.headers
        r = http.get(f"{url}{API}/collections", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in r.headers
    out, err = capfd.readouterr()
    logs = caplog.text + out + err
    assert "GET /api/v1/collections" in logs  # the debug access log was captured...
    assert key not in logs  # ...and the key is in none of it
    assert key not in repr(settings) and key not in str(settings.model_dump())


def test_metrics_count_requests_and_steps(server, http):
    url = server.url
    create(http, url)
    add_files(http, url, DEMO[:3])
    for _ in range(4):
        search_clip(http, url, DEMO[0].read_bytes(), k=2)
    search_clip(http, url, b"junk" * 50)
    text = http.get(f"{url}/metrics").text
    route = f'route="{API}/collections/{{name}}/search"'
    assert f'audiovec_requests_total{{method="POST",{route},status="200"}} 4' in text
    assert f'audiovec_requests_total{{method="POST",{route},status="415"}} 1' in text
    assert f'audiovec_request_seconds_count{{method="POST",{route}}} 5' in text
    assert 'audiovec_stage_seconds{stage="embed",quantile="0.99"}' in text
    stats = http.get(f"{url}{API}/stats").json()
    embed = next(s for s in stats["stages"] if s["stage"] == "embed")
    assert embed["count"] == 3 + 4 and 0 < embed["p50"] <= embed["p95"] <= embed["p99"]


# ------------------------------------------------------------------------------------------------ state
def test_collections_persist_across_restarts(settings, http):
    with BackgroundServer(settings) as srv:
        create(http, srv.url, store={"backend": "faiss", "index": "hnsw"})
        ids = [a["id"] for a in add_files(http, srv.url, DEMO[:8]).json()["added"]]
        http.delete(f"{srv.url}{API}/collections/drums/items/{ids[0]}")
    with BackgroundServer(settings) as srv:
        info = http.get(f"{srv.url}{API}/collections/drums").json()
        assert info["items"] == 7 and info["config"]["store"]["index"] == "hnsw"
        assert http.get(f"{srv.url}{API}/collections/drums/items/{ids[1]}").status_code == 200
        assert http.get(f"{srv.url}{API}/collections/drums/items/{ids[0]}").status_code == 404
        hit = search_clip(http, srv.url, DEMO[3].read_bytes(), k=1).json()["results"][0]
        assert hit["id"] == ids[3]


def test_autosave_makes_adds_durable_without_shutdown(settings, http):
    with BackgroundServer(settings) as srv:
        create(http, srv.url)
        add_files(http, srv.url, DEMO[:5])
        time.sleep(1.0)  # autosave_s = 0.2
        # a second manager opening the same folder (as after a crash) sees the items
        other = CollectionManager(settings)
        try:
            assert other.get("drums").describe()["items"] == 5
        finally:
            other.close()


def test_parallel_clients_lose_and_duplicate_nothing(server):
    url = server.url
    with requests.Session() as http:
        create(http, url)
    rng = np.random.default_rng(0)
    uploads = []
    for i in range(48):  # 48 distinct files: demo clips with a little distinct noise
        base = load_demo(DEMO[i % len(DEMO)], 16000)
        uploads.append(
            (f"clip{i:02d}.wav", wav_bytes(base + 0.001 * rng.standard_normal(base.size).astype(np.float32)))
        )

    def client(worker: int) -> list[tuple[str, str]]:
        done = []
        with requests.Session() as s:
            for name, data in uploads[worker::8]:
                r = s.post(f"{url}{API}/collections/drums/items", files=[("files", (name, data))])
                assert r.status_code == 201, r.text
                done.append((r.json()["added"][0]["id"], name))
                q = search_clip(s, url, data, name, k=1)  # searches interleaved with other clients' adds
                assert q.status_code == 200 and q.json()["results"][0]["filename"] == name
        return done

    with ThreadPoolExecutor(8) as pool:
        results = [x for part in pool.map(client, range(8)) for x in part]
    with requests.Session() as http:
        assert http.get(f"{url}{API}/collections/drums").json()["items"] == 48
        assert len({i for i, _ in results}) == 48 and sorted(n for _, n in results) == sorted(n for n, _ in uploads)
        sums = {n: hashlib.sha256(d).hexdigest() for n, d in uploads}
        for item_id, name in results:
            got = http.get(f"{url}{API}/collections/drums/items/{item_id}").json()
            assert got["filename"] == name and got["sha256"] == sums[name]


def test_parallel_drop_and_search_give_4xx_not_5xx(server):
    url = server.url
    with requests.Session() as http:
        create(http, url)
        add_files(http, url, DEMO[:10])
    statuses: list[int] = []
    stop = threading.Event()

    def searcher() -> None:
        with requests.Session() as s:
            while not stop.is_set():
                statuses.append(search_clip(s, url, DEMO[1].read_bytes(), k=3).status_code)

    threads = [threading.Thread(target=searcher) for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    with requests.Session() as http:
        assert http.delete(f"{url}{API}/collections/drums").status_code == 204
    time.sleep(0.3)
    stop.set()
    for t in threads:
        t.join()
    assert 200 in statuses and 404 in statuses
    assert all(s in (200, 404) for s in statuses), sorted(set(statuses))


# ------------------------------------------------------------------------------------------------ CLI
def test_cli_serve_and_admin_index_limited_to_roots(tmp_path):
    roots = tmp_path / "allowed"
    roots.mkdir()
    for p in DEMO[:6]:
        (roots / p.parent.name).mkdir(exist_ok=True)
        (roots / p.parent.name / p.name).write_bytes(p.read_bytes())
    (roots / "notes.wav").write_text("not audio")
    cfg = tmp_path / "service.toml"
    cfg.write_text('data_dir = "data"\nindex_roots = ["allowed"]\nmax_k = 20\n')
    cli = [sys.executable, "-m", "audiovec"]
    run = lambda *a: subprocess.run([*cli, *a], capture_output=True, text=True, timeout=120)  # noqa: E731
    r = run("collection", "create", "drums", "--config", str(cfg), "--pooling", "mean_std+l2")
    assert r.returncode == 0, r.stderr
    r = run("collection", "index", "drums", str(roots), "--config", str(cfg), "--label-from-parent", "--no-progress")
    assert r.returncode == 1  # one file failed, and the run says so...
    assert "added 6, skipped 0 already indexed, failed 1" in r.stdout and "notes.wav" in r.stderr
    r = run("collection", "index", "drums", str(roots), "--config", str(cfg), "--no-progress")
    assert "added 0, skipped 6 already indexed" in r.stdout  # ...and a rerun duplicates nothing
    r = run("collection", "index", "drums", str(DEMO[0].parent), "--config", str(cfg), "--no-progress")
    assert r.returncode == 2 and "outside the configured index_roots" in r.stderr

    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [*cli, "serve", "--config", str(cfg), "--port", str(port), "--log-level", "warning"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.2)
        with requests.Session() as http:
            info = http.get(f"{url}{API}/collections/drums").json()
            assert info["items"] == 6
            r = search_clip(http, url, DEMO[2].read_bytes(), k=3)
            assert r.json()["results"][0]["filename"] == DEMO[2].name
            assert r.json()["results"][0]["metadata"] == {"label": DEMO[2].parent.name, "folder": DEMO[2].parent.name}
            assert search_clip(http, url, DEMO[2].read_bytes(), k=21).status_code == 400  # max_k from the file
            add_files(http, url, DEMO[10:12])
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    r = run("collection", "describe", "drums", "--config", str(cfg))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["items"] == 8  # the adds made over HTTP were saved at shutdown
    assert run("collection", "drop", "drums", "--config", str(cfg)).returncode == 2  # needs --yes
    assert run("collection", "drop", "drums", "--config", str(cfg), "--yes").returncode == 0
    assert run("collection", "list", "--config", str(cfg)).stdout == ""


# ------------------------------------------------------------------------------------------------ in-process
def test_openapi_schema_is_published_and_complete(tmp_path):
    from fastapi.testclient import TestClient

    with TestClient(create_app(ServiceSettings(data_dir=tmp_path))) as client:
        schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    expected = {
        ("get", "/health"),
        ("get", "/metrics"),
        ("post", f"{API}/collections"),
        ("get", f"{API}/collections/{{name}}"),
        ("delete", f"{API}/collections/{{name}}"),
        ("post", f"{API}/collections/{{name}}/items"),
        ("get", f"{API}/collections/{{name}}/items/{{item_id}}"),
        ("delete", f"{API}/collections/{{name}}/items/{{item_id}}"),
        ("get", f"{API}/collections/{{name}}/items/{{item_id}}/audio"),
        ("post", f"{API}/collections/{{name}}/search"),
        ("post", f"{API}/collections/{{name}}/search/text"),
        ("post", f"{API}/collections/{{name}}/search/item"),
        ("post", f"{API}/collections/{{name}}/search/vector"),
    }
    assert expected <= {(m, p) for p, ops in paths.items() for m in ops}


def test_service_import_does_not_need_fastapi_until_the_app_is_built():
    code = (
        "import sys, audiovec.service as s; from audiovec.service import ServiceSettings, CollectionManager;"
        "print('fastapi' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=dict(os.environ))
    assert out.stdout.strip() == "False"


# ------------------------------------------------------------------------------------------------ fuzzing
def test_fuzz_every_operation_from_the_openapi_schema_gives_no_5xx(tmp_path):
    """Schemathesis generates requests (valid and invalid) for every operation; none may get a 5xx."""
    import schemathesis
    from hypothesis import HealthCheck, given
    from hypothesis import settings as hsettings
    from hypothesis import strategies as st

    svc = ServiceSettings(data_dir=tmp_path / "d", max_k=50)
    schema = schemathesis.openapi.from_dict(create_app(svc).openapi())
    with BackgroundServer(svc) as srv, requests.Session() as http:
        url = srv.url

        def ensure_demo() -> list[str]:
            info = http.get(f"{url}{API}/collections/demo")
            if info.status_code == 404:
                create(http, url, name="demo", segments="0.5")
            if info.status_code == 404 or info.json()["items"] < 2:  # the fuzzer drops collections and items
                add_files(http, url, DEMO[:4], name="demo", metadata={"label": "x", "n": 1})
            info = search_clip(http, url, DEMO[0].read_bytes(), name="demo", k=10).json()
            return [h["id"] for h in info["results"]]

        statuses: dict[str, dict[int, int]] = {}
        failures: list[str] = []
        for result in schema.get_all_operations():
            op = result.ok()
            statuses[f"{op.method.upper()} {op.path}"] = {}

            @hsettings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))
            @given(case=op.as_strategy(), target=st.sampled_from(["generated", "demo"]), pick=st.integers(0, 3))
            def run(case, target: str, pick: int) -> None:
                seen = statuses[f"{case.operation.method.upper()} {case.operation.path}"]
                ids = ensure_demo()
                if target == "demo" and case.path_parameters:  # aim half the requests at real data
                    case.path_parameters["name"] = "demo"
                    if "item_id" in case.path_parameters and ids:
                        case.path_parameters["item_id"] = ids[pick % len(ids)]
                    if isinstance(case.body, dict) and "item_id" in case.body and ids:
                        case.body["item_id"] = ids[pick % len(ids)]
                r = case.call(base_url=url, timeout=60)
                seen[r.status_code] = seen.get(r.status_code, 0) + 1
                if r.status_code >= 500:
                    failures.append(f"{case.method} {case.formatted_path} -> {r.status_code}: {r.text[:300]}")
                elif r.status_code >= 400:  # every error has the documented JSON body
                    assert r.json()["error"]["status"] == r.status_code

            run()
        assert not failures, failures
        # the fuzzer reached real data and success paths, not only validation errors
        assert statuses[f"POST {API}/collections"].get(201, 0) > 0
        assert statuses[f"GET {API}/collections/{{name}}/items/{{item_id}}"].get(200, 0) > 0
        assert statuses[f"POST {API}/collections/{{name}}/search/item"].get(200, 0) > 0
        assert statuses[f"GET {API}/collections/{{name}}/items/{{item_id}}/audio"].get(200, 0) > 0


# ------------------------------------------------------------------------------------------------ Milvus
def _milvus_round_trip(url: str, http: requests.Session, name: str) -> None:
    r = http.post(
        f"{url}{API}/collections",
        json={"name": name, "pooling": "mean_std+l2", "store": {"backend": "milvus", "index": "hnsw"}},
    )
    assert r.status_code == 201, r.text
    added = add_files(http, url, DEMO[:12], name=name, metadata=[{"label": label_of(p)} for p in DEMO[:12]])
    assert added.status_code == 201, added.text
    ids = [a["id"] for a in added.json()["added"]]
    assert http.get(f"{url}{API}/collections/{name}").json()["items"] == 12
    hit = search_clip(http, url, DEMO[7].read_bytes(), name=name, k=3).json()["results"][0]
    assert hit["id"] == ids[7] and hit["score"] == pytest.approx(1.0, abs=1e-4)
    label = label_of(DEMO[7])
    hits = search_clip(http, url, DEMO[7].read_bytes(), name=name, k=12, filter=json.dumps({"label": label}))
    assert {h["metadata"]["label"] for h in hits.json()["results"]} == {label}
    similar = http.post(f"{url}{API}/collections/{name}/search/item", json={"item_id": ids[7], "k": 2}).json()
    assert ids[7] not in [h["id"] for h in similar["results"]] and len(similar["results"]) == 2
    assert http.delete(f"{url}{API}/collections/{name}/items/{ids[7]}").status_code == 204
    hit = search_clip(http, url, DEMO[7].read_bytes(), name=name, k=1).json()["results"][0]
    assert hit["id"] != ids[7]
    assert http.get(f"{url}{API}/collections/{name}").json()["items"] == 11


def test_milvus_lite_collection_over_http(server, http):
    _milvus_round_trip(server.url, http, "lite")
    assert (server.settings.data_dir / "collections" / "lite" / "store" / "milvus.db").exists()
    assert http.delete(f"{server.url}{API}/collections/lite").status_code == 204


@pytest.mark.milvus_server
def test_milvus_server_collection_over_http(milvus_server_env, milvus_server, tmp_path):
    from pymilvus import MilvusClient

    settings = ServiceSettings(data_dir=tmp_path / "d", milvus_uri=milvus_server.uri, milvus_prefix="svc_")
    with BackgroundServer(settings) as srv, requests.Session() as http:
        _milvus_round_trip(srv.url, http, "sfx")
        client = MilvusClient(milvus_server.uri, timeout=30)
        try:
            assert "svc_sfx" in client.list_collections()
            # parallel clients against the server-backed collection: nothing lost, nothing duplicated
            uploads = [(f"p{i}.wav", wav_bytes(tone(0.5, 200 + 37 * i))) for i in range(16)]

            def add(pair: tuple[str, bytes]) -> str:
                with requests.Session() as s:
                    r = s.post(f"{srv.url}{API}/collections/sfx/items", files=[("files", pair)])
                    assert r.status_code == 201, r.text
                    return r.json()["added"][0]["id"]

            with ThreadPoolExecutor(8) as pool:
                new_ids = list(pool.map(add, uploads))
            assert len(set(new_ids)) == 16
            assert http.get(f"{srv.url}{API}/collections/sfx").json()["items"] == 11 + 16
            assert http.delete(f"{srv.url}{API}/collections/sfx").status_code == 204
            assert "svc_sfx" not in client.list_collections()
        finally:
            client.close()


def test_if_exists_skip_makes_retried_and_parallel_identical_uploads_store_one_item(server, http):
    url = server.url
    create(http, url)
    data = DEMO[4].read_bytes()

    def upload(_: int) -> requests.Response:
        with requests.Session() as s:
            return s.post(
                f"{url}{API}/collections/drums/items",
                files=[("files", ("again.flac", data))],
                data={"if_exists": "skip"},
            )

    with ThreadPoolExecutor(6) as pool:
        responses = list(pool.map(upload, range(6)))
    assert sorted(r.status_code for r in responses) == [200] * 5 + [201]
    ids = {(r.json()["added"] or r.json()["existing"])[0]["id"] for r in responses}
    assert len(ids) == 1 and http.get(f"{url}{API}/collections/drums").json()["items"] == 1
    # a batch mixing a stored and a new file: the new one is added, the stored one reported as existing
    r = http.post(
        f"{url}{API}/collections/drums/items",
        files=[("files", ("a.flac", data)), ("files", ("b.flac", DEMO[5].read_bytes()))],
        data={"if_exists": "skip"},
    )
    body = r.json()
    assert r.status_code == 201 and [i["filename"] for i in body["added"]] == ["b.flac"]
    assert [i["id"] for i in body["existing"]] == list(ids) and body["existing"][0]["existing"] is True
    # the default adds a copy (the client asked for it)
    assert add_files(http, url, [DEMO[4]]).status_code == 201
    assert http.get(f"{url}{API}/collections/drums").json()["items"] == 3


def test_cli_index_uploads_to_a_running_service_in_batches(tmp_path, capsys, monkeypatch):
    from audiovec.cli import main

    key = "index-key-0123456789"
    settings = ServiceSettings(data_dir=tmp_path / "d", api_key=key, max_files_per_request=4)
    folder = tmp_path / "sounds"
    for p in DEMO[:10]:
        (folder / p.parent.name).mkdir(parents=True, exist_ok=True)
        (folder / p.parent.name / p.name).write_bytes(p.read_bytes())
    (folder / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    with BackgroundServer(settings) as srv, requests.Session() as http:
        http.headers["X-API-Key"] = key
        create(http, srv.url)
        args = ["collection", "index", "drums", str(folder), "--url", srv.url, "--label-from-parent", "--no-progress"]
        assert main(args) == 2  # no key: the service refuses, the command says why
        assert "401" in capsys.readouterr().err
        monkeypatch.setenv("AUDIOVEC_API_KEY", key)
        assert main(args) == 1  # one file failed...
        out, err = capsys.readouterr()
        assert "added 10, skipped 0 already indexed, failed 1" in out and "broken.wav" in err
        assert main(args) == 1  # ...and a rerun adds nothing twice
        assert "added 0, skipped 10 already indexed, failed 1" in capsys.readouterr().out
        assert http.get(f"{srv.url}{API}/collections/drums").json()["items"] == 10
        # 10 files with a 4-file limit: the uploads were batched (3 requests per run)
        stats = http.get(f"{srv.url}{API}/stats").json()["requests"]
        posts = [s for s in stats if s["method"] == "POST" and s["route"].endswith("/items")]
        assert sum(s["count"] for s in posts if s["status"] in (201, 207, 200)) == 6
        hit = search_clip(http, srv.url, DEMO[3].read_bytes(), k=1).json()["results"][0]
        assert hit["filename"] == DEMO[3].name and hit["metadata"] == {"label": DEMO[3].parent.name}


# ------------------------------------------------------------------------------------------------ older collections
def test_collections_written_by_audiovec_0_1_still_work(tmp_path):
    """Format-1 collections (ids ``<item>`` / ``<item>/<segment>``), as audiovec 0.1 wrote them, stay usable."""
    import io
    import shutil

    import soundfile as sf

    from audiovec.service.manager import CollectionManager as Manager

    data_dir = tmp_path / "data"
    shutil.copytree(Path(__file__).parent / "data" / "collections_v1", data_dir)

    def tone(f, sec=1.0, sr=8000):
        buf = io.BytesIO()
        t = np.arange(int(sec * sr)) / sr
        sf.write(buf, (0.3 * np.sin(2 * np.pi * f * t)).astype(np.float32), sr, format="WAV", subtype="PCM_16")
        return buf.getvalue()

    with Manager(ServiceSettings(data_dir=data_dir)) as manager:
        whole, segs = manager.get("whole"), manager.get("segs")
        assert whole.format == 1 and whole.describe()["items"] == 2
        assert segs.describe()["items"] == 1 and segs.describe()["vectors"] == 3
        assert whole.get("b95996a1a167470ba0148702ed302e8f")["metadata"] == {"label": "a"}
        hits, _ = whole.search_audio(tone(880), "q.wav", k=1)
        assert hits[0]["id"] == "770da4f69b984fe7afa76fa50c8d33bb"
        hits, _ = segs.search_item("811919f7509843099b090ccb39113743", k=1, exclude_self=False)
        assert hits[0]["id"] == "811919f7509843099b090ccb39113743" and hits[0]["segments"] == 3
        added = whole.add(tone(220), "a220.wav", {"label": "low"})
        assert whole.get(added["id"])["metadata"] == {"label": "low"}
        assert whole.store.get([added["id"]])  # the format's own id scheme
        whole.delete("b95996a1a167470ba0148702ed302e8f")
        assert whole.describe()["items"] == 2
        assert contains_dupes(whole) is False


def contains_dupes(col) -> bool:
    ids = [h["id"] for h in col.search_vectors(np.ones((1, col.dim), np.float32), k=10)]
    return len(ids) != len(set(ids))

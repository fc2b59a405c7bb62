"""The search page (``/``) in headless Chromium against a real service: searches by clip, recording, item and text,
playback, the add form and dropped files, creating and dropping collections, the empty states, API errors and the
API key, with the page's console watched throughout."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import soundfile as sf

from audiovec.data import demo_dir
from browser import find_chromium

LAUNCH_ARGS = ["--no-sandbox", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]
PLAYER_READY_OR_ERROR = (
    "() => { const a = document.getElementById('player');"
    " return (a.readyState >= 1 && a.duration > 0) || document.getElementById('status').classList.contains('error'); }"
)
API_KEY = "page-test-key-0123"
PDF_BYTES = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n"
MISSING_MODEL = "/nonexistent/models/yamnet.tflite"
# what a user's drag and drop delivers: a drop event whose DataTransfer holds the files
DROP_FILES = """([target, files]) => {
  const dt = new DataTransfer();
  for (const [name, bytes] of files) dt.items.add(new File([new Uint8Array(bytes)], name, { type: "audio/flac" }));
  const at = document.querySelector(target);
  for (const type of ["dragenter", "dragover", "drop"]) {
    at.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: dt }));
  }
}"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright import sync_api  # the test extra installs it; the browser is Debian's chromium

    chromium = find_chromium("test the search page")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=LAUNCH_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def demo_clips() -> list[Path]:
    clips = sorted(Path(demo_dir()).rglob("*.flac"))
    assert len(clips) >= 40
    return clips


class Session:
    """A fresh browser context on the service's page, recording console errors, page errors and API requests."""

    def __init__(self, browser: Any, url: str) -> None:
        self.url = url
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.page = self.context.new_page()
        self.errors: list[tuple[str, str]] = []
        self.requests: list[tuple[str, str]] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda err: self.errors.append((f"pageerror: {err}", "")))
        self.page.on("request", lambda r: self.requests.append((r.method, r.url)))

    def _console(self, msg: Any) -> None:
        if msg.type == "error":
            self.errors.append((msg.text, msg.location.get("url", "")))

    def open(self) -> None:
        self.page.goto(self.url + "/")

    def status(self, kind: str) -> str:
        """Wait for the status area to show a message of this kind (ok, error...) and return its text."""
        loc = self.page.locator(f"#status.{kind}")
        loc.wait_for()
        return str(loc.inner_text())

    def search(self, action: Any, path: str = "/search") -> Any:
        """Run ``action`` (which starts a search) and return the finished search response."""
        with self.page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith(path)) as info:
            action()
        resp = info.value
        resp.finished()
        self.page.locator("#status.ok, #status.warn, #status.error").wait_for()
        return resp

    def hits(self) -> list[dict[str, Any]]:
        rows = self.page.locator("#results .hit")
        return [
            {
                "id": rows.nth(i).get_attribute("data-id"),
                "name": rows.nth(i).locator(".name").inner_text(),
                "score": float(rows.nth(i).locator(".score").inner_text()),
                "rank": int(rows.nth(i).locator(".rank").inner_text()),
                "details": rows.nth(i).locator(".details").inner_text(),
            }
            for i in range(rows.count())
        ]

    def play_first(self) -> dict[str, Any]:
        self.page.locator("#results .hit .play").first.click()
        self.page.wait_for_function(PLAYER_READY_OR_ERROR, timeout=15_000)
        assert "error" not in (self.page.get_attribute("#status", "class") or ""), self.page.inner_text("#status")
        state: dict[str, Any] = self.page.evaluate(
            "() => { const a = document.getElementById('player');"
            " return {ready: a.readyState, duration: a.duration, src: a.src, item: a.dataset.item}; }"
        )
        return state

    def assert_clean_console(self, provoked: list[tuple[int, str]]) -> None:
        """No console or page errors, except Chromium's network log of exactly the 4xx responses provoked."""
        reasons = {401: "Unauthorized", 409: "Conflict", 415: "Unsupported Media Type"}
        allowed = Counter(
            (f"Failed to load resource: the server responded with a status of {status} ({reasons[status]})", url)
            for status, url in provoked
        )
        unexpected = []
        for err in self.errors:
            if allowed[err] > 0:
                allowed[err] -= 1
            else:
                unexpected.append(err)
        assert unexpected == [], unexpected

    def screenshot(self, tmp_path: Path, name: str) -> Path:
        shot = tmp_path / name
        self.page.evaluate("() => window.scrollTo(0, 0)")  # the status area is sticky: draw it where it belongs
        self.page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 20_000
        out = os.environ.get("AUDIOVEC_SCREENSHOT_DIR")
        if out:
            Path(out).mkdir(parents=True, exist_ok=True)
            shutil.copy(shot, Path(out) / name)
        return shot

    def close(self) -> None:
        self.context.close()


def _fill_collection(url: str, clips: list[Path], headers: dict[str, str] | None = None) -> None:
    import requests

    r = requests.post(url + "/api/v1/collections", json={"name": "drums"}, headers=headers, timeout=30)
    assert r.status_code == 201, r.text
    for start in range(0, len(clips), 25):
        batch = clips[start : start + 25]
        r = requests.post(
            url + "/api/v1/collections/drums/items",
            files=[("files", (c.name, c.read_bytes(), "audio/flac")) for c in batch],
            data={"metadata": json.dumps([{"label": c.parent.name} for c in batch])},
            headers=headers,
            timeout=120,
        )
        assert r.status_code == 201, r.text


def test_page_searches_plays_adds_and_shows_errors(browser, demo_clips, tmp_path):
    from audiovec.service.server import BackgroundServer
    from audiovec.service.settings import ServiceSettings

    by_api, by_page = demo_clips[:-2], demo_clips[-2:]
    query = by_api[0]
    k = 5
    with BackgroundServer(ServiceSettings(data_dir=tmp_path / "data")) as server:
        _fill_collection(server.url, by_api)
        s = Session(browser, server.url)
        page = s.page
        try:
            s.open()
            assert "collection" in s.status("ok")
            assert page.locator("#collection").input_value() == "drums"
            assert f"drums ({len(by_api)} items)" in page.locator("#collection option").all_inner_texts()
            assert page.locator("#text-form").is_hidden()  # MFCC has no text tower
            assert page.get_attribute("#status", "aria-live") == "polite"
            unlabelled = page.evaluate(
                "() => [...document.querySelectorAll('input, select')].filter((e) => !e.labels.length).map((e) => e.id)"
            )
            assert unlabelled == []

            # the add form: two clips and a file that is not audio, reported per file
            page.locator("#add summary").click()
            page.set_input_files(
                "#add-files",
                [{"name": c.name, "mimeType": "audio/flac", "buffer": c.read_bytes()} for c in by_page]
                + [{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not audio\n"}],
            )
            page.fill("#add-metadata", '{"source": "browser"}')
            page.click("#add-form button[type=submit]")
            assert "Added 2 of 3 file(s) to drums; 1 failed" in s.status("warn")
            assert sorted(page.locator("#add-report .added strong").all_inner_texts()) == sorted(
                c.name for c in by_page
            )
            failed = page.locator("#add-report .failed").inner_text()
            assert "notes.txt" in failed and "HTTP 415" in failed
            page.locator("#collection-info", has_text=str(len(demo_clips))).wait_for()

            # search by an uploaded clip: itself first, score 1, k results, best first
            page.fill("#k", str(k))
            resp = s.search(lambda: page.set_input_files("#clip-file", str(query)))
            assert resp.status == 200
            hits = s.hits()
            assert len(hits) == min(k, len(demo_clips))
            assert [h["rank"] for h in hits] == list(range(1, k + 1))
            assert hits[0]["name"] == query.name
            assert hits[0]["score"] == pytest.approx(1.0, abs=1e-3)
            assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
            assert f"label: {query.parent.name}" in hits[0]["details"]
            assert f"{sf.info(str(query)).duration:.2f} s" in hits[0]["details"]

            # playback: fetched, turned into a blob: URL, loaded by the <audio> element
            state = s.play_first()
            assert state["item"] == hits[0]["id"] and state["src"].startswith("blob:")
            assert state["duration"] == pytest.approx(sf.info(str(query)).duration, abs=0.05)

            # more like this: new results, the item itself excluded
            s.search(lambda: page.locator("#results .hit .more").first.click(), "/search/item")
            assert "Items like" in page.inner_text("#results-summary")
            similar = s.hits()
            assert len(similar) == k
            assert hits[0]["id"] not in {h["id"] for h in similar}
            assert query.name not in {h["name"] for h in similar}

            # a metadata filter, validated in the page before anything is sent
            before = len([r for r in s.requests if r[1].endswith("/search")])
            page.fill("#filter", '{"label": ')
            page.click("#clip-form button[type=submit]")
            assert "not valid JSON" in s.status("error")
            assert page.get_attribute("#filter", "aria-invalid") == "true"
            page.fill("#filter", '{"label": "kick"}')
            s.search(lambda: page.click("#clip-form button[type=submit]"))
            assert len([r for r in s.requests if r[1].endswith("/search")]) == before + 1
            kicks = s.hits()
            n_kicks = sum(c.parent.name == "kick" for c in demo_clips)
            assert len(kicks) == min(k, n_kicks) and all("label: kick" in h["details"] for h in kicks)
            page.fill("#filter", "")

            # not audio: the service's 415 message in the status area
            resp = s.search(
                lambda: page.set_input_files(
                    "#clip-file", {"name": "paper.pdf", "mimeType": "application/pdf", "buffer": PDF_BYTES}
                )
            )
            assert resp.status == 415
            message = resp.json()["error"]["message"]
            assert "PDF" in message
            status = s.status("error")
            assert message in status and "415" in status

            # the fake microphone (a beep): recorded, converted to WAV in the page, searched
            def record() -> None:
                page.click("#record")
                page.locator("#record[aria-pressed=true]").wait_for()
                page.wait_for_timeout(1500)
                page.click("#record")

            resp = s.search(record)
            assert resp.status == 200  # MediaRecorder's WebM would be a 415: the page sent a WAV
            assert resp.request.headers["content-type"].startswith("multipart/form-data")
            m = re.search(r"Search by recording \(([0-9.]+) s\)", page.inner_text("#results-summary"))
            assert m and 1.0 <= float(m.group(1)) <= 3.0, page.inner_text("#results-summary")
            assert len(s.hits()) == k

            s.screenshot(tmp_path, "service_page.png")
            s.assert_clean_console([(415, f"{server.url}/api/v1/collections/drums/search")])
        finally:
            s.close()


def test_page_asks_for_the_api_key_then_uses_it(browser, demo_clips, tmp_path):
    from audiovec.service.server import BackgroundServer
    from audiovec.service.settings import ServiceSettings

    clips = demo_clips[::6]
    settings = ServiceSettings(data_dir=tmp_path / "data", api_key=API_KEY)
    with BackgroundServer(settings) as server:
        _fill_collection(server.url, clips, headers={"X-API-Key": API_KEY})
        s = Session(browser, server.url)
        page = s.page
        try:
            s.open()
            status = s.status("error")
            assert "401" in status and "API key" in status
            assert page.locator("#collection").is_disabled()
            s.screenshot(tmp_path, "service_page_401.png")

            page.fill("#api-key", API_KEY)
            page.click("#key-form button[type=submit]")
            s.status("ok")
            assert page.locator("#collection").input_value() == "drums"
            assert page.evaluate("() => localStorage.getItem('audiovec.apiKey')") == API_KEY

            resp = s.search(lambda: page.set_input_files("#clip-file", str(clips[1])))
            assert resp.status == 200 and resp.request.headers.get("x-api-key") == API_KEY
            hits = s.hits()
            assert hits[0]["name"] == clips[1].name and len(hits) == min(10, len(clips))
            state = s.play_first()
            assert state["item"] == hits[0]["id"]

            # the key survives a reload (local storage): no 401 this time
            page.reload()
            s.status("ok")
            assert page.input_value("#api-key") == API_KEY

            s.assert_clean_console([(401, f"{server.url}/api/v1/collections")])
        finally:
            s.close()


def test_page_searches_by_text_when_the_embedder_has_a_text_tower(browser, demo_clips, tmp_path):
    import numpy as np

    from audiovec.audio import load
    from audiovec.embedders import register_embedder, registry
    from audiovec.embedders.classical import MFCCEmbedder
    from audiovec.service.server import BackgroundServer
    from audiovec.service.settings import EmbedderPreset, ServiceSettings

    class NamedClipText(MFCCEmbedder):
        """A stand-in text tower in the MFCC space: the text names a demo clip, which is embedded as audio."""

        def embed_text(self, texts: list[str]) -> np.ndarray:
            clips = [next(Path(demo_dir()).rglob(f"{t}.flac")) for t in texts]
            return np.stack([self.embed(load(c, sr=self.sample_rate)).vectors.mean(0) for c in clips])

    clips = demo_clips[::5]
    target = clips[2]
    register_embedder("page-test-text", NamedClipText)
    try:
        presets = {"named": EmbedderPreset(name="page-test-text", description="MFCC with a toy text tower")}
        with BackgroundServer(ServiceSettings(data_dir=tmp_path / "data", embedders=presets)) as server:
            import requests

            r = requests.post(
                server.url + "/api/v1/collections", json={"name": "drums", "embedder": "named"}, timeout=30
            )
            assert r.status_code == 201 and r.json()["text_search"] is True, r.text
            r = requests.post(
                server.url + "/api/v1/collections/drums/items",
                files=[("files", (c.name, c.read_bytes(), "audio/flac")) for c in clips],
                timeout=120,
            )
            assert r.status_code == 201, r.text
            s = Session(browser, server.url)
            page = s.page
            try:
                s.open()
                s.status("ok")
                assert page.locator("#text-form").is_visible()
                page.fill("#k", "3")
                page.fill("#text-query", target.stem)
                resp = s.search(lambda: page.click("#text-form button[type=submit]"), "/search/text")
                assert resp.status == 200 and resp.request.post_data_json == {"text": target.stem, "k": 3}
                hits = s.hits()
                assert len(hits) == 3 and hits[0]["name"] == target.name
                assert hits[0]["score"] == pytest.approx(1.0, abs=1e-3)
                s.assert_clean_console([])
            finally:
                s.close()
    finally:
        registry._infos.pop("page-test-text", None)
        registry._loaded.pop("page-test-text", None)


def _option_values(page: Any, select: str) -> list[str]:
    values: list[str] = page.eval_on_selector_all(f"{select} option", "os => os.map((o) => o.value)")
    return values


def test_page_creates_fills_searches_and_drops_a_collection(browser, demo_clips, tmp_path):
    import requests

    from audiovec.service.server import BackgroundServer
    from audiovec.service.settings import EmbedderPreset, ServiceSettings

    presets = {
        "mfcc": EmbedderPreset(name="mfcc", description="MFCC (20 coefficients), 16 kHz"),
        "logmel": EmbedderPreset(name="logmel", description="log-mel spectrogram, 16 kHz"),
        "yamnet": EmbedderPreset(name="yamnet", params={"model": MISSING_MODEL}, description="YAMNet, 1024-d"),
    }
    clips = [demo_clips[0], demo_clips[-1]]
    key = {"X-API-Key": API_KEY}
    settings = ServiceSettings(data_dir=tmp_path / "data", api_key=API_KEY, embedders=presets)
    with BackgroundServer(settings) as server:
        api = f"{server.url}/api/v1"
        s = Session(browser, server.url)
        page = s.page
        try:
            # the key: asked for where it is typed, then sent with every call
            s.open()
            assert "401" in s.status("error")
            assert page.evaluate("() => document.activeElement.id") == "api-key"
            page.keyboard.type(API_KEY)
            page.keyboard.press("Enter")

            # no collections: an explanation and the create form instead of the search panels
            assert "No collections yet" in s.status("info")
            # the status area's "info" kind is a plain box (the collection's facts are a grid, not every .info)
            assert page.evaluate("() => getComputedStyle(document.getElementById('status')).display") == "block"
            assert "A collection holds the sounds you search" in page.inner_text("#no-collections")
            assert page.locator("#create-form").is_visible()
            for hidden in ("#collection-row", "#add", "#query-panel", "#results-panel"):
                assert page.locator(hidden).is_hidden(), hidden
            # only the presets whose model is there; the others listed with the reason
            assert _option_values(page, "#create-embedder") == ["logmel", "mfcc"]
            unavailable = page.inner_text("#create-unavailable")
            assert "yamnet" in unavailable and "not found" in unavailable and MISSING_MODEL in unavailable
            s.screenshot(tmp_path, "service_page_no_collections.png")

            # a name the service would refuse: said in the page, nothing sent
            page.fill("#create-name", "Drums!")
            page.click("#create-form button[type=submit]")
            assert "“Drums!” is not a valid name" in s.status("error")
            assert page.get_attribute("#create-name", "aria-invalid") == "true"
            assert not [r for r in s.requests if r[0] == "POST"]

            page.fill("#create-name", "drums")
            page.select_option("#create-embedder", "mfcc")
            assert page.inner_text("#create-embedder-about") == "MFCC (20 coefficients), 16 kHz"
            with page.expect_response(lambda r: r.request.method == "POST" and r.url == f"{api}/collections") as info:
                page.click("#create-form button[type=submit]")
            created = info.value
            assert created.status == 201 and created.request.headers.get("x-api-key") == API_KEY
            assert created.request.post_data_json == {"name": "drums", "embedder": "mfcc"}
            assert "Created the collection “drums” (mfcc)" in s.status("ok")
            assert page.locator("#collection").input_value() == "drums"
            assert page.locator("#query-panel").is_visible() and page.locator("#no-collections").is_hidden()

            # the empty collection says how to fill it
            assert "This collection is empty. Drop audio files here" in page.inner_text("#empty-collection")
            command = f"AUDIOVEC_API_KEY=YOUR_KEY audiovec collection index drums /path/to/audio --url {server.url}"
            assert page.inner_text("#index-command") == command
            s.screenshot(tmp_path, "service_page_empty_collection.png")

            # the same name again: the service's 409, in words
            page.locator("#create summary").click()
            page.fill("#create-name", "drums")
            page.click("#create-form button[type=submit]")
            assert "collection 'drums' already exists" in s.status("error")

            # a file dropped on the empty collection is uploaded
            with page.expect_response(lambda r: r.url == f"{api}/collections/drums/items") as info:
                page.evaluate(DROP_FILES, ["#empty-collection", [[clips[0].name, list(clips[0].read_bytes())]]])
            first_id = info.value.json()["added"][0]["id"]
            assert s.status("ok") == "Added 1 of 1 file(s) to drums."
            assert page.locator("#add-report .added strong").all_inner_texts() == [clips[0].name]
            page.locator("#empty-collection").wait_for(state="hidden")
            assert page.locator("#collection option").all_inner_texts() == ["drums (1 item)"]

            # both files through the form: the stored one is skipped and said so
            page.set_input_files(
                "#add-files", [{"name": c.name, "mimeType": "audio/flac", "buffer": c.read_bytes()} for c in clips]
            )
            page.click("#add-form button[type=submit]")
            assert s.status("ok") == "Added 1 of 2 file(s) to drums; 1 already stored (not added again)."
            assert page.locator("#add-report .added strong").all_inner_texts() == [clips[1].name]
            assert page.locator("#add-report .existing").text_content() == (
                f"already stored {clips[0].name} — the same bytes are item {first_id}"
            )

            # both dropped on the panel again: nothing added twice
            page.evaluate(DROP_FILES, ["#collection-panel", [[c.name, list(c.read_bytes())] for c in clips]])
            assert s.status("ok") == "Added 0 of 2 file(s) to drums; 2 already stored (not added again)."
            assert page.locator("#add-report .existing .mark").all_text_contents() == ["already stored"] * 2
            assert requests.get(f"{api}/collections/drums", headers=key, timeout=10).json()["items"] == 2

            resp = s.search(lambda: page.set_input_files("#clip-file", str(clips[1])))
            assert resp.status == 200 and resp.request.headers.get("x-api-key") == API_KEY
            hits = s.hits()
            assert hits[0]["name"] == clips[1].name and len(hits) == 2
            s.screenshot(tmp_path, "service_page_created_and_searched.png")

            # dropping asks first; Cancel keeps the collection
            page.click("#drop")
            question = page.inner_text("#drop-question")
            assert "Drop “drums” with its 2 items" in question and "cannot be undone" in question
            assert page.evaluate("() => document.activeElement.id") == "drop-no"
            s.screenshot(tmp_path, "service_page_drop_confirm.png")
            page.click("#drop-no")
            assert page.locator("#drop-confirm").is_hidden()
            assert not [r for r in s.requests if r[0] == "DELETE"]

            page.click("#drop")
            with page.expect_response(lambda r: r.request.method == "DELETE") as info:
                page.click("#drop-yes")
            assert info.value.status == 204 and info.value.url == f"{api}/collections/drums"
            assert "Dropped the collection “drums”" in s.status("ok")
            assert requests.get(f"{api}/collections", headers=key, timeout=10).json()["collections"] == []
            assert page.locator("#no-collections").is_visible() and page.locator("#results .hit").count() == 0

            s.assert_clean_console([(401, f"{api}/collections"), (409, f"{api}/collections")])
        finally:
            s.close()


def test_page_offers_yamnet_when_its_model_file_is_set(browser, shared_file, tmp_path):
    import requests

    from audiovec.service.server import BackgroundServer
    from audiovec.service.settings import EmbedderPreset, ServiceSettings

    model = shared_file("models/yamnet.tflite")
    presets = {
        "mfcc": EmbedderPreset(name="mfcc"),
        "yamnet": EmbedderPreset(name="yamnet", params={"model": str(model)}, description="YAMNet (AudioSet), 1024-d"),
        "yamnet_elsewhere": EmbedderPreset(name="yamnet", params={"model": str(tmp_path / "absent.tflite")}),
    }
    with BackgroundServer(ServiceSettings(data_dir=tmp_path / "data", embedders=presets)) as server:
        listed = requests.get(f"{server.url}/api/v1/embedders", timeout=30).json()
        assert [(p["name"], p["available"]) for p in listed] == [
            ("mfcc", True),
            ("yamnet", True),
            ("yamnet_elsewhere", False),
        ]
        assert listed[1]["reason"] is None and "absent.tflite" in listed[2]["reason"]
        s = Session(browser, server.url)
        page = s.page
        try:
            s.open()
            s.status("info")
            assert _option_values(page, "#create-embedder") == ["mfcc", "yamnet"]
            assert "yamnet_elsewhere (yamnet)" in page.inner_text("#create-unavailable")
            page.select_option("#create-embedder", "yamnet")
            assert page.inner_text("#create-embedder-about") == "YAMNet (AudioSet), 1024-d"
            page.fill("#create-name", "birds")
            page.click("#create-form button[type=submit]")
            s.status("ok")
            assert "yamnet" in page.inner_text("#collection-info")
            s.assert_clean_console([])
        finally:
            s.close()

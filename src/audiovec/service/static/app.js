// The audiovec search page: vanilla JS, no build step, no external resources (the page is served under a strict CSP).
"use strict";

(() => {
  const API = "/api/v1";
  const KEY_STORE = "audiovec.apiKey";
  const COLLECTION_STORE = "audiovec.collection";
  const MAX_RECORD_S = 30;
  // upload batches stay under the service's limits (read from /health at start-up; these are safe defaults)
  let UPLOAD_BATCH_FILES = 16;
  let UPLOAD_BATCH_BYTES = 48 * 1024 * 1024;

  const $ = (id) => document.getElementById(id);
  const ui = {
    key: $("api-key"),
    keyForm: $("key-form"),
    keyForget: $("key-forget"),
    status: $("status"),
    collection: $("collection"),
    refresh: $("refresh"),
    info: $("collection-info"),
    addForm: $("add-form"),
    addFiles: $("add-files"),
    addMetadata: $("add-metadata"),
    addReport: $("add-report"),
    k: $("k"),
    filter: $("filter"),
    clipForm: $("clip-form"),
    clipFile: $("clip-file"),
    record: $("record"),
    recTime: $("rec-time"),
    textForm: $("text-form"),
    textQuery: $("text-query"),
    summary: $("results-summary"),
    results: $("results"),
    playerBox: $("player-box"),
    nowPlaying: $("now-playing"),
    player: $("player"),
  };

  let collections = new Map(); // name -> description
  let searchSeq = 0; // only the latest search may draw results
  let playerUrl = null; // the blob: URL in the player, revoked when replaced

  // ------------------------------------------------------------------ helpers
  class ApiError extends Error {
    constructor(status, type, message, detail) {
      super(message);
      this.status = status;
      this.type = type;
      this.detail = detail;
    }
  }

  function storageGet(name) {
    try {
      return window.localStorage.getItem(name) || "";
    } catch {
      return ""; // storage disabled: the key then lives in the field only
    }
  }

  function storageSet(name, value) {
    try {
      if (value) window.localStorage.setItem(name, value);
      else window.localStorage.removeItem(name);
    } catch {
      /* storage disabled */
    }
  }

  function setStatus(text, kind = "info") {
    ui.status.textContent = text;
    ui.status.className = `status ${kind}`;
  }

  function explain(err, what) {
    if (err instanceof ApiError) {
      if (err.status === 401) {
        return (
          "The service needs an API key (401 Unauthorized): the key is missing or wrong. " +
          "Enter it in the API key field above."
        );
      }
      const code = err.status ? ` (HTTP ${err.status})` : "";
      return `${what} failed${code}: ${err.message}`;
    }
    return `${what} failed: ${err && err.message ? err.message : err}`;
  }

  function fail(err, what) {
    if (err instanceof ApiError && err.status === 401) ui.key.setAttribute("aria-invalid", "true");
    setStatus(explain(err, what), "error");
  }

  function headers(extra) {
    const h = new Headers(extra || {});
    const key = ui.key.value.trim();
    if (key) h.set("X-API-Key", key);
    return h;
  }

  async function errorFrom(resp) {
    let type = "HTTPError";
    let message = `${resp.status} ${resp.statusText}`.trim();
    let detail;
    try {
      const body = await resp.json();
      if (body && body.error) {
        type = body.error.type || type;
        message = body.error.message || message;
        detail = body.error.detail;
      }
    } catch {
      /* not a JSON error body: keep the status line */
    }
    return new ApiError(resp.status, type, message, detail);
  }

  async function request(url, init) {
    try {
      return await fetch(url, { cache: "no-store", ...init });
    } catch (err) {
      throw new ApiError(0, "NetworkError", `the service did not answer (${err.message})`);
    }
  }

  /** Call the API; returns the parsed JSON body (and the status), or throws an ApiError with the service's message. */
  async function api(path, { method = "GET", json, form } = {}) {
    const init = { method, headers: headers() };
    if (json !== undefined) {
      init.headers.set("Content-Type", "application/json");
      init.body = JSON.stringify(json);
    } else if (form !== undefined) {
      init.body = form;
    }
    const resp = await request(API + path, init);
    if (!resp.ok) throw await errorFrom(resp);
    const body = resp.status === 204 ? null : await resp.json();
    return { status: resp.status, body };
  }

  function colPath(name) {
    return `/collections/${encodeURIComponent(name)}`;
  }

  function currentCollection() {
    return collections.get(ui.collection.value) || null;
  }

  function seconds(x) {
    if (x === null || x === undefined || !Number.isFinite(x)) return "";
    return x < 10 ? `${x.toFixed(2)} s` : `${x.toFixed(1)} s`;
  }

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("data-")) node.setAttribute(k, v);
      else node[k] = v;
    }
    for (const c of children) if (c !== null && c !== undefined) node.append(c);
    return node;
  }

  /** Parse an optional JSON-object field; returns undefined when empty, throws a readable Error otherwise. */
  function jsonObjectField(input, what) {
    const text = input.value.trim();
    input.removeAttribute("aria-invalid");
    if (!text) return undefined;
    let value;
    try {
      value = JSON.parse(text);
    } catch (err) {
      input.setAttribute("aria-invalid", "true");
      throw new Error(`the ${what} is not valid JSON (${err.message})`);
    }
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      input.setAttribute("aria-invalid", "true");
      throw new Error(`the ${what} must be a JSON object, such as {"label": "kick"}`);
    }
    return value;
  }

  function readK() {
    const k = Number(ui.k.value);
    ui.k.removeAttribute("aria-invalid");
    if (!Number.isInteger(k) || k < 1) {
      ui.k.setAttribute("aria-invalid", "true");
      throw new Error("k must be a whole number of at least 1");
    }
    return k;
  }

  /** The collection, k and filter of a search, validated here before anything is sent. */
  function searchParams(what) {
    const c = currentCollection();
    try {
      if (!c) throw new Error("choose a collection first");
      return { c, k: readK(), filter: jsonObjectField(ui.filter, "metadata filter") };
    } catch (err) {
      setStatus(`${what}: ${err.message}.`, "error");
      return null;
    }
  }

  // ------------------------------------------------------------------ collections
  function embedderText(preset, emb, rate) {
    const parts = [];
    if (emb.name && emb.name !== preset) parts.push(emb.name);
    if (emb.version) parts.push(`v${emb.version}`);
    if (rate) parts.push(`${rate / 1000} kHz`);
    return parts.length ? `${preset} (${parts.join(", ")})` : preset;
  }

  function describeCollection(c) {
    ui.info.replaceChildren();
    ui.textForm.hidden = !(c && c.text_search);
    if (!c) return;
    const emb = c.embedder || {};
    const store = c.config.store;
    const index = typeof store.index === "string" ? store.index : JSON.stringify(store.index);
    const rows = [
      ["Items", `${c.items}${c.vectors !== c.items ? ` (${c.vectors} vectors)` : ""}`],
      ["Embedder", embedderText(c.config.embedder, emb, c.sample_rate)],
      ["Pipeline", `${c.pipeline}${c.config.segments ? `, segments ${c.config.segments}` : ""}`],
      ["Store", `${store.backend}, ${index}, ${store.metric}`],
      ["Text search", c.text_search ? "yes" : "no"],
    ];
    if (c.config.description) rows.unshift(["About", c.config.description]);
    for (const [dt, dd] of rows) ui.info.append(el("div", {}, el("dt", { text: dt }), el("dd", { text: dd })));
  }

  async function loadCollections() {
    const wanted = ui.collection.value || storageGet(COLLECTION_STORE);
    setStatus("Loading collections…", "busy");
    let list;
    try {
      list = (await api("/collections")).body.collections;
    } catch (err) {
      collections = new Map();
      ui.collection.replaceChildren(el("option", { value: "", text: "(unavailable)" }));
      ui.collection.disabled = true;
      describeCollection(null);
      fail(err, "Loading the collections");
      return;
    }
    collections = new Map(list.map((c) => [c.name, c]));
    ui.collection.replaceChildren();
    if (!list.length) {
      ui.collection.append(el("option", { value: "", text: "(no collections)" }));
      ui.collection.disabled = true;
      describeCollection(null);
      setStatus(
        "This service has no collections yet: create one with “audiovec collection create NAME” " +
          "or POST /api/v1/collections.",
        "info",
      );
      return;
    }
    for (const c of list) ui.collection.append(el("option", { value: c.name, text: `${c.name} (${c.items} items)` }));
    ui.collection.disabled = false;
    ui.collection.value = collections.has(wanted) ? wanted : list[0].name;
    describeCollection(currentCollection());
    setStatus(`${list.length} collection${list.length === 1 ? "" : "s"} available.`, "ok");
  }

  async function refreshCurrent() {
    const c = currentCollection();
    if (!c) return;
    try {
      const fresh = (await api(colPath(c.name))).body;
      collections.set(fresh.name, fresh);
      const opt = [...ui.collection.options].find((o) => o.value === fresh.name);
      if (opt) opt.textContent = `${fresh.name} (${fresh.items} items)`;
      if (ui.collection.value === fresh.name) describeCollection(fresh);
    } catch {
      /* the next action reports any problem */
    }
  }

  // ------------------------------------------------------------------ adding files
  function batches(files) {
    const out = [];
    let cur = [];
    let bytes = 0;
    for (const f of files) {
      if (cur.length && (cur.length >= UPLOAD_BATCH_FILES || bytes + f.size > UPLOAD_BATCH_BYTES)) {
        out.push(cur);
        cur = [];
        bytes = 0;
      }
      cur.push(f);
      bytes += f.size;
    }
    if (cur.length) out.push(cur);
    return out;
  }

  async function addFiles(event) {
    event.preventDefault();
    const c = currentCollection();
    const files = [...ui.addFiles.files];
    let metadata;
    try {
      if (!c) throw new Error("choose a collection first");
      if (!files.length) throw new Error("choose one or more audio files");
      metadata = jsonObjectField(ui.addMetadata, "metadata");
    } catch (err) {
      setStatus(`Adding files: ${err.message}.`, "error");
      return;
    }
    ui.addReport.replaceChildren();
    let added = 0;
    let failed = 0;
    let done = 0;
    let authError = null;
    const report = (ok, name, text) => {
      ui.addReport.append(
        el(
          "li",
          { class: ok ? "added" : "failed" },
          el("span", { class: "mark", text: ok ? "added" : "failed" }),
          " ",
          el("strong", { text: name }),
          ` — ${text}`,
        ),
      );
    };
    for (const batch of batches(files)) {
      setStatus(`Uploading ${done + 1}–${done + batch.length} of ${files.length} file(s) to ${c.name}…`, "busy");
      const form = new FormData();
      for (const f of batch) form.append("files", f, f.name);
      if (metadata !== undefined) form.append("metadata", JSON.stringify(metadata));
      let body;
      try {
        body = (await api(`${colPath(c.name)}/items`, { method: "POST", form })).body;
      } catch (err) {
        if (err instanceof ApiError && err.detail && Array.isArray(err.detail.failed)) {
          body = err.detail; // every file of the batch failed: the body lists why, per file
        } else {
          for (const f of batch) report(false, f.name, explain(err, "upload"));
          failed += batch.length;
          done += batch.length;
          if (err instanceof ApiError && err.status === 401) {
            authError = err;
            break;
          }
          continue;
        }
      }
      for (const item of body.added || []) {
        report(true, item.filename, `${seconds(item.duration)}, ${item.format}`);
        added += 1;
      }
      for (const f of body.failed || []) {
        report(false, f.filename || batch[f.index].name, `${f.message} (HTTP ${f.status})`);
        failed += 1;
      }
      done += batch.length;
    }
    if (authError) {
      fail(authError, "Adding files");
      return;
    }
    const failures = failed ? `; ${failed} failed (see the list below the form)` : "";
    const text = `Added ${added} of ${files.length} file(s) to ${c.name}${failures}.`;
    setStatus(text, failed ? (added ? "warn" : "error") : "ok");
    if (added) {
      ui.addFiles.value = "";
      await refreshCurrent();
    }
  }

  // ------------------------------------------------------------------ searching
  async function runSearch(what, path, init) {
    const seq = ++searchSeq;
    setStatus(`${what}…`, "busy");
    const t0 = performance.now();
    let body;
    try {
      body = (await api(path, init)).body;
    } catch (err) {
      if (seq === searchSeq) fail(err, what);
      return;
    }
    if (seq !== searchSeq) return; // a newer search was started meanwhile
    showResults(body, what, performance.now() - t0);
  }

  function searchClip(file, label) {
    const p = searchParams("Search");
    if (!p) return;
    const form = new FormData();
    form.append("file", file, file.name || "query.wav");
    form.append("k", String(p.k));
    if (p.filter !== undefined) form.append("filter", JSON.stringify(p.filter));
    return runSearch(`Search by ${label}`, `${colPath(p.c.name)}/search`, { method: "POST", form });
  }

  function onClipSubmit(event) {
    event.preventDefault();
    const file = ui.clipFile.files[0];
    if (!file) {
      setStatus("Search: choose an audio file first.", "error");
      return;
    }
    return searchClip(file, `clip “${file.name}”`);
  }

  function onTextSubmit(event) {
    event.preventDefault();
    const text = ui.textQuery.value.trim();
    const p = searchParams("Text search");
    if (!p) return;
    if (!text) {
      setStatus("Text search: type what the sound is like.", "error");
      return;
    }
    const json = { text, k: p.k };
    if (p.filter !== undefined) json.filter = p.filter;
    return runSearch(`Search by text “${text}”`, `${colPath(p.c.name)}/search/text`, { method: "POST", json });
  }

  function moreLike(hit) {
    const p = searchParams("More like this");
    if (!p) return;
    const json = { item_id: hit.id, k: p.k, exclude_self: true };
    if (p.filter !== undefined) json.filter = p.filter;
    return runSearch(`Items like “${hit.filename}”`, `${colPath(p.c.name)}/search/item`, { method: "POST", json });
  }

  function metadataText(meta) {
    return Object.entries(meta || {})
      .map(([k, v]) => `${k}: ${typeof v === "string" ? v : JSON.stringify(v)}`)
      .join(", ");
  }

  function showResults(body, what, ms) {
    const hits = body.results || [];
    const t = body.timings || {};
    const steps = ["decode", "embed", "search"]
      .filter((s) => t[`${s}_ms`])
      .map((s) => `${s} ${t[`${s}_ms`].toFixed(1)} ms`);
    const count = `${hits.length} result${hits.length === 1 ? "" : "s"}`;
    const where = `in ${body.collection} (k = ${body.k}), ${Math.round(ms)} ms`;
    ui.summary.textContent = `${what}: ${count} ${where}${steps.length ? ` (${steps.join(", ")})` : ""}.`;
    ui.results.replaceChildren();
    hits.forEach((hit, i) => ui.results.append(resultItem(hit, i + 1)));
    markPlaying();
    if (hits.length) setStatus(`Found ${hits.length} result${hits.length === 1 ? "" : "s"}.`, "ok");
    else setStatus("No results: the collection is empty, or nothing matches the filter.", "warn");
  }

  function resultItem(hit, rank) {
    const name = hit.filename || hit.id;
    const details = [];
    if (hit.duration !== null && hit.duration !== undefined) details.push(seconds(hit.duration));
    if (hit.segments > 1 && hit.start !== null && hit.start !== undefined) {
      details.push(`segment ${hit.start.toFixed(2)}–${hit.end.toFixed(2)} s`);
    }
    const meta = metadataText(hit.metadata);
    const play = el("button", { type: "button", class: "play", text: "Play" });
    play.setAttribute("aria-label", `Play ${name}`);
    if (hit.audio_url) play.addEventListener("click", () => playHit(hit, play));
    else {
      play.disabled = true;
      play.title = "this collection does not keep audio";
    }
    const more = el("button", { type: "button", class: "more", text: "More like this" });
    more.setAttribute("aria-label", `More like ${name}`);
    more.addEventListener("click", () => moreLike(hit));
    return el(
      "li",
      { class: "hit", "data-id": hit.id },
      el("span", { class: "rank", text: String(rank) }),
      el(
        "div",
        { class: "what" },
        el("div", { class: "name", text: name, title: name }),
        el(
          "div",
          { class: "details" },
          el("span", { class: "duration", text: details.join(" · ") }),
          meta ? el("span", { class: "metadata", text: meta }) : null,
        ),
      ),
      el("span", { class: "score", text: hit.score.toFixed(3), title: `score ${hit.score}, distance ${hit.distance}` }),
      el("div", { class: "actions" }, play, more),
    );
  }

  // ------------------------------------------------------------------ playback
  async function playHit(hit, button) {
    const name = hit.filename || hit.id;
    button.disabled = true;
    setStatus(`Loading “${name}”…`, "busy");
    let blob;
    try {
      // fetched with the key header (an <audio src> request could not carry it), then played from a blob: URL
      const resp = await request(hit.audio_url, { headers: headers() });
      if (!resp.ok) throw await errorFrom(resp);
      blob = await resp.blob();
    } catch (err) {
      fail(err, `Loading the audio of “${name}”`);
      return;
    } finally {
      button.disabled = false;
    }
    if (playerUrl) URL.revokeObjectURL(playerUrl);
    playerUrl = URL.createObjectURL(blob);
    ui.player.src = playerUrl;
    ui.player.dataset.item = hit.id;
    markPlaying();
    ui.nowPlaying.textContent = name;
    ui.playerBox.hidden = false;
    setStatus(`Playing “${name}”.`, "ok");
    try {
      await ui.player.play();
    } catch (err) {
      if (err.name === "AbortError") return; // another clip replaced it
      setStatus(`“${name}” is loaded: press play in the player (${err.message}).`, "info");
    }
  }

  function markPlaying() {
    for (const li of ui.results.children) li.classList.toggle("playing", li.dataset.id === ui.player.dataset.item);
  }

  ui.player.addEventListener("error", () => {
    if (ui.player.getAttribute("src")) {
      setStatus("The browser cannot play this file's format; it can still be searched.", "warn");
    }
  });

  // ------------------------------------------------------------------ recording
  const rec = { recorder: null, stream: null, chunks: [], timer: null, started: 0, stopTimer: null, starting: false };

  function setRecording(on) {
    ui.record.textContent = on ? "Stop" : "Record";
    ui.record.setAttribute("aria-pressed", on ? "true" : "false");
    ui.record.classList.toggle("recording", on);
    if (!on) ui.recTime.textContent = "";
  }

  async function startRecording() {
    if (!currentCollection()) {
      setStatus("Record: choose a collection first.", "error");
      return;
    }
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia || !window.MediaRecorder) {
      setStatus("This browser cannot record audio here (it needs MediaRecorder, and HTTPS or localhost).", "error");
      return;
    }
    let stream;
    rec.starting = true;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (err) {
      setStatus(`No microphone: ${err.message || err.name}.`, "error");
      return;
    } finally {
      rec.starting = false;
    }
    rec.stream = stream;
    rec.chunks = [];
    rec.recorder = new MediaRecorder(stream);
    rec.recorder.addEventListener("dataavailable", (e) => {
      if (e.data && e.data.size) rec.chunks.push(e.data);
    });
    rec.recorder.addEventListener("stop", () => finishRecording());
    rec.recorder.start(250);
    rec.started = performance.now();
    setRecording(true);
    setStatus("Recording… press Stop when done.", "busy");
    rec.timer = window.setInterval(() => {
      ui.recTime.textContent = `${((performance.now() - rec.started) / 1000).toFixed(1)} s`;
    }, 100);
    rec.stopTimer = window.setTimeout(stopRecording, MAX_RECORD_S * 1000);
  }

  function stopRecording() {
    window.clearInterval(rec.timer);
    window.clearTimeout(rec.stopTimer);
    if (rec.recorder && rec.recorder.state !== "inactive") rec.recorder.stop();
    if (rec.stream) rec.stream.getTracks().forEach((t) => t.stop());
    setRecording(false);
  }

  async function finishRecording() {
    const type = rec.recorder ? rec.recorder.mimeType : "";
    const blob = new Blob(rec.chunks, type ? { type } : {});
    rec.recorder = null;
    rec.stream = null;
    rec.chunks = [];
    if (!blob.size) {
      setStatus("The recording is empty: nothing was captured from the microphone.", "error");
      return;
    }
    setStatus("Converting the recording to WAV…", "busy");
    let wav;
    try {
      const c = currentCollection();
      wav = await toWav(await blob.arrayBuffer(), c ? c.sample_rate : 16000);
    } catch (err) {
      setStatus(`The recording could not be decoded: ${err.message || err.name}.`, "error");
      return;
    }
    const file = new File([wav.blob], "recording.wav", { type: "audio/wav" });
    return searchClip(file, `recording (${seconds(wav.duration)})`);
  }

  /** Decode compressed audio (MediaRecorder's webm/opus) and encode it as a mono 16-bit PCM WAV at `rate` Hz. */
  async function toWav(bytes, rate) {
    const sr = Math.min(Math.max(Math.round(rate) || 16000, 8000), 96000);
    const ctx = new OfflineAudioContext(1, 1, sr); // decodes and resamples to sr without opening an audio device
    const audio = await ctx.decodeAudioData(bytes);
    const n = audio.length;
    const mono = new Float32Array(n);
    for (let ch = 0; ch < audio.numberOfChannels; ch++) {
      const data = audio.getChannelData(ch);
      for (let i = 0; i < n; i++) mono[i] += data[i] / audio.numberOfChannels;
    }
    if (!n) throw new Error("no audio samples");
    return { blob: encodeWav(mono, audio.sampleRate), duration: n / audio.sampleRate };
  }

  function encodeWav(samples, sampleRate) {
    const n = samples.length;
    const view = new DataView(new ArrayBuffer(44 + 2 * n));
    const ascii = (at, s) => {
      for (let i = 0; i < s.length; i++) view.setUint8(at + i, s.charCodeAt(i));
    };
    ascii(0, "RIFF");
    view.setUint32(4, 36 + 2 * n, true);
    ascii(8, "WAVE");
    ascii(12, "fmt ");
    view.setUint32(16, 16, true); // fmt chunk size
    view.setUint16(20, 1, true); // PCM
    view.setUint16(22, 1, true); // mono
    view.setUint32(24, sampleRate, true);
    view.setUint32(28, sampleRate * 2, true); // byte rate
    view.setUint16(32, 2, true); // block align
    view.setUint16(34, 16, true); // bits per sample
    ascii(36, "data");
    view.setUint32(40, 2 * n, true);
    for (let i = 0; i < n; i++) {
      const s = Math.max(-1, Math.min(1, samples[i]));
      view.setInt16(44 + 2 * i, s < 0 ? s * 0x8000 : s * 0x7fff, true);
    }
    return new Blob([view.buffer], { type: "audio/wav" });
  }

  // ------------------------------------------------------------------ wiring
  ui.key.value = storageGet(KEY_STORE);
  ui.keyForm.addEventListener("submit", (e) => {
    e.preventDefault();
    ui.key.removeAttribute("aria-invalid");
    storageSet(KEY_STORE, ui.key.value.trim());
    loadCollections();
  });
  ui.keyForget.addEventListener("click", () => {
    ui.key.value = "";
    storageSet(KEY_STORE, "");
    loadCollections();
  });
  ui.refresh.addEventListener("click", () => loadCollections());
  ui.collection.addEventListener("change", () => {
    storageSet(COLLECTION_STORE, ui.collection.value);
    describeCollection(currentCollection());
    ui.addReport.replaceChildren();
    refreshCurrent();
  });
  ui.addForm.addEventListener("submit", addFiles);
  ui.clipForm.addEventListener("submit", onClipSubmit);
  ui.clipFile.addEventListener("change", () => {
    if (ui.clipFile.files.length) ui.clipForm.requestSubmit();
  });
  ui.textForm.addEventListener("submit", onTextSubmit);
  ui.record.addEventListener("click", () => {
    if (rec.recorder) stopRecording();
    else if (!rec.starting) startRecording();
  });
  for (const input of [ui.filter, ui.addMetadata, ui.k, ui.key]) {
    input.addEventListener("input", () => input.removeAttribute("aria-invalid"));
  }

  // the service's limits are public (GET /health): bound k and the upload batches by them
  fetch("/health")
    .then((resp) => (resp.ok ? resp.json() : null))
    .then((health) => {
      const limits = health && health.limits;
      if (!limits) return;
      ui.k.max = String(limits.max_k);
      UPLOAD_BATCH_FILES = Math.max(1, Math.min(UPLOAD_BATCH_FILES, limits.max_files_per_request));
      UPLOAD_BATCH_BYTES = Math.max(1, Math.min(UPLOAD_BATCH_BYTES, Math.floor(limits.max_request_mb * 0.9 * 1048576)));
    })
    .catch(() => undefined) // an old service without limits: the defaults above apply
    .finally(() => loadCollections());
})();

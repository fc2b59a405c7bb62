// The audiovec search page: vanilla JS, no build step, no external resources (the page is served under a strict CSP).
"use strict";

(() => {
  const API = "/api/v1";
  const KEY_STORE = "audiovec.apiKey";
  const COLLECTION_STORE = "audiovec.collection";
  const MAX_RECORD_S = 30;
  const NAME_RE = /^[a-z][a-z0-9_]{0,62}$/; // the service's rule for collection names
  // upload batches stay under the service's limits (read from /health at start-up; these are safe defaults)
  let UPLOAD_BATCH_FILES = 16;
  let UPLOAD_BATCH_BYTES = 48 * 1024 * 1024;

  const $ = (id) => document.getElementById(id);
  const ui = {
    key: $("api-key"),
    keyForm: $("key-form"),
    keyForget: $("key-forget"),
    status: $("status"),
    panel: $("collection-panel"),
    noCollections: $("no-collections"),
    collectionRow: $("collection-row"),
    collection: $("collection"),
    refresh: $("refresh"),
    drop: $("drop"),
    dropConfirm: $("drop-confirm"),
    dropQuestion: $("drop-question"),
    dropYes: $("drop-yes"),
    dropNo: $("drop-no"),
    info: $("collection-info"),
    emptyCollection: $("empty-collection"),
    indexCommand: $("index-command"),
    add: $("add"),
    addForm: $("add-form"),
    addFiles: $("add-files"),
    addMetadata: $("add-metadata"),
    addSkip: $("add-skip"),
    addReport: $("add-report"),
    create: $("create"),
    createForm: $("create-form"),
    createName: $("create-name"),
    createEmbedder: $("create-embedder"),
    createAbout: $("create-embedder-about"),
    createUnavailable: $("create-unavailable"),
    createDescription: $("create-description"),
    queryPanel: $("query-panel"),
    resultsPanel: $("results-panel"),
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
  let presets = new Map(); // embedder presets new collections may use here: name -> preset
  let authRequired = false; // from /health: the service wants an API key
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
    setStatus(explain(err, what), "error");
    if (err instanceof ApiError && err.status === 401) {
      ui.key.setAttribute("aria-invalid", "true");
      ui.key.focus(); // ask for the key where it is typed
    }
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
  function itemsText(n) {
    return `${n} item${n === 1 ? "" : "s"}`;
  }

  function optionText(c) {
    return `${c.name} (${itemsText(c.items)})`;
  }

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
    ui.drop.disabled = !c;
    hideDropConfirm();
    showEmptyCollection(c && c.items === 0 ? c : null);
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

  /** An empty collection says how to fill it: drop files on the panel, the form, or the index command. */
  function showEmptyCollection(c) {
    ui.emptyCollection.hidden = !c;
    if (!c) return;
    const key = authRequired ? "AUDIOVEC_API_KEY=YOUR_KEY " : "";
    const url = window.location.origin;
    ui.indexCommand.textContent = `${key}audiovec collection index ${c.name} /path/to/audio --url ${url}`;
    ui.add.open = true;
  }

  /** No collections at all: an explanation and the create form instead of the search panels. */
  function showNoCollections(none) {
    ui.noCollections.hidden = !none;
    for (const node of [ui.collectionRow, ui.add, ui.queryPanel, ui.resultsPanel]) node.hidden = none;
    if (none) ui.create.open = true;
  }

  /** Load the collections (selecting `select`, else the current or remembered one), then say `done` or a count. */
  async function loadCollections(select, done) {
    const wanted = select || ui.collection.value || storageGet(COLLECTION_STORE);
    setStatus("Loading collections…", "busy");
    let list;
    try {
      list = (await api("/collections")).body.collections;
    } catch (err) {
      collections = new Map();
      ui.collection.replaceChildren(el("option", { value: "", text: "(unavailable)" }));
      ui.collection.disabled = true;
      showNoCollections(false);
      describeCollection(null);
      fail(err, "Loading the collections");
      return;
    }
    collections = new Map(list.map((c) => [c.name, c]));
    ui.collection.replaceChildren();
    showNoCollections(!list.length);
    if (!list.length) {
      ui.collection.append(el("option", { value: "", text: "(no collections)" }));
      ui.collection.disabled = true;
      describeCollection(null);
    } else {
      for (const c of list) ui.collection.append(el("option", { value: c.name, text: optionText(c) }));
      ui.collection.disabled = false;
      ui.collection.value = collections.has(wanted) ? wanted : list[0].name;
      describeCollection(currentCollection());
    }
    await loadPresets();
    if (done) setStatus(done, "ok");
    else if (!list.length) setStatus("No collections yet: create one below.", "info");
    else setStatus(`${list.length} collection${list.length === 1 ? "" : "s"} available.`, "ok");
  }

  async function refreshCurrent() {
    const c = currentCollection();
    if (!c) return;
    try {
      const fresh = (await api(colPath(c.name))).body;
      collections.set(fresh.name, fresh);
      const opt = [...ui.collection.options].find((o) => o.value === fresh.name);
      if (opt) opt.textContent = optionText(fresh);
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

  const MARKS = { added: "added", existing: "already stored", failed: "failed" };

  function reportFile(kind, name, text) {
    const mark = el("span", { class: "mark", text: MARKS[kind] });
    ui.addReport.append(el("li", { class: kind }, mark, " ", el("strong", { text: name }), ` — ${text}`));
  }

  function onAddSubmit(event) {
    event.preventDefault();
    return uploadFiles([...ui.addFiles.files]);
  }

  /** Upload files to the current collection in batches within the service's limits, reporting each file. */
  async function uploadFiles(files) {
    const c = currentCollection();
    let metadata;
    try {
      if (!c) throw new Error("choose a collection first");
      if (!files.length) throw new Error("choose one or more audio files");
      metadata = jsonObjectField(ui.addMetadata, "metadata");
    } catch (err) {
      setStatus(`Adding files: ${err.message}.`, "error");
      return;
    }
    ui.add.open = true; // the per-file report is in it
    ui.addReport.replaceChildren();
    const count = { added: 0, existing: 0, failed: 0 };
    let done = 0;
    let authError = null;
    for (const batch of batches(files)) {
      setStatus(`Uploading ${done + 1}–${done + batch.length} of ${files.length} file(s) to ${c.name}…`, "busy");
      const form = new FormData();
      for (const f of batch) form.append("files", f, f.name);
      if (metadata !== undefined) form.append("metadata", JSON.stringify(metadata));
      form.append("if_exists", ui.addSkip.checked ? "skip" : "add");
      let body;
      try {
        body = (await api(`${colPath(c.name)}/items`, { method: "POST", form })).body;
      } catch (err) {
        if (err instanceof ApiError && err.detail && Array.isArray(err.detail.failed)) {
          body = err.detail; // every file of the batch failed: the body lists why, per file
        } else {
          for (const f of batch) reportFile("failed", f.name, explain(err, "upload"));
          count.failed += batch.length;
          done += batch.length;
          if (err instanceof ApiError && err.status === 401) {
            authError = err;
            break;
          }
          continue;
        }
      }
      for (const item of body.added || []) {
        reportFile("added", item.filename, `${seconds(item.duration)}, ${item.format}`);
      }
      for (const item of body.existing || []) {
        reportFile("existing", item.filename, `the same bytes are item ${item.id}`);
      }
      for (const f of body.failed || []) {
        reportFile("failed", f.filename || batch[f.index].name, `${f.message} (HTTP ${f.status})`);
      }
      for (const kind of ["added", "existing", "failed"]) count[kind] += (body[kind] || []).length;
      done += batch.length;
    }
    if (authError) {
      fail(authError, "Adding files");
      return;
    }
    const kind = count.failed ? (count.added || count.existing ? "warn" : "error") : "ok";
    setStatus(uploadSummary(c.name, files.length, count), kind);
    if (count.added || count.existing) ui.addFiles.value = "";
    if (count.added) await refreshCurrent();
  }

  function uploadSummary(name, total, count) {
    const parts = [`Added ${count.added} of ${total} file(s) to ${name}`];
    if (count.existing) parts.push(`${count.existing} already stored (not added again)`);
    if (count.failed) parts.push(`${count.failed} failed (see the list below the form)`);
    return `${parts.join("; ")}.`;
  }

  /** Dragging files over the collection panel: dropped audio files are uploaded like the form's. */
  function draggingFiles(event) {
    return Boolean(event.dataTransfer) && [...event.dataTransfer.types].includes("Files");
  }

  function onDragOver(event) {
    if (!draggingFiles(event) || !currentCollection()) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
    ui.panel.classList.add("dropping");
  }

  function onDragLeave(event) {
    if (!ui.panel.contains(event.relatedTarget)) ui.panel.classList.remove("dropping");
  }

  function onDrop(event) {
    if (!draggingFiles(event)) return;
    event.preventDefault();
    ui.panel.classList.remove("dropping");
    return uploadFiles([...event.dataTransfer.files]);
  }

  // ------------------------------------------------------------------ creating and dropping collections
  function presetLabel(p) {
    return p.embedder && p.embedder !== p.name ? `${p.name} (${p.embedder})` : p.name;
  }

  /** Fill the create form's embedder choice with the presets usable here; list the others with why they are not. */
  async function loadPresets() {
    let list;
    try {
      list = (await api("/embedders")).body;
    } catch (err) {
      presets = new Map();
      ui.createEmbedder.replaceChildren();
      ui.createEmbedder.disabled = true;
      ui.createAbout.textContent = explain(err, "Loading the embedders");
      return;
    }
    const usable = list.filter((p) => p.available !== false); // a service that does not say: all of them
    const missing = list.filter((p) => p.available === false);
    const previous = ui.createEmbedder.value;
    presets = new Map(usable.map((p) => [p.name, p]));
    ui.createEmbedder.replaceChildren(...usable.map((p) => el("option", { value: p.name, text: presetLabel(p) })));
    ui.createEmbedder.disabled = !usable.length;
    if (presets.has(previous)) ui.createEmbedder.value = previous;
    describePreset();
    ui.createUnavailable.hidden = !missing.length;
    ui.createUnavailable.querySelector("ul").replaceChildren(
      ...missing.map((p) => el("li", {}, el("strong", { text: presetLabel(p) }), ` — ${p.reason || "unavailable"}`)),
    );
  }

  function describePreset() {
    const p = presets.get(ui.createEmbedder.value);
    if (p) ui.createAbout.textContent = p.description || "";
    else ui.createAbout.textContent = "No embedder can be used on this service: ask its operator to install one.";
  }

  /** The new collection's name, checked against the service's rule before anything is sent. */
  function readName() {
    const name = ui.createName.value.trim();
    ui.createName.removeAttribute("aria-invalid");
    if (!NAME_RE.test(name)) {
      ui.createName.setAttribute("aria-invalid", "true");
      const what = name ? `“${name}” is not a valid name` : "the name is empty";
      throw new Error(`${what}: use 1 to 63 lower-case letters, digits and _, starting with a letter`);
    }
    return name;
  }

  async function createCollection(event) {
    event.preventDefault();
    let json;
    try {
      json = { name: readName(), embedder: ui.createEmbedder.value };
      if (!presets.has(json.embedder)) throw new Error("choose an embedder");
    } catch (err) {
      setStatus(`New collection: ${err.message}.`, "error");
      return;
    }
    const description = ui.createDescription.value.trim();
    if (description) json.description = description;
    setStatus(`Creating ${json.name}…`, "busy");
    try {
      await api("/collections", { method: "POST", json });
    } catch (err) {
      if (err instanceof ApiError && err.status === 409) ui.createName.setAttribute("aria-invalid", "true");
      fail(err, `Creating the collection “${json.name}”`);
      return;
    }
    ui.createName.value = "";
    ui.createDescription.value = "";
    ui.create.open = false;
    storageSet(COLLECTION_STORE, json.name);
    const next = "add audio files: drop them on this panel, or choose them in the form.";
    await loadCollections(json.name, `Created the collection “${json.name}” (${json.embedder}); ${next}`);
  }

  function askDrop() {
    const c = currentCollection();
    if (!c) return;
    const what = `“${c.name}” with its ${itemsText(c.items)} and their stored audio`;
    ui.dropQuestion.textContent = `Drop ${what}? This cannot be undone.`;
    ui.dropConfirm.dataset.name = c.name;
    ui.dropConfirm.hidden = false;
    ui.dropNo.focus(); // the safe choice has the focus
  }

  function hideDropConfirm() {
    ui.dropConfirm.hidden = true;
    delete ui.dropConfirm.dataset.name;
  }

  async function dropCollection() {
    const name = ui.dropConfirm.dataset.name;
    hideDropConfirm();
    if (!name) return;
    setStatus(`Dropping ${name}…`, "busy");
    try {
      await api(colPath(name), { method: "DELETE" });
    } catch (err) {
      fail(err, `Dropping the collection “${name}”`);
      return;
    }
    if (storageGet(COLLECTION_STORE) === name) storageSet(COLLECTION_STORE, "");
    ui.results.replaceChildren(); // they were items of the dropped collection
    ui.summary.textContent = "";
    await loadCollections(null, `Dropped the collection “${name}” with its items.`);
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
  ui.addForm.addEventListener("submit", onAddSubmit);
  ui.createForm.addEventListener("submit", createCollection);
  ui.createEmbedder.addEventListener("change", describePreset);
  ui.drop.addEventListener("click", askDrop);
  ui.dropYes.addEventListener("click", dropCollection);
  ui.dropNo.addEventListener("click", () => {
    hideDropConfirm();
    ui.drop.focus();
  });
  ui.panel.addEventListener("dragover", onDragOver);
  ui.panel.addEventListener("dragleave", onDragLeave);
  ui.panel.addEventListener("drop", onDrop);
  // a file dropped elsewhere would make the browser leave the page to open it (file inputs still take drops)
  for (const type of ["dragover", "drop"]) {
    window.addEventListener(type, (e) => {
      if (draggingFiles(e) && !(e.target instanceof HTMLInputElement && e.target.type === "file")) e.preventDefault();
    });
  }
  ui.clipForm.addEventListener("submit", onClipSubmit);
  ui.clipFile.addEventListener("change", () => {
    if (ui.clipFile.files.length) ui.clipForm.requestSubmit();
  });
  ui.textForm.addEventListener("submit", onTextSubmit);
  ui.record.addEventListener("click", () => {
    if (rec.recorder) stopRecording();
    else if (!rec.starting) startRecording();
  });
  for (const input of [ui.filter, ui.addMetadata, ui.k, ui.key, ui.createName]) {
    input.addEventListener("input", () => input.removeAttribute("aria-invalid"));
  }

  // the service's limits are public (GET /health): bound k and the upload batches by them
  fetch("/health")
    .then((resp) => (resp.ok ? resp.json() : null))
    .then((health) => {
      authRequired = Boolean(health && health.auth_required);
      const limits = health && health.limits;
      if (!limits) return;
      ui.k.max = String(limits.max_k);
      UPLOAD_BATCH_FILES = Math.max(1, Math.min(UPLOAD_BATCH_FILES, limits.max_files_per_request));
      UPLOAD_BATCH_BYTES = Math.max(1, Math.min(UPLOAD_BATCH_BYTES, Math.floor(limits.max_request_mb * 0.9 * 1048576)));
    })
    .catch(() => undefined) // an old service without limits: the defaults above apply
    .finally(() => loadCollections());
})();

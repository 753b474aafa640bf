// The metaclaude web dashboard. It reads the live feed (/ws: a snapshot, then every
// numbered event) and the API (/api/v1/...), and writes the page with textContent only:
// whatever a script prints or is named stays inert text.
//
// Bounds, so that a tab left open for a day stays small: the feed keeps FEED_CAP rows,
// the resolved alerts RESOLVED_CAP, the charts a fixed number of intervals (the server's
// answer), the running table what the server runs. Events only mark parts of the page
// dirty; the page is written at most once per animation frame, and the summary, charts
// and tables are re-read from the server at most once per REFRESH_MIN_MS.
//
// State for tests and people is in DOM attributes: body[data-connection|seq|snapshots|
// events|refreshes|paused|csp-violations|ready-ms], #feed[data-count], rows [data-execution-id],
// #sum-total[data-value], #detail[data-execution-id][data-state], #scripts[data-count|loaded],
// #scripts-table rows [data-script][data-state], #silence-dialog[data-state] (closed, open,
// sending, rejected), #silences-status[data-state|data-silence].
"use strict";

(() => {
  const FEED_CAP = 200;
  const RESOLVED_CAP = 20;
  const RUNNING_SHOWN = 100;
  const REFRESH_MIN_MS = 1000;
  const REFRESH_IDLE_MS = 10000;
  const BACKOFF_MIN_MS = 500;
  const BACKOFF_MAX_MS = 30000;
  const BUCKETS = { 5: 60, 60: 60, 1440: 96, 0: 60 };
  const LAST_RUNS_CAP = 500;

  const $ = (id) => document.getElementById(id);
  const body = document.body;

  // ---------------------------------------------------------------- view state (URL)
  const view = readView();

  function readView() {
    const q = new URLSearchParams(location.search);
    const window = ["5", "60", "1440", "0"].includes(q.get("window")) ? q.get("window") : "60";
    const dir = (v) => (v === "asc" ? "asc" : "desc");
    return {
      window,
      script: q.get("script") || "",
      specialist: q.get("specialist") || "",
      user: q.get("user") || "",
      scriptsSort: q.get("sort") || "count",
      scriptsDir: dir(q.get("dir")),
      specialistsSort: q.get("ssort") || "count",
      specialistsDir: dir(q.get("sdir")),
    };
  }

  function writeView() {
    const q = new URLSearchParams();
    if (view.window !== "60") q.set("window", view.window);
    for (const k of ["script", "specialist", "user"]) if (view[k]) q.set(k, view[k]);
    if (view.scriptsSort !== "count" || view.scriptsDir !== "desc") {
      q.set("sort", view.scriptsSort);
      q.set("dir", view.scriptsDir);
    }
    if (view.specialistsSort !== "count" || view.specialistsDir !== "desc") {
      q.set("ssort", view.specialistsSort);
      q.set("sdir", view.specialistsDir);
    }
    const s = q.toString();
    history.replaceState(null, "", location.pathname + (s ? "?" + s : ""));
  }

  function scopeQuery() {
    const q = new URLSearchParams();
    for (const k of ["script", "specialist", "user"]) if (view[k]) q.set(k, view[k]);
    return q;
  }

  function takes(r) {
    return (!view.script || r.script_id === view.script) &&
      (!view.specialist || r.specialist === view.specialist) &&
      (!view.user || r.user === view.user);
  }

  // ---------------------------------------------------------------- data
  const data = {
    seq: 0,
    snapshots: 0,
    events: 0,
    gaps: 0,
    lastMessageAt: 0,
    running: new Map(),
    feed: [],          // newest first, at most FEED_CAP
    feedIds: new Set(),
    pending: 0,        // events not shown while paused
    alerts: new Map(), // fingerprint -> alert
    resolved: [],
    plugins: [],
    report: null,
    series: null,
    lastFinished: "", // the newest finished event's timestamp (the server's clock)
    scripts: null,     // the registry's scripts with an expect block (each with its status)
    silences: null,    // null: the server has no silences API
    schedules: null,   // script -> its schedule; null: the server has no schedules API
    lastRuns: new Map(), // script -> its newest finished execution seen (at most LAST_RUNS_CAP)
    lastRunAsked: new Set(),
  };

  // ---------------------------------------------------------------- rendering
  const dirty = new Set();
  let frame = 0;
  function mark(...parts) {
    for (const p of parts) dirty.add(p);
    if (!frame) frame = requestAnimationFrame(render);
  }

  function render() {
    frame = 0;
    const parts = [...dirty];
    dirty.clear();
    for (const p of parts) renderers[p]();
    // The first frame with the server's figures and its executions written: when the
    // page became useful, in milliseconds since navigation started (the benchmark).
    if (!body.dataset.readyMs && data.report && data.series && data.snapshots) {
      body.dataset.readyMs = performance.now().toFixed(1);
    }
  }

  const renderers = {
    connection: renderConnection,
    summary: renderSummary,
    charts: renderCharts,
    alerts: renderAlerts,
    top: renderTop,
    errors: renderErrors,
    running: renderRunning,
    feed: renderFeed,
    plugins: renderPlugins,
    scripts: renderScripts,
  };

  // Text a script or a plugin wrote, made visible and inert: control characters become
  // their Unicode pictures (an ANSI escape shows as ␛[31m), nothing is interpreted.
  function shown(text, max) {
    if (text === null || text === undefined) return "";
    let s = String(text);
    if (max && s.length > max) s = s.slice(0, max) + "…";
    return s.replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g,
      (c) => c === "\u007f" ? "\u2421" : String.fromCharCode(0x2400 + c.charCodeAt(0)));
  }

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    if (attrs) for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") e.className = v;
      else e.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function replaceRows(table, rows) {
    const tbody = table.tBodies[0];
    const f = document.createDocumentFragment();
    for (const r of rows) f.append(r);
    tbody.replaceChildren(f);
  }

  // Rewrites a table with `write` and gives the focus back to the same action's button in
  // it (the same data-action and data-key), so that a keyboard user keeps their place
  // while the table follows the server.
  function keepFocus(table, write) {
    const had = document.activeElement;
    const action = had && table.contains(had) && had.dataset ? had.dataset.action : undefined;
    const key = action ? had.dataset.key : undefined;
    write();
    if (!action) return;
    const again = [...table.querySelectorAll("button[data-action]")]
      .find((b) => b.dataset.action === action && b.dataset.key === key);
    if (again) again.focus();
  }

  const num = (v, digits = 2) => (v === null || v === undefined || Number.isNaN(v)) ? "–" : Number(v).toFixed(digits);
  const pct = (v) => (v === null || v === undefined) ? "–" : Number(v).toFixed(1) + " %";
  const secs = (v) => (v === null || v === undefined) ? "–" : (v < 1 ? (v * 1000).toFixed(0) + " ms" : v.toFixed(2) + " s");
  const when = (t) => {
    if (!t) return "";
    const d = new Date(t);
    return Number.isNaN(d.getTime()) ? shown(t, 40) : d.toLocaleTimeString();
  };
  const ago = (t) => {
    const s = Math.max(0, (Date.now() - new Date(t).getTime()) / 1000);
    if (!Number.isFinite(s)) return "";
    if (s < 90) return Math.round(s) + " s ago";
    if (s < 5400) return Math.round(s / 60) + " min ago";
    return Math.round(s / 3600) + " h ago";
  };

  function setValue(id, value, text) {
    const e = $(id);
    e.dataset.value = value === null || value === undefined ? "" : String(value);
    e.textContent = text;
  }

  // ------------------------------------------------ connection and age
  const conn = { ws: null, attempt: 0, timer: 0, state: "connecting", retryAt: 0 };

  function setConnection(state) {
    conn.state = state;
    body.dataset.connection = state;
    mark("connection");
  }

  function renderConnection() {
    const badge = $("connection");
    if (conn.state === "disconnected") {
      const s = Math.max(0, Math.ceil((conn.retryAt - Date.now()) / 1000));
      badge.textContent = "disconnected · retrying in " + s + " s";
    } else {
      badge.textContent = conn.state;
    }
    const age = $("age");
    if (!data.lastMessageAt) {
      age.textContent = "no data yet";
      age.dataset.ageSeconds = "";
    } else {
      const s = Math.round((Date.now() - data.lastMessageAt) / 1000);
      age.dataset.ageSeconds = String(s);
      age.textContent = conn.state === "live" ? "updated " + (s < 2 ? "now" : s + " s ago")
        : "data from " + s + " s ago";
    }
  }

  function connect() {
    clearTimeout(conn.timer);
    setConnection(conn.attempt ? "reconnecting" : "connecting");
    const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws";
    let ws;
    try {
      ws = new WebSocket(url);
    } catch (e) {
      scheduleReconnect();
      return;
    }
    conn.ws = ws;
    ws.onmessage = (m) => { if (conn.ws === ws) onMessage(m.data); };
    ws.onclose = () => {
      if (conn.ws !== ws) return;
      conn.ws = null;
      scheduleReconnect();
    };
  }

  // Full jitter over an exponential backoff, forever.
  function scheduleReconnect() {
    const cap = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** Math.min(conn.attempt, 10));
    const delay = Math.max(BACKOFF_MIN_MS / 2, Math.random() * cap);
    conn.attempt += 1;
    conn.retryAt = Date.now() + delay;
    setConnection("disconnected");
    conn.timer = setTimeout(connect, delay);
  }

  function reconnectNow() {
    if (conn.ws) {
      const old = conn.ws;
      conn.ws = null;
      old.close();
    }
    conn.attempt = 0;
    connect();
  }

  // ------------------------------------------------ feed messages
  function onMessage(text) {
    let m;
    try { m = JSON.parse(text); } catch (e) { return; }
    data.lastMessageAt = Date.now();
    if (m.type === "snapshot") return onSnapshot(m);
    if (m.type === "event" || m.type === "alert") {
      if (data.seq && m.seq !== data.seq + 1) data.gaps += 1;
      data.seq = m.seq;
      data.events += 1;
      body.dataset.seq = String(data.seq);
      body.dataset.events = String(data.events);
      if (body.dataset.paused === "true") {
        data.pending += 1;
        $("feed-pending").textContent = String(data.pending);
        return;
      }
      if (m.type === "alert") onAlert(m.alert);
      else onEvent(m.event);
    }
  }

  function onSnapshot(m) {
    conn.attempt = 0;
    data.seq = m.seq;
    data.snapshots += 1;
    body.dataset.seq = String(m.seq);
    body.dataset.snapshots = String(data.snapshots);
    data.running = new Map((m.running || []).map((r) => [r.execution_id, r]));
    data.feed = [];
    data.feedIds = new Set();
    for (const r of m.recent || []) noteLastRun(r);
    addToFeed((m.recent || []).filter(takes));
    data.alerts = new Map((m.alerts || []).map((a) => [a.fingerprint || a.type, a]));
    data.plugins = m.plugins || [];
    setConnection("live");
    mark("running", "feed", "alerts", "plugins", "summary", "scripts");
    refreshSoon(true);
    if (view.script || view.specialist || view.user) fetchFilteredFeed();
  }

  function onEvent(e) {
    if (!e) return;
    const id = e.execution_id;
    if (e.kind === "finished") {
      if (e.timestamp > data.lastFinished) data.lastFinished = e.timestamp;
      data.running.delete(id);
      if (e.result) noteLastRun(e.result);
      if (e.result && takes(e.result)) addToFeed([e.result]);
      refreshSoon(false);
      mark("running", "feed", "summary", "scripts");
      return;
    }
    const r = data.running.get(id) || {
      execution_id: id, script_id: e.script_id, specialist: e.specialist, user: e.user,
      queued_at: e.timestamp, attempt: 0, state: "queued",
    };
    if (e.kind === "started") { r.state = "running"; r.attempt = e.attempt; }
    else if (e.kind === "retry_scheduled") { r.state = "retrying"; }
    else if (e.kind === "attempt_failed") { r.last_error = e.error; }
    data.running.set(id, r);
    mark("running", "summary");
  }

  function onAlert(a) {
    if (!a) return;
    const key = a.fingerprint || a.type;
    if (a.status === "resolved") {
      data.alerts.delete(key);
      data.resolved.unshift(a);
      data.resolved.length = Math.min(data.resolved.length, RESOLVED_CAP);
    } else {
      data.alerts.set(key, a);
    }
    // A script's alert is a change of its state: the Scripts view asks for it.
    if (String(a.type).startsWith("script_")) refreshSoon(false);
    mark("alerts", "scripts");
  }

  // Newest first; an execution is listed once.
  function addToFeed(results) {
    for (const r of results) {
      if (data.feedIds.has(r.execution_id)) continue;
      data.feedIds.add(r.execution_id);
      data.feed.push(r);
    }
    data.feed.sort((a, b) => (a.finished_at < b.finished_at ? 1 : a.finished_at > b.finished_at ? -1 : 0));
    while (data.feed.length > FEED_CAP) data.feedIds.delete(data.feed.pop().execution_id);
  }

  // ------------------------------------------------ the API
  // `shared`: an answer up to a second old will do (the server then makes the stats once
  // a second for every open page, not once per page).
  async function api(path, shared) {
    const headers = { Accept: "application/json" };
    if (shared) headers["Cache-Control"] = "max-age=1";
    const r = await fetch(path, { credentials: "same-origin", headers });
    if (r.status === 401) {
      notice("This server needs its token: open the address it printed (…/?token=…) once in this browser.");
      throw new Error("unauthorized");
    }
    if (!r.ok) throw new Error(path + ": " + r.status);
    return r.json();
  }

  function notice(text) {
    const n = $("notice");
    n.textContent = text;
    n.hidden = !text;
  }

  let refreshTimer = 0;
  let lastRefresh = 0;
  let refreshing = false;
  // Re-reads the summary, charts, alerts and plugins: at once when asked to, otherwise
  // at most once per REFRESH_MIN_MS however many events arrive.
  function refreshSoon(now) {
    if (refreshTimer) {
      if (!now) return;
      clearTimeout(refreshTimer);
    }
    const wait = now ? 0 : Math.max(0, REFRESH_MIN_MS - (Date.now() - lastRefresh));
    refreshTimer = setTimeout(refresh, wait);
  }

  async function refresh() {
    refreshTimer = 0;
    if (refreshing) { refreshSoon(false); return; }
    refreshing = true;
    lastRefresh = Date.now();
    const scope = scopeQuery();
    const stats = new URLSearchParams(scope);
    stats.set("period", view.window);
    stats.set("top", "20");
    const series = new URLSearchParams(scope);
    series.set("period", view.window);
    series.set("buckets", String(BUCKETS[view.window] || 60));
    const scriptsRead = refreshScripts();
    try {
      const [report, ts, alerts, plugins] = await Promise.all([
        api("/api/v1/stats?" + stats, true),
        api("/api/v1/stats/timeseries?" + series, true),
        api("/api/v1/alerts"),
        api("/api/v1/plugins"),
      ]);
      data.report = report;
      data.series = ts;
      // A shared answer made before the newest execution finished: ask again shortly.
      if (report.generated_at < data.lastFinished || ts.generated_at < data.lastFinished) refreshSoon(false);
      data.resolved = (alerts.recently_resolved || []).slice(0, RESOLVED_CAP);
      data.alerts = new Map((alerts.active || []).map((a) => [a.fingerprint || a.type, a]));
      data.plugins = plugins.plugins || [];
      body.dataset.refreshes = String(Number(body.dataset.refreshes) + 1);
      if (!$("notice").textContent.startsWith("This server needs")) notice("");
      mark("summary", "charts", "alerts", "top", "errors", "plugins", "scripts");
    } catch (e) {
      // The feed's state says why; the next refresh tries again.
    } finally {
      await scriptsRead;
      refreshing = false;
    }
  }

  // An API another version of the server may not have: null when it answers 404.
  async function apiIfThere(path) {
    try {
      return await api(path);
    } catch (e) {
      if (String(e.message) === path + ": 404") return null;
      throw e;
    }
  }

  // The scripts with expectations and their state, the silences and the schedules.
  async function refreshScripts() {
    try {
      const [scripts, silences, schedules] = await Promise.all([
        api("/api/v1/scripts"),
        apiIfThere("/api/v1/silences"),
        apiIfThere("/api/v1/schedules"),
      ]);
      const all = scripts.scripts || [];
      $("script-ids").replaceChildren(...all.map((s) => el("option", { value: s.id })));
      data.scripts = all.filter((s) => s.status);
      data.silences = silences ? (silences.silences || []) : null;
      data.schedules = schedules ? new Map((schedules.schedules || []).map((s) => [s.script, s])) : null;
      for (const s of data.scripts) {
        if (!data.lastRuns.has(s.id) && !data.lastRunAsked.has(s.id)) fetchLastRun(s.id);
      }
      $("scripts").dataset.loaded = "true";
      mark("scripts");
    } catch (e) { /* shown by the connection state; the next refresh tries again */ }
  }

  // The newest execution of a script the feed has not shown yet (one that ran before the
  // page opened, beyond the snapshot's recent ones): asked once.
  async function fetchLastRun(id) {
    data.lastRunAsked.add(id);
    try {
      const r = await api("/api/v1/executions?script=" + encodeURIComponent(id) + "&limit=1");
      if (r.executions && r.executions[0]) noteLastRun(r.executions[0]);
      mark("scripts");
    } catch (e) {
      data.lastRunAsked.delete(id);
    }
  }

  // Keeps the newest finished execution of each script (what the Scripts view needs of it).
  function noteLastRun(r) {
    if (!r || typeof r.script_id !== "string" || !r.finished_at) return;
    const had = data.lastRuns.get(r.script_id);
    if (had && had.finished_at >= r.finished_at) return;
    data.lastRuns.delete(r.script_id);
    data.lastRuns.set(r.script_id, {
      execution_id: r.execution_id, finished_at: r.finished_at, success: r.success,
      category: r.error_details ? r.error_details.category : "",
    });
    // The oldest noted first out: a flood of unknown script ids stays bounded.
    if (data.lastRuns.size > LAST_RUNS_CAP) data.lastRuns.delete(data.lastRuns.keys().next().value);
  }

  async function fetchFilteredFeed() {
    const q = scopeQuery();
    q.set("limit", "100");
    try {
      const r = await api("/api/v1/executions?" + q);
      addToFeed((r.executions || []).filter(takes));
      mark("feed");
    } catch (e) { /* shown by the connection state */ }
  }

  // ------------------------------------------------ the parts of the page
  function renderSummary() {
    const r = data.report;
    setValue("sum-running", data.running.size, String(data.running.size));
    $("running-count").textContent = String(data.running.size);
    if (!r) return;
    const o = r.window.overall;
    setValue("sum-total", o.count, String(o.count));
    const label = { 5: "last 5 min", 60: "last hour", 1440: "last 24 h", 0: "since start" }[view.window];
    $("sum-window").textContent = label;
    setValue("sum-success-rate", o.success_rate, pct(o.success_rate));
    $("sum-failures").textContent = o.failures + " failed, " + o.retries + " retries";
    setValue("sum-avg", o.duration_seconds.avg, secs(o.duration_seconds.avg));
    $("sum-p50").textContent = secs(o.duration_seconds.p50);
    setValue("sum-p95", o.duration_seconds.p95, secs(o.duration_seconds.p95));
    $("sum-p99").textContent = secs(o.duration_seconds.p99);
    setValue("sum-rate", r.executions_per_minute, num(r.executions_per_minute, 1));
    $("sum-since-start").textContent = r.since_start.executions + " since start";
    $("sum-complete").textContent = r.window.complete ? "" :
      "memory holds since " + when(r.window.oldest_held) + "; older ones are in the log";
  }

  const SVG = "http://www.w3.org/2000/svg";
  function svg(tag, attrs) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    return e;
  }

  // One chart: value axis from 0 to the largest value, gridlines with labels, the first
  // and last interval's times under it; bars (stacked) or lines.
  function drawChart(target, buckets, layers, format) {
    const W = 600, H = 170, L = 40, R = 8, T = 8, B = 20;
    const n = buckets.length;
    let max = 0;
    for (const layer of layers) {
      for (let i = 0; i < n; i++) {
        const v = layer.stack ? layers.filter((l) => l.stack).reduce((s, l) => s + (l.value(buckets[i]) || 0), 0)
          : layer.value(buckets[i]);
        if (v > max) max = v;
      }
    }
    if (!(max > 0)) max = 1;
    const x = (i) => L + (i * (W - L - R)) / Math.max(1, n);
    const y = (v) => T + (H - T - B) * (1 - v / max);
    const parts = [];
    for (const f of [0, 0.5, 1]) {
      parts.push(svg("line", { class: "grid", x1: L, x2: W - R, y1: y(max * f), y2: y(max * f) }));
      const t = svg("text", { x: L - 4, y: y(max * f) + 3, "text-anchor": "end" });
      t.textContent = format(max * f);
      parts.push(t);
    }
    if (n) {
      for (const [i, anchor] of [[0, "start"], [n - 1, "end"]]) {
        const t = svg("text", { x: i ? W - R : L, y: H - 5, "text-anchor": anchor });
        t.textContent = when(buckets[i].start);
        parts.push(t);
      }
    }
    const w = Math.max(1, (W - L - R) / Math.max(1, n) - 1);
    const stacked = layers.filter((l) => l.stack);
    if (stacked.length) {
      for (let i = 0; i < n; i++) {
        let base = 0;
        for (const l of stacked) {
          const v = l.value(buckets[i]) || 0;
          if (v > 0) parts.push(svg("rect", { class: l.class, x: x(i), width: w, y: y(base + v), height: y(base) - y(base + v) }));
          base += v;
        }
      }
    }
    for (const l of layers.filter((l) => !l.stack)) {
      let d = "";
      const dots = [];
      for (let i = 0; i < n; i++) {
        const v = l.value(buckets[i]);
        if (v === null || v === undefined) continue;
        const px = (x(i) + w / 2).toFixed(1), py = y(v).toFixed(1);
        d += (d ? " L" : "M") + px + " " + py;
        // A point alone draws no line: each interval with data also gets a dot.
        dots.push(svg("circle", { class: l.class, cx: px, cy: py, r: 2.5 }));
      }
      if (d) parts.push(svg("path", { class: "line " + l.class, d }), ...dots);
    }
    target.replaceChildren(...parts);
    target.dataset.points = String(n);
  }

  function renderCharts() {
    const s = data.series;
    if (!s) return;
    const b = s.buckets;
    const step = s.step_seconds >= 60 ? (s.step_seconds / 60).toFixed(0) + " min" : s.step_seconds.toFixed(0) + " s";
    for (const e of document.querySelectorAll("#charts .step")) e.textContent = step;
    const ex = $("chart-executions");
    drawChart(ex, b, [
      { stack: true, class: "ok", value: (x) => x.executions - x.failures },
      { stack: true, class: "bad", value: (x) => x.failures },
    ], (v) => v.toFixed(v < 10 && v % 1 ? 1 : 0));
    ex.dataset.total = String(b.reduce((t, x) => t + x.executions, 0));
    ex.dataset.failures = String(b.reduce((t, x) => t + x.failures, 0));
    drawChart($("chart-error-rate"), b, [{ class: "rate", value: (x) => x.error_rate }], (v) => v.toFixed(0));
    drawChart($("chart-duration"), b, [
      { class: "p50", value: (x) => x.duration_p50 },
      { class: "p95", value: (x) => x.duration_p95 },
    ], (v) => v < 1 ? v.toFixed(2) : v.toFixed(1));
  }

  // A row of the alerts tables; a firing one (`action`) has a button to silence it.
  function alertRow(a, time, action) {
    const muted = (a.silenced_by || []).map((id) => shown(id, 80));
    return el("tr", { "data-alert": a.type, "data-severity": a.severity, "data-status": a.status,
      "data-fingerprint": a.fingerprint || null, "data-silenced-by": muted.join(",") || null },
    el("td", { class: "sev-" + shown(a.severity, 20) }, shown(a.severity, 20)),
    el("td", { title: muted.length ? "silenced by " + muted.join(", ") : null }, shown(a.type, 80),
      muted.length ? el("span", { class: "muted" }, " · silenced") : null),
    el("td", { title: shown(a.message, 2000) }, shown(a.message, 300)),
    el("td", null, shown(a.specialist || (a.labels && a.labels.specialist) || "", 80)),
    el("td", { title: shown(time, 60) }, when(time) + " (" + ago(time) + ")"),
    action ? el("td", null, el("button", { type: "button", "data-action": "silence-alert",
      "data-key": a.fingerprint || a.type, "aria-label": "Silence the alert " + shown(a.type, 80) }, "Silence")) : null);
  }

  function renderAlerts() {
    const active = [...data.alerts.values()];
    const rank = { critical: 0, warning: 1, info: 2 };
    active.sort((a, b) => (rank[a.severity] ?? 3) - (rank[b.severity] ?? 3) || (a.starts_at < b.starts_at ? -1 : 1));
    keepFocus($("alerts-active"), () => replaceRows($("alerts-active"), active.map((a) => alertRow(a, a.starts_at, true))));
    const c = $("alerts-count");
    c.textContent = String(active.length);
    c.dataset.count = String(active.length);
    $("alerts-none").hidden = active.length > 0;
    replaceRows($("alerts-resolved"), data.resolved.map((a) => alertRow(a, a.ends_at || a.timestamp)));
  }

  const sorters = {
    key: (g) => g.key,
    count: (g) => g.count,
    success_rate: (g) => g.success_rate ?? -1,
    avg: (g) => g.duration_seconds.avg ?? -1,
    p95: (g) => g.duration_seconds.p95 ?? -1,
    memory: (g) => g.peak_memory_mb.max ?? -1,
    cpu: (g) => g.cpu_time_seconds_total,
  };

  function sortedGroups(groups, key, dir) {
    const f = sorters[key] || sorters.count;
    const sign = dir === "asc" ? 1 : -1;
    return [...groups].sort((a, b) => {
      const x = f(a), y = f(b);
      return (x < y ? -1 : x > y ? 1 : 0) * sign || (a.key < b.key ? -1 : 1);
    });
  }

  function groupRow(g, what) {
    return el("tr", { ["data-" + what]: g.key, "data-count": g.count },
      el("td", { title: shown(g.key, 500) }, shown(g.key, 80)),
      el("td", null, String(g.count)),
      el("td", null, pct(g.success_rate)),
      el("td", null, num(g.duration_seconds.avg, 3)),
      el("td", null, num(g.duration_seconds.p95, 3)),
      el("td", null, num(g.peak_memory_mb.max, 1)),
      el("td", null, num(g.cpu_time_seconds_total, 2)));
  }

  function renderTop() {
    const r = data.report;
    if (!r) return;
    for (const [table, groups, key, dir, what] of [
      [$("top-scripts"), r.window.top_scripts, view.scriptsSort, view.scriptsDir, "script"],
      [$("top-specialists"), r.window.top_specialists, view.specialistsSort, view.specialistsDir, "specialist"],
    ]) {
      table.dataset.sort = key;
      table.dataset.dir = dir;
      for (const b of table.tHead.querySelectorAll("button")) {
        if (b.dataset.key === key) b.setAttribute("aria-sort", dir === "asc" ? "ascending" : "descending");
        else b.removeAttribute("aria-sort");
      }
      replaceRows(table, sortedGroups(groups, key, dir).map((g) => groupRow(g, what)));
    }
  }

  function renderErrors() {
    const r = data.report;
    if (!r) return;
    const o = r.window.overall;
    const cats = Object.entries(o.failures_by_category || {}).sort((a, b) => b[1] - a[1]);
    replaceRows($("errors-by-category"), cats.map(([c, n]) =>
      el("tr", { "data-category": c, "data-count": n },
        el("td", null, shown(c, 40)), el("td", null, String(n)),
        el("td", null, el("progress", { max: Math.max(1, o.failures), value: n })))));
    $("errors-none").hidden = cats.length > 0;
    const failing = r.window.top_scripts.filter((g) => g.failures > 0).sort((a, b) => b.failures - a.failures);
    replaceRows($("errors-by-script"), failing.map((g) =>
      el("tr", { "data-script": g.key, "data-failures": g.failures },
        el("td", null, shown(g.key, 80)), el("td", null, String(g.failures)),
        el("td", null, Object.entries(g.failures_by_category).map(([c, n]) => c + " " + n).join(", ")))));
  }

  // ------------------------------------------------ the Scripts view
  // Each state's colour, most severe first; the word is always written beside it.
  const STATES = ["failing", "missed", "overdue", "too_short", "silenced", "late", "new", "ok"];
  const STATE_CLASS = { failing: "st-bad", missed: "st-bad", overdue: "st-warn", too_short: "st-warn", silenced: "st-new", late: "st-warn", new: "st-new", ok: "st-ok" };
  // The alerts a script can raise (type, severity): what a silence is matched against.
  const SCRIPT_ALERTS = [["script_missed", "critical"], ["script_overdue", "warning"],
    ["script_failing", "critical"], ["script_too_short", "warning"]];

  // A time ahead or behind, for people: "in 5 min", "40 s ago".
  const relative = (t) => {
    const s = (new Date(t).getTime() - Date.now()) / 1000;
    if (!Number.isFinite(s)) return "";
    const a = Math.abs(s);
    const text = a < 90 ? Math.round(a) + " s" : a < 5400 ? Math.round(a / 60) + " min"
      : a < 172800 ? Math.round(a / 3600) + " h" : Math.round(a / 86400) + " d";
    return s >= 0 ? "in " + text : text + " ago";
  };
  const fullTime = (t) => {
    const d = new Date(t);
    return Number.isNaN(d.getTime()) ? shown(t, 40) : d.toLocaleString();
  };

  // A matcher as the API gives it (is_regex/is_equal, or Alertmanager's op), one shape.
  function matcherOf(m) {
    let isRegex = Boolean(m && m.is_regex);
    let isEqual = !(m && m.is_equal === false);
    if (m && typeof m.op === "string") { isRegex = m.op.includes("~"); isEqual = !m.op.startsWith("!"); }
    return { name: String((m && m.name) || ""), value: String((m && m.value) ?? ""), isRegex, isEqual };
  }

  function matcherText(m) {
    return m.name + (m.isEqual ? (m.isRegex ? "=~" : "=") : (m.isRegex ? "!~" : "!=")) + JSON.stringify(m.value);
  }

  const regexes = new Map();
  // Alertmanager's rule: a regex is anchored at both ends; a label missing is "".
  function matcherHolds(m, labels) {
    const v = labels[m.name] ?? "";
    let hit;
    if (m.isRegex) {
      let re = regexes.get(m.value);
      if (re === undefined) {
        try { re = new RegExp("^(?:" + m.value + ")$", "u"); } catch (e) { re = null; }
        if (regexes.size > 1000) regexes.clear();
        regexes.set(m.value, re);
      }
      hit = re !== null && re.test(v);
    } else {
      hit = v === m.value;
    }
    return m.isEqual ? hit : !hit;
  }

  const silenceActive = (s) => !s.state || s.state === "active";

  // The silences that would mute one of the script's alerts.
  function silencesOf(script, specialist) {
    if (!data.silences) return [];
    return data.silences.filter((s) => silenceActive(s) && SCRIPT_ALERTS.some(([kind, severity]) => {
      const labels = { alertname: kind, type: kind, severity, script, specialist: specialist || "" };
      return (s.matchers || []).map(matcherOf).every((m) => matcherHolds(m, labels));
    }));
  }

  const shortId = (id) => shown(String(id ?? "").slice(0, 8), 8);

  function scriptRow(s) {
    const st = s.status;
    const state = String(st.state);
    const specialist = st.specialist || s.specialist || "";
    const last = data.lastRuns.get(s.id);
    const schedule = data.schedules && data.schedules.get(s.id);
    const silenced = silencesOf(s.id, specialist);
    const conditions = (st.conditions || []).map((c) => shown(c, 20)).join(", ");
    return el("tr", { "data-script": s.id, "data-state": state, "data-failures": st.failures_in_a_row,
      "data-silenced": silenced.length },
    el("td", { title: shown(s.id, 500) }, shown(s.id, 80)),
    el("td", null, shown(specialist, 40)),
    el("td", { title: conditions ? "conditions: " + conditions : "nothing wrong" },
      el("span", { class: "state " + (STATE_CLASS[state] || "st-new") }, shown(state, 20)),
      st.running ? " · " + Number(st.running) + " running" : null),
    last ? el("td", { title: fullTime(last.finished_at) + " · execution " + shown(last.execution_id, 40), "data-execution-id": last.execution_id },
      el("span", { class: last.success ? "ok-text" : "bad-text" }, last.success ? "ok" : shown(last.category || "failed", 20)),
      " " + relative(last.finished_at)) : el("td", null, "–"),
    el("td", { title: st.last_success ? fullTime(st.last_success) : "" },
      st.last_success ? relative(st.last_success) : "none seen"),
    el("td", { title: st.next_expected ? fullTime(st.next_expected) : "" },
      st.next_expected ? relative(st.next_expected) + " (" + fullTime(st.next_expected) + ")" : "–"),
    el("td", null, String(st.failures_in_a_row ?? 0)),
    el("td", null, (st.missed_in_a_row ?? 0) + " in a row, " + (st.missed_total ?? 0) + " in all"),
    el("td", { title: schedule && schedule.next_run ? "next run " + fullTime(schedule.next_run) : "" },
      schedule ? shown(schedule.cron, 60) + (schedule.timezone ? " " + shown(schedule.timezone, 40) : "") : "–"),
    el("td", null, silenced.length ? silenced.map((x) => shortId(x.id)).join(", ") : "–"),
    el("td", null, el("button", { type: "button", "data-action": "silence-script", "data-key": s.id,
      "aria-label": "Silence the alerts of " + shown(s.id, 80) }, "Silence")));
  }

  // The firing alert of a script, under its row: what it says and its output's tails.
  function scriptAlertRow(a) {
    const notes = a.annotations || {};
    const cell = el("td", { colspan: 11 },
      el("span", { class: "sev-" + shown(a.severity, 20) }, shown(a.type, 40) + " (" + shown(a.severity, 20) + ")"),
      " since " + when(a.starts_at) + ": ", shown(a.message || notes.summary || "", 500));
    for (const which of ["stderr_tail", "stdout_tail"]) {
      if (notes[which]) cell.append(el("div", { class: "tail-name" }, which.replace("_tail", "") + ", its last lines:"),
        el("pre", { class: "output tail", "data-tail": which }, shown(notes[which], 4096)));
    }
    return el("tr", { class: "script-alert", "data-alert": a.type, "data-script": (a.labels && a.labels.script) || "" }, cell);
  }

  function renderScripts() {
    const section = $("scripts");
    if (!data.scripts) return;
    const scripts = data.scripts.filter((s) => (!view.script || s.id === view.script) &&
      (!view.specialist || (s.status.specialist || s.specialist) === view.specialist));
    const rank = (s) => { const i = STATES.indexOf(s.status.state); return i < 0 ? STATES.length : i; };
    scripts.sort((a, b) => rank(a) - rank(b) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const alerts = new Map();
    for (const a of data.alerts.values()) {
      const script = a.labels && a.labels.script;
      if (!script || !String(a.type).startsWith("script_") || a.status === "resolved") continue;
      if (!alerts.has(script)) alerts.set(script, []);
      alerts.get(script).push(a);
    }
    const rows = [];
    for (const s of scripts) {
      rows.push(scriptRow(s));
      for (const a of alerts.get(s.id) || []) rows.push(scriptAlertRow(a));
    }
    keepFocus($("scripts-table"), () => replaceRows($("scripts-table"), rows));
    section.dataset.count = String(scripts.length);
    $("scripts-count").textContent = String(scripts.length);
    $("scripts-none").hidden = scripts.length > 0;
    const box = $("silences");
    box.hidden = data.silences === null;
    if (data.silences === null) return;
    const silences = data.silences.filter(silenceActive);
    keepFocus($("silences-table"), () => replaceRows($("silences-table"), silences.map((x) => el("tr", { "data-silence": x.id },
      el("td", { title: shown(x.id, 80) }, el("code", null, shortId(x.id))),
      el("td", null, (x.matchers || []).map((m) => shown(matcherText(matcherOf(m)), 200)).join(", ")),
      el("td", null, shown(x.state || "active", 20)),
      el("td", { title: x.ends_at ? fullTime(x.ends_at) : "" }, x.ends_at ? relative(x.ends_at) + " (" + fullTime(x.ends_at) + ")" : "–"),
      el("td", null, shown(x.created_by || "", 60)),
      el("td", { title: shown(x.comment || "", 2000) }, shown(x.comment || "", 200)),
      el("td", null, el("button", { type: "button", "data-action": "expire", "data-key": x.id,
        "aria-label": "Expire the silence " + shortId(x.id) }, "Expire"))))));
    const c = $("silences-count");
    c.textContent = String(silences.length);
    c.dataset.count = String(silences.length);
    $("silences-none").hidden = silences.length > 0;
  }

  function renderRunning() {
    const rows = [...data.running.values()].filter(takes).slice(0, RUNNING_SHOWN).map((r) =>
      el("tr", { "data-execution-id": r.execution_id, "data-state": r.state },
        el("td", null, el("code", null, shown(r.execution_id, 40))),
        el("td", null, shown(r.script_id, 80)),
        el("td", null, r.state),
        el("td", null, String(r.attempt || 0)),
        el("td", null, when(r.queued_at))));
    replaceRows($("running"), rows);
  }

  function feedRow(r) {
    const category = r.error_details ? r.error_details.category : "";
    return el("tr", {
      tabindex: 0, "data-execution-id": r.execution_id, "data-script": r.script_id,
      "data-success": r.success, "data-category": category || null,
    },
    el("td", null, when(r.finished_at)),
    el("td", { title: shown(r.script_id, 500) }, shown(r.script_id, 60)),
    el("td", null, shown(r.specialist || "", 40)),
    el("td", { class: r.success ? "ok-text" : "bad-text" }, r.success ? "ok" : shown(category || "failed", 20)),
    el("td", null, secs(r.resource_usage && r.resource_usage.wall_time_seconds)),
    el("td", { title: shown(r.execution_id, 40) }, el("code", null, "…" + shown(String(r.execution_id).slice(-8), 8))));
  }

  function renderFeed() {
    const table = $("feed");
    replaceRows(table, data.feed.map(feedRow));
    table.dataset.count = String(data.feed.length);
    $("feed-count").textContent = String(data.feed.length);
  }

  function renderPlugins() {
    replaceRows($("plugin-table"), data.plugins.map((p) =>
      el("tr", { "data-plugin": p.name, "data-state": p.state },
        el("td", null, shown(p.name, 60)),
        el("td", null, shown(p.kind, 20)),
        el("td", { class: p.state === "running" ? "ok-text" : "bad-text", title: shown(p.reason || "", 500) }, shown(p.state, 20)),
        el("td", null, String(p.queue_depth ?? 0)),
        el("td", null, String(p.delivered ?? 0)),
        el("td", null, String(p.dropped ?? 0)),
        el("td", null, String(p.failures ?? 0)),
        el("td", null, String(p.restarts ?? 0)),
        el("td", null, p.memory_bytes ? (p.memory_bytes / 1048576).toFixed(1) + " MiB" : "–"),
        el("td", { title: shown(p.last_error || "", 2000) }, shown(p.last_error || "", 120)))));
  }

  // ------------------------------------------------ making and expiring silences
  // The form prefills matchers (a script's, or a firing alert's type and labels); the
  // server judges the silence (POST /api/v1/silences) and its 422 names the field, shown
  // next to it. Requests that change something say JSON and go to this page's own origin
  // with its cookie (the server's token, when it has one), as the server requires.
  const SILENCE_OPS = ["=", "!=", "=~", "!~"];
  const AUTHOR_KEY = "metaclaude.silence.author";
  let silenceOpener = null;

  // A request that changes something: its status and its JSON answer (or null).
  async function send(method, path, payload) {
    const r = await fetch(path, {
      method, credentials: "same-origin",
      headers: { Accept: "application/json", "Content-Type": "application/json" },
      body: payload === undefined ? undefined : JSON.stringify(payload),
    });
    let answer = null;
    try { answer = await r.json(); } catch (e) { /* no JSON body */ }
    return { status: r.status, answer };
  }

  // What the server said went wrong, for people.
  function failure(status, answer) {
    if (status === 401) return "This server needs its token: open the address it printed (…/?token=…) once in this browser.";
    const e = answer && answer.error;
    return e && e.message ? shown(e.message, 2000) : "the server answered " + status;
  }

  function matcherRow(m) {
    const name = el("input", { name: "matcher-name", size: 12, "aria-label": "label", value: m.name });
    const op = el("select", { name: "matcher-op", "aria-label": "operator" },
      ...SILENCE_OPS.map((o) => el("option", { value: o, selected: o === m.op }, o)));
    const value = el("input", { name: "matcher-value", size: 24, "aria-label": "value", value: m.value });
    const remove = el("button", { type: "button", "data-action": "remove-matcher" }, "Remove");
    const error = el("p", { class: "field-error", hidden: true });
    return el("div", { class: "matcher" }, name, op, value, remove, error);
  }

  // Numbers the matcher rows (the server's `matchers[i]`) and names each for people.
  function numberMatchers() {
    [...$("silence-matcher-rows").children].forEach((row, i) => {
      row.dataset.index = String(i);
      const error = row.querySelector(".field-error");
      error.id = "silence-error-matchers-" + i;
      error.dataset.field = "matchers[" + i + "]";
      for (const input of row.querySelectorAll("input, select")) input.setAttribute("aria-describedby", error.id);
      for (const [sel, what] of [["[name=matcher-name]", "label"], ["[name=matcher-op]", "operator"], ["[name=matcher-value]", "value"]]) {
        row.querySelector(sel).setAttribute("aria-label", "matcher " + (i + 1) + " " + what);
      }
      row.querySelector("[data-action=remove-matcher]").setAttribute("aria-label", "Remove matcher " + (i + 1));
    });
  }

  function clearSilenceErrors() {
    for (const e of $("silence-form").querySelectorAll(".field-error")) { e.textContent = ""; e.hidden = true; }
    for (const e of $("silence-form").querySelectorAll("[aria-invalid]")) e.removeAttribute("aria-invalid");
  }

  // Shows `message` next to the field the server named (`matchers[1]`, `comment` ...) and
  // puts the focus there; a field the form does not have gets the message under it.
  function showSilenceError(field, message) {
    const form = $("silence-form");
    const at = [...form.querySelectorAll(".field-error[data-field]")].find((e) => e.dataset.field === field) ||
      (field === "starts_at" ? $("silence-error-ends_at") : $("silence-error-other"));
    at.textContent = message;
    at.hidden = false;
    let input = null;
    if (at.closest(".matcher")) input = at.closest(".matcher").querySelector("input");
    else if (at.dataset.field === "matchers") input = form.querySelector("[name=matcher-name]") || $("silence-add-matcher");
    else if (at.dataset.field === "ends_at") input = $("silence-duration").value === "until" ? $("silence-until") : $("silence-duration");
    else if (at.dataset.field) input = form.elements[at.dataset.field];
    if (input) {
      if (input.tagName !== "BUTTON") input.setAttribute("aria-invalid", "true");
      input.focus();
    }
  }

  function openSilenceForm(matchers, title, opener) {
    const dialog = $("silence-dialog");
    const form = $("silence-form");
    form.reset();
    clearSilenceErrors();
    $("silence-title").textContent = title;
    $("silence-matcher-rows").replaceChildren(...matchers.map(matcherRow));
    numberMatchers();
    $("silence-until-label").hidden = true;
    try { form.elements.created_by.value = localStorage.getItem(AUTHOR_KEY) || ""; } catch (e) { /* no storage */ }
    silenceOpener = opener || null;
    dialog.dataset.state = "open";
    if (!dialog.open) dialog.showModal();
    // The matchers are there already: what is left to say is who and why.
    (form.elements.created_by.value ? form.elements.comment : form.elements.created_by).focus();
  }

  function closeSilenceForm() {
    const dialog = $("silence-dialog");
    if (dialog.open) dialog.close();
  }

  // The silence the form describes, or the field it lacks to say one.
  function silenceFromForm() {
    const form = $("silence-form");
    const matchers = [...$("silence-matcher-rows").children].map((row) => ({
      name: row.querySelector("[name=matcher-name]").value.trim(),
      op: row.querySelector("[name=matcher-op]").value,
      value: row.querySelector("[name=matcher-value]").value,
    }));
    let ends;
    const duration = form.elements.duration.value;
    if (duration === "until") {
      ends = new Date(form.elements.until.value);
      if (!form.elements.until.value || Number.isNaN(ends.getTime())) {
        return { field: "ends_at", message: "choose when the silence ends (a date and a time), or a duration" };
      }
    } else {
      ends = new Date(Date.now() + Number(duration) * 1000);
    }
    return { silence: { matchers, ends_at: ends.toISOString(),
      created_by: form.elements.created_by.value, comment: form.elements.comment.value } };
  }

  async function submitSilence() {
    const dialog = $("silence-dialog");
    if (dialog.dataset.state === "sending") return;
    clearSilenceErrors();
    const made = silenceFromForm();
    if (!made.silence) {
      dialog.dataset.state = "rejected";
      showSilenceError(made.field, made.message);
      return;
    }
    dialog.dataset.state = "sending";
    $("silence-submit").disabled = true;
    let r;
    try {
      r = await send("POST", "/api/v1/silences", made.silence);
    } catch (e) {
      r = { status: 0, answer: { error: { message: "the server could not be reached: " + shown(e.message, 200) } } };
    } finally {
      $("silence-submit").disabled = false;
    }
    if (r.status === 201 && r.answer && r.answer.silence) {
      const id = String(r.answer.silence.id);
      try { localStorage.setItem(AUTHOR_KEY, made.silence.created_by.trim()); } catch (e) { /* no storage */ }
      dialog.dataset.state = "closed";
      closeSilenceForm();
      refocusOpener();
      silenceStatus("made", id, "Silence " + shortId(id) + " made: it mutes " +
        made.silence.matchers.map((m) => matcherText(matcherOf(m))).join(", ") + " until " + fullTime(made.silence.ends_at) + ".");
      afterSilenceChange();
      return;
    }
    dialog.dataset.state = "rejected";
    const e = r.answer && r.answer.error;
    showSilenceError(e && typeof e.field === "string" ? e.field : "", failure(r.status, r.answer));
  }

  async function expireSilence(id, button) {
    button.disabled = true;
    let r;
    try {
      r = await send("DELETE", "/api/v1/silences/" + encodeURIComponent(id));
    } catch (e) {
      r = { status: 0, answer: { error: { message: "the server could not be reached: " + shown(e.message, 200) } } };
    }
    if (r.status === 200) {
      silenceStatus("expired", id, "Silence " + shortId(id) + " expired: what it muted is notified again.");
      // Its row goes: the keyboard stays in the list, on what was done.
      $("silences-status").focus();
    } else {
      button.disabled = false;
      silenceStatus("failed", id, "Silence " + shortId(id) + " was not expired: " + failure(r.status, r.answer));
    }
    afterSilenceChange();
  }

  function silenceStatus(state, id, text) {
    const s = $("silences-status");
    s.dataset.state = state;
    s.dataset.silence = id;
    s.textContent = text;
  }

  // The silences and what they mute, read again (the alerts' marks follow the server's
  // router, a moment later: the idle refresh picks them up too).
  function afterSilenceChange() {
    refreshScripts();
    refreshSoon(true);
  }

  // Back to the button that opened the form, or to the same action's button of the row
  // as it was rewritten since.
  function refocusOpener() {
    const o = silenceOpener;
    if (!o) return;
    const again = o.isConnected ? o : [...document.querySelectorAll("button[data-action]")]
      .find((b) => b.dataset.action === o.dataset.action && b.dataset.key === o.dataset.key);
    if (again) again.focus();
  }

  function alertMatchers(a) {
    const matchers = [{ name: "type", op: "=", value: String(a.type) }];
    const labels = Object.assign({}, a.specialist ? { specialist: a.specialist } : {}, a.labels || {});
    for (const [name, value] of Object.entries(labels)) matchers.push({ name, op: "=", value: String(value) });
    return matchers;
  }

  function setUpSilences() {
    const dialog = $("silence-dialog");
    const form = $("silence-form");
    form.addEventListener("submit", (e) => { e.preventDefault(); submitSilence(); });
    $("silence-cancel").addEventListener("click", closeSilenceForm);
    dialog.addEventListener("close", () => {
      dialog.dataset.state = "closed";
      refocusOpener();
    });
    $("silence-add-matcher").addEventListener("click", () => {
      const row = matcherRow({ name: "", op: "=", value: "" });
      $("silence-matcher-rows").append(row);
      numberMatchers();
      row.querySelector("input").focus();
    });
    $("silence-matcher-rows").addEventListener("click", (e) => {
      const b = e.target.closest("button[data-action=remove-matcher]");
      if (!b) return;
      b.closest(".matcher").remove();
      numberMatchers();
      (form.querySelector("[name=matcher-name]") || $("silence-add-matcher")).focus();
    });
    form.elements.duration.addEventListener("change", () => {
      const until = form.elements.duration.value === "until";
      $("silence-until-label").hidden = !until;
      if (until) form.elements.until.focus();
    });
    // The tables' buttons (rows are rewritten as the server's data changes: one listener
    // per table, not per button).
    $("scripts-table").tBodies[0].addEventListener("click", (e) => {
      const b = e.target.closest("button[data-action=silence-script]");
      if (!b) return;
      const id = b.dataset.key;
      openSilenceForm([{ name: "script", op: "=", value: id }], "Silence the alerts of " + shown(id, 80), b);
    });
    $("alerts-active").tBodies[0].addEventListener("click", (e) => {
      const b = e.target.closest("button[data-action=silence-alert]");
      if (!b) return;
      const a = data.alerts.get(b.dataset.key);
      if (!a) return;
      openSilenceForm(alertMatchers(a), "Silence the alert " + shown(a.type, 80), b);
    });
    $("silences-table").tBodies[0].addEventListener("click", (e) => {
      const b = e.target.closest("button[data-action=expire]");
      if (b) expireSilence(b.dataset.key, b);
    });
  }

  // ------------------------------------------------ the detail view
  let detailFor = "";
  async function openDetail(id) {
    const d = $("detail");
    detailFor = id;
    d.hidden = false;
    d.dataset.executionId = id;
    d.dataset.state = "loading";
    $("detail-id").textContent = shown(id, 40);
    let r;
    try {
      r = await api("/api/v1/executions/" + encodeURIComponent(id));
    } catch (e) {
      if (detailFor !== id) return;
      d.dataset.state = "error";
      $("detail-fields").replaceChildren(el("dt", null, "error"), el("dd", null, shown(String(e.message), 300)));
      return;
    }
    if (detailFor !== id) return;
    showDetail(r);
    d.dataset.state = "shown";
  }

  function showDetail(r) {
    const fields = [
      ["script", r.script_id], ["specialist", r.specialist], ["user", r.user],
      ["session", r.session_id], ["correlation id", r.correlation_id],
      ["status", r.success ? "succeeded" : "failed"],
      ["exit code", r.exit_code], ["signal", r.signal],
      ["started", r.started_at], ["finished", r.finished_at],
      ["retries", r.retries],
    ];
    if (r.state) fields.push(["state", r.state + " (running)"]);
    const dl = [];
    for (const [k, v] of fields) {
      if (v === null || v === undefined || v === "") continue;
      dl.push(el("dt", null, k), el("dd", { "data-field": k }, shown(v, 500)));
    }
    $("detail-fields").replaceChildren(...dl);
    const err = r.error_details || r.last_error;
    const box = $("detail-error");
    if (err) {
      box.replaceChildren(
        el("h3", null, "Error"),
        el("dl", null,
          el("dt", null, "category"), el("dd", { "data-field": "category" }, shown(err.category, 40)),
          el("dt", null, "message"), el("dd", { "data-field": "message" }, shown(err.message, 4000))),
        el("h3", null, "Suggestions"),
        el("ul", { id: "detail-suggestions" }, ...(err.suggestions || []).map((s) => el("li", null, shown(s, 2000)))),
        err.stack_trace ? el("h3", null, "Stack trace") : null,
        err.stack_trace ? el("pre", { id: "detail-stack" }, shown(err.stack_trace)) : null,
        err.context && Object.keys(err.context).length ? el("h3", null, "Context") : null,
        err.context && Object.keys(err.context).length ? el("pre", null, shown(JSON.stringify(err.context, null, 2))) : null);
    } else {
      box.replaceChildren();
    }
    replaceRows($("detail-attempts"), (r.attempts || []).map((a) =>
      el("tr", null,
        el("td", null, String(a.attempt)),
        el("td", { class: a.success ? "ok-text" : "bad-text" }, a.success ? "ok" : "failed"),
        el("td", null, a.exit_code ?? shown(a.signal || "", 20)),
        el("td", null, shown(a.category || "", 20)),
        el("td", { title: shown(a.message || "", 2000) }, shown(a.message || "", 200)),
        el("td", null, num(a.wall_time_seconds, 3)),
        el("td", null, num(a.cpu_time_seconds, 3)),
        el("td", null, num(a.peak_memory_mb, 1)),
        el("td", null, a.delay_before_ms ? a.delay_before_ms + " ms" : ""))));
    const u = r.resource_usage || {};
    const usage = [
      ["wall time", secs(u.wall_time_seconds), "clock"],
      ["CPU time", num(u.cpu_time_seconds, 3) + " s (user " + num(u.cpu_user_seconds, 3) + ", system " + num(u.cpu_system_seconds, 3) + ")", u.cpu_time_source],
      ["peak memory", num(u.peak_memory_mb, 1) + " MB", u.peak_memory_source],
      ["largest process", num(u.peak_memory_largest_process_mb, 1) + " MB", u.peak_memory_source],
      ["memory at start", num(u.memory_start_mb, 1) + " MB", u.memory_start_source],
      ["memory at end", num(u.memory_end_mb, 1) + " MB", u.memory_end_source],
    ];
    replaceRows($("detail-usage"), usage.map(([k, v, s]) =>
      el("tr", null, el("td", null, k), el("td", null, v), el("td", null, shown(s || "", 40)))));
    $("detail-inputs").textContent = shown(JSON.stringify(r.inputs || {}, null, 2));
    for (const which of ["stdout", "stderr"]) {
      const text = r[which] || "";
      $("detail-" + which).textContent = shown(text);
      $("detail-" + which + "-note").textContent = (r[which + "_truncated"]
        ? "truncated: the head and the tail are kept · " : "") + text.length + " characters";
    }
  }

  function closeDetail() {
    const d = $("detail");
    detailFor = "";
    d.hidden = true;
    d.dataset.state = "closed";
    d.dataset.executionId = "";
  }

  // ------------------------------------------------ controls
  // The columns of the top-scripts and top-specialists tables (keys of `sorters`).
  const GROUP_COLUMNS = [["count", "Runs"], ["success_rate", "Success"], ["avg", "Avg s"],
    ["p95", "p95 s"], ["memory", "Peak MB"], ["cpu", "CPU s"]];

  function groupHeader(thead) {
    const cells = [["key", thead.dataset.first], ...GROUP_COLUMNS].map(([key, label]) =>
      el("th", null, el("button", { type: "button", "data-key": key }, label)));
    thead.replaceChildren(el("tr", null, ...cells));
  }

  function setUp() {
    for (const id of ["top-scripts", "top-specialists"]) groupHeader($(id).tHead);
    const form = $("filters");
    form.elements.window.value = view.window;
    for (const k of ["script", "specialist", "user"]) form.elements[k].value = view[k];
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      view.window = form.elements.window.value;
      for (const k of ["script", "specialist", "user"]) view[k] = form.elements[k].value.trim();
      applyView();
    });
    form.elements.window.addEventListener("change", () => {
      view.window = form.elements.window.value;
      applyView();
    });
    $("clear-filters").addEventListener("click", () => {
      for (const k of ["script", "specialist", "user"]) { view[k] = ""; form.elements[k].value = ""; }
      applyView();
    });
    $("pause").addEventListener("click", () => {
      const paused = body.dataset.paused !== "true";
      body.dataset.paused = String(paused);
      $("pause").setAttribute("aria-pressed", String(paused));
      $("pause").textContent = paused ? "Resume" : "Pause";
      $("feed-paused").hidden = !paused;
      if (paused) {
        data.pending = 0;
        $("feed-pending").textContent = "0";
        clearTimeout(refreshTimer);
        refreshTimer = 0;
      } else {
        // A fresh snapshot, instead of replaying what was held back.
        reconnectNow();
      }
    });
    for (const [table, sortKey, dirKey] of [["top-scripts", "scriptsSort", "scriptsDir"], ["top-specialists", "specialistsSort", "specialistsDir"]]) {
      $(table).tHead.addEventListener("click", (e) => {
        const b = e.target.closest("button[data-key]");
        if (!b) return;
        const key = b.dataset.key;
        if (view[sortKey] === key) view[dirKey] = view[dirKey] === "asc" ? "desc" : "asc";
        else { view[sortKey] = key; view[dirKey] = key === "key" ? "asc" : "desc"; }
        writeView();
        mark("top");
      });
    }
    const feed = $("feed").tBodies[0];
    const open = (e) => {
      const row = e.target.closest("tr[data-execution-id]");
      if (row) openDetail(row.dataset.executionId);
    };
    feed.addEventListener("click", open);
    feed.addEventListener("keydown", (e) => { if (e.key === "Enter") open(e); });
    $("running").tBodies[0].addEventListener("click", open);
    $("detail-close").addEventListener("click", closeDetail);
    // (Escape in the silence form closes that form only.)
    document.addEventListener("keydown", (e) => { if (e.key === "Escape" && !$("silence-dialog").open) closeDetail(); });
    document.addEventListener("securitypolicyviolation", () => {
      body.dataset.cspViolations = String(Number(body.dataset.cspViolations) + 1);
    });
    window.addEventListener("online", () => { if (!conn.ws) reconnectNow(); });
    setInterval(() => {
      mark("connection");
      if (conn.state === "live" && Date.now() - lastRefresh > REFRESH_IDLE_MS && body.dataset.paused !== "true") refreshSoon(true);
    }, 1000);
    setUpSilences();
    refreshScripts();
  }

  function applyView() {
    writeView();
    data.feed = [];
    data.feedIds = new Set();
    mark("feed", "running", "scripts");
    refreshSoon(true);
    // The snapshot's recent executions were of every script: a fresh one, filtered.
    reconnectNow();
  }

  setUp();
  connect();
})();

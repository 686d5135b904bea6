// MLKD operator console page: video + box overlay, target selection, commands, state, plots.
// No framework, no CDN: everything is served by the operator_console node.
"use strict";

const $ = (id) => document.getElementById(id);
const video = $("video");
const ctx = video.getContext("2d");
const ui = {
  ws: null, nextId: 1, pending: {}, services: {}, follow: null, state: null,
  current: null,   // {bitmap, meta} on screen
  frozen: null,    // frame held while the operator drags a rectangle
  drag: null,      // {x0, y0, x1, y1} in image pixels
  decoding: false, queued: null,
  stateAt: 0,      // performance.now() of the last frame's state shown
  night: localStorage.getItem("mlkd.nightView") === "1",
};
// Read by the browser test and the latency benchmark.
const stats = { shown: 0, withBox: 0, lost: 0, drawn: [], latencies: [], results: [], frozenStamp: null };
window.mlkdConsole = stats;

function connect() {
  const proto = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${proto}://${location.host}/ws`);
  ws.binaryType = "arraybuffer";
  ws.onopen = () => { $("conn").textContent = "connected"; $("conn").className = "badge"; };
  ws.onclose = () => {
    $("conn").textContent = "disconnected"; $("conn").className = "badge bad";
    ui.services = {}; refreshButtons(); setTimeout(connect, 1000);
  };
  ws.onmessage = (ev) => (typeof ev.data === "string" ? onText(JSON.parse(ev.data)) : onFrame(ev.data));
  ui.ws = ws;
}

// ---- video ----
function onFrame(buf) {
  const n = new DataView(buf).getUint32(0);
  const meta = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 4, n)));
  const jpeg = new Blob([new Uint8Array(buf, 4 + n)], { type: "image/jpeg" });
  if (ui.queued) ack();  // newest only: a frame still waiting for the decoder is replaced (and released)
  ui.queued = { meta, jpeg };
  if (!ui.decoding) decodeNext();
}

// Flow control: the server sends the next frame only once this one is decoded (never a queue).
function ack() {
  if (ui.ws && ui.ws.readyState === WebSocket.OPEN) ui.ws.send('{"type":"ack"}');
}

async function decodeNext() {
  ui.decoding = true;
  while (ui.queued) {
    const { meta, jpeg } = ui.queued;
    ui.queued = null;
    try {
      const bitmap = await createImageBitmap(jpeg);
      if (ui.current) ui.current.bitmap.close();
      ui.current = { bitmap, meta };
      if (!ui.frozen) show(ui.current);
      else frameBadge(meta);  // the picture waits for the drag, the state does not
    } catch (e) { console.warn("bad frame", e); }
    ack();
  }
  ui.decoding = false;
}

function show(frame) {
  const { meta } = frame;
  paint(frame);
  if (ui.frozen !== frame) {
    const state = frameBadge(meta);
    stats.shown += 1;
    if (meta.box) stats.withBox += 1;
    if (meta.lost) stats.lost += 1;
    stats.drawn.push({ sec: meta.sec, nanosec: meta.nanosec, box: meta.box, lost: meta.lost, state });
    if (stats.drawn.length > 600) stats.drawn.shift();
    // Painted at the next animation frame: that is when the operator sees it.
    requestAnimationFrame(() => {
      stats.latencies.push(Date.now() - (meta.sec * 1000 + meta.nanosec / 1e6));
      if (stats.latencies.length > 3000) stats.latencies.shift();
    });
  }
}

// The frame as sent, brightened on the canvas only in night view (the tracker gets the camera's frames,
// and the canvas keeps the frame's size, so a rectangle dragged on it is in frame pixels either way).
function paint(frame) {
  const { bitmap, meta } = frame;
  if (video.width !== meta.width || video.height !== meta.height) {
    video.width = meta.width; video.height = meta.height; fit();
  }
  $("nosignal").hidden = true;
  ctx.filter = ui.night ? "url(#night)" : "none";
  ctx.drawImage(bitmap, 0, 0);
  ctx.filter = "none";
  drawOverlay(meta);
}

// Scale the canvas to the space there is (keeping its aspect); mouse positions are mapped back.
function fit() {
  const s = Math.min($("videobox").clientWidth / video.width, (0.68 * innerHeight) / video.height);
  video.style.width = `${Math.floor(video.width * s)}px`;
  video.style.height = `${Math.floor(video.height * s)}px`;
}
window.addEventListener("resize", fit);

// ---- the tracker's state, per frame ----
// Word, colour and what it means for the operator. Only a frame's own tracker/status can say
// "tracking": without one (old, missing, late) the page shows a grey state, never green.
const STATES = {
  tracking: ["TRACKING", "s-tracking", "#3f6", ""],
  uncertain: ["UNCERTAIN", "s-uncertain", "#fc3", "may be on the wrong object - drone holds"],
  lost: ["LOST", "s-lost", "#e33", "drone holds"],
  idle: ["IDLE", "s-grey", "#aaa", "drag a rectangle on the video to pick the target"],
  stale: ["STALE", "s-grey", "#aaa", "the tracker has no recent frame"],
  no_model: ["NO MODEL", "s-grey", "#aaa", "the tracker has no model loaded"],
  no_status: ["NO STATUS", "s-grey", "#aaa", "no tracker status for this frame"],
  no_tracker: ["NO TRACKER", "s-grey", "#aaa", "no tracker diagnostics"],
  no_video: ["NO VIDEO", "s-grey", "#aaa", "no frame for over a second"],
};
const NODE_STATES = ["idle", "stale", "no_model", "lost"];  // /diagnostics states shown without a frame's status

function frameState(meta) {
  if (meta.status) return meta.status.state || "no_status";
  if (meta.lost) return "lost";  // the tracker's empty box for this frame
  return nodeState(meta.state);
}
const nodeState = (s) => (NODE_STATES.includes(s) ? s : s ? "no_status" : "no_tracker");

// Any other state word the tracker may send is shown as it is, in grey.
const describe = (state) => STATES[state] || [state.replaceAll("_", " ").toUpperCase(), "s-grey", "#aaa", ""];

function frameBadge(meta) {
  const state = frameState(meta);
  showState(state, meta.status);
  ui.stateAt = performance.now();
  return state;
}

function showState(state, status) {
  const [word, cls, , why] = describe(state);
  $("videobox").classList.toggle("lost", state === "lost");
  $("state-word").textContent = word;
  $("state-why").textContent = why;
  $("trackstate").className = `state ${cls}`;
  $("trackstate").dataset.state = state;
  $("confidence").textContent = status && status.confidence !== "" ? `confidence ${status.confidence}` : "";
}

function drawOverlay(meta) {
  const lw = Math.max(2, video.width / 320);
  ctx.lineWidth = lw;
  ctx.font = `${Math.round(video.width / 32)}px system-ui, sans-serif`;
  const state = frameState(meta);
  const [word, , color] = describe(state);
  if (meta.box) {
    const [x, y, w, h] = meta.box;
    ctx.strokeStyle = color;
    if (state !== "tracking") ctx.setLineDash([6 * lw, 4 * lw]);
    ctx.strokeRect(x, y, w, h);
    ctx.setLineDash([]);
    const conf = meta.status && meta.status.confidence !== "" ? ` · conf ${meta.status.confidence}` : "";
    label(`${word.toLowerCase()}${conf}`, x, Math.max(y - 4, 16), color);
  }
  if (state === "lost") {
    ctx.strokeStyle = "#e33"; ctx.lineWidth = lw * 3;
    ctx.strokeRect(0, 0, video.width, video.height);
  }
  if (ui.drag) {
    const d = norm(ui.drag);
    ctx.setLineDash([6, 4]); ctx.strokeStyle = "#4cf"; ctx.lineWidth = lw;
    ctx.strokeRect(d[0], d[1], d[2], d[3]); ctx.setLineDash([]);
  }
}

function label(text, x, y, color) {
  const w = ctx.measureText(text).width;
  ctx.fillStyle = "rgba(0,0,0,0.6)";
  ctx.fillRect(x - 2, y - parseInt(ctx.font, 10), w + 4, parseInt(ctx.font, 10) + 4);
  ctx.fillStyle = color; ctx.fillText(text, x, y);
}

// ---- target selection: the frame on screen at mouse-down is frozen until mouse-up ----
function imagePoint(ev) {
  const r = video.getBoundingClientRect();
  return [(ev.clientX - r.left) * video.width / r.width, (ev.clientY - r.top) * video.height / r.height];
}
const norm = (d) => [Math.min(d.x0, d.x1), Math.min(d.y0, d.y1), Math.abs(d.x1 - d.x0), Math.abs(d.y1 - d.y0)];

video.addEventListener("mousedown", (ev) => {
  if (!ui.current || ev.button !== 0) return;
  const [x, y] = imagePoint(ev);
  ui.frozen = ui.current;
  stats.frozenStamp = [ui.frozen.meta.sec, ui.frozen.meta.nanosec];
  ui.drag = { x0: x, y0: y, x1: x, y1: y };
  ev.preventDefault();
});
window.addEventListener("mousemove", (ev) => {
  if (!ui.drag) return;
  [ui.drag.x1, ui.drag.y1] = imagePoint(ev);
  paint(ui.frozen);
});
window.addEventListener("mouseup", () => {
  if (!ui.drag) return;
  const box = norm(ui.drag).map((v) => Math.round(v * 10) / 10);
  const meta = ui.frozen.meta;
  endDrag();
  if (box[2] >= 4 && box[3] >= 4) {
    send({ type: "init", box, stamp: [meta.sec, meta.nanosec], frame_id: meta.frame_id });
  }
});
function endDrag() {
  ui.drag = null; ui.frozen = null;
  if (ui.current) paint(ui.current);
}

// ---- night view: display only, remembered in this browser ----
function setNight(on) {
  ui.night = on;
  localStorage.setItem("mlkd.nightView", on ? "1" : "0");
  const b = $("btn-night");
  b.firstChild.textContent = `Night view: ${on ? "on" : "off"} `;
  b.classList.toggle("on", on);
  b.setAttribute("aria-pressed", String(on));
  if (ui.frozen || ui.current) paint(ui.frozen || ui.current);
}
$("btn-night").addEventListener("click", () => setNight(!ui.night));

// ---- commands ----
function send(msg) {
  if (!ui.ws || ui.ws.readyState !== WebSocket.OPEN) { addResult(msg.type, false, "not connected"); return; }
  msg.id = ui.nextId++;
  ui.pending[msg.id] = msg.type;
  ui.ws.send(JSON.stringify(msg));
}

function command(name) {
  if (name === "follow") send({ type: "follow", enable: !ui.follow });
  else if (name === "arm" || name === "disarm") send({ type: "arm", enable: name === "arm" });
  else if (name === "takeoff") $("confirm").hidden = false;
  else send({ type: name });
}

// blur(): a focused button would also be "clicked" by the Space / Enter of a keyboard shortcut.
document.querySelectorAll("button").forEach((b) => b.addEventListener("click", () => b.blur()));
document.querySelectorAll("button[data-cmd]").forEach((b) => b.addEventListener("click", () => command(b.dataset.cmd)));
$("confirm-yes").addEventListener("click", () => { $("confirm").hidden = true; send({ type: "takeoff", confirm: true }); });
$("confirm-no").addEventListener("click", () => { $("confirm").hidden = true; });

document.addEventListener("keyup", (ev) => { if (ev.code === "Space") ev.preventDefault(); });
document.addEventListener("keydown", (ev) => {
  if (ev.repeat) return;
  if (ev.code === "Space") { ev.preventDefault(); send({ type: "hover" }); }
  else if (ev.key === "Escape") {
    if (!$("confirm").hidden) { $("confirm").hidden = true; return; }
    if (ui.drag) { endDrag(); return; }
    send({ type: "reset" });
  } else if (ev.key === "f" || ev.key === "F") command("follow");
  else if (ev.key === "n" || ev.key === "N") setNight(!ui.night);
});

function addResult(command, ok, message) {
  stats.results.push({ command, ok, message });
  const li = document.createElement("li");
  li.className = ok ? "ok" : "fail";
  li.textContent = `${new Date().toLocaleTimeString()} ${command}: ${ok ? "ok" : "failed"} — ${message}`;
  $("results").prepend(li);
  while ($("results").children.length > 30) $("results").lastChild.remove();
}

// ---- state ----
function onText(msg) {
  if (msg.type === "result" || msg.type === "error") {
    const command = msg.command || ui.pending[msg.id] || "message";
    delete ui.pending[msg.id];
    addResult(command, msg.type === "result" && msg.ok, msg.message);
  } else if (msg.type === "state") {
    ui.state = msg; ui.services = msg.services; ui.follow = msg.follow_enabled;
    refreshButtons(); refreshTables(msg); drawPlots(msg);
    // No frame for a while: the badge must not keep the last frame's state (a green one least of all).
    if (performance.now() - ui.stateAt > 1000) {
      const node = (msg.tracker.values || {}).state || "";
      showState(ui.current && NODE_STATES.includes(node) ? node : "no_video", null);
    }
  } else if (msg.type === "link") {
    $("clients").textContent = `client #${ui.client} · video to this browser: ${msg.sent} sent, ` +
      `${msg.dropped} dropped (newest only) · ${msg.browsers} browser(s) connected`;
  } else if (msg.type === "hello") {
    ui.client = msg.client;
    $("clients").textContent = `this browser: client #${msg.client}`;
  }
}

const SERVICE_OF = { hover: "hover", reset: "reset", follow: "follow", arm: "arm", disarm: "arm", takeoff: "takeoff", land: "land" };
function refreshButtons() {
  document.querySelectorAll("button[data-cmd]").forEach((b) => {
    const up = !!ui.services[SERVICE_OF[b.dataset.cmd]];
    b.disabled = !up;
    b.title = up ? "" : "service not available";
  });
  const f = $("btn-follow");
  f.firstChild.textContent = `Follow: ${ui.follow ? "on" : "off"} `;
  f.classList.toggle("on", !!ui.follow);
}

function rows(table, pairs) {
  table.replaceChildren(...pairs.map(([k, v, cls]) => {
    const tr = document.createElement("tr");
    const a = document.createElement("td"); a.textContent = k;
    const b = document.createElement("td"); b.textContent = v; if (cls) b.className = cls;
    tr.append(a, b); return tr;
  }));
}

function refreshTables(s) {
  const t = s.tracker.values || {};
  const lvl = s.tracker.level ? `lvl${s.tracker.level}` : "";
  rows($("tracker"), [
    ["state", t.state || "no tracker", lvl], ["message", s.tracker.message || "-", lvl], ["score", t.score || "-"],
    ["fps", t.fps || "-"], ["latency ms", t.latency_ms || "-"], ["frames dropped", t.frames_dropped || "-"],
    ["video in (console)", `${s.video.fps_in} fps`],
  ]);
  const b = s.bridge.values || {};
  const pairs = [["bridge", s.bridge.message || "no bridge", s.bridge.level ? `lvl${s.bridge.level}` : ""]];
  for (const [k, v] of Object.entries(b)) pairs.push([k.replaceAll("_", " "), v]);  // battery, link... as published
  rows($("bridge"), pairs);
}

function drawPlots(s) {
  plot($("plot-score"), s.score, s.t, 0, 1, "#3f6");
  const maxCle = Math.max(50, ...s.cle.map((p) => p[1]));
  plot($("plot-cle"), s.cle, s.t, 0, maxCle, "#4cf");
}

function plot(canvas, points, now, lo, hi, color) {
  const g = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height;
  g.fillStyle = "#0c0d10"; g.fillRect(0, 0, W, H);
  g.strokeStyle = "#333"; g.beginPath(); g.moveTo(0, H / 2); g.lineTo(W, H / 2); g.stroke();
  g.fillStyle = "#888"; g.font = "10px sans-serif"; g.fillText(String(Math.round(hi * 100) / 100), 2, 10);
  g.strokeStyle = color; g.lineWidth = 1.5; g.beginPath();
  points.forEach(([t, v], i) => {
    const x = W * (1 - (now - t) / 30), y = H - (H * (v - lo)) / (hi - lo);
    if (i) g.lineTo(x, y); else g.moveTo(x, y);
  });
  g.stroke();
}

fit();
refreshButtons();
setNight(ui.night);
connect();

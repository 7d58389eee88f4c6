// One WebSocket per page. Messages are hints: elements with data-live-topics re-fetch their
// fragment (data-live-src) when a topic they show changes; after a reconnect or a gap in a
// topic's sequence numbers every fragment re-fetches, so nothing is silently missed.
const statusDot = document.getElementById("live-status");
const lastSeq = new Map(); // topic → highest number seen
const holes = new Map(); // topic → numbers skipped so far: publishers race, so they may still arrive
const GAP_GRACE_MS = 300;
let gapTimer = null;
const listeners = new Set();
let socket = null;
let retryDelay = 500;

function liveElements() {
  return Array.from(document.querySelectorAll("[data-live-topics]"));
}

function wantedTopics() {
  const topics = new Set(["jobs"]);
  for (const el of liveElements()) el.dataset.liveTopics.split(/\s+/).filter(Boolean).forEach((t) => topics.add(t));
  if (document.body.dataset.userId) topics.add(`user.${document.body.dataset.userId}`);
  return Array.from(topics);
}

const pending = new Map();
function refresh(el) {
  // Debounce: a burst of events costs one fetch per fragment.
  if (pending.has(el)) return;
  pending.set(el, setTimeout(async () => {
    pending.delete(el);
    const src = el.dataset.liveSrc;
    if (!src) return;
    try {
      const response = await fetch(src, { headers: { "X-Requested-With": "fetch" }, credentials: "same-origin" });
      if (!response.ok) return;
      const html = await response.text();
      if (el.dataset.liveKeepSelection !== undefined) keepSelection(el, html);
      else el.innerHTML = html;
      el.dispatchEvent(new CustomEvent("live:refreshed", { bubbles: true }));
    } catch (err) { /* offline: the next reconnect refreshes */ }
  }, Number(el.dataset.liveDelay || 150)));
}

function keepSelection(el, html) {
  const checked = new Set(Array.from(el.querySelectorAll("input[type=checkbox]:checked")).map((c) => c.value));
  el.innerHTML = html;
  el.querySelectorAll("input[type=checkbox]").forEach((c) => { if (checked.has(c.value)) c.checked = true; });
}

function refreshAll() { liveElements().forEach(refresh); }

// True when the page must re-read everything now: the server flagged a gap, or the numbers
// restarted (Redis restarted). Skipped numbers wait GAP_GRACE_MS for late arrivals first.
function account(topic, first, seq, flagged) {
  const previous = lastSeq.get(topic);
  const missing = holes.get(topic) || new Set();
  holes.set(topic, missing);
  if (previous === undefined) { lastSeq.set(topic, seq); return flagged; }
  if (seq <= previous) {
    let late = false;
    for (let n = first; n <= seq; n++) late = missing.delete(n) || late;
    if (!late) { lastSeq.set(topic, seq); missing.clear(); return true; }
    return flagged;
  }
  lastSeq.set(topic, seq);
  if (first > previous + 1) {
    if (first - previous > 1000) { missing.clear(); return true; }
    for (let n = previous + 1; n < first; n++) missing.add(n);
  }
  return flagged;
}

function watchHoles() {
  const open = Array.from(holes.values()).some((m) => m.size > 0);
  if (open && !gapTimer) {
    gapTimer = setTimeout(() => {
      gapTimer = null;
      if (Array.from(holes.values()).some((m) => m.size > 0)) { holes.forEach((m) => m.clear()); refreshAll(); }
    }, GAP_GRACE_MS);
  } else if (!open && gapTimer) { clearTimeout(gapTimer); gapTimer = null; }
}

function handle(message) {
  // The server merges a burst into one hint: first..seq, with gap set if numbers were missing.
  const { topic, seq } = message;
  if (account(topic, message.first ?? seq, seq, Boolean(message.gap))) { refreshAll(); }
  else {
    // data-live-events narrows an element to some events of its topics (a pool page need not
    // re-read libvirt for every guest change on the host).
    const events = message.events || [message.event];
    for (const el of liveElements()) {
      if (!el.dataset.liveTopics.split(/\s+/).includes(topic)) continue;
      const wanted = el.dataset.liveEvents;
      if (wanted && !wanted.split(/\s+/).some((e) => events.includes(e))) continue;
      refresh(el);
    }
  }
  watchHoles();
  listeners.forEach((fn) => fn(message));
  document.dispatchEvent(new CustomEvent("live:message", { detail: message }));
}

function setStatus(state, text) {
  if (!statusDot) return;
  statusDot.className = `live-dot ${state}`;
  statusDot.title = `Live updates: ${text}`;
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}/ws/live/`);
  socket.addEventListener("open", () => {
    retryDelay = 500;
    setStatus("ok", "connected");
    socket.send(JSON.stringify({ subscribe: wantedTopics() }));
  });
  socket.addEventListener("message", (event) => {
    const message = JSON.parse(event.data);
    if (message.topic) handle(message);
    // Once subscribed, re-read everything shown: a change between the page's render (or the
    // last disconnect) and the subscription would otherwise be missed.
    else if (message.subscribed) refreshAll();
  });
  socket.addEventListener("close", () => {
    setStatus("down", "reconnecting");
    lastSeq.clear();
    holes.clear();
    setTimeout(connect, retryDelay);
    retryDelay = Math.min(retryDelay * 2, 10000);
  });
}

export function onLive(fn) { listeners.add(fn); }
export function subscribe(topics) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ subscribe: topics }));
}
window.virtdashLive = { onLive, subscribe, refreshAll };

// Global running-jobs indicator.
const indicator = document.getElementById("jobs-indicator");
async function refreshIndicator() {
  if (!indicator) return;
  try {
    const response = await fetch("/api/jobs/running/", { credentials: "same-origin" });
    if (!response.ok) return;
    const { running } = await response.json();
    indicator.hidden = running === 0;
    indicator.querySelector("[data-count]").textContent = running;
  } catch (err) { /* ignore */ }
}
listeners.add((m) => { if ((m.events || [m.event]).includes("job")) refreshIndicator(); });

// Theme toggle.
const toggle = document.getElementById("theme-toggle");
if (toggle) {
  toggle.addEventListener("click", () => {
    const dark = document.documentElement.dataset.theme
      ? document.documentElement.dataset.theme === "dark"
      : matchMedia("(prefers-color-scheme: dark)").matches;
    const next = dark ? "light" : "dark";
    document.documentElement.dataset.theme = next;
    localStorage.setItem("vd-theme", next);
  });
}

connect();
refreshIndicator();
setInterval(refreshAll, 60000); // safety net for anything missed

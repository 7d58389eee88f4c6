// VNC console page: asks the server for a one-time token, then connects noVNC to the
// same-origin proxy at /websockify/<uuid>. The token travels as a WebSocket subprotocol, never
// in a URL (the optional websockify tier, when the server names it, takes it as ?token=).
// The proxy authenticates to the guest itself: no password prompt here.
import RFB from "../vendor/novnc/core/rfb.js";

const screen = document.getElementById("vnc-screen");
const statusEl = document.getElementById("console-status");
const errorEl = document.getElementById("console-error");
const mode = screen.dataset.mode;
let rfb = null;
let connectedOnce = false;

const KEY = { ctrl: [0xffe3, "ControlLeft"], alt: [0xffe9, "AltLeft"], shift: [0xffe1, "ShiftLeft"],
  backspace: [0xff08, "Backspace"], print: [0xff61, "PrintScreen"], enter: [0xff0d, "Enter"], tab: [0xff09, "Tab"] };

if (new URLSearchParams(location.search).get("popout") === "1") document.body.classList.add("popout");

function status(text) { statusEl.textContent = text; }
function showError(text) {
  errorEl.hidden = !text;
  errorEl.textContent = text || "";
}

async function requestToken() {
  const response = await fetch(screen.dataset.tokenUrl, {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRFToken": screen.dataset.csrf },
    body: JSON.stringify({ mode }),
  });
  let data = {};
  try { data = await response.json(); } catch (e) { data = {}; }
  if (!response.ok) throw new Error(data.error || `The console could not be opened (HTTP ${response.status}).`);
  return data;
}

async function connect() {
  if (rfb) { rfb.disconnect(); rfb = null; }
  showError("");
  status("Asking for a console…");
  let grant;
  try {
    grant = await requestToken();
  } catch (err) {
    status("Not connected");
    showError(err.message);
    return;
  }
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  let url = `${scheme}//${location.host}${grant.path}`;
  let wsProtocols = ["binary", `vd-token.${grant.token}`];
  if (grant.transport === "websockify") {
    // The websockify tier (README "Console proxy"): websockify reads the token from ?token= only.
    const tier = new URL(grant.url, location.href);
    tier.protocol = ["https:", "wss:"].includes(tier.protocol) ? "wss:" : "ws:";
    tier.search = `?token=${encodeURIComponent(grant.token)}`;
    [url, wsProtocols] = [tier.toString(), ["binary"]];
  }
  status("Connecting…");
  connectedOnce = false;
  rfb = new RFB(screen, url, { wsProtocols, shared: true });
  rfb.viewOnly = grant.mode === "view";
  rfb.scaleViewport = document.getElementById("vnc-scale").checked;
  rfb.background = "#111";
  rfb.addEventListener("connect", () => {
    connectedOnce = true;
    status(grant.mode === "view" ? "Connected (view only)" : "Connected");
    rfb.focus();
  });
  rfb.addEventListener("securityfailure", (e) => {
    showError(e.detail.reason || "The console proxy refused the connection.");
  });
  rfb.addEventListener("credentialsrequired", () => {
    showError("The VNC server asked for a password: the proxy should have answered it. Reconnect to retry.");
    rfb.disconnect();
  });
  rfb.addEventListener("disconnect", (e) => {
    status("Disconnected");
    if (!errorEl.textContent) {
      showError(connectedOnce
        ? "The console was disconnected (the guest stopped, the session timed out, or the network dropped). Reconnect to continue."
        : "The console proxy refused or lost the connection (expired token, or the guest's display is unreachable). Reconnect to retry.");
    }
    rfb = null;
  });
}

function combo(keys) {
  if (!rfb) return;
  for (const [sym, code] of keys) rfb.sendKey(sym, code, true);
  for (const [sym, code] of [...keys].reverse()) rfb.sendKey(sym, code, false);
  rfb.focus();
}

// US layout: characters typed with Shift held.
const SHIFTED = '~!@#$%^&*()_+{}|:"<>?';
function typeText(text) {
  if (!rfb) return;
  for (const ch of text) {
    if (ch === "\n") { combo([KEY.enter]); continue; }
    if (ch === "\t") { combo([KEY.tab]); continue; }
    const code = ch.codePointAt(0);
    if (code < 0x20 || code > 0xff) continue;  // keysyms for Latin-1 only
    const shifted = SHIFTED.includes(ch) || (ch >= "A" && ch <= "Z");
    if (shifted) rfb.sendKey(KEY.shift[0], KEY.shift[1], true);
    rfb.sendKey(code, null, true);
    rfb.sendKey(code, null, false);
    if (shifted) rfb.sendKey(KEY.shift[0], KEY.shift[1], false);
  }
  rfb.focus();
}

function on(id, event, fn) { const el = document.getElementById(id); if (el) el.addEventListener(event, fn); }

on("vnc-connect", "click", connect);
on("vnc-cad", "click", () => { if (rfb) { rfb.sendCtrlAltDel(); rfb.focus(); } });
document.querySelectorAll("[data-fkey]").forEach((button) => button.addEventListener("click", () => {
  const n = Number(button.dataset.fkey);
  combo([KEY.ctrl, KEY.alt, [0xffbe + n - 1, `F${n}`]]);
  button.closest("details").open = false;
}));
document.querySelectorAll("[data-combo]").forEach((button) => button.addEventListener("click", () => {
  combo(button.dataset.combo === "printscreen" ? [KEY.print] : [KEY.ctrl, KEY.alt, KEY.backspace]);
  button.closest("details").open = false;
}));
on("vnc-paste-toggle", "click", () => document.getElementById("vnc-paste").classList.toggle("open"));
on("vnc-paste-send", "click", () => typeText(document.getElementById("vnc-paste-text").value));
on("vnc-scale", "change", (e) => { if (rfb) rfb.scaleViewport = e.target.checked; });
on("vnc-fullscreen", "click", () => { screen.requestFullscreen?.(); if (rfb) rfb.focus(); });
on("vnc-popout", "click", () => {
  const url = new URL(location.href);
  url.searchParams.set("popout", "1");
  window.open(url.toString(), `vnc-${screen.dataset.tokenUrl}`, "width=1100,height=860");
  if (rfb) rfb.disconnect();
  status("Opened in a separate window");
});

window.virtdashConsole = { typeText, get rfb() { return rfb; } };
if (screen.dataset.autoconnect === "1") connect();

// Serial console page: xterm.js over the same-origin WebSocket /ws/consoles/<uuid>/serial/.
// Binary frames carry terminal bytes both ways; text frames are JSON status from the server.
const screen = document.getElementById("serial-screen");
const statusEl = document.getElementById("console-status");
const errorEl = document.getElementById("console-error");
const takeover = document.getElementById("serial-takeover");
const encoder = new TextEncoder();

const term = new window.Terminal({ convertEol: false, cursorBlink: true, scrollback: 5000, fontSize: 14 });
const fit = new window.FitAddon.FitAddon();
term.loadAddon(fit);
term.open(screen);
fit.fit();
window.addEventListener("resize", () => fit.fit());

let ws = null;
function status(text) { statusEl.textContent = text; }
function showError(text) { errorEl.hidden = !text; errorEl.textContent = text || ""; }

function send(text) {
  if (!ws || ws.readyState !== WebSocket.OPEN) return;
  const bytes = encoder.encode(text);
  for (let i = 0; i < bytes.length; i += 4096) ws.send(bytes.slice(i, i + 4096));
}

function connect(force = false) {
  if (ws) ws.close();
  showError("");
  if (takeover) takeover.hidden = true;
  status("Connecting…");
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(`${scheme}//${location.host}${screen.dataset.wsPath}${force ? "?force=1" : ""}`);
  socket.binaryType = "arraybuffer";
  ws = socket;
  socket.onmessage = (event) => {
    if (typeof event.data !== "string") { term.write(new Uint8Array(event.data)); return; }
    const msg = JSON.parse(event.data);
    if (msg.status === "connected") {
      status(msg.forced ? "Connected (took over the console)" : "Connected");
      term.focus();
      send("\r");  // wake the prompt up
    } else if (msg.error) {
      showError(msg.error);
      if (msg.code === "busy" && takeover) takeover.hidden = false;
    }
  };
  socket.onclose = (event) => {
    if (ws !== socket) return;
    status("Disconnected");
    if (event.code === 4403 || (event.code === 1006 && !errorEl.textContent)) {
      showError(event.code === 4403 ? "The server refused the console (permission, origin or too many sessions)."
        : "The connection to the server was lost. Reconnect to continue.");
    }
    ws = null;
  };
}

term.onData((data) => send(data));
document.getElementById("serial-connect").addEventListener("click", () => connect(false));
if (takeover) takeover.addEventListener("click", () => connect(true));
document.getElementById("serial-copy").addEventListener("click", async () => {
  const text = term.getSelection();
  if (!text) { status("Select text in the terminal first"); return; }
  try { await navigator.clipboard.writeText(text); status("Copied"); } catch (e) { status("Copy refused by the browser"); }
});
document.getElementById("serial-paste-toggle").addEventListener("click",
  () => document.getElementById("serial-paste").classList.toggle("open"));
document.getElementById("serial-paste-send").addEventListener("click", () => {
  send(document.getElementById("serial-paste-text").value.replace(/\r?\n/g, "\r"));
  term.focus();
});
document.getElementById("serial-size").addEventListener("click", () => send(`stty rows ${term.rows} cols ${term.cols}\r`));

window.virtdashSerial = { term, send };
connect(false);

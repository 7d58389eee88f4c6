// Upload page: POST the file as the raw request body (no multipart, no form parsing) with
// XMLHttpRequest so the browser reports upload progress. The server (hosts/upload_stream.py)
// checks login, CSRF, permission, name and size before reading a byte, then reads the next
// piece only after libvirt took the last: the bar follows what reached the storage pool.
// Text only via textContent.
const form = document.getElementById("upload-form");
const fileInput = document.getElementById("upload-file");
const nameInput = document.getElementById("upload-name");
const formatInput = document.getElementById("upload-format");
const startButton = document.getElementById("upload-start");
const cancelButton = document.getElementById("upload-cancel");
const statusBox = document.getElementById("upload-status");
const bar = document.getElementById("upload-progress");
const text = document.getElementById("upload-text");
const result = document.getElementById("upload-result");
let request = null;

function csrfToken() {
  return form.querySelector("input[name=csrfmiddlewaretoken]").value;
}

function human(bytes) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return `${value.toFixed(unit ? 1 : 0)} ${units[unit]}`;
}

function setProgress(percent, message) {
  bar.setAttribute("aria-valuenow", String(percent));
  bar.firstElementChild.style.width = `${percent}%`;
  text.textContent = message;
}

function showResult(kind, message, link) {
  result.replaceChildren();
  const box = document.createElement("div");
  box.className = `msg msg-${kind}`;
  box.textContent = message;
  if (link) {
    const anchor = document.createElement("a");
    anchor.href = link;
    anchor.textContent = " Back to the pool";
    box.append(anchor);
  }
  result.append(box);
}

function finish() {
  request = null;
  startButton.disabled = false;
  cancelButton.hidden = true;
}

fileInput.addEventListener("change", () => {
  const file = fileInput.files[0];
  if (file && !nameInput.value) nameInput.value = file.name.replace(/[^A-Za-z0-9._+-]/g, "_").replace(/^[.-]+/, "");
  if (file && /\.qcow2$/i.test(file.name)) formatInput.value = "qcow2";
});

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const file = fileInput.files[0];
  if (!file) { showResult("error", "Choose a file first."); return; }
  if (!nameInput.value) { showResult("error", "Give the volume a name."); return; }
  const params = new URLSearchParams({ name: nameInput.value, format: formatInput.value });
  request = new XMLHttpRequest();
  request.open("POST", `${form.dataset.url}?${params}`);
  request.setRequestHeader("X-CSRFToken", csrfToken());
  request.setRequestHeader("Content-Type", "application/octet-stream");
  request.upload.addEventListener("progress", (e) => {
    if (!e.lengthComputable) return;
    const percent = Math.floor((100 * e.loaded) / e.total);
    setProgress(percent, `Sent ${human(e.loaded)} of ${human(e.total)} (${percent} %)`);
  });
  request.upload.addEventListener("load", () => setProgress(100, "Sent; closing the volume…"));
  request.addEventListener("load", () => {
    let body = {};
    try { body = JSON.parse(request.responseText); } catch (err) { body = {}; }
    if (request.status === 200 && body.ok) {
      setProgress(100, "Done.");
      showResult("success", body.message, body.pool_url);
      form.dataset.done = "1";
    } else {
      showResult("error", body.error || `The upload failed (HTTP ${request.status}).`);
    }
    finish();
  });
  request.addEventListener("error", () => {
    showResult("error", "The connection broke or the server refused the upload; nothing was kept.");
    finish();
  });
  request.addEventListener("abort", () => { showResult("warning", "Upload cancelled."); finish(); });
  statusBox.hidden = false;
  result.replaceChildren();
  setProgress(0, `Starting upload of ${human(file.size)}…`);
  startButton.disabled = true;
  cancelButton.hidden = false;
  request.send(file);
});

cancelButton.addEventListener("click", () => { if (request) request.abort(); });

// Guest list: selection count and select-all for bulk actions, hide thumbnails that 404.
// The table is re-rendered by live.js (data-live-keep-selection keeps the ticks).
const form = document.getElementById("bulk-form");
const count = document.getElementById("bulk-count");

function boxes() { return Array.from(form.querySelectorAll("input[name=guest]")); }

function updateCount() {
  if (!count) return;
  const n = boxes().filter((b) => b.checked).length;
  count.textContent = `${n} selected`;
  const submit = document.getElementById("bulk-submit");
  if (submit) submit.disabled = n === 0;
}

form.addEventListener("change", (event) => {
  if (event.target.id === "select-all") boxes().forEach((b) => { b.checked = event.target.checked; });
  updateCount();
});
form.addEventListener("live:refreshed", updateCount);

// error events do not bubble: listen in the capture phase for thumbnails that do not exist
document.addEventListener("error", (event) => {
  const img = event.target;
  if (img instanceof HTMLImageElement && img.classList.contains("thumb")) img.hidden = true;
}, true);

updateCount();

// Guest detail: Chart.js graphs of the last hour, extended live. New samples are fetched every
// sample interval and whenever the guest's live topic fires; the overview fragment itself is
// refreshed by live.js (data-live-topics).
const box = document.getElementById("graphs");
const Chart = window.Chart;
const HOUR_MS = 3600 * 1000;
let last = null;
const charts = {};

function css(name, fallback) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
}

function fmtBytes(v) {
  if (v === null || v === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
  return `${v.toFixed(i || v < 10 ? 1 : 0)} ${units[i]}`;
}

function timeLabel(ms) {
  const d = new Date(ms);
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
}

function makeChart(id, series, format) {
  const canvas = document.getElementById(id);
  if (!canvas || !Chart) return null;
  const colours = [css("--accent", "#3b82f6"), css("--green", "#16a34a")];
  return new Chart(canvas, {
    type: "line",
    data: { datasets: series.map((label, i) => ({ label, data: [], borderColor: colours[i], backgroundColor: colours[i],
      pointRadius: 0, borderWidth: 1.5, tension: 0.2, spanGaps: false })) },
    options: {
      animation: false, responsive: true, maintainAspectRatio: false, parsing: false, normalized: true,
      interaction: { mode: "nearest", intersect: false, axis: "x" },
      scales: {
        x: { type: "linear", ticks: { callback: timeLabel, maxTicksLimit: 7, color: css("--muted", "#888") } },
        y: { beginAtZero: true, ticks: { callback: format, color: css("--muted", "#888") } },
      },
      plugins: { legend: { display: series.length > 1, labels: { color: css("--text", "#222") } },
        tooltip: { callbacks: { title: (items) => new Date(items[0].parsed.x).toLocaleString(),
          label: (item) => `${item.dataset.label}: ${format(item.parsed.y)}` } } },
    },
  });
}

// point = [ms, cpu, memUsed, mem, rd, wr, rx, tx]
const layout = {
  cpu: { id: "chart-cpu", series: ["CPU %"], pick: (p) => [p[1]], format: (v) => `${Number(v).toFixed(v < 10 ? 1 : 0)} %` },
  mem: { id: "chart-mem", series: ["Used", "Allocated"], pick: (p) => [p[2], p[3]], format: fmtBytes },
  disk: { id: "chart-disk", series: ["Read", "Write"], pick: (p) => [p[4], p[5]], format: (v) => `${fmtBytes(v)}/s` },
  net: { id: "chart-net", series: ["Received", "Sent"], pick: (p) => [p[6], p[7]], format: (v) => `${fmtBytes(v)}/s` },
};

function addPoints(points) {
  const cutoff = Date.now() - HOUR_MS;
  for (const [key, spec] of Object.entries(layout)) {
    const chart = charts[key];
    if (!chart) continue;
    for (const p of points) {
      spec.pick(p).forEach((value, i) => { chart.data.datasets[i].data.push({ x: p[0], y: value }); });
    }
    chart.data.datasets.forEach((ds) => { while (ds.data.length && ds.data[0].x < cutoff) ds.data.shift(); });
    chart.update("none");
  }
  const empty = document.getElementById("graphs-empty");
  if (empty) empty.hidden = Object.values(charts).some((c) => c && c.data.datasets[0].data.length);
}

let loading = false;
async function load() {
  if (loading) return;
  loading = true;
  try {
    const url = new URL(box.dataset.samplesUrl, location.href);
    url.searchParams.set("minutes", "60");
    if (last) url.searchParams.set("after", last);
    const response = await fetch(url, { credentials: "same-origin" });
    if (!response.ok) return;
    const data = await response.json();
    if (data.last) last = data.last;
    addPoints(data.points);
  } catch (err) { /* offline: the next tick retries */ } finally { loading = false; }
}

if (box) {
  for (const [key, spec] of Object.entries(layout)) charts[key] = makeChart(spec.id, spec.series, spec.format);
  load();
  const step = Math.max(2, Number(box.dataset.step || 10)) * 1000;
  setInterval(load, step);
  const topic = `guest.${box.dataset.guest}`;
  document.addEventListener("live:message", (event) => { if (event.detail.topic === topic) load(); });
}

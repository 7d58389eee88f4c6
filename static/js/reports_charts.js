// Shared Chart.js helpers for the report pages: colours from the theme's CSS variables, a date
// axis without an adapter (x = milliseconds), re-colouring on theme change and before printing.
const Chart = window.Chart;

export function palette() {
  const css = getComputedStyle(document.documentElement);
  const v = (name, fallback) => (css.getPropertyValue(name).trim() || fallback);
  return {
    text: v("--text", "#1f2937"), muted: v("--muted", "#6b7280"), border: v("--border", "#e5e7eb"),
    accent: v("--accent", "#2563eb"), green: v("--green", "#15803d"), amber: v("--amber", "#b45309"),
    red: v("--red", "#b91c1c"), blue: v("--blue", "#1d4ed8"), grey: v("--grey", "#4b5563"),
  };
}

export function alpha(colour, a) {
  // #rrggbb → rgba(); other notations are returned as they are.
  const m = /^#([0-9a-f]{6})$/i.exec(colour);
  if (!m) return colour;
  const n = parseInt(m[1], 16);
  return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${a})`;
}

export function readData(id) {
  const node = document.getElementById(id);
  return node ? JSON.parse(node.textContent) : null;
}

export function dayLabel(ms) {
  return new Date(ms).toISOString().slice(0, 10);
}

export function baseOptions(p, { yTitle = "", time = false, stacked = false } = {}) {
  const grid = { color: alpha(p.border, 1) };
  return {
    responsive: true, maintainAspectRatio: false, animation: false,
    interaction: { mode: "nearest", intersect: false },
    plugins: { legend: { labels: { color: p.text, boxWidth: 12 } },
               tooltip: time ? { callbacks: { title: (items) => items.length ? dayLabel(items[0].parsed.x) : "" } } : {} },
    scales: {
      x: { type: time ? "linear" : "category", stacked, grid,
           ticks: time ? { color: p.muted, maxRotation: 0, callback: (value) => dayLabel(value) } : { color: p.muted } },
      y: { stacked, beginAtZero: true, grid, ticks: { color: p.muted },
           title: { display: Boolean(yTitle), text: yTitle, color: p.muted } },
    },
  };
}

const charts = [];

export function makeChart(canvas, build) {
  if (!canvas || !Chart) return null;
  const chart = new Chart(canvas, build(palette()));
  chart.$build = build;
  charts.push(chart);
  return chart;
}

function repaint() {
  for (const chart of charts) {
    const fresh = chart.$build(palette());
    chart.data.datasets.forEach((ds, i) => Object.assign(ds, fresh.data.datasets[i], { data: ds.data }));
    chart.options = fresh.options;
    chart.update("none");
  }
}

// Theme toggles set data-theme on <html>; the print stylesheet switches variables to light ones.
new MutationObserver(repaint).observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });
window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", repaint);
window.addEventListener("beforeprint", () => { repaint(); charts.forEach((c) => c.resize()); });
window.addEventListener("afterprint", () => { repaint(); charts.forEach((c) => c.resize()); });
const printQuery = window.matchMedia("print");
printQuery.addEventListener("change", repaint);

export function wirePrintButton() {
  const button = document.getElementById("print-report");
  if (button) button.addEventListener("click", () => window.print());
}

export function forecastConfig(f) {
  const toXY = (rows) => rows.map(([d, y]) => ({ x: Date.parse(d), y }));
  return (p) => {
    const datasets = [
      { type: "scatter", label: `${f.label} (daily)`, data: toXY(f.points), borderColor: p.accent,
        backgroundColor: alpha(p.accent, 0.6), pointRadius: 2 },
      { type: "line", label: "95 % band (low)", data: toXY(f.low), borderColor: alpha(p.amber, 0.5), borderWidth: 1,
        pointRadius: 0, fill: false },
      { type: "line", label: "95 % band", data: toXY(f.high), borderColor: alpha(p.amber, 0.5), borderWidth: 1,
        pointRadius: 0, fill: "-1", backgroundColor: alpha(p.amber, 0.18) },
      { type: "line", label: "Trend", data: toXY(f.fit), borderColor: p.amber, borderWidth: 2, pointRadius: 0 },
    ];
    if (f.limit !== null && f.points.length) {
      const first = Date.parse(f.points[0][0]);
      const last = f.fit.length ? Date.parse(f.fit[f.fit.length - 1][0]) : Date.parse(f.points[f.points.length - 1][0]);
      datasets.push({ type: "line", label: `Limit (${f.limit} ${f.unit})`, data: [{ x: first, y: f.limit }, { x: last, y: f.limit }],
                      borderColor: p.red, borderDash: [6, 4], borderWidth: 2, pointRadius: 0 });
    }
    const options = baseOptions(p, { yTitle: f.unit, time: true });
    options.plugins.legend.labels.filter = (item) => item.text !== "95 % band (low)";
    return { data: { datasets }, options };
  };
}

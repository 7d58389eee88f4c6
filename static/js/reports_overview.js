// Capacity overview: allocation vs capacity (stacked bars), use over time, headline forecast.
import { alpha, baseOptions, forecastConfig, makeChart, readData, wirePrintButton } from "./reports_charts.js";

const data = readData("report-data");
wirePrintButton();

function allocation(canvasId, title, unit, running, stopped, capacity, extra) {
  const labels = data.hosts.map((h) => h.name);
  makeChart(document.getElementById(canvasId), (p) => {
    const datasets = [
      { type: "bar", label: running[0], data: data.hosts.map(running[1]), backgroundColor: alpha(p.accent, 0.85), stack: "a", order: 2 },
      { type: "bar", label: stopped[0], data: data.hosts.map(stopped[1]), backgroundColor: alpha(p.grey, 0.45), stack: "a", order: 2 },
      { type: "line", label: capacity[0], data: data.hosts.map(capacity[1]), borderColor: p.red, backgroundColor: p.red,
        showLine: false, pointStyle: "line", pointRadius: 18, pointBorderWidth: 3, order: 0 },
    ];
    if (extra) datasets.push({ type: "line", label: extra[0], data: data.hosts.map(extra[1]), borderColor: p.amber,
                               backgroundColor: p.amber, showLine: false, pointStyle: "line", pointRadius: 18, pointBorderWidth: 3,
                               order: 0 });
    const options = baseOptions(p, { yTitle: unit, stacked: true });
    options.plugins.title = { display: true, text: title, color: p.text };
    return { data: { labels, datasets }, options };
  });
}

function usage(canvasId, unit, series) {
  const xs = data.usage.t.map((t) => Date.parse(t));
  makeChart(document.getElementById(canvasId), (p) => {
    const colours = [p.accent, p.green, p.red];
    const datasets = series.map(([label, values, dashed], i) => ({
      type: "line", label, data: xs.map((x, j) => ({ x, y: Array.isArray(values) ? values[j] : values })),
      borderColor: colours[i % colours.length], backgroundColor: alpha(colours[i % colours.length], 0.12),
      borderWidth: dashed ? 2 : 1.5, borderDash: dashed ? [6, 4] : [], pointRadius: 0, fill: i === 0 && !dashed,
    }));
    return { data: { datasets }, options: baseOptions(p, { yTitle: unit, time: true }) };
  });
}

if (data && data.hosts.length) {
  allocation("chart-alloc-cpu", "vCPUs vs threads", "vCPUs", ["running", (h) => h.vcpus_running],
             ["stopped", (h) => h.vcpus_stopped], ["threads", (h) => h.cpus]);
  allocation("chart-alloc-mem", "Memory allocated vs RAM", "GiB", ["running", (h) => h.memory_running],
             ["stopped", (h) => h.memory_stopped], ["RAM", (h) => h.memory_total]);
  allocation("chart-alloc-disk", "Storage", "GiB", ["on disk", (h) => h.storage_used],
             ["promised, not yet used", (h) => Math.max(0, h.volume_capacity - h.storage_used)],
             ["pool capacity", (h) => h.storage_capacity]);
  if (data.usage.t.length) {
    usage("chart-usage-cpu", "threads", [["CPU threads used", data.usage.cpu_used], ["threads", data.capacity.cpus, true]]);
    usage("chart-usage-mem", "GiB", [["memory used", data.usage.memory_used], ["memory allocated", data.usage.memory_allocated],
                                    ["RAM", data.capacity.memory_total, true]]);
  }
  if (data.forecast) makeChart(document.getElementById("chart-forecast"), forecastConfig(data.forecast));
}
document.documentElement.dataset.chartsReady = "1";

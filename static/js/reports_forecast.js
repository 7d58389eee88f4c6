// Forecast page: one chart per resource and scope (points, Theil–Sen line, 95 % band, limit).
import { forecastConfig, makeChart, readData, wirePrintButton } from "./reports_charts.js";

const charts = readData("forecast-data") || {};
wirePrintButton();
for (const canvas of document.querySelectorAll("canvas.forecast-chart")) {
  const item = (charts[canvas.dataset.scope] || [])[Number(canvas.dataset.index)];
  if (item) makeChart(canvas, forecastConfig(item));
}
document.documentElement.dataset.chartsReady = "1";

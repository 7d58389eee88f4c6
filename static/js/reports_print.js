// Report tables without charts: only the print button.
import { wirePrintButton } from "./reports_charts.js";

wirePrintButton();

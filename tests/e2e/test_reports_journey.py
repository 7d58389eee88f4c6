"""A team lead's look at capacity in Chromium: overview charts, forecast, right-sizing, print/PDF.

Seeded history (reports.seed) on disabled demo hosts, so only the web server is needed.
The PDF is rasterised with pdftoppm and the image inspected: white paper, charts drawn in colour.
"""

import subprocess

import pytest

from tests.conftest import ARTIFACTS
from tests.e2e.conftest import login, screenshot
from tests.stack import Stack, free_port

CHART_DRAWN = """(id) => {
  const c = document.getElementById(id); const chart = window.Chart.getChart(c);
  if (!chart || !c.width || !c.height) return 0;
  const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let inked = 0; for (let i = 3; i < px.length; i += 16) if (px[i] > 0) inked++;
  return inked;
}"""


@pytest.fixture
def web(services, transactional_db):
    running = Stack(port=free_port())
    running.start_web()
    yield running
    running.stop_all()


def _ppm(path):
    """(width, height, bytes) of a binary P6 PPM, as pdftoppm writes it."""
    data = path.read_bytes()
    parts = data.split(maxsplit=4)
    assert parts[0] == b"P6" and parts[3] == b"255"
    return int(parts[1]), int(parts[2]), parts[4]


def test_overview_forecast_rightsizing_and_print_render_with_seeded_history(web, page, viewer_user):
    from reports.seed import seed_history

    seed_history(hosts=3, guests=60, days=40, seed=3, fine_days=8, build_daily=False)
    login(page, web.url, viewer_user.username)

    page.goto(f"{web.url}/reports/")
    page.wait_for_selector("html[data-charts-ready='1']")
    for chart in ("chart-alloc-cpu", "chart-alloc-mem", "chart-alloc-disk", "chart-usage-cpu", "chart-usage-mem",
                  "chart-forecast"):
        assert page.evaluate(CHART_DRAWN, chart) > 50, f"{chart} drew nothing"
    assert page.locator("#overview-table tbody tr").count() == 3
    assert page.locator("[data-metric='total.vcpus_all']").inner_text().isdigit()
    screenshot(page, "reports-overview")

    # Dark theme: the charts re-read the CSS variables (legend text follows --text).
    page.click("#theme-toggle")
    page.wait_for_function("document.documentElement.dataset.theme")
    text = page.evaluate("getComputedStyle(document.documentElement).getPropertyValue('--text').trim()")
    legend = page.evaluate("window.Chart.getChart(document.getElementById('chart-usage-cpu'))"
                           ".options.plugins.legend.labels.color")
    assert legend == text
    screenshot(page, "reports-overview-theme-toggled")

    page.goto(f"{web.url}/reports/forecast/")
    page.wait_for_selector("html[data-charts-ready='1']")
    assert page.locator("canvas.forecast-chart").count() >= 3
    first = page.locator("canvas.forecast-chart").first
    first.scroll_into_view_if_needed()
    assert page.evaluate("(c) => window.Chart.getChart(c).data.datasets.length", first.element_handle()) >= 4
    assert page.locator("table.forecast-table tr[data-resource='memory_alloc']").count() >= 1
    screenshot(page, "reports-forecast")

    page.goto(f"{web.url}/reports/rightsizing/")
    assert page.locator("#idle-table tbody tr[data-guest]").count() >= 1
    assert page.locator("#oversized-table tbody tr[data-guest]").count() >= 1
    assert page.locator("#stopped-table tbody tr[data-guest]").count() >= 1
    screenshot(page, "reports-rightsizing")

    # Print: dark theme still set in localStorage; the print stylesheet must give light paper.
    page.goto(f"{web.url}/reports/")
    page.wait_for_selector("html[data-charts-ready='1']")
    page.emulate_media(media="print")
    out = ARTIFACTS / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    pdf = out / "reports-overview.pdf"
    page.pdf(path=str(pdf), format="A4", landscape=True, print_background=True)
    subprocess.run(["pdftoppm", "-r", "60", "-f", "1", "-l", "1", "-png", str(pdf), str(out / "reports-print")],
                   check=True, timeout=60)
    subprocess.run(["pdftoppm", "-r", "50", "-f", "1", "-l", "1", str(pdf), str(out / "reports-print")],
                   check=True, timeout=60)
    ppm = next(out.glob("reports-print-*.ppm"))
    width, height, pixels = _ppm(ppm)
    ppm.unlink()
    assert width > height  # landscape
    rgb = [tuple(pixels[i:i + 3]) for i in range(0, len(pixels), 3)]
    white = sum(1 for r, g, b in rgb if r > 245 and g > 245 and b > 245) / len(rgb)
    coloured = sum(1 for r, g, b in rgb if b > r + 40 and b > g + 20)  # the accent blue of bars and lines
    dark = sum(1 for r, g, b in rgb if r < 110 and g < 110 and b < 110)  # text
    assert white > 0.6, f"print background is not white ({white:.0%})"
    assert coloured > 200, "no chart colour on the printed page"
    assert dark > 200, "no text on the printed page"
    assert list(out.glob("reports-print-*.png"))

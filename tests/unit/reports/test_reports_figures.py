"""The report shows (and exports) figures we compute here independently from the seeded rows.

Independent means: straight from Guest/HostSample/GuestSample rows with our own arithmetic,
nearest-rank p95 as ``sorted(v)[ceil(0.95 n) - 1]``, and ordinary least squares for the forecast
cross-check — never through reports.services or reports.stats.
"""

import csv
import io
import math
import re
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from guests.models import Guest, GuestSample, HostSample, Resolution
from hosts.models import Host
from tests.unit.reports.conftest import LONG, SHORT

GIB = 1024**3


def nearest_rank_p95(values):
    ordered = sorted(values)
    return ordered[math.ceil(0.95 * len(ordered)) - 1]


def window(params):
    start = datetime.fromisoformat(params["start"]).replace(tzinfo=UTC)
    end = datetime.fromisoformat(params["end"]).replace(tzinfo=UTC) + timedelta(days=1)
    return start, end


def metric(html, name):
    match = re.search(rf'data-metric="{re.escape(name)}">([^<]*)<', html)
    assert match, f"metric {name} not on the page"
    return match.group(1).strip()


def cell(html, row, col):
    block = re.search(rf'<tr data-row="{re.escape(row)}">(.*?)</tr>', html, re.S).group(1)
    return re.search(rf'data-col="{col}">([^<]*)<', block).group(1).strip()


def read_csv(response):
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.content.decode())))


def expected_totals():
    guests = list(Guest.objects.all())
    hosts = list(Host.objects.all())
    running = [g for g in guests if g.state == "running"]
    return {
        "vcpus_all": sum(g.vcpus for g in guests),
        "vcpus_running": sum(g.vcpus for g in running),
        "memory_all": sum(g.memory_kib * 1024 for g in guests),
        "threads": sum(h.facts["cpus"] for h in hosts),
        "memory_total": sum(h.facts["memory_total"] for h in hosts),
        "volume_capacity": sum(d["capacity"] for g in guests for d in g.summary["disks"]),
        "storage_capacity": sum(p["capacity"] for h in hosts for p in h.facts["pools"]),
    }


def expected_total_cpu_series(resolution, start, end):
    busy = defaultdict(float)
    memory = defaultdict(float)
    for row in HostSample.objects.filter(resolution=resolution, time__gte=start, time__lt=end):
        busy[row.time] += row.cpu_percent * row.cpus / 100
        memory[row.time] += row.memory_used
    return [busy[t] for t in sorted(busy)], [memory[t] for t in sorted(memory)]


@pytest.mark.parametrize("params,resolution", [(LONG, Resolution.HOUR), (SHORT, Resolution.FIVE_MINUTES)],
                         ids=["14-days-hourly", "2-days-5-minute"])
def test_the_overview_shows_totals_overcommit_and_p95_computed_from_the_samples(seeded, admin_client, params,
                                                                                resolution):
    start, end = window(params)
    want = expected_totals()
    cpu, memory = expected_total_cpu_series(resolution, start, end)
    assert len(cpu) == (end - start) / timedelta(seconds=resolution)  # every bucket of the period

    html = admin_client.get("/reports/", params).content.decode()

    assert metric(html, "total.vcpus_all") == str(want["vcpus_all"])
    assert metric(html, "total.vcpus_running") == str(want["vcpus_running"])
    assert metric(html, "total.vcpu_ratio") == f"{want['vcpus_all'] / want['threads']:.2f}×"
    assert metric(html, "total.memory_ratio") == f"{want['memory_all'] / want['memory_total']:.2f}×"
    assert metric(html, "total.volume_capacity") == f"{want['volume_capacity'] / GIB:,.1f} GiB"
    assert metric(html, "total.storage_ratio") == f"{want['volume_capacity'] / want['storage_capacity']:.2f}×"
    assert metric(html, "total.cpu_p95") == f"{nearest_rank_p95(cpu):,.1f}"
    assert metric(html, "total.cpu_avg") == f"{sum(cpu) / len(cpu):,.1f}"
    assert metric(html, "total.memory_p95") == f"{nearest_rank_p95(memory) / GIB:,.1f}"
    assert f"({len(cpu)} points)" in html


def test_each_host_row_shows_its_own_p95(seeded, admin_client):
    start, end = window(LONG)
    html = admin_client.get("/reports/", LONG).content.decode()
    for host in Host.objects.all():
        values = [r.cpu_percent * r.cpus / 100 for r in
                  HostSample.objects.filter(host=host, resolution=Resolution.HOUR, time__gte=start, time__lt=end)]
        assert cell(html, host.name, "cpu_p95") == f"{nearest_rank_p95(values):,.1f}"
        assert cell(html, host.name, "vcpus_all") == str(sum(g.vcpus for g in host.guests.all()))


def test_the_overview_csv_carries_the_same_figures_unrounded(seeded, admin_client):
    start, end = window(LONG)
    want = expected_totals()
    cpu, _ = expected_total_cpu_series(Resolution.HOUR, start, end)
    rows = read_csv(admin_client.get("/reports/overview.csv", LONG))
    total = rows[-1]
    assert total["host"] == "All hosts"
    assert int(total["vcpus_all"]) == want["vcpus_all"]
    assert int(total["cpu_threads"]) == want["threads"]
    assert float(total["vcpu_overcommit"]) == pytest.approx(want["vcpus_all"] / want["threads"], abs=1e-4)
    assert float(total["cpu_used_p95_threads"]) == pytest.approx(nearest_rank_p95(cpu), abs=1e-3)
    assert {r["host"] for r in rows[:-1]} == set(Host.objects.values_list("name", flat=True))


def expected_idle(start, end, resolution):
    cpu = defaultdict(list)
    io_max = defaultdict(float)
    for s in GuestSample.objects.filter(resolution=resolution, time__gte=start, time__lt=end):
        cpu[s.guest_id].append(s.cpu_percent / 100)
        io_max[s.guest_id] = max(io_max[s.guest_id], s.disk_read_bps + s.disk_write_bps + s.net_rx_bps + s.net_tx_bps)
    idle = {gid for gid, values in cpu.items() if nearest_rank_p95(values) * 100 < 2.0 and io_max[gid] < 1024}
    return set(Guest.objects.filter(pk__in=idle).values_list("name", flat=True))


WEEK = {"period": "custom", "start": "2026-02-23", "end": "2026-03-01"}  # 7 days: per guest from hourly samples


def test_the_right_sizing_page_and_csv_list_exactly_the_idle_guests(seeded, admin_client):
    start, end = window(WEEK)
    want = expected_idle(start, end, Resolution.HOUR)
    assert want, "the seed should produce idle guests"
    html = admin_client.get("/reports/rightsizing/", WEEK).content.decode()
    table = re.search(r'id="idle-table">(.*?)</table>', html, re.S).group(1)
    assert set(re.findall(r'<tr data-guest="([^"]+)">', table)) == want
    rows = read_csv(admin_client.get("/reports/rightsizing.csv", {**WEEK, "table": "idle"}))
    assert {r["guest"] for r in rows} == want


def test_oversized_guests_free_what_their_p95_does_not_use(seeded, admin_client):
    start, end = window(WEEK)
    rows = read_csv(admin_client.get("/reports/rightsizing.csv", {**WEEK, "table": "oversized"}))
    assert rows
    for row in rows:
        guest = Guest.objects.get(name=row["guest"])
        mem = [s.memory_used for s in guest.samples.filter(resolution=Resolution.HOUR, time__gte=start, time__lt=end)]
        assert int(row["memory_used_p95_bytes"]) == nearest_rank_p95(mem)
        assert int(row["frees_memory_bytes"]) == guest.memory_kib * 1024 - int(row["suggested_memory_bytes"] or
                                                                              guest.memory_kib * 1024)


def test_stopped_guests_holding_storage_are_listed(seeded, admin_client):
    want = {g.name for g in Guest.objects.filter(state="shutoff")}
    assert want
    rows = read_csv(admin_client.get("/reports/rightsizing.csv", {**LONG, "table": "stopped"}))
    assert {r["guest"] for r in rows} == want


def ols_crossing(xs, ys, limit):
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)
    return mx + (limit - my) / slope if slope > 0 else None


def test_the_memory_allocation_forecast_contains_an_independent_estimate_within_its_range(seeded, admin_client):
    # The trend window: the period (14 days) stretched to the 30-day minimum, ending with the period.
    _, end = window(LONG)
    start = end - timedelta(days=30)
    daily = defaultdict(lambda: defaultdict(list))
    for row in HostSample.objects.filter(resolution=Resolution.HOUR, time__gte=start, time__lt=end):
        daily[row.time.date()][row.time].append(row.memory_allocated_all)
    days = sorted(daily)
    xs = [(datetime(d.year, d.month, d.day, 12, tzinfo=UTC) - end).total_seconds() / 86400 for d in days]
    ys = [sum(sum(v) for v in daily[d].values()) / len(daily[d]) for d in days]
    limit = sum(h.facts["memory_total"] for h in Host.objects.all())
    crossing = end + timedelta(days=ols_crossing(xs, ys, limit))

    rows = read_csv(admin_client.get("/reports/forecast.csv", LONG))
    row = next(r for r in rows if r["scope"] == "All hosts" and r["resource"] == "Memory allocated")
    assert row["status"] == "forecast", row["reason"]
    earliest, latest = (datetime.fromisoformat(row[k]).replace(tzinfo=UTC) for k in ("earliest", "latest"))
    assert earliest - timedelta(days=1) <= crossing <= latest + timedelta(days=1)
    html = admin_client.get("/reports/forecast/", LONG).content.decode()
    assert row["forecast_date"] in html


def test_the_breakdown_puts_guests_without_an_owner_under_unassigned(seeded, admin_client):
    owners = defaultdict(int)
    for guest in Guest.objects.all():
        owners[guest.owner or "unassigned"] += guest.vcpus
    start, end = window(LONG)
    memory_avg = defaultdict(float)
    for guest in Guest.objects.all():
        used = [s.memory_used for s in guest.samples.filter(resolution=Resolution.HOUR, time__gte=start, time__lt=end)]
        memory_avg[guest.owner or "unassigned"] += sum(used) / len(used) if used else 0.0
    rows = read_csv(admin_client.get("/reports/breakdown.csv", {**LONG, "by": "owner"}))
    assert {r["owner"]: int(r["vcpus"]) for r in rows} == owners
    for row in rows:
        assert float(row["memory_used_avg_bytes"]) == pytest.approx(memory_avg[row["owner"]], rel=1e-6)
    html = admin_client.get("/reports/breakdown/", {**LONG, "by": "team"}).content.decode()
    assert 'data-group="unassigned"' in html


def test_the_charts_get_their_data_and_the_library_from_static_files(seeded, admin_client):
    html = admin_client.get("/reports/", LONG).content.decode()
    assert '<script id="report-data" type="application/json">' in html
    assert "/static/vendor/chartjs/chart.umd.min.js" in html
    assert "/static/js/reports_overview.js" in html


MONTH_PLUS = {"period": "custom", "start": "2026-01-27", "end": "2026-03-01"}  # > 8 days → daily roll-ups


def test_long_periods_read_daily_rollups_with_the_stated_p95(seeded, admin_client):
    """Over more than 8 days: p95 = nearest-rank p95 of each day's nearest-rank p95 of hourly averages."""
    start, end = window(MONTH_PLUS)
    hourly = defaultdict(lambda: defaultdict(list))
    io_max = defaultdict(float)
    for s in GuestSample.objects.filter(resolution=Resolution.HOUR, time__gte=start, time__lt=end):
        hourly[s.guest_id][s.time.date()].append(s.cpu_percent / 100)
        io_max[s.guest_id] = max(io_max[s.guest_id], s.disk_read_bps + s.disk_write_bps + s.net_rx_bps + s.net_tx_bps)
    p95 = {gid: nearest_rank_p95([nearest_rank_p95(v) for v in days.values()]) for gid, days in hourly.items()}
    idle = {gid for gid in p95 if p95[gid] * 100 < 2.0 and io_max[gid] < 1024}
    want = set(Guest.objects.filter(pk__in=idle).values_list("name", flat=True))
    assert want
    rows = read_csv(admin_client.get("/reports/rightsizing.csv", {**MONTH_PLUS, "table": "idle"}))
    assert {r["guest"] for r in rows} == want
    names = dict(Guest.objects.values_list("name", "pk"))
    for row in rows:
        assert float(row["cpu_p95_threads"]) == pytest.approx(p95[names[row["guest"]]], abs=1e-4)
    html = admin_client.get("/reports/rightsizing/", MONTH_PLUS).content.decode()
    assert "from daily (per-guest daily roll-ups of hourly) averages" in html


def test_the_overview_reads_the_database_only_with_a_bounded_number_of_queries(seeded, admin_client,
                                                                                django_assert_max_num_queries):
    # Demo hosts point at test:/// files that do not exist: any libvirt call would fail the page.
    with django_assert_max_num_queries(40):
        response = admin_client.get("/reports/", LONG)
    assert response.status_code == 200


def _overview_queries(client) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        assert client.get("/reports/", SHORT).status_code == 200
    return len(queries)


def test_the_overviews_queries_do_not_grow_with_the_number_of_hosts(small_seed, admin_client, outsider_user,
                                                                    outsider_client):
    """For everyone and for a user who sees only some guests of each host (per-guest sums)."""
    from core.models import Grant

    def grant_one_guest_per_host():
        for host in Host.objects.all():
            guest = Guest.objects.filter(host=host).order_by("name").first()
            Grant.objects.get_or_create(user=outsider_user, guest=guest, defaults={"role": "viewer"})

    grant_one_guest_per_host()
    before = (_overview_queries(admin_client), _overview_queries(outsider_client))
    newest = HostSample.objects.latest("time")
    for i in range(4):  # like the seeded ones: facts, samples, and more guests than the user sees
        host = Host.objects.create(name=f"extra-{i}", uri=f"test:///extra-{i}",
                                   facts={"cpus": 8, "memory_total": 2**34})
        HostSample.objects.create(host=host, time=newest.time, resolution=newest.resolution, cpus=8,
                                  memory_total=2**34, cpu_percent=5.0)
        for j in range(2):
            Guest.objects.create(host=host, uuid=f"00000000-0000-4000-8000-0000000000{i}{j}",
                                 name=f"extra-guest-{i}{j}", state="running", vcpus=2, memory_kib=2**20)
    grant_one_guest_per_host()
    after = (_overview_queries(admin_client), _overview_queries(outsider_client))
    assert after == before
    assert "extra-3" in outsider_client.get("/reports/", SHORT).content.decode()


def test_the_overview_reuses_its_hourly_total_for_the_same_forecasts(seeded, admin_user):
    from reports import forecasting, services
    from reports.periods import period_from

    period = period_from(MONTH_PLUS)
    data = services.overview(admin_user, period)
    assert data.resolution == Resolution.HOUR
    fresh = forecasting.forecasts(admin_user, period, per_host=False)["total"]
    reused = forecasting.forecasts(admin_user, period, per_host=False, total=data.series["total"],
                                   total_resolution=data.resolution)["total"]
    assert [(f.status, f.when, f.earliest, f.latest) for f in reused] == \
        [(f.status, f.when, f.earliest, f.latest) for f in fresh]
    assert all(len(a.xs) == len(b.xs) > 7 for a, b in zip(fresh, reused, strict=True) if a.xs)

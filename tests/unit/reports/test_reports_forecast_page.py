"""The forecast page admits ignorance: short histories and flat trends get no date."""

import csv
import io
from datetime import UTC, datetime

from reports.seed import seed_history

NOW = datetime(2026, 3, 2, tzinfo=UTC)
PERIOD = {"period": "custom", "start": "2026-02-20", "end": "2026-03-01"}


def test_five_days_of_history_say_not_enough_data(db, admin_client):
    seed_history(hosts=1, guests=8, days=5, seed=2, fine_days=1, now=NOW)
    rows = list(csv.DictReader(io.StringIO(admin_client.get("/reports/forecast.csv", PERIOD).content.decode())))
    assert rows and all(r["status"] == "not-enough-data" for r in rows)
    assert all(r["forecast_date"] == "" for r in rows)
    html = admin_client.get("/reports/forecast/", PERIOD).content.decode()
    assert "not enough data" in html
    assert "Theil–Sen" in html  # the method is stated on the page


def test_a_history_without_growth_gets_no_date(db, admin_client):
    from guests.models import HostSample

    seed_history(hosts=1, guests=6, days=40, seed=4, fine_days=0, now=NOW)
    # Freeze allocation: same vCPUs every hour (no guest added or removed).
    HostSample.objects.update(vcpus_all=10)
    rows = list(csv.DictReader(io.StringIO(admin_client.get("/reports/forecast.csv", PERIOD).content.decode())))
    vcpus = next(r for r in rows if r["scope"] == "All hosts" and r["resource"] == "vCPUs allocated")
    assert vcpus["status"] == "no-significant-growth"
    assert vcpus["forecast_date"] == ""
    assert "includes 0" in vcpus["reason"]


def test_a_known_linear_growth_is_forecast_within_the_stated_range(db, admin_client):
    """Memory allocation grows 8 GiB a day with noise from 400 GiB; RAM is 1 TiB: the truth is known."""
    import random
    from datetime import timedelta

    from guests.models import HostSample, Resolution
    from hosts.models import Host

    gib = 1024**3
    host = Host.objects.create(name="linear", uri="test:///virtdash-demo/linear.xml", enabled=False,
                               facts={"cpus": 64, "memory_total": 1024 * gib, "pools": []})
    rng = random.Random(5)
    start = NOW - timedelta(days=60)
    rows = []
    for hour in range(60 * 24):
        when = start + timedelta(hours=hour)
        allocated = 400 * gib + 8 * gib * hour / 24 + rng.gauss(0, 6) * gib
        rows.append(HostSample(host=host, resolution=Resolution.HOUR, time=when, cpus=64, cpu_percent=10.0,
                               memory_total=1024 * gib, memory_used=100 * gib, vcpus_all=100,
                               memory_allocated_all=int(allocated), storage_capacity=0, storage_allocation=0))
    HostSample.objects.bulk_create(rows, batch_size=2000)
    truth = start + timedelta(days=(1024 - 400) / 8)  # 78 days after the start

    period = {"period": "custom", "start": "2026-01-01", "end": "2026-03-01"}
    rows = list(csv.DictReader(io.StringIO(admin_client.get("/reports/forecast.csv", period).content.decode())))
    row = next(r for r in rows if r["scope"] == "All hosts" and r["resource"] == "Memory allocated")
    assert row["status"] == "forecast", row
    earliest, when, latest = (datetime.fromisoformat(row[k]).replace(tzinfo=UTC)
                              for k in ("earliest", "forecast_date", "latest"))
    assert earliest <= truth.replace(hour=0) + timedelta(days=1) and truth.replace(hour=0) <= latest
    assert abs((when - truth).days) <= 2
    assert (latest - earliest).days <= 10, row  # 60 days of clear growth: a tight range

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

"""Capacity-report bench: 500 guests × 1 year of samples, overview render time (p50/p95).

Seeds (once; reused while the parameters match) a history laid out as retention leaves it:
hourly roll-ups for the whole year, 5-minute roll-ups for the last 90 days, raw samples for the
last 24 h (one every --raw-interval seconds). Then renders each report page several times through
the Django test client (full request: middleware, policy, services, templates) and prints p50/p95
server time and SQL queries per page. No page caching exists: the figures come from the roll-ups.

Printed, not asserted. Run:  .venv/bin/python bench/reports_bench.py [--guests 500 --days 365]
Own database under var/test-bench-reports/ (delete it, or pass --reseed, to seed again).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("VIRTDASH_TEST_ID", "bench-reports")
os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"


def setup_django():
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)


def seed(args) -> dict:
    from django.conf import settings

    from guests.models import GuestSample, HostSample
    from reports.seed import seed_history

    params = {"hosts": args.hosts, "guests": args.guests, "days": args.days, "fine_days": args.fine_days,
              "raw_hours": args.raw_hours, "raw_interval": args.raw_interval, "seed": args.seed}
    marker = Path(settings.DATABASES["default"]["NAME"]).with_suffix(".seeded.json")
    if not args.reseed and marker.exists() and json.loads(marker.read_text()).get("params") == params:
        info = json.loads(marker.read_text())
        print(f"reusing the seeded database ({info['summary']})")
        ensure_daily(args.days)
        return info
    from django.db import connection

    with connection.cursor() as cursor:  # bulk loading only: a big page cache, no fsync
        cursor.execute("PRAGMA cache_size=-1500000")
        cursor.execute("PRAGMA synchronous=OFF")
    started = time.perf_counter()
    result = seed_history(reset=True, log=lambda line: print("  seeding", line, flush=True), **params)
    summary = (f"{result.guests} guests on {args.hosts} hosts, {GuestSample.objects.count():,} guest samples, "
               f"{HostSample.objects.count():,} host samples, seeded in {time.perf_counter() - started:.0f} s")
    info = {"params": params, "summary": summary}
    marker.write_text(json.dumps(info))
    print(summary)
    return info


def ensure_daily(days: int) -> None:
    """Daily per-guest roll-ups (what the watcher hook keeps current) for a database seeded without them."""
    from datetime import UTC, datetime, timedelta

    from reports.models import GuestDay
    from reports.rollup import build_days

    if GuestDay.objects.exists():
        return
    started = time.perf_counter()
    today = datetime.now(UTC).date()
    written = build_days(today - timedelta(days=days), today - timedelta(days=1))
    print(f"built {written:,} daily roll-up rows in {time.perf_counter() - started:.0f} s")


def measure(client, url: str, runs: int) -> tuple[list[float], int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    times = []
    queries = 0
    for _ in range(runs):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get(url)
            times.append(time.perf_counter() - started)
        assert response.status_code == 200, (url, response.status_code)
        queries = len(captured)
    return times, queries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=5)
    parser.add_argument("--guests", type=int, default=500)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--fine-days", type=float, default=90)
    parser.add_argument("--raw-hours", type=float, default=24)
    parser.add_argument("--raw-interval", type=int, default=60)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--reseed", action="store_true")
    parser.add_argument("--all-pages", action="store_true", help="also forecast, right-sizing and breakdown pages")
    args = parser.parse_args()
    setup_django()
    from django.contrib.auth import get_user_model
    from django.test import Client

    seed(args)
    user, _ = get_user_model().objects.get_or_create(username="bench-admin", defaults={"is_superuser": True})
    client = Client()
    client.force_login(user)
    pages = [f"/reports/?period={p}" for p in ("day", "week", "month", "quarter", "year")]
    if args.all_pages:
        pages += ["/reports/forecast/?period=quarter", "/reports/forecast/?period=year",
                  "/reports/rightsizing/?period=day", "/reports/rightsizing/?period=week",
                  "/reports/rightsizing/?period=month", "/reports/rightsizing/?period=quarter",
                  "/reports/rightsizing/?period=year", "/reports/breakdown/?period=month&by=team",
                  "/reports/breakdown/?period=year&by=owner", "/reports/overview.csv?period=year"]
    client.get(pages[0])  # warm-up: imports, template compilation, SQLite page cache
    print(f"\n{'page (admin: sees everything)':52} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'queries':>8}")
    report(client, pages, args.runs)
    lead = restricted_client()
    print(f"\n{'page (grant on one host + one guest elsewhere)':52}")
    report(lead, [f"/reports/?period={p}" for p in ("week", "quarter", "year")] +
           ["/reports/forecast/?period=year", "/reports/rightsizing/?period=year"], args.runs)


def report(client, pages: list[str], runs: int) -> None:
    from reports.stats import percentile

    for url in pages:
        times, queries = measure(client, url, runs)
        ms = [t * 1000 for t in times]
        print(f"{url:52} {percentile(ms, 50):8.0f} {percentile(ms, 95):8.0f} {max(ms):8.0f} {queries:8d}", flush=True)


def restricted_client():
    """A team lead: a viewer grant on the first host and on one guest of another host."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    from core.models import Grant
    from guests.models import Guest
    from hosts.models import Host

    user, _ = get_user_model().objects.get_or_create(username="bench-lead")
    Grant.objects.filter(user=user).delete()
    host = Host.objects.order_by("name").first()
    Grant.objects.create(user=user, role="viewer", host=host)
    Grant.objects.create(user=user, role="viewer", guest=Guest.objects.exclude(host=host).order_by("name").first())
    client = Client()
    client.force_login(user)
    return client


if __name__ == "__main__":
    main()

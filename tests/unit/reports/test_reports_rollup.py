"""Daily per-guest roll-ups: built from hourly samples by the watcher hook and the command, idempotently."""

from datetime import UTC, datetime, timedelta

from django.core.management import call_command

from guests.models import GuestSample, Resolution
from reports.models import GuestDay
from reports.rollup import DailyRollupHooks, build_day
from reports.seed import seed_history


def test_the_watcher_hook_builds_yesterday_once(db):
    result = seed_history(hosts=1, guests=6, days=3, seed=9, fine_days=0, build_daily=False)
    host = result.hosts[0]
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    hooks = DailyRollupHooks()
    hooks.on_tick(host)
    rows = GuestDay.objects.filter(day=yesterday)
    running = GuestSample.objects.filter(resolution=Resolution.HOUR, time__date=yesterday).values("guest").distinct()
    assert rows.count() == running.count() > 0
    day = rows.first()
    hours = [s.cpu_percent / 100 for s in GuestSample.objects.filter(guest_id=day.guest_id, resolution=Resolution.HOUR,
                                                                      time__date=yesterday)]
    assert day.samples == len(hours)
    assert day.cpu_max == max(hours)
    GuestDay.objects.all().delete()
    hooks.on_tick(host)  # checked less than CHECK_SECONDS ago: nothing to do yet
    assert not GuestDay.objects.exists()


def test_rebuilding_a_day_replaces_its_rows(db):
    seed_history(hosts=1, guests=5, days=4, seed=3, fine_days=0, build_daily=False)
    call_command("reports_rollup", "--days", "3")
    first = GuestDay.objects.count()
    call_command("reports_rollup", "--days", "3")
    assert GuestDay.objects.count() == first > 0
    assert build_day(datetime.now(UTC).date()) == 0  # the running day is never rolled up

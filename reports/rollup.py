"""Daily per-guest roll-ups (reports.models.GuestDay) from hourly samples, idempotent.

Run by the watcher (a hook checks about every 10 minutes per host that the last days exist),
by `manage.py reports_rollup` (backfill) and by the seed command.
"""

from __future__ import annotations

import time as clock
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta

from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce

from guests.models import GuestSample, Resolution
from reports import stats
from reports.models import GuestDay

IO_FIELDS = ("disk_read_bps", "disk_write_bps", "net_rx_bps", "net_tx_bps")
CHECK_SECONDS = 600


def io_expression():
    return sum((Coalesce(F(name), Value(0.0)) for name in IO_FIELDS[1:]), Coalesce(F(IO_FIELDS[0]), Value(0.0)))


def _bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, UTC)
    return start, start + timedelta(days=1)


def build_day(day: date, guest_filter: dict | None = None) -> int:
    """(Re)write the GuestDay rows of one ended UTC day; returns how many rows were written."""
    start, end = _bounds(day)
    if end > datetime.now(UTC):
        return 0
    scope = guest_filter or {}
    rows = (GuestSample.objects.filter(resolution=Resolution.HOUR, time__gte=start, time__lt=end, **scope)
            .order_by().annotate(io=io_expression()).values_list("guest_id", "cpu_percent", "memory_used", "io"))
    cpu: dict[int, list[float]] = defaultdict(list)
    mem: dict[int, list[int]] = defaultdict(list)
    io: dict[int, float] = defaultdict(float)
    count: dict[int, int] = defaultdict(int)
    for gid, cpu_pct, used, rate in rows.iterator(5000):
        count[gid] += 1
        if cpu_pct is not None:
            cpu[gid].append(cpu_pct / 100.0)
        if used is not None:
            mem[gid].append(used)
        io[gid] = max(io[gid], rate or 0.0)
    days = [GuestDay(guest_id=gid, day=day, samples=n, cpu_avg=stats.mean(cpu[gid]), cpu_p95=stats.p95(cpu[gid]),
                     cpu_max=max(cpu[gid], default=None), memory_avg=stats.mean(mem[gid]),
                     memory_p95=stats.p95(mem[gid]), memory_max=max(mem[gid], default=None), io_max=io[gid])
            for gid, n in count.items()]
    with transaction.atomic():
        GuestDay.objects.filter(day=day, **(guest_filter or {})).delete()
        GuestDay.objects.bulk_create(days, batch_size=1000)
    return len(days)


def build_days(first: date, last: date, guest_filter: dict | None = None) -> int:
    written = 0
    day = first
    while day <= last:
        written += build_day(day, guest_filter)
        day += timedelta(days=1)
    return written


class DailyRollupHooks:
    """Watcher hook: about every CHECK_SECONDS per host, build yesterday's (and the day before's)
    rows for that host's guests when they are missing."""

    def __init__(self) -> None:
        self.next_check: dict[int, float] = {}

    def on_connected(self, host) -> None: ...

    def on_event(self, host, event) -> None: ...

    def on_disconnected(self, host) -> None: ...

    def on_tick(self, host) -> None:
        now = clock.monotonic()
        if now < self.next_check.get(host.pk, 0.0):
            return
        self.next_check[host.pk] = now + CHECK_SECONDS
        today = datetime.now(UTC).date()
        for back in (2, 1):
            day = today - timedelta(days=back)
            scope = {"guest__host_id": host.pk}
            if not GuestDay.objects.filter(day=day, **scope).exists() and GuestSample.objects.filter(
                    resolution=Resolution.HOUR, time__gte=_bounds(day)[0], time__lt=_bounds(day)[1], **scope).exists():
                build_day(day, scope)


hooks = DailyRollupHooks()

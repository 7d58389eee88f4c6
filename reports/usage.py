"""Per-guest use over a period: right-sizing (idle, oversized, stopped with storage) and breakdowns.

Every figure is over the period's roll-up samples of the user's visible guests: 5-minute up to
2 days, hourly up to 8 days, beyond that the daily per-guest roll-ups (reports.models.GuestDay:
exact averages and maxima; p95 = nearest-rank p95 of the days' p95s). CPU is in host threads
(GuestSample.cpu_percent / 100), memory in bytes; p95 is nearest-rank (reports.stats). Guests
only have samples while they run, so averages are "while running".
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.conf import settings
from django.db.models import Avg, Count

from core.policy import visible_guests
from guests.choices import ACTIVE_STATES
from guests.models import GuestSample, Resolution
from reports import stats
from reports.models import GuestDay
from reports.periods import Period
from reports.rollup import io_expression
from reports.series import pick_resolution
from reports.services import disk_bytes

MIB = 1024**2
UNASSIGNED = "unassigned"
DAILY = 86400  # "resolution" of GuestDay rows
DAILY_SPAN = timedelta(days=8)  # longer periods read GuestDay rows (when they cover the period)


def _setting(name: str, default: float) -> float:
    return float(getattr(settings, name, default))


def thresholds() -> dict[str, float]:
    """Right-sizing thresholds (settings REPORTS_*), shown on the page next to the results."""
    return {
        "idle_cpu_percent": _setting("REPORTS_IDLE_CPU_PERCENT", 2.0),  # p95 CPU below this % of one thread
        "idle_io_bps": _setting("REPORTS_IDLE_IO_BPS", 1024.0),  # and every sample's disk+net I/O below this
        "oversized_fraction": _setting("REPORTS_OVERSIZED_FRACTION", 0.25),  # p95 use below a quarter of it
        "headroom": _setting("REPORTS_HEADROOM", 1.25),  # suggested size = p95 × headroom
    }


@dataclass
class GuestUse:
    """One guest's use over the period."""

    id: int
    name: str
    host: str
    state: str
    owner: str
    tags: list
    vcpus: int
    memory: int  # allocated bytes
    disk_capacity: int
    disk_allocation: int
    samples: int = 0
    cpu_avg: float | None = None  # threads
    cpu_p95: float | None = None
    memory_avg: float | None = None
    memory_p95: float | None = None
    io_max: float | None = None  # highest disk+net bytes/s of any sample
    io_avg: float | None = None
    suggested_vcpus: int | None = None
    suggested_memory: int | None = None

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def frees_vcpus(self) -> int:
        return max(0, self.vcpus - self.suggested_vcpus) if self.suggested_vcpus is not None else 0

    @property
    def frees_memory(self) -> int:
        return max(0, self.memory - self.suggested_memory) if self.suggested_memory is not None else 0


def _inventory(user) -> dict[int, GuestUse]:
    guests = visible_guests(user).select_related("host").order_by("name", "host__name")
    uses = {}
    for g in guests.only("id", "name", "state", "owner", "tags", "vcpus", "memory_kib", "summary", "host__name"):
        capacity, allocation = disk_bytes(g.summary)
        uses[g.pk] = GuestUse(g.pk, g.name, g.host.name, g.state, g.owner, list(g.tags or []), g.vcpus,
                              g.memory_kib * 1024, capacity, allocation)
    return uses


def full_days(period: Period) -> tuple[date, date]:
    """The whole UTC days inside the period: [first, end) (the running day is never included)."""
    first = period.start.date() if period.start.time() == time.min else period.start.date() + timedelta(days=1)
    return first, period.end.date()


def _daily_rows(uses: dict, period: Period):
    """GuestDay rows for the period when it is long and they cover it; else None (read samples)."""
    if period.span <= DAILY_SPAN:
        return None
    first, end = full_days(period)
    days = GuestDay.objects.filter(guest_id__in=list(uses), day__gte=first, day__lt=end)
    first_day = days.order_by("day").values_list("day", flat=True).first()
    if first_day is None:
        return None
    first_hour = (GuestSample.objects.filter(guest_id__in=list(uses), resolution=Resolution.HOUR,
                                             time__gte=datetime.combine(first, time.min, UTC),
                                             time__lt=datetime.combine(end, time.min, UTC))
                  .order_by("time").values_list("time", flat=True).first())
    if first_hour is not None and first_day > first_hour.date() + timedelta(days=1):
        return None  # the daily table starts later than the samples: not built yet for this range
    return days.order_by().values_list("guest_id", "samples", "cpu_avg", "cpu_p95", "memory_avg", "memory_p95",
                                       "io_max")


def _fill_from_days(uses: dict, rows) -> None:
    """Per guest over the days: exact weighted means and max; p95 = nearest-rank p95 of the daily p95s."""
    per: dict[int, list] = defaultdict(list)
    for row in rows:
        per[row[0]].append(row)
    for gid, days in per.items():
        use = uses[gid]
        use.samples = sum(d[1] for d in days)
        weighted = [d for d in days if d[2] is not None]
        use.cpu_avg = sum(d[2] * d[1] for d in weighted) / sum(d[1] for d in weighted) if weighted else None
        use.cpu_p95 = stats.p95([d[3] for d in days if d[3] is not None])
        weighted = [d for d in days if d[4] is not None]
        use.memory_avg = sum(d[4] * d[1] for d in weighted) / sum(d[1] for d in weighted) if weighted else None
        use.memory_p95 = stats.p95([d[5] for d in days if d[5] is not None])
        use.io_max = max(d[6] for d in days)


def guest_averages(user, period: Period) -> tuple[list[GuestUse], int]:
    """Visible guests with average CPU/memory over the period (aggregated by the database)."""
    uses = _inventory(user)
    daily = _daily_rows(uses, period)
    if daily is not None:
        _fill_from_days(uses, daily)
        return list(uses.values()), DAILY
    samples = GuestSample.objects.filter(guest_id__in=list(uses))
    resolution = pick_resolution(samples, period, per_guest=True)
    rows = (samples.filter(resolution=resolution, time__gte=period.start, time__lt=period.end).order_by()
            .values("guest_id").annotate(cpu=Avg("cpu_percent"), mem=Avg("memory_used"), n=Count("id")))
    for row in rows:
        use = uses[row["guest_id"]]
        use.samples = row["n"]
        use.cpu_avg = row["cpu"] / 100.0 if row["cpu"] is not None else None
        use.memory_avg = row["mem"]
    return list(uses.values()), resolution


def guest_usage(user, period: Period) -> tuple[list[GuestUse], int]:
    """Every visible guest with its figures over the period (p95 needs every value), and the resolution read."""
    uses = _inventory(user)
    daily = _daily_rows(uses, period)
    if daily is not None:
        _fill_from_days(uses, daily)
        return list(uses.values()), DAILY
    samples = GuestSample.objects.filter(guest_id__in=list(uses))
    resolution = pick_resolution(samples, period, per_guest=True)
    io_expr = io_expression()
    rows = (samples.filter(resolution=resolution, time__gte=period.start, time__lt=period.end)
            .order_by().annotate(io=io_expr).values_list("guest_id", "cpu_percent", "memory_used", "io"))
    cpu: dict[int, list[float]] = defaultdict(list)
    mem: dict[int, list[float]] = defaultdict(list)
    io: dict[int, list[float]] = defaultdict(list)
    for gid, cpu_pct, mem_used, rate in rows.iterator(5000):
        if cpu_pct is not None:
            cpu[gid].append(cpu_pct / 100.0)
        if mem_used is not None:
            mem[gid].append(mem_used)
        io[gid].append(rate)
    for gid, use in uses.items():
        use.samples = len(io.get(gid, ()))
        if not use.samples:
            continue
        use.cpu_avg, use.cpu_p95 = stats.mean(cpu[gid]), stats.p95(cpu[gid])
        use.memory_avg, use.memory_p95 = stats.mean(mem[gid]), stats.p95(mem[gid])
        use.io_max, use.io_avg = max(io[gid]), stats.mean(io[gid])
    return list(uses.values()), resolution


def is_idle(use: GuestUse, limits: dict) -> bool:
    """Idle: it ran in the period, its p95 CPU stayed under the threshold and no sample showed I/O."""
    return (use.samples > 0 and use.cpu_p95 is not None and use.cpu_p95 * 100.0 < limits["idle_cpu_percent"]
            and (use.io_max or 0.0) < limits["idle_io_bps"])


def suggest(use: GuestUse, limits: dict) -> bool:
    """Set suggested sizes when p95 use is far below the allocation; True when oversized."""
    if not use.samples:
        return False
    oversized = False
    if use.cpu_p95 is not None and use.vcpus > 1 and use.cpu_p95 < use.vcpus * limits["oversized_fraction"]:
        vcpus = max(1, math.ceil(use.cpu_p95 * limits["headroom"]))
        if vcpus < use.vcpus:
            use.suggested_vcpus, oversized = vcpus, True
    if use.memory_p95 is not None and use.memory and use.memory_p95 < use.memory * limits["oversized_fraction"]:
        memory = max(256 * MIB, math.ceil(use.memory_p95 * limits["headroom"] / (256 * MIB)) * 256 * MIB)
        if memory < use.memory:
            use.suggested_memory, oversized = memory, True
    return oversized


@dataclass
class RightSizing:
    period: Period
    resolution: int
    limits: dict
    idle: list[GuestUse]
    oversized: list[GuestUse]
    stopped: list[GuestUse]
    frees_vcpus: int
    frees_memory: int
    idle_vcpus: int
    idle_memory: int
    stopped_storage: int


def right_sizing(user, period: Period) -> RightSizing:
    uses, resolution = guest_usage(user, period)
    limits = thresholds()
    idle = [u for u in uses if is_idle(u, limits)]
    idle_ids = {u.id for u in idle}
    oversized = [u for u in uses if u.id not in idle_ids and suggest(u, limits)]
    oversized.sort(key=lambda u: (-u.frees_memory, -u.frees_vcpus, u.name))
    stopped = [u for u in uses if not u.active and (u.disk_capacity or u.disk_allocation)]
    stopped.sort(key=lambda u: (-u.disk_allocation, -u.disk_capacity, u.name))
    return RightSizing(
        period, resolution, limits, idle, oversized, stopped,
        frees_vcpus=sum(u.frees_vcpus for u in oversized), frees_memory=sum(u.frees_memory for u in oversized),
        idle_vcpus=sum(u.vcpus for u in idle), idle_memory=sum(u.memory for u in idle),
        stopped_storage=sum(u.disk_allocation for u in stopped),
    )


# ----------------------------------------------------------------------------- breakdown

GROUPINGS = {"owner": "Owner", "team": "Team", "tag": "Tag"}


def group_keys(use: GuestUse, by: str) -> list[str]:
    """The groups a guest counts in: its owner; its `team:<name>` tags; or each of its tags."""
    if by == "owner":
        return [use.owner.strip() or UNASSIGNED]
    if by == "team":
        teams = [t.split(":", 1)[1].strip() for t in use.tags if t.lower().startswith("team:")]
        return sorted({t for t in teams if t}) or [UNASSIGNED]
    return sorted({t.strip() for t in use.tags if t.strip()}) or [UNASSIGNED]


@dataclass
class Group:
    name: str
    guests: int = 0
    running: int = 0
    vcpus: int = 0
    memory: int = 0
    disk_capacity: int = 0
    cpu_avg: float = 0.0  # sum of members' averages (threads)
    memory_avg: float = 0.0


def breakdown(user, period: Period, by: str) -> tuple[list[Group], int]:
    """Allocation and average use per owner/team/tag; a guest with several tags counts in each."""
    if by not in GROUPINGS:
        raise ValueError(f"Unknown grouping {by!r}")
    uses, resolution = guest_averages(user, period)
    groups: dict[str, Group] = {}
    for use in uses:
        for key in group_keys(use, by):
            group = groups.setdefault(key, Group(key))
            group.guests += 1
            group.running += use.active
            group.vcpus += use.vcpus
            group.memory += use.memory
            group.disk_capacity += use.disk_capacity
            group.cpu_avg += use.cpu_avg or 0.0
            group.memory_avg += use.memory_avg or 0.0
    ordered = sorted(groups.values(), key=lambda g: (g.name == UNASSIGNED, -g.memory, g.name))
    return ordered, resolution

"""Capacity overview: what the hosts have, what guests are given, what they use.

Sources, chosen so a year of 500 guests renders in well under a second:
- capacity now: `Host.facts` (cpus, memory_total, active pools), else the host's latest sample;
- allocation now: the guest inventory (`Guest` rows: vCPUs, memory, disk capacity in `summary`);
- use over time: `HostSample` roll-ups (5-minute up to a week, hourly beyond) for users who see
  everything and for hosts a user sees entirely; for hosts of which a user sees only some guests,
  the sums of those guests' `GuestSample` roll-ups (numbers never include guests they may not
  see). See reports.series; forecasts are in reports.forecasting.
Statistics are from `reports.stats` (nearest-rank p95, Theil–Sen trends).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import reduce
from operator import or_

from django.conf import settings
from django.db.models import OuterRef, Q, Subquery

from core.policy import global_role, visible_guests, visible_hosts
from guests.allocated import memory_bytes
from guests.choices import ACTIVE_STATES
from guests.models import HostSample, Resolution
from hosts.models import Host
from reports import stats
from reports.periods import Period
from reports.series import (
    TOTAL,
    Series,
    host_values,
    pick_resolution,
    restricted_series,
    total_series,
    visibility_split,
)

GIB = 1024**3


def cpu_overcommit_limit() -> float:
    return float(getattr(settings, "REPORTS_CPU_OVERCOMMIT_LIMIT", 4.0))


def memory_overcommit_limit() -> float:
    return float(getattr(settings, "REPORTS_MEMORY_OVERCOMMIT_LIMIT", 1.0))


def disk_bytes(summary: dict | None) -> tuple[int, int]:
    """(capacity, allocation) in bytes of a guest's disks, as far as the inventory knows them."""
    capacity = allocation = 0
    for disk in (summary or {}).get("disks") or []:
        if (disk.get("device") or "disk") != "disk":
            continue
        capacity += int(disk.get("capacity") or 0)
        allocation += int(disk.get("allocation") or 0)
    return capacity, allocation


# ----------------------------------------------------------------------------- overview


@dataclass
class Figures:
    """One row of the overview: a host or the total."""

    key: object
    name: str
    cpus: int = 0
    memory_total: int = 0
    storage_capacity: int = 0
    storage_allocation: int = 0  # pool allocation: bytes really used on disk
    vcpus_running: int = 0
    vcpus_all: int = 0
    memory_running: int = 0
    memory_all: int = 0
    volume_capacity: int = 0  # capacity promised to guests' disks
    guests_running: int = 0
    guests_all: int = 0
    cpu_now: float | None = None
    memory_now: float | None = None
    cpu_avg: float | None = None
    cpu_p95: float | None = None
    memory_avg: float | None = None
    memory_p95: float | None = None
    samples: int = 0

    @property
    def vcpu_ratio(self):
        return stats.ratio(self.vcpus_all, self.cpus)

    @property
    def vcpu_running_ratio(self):
        return stats.ratio(self.vcpus_running, self.cpus)

    @property
    def memory_ratio(self):
        return stats.ratio(self.memory_all, self.memory_total)

    @property
    def memory_running_ratio(self):
        return stats.ratio(self.memory_running, self.memory_total)

    @property
    def storage_ratio(self):
        return stats.ratio(self.volume_capacity, self.storage_capacity)

    @property
    def storage_used_ratio(self):
        return stats.ratio(self.storage_allocation, self.storage_capacity)


def _host_capacity(host, latest: dict | None) -> tuple[int, int, int, int]:
    facts = host.facts or {}
    pools = [p for p in facts.get("pools") or [] if p.get("active", True)]
    if facts.get("cpus"):
        return (int(facts.get("cpus") or 0), int(facts.get("memory_total") or 0),
                sum(int(p.get("capacity") or 0) for p in pools), sum(int(p.get("allocation") or 0) for p in pools))
    if latest:
        return latest["cpus"], latest["memory_total"], latest["storage_capacity"], latest["storage_allocation"]
    return 0, 0, 0, 0


_LATEST_FIELDS = ("host_id", "time", "cpus", "cpu_percent", "memory_total", "memory_used", "storage_capacity",
                  "storage_allocation")


def latest_host_samples(host_ids: list[int]) -> dict[int, dict]:
    """The newest sample of each host at any resolution, in two queries per resolution whatever the
    number of hosts: the newest time per host (one index probe per host, correlated from Host, not
    from every stored sample), then those rows."""
    best: dict[int, dict] = {}
    if not host_ids:
        return best
    for resolution in (Resolution.RAW, Resolution.FIVE_MINUTES, Resolution.HOUR):
        newest = (HostSample.objects.filter(host_id=OuterRef("pk"), resolution=resolution)
                  .order_by("-time").values("time")[:1])
        times = [(pk, t) for pk, t in Host.objects.filter(pk__in=host_ids).annotate(t=Subquery(newest))
                 .values_list("pk", "t") if t is not None]
        if not times:
            continue
        which = reduce(or_, (Q(host_id=pk, time=t) for pk, t in times))
        for row in HostSample.objects.filter(which, resolution=resolution).values(*_LATEST_FIELDS):
            known = best.get(row["host_id"])
            if known is None or row["time"] > known["time"]:
                best[row["host_id"]] = row
    return best


def host_capacities(hosts) -> dict[int, tuple[int, int, int, int]]:
    """(cpus, memory_total, storage_capacity, storage_allocation) per host, from facts or samples."""
    latest = latest_host_samples([h.pk for h in hosts if not (h.facts or {}).get("cpus")])
    return {h.pk: _host_capacity(h, latest.get(h.pk)) for h in hosts}


def _add_guest(fig: Figures, guest) -> None:
    memory = memory_bytes(guest)
    active = guest.state in ACTIVE_STATES
    fig.guests_all += 1
    fig.vcpus_all += guest.vcpus
    fig.memory_all += memory
    fig.volume_capacity += disk_bytes(guest.summary)[0]
    if active:
        fig.guests_running += 1
        fig.vcpus_running += guest.vcpus
        fig.memory_running += memory


def _fill_period(fig: Figures, series: Series | None) -> None:
    if not series or not series.cpu_used:
        return
    fig.samples = len(series.cpu_used)
    fig.cpu_avg, fig.cpu_p95 = stats.mean(series.cpu_used), stats.p95(series.cpu_used)
    fig.memory_avg, fig.memory_p95 = stats.mean(series.memory_used), stats.p95(series.memory_used)


def sees_everything(user) -> bool:
    return bool(global_role(user))


@dataclass
class Overview:
    period: Period
    resolution: int
    restricted: bool
    hosts: list[Figures]
    total: Figures
    series: dict  # {host_id | TOTAL: Series}
    generated: datetime


def overview(user, period: Period, host_id: int | None = None) -> Overview:
    """Capacity, allocation and use per visible host and in total, for `period`."""
    restricted = not sees_everything(user)
    hosts = list(visible_hosts(user).order_by("name"))
    if host_id is not None:
        hosts = [h for h in hosts if h.pk == host_id]
    host_ids = [h.pk for h in hosts]
    guests = visible_guests(user).filter(host_id__in=host_ids).only(
        "id", "host_id", "state", "vcpus", "memory_kib", "summary", "cpu_percent", "memory_used_kib")
    figures = {h.pk: Figures(h.pk, h.name) for h in hosts}
    total = Figures(TOTAL, "All hosts" if host_id is None else hosts[0].name if hosts else "—")
    now_cpu: dict[int, float] = defaultdict(float)
    now_mem: dict[int, float] = defaultdict(float)
    for guest in guests:
        _add_guest(figures[guest.host_id], guest)
        if guest.state in ACTIVE_STATES:
            now_cpu[guest.host_id] += (guest.cpu_percent or 0.0) / 100.0
            now_mem[guest.host_id] += (guest.memory_used_kib or 0) * 1024
    full, partial = visibility_split(user, host_ids) if restricted else (host_ids, {})
    latest_samples = latest_host_samples(host_ids)
    for host in hosts:
        fig = figures[host.pk]
        latest = latest_samples.get(host.pk)
        fig.cpus, fig.memory_total, fig.storage_capacity, fig.storage_allocation = _host_capacity(host, latest)
        if host.pk in partial:
            fig.cpu_now, fig.memory_now = now_cpu[host.pk], now_mem[host.pk]
        elif latest:
            fig.cpu_now = (latest["cpu_percent"] or 0.0) * latest["cpus"] / 100.0
            fig.memory_now = float(latest["memory_used"] or 0)
    if restricted:
        resolution = pick_resolution(HostSample.objects.filter(host_id__in=host_ids), period)
        series = restricted_series(full, partial, period.start, period.end, resolution, per_host_times=False)
    else:
        resolution = pick_resolution(HostSample.objects.filter(host_id__in=host_ids), period)
        series = host_values(host_ids, period.start, period.end, resolution)
        series[TOTAL] = total_series(host_ids, period.start, period.end, resolution)
    for host in hosts:
        _fill_period(figures[host.pk], series.get(host.pk))
    _sum_into(total, figures.values())
    _fill_period(total, series.get(TOTAL))
    return Overview(period, resolution, restricted, list(figures.values()), total, series, datetime.now(UTC))


_SUMMED = ("cpus", "memory_total", "storage_capacity", "storage_allocation", "vcpus_running", "vcpus_all",
           "memory_running", "memory_all", "volume_capacity", "guests_running", "guests_all")


def _sum_into(total: Figures, rows) -> None:
    rows = list(rows)
    for name in _SUMMED:
        setattr(total, name, sum(getattr(r, name) for r in rows))
    known = [r for r in rows if r.cpu_now is not None]
    if known:
        total.cpu_now = sum(r.cpu_now for r in known)
        total.memory_now = sum(r.memory_now or 0 for r in known)


def chart_points(series: Series, max_points: int = 400) -> dict:
    """Usage and allocation over time for Chart.js, thinned by averaging to at most `max_points`."""
    n = len(series.times)
    step = max(1, -(-n // max_points))
    out: dict = {"t": [], "cpu_used": [], "memory_used": [], "vcpus": [], "memory_allocated": []}
    for i in range(0, n, step):
        j = min(n, i + step)
        out["t"].append(series.times[i].isoformat())
        out["cpu_used"].append(round(stats.mean(series.cpu_used[i:j]), 3))
        out["memory_used"].append(round(stats.mean(series.memory_used[i:j]) / GIB, 3))
        out["memory_allocated"].append(round(stats.mean(series.memory_allocated[i:j]) / GIB, 3))
        out["vcpus"].append(round(stats.mean(series.vcpus[i:j]), 2) if series.vcpus is not None else None)
    return out

"""Figures over time from the sample roll-ups: per host, in total, or summed over some guests.

HostSample roll-ups serve users who see everything and hosts a user sees entirely; GuestSample
sums serve hosts of which a user sees only some guests (see visibility_split).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Count, F, FloatField, Sum, Value
from django.db.models.functions import Coalesce

from core.policy import visible_guests
from guests.models import Guest, GuestSample, HostSample
from reports.periods import Period

TOTAL = "total"


@dataclass
class Series:
    """Figures over time for one scope (a host, or the total), in bytes and CPU threads.

    `None` in a list means the figure is unknown for that scope (restricted users have no host-wide
    vCPU or storage history).
    """

    times: list[datetime] = field(default_factory=list)
    cpu_used: list[float] = field(default_factory=list)  # host threads busy
    memory_used: list[float] = field(default_factory=list)
    vcpus: list[float] | None = field(default_factory=list)  # vCPUs of all defined guests
    memory_allocated: list[float] = field(default_factory=list)  # of all defined guests
    storage_allocation: list[float] | None = field(default_factory=list)
    cpus: list[float] | None = field(default_factory=list)
    memory_total: list[float] | None = field(default_factory=list)
    storage_capacity: list[float] | None = field(default_factory=list)


_HOST_FIELDS = ("host_id", "time", "cpus", "cpu_percent", "memory_total", "memory_used", "vcpus_all",
                "memory_allocated_all", "storage_capacity", "storage_allocation")


def pick_resolution(queryset, period: Period, per_guest: bool = False) -> int:
    """The preferred roll-up for the period, unless the other one covers clearly more of it.

    Two indexed "first row" look-ups; retention (or a short seeded history) can leave the finer
    table covering only the end of a long period.
    """
    preferred, other = period.resolutions(per_guest)
    in_range = queryset.filter(time__gte=period.start, time__lt=period.end).order_by("time")
    first = in_range.filter(resolution=preferred).values_list("time", flat=True).first()
    first_other = in_range.filter(resolution=other).values_list("time", flat=True).first()
    if first is None:
        return other if first_other is not None else preferred
    if first_other is not None and first_other < first - timedelta(hours=1):
        return other
    return preferred


def host_series(host_ids: list[int], start: datetime, end: datetime, resolution: int, *,
                per_host: bool = True) -> dict:
    """{host_id | TOTAL: Series} from HostSample roll-ups; the total sums hosts bucket by bucket."""
    out: dict = {TOTAL: total_series(host_ids, start, end, resolution)}
    if not per_host:
        return out
    rows = (HostSample.objects.filter(host_id__in=host_ids, resolution=resolution, time__gte=start, time__lt=end)
            .order_by("time").values_list(*_HOST_FIELDS))
    for host_id, when, cpus, cpu_pct, mem_total, mem_used, vcpus, mem_alloc, st_cap, st_alloc in rows.iterator(4000):
        series = out.get(host_id)
        if series is None:
            series = out[host_id] = Series()
        _append(series, when, ((cpu_pct or 0.0) * cpus / 100.0, float(mem_used or 0), float(vcpus), float(mem_alloc),
                               float(st_alloc), float(cpus), float(mem_total), float(st_cap)))
    return out


def host_values(host_ids: list[int], start: datetime, end: datetime, resolution: int) -> dict:
    """{host_id: Series with cpu_used and memory_used only} — no times (no datetime parsing): per-host avg/p95."""
    out: dict = {}
    rows = (HostSample.objects.filter(host_id__in=host_ids, resolution=resolution, time__gte=start, time__lt=end)
            .order_by().values_list("host_id", "cpus", "cpu_percent", "memory_used"))
    for host_id, cpus, cpu_pct, mem_used in rows.iterator(8000):
        series = out.get(host_id)
        if series is None:
            series = out[host_id] = Series(vcpus=None, storage_allocation=None, cpus=None, memory_total=None,
                                           storage_capacity=None)
        series.cpu_used.append((cpu_pct or 0.0) * cpus / 100.0)
        series.memory_used.append(float(mem_used or 0))
    return out


def _total_sum(expression):
    return Sum(expression, output_field=FloatField())


def total_series(host_ids: list[int], start: datetime, end: datetime, resolution: int) -> Series:
    """The hosts' figures summed bucket by bucket by the database (one row per bucket)."""
    rows = (HostSample.objects.filter(host_id__in=host_ids, resolution=resolution, time__gte=start, time__lt=end)
            .values("time").order_by("time").annotate(
                cpu=_total_sum(Coalesce(F("cpu_percent"), Value(0.0)) * F("cpus") / Value(100.0)),
                mem=_total_sum(Coalesce(F("memory_used"), Value(0))), vcpus=_total_sum(F("vcpus_all")),
                alloc=_total_sum(F("memory_allocated_all")), st_alloc=_total_sum(F("storage_allocation")),
                cpus=_total_sum(F("cpus")), mem_total=_total_sum(F("memory_total")),
                st_cap=_total_sum(F("storage_capacity")))
            .values_list("time", "cpu", "mem", "vcpus", "alloc", "st_alloc", "cpus", "mem_total", "st_cap"))
    series = Series()
    for when, *values in rows:
        _append(series, when, [float(v or 0) for v in values])
    return series


def _append(series: Series, when: datetime, values) -> None:
    series.times.append(when)
    for name, value in zip(("cpu_used", "memory_used", "vcpus", "memory_allocated", "storage_allocation", "cpus",
                            "memory_total", "storage_capacity"), values, strict=True):
        target = getattr(series, name)
        if target is not None:
            target.append(value)


def _guest_series() -> Series:
    return Series(vcpus=None, storage_allocation=None, cpus=None, memory_total=None, storage_capacity=None)


def guest_sum_series(guest_ids, start: datetime, end: datetime, resolution: int) -> dict:
    """{host_id | TOTAL: Series}: some guests' samples summed bucket by bucket, per host and in total."""
    rows = (GuestSample.objects.filter(guest_id__in=guest_ids, resolution=resolution, time__gte=start, time__lt=end)
            .values("time", "guest__host_id").order_by("time")
            .annotate(cpu=Sum("cpu_percent"), mem=Sum("memory_used"), alloc=Sum("memory"))
            .values_list("time", "guest__host_id", "cpu", "mem", "alloc"))
    out: dict = {TOTAL: _guest_series()}
    total = out[TOTAL]
    for when, host_id, cpu, mem, alloc in rows:
        figures = ((cpu or 0.0) / 100.0, float(mem or 0), float(alloc or 0))
        series = out.get(host_id)
        if series is None:
            series = out[host_id] = _guest_series()
        _append_guest(series, when, figures)
        if total.times and total.times[-1] == when:
            total.cpu_used[-1] += figures[0]
            total.memory_used[-1] += figures[1]
            total.memory_allocated[-1] += figures[2]
        else:
            _append_guest(total, when, figures)
    return out


def _append_guest(series: Series, when: datetime, figures: tuple[float, float, float]) -> None:
    series.times.append(when)
    series.cpu_used.append(figures[0])
    series.memory_used.append(figures[1])
    series.memory_allocated.append(figures[2])


def merge_totals(parts: list[Series]) -> Series:
    """Sum total series bucket by bucket; host-wide figures survive only if every part has them."""
    parts = [p for p in parts if p is not None]
    if len(parts) == 1:
        return parts[0]
    merged: dict[datetime, list[float]] = {}
    for part in parts:
        for i, when in enumerate(part.times):
            bucket = merged.setdefault(when, [0.0, 0.0, 0.0])
            bucket[0] += part.cpu_used[i]
            bucket[1] += part.memory_used[i]
            bucket[2] += part.memory_allocated[i]
    out = _guest_series()
    for when in sorted(merged):
        _append_guest(out, when, tuple(merged[when]))
    return out


def visibility_split(user, host_ids: list[int]) -> tuple[list[int], dict[int, list[int]]]:
    """(hosts whose every guest the user sees, {host_id: visible guest ids} on the other hosts).

    Hosts seen entirely are reported from their host samples (as for admins): cheap and
    complete. On the others only the visible guests' own samples are summed.
    """
    visible: dict[int, list[int]] = defaultdict(list)
    for gid, hid in visible_guests(user).filter(host_id__in=host_ids).values_list("id", "host_id"):
        visible[hid].append(gid)
    counts = dict(Guest.objects.filter(host_id__in=host_ids).order_by().values("host_id")
                  .annotate(n=Count("id")).values_list("host_id", "n"))
    full = [hid for hid in host_ids if len(visible.get(hid, ())) == counts.get(hid, 0)]
    return full, {hid: ids for hid, ids in visible.items() if hid not in full}


def restricted_series(full: list[int], partial: dict[int, list[int]], start: datetime, end: datetime,
                      resolution: int, *, per_host_times: bool) -> dict:
    """{host_id | TOTAL: Series} for a user restricted by grants (see visibility_split)."""
    out: dict = {}
    totals = []
    if full:
        if per_host_times:
            out.update(host_series(full, start, end, resolution))
        else:
            out.update(host_values(full, start, end, resolution))
            out[TOTAL] = total_series(full, start, end, resolution)
        totals.append(out.pop(TOTAL))
    if partial:
        sums = guest_sum_series([g for ids in partial.values() for g in ids], start, end, resolution)
        totals.append(sums.pop(TOTAL))
        out.update(sums)
    out[TOTAL] = merge_totals(totals) if totals else _guest_series()
    return out

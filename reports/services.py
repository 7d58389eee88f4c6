"""Capacity overview and forecasts: what the hosts have, what guests are given, what they use.

Sources, chosen so a year of 500 guests renders in well under a second:
- capacity now: `Host.facts` (cpus, memory_total, active pools), else the host's latest sample;
- allocation now: the guest inventory (`Guest` rows: vCPUs, memory, disk capacity in `summary`);
- use over time: `HostSample` roll-ups (5-minute up to a week, hourly beyond) for users who see
  everything; for users restricted by grants, the sums of their visible guests' `GuestSample`
  roll-ups (so the numbers never include guests they may not see).
Statistics are from `reports.stats` (nearest-rank p95, Theil–Sen trends).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db.models import Count, F, FloatField, Q, Sum, Value
from django.db.models.functions import Coalesce

from core.policy import global_role, visible_guests, visible_hosts
from guests.choices import ACTIVE_STATES
from guests.models import Guest, GuestSample, HostSample, Resolution
from reports import stats
from reports.periods import Period

GIB = 1024**3
TOTAL = "total"
FORECAST_MIN_DAYS = 30  # trends look back at least this far, whatever the period
FORECAST_MAX_DAYS = 180  # and at most this far (daily points: ≤ 180 → ≤ 16k pair slopes)


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


# ----------------------------------------------------------------------------- series


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


def _pick_resolution(queryset, period: Period, per_guest: bool = False) -> int:
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


def latest_host_sample(host_id: int) -> dict | None:
    """The newest sample of a host at any resolution (each lookup walks the unique index)."""
    best = None
    for resolution in (Resolution.RAW, Resolution.FIVE_MINUTES, Resolution.HOUR):
        row = (HostSample.objects.filter(host_id=host_id, resolution=resolution).order_by("-time")
               .values("time", "cpus", "cpu_percent", "memory_total", "memory_used", "storage_capacity",
                       "storage_allocation").first())
        if row and (best is None or row["time"] > best["time"]):
            best = row
    return best


def _add_guest(fig: Figures, guest) -> None:
    memory = guest.memory_kib * 1024
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
    for host in hosts:
        fig = figures[host.pk]
        latest = latest_host_sample(host.pk)
        fig.cpus, fig.memory_total, fig.storage_capacity, fig.storage_allocation = _host_capacity(host, latest)
        if host.pk in partial:
            fig.cpu_now, fig.memory_now = now_cpu[host.pk], now_mem[host.pk]
        elif latest:
            fig.cpu_now = (latest["cpu_percent"] or 0.0) * latest["cpus"] / 100.0
            fig.memory_now = float(latest["memory_used"] or 0)
    if restricted:
        resolution = _pick_resolution(HostSample.objects.filter(host_id__in=host_ids), period)
        series = restricted_series(full, partial, period.start, period.end, resolution, per_host_times=False)
    else:
        resolution = _pick_resolution(HostSample.objects.filter(host_id__in=host_ids), period)
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


# ----------------------------------------------------------------------------- forecasts


@dataclass(frozen=True)
class Resource:
    key: str
    label: str
    unit: str  # "threads" | "bytes" | "vcpus"
    series_field: str
    daily: str  # "p95" | "mean" | "max": how a day's samples become the day's point
    limit_field: str
    limit_factor: object  # a float, or a callable returning one (settings)
    host_wide: bool  # needs host samples (not available to restricted users)


RESOURCES = [
    Resource("cpu_use", "CPU use (daily p95)", "threads", "cpu_used", "p95", "cpus", 1.0, False),
    Resource("memory_use", "Memory use (daily p95)", "bytes", "memory_used", "p95", "memory_total", 1.0, False),
    Resource("vcpu_alloc", "vCPUs allocated", "vcpus", "vcpus", "mean", "cpus", cpu_overcommit_limit, True),
    Resource("memory_alloc", "Memory allocated", "bytes", "memory_allocated", "mean", "memory_total",
             memory_overcommit_limit, False),
    Resource("storage", "Storage used (pool allocation)", "bytes", "storage_allocation", "max", "storage_capacity",
             1.0, True),
]


def daily_points(times: list[datetime], values: list[float], how: str,
                 window: tuple[datetime, datetime] | None = None) -> tuple[list[float], list[float]]:
    """Collapse samples to one point per UTC day: x = day number (days since the epoch, at noon).

    Days cut by the window (the running day, a first day starting mid-day) are left out: their
    p95 or maximum would be that of a few hours and bend the trend.
    """
    days: dict[int, list[float]] = defaultdict(list)
    for when, value in zip(times, values, strict=True):
        days[int(when.timestamp() // 86400)].append(value)
    if window:
        first, last = window[0].timestamp() / 86400, window[1].timestamp() / 86400
        days = {d: v for d, v in days.items() if d >= first and d + 1 <= last}
    xs, ys = [], []
    for day in sorted(days):
        bucket = days[day]
        xs.append(day + 0.5)
        ys.append(stats.p95(bucket) if how == "p95" else max(bucket) if how == "max" else stats.mean(bucket))
    return xs, ys


def day_to_datetime(x: float) -> datetime | None:
    """Day number → datetime; None for days no calendar holds (absurd extrapolations)."""
    try:
        return datetime.fromtimestamp(x * 86400, UTC)
    except (OverflowError, OSError, ValueError):
        return None


@dataclass
class ResourceForecast:
    resource: Resource
    scope: object
    scope_name: str
    limit: float | None
    current: float | None
    result: stats.Forecast | None
    xs: list[float]
    ys: list[float]

    @property
    def when(self):
        return day_to_datetime(self.result.when) if self.result and self.result.when is not None else None

    @property
    def earliest(self):
        return day_to_datetime(self.result.earliest) if self.result and self.result.earliest is not None else None

    @property
    def latest(self):
        return day_to_datetime(self.result.latest) if self.result and self.result.latest is not None else None

    @property
    def status(self) -> str:
        return self.result.status if self.result else stats.ForecastStatus.NOT_ENOUGH_DATA

    @property
    def reason(self) -> str:
        return self.result.reason if self.result else "Not available for your view (needs host-wide figures)."

    def chart(self, horizon_days: int = 120) -> dict:
        """Points, the fitted line and its band from the first day to `horizon_days` after the last."""
        trend = self.result.trend if self.result else None
        out = {"key": self.resource.key, "label": self.resource.label, "unit": self.resource.unit,
               "limit": self.limit, "points": [[day_to_datetime(x).date().isoformat(), y]  # observed days
                                               for x, y in zip(self.xs, self.ys, strict=True)],
               "fit": [], "low": [], "high": []}
        if trend and self.xs:
            last = self.xs[-1]
            end = last + horizon_days
            if self.result.when is not None:
                end = min(max(end, self.result.when + 7), last + 2 * 365)
            for x in (self.xs[0], last, end):
                day = day_to_datetime(x).date().isoformat()  # end ≤ last + 2 years: always a date
                out["fit"].append([day, trend.at(x)])
                out["low"].append([day, trend.low_at(x)])
                out["high"].append([day, trend.high_at(x)])
        return out


def _limit(resource: Resource, series: Series) -> float | None:
    values = getattr(series, resource.limit_field)
    if not values:
        return None
    factor = resource.limit_factor() if callable(resource.limit_factor) else resource.limit_factor
    return values[-1] * factor


def forecast_series(resource: Resource, series: Series, scope, name: str, capacity: float | None = None,
                    now: datetime | None = None, window: tuple[datetime, datetime] | None = None) -> ResourceForecast:
    values = getattr(series, resource.series_field)
    limit = _limit(resource, series)
    if limit is None and capacity is not None:
        factor = resource.limit_factor() if callable(resource.limit_factor) else resource.limit_factor
        limit = capacity * factor
    if values is None or limit is None:
        return ResourceForecast(resource, scope, name, limit, None, None, [], [])
    xs, ys = daily_points(series.times, values, resource.daily, window)
    today = (now or datetime.now(UTC)).timestamp() / 86400
    result = stats.forecast(xs, ys, limit, now=max(today, xs[-1] if xs else today))
    return ResourceForecast(resource, scope, name, limit, ys[-1] if ys else None, result, xs, ys)


def trend_window(period: Period) -> tuple[datetime, datetime]:
    days = min(max(period.span.days, FORECAST_MIN_DAYS), FORECAST_MAX_DAYS)
    return period.end - timedelta(days=days), period.end


def forecasts(user, period: Period, *, per_host: bool = True, only: tuple[str, ...] | None = None) -> dict:
    """{scope: [ResourceForecast]} for the total and (optionally) each visible host.

    Trends read hourly roll-ups over at least FORECAST_MIN_DAYS and at most FORECAST_MAX_DAYS
    ending with the period, one point per day (daily p95 for use, mean for allocation).
    """
    start, end = trend_window(period)
    restricted = not sees_everything(user)
    hosts = list(visible_hosts(user).order_by("name"))
    names = {h.pk: h.name for h in hosts}
    capacity = {}
    if restricted:
        for host in hosts:
            cpus, memory, _, _ = _host_capacity(host, latest_host_sample(host.pk))
            capacity[host.pk] = {"cpus": cpus, "memory_total": memory}
        capacity[TOTAL] = {k: sum(c[k] for c in capacity.values()) for k in ("cpus", "memory_total")}
        full, partial = visibility_split(user, list(names))
        series = restricted_series(full, partial, start, end, Resolution.HOUR, per_host_times=per_host)
        if not per_host:
            series = {TOTAL: series[TOTAL]}
    else:
        series = host_series([h.pk for h in hosts], start, end, Resolution.HOUR, per_host=per_host)
    if per_host:
        for host in hosts:
            series.setdefault(host.pk, Series())
    out: dict = {}
    for scope, data in series.items():
        name = "All hosts" if scope == TOTAL else names.get(scope, str(scope))
        rows = []
        for resource in RESOURCES:
            if only and resource.key not in only:
                continue
            if resource.host_wide and getattr(data, resource.series_field) is None:
                rows.append(ResourceForecast(resource, scope, name, None, None, None, [], []))
                continue
            cap = capacity.get(scope, {}).get(resource.limit_field) if restricted else None
            rows.append(forecast_series(resource, data, scope, name, cap, end, (start, end)))
        out[scope] = rows
    ordered = {TOTAL: out.pop(TOTAL)} if TOTAL in out else {}
    ordered.update(sorted(out.items(), key=lambda item: names.get(item[0], "")))
    return ordered


def visible_guest_filter(user) -> Q:
    """A Q on GuestSample restricting to the user's guests (all of them for global roles)."""
    if sees_everything(user):
        return Q()
    return Q(guest_id__in=visible_guests(user).values("id"))

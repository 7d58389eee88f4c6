"""Trends and forecasts per resource: daily points, Theil–Sen (reports.stats), limits from capacity."""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from core.policy import visible_hosts
from guests.models import Resolution
from reports import stats
from reports.periods import Period
from reports.series import TOTAL, Series, host_series, restricted_series, visibility_split
from reports.services import (
    cpu_overcommit_limit,
    host_capacities,
    memory_overcommit_limit,
    sees_everything,
)

FORECAST_MIN_DAYS = 30  # trends look back at least this far, whatever the period
FORECAST_MAX_DAYS = 180  # and at most this far (daily points: ≤ 180 → ≤ 16k pair slopes)


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


def _slice(series: Series, start: datetime, end: datetime) -> Series:
    """The part of a series in [start, end) (times are sorted)."""
    lo, hi = bisect_left(series.times, start), bisect_left(series.times, end)
    out = Series(times=series.times[lo:hi])
    for name in ("cpu_used", "memory_used", "vcpus", "memory_allocated", "storage_allocation", "cpus",
                 "memory_total", "storage_capacity"):
        values = getattr(series, name)
        setattr(out, name, None if values is None else values[lo:hi])
    return out


def forecasts(user, period: Period, *, per_host: bool = True, only: tuple[str, ...] | None = None,
              total: Series | None = None, total_resolution: int | None = None) -> dict:
    """{scope: [ResourceForecast]} for the total and (optionally) each visible host.

    Trends read hourly roll-ups over at least FORECAST_MIN_DAYS and at most FORECAST_MAX_DAYS
    ending with the period, one point per day (daily p95 for use, mean for allocation). A caller
    that already holds the hourly total over the period (the overview) passes it as `total`.
    """
    start, end = trend_window(period)
    restricted = not sees_everything(user)
    hosts = list(visible_hosts(user).order_by("name"))
    names = {h.pk: h.name for h in hosts}
    capacity = {}
    reuse = (total is not None and not per_host and total_resolution == Resolution.HOUR
             and start >= period.start and end <= period.end)
    if restricted:
        for host_id, (cpus, memory, _, _) in host_capacities(hosts).items():
            capacity[host_id] = {"cpus": cpus, "memory_total": memory}
        capacity[TOTAL] = {k: sum(c[k] for c in capacity.values()) for k in ("cpus", "memory_total")}
    if reuse:
        series = {TOTAL: _slice(total, start, end)}
    elif restricted:
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

"""Capacity report pages and their CSV exports: parse → policy → one service call → render.

Every page is read-only (GET) and every figure comes from services that restrict to
core.policy.visible_hosts/visible_guests, so viewers and users with grants see only their share.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import render
from django.views.decorators.http import require_safe

from core.policy import visible_hosts
from guests.models import Resolution
from reports import exports, forecasting, services, usage
from reports.exports import csv_response
from reports.periods import PERIODS, Period, PeriodError, period_from
from reports.series import TOTAL, Series

GIB = 1024**3
RESOLUTION_WORDS = {Resolution.RAW: "raw", Resolution.FIVE_MINUTES: "5-minute", Resolution.HOUR: "hourly",
                    usage.DAILY: "daily (per-guest daily roll-ups of hourly)"}


def _period(request) -> Period:
    try:
        return period_from(request.GET)
    except PeriodError as exc:
        messages.error(request, str(exc))
        return period_from({})


def _host_id(request) -> int | None:
    raw = request.GET.get("host") or ""
    if not raw:
        return None
    if not raw.isdigit() or not visible_hosts(request.user).filter(pk=int(raw)).exists():
        raise Http404("No such host.")
    return int(raw)


def _context(request, period: Period, **extra) -> dict:
    query = period.query()
    return {"period": period, "periods": [(k, label) for k, (label, _) in PERIODS.items()], "period_query": query,
            "resolution_label": RESOLUTION_WORDS.get(extra.pop("resolution", period.resolution), "sample"),
            "hosts": visible_hosts(request.user).order_by("name"),
            "restricted": not services.sees_everything(request.user), **extra}


@require_safe
def overview(request):
    period = _period(request)
    host_id = _host_id(request)
    data = services.overview(request.user, period, host_id)
    rows = forecasting.forecasts(request.user, period, per_host=host_id is not None,
                                 total=data.series.get(TOTAL), total_resolution=data.resolution)
    total_forecasts = rows.get(host_id if host_id is not None else TOTAL, [])
    chart = {
        "hosts": [{"name": f.name, "cpus": f.cpus, "vcpus_running": f.vcpus_running,
                   "vcpus_stopped": f.vcpus_all - f.vcpus_running, "memory_total": f.memory_total / GIB,
                   "memory_running": f.memory_running / GIB, "memory_stopped": (f.memory_all - f.memory_running) / GIB,
                   "storage_capacity": f.storage_capacity / GIB, "storage_used": f.storage_allocation / GIB,
                   "volume_capacity": f.volume_capacity / GIB} for f in data.hosts],
        "usage": services.chart_points(data.series.get(TOTAL) or Series()),
        "capacity": {"cpus": data.total.cpus, "memory_total": data.total.memory_total / GIB},
        "forecast": _headline_forecast(total_forecasts),
    }
    return render(request, "reports/overview.html", _context(
        request, period, section="overview", data=data, forecasts=total_forecasts, chart=chart,
        soonest=sorted((f for f in total_forecasts if f.when), key=lambda f: f.when)[:4],
        resolution=data.resolution, host_id=host_id))


def _headline_forecast(rows) -> dict | None:
    """The chart of the resource that runs out first (memory allocation when none has a date)."""
    dated = [r for r in rows if r.when is not None]
    pick = min(dated, key=lambda r: r.when) if dated else next((r for r in rows if r.resource.key == "memory_alloc"),
                                                                None)
    return _forecast_chart(pick) if pick else None


def _forecast_chart(row) -> dict:
    chart = row.chart()
    scale = GIB if row.resource.unit == "bytes" else 1
    for key in ("points", "fit", "low", "high"):
        chart[key] = [[d, round(v / scale, 3)] for d, v in chart[key]]
    chart["limit"] = round(row.limit / scale, 3) if row.limit is not None else None
    chart["unit"] = "GiB" if scale == GIB else row.resource.unit
    chart["scope"] = row.scope_name
    chart["status"] = row.status
    chart["when"] = row.when.date().isoformat() if row.when else None
    chart["earliest"] = row.earliest.date().isoformat() if row.earliest else None
    chart["latest"] = row.latest.date().isoformat() if row.latest else None
    return chart


@require_safe
def overview_csv(request):
    period = _period(request)
    data = services.overview(request.user, period, _host_id(request))
    return csv_response(f"capacity-{period.key}.csv", exports.OVERVIEW_HEADER, exports.overview_rows(data, period))


@require_safe
def forecast(request):
    period = _period(request)
    rows = {str(scope): items for scope, items in forecasting.forecasts(request.user, period).items()}
    charts = {scope: [_forecast_chart(r) for r in items if r.result and r.result.trend] for scope, items in
              rows.items()}
    window = forecasting.trend_window(period)
    return render(request, "reports/forecast.html", _context(
        request, period, section="forecast", rows=rows, charts=charts, window=window, resolution=Resolution.HOUR,
        cpu_limit=f"{services.cpu_overcommit_limit():g}"))


def _day(value) -> str:
    return value.date().isoformat() if value else ""


@require_safe
def forecast_csv(request):
    period = _period(request)
    rows = forecasting.forecasts(request.user, period)
    header = ["scope", "resource", "unit", "current", "limit", "status", "forecast_date", "earliest", "latest",
              "slope_per_day", "slope_low", "slope_high", "days_of_history", "reason"]
    out = []
    for items in rows.values():
        for r in items:
            trend = r.result.trend if r.result else None
            out.append([r.scope_name, r.resource.label, r.resource.unit, r.current, r.limit, r.status, _day(r.when),
                        _day(r.earliest), _day(r.latest), trend.slope if trend else None,
                        trend.slope_low if trend else None, trend.slope_high if trend else None, len(r.xs), r.reason])
    return csv_response(f"forecast-{period.key}.csv", header, out)


@require_safe
def rightsizing(request):
    period = _period(request)
    result = usage.right_sizing(request.user, period)
    return render(request, "reports/rightsizing.html", _context(
        request, period, section="rightsizing", rs=result, resolution=result.resolution))


RS_TABLES = {"idle", "oversized", "stopped"}


@require_safe
def rightsizing_csv(request):
    period = _period(request)
    table = request.GET.get("table", "oversized")
    if table not in RS_TABLES:
        raise Http404("No such table.")
    result = usage.right_sizing(request.user, period)
    header = ["guest", "host", "state", "owner", "tags", "vcpus", "memory_bytes", "cpu_avg_threads",
              "cpu_p95_threads", "memory_used_avg_bytes", "memory_used_p95_bytes", "io_max_bps", "disk_capacity_bytes",
              "disk_allocation_bytes", "suggested_vcpus", "suggested_memory_bytes", "frees_vcpus", "frees_memory_bytes",
              "samples"]
    rows = [[u.name, u.host, u.state, u.owner, " ".join(u.tags), u.vcpus, u.memory, u.cpu_avg, u.cpu_p95,
             u.memory_avg, u.memory_p95, u.io_max, u.disk_capacity, u.disk_allocation, u.suggested_vcpus,
             u.suggested_memory, u.frees_vcpus, u.frees_memory, u.samples] for u in getattr(result, table)]
    return csv_response(f"rightsizing-{table}-{period.key}.csv", header, rows)


def _grouping(request) -> str:
    by = request.GET.get("by", "owner")
    if by not in usage.GROUPINGS:
        raise Http404("No such grouping.")
    return by


@require_safe
def breakdown(request):
    period = _period(request)
    by = _grouping(request)
    groups, resolution = usage.breakdown(request.user, period, by)
    totals = {"guests": sum(g.guests for g in groups)}
    return render(request, "reports/breakdown.html", _context(
        request, period, section="breakdown", groups=groups, by=by, groupings=usage.GROUPINGS, totals=totals,
        resolution=resolution))


@require_safe
def breakdown_csv(request):
    period = _period(request)
    by = _grouping(request)
    groups, _ = usage.breakdown(request.user, period, by)
    header = [by, "guests", "running", "vcpus", "memory_bytes", "disk_capacity_bytes", "cpu_avg_threads",
              "memory_used_avg_bytes"]
    rows = [[g.name, g.guests, g.running, g.vcpus, g.memory, g.disk_capacity, g.cpu_avg, g.memory_avg]
            for g in groups]
    return csv_response(f"breakdown-{by}-{period.key}.csv", header, rows)

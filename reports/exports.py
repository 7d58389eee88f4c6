"""CSV exports: the csv module for quoting, and a guard against formula injection.

Spreadsheet programs run a cell that starts with = + - @ (or a tab/CR that hides one) as a
formula (OWASP "CSV injection"); such text cells get a leading apostrophe. Numbers are written
as numbers (a negative number is data, not a formula).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

from django.http import HttpResponse

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value) -> object:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return round(value, 4) if isinstance(value, float) else value
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def write_csv(target, header: Sequence[str], rows: Iterable[Sequence]) -> None:
    writer = csv.writer(target)
    writer.writerow([safe_cell(h) for h in header])
    for row in rows:
        writer.writerow([safe_cell(v) for v in row])


def csv_response(filename: str, header: Sequence[str], rows: Iterable[Sequence]) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    write_csv(response, header, rows)
    return response


def csv_text(header: Sequence[str], rows: Iterable[Sequence]) -> str:
    out = io.StringIO()
    write_csv(out, header, rows)
    return out.getvalue()


OVERVIEW_HEADER = [
    "host", "cpu_threads", "vcpus_running", "vcpus_all", "vcpu_overcommit", "cpu_used_now_threads",
    "cpu_used_avg_threads", "cpu_used_p95_threads", "memory_total_bytes", "memory_allocated_running_bytes",
    "memory_allocated_all_bytes", "memory_overcommit", "memory_used_now_bytes", "memory_used_avg_bytes",
    "memory_used_p95_bytes", "storage_capacity_bytes", "pool_allocation_bytes", "volume_capacity_bytes",
    "storage_overcommit", "guests_running", "guests_all", "samples", "period_start", "period_end"]


def overview_rows(data, period) -> list[list]:
    """One row per host and the total: the capacity CSV (page download and e-mail attachment)."""
    return [[f.name, f.cpus, f.vcpus_running, f.vcpus_all, f.vcpu_ratio, f.cpu_now, f.cpu_avg, f.cpu_p95,
             f.memory_total, f.memory_running, f.memory_all, f.memory_ratio, f.memory_now, f.memory_avg,
             f.memory_p95, f.storage_capacity, f.storage_allocation, f.volume_capacity, f.storage_ratio,
             f.guests_running, f.guests_all, f.samples, period.start.isoformat(), period.end.isoformat()]
            for f in [*data.hosts, data.total]]

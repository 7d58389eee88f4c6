"""Usage samples: rates from two bulk reads, host capacity, roll-ups and retention.

The watcher keeps the previous bulk read of each host in memory; a sample is the difference
between two reads divided by the time between them. Inactive guests get no sample: libvirt
reports bogus cpu figures for shut-off guests (shared/ENVIRONMENT.md).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from guests.allocated import allocated
from guests.choices import ACTIVE_STATES, state_from_libvirt
from guests.models import Guest, GuestEvent, GuestSample, HostSample, Resolution
from hosts.models import Host
from hosts.virt.stats import DomainStats, HostRead

RETENTION = {
    Resolution.RAW: timedelta(hours=24),
    Resolution.FIVE_MINUTES: timedelta(days=90),
    Resolution.HOUR: timedelta(days=730),
}
EVENT_RETENTION = timedelta(days=90)
GUEST_FIGURES = ("cpu_percent", "memory_used", "memory", "disk_read_bps", "disk_write_bps", "net_rx_bps",
                 "net_tx_bps")
HOST_FIGURES = ("cpus", "cpu_percent", "memory_total", "memory_used", "guests_running", "guests_defined",
                "vcpus_running", "vcpus_all", "memory_allocated_running", "memory_allocated_all",
                "storage_capacity", "storage_allocation")


def _rate(new: int | None, old: int | None, seconds: float) -> float | None:
    if new is None or old is None or seconds <= 0 or new < old:
        return None  # counters reset (guest restarted): no figure rather than a negative one
    return (new - old) / seconds


def guest_figures(now_read: DomainStats, before: DomainStats | None, seconds: float) -> dict:
    """One guest's sample from two reads `seconds` apart (the first read gives no rates)."""
    old = before
    cpu = _rate(now_read.cpu_time_ns, old.cpu_time_ns if old else None, seconds)
    memory = now_read.memory_kib * 1024 if now_read.memory_kib is not None else None
    return {
        "cpu_percent": round(cpu / 1e7, 2) if cpu is not None else None,  # ns per s → % of one thread
        "memory_used": now_read.memory_used_bytes, "memory": memory,
        "disk_read_bps": _rate(now_read.disk_read_bytes, old.disk_read_bytes if old else None, seconds),
        "disk_write_bps": _rate(now_read.disk_write_bytes, old.disk_write_bytes if old else None, seconds),
        "net_rx_bps": _rate(now_read.net_rx_bytes, old.net_rx_bytes if old else None, seconds),
        "net_tx_bps": _rate(now_read.net_tx_bytes, old.net_tx_bytes if old else None, seconds),
    }


def record(host: Host, read: HostRead, previous: HostRead | None, now: datetime | None = None) -> int:
    """Store one raw sample per active guest (and one for the host); returns the guest count."""
    now = now or timezone.now()
    seconds = read.monotonic - previous.monotonic if previous else 0.0
    rows = {uuid: (pk, cpu, mem) for uuid, pk, cpu, mem in
            Guest.objects.filter(host=host).values_list("uuid", "id", "cpu_percent", "memory_used_kib")}
    samples, current = [], []
    for uuid, dom in read.domains.items():
        if uuid not in rows or state_from_libvirt(dom.state) not in ACTIVE_STATES:
            continue
        figures = guest_figures(dom, previous.domains.get(uuid) if previous else None, seconds)
        if all(value is None for value in figures.values()):
            continue  # a driver without stats (the test driver): nothing worth storing
        pk, cpu, mem = rows[uuid]
        samples.append(GuestSample(guest_id=pk, time=now, **figures))
        used_kib = figures["memory_used"] // 1024 if figures["memory_used"] else None
        if (cpu, mem) != (figures["cpu_percent"], used_kib):
            current.append(Guest(pk=pk, cpu_percent=figures["cpu_percent"], memory_used_kib=used_kib))
    with transaction.atomic():
        GuestSample.objects.bulk_create(samples, ignore_conflicts=True)
        Guest.objects.bulk_update(current, ["cpu_percent", "memory_used_kib"], batch_size=500)
        if read.capacity is not None:
            HostSample.objects.create(host=host, time=now, **host_figures(host, read, samples))
    return len(samples)


def host_figures(host: Host, read: HostRead, samples: Iterable[GuestSample]) -> dict:
    cap = read.capacity
    totals = allocated(Guest.objects.filter(host=host))
    cpu = [s.cpu_percent for s in samples if s.cpu_percent is not None]
    running = sum(1 for d in read.domains.values() if state_from_libvirt(d.state) in ACTIVE_STATES)
    return {
        "cpus": cap.cpus, "memory_total": cap.memory_total,
        "memory_used": cap.memory_total - cap.memory_free if cap.memory_free is not None else None,
        "cpu_percent": round(sum(cpu) / cap.cpus, 2) if cpu and cap.cpus else None,
        "guests_running": running, "guests_defined": len(read.domains),
        "vcpus_running": totals.vcpus_running, "vcpus_all": totals.vcpus_all,
        "memory_allocated_running": totals.memory_running, "memory_allocated_all": totals.memory_all,
        "storage_capacity": cap.storage_capacity, "storage_allocation": cap.storage_allocation,
    }


# ------------------------------------------------------------------------ roll-ups

def _bucket(moment: datetime, seconds: int) -> datetime:
    epoch = int(moment.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, tz=moment.tzinfo or timezone.UTC)


def _average(rows: list[dict], figures: tuple[str, ...]) -> dict:
    out = {}
    for name in figures:
        values = [r[name] for r in rows if r[name] is not None]
        out[name] = sum(values) / len(values) if values else None
    return out


def _roll(model, owner: str, scope: dict, source: int, target: int, figures: tuple[str, ...],
          now: datetime) -> int:
    """Average `source` rows into complete `target` buckets after the last one written.

    Works through the backlog in windows (12 buckets, at least an hour) so a watcher that was
    down for a day never loads a day of raw samples at once.
    """
    end = _bucket(now, target)  # only complete buckets
    done = model.objects.filter(**scope, resolution=target).order_by("-time").first()
    if done is not None:
        start = done.time + timedelta(seconds=target)
    else:
        oldest = model.objects.filter(**scope, resolution=source).order_by("time").first()
        if oldest is None:
            return 0
        start = _bucket(oldest.time, target)
    window = timedelta(seconds=max(target * 12, 3600))
    written = 0
    while start < end:
        stop = min(end, start + window)
        written += _roll_window(model, owner, scope, source, target, figures, start, stop)
        start = stop
    return written


def _roll_window(model, owner, scope, source, target, figures, start, stop) -> int:
    rows = model.objects.filter(**scope, resolution=source, time__gte=start, time__lt=stop)
    groups: dict[tuple[int, datetime], list[dict]] = defaultdict(list)
    for row in rows.values(f"{owner}_id", "time", "count", *figures):
        groups[(row[f"{owner}_id"], _bucket(row["time"], target))].append(row)
    created = [model(**{f"{owner}_id": oid}, resolution=target, time=bucket, count=sum(r["count"] for r in group),
                     **_numeric(model, _average(group, figures)))
               for (oid, bucket), group in groups.items()]
    model.objects.bulk_create(created, ignore_conflicts=True, batch_size=500)
    return len(created)


def _numeric(model, values: dict) -> dict:
    """Integer columns get rounded averages; non-null integer columns get 0 for 'unknown'."""
    out = {}
    for name, value in values.items():
        column = model._meta.get_field(name)
        if column.get_internal_type() != "FloatField" and value is not None:
            value = round(value)
        if value is None and not column.null:
            value = 0
        out[name] = value
    return out


def roll_up(host: Host, now: datetime | None = None) -> dict[str, int]:
    """Roll raw → 5-minute → hourly for one host and its guests, then drop expired rows.

    Idempotent: a bucket is written once (unique constraint, ignore_conflicts), so the watcher
    may call this as often as it likes.
    """
    now = now or timezone.now()
    guests, hosts = {"guest__host": host}, {"host": host}
    five, hour = Resolution.FIVE_MINUTES, Resolution.HOUR
    done = {
        "guest_5m": _roll(GuestSample, "guest", guests, Resolution.RAW, five, GUEST_FIGURES, now),
        "guest_1h": _roll(GuestSample, "guest", guests, five, hour, GUEST_FIGURES, now),
        "host_5m": _roll(HostSample, "host", hosts, Resolution.RAW, five, HOST_FIGURES, now),
        "host_1h": _roll(HostSample, "host", hosts, five, hour, HOST_FIGURES, now),
    }
    for resolution, keep in RETENTION.items():
        GuestSample.objects.filter(guest__host=host, resolution=resolution, time__lt=now - keep).delete()
        HostSample.objects.filter(host=host, resolution=resolution, time__lt=now - keep).delete()
    GuestEvent.objects.filter(guest__host=host, time__lt=now - EVENT_RETENTION).delete()
    return done

"""Read-side helpers for guest pages: list filtering/sorting, sparklines, detail data.

Everything here reads the database, except `live_definition` which makes the detail page's one
libvirt read. Sparklines for a whole page come from ONE samples query.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.core.paginator import Page, Paginator
from django.db.models import F, Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from core.choices import JobStatus
from core.models import Job
from core.policy import Action, can
from guests.choices import ACTIVE_STATES, EVENT_WORDS, GuestState
from guests.models import Guest, GuestSample, Resolution
from hosts import leases
from hosts.choices import HostStatus
from hosts.virt import domains
from hosts.virt.errors import VirtError
from virtdash.xml import Disk, Domain, Graphics, Interface

log = logging.getLogger(__name__)
SORTS = {"name": "name", "host": "host__name", "state": "state", "vcpus": "vcpus", "memory": "memory_kib",
         "uptime": "started_at", "cpu": "cpu_percent"}
SPARK_MINUTES = 30
SPARK_W, SPARK_H = 80, 18


@dataclass
class ListParams:
    host: int | None = None
    state: str = ""
    q: str = ""
    sort: str = "name"
    page: str = "1"

    @classmethod
    def from_query(cls, query) -> ListParams:
        host = query.get("host", "")
        state = query.get("state", "")
        sort = query.get("sort", "name")
        return cls(host=int(host) if host.isdigit() else None,
                   state=state if state in GuestState.values or state == "active" else "",
                   q=query.get("q", "").strip()[:100], sort=sort if sort.lstrip("-") in SORTS else "name",
                   page=query.get("page", "1"))

    def filters(self) -> dict:
        found = {"host": self.host or "", "state": self.state, "q": self.q, "sort": self.sort}
        return {k: v for k, v in found.items() if v and not (k == "sort" and v == "name")}

    def query_string(self, **override) -> str:
        return urlencode({**self.filters(), **override})

    def sort_links(self) -> dict[str, str]:
        """?sort=… for each column header: clicking the current column reverses it."""
        return {key: self.query_string(sort=f"-{key}" if self.sort == key else key) for key in SORTS}


def filtered(guests: QuerySet, params: ListParams) -> QuerySet:
    if params.host:
        guests = guests.filter(host_id=params.host)
    if params.state == "active":
        guests = guests.filter(state__in=ACTIVE_STATES)
    elif params.state:
        guests = guests.filter(state=params.state)
    if params.q:
        guests = guests.filter(Q(name__icontains=params.q) | Q(title__icontains=params.q)
                               | Q(description__icontains=params.q) | Q(uuid__istartswith=params.q))
    field = SORTS[params.sort.lstrip("-")]
    order = F(field).desc(nulls_last=True) if params.sort.startswith("-") else F(field).asc(nulls_last=True)
    if field == "started_at":  # longest uptime first = earliest start
        order = F(field).desc(nulls_last=True) if not params.sort.startswith("-") else F(field).asc(nulls_last=True)
    return guests.order_by(order, "name", "pk")


LIST_COLUMNS = ("uuid", "name", "title", "state", "vcpus", "memory_kib", "started_at", "cpu_percent", "graphics",
                "host_id", "host__name", "host__status", "host__last_error")


def guest_page(guests: QuerySet, params: ListParams, size: int) -> Page:
    rows = filtered(guests.select_related("host").only(*LIST_COLUMNS), params)
    return Paginator(rows, size).get_page(params.page)


def _points(values: list[float | None], top: float) -> str:
    known = [(i, v) for i, v in enumerate(values) if v is not None]
    if len(known) < 2 or top <= 0:
        return ""
    step = SPARK_W / max(1, len(values) - 1)
    return " ".join(f"{i * step:.1f},{SPARK_H - min(v, top) / top * SPARK_H:.1f}" for i, v in known)


def sparklines(guest_ids: list[int], now=None) -> dict[int, dict]:
    """CPU and memory polylines of the last 30 minutes for these guests, in one query."""
    if not guest_ids:
        return {}
    since = (now or timezone.now()) - timedelta(minutes=SPARK_MINUTES)
    series: dict[int, list[tuple]] = defaultdict(list)
    rows = GuestSample.objects.filter(guest_id__in=guest_ids, resolution=Resolution.RAW, time__gte=since)
    for row in rows.order_by("time").values_list("guest_id", "cpu_percent", "memory_used", "memory"):
        series[row[0]].append(row[1:])
    out = {}
    for guest_id, samples in series.items():
        cpu = [s[0] for s in samples]
        mem = [s[1] for s in samples]
        top_mem = max((s[2] or 0 for s in samples), default=0) or max((m or 0 for m in mem), default=0)
        top_cpu = max(100.0, *(c or 0 for c in cpu))
        out[guest_id] = {"cpu": _points(cpu, top_cpu), "mem": _points(mem, top_mem),
                         "cpu_now": cpu[-1], "mem_now": mem[-1]}
    return out


# ------------------------------------------------------------------------ detail

def live_definition(guest: Guest) -> tuple[dict | None, str]:
    """The one libvirt read of the detail page: (devices and facts, error message)."""
    try:
        read = domains.read(guest.host.uri, guest.uuid, disk_sizes=True)
    except VirtError as exc:
        return None, str(exc)
    try:
        return describe(read.xml, read.disk_sizes), ""
    except Exception:  # never let an odd definition break the page; show the inventory instead
        log.exception("could not describe the XML of %s", guest.uuid)
        return None, "The guest's definition could not be read in full; showing the inventory."


def describe(xml: str, sizes: dict | None = None) -> dict:
    """Plain data for the template from any valid domain XML; unknown devices listed generically."""
    sizes = sizes or {}
    dom = Domain.parse(xml)
    disks, nics, graphics, others = [], [], [], []
    for device in dom.devices():
        if isinstance(device, Disk):
            size = sizes.get(device.target or "")
            disks.append({"device": device.device or "disk", "bus": device.bus, "target": device.target,
                          "source": device.source, "format": device.driver_type, "readonly": device.readonly,
                          "capacity": size[0] if size else None, "allocation": size[1] if size else None,
                          "boot": device.boot_order})
        elif isinstance(device, Interface):
            nics.append({"mac": device.mac, "model": device.model, "type": device.type, "source": device.source,
                         "target": device.target_dev, "link": device.link_state, "boot": device.boot_order})
        elif isinstance(device, Graphics):
            graphics.append({"type": device.type, "port": device.port, "listen": device.listen,
                             "autoport": device.autoport})
        else:
            attributes = {str(k): str(v) for k, v in device.element.attrib.items()}
            others.append({"kind": device.kind, "label": device.describe(), "attributes": attributes})
    return {
        "disks": disks, "nics": nics, "graphics": graphics, "others": others,
        "boot_order": dom.boot_order() or dom.boot_devs, "firmware": dom.firmware, "os_type": dom.os_type,
        "arch": dom.arch, "machine": dom.machine, "virt_type": dom.type, "emulator": dom.emulator,
        "kernel": dom.kernel, "cmdline": dom.cmdline, "cpu_mode": dom.cpu_mode, "features": dom.features(),
        "title": dom.title, "description": dom.description, "os_id": dom.os_id,
    }


def overview_context(user, guest: Guest) -> dict:
    jobs = Job.objects.filter(guest_uuid=guest.uuid).order_by("-created")[:10]
    last = jobs[0] if jobs else None
    running = guest.state in (GuestState.RUNNING, GuestState.BLOCKED, GuestState.PAUSED)
    return {
        "guest": guest, "host": guest.host, "jobs": jobs,
        "host_down": guest.host.status == HostStatus.UNREACHABLE,
        "events": [(e, EVENT_WORDS.get(e.event, e.event)) for e in guest.events.all()[:15]],
        "offer_force_off": bool(last and last.kind == "guest.shutdown" and last.status == JobStatus.FAILED
                                and guest.state in ACTIVE_STATES),
        "console": running and guest.graphics and can(user, Action.CONSOLE, guest),
        "console_view": running and guest.graphics and can(user, Action.CONSOLE_VIEW, guest),
        "serial": running and can(user, Action.CONSOLE, guest),
        "can_manage": can(user, Action.MANAGE, guest),
    }


def detail_context(user, guest: Guest) -> dict:
    live, live_error = live_definition(guest)
    context = overview_context(user, guest)
    context.update(live=live, live_error=live_error, summary=guest.summary,
                   sample_seconds=settings.VIRTDASH_SAMPLE_SECONDS)
    if live and guest.state in ACTIVE_STATES:  # a stopped guest's old lease would mislead
        context["nic_addresses"] = leases.addresses_by_nic(guest.host.uri, live["nics"])
    return context


def _resolution_for(minutes: int) -> int:
    if minutes <= 24 * 60:
        return Resolution.RAW
    if minutes <= 90 * 24 * 60:
        return Resolution.FIVE_MINUTES
    return Resolution.HOUR


def samples_json(guest: Guest, minutes: int, after: str | None = None) -> dict:
    """Samples for the graphs: [[ms since epoch, cpu %, mem used, mem, rd, wr, rx, tx], …]."""
    since = timezone.now() - timedelta(minutes=minutes)
    later = parse_datetime(after) if after else None
    rows = GuestSample.objects.filter(guest=guest, resolution=_resolution_for(minutes), time__gte=since)
    if later is not None:
        rows = rows.filter(time__gt=later)
    fields = ("time", "cpu_percent", "memory_used", "memory", "disk_read_bps", "disk_write_bps", "net_rx_bps",
              "net_tx_bps")
    points = [[int(r[0].timestamp() * 1000), *r[1:]] for r in rows.order_by("time").values_list(*fields)[:5000]]
    last = rows.order_by("-time").values_list("time", flat=True).first()
    return {"points": points, "last": last.isoformat() if last else after, "step": settings.VIRTDASH_SAMPLE_SECONDS}

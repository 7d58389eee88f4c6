"""The guest inventory: Guest rows kept equal to what libvirt reports (STYLE rule 9).

libvirt is the source of truth; these functions only copy it. `reconcile` takes one bulk read
of a host and computes (gone, new, current) keyed by UUID; `refresh_guest` re-reads one guest
when an event hints that it changed (events are hints, never payloads). A UUID that shows up
on another host moves its row there (migration), so a guest is never listed twice.
Changes are published to the guests' live topics, and only when something changed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from core import live
from guests.choices import ACTIVE_STATES, GuestState, reason_text, state_from_libvirt
from guests.models import Guest, GuestEvent
from guests.services_migrate import hands_off
from hosts.models import Host
from hosts.services import is_same_hypervisor
from hosts.virt import domains, stats
from hosts.virt.errors import GuestNotFound
from virtdash.xml import Domain, XMLInputError

log = logging.getLogger(__name__)
BULK_PUBLISH_THRESHOLD = 25  # more changes than this in one round → one "guests" message, not one per guest


@dataclass
class Changes:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    moved: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.created) + len(self.updated) + len(self.removed) + len(self.moved)


def xml_fields(xml: str) -> dict[str, Any]:
    """Inventory fields that only the domain XML knows; {} when the XML cannot be read."""
    try:
        dom = Domain.parse(xml)
        summary = dom.summary()
    except (XMLInputError, ValueError) as exc:
        log.warning("unreadable domain XML: %s", exc)
        return {}
    graphics = summary.get("graphics") or []
    return {
        "title": (dom.title or "")[:255], "description": dom.description or "",
        "graphics": (graphics[0].get("type") or "")[:16] if graphics else "",
        "os_id": (summary.get("os_id") or "")[:255], "owner": (summary.get("owner") or "")[:150],
        "tags": list(summary.get("tags") or []), "summary": _compact(summary),
        "vcpus": summary.get("vcpus") or 0, "max_vcpus": summary.get("vcpus_max") or 0,
        "memory_kib": summary.get("current_memory_kib") or summary.get("memory_kib") or 0,
        "max_memory_kib": summary.get("memory_kib") or 0,
    }


def _compact(summary: dict) -> dict:
    keep = ("arch", "machine", "virt_type", "firmware", "boot_order", "disks", "nics", "graphics")
    return {k: summary.get(k) for k in keep}


def stats_fields(read: stats.DomainStats) -> dict[str, Any]:
    """Inventory fields the bulk stats call knows (None values are left as they were)."""
    state = state_from_libvirt(read.state)
    found = {"name": read.name[:255], "state": state, "state_reason": reason_text(state, read.reason)[:64],
             "autostart": read.autostart, "persistent": read.persistent, "vcpus": read.vcpus,
             "max_vcpus": read.max_vcpus, "memory_kib": read.memory_kib, "max_memory_kib": read.max_memory_kib}
    return {k: v for k, v in found.items() if v is not None}


def _domain_read_fields(read: domains.DomainRead) -> dict[str, Any]:
    state = state_from_libvirt(read.state)
    found = xml_fields(read.xml)
    found.update(name=read.name[:255], state=state, state_reason=reason_text(state, read.reason)[:64],
                 autostart=read.autostart, persistent=read.persistent)
    if read.state and state in ACTIVE_STATES:
        found["vcpus"] = read.vcpus or found.get("vcpus", 0)
        found["memory_kib"] = read.memory_kib or found.get("memory_kib", 0)
    return found


def _state_change_fields(guest: Guest | None, new_state: str, now) -> dict[str, Any]:
    was_active = guest is not None and guest.state in ACTIVE_STATES
    if new_state in ACTIVE_STATES and not was_active:
        return {"started_at": now}
    if new_state not in ACTIVE_STATES and (guest is None or guest.started_at is not None):
        return {"started_at": None, "cpu_percent": None, "memory_used_kib": None}
    return {}


def _apply(guest: Guest, found: dict[str, Any], now) -> bool:
    """Copy changed values onto the row; True when anything a page shows changed."""
    found = dict(found)
    if "state" in found and found["state"] != guest.state:
        found.update(_state_change_fields(guest, found["state"], now))
        _record_event(guest, _event_for(guest.state, found["state"]), found["state"], now)
    changed = {k: v for k, v in found.items() if getattr(guest, k) != v}
    if not changed:
        return False
    for key, value in changed.items():
        setattr(guest, key, value)
    Guest.objects.filter(pk=guest.pk).update(updated=now, **changed)
    return True


def _event_for(old: str, new: str) -> str:
    if new in (GuestState.RUNNING, GuestState.BLOCKED) and old == GuestState.PAUSED:
        return "resumed"
    return {GuestState.RUNNING: "started", GuestState.PAUSED: "suspended", GuestState.SHUTOFF: "stopped",
            GuestState.CRASHED: "crashed", GuestState.PMSUSPENDED: "pmsuspended",
            GuestState.SHUTDOWN: "shutdown"}.get(new, "changed")


def _record_event(guest: Guest, event: str, state: str, now, detail: str = "") -> None:
    """Timeline entry; the same event twice within 3 s is one (reboot events come in threes)."""
    recent = GuestEvent.objects.filter(guest=guest, event=event, time__gte=now - timedelta(seconds=3))
    if guest.pk and not recent.exists():
        GuestEvent.objects.create(guest=guest, event=event, state=state, time=now, detail=detail[:255])


def _create(host: Host, uuid: str, found: dict[str, Any], now) -> Guest:
    guest = _new_row(host, uuid, found, now)
    guest.save(force_insert=True)
    GuestEvent.objects.create(guest=guest, event="appeared", state=guest.state, time=now)
    return guest


def _claim_moved(host: Host, uuid: str, found: dict[str, Any], now) -> str | None:
    """A row for this UUID on another host: "moved" here (migration), or "stays" there when the copy
    there runs or both rows reach the same hypervisor; None when no other host has a row.

    While a migration is in flight libvirt can list the guest on both hosts; the running copy wins.
    """
    other = Guest.objects.filter(uuid=uuid).exclude(host=host).select_related("host").first()
    if other is None:
        return None
    if other.state in ACTIVE_STATES and found.get("state") not in ACTIVE_STATES:
        return "stays"  # keep it where it runs; this host has an inactive copy of the definition
    if is_same_hypervisor(host, other.host):  # from the facts: no libvirt call in the transaction
        return "stays"  # one libvirtd registered twice (qemu:/// and qemu+ssh://): no back and forth
    previous = other.host.name
    Guest.objects.filter(pk=other.pk).update(host=host, updated=now)
    live.publish(live.guest_topics(other.host_id, uuid), "guest", {"uuid": uuid, "moved": True})
    other.host = host
    _record_event(other, "moved", found.get("state", other.state), now, detail=f"from {previous}")
    _apply(other, found, now)
    return "moved"


_FIELD_NAMES = {f.name for f in Guest._meta.get_fields() if getattr(f, "concrete", False)} - {"id", "host", "uuid"}


def reconcile(host: Host, read: stats.HostRead, read_started=None) -> Changes:
    """Make the host's Guest rows equal to one bulk read: (gone, new, current) by UUID.

    `read_started`: when the read began (default: now); guests a migration moved since are left
    alone this round (services_migrate.hands_off)."""
    now = timezone.now()
    changes = Changes()
    with transaction.atomic():
        rows = {g.uuid: g for g in _rows_for(host, read)}
        missing = [uuid for uuid in rows if uuid not in read.domains]
        new = [uuid for uuid in read.domains if uuid not in rows]
        # asked only when a row would go or come (a migration job re-reads these itself when it ends)
        asked = missing + new
        held = hands_off(read_started or now, asked if len(asked) <= 500 else None) if asked else set()
        gone = [uuid for uuid in missing if uuid not in held]
        if gone:
            Guest.objects.filter(host=host, uuid__in=gone).delete()
            changes.removed.extend(gone)
        elsewhere = set(Guest.objects.filter(uuid__in=new).exclude(host=host).values_list("uuid", flat=True)) \
            if new else set()
        created = []
        for uuid, dom in read.domains.items():
            found = stats_fields(dom)
            if dom.xml is not None:
                found = {**xml_fields(dom.xml), **found}
            guest = rows.get(uuid)
            if guest is not None:
                if _apply(guest, found, now):
                    changes.updated.append(uuid)
            elif uuid in held:
                continue
            elif uuid in elsewhere:
                if _claim_moved(host, uuid, found, now) == "moved":
                    changes.moved.append(uuid)
            elif dom.xml is not None:
                created.append(_new_row(host, uuid, found, now))
        _create_all(created, now)
        changes.created.extend(g.uuid for g in created)
        _publish(host, changes)
    return changes


_STATS_FIELDS = ("uuid", "name", "state", "state_reason", "autostart", "persistent", "vcpus", "max_vcpus",
                 "memory_kib", "max_memory_kib", "started_at", "cpu_percent", "memory_used_kib")


def _rows_for(host: Host, read: stats.HostRead):
    """The host's rows; only the columns stats can change unless the read carries XML for all.

    A periodic round compares ~10 columns of every guest: loading the JSON columns of 1,000
    rows every 10 s was most of the watcher's CPU (bench/guest_list.py).
    """
    rows = Guest.objects.filter(host=host)
    if any(dom.xml is None for dom in read.domains.values()):
        rows = rows.only(*_STATS_FIELDS)
    return rows


def _new_row(host: Host, uuid: str, found: dict[str, Any], now) -> Guest:
    found = {k: v for k, v in found.items() if k in _FIELD_NAMES}
    if found.get("state") in ACTIVE_STATES:
        found["started_at"] = now
    return Guest(host=host, uuid=uuid, updated=now, **found)


def _create_all(guests: list[Guest], now) -> None:
    """Insert new rows and their "appeared" events in two statements (a first resync of 1,000 guests)."""
    if not guests:
        return
    Guest.objects.bulk_create(guests, batch_size=500)
    ids = dict(Guest.objects.filter(host=guests[0].host, uuid__in=[g.uuid for g in guests]).values_list("uuid", "id"))
    GuestEvent.objects.bulk_create([GuestEvent(guest_id=ids[g.uuid], event="appeared", state=g.state, time=now)
                                    for g in guests if g.uuid in ids], batch_size=500)


def _publish(host: Host, changes: Changes) -> None:
    if not changes.count:
        return
    if changes.count > BULK_PUBLISH_THRESHOLD:
        live.publish(["guests", f"host.{host.pk}"], "guests", {"host": host.pk, "changed": changes.count})
        return
    for uuid in changes.created + changes.updated + changes.removed + changes.moved:
        live.publish(live.guest_topics(host.pk, uuid), "guest", {"uuid": uuid})


def known_uuids(host: Host) -> set[str]:
    return set(Guest.objects.filter(host=host).values_list("uuid", flat=True))


def resync(host: Host, *, full: bool = False, capacity: bool = False) -> tuple[stats.HostRead, Changes]:
    """One bulk read of the host and a reconcile; `full` re-reads every guest's XML."""
    started = timezone.now()
    read = stats.read_host(host.uri, known=frozenset() if full else known_uuids(host), capacity=capacity)
    return read, reconcile(host, read, started)


def refresh_guest(host: Host, uuid: str, event: str = "", *, own_migration: bool = False) -> Changes:
    """Re-read one guest after an event; creates, updates, moves or removes its row.

    A guest a migration is moving, or moved since this read began, keeps its row where it is
    (only updated), except in the migration job's own re-read (`own_migration`)."""
    started = timezone.now()
    changes = Changes()
    try:
        read = domains.read(host.uri, uuid)
    except GuestNotFound:
        if not own_migration and hands_off(started, [uuid]):
            return changes  # mid-migration: the job re-reads both hosts when it ends
        removed, _ = Guest.objects.filter(host=host, uuid=uuid).delete()
        if removed:
            changes.removed.append(uuid)
        _publish(host, changes)
        return changes
    found = _domain_read_fields(read)
    now = timezone.now()
    with transaction.atomic():
        guest = Guest.objects.filter(host=host, uuid=uuid).first()
        if guest is not None:
            if event == "reboot":
                _record_event(guest, "reboot", guest.state, now)
            if _apply(guest, found, now):
                changes.updated.append(uuid)
        elif not own_migration and hands_off(started, [uuid]):
            pass  # a copy seen mid-migration, or before it ended: the job moves the row itself
        elif (claimed := _claim_moved(host, uuid, found, now)) is not None:
            if claimed == "moved":
                changes.moved.append(uuid)
        else:
            _create(host, uuid, found, now)
            changes.created.append(uuid)
        _publish(host, changes)
    return changes


def refresh_after_action(guest: Guest) -> None:
    """Job tasks call this after acting so the row is right even before the watcher's event."""
    try:
        refresh_guest(guest.host, guest.uuid)
    except Exception:  # the watcher will catch up; the action itself succeeded
        log.warning("re-reading %s after an action failed", guest.uuid, exc_info=True)

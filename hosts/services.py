"""Host operations shared by pages, the API and the watcher."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from urllib.parse import urlsplit

from django.db import transaction
from django.utils import timezone

from core import audit, live
from core.choices import AuditResult
from hosts.choices import HostStatus
from hosts.models import Host
from hosts.virt import connections, facts
from hosts.virt.errors import VirtError


def create_host(actor, *, name: str, uri: str, description: str = "", enabled: bool = True, zone: str = "") -> Host:
    with transaction.atomic():
        host = Host.objects.create(name=name, uri=uri, description=description, enabled=enabled, zone=zone,
                                   status=HostStatus.UNKNOWN if enabled else HostStatus.DISABLED)
        audit.record(actor, "host.add", host, detail=uri)
        live.publish(live.host_topics(host.pk), "host", {"id": host.pk})
    return host


def update_host(actor, host: Host, *, name: str, uri: str, description: str, enabled: bool,
                zone: str | None = None) -> Host:
    """`zone` None keeps the host's zone. A new zone applies to jobs queued from now on."""
    old_uri = host.uri
    zone = host.zone if zone is None else zone
    changes = [f for f, new in (("name", name), ("uri", uri), ("description", description), ("enabled", enabled),
                                ("zone", zone)) if getattr(host, f) != new]
    with transaction.atomic():
        host.name, host.uri, host.description, host.enabled, host.zone = name, uri, description, enabled, zone
        if "uri" in changes or "enabled" in changes:
            host.status = HostStatus.UNKNOWN if enabled else HostStatus.DISABLED
            host.status_since = timezone.now()
            host.last_error = ""
        host.save()
        audit.record(actor, "host.edit", host, detail="changed: " + (", ".join(changes) or "nothing"))
        live.publish(live.host_topics(host.pk), "host", {"id": host.pk})
    if old_uri != uri:
        connections.drop(old_uri, "host URI changed")
    return host


def delete_host(actor, host: Host) -> None:
    """Forget a host and its inventory rows. Its guests in libvirt are never touched."""
    with transaction.atomic():
        audit.record(actor, "host.remove", host, detail=host.uri)
        host_id, uri = host.pk, host.uri
        host.delete()
        live.publish(live.host_topics(host_id), "host", {"id": host_id, "removed": True})
    connections.drop(uri, "host removed")


def test_connection(uri: str, timeout: float = 5) -> tuple[bool, str, dict]:
    """Try the URI with a throw-away connection: (ok, message, facts)."""
    try:
        found = facts.probe(uri, timeout)
    except VirtError as exc:
        return False, str(exc), {}
    return True, (
        f"Connected: {found['hypervisor']} {found['hypervisor_version']}, libvirt {found['libvirt_version']}, "
        f"{found['cpus']} CPUs, {found['guests_total']} guests."
    ), found


def record_status(host: Host, *, ok: bool, error: str = "", found: dict | None = None) -> bool:
    """Store the outcome of a check; returns True when something a page shows changed."""
    now = timezone.now()
    status = HostStatus.CONNECTED if ok else HostStatus.UNREACHABLE
    fields = {"last_checked": now}
    changed = status != host.status or (not ok and error != host.last_error)
    if status != host.status:
        fields["status_since"] = now
    fields["status"] = status
    fields["last_error"] = "" if ok else error
    if found:
        changed = changed or found != host.facts
        fields.update(facts=found, facts_updated=now)
    Host.objects.filter(pk=host.pk).update(**fields)
    for key, value in fields.items():
        setattr(host, key, value)
    if changed:
        live.send_now(live.host_topics(host.pk), "host", {"id": host.pk, "status": status})
    return changed


def refresh_facts(host: Host, *, force: bool = False) -> bool:
    """Read the host's facts through this process's connection and store them."""
    try:
        found = facts.read_facts(host.uri, force=force)
    except VirtError as exc:
        return record_status(host, ok=False, error=exc.detail or str(exc))
    return record_status(host, ok=True, found=found)


def audit_denied(actor, action: str, target=None, detail: str = "") -> None:
    audit.record(actor, action, target, result=AuditResult.DENIED, detail=detail)


def hypervisor_identity(host: Host) -> tuple[str, str, str] | None:
    """What makes two Host rows the same hypervisor: libvirt's host UUID from the last facts, the
    driver, and the driver instance (the URI's path: /system and /session are different daemons).
    None while the facts carry no UUID (host never reached, or facts older than this field)."""
    host_uuid = (host.facts or {}).get("host_uuid")
    if not host_uuid:
        return None
    return host_uuid, host.facts.get("hypervisor", ""), urlsplit(host.uri).path.rstrip("/")


def is_same_hypervisor(host: Host, other: Host) -> bool:
    identity = hypervisor_identity(host)
    return identity is not None and identity == hypervisor_identity(other)


def same_hypervisor(hosts: Iterable[Host]) -> dict[int, list[str]]:
    """For each of `hosts` registered more than once (e.g. qemu:///system and
    qemu+ssh://root@127.0.0.1/system), the names of its other rows among `hosts`. No query."""
    groups: dict[tuple[str, str, str], list[Host]] = defaultdict(list)
    for host in hosts:
        identity = hypervisor_identity(host)
        if identity:
            groups[identity].append(host)
    return {host.pk: [other.name for other in group if other.pk != host.pk]
            for group in groups.values() if len(group) > 1 for host in group}


def same_hypervisor_as(host: Host, candidates) -> list[str]:
    """Names of the other hosts in the queryset `candidates` (those the user may see) that reach the
    same hypervisor as `host`: one query, on the UUID in their facts."""
    identity = hypervisor_identity(host)
    if identity is None:
        return []
    others = list(candidates.exclude(pk=host.pk).filter(facts__host_uuid=identity[0]))
    return same_hypervisor([host, *others]).get(host.pk, [])

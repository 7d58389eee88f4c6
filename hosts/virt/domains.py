"""Domains (guests): define, look up and act on them; callers get plain data, never virDomain."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import libvirt

from hosts.virt import connections
from hosts.virt.errors import OperationRefused
from virtdash.xml import Domain


def _by_uuid(conn: libvirt.virConnect, uuid: str) -> libvirt.virDomain:
    return conn.lookupByUUIDString(uuid)


def define(uri: str, xml: str) -> str:
    """Define a persistent domain from XML we built; returns its UUID."""
    return connections.call(uri, lambda conn: conn.defineXML(xml).UUIDString(), what="defining a guest")


def count(uri: str) -> int:
    return connections.call(uri, lambda conn: len(conn.listAllDomains()), what=uri)


def names(uri: str) -> list[str]:
    return connections.call(uri, lambda conn: sorted(d.name() for d in conn.listAllDomains()), what=uri)


def start(uri: str, uuid: str) -> None:
    def _start(conn):
        dom = _by_uuid(conn, uuid)
        if not dom.isActive():
            dom.create()

    connections.call(uri, _start, what=f"guest {uuid}")


# --------------------------------------------------------------------- reading one guest

@dataclass
class DomainRead:
    """One guest as libvirt reports it now (for an event re-read or a detail page)."""

    uuid: str
    name: str
    state: int
    reason: int
    autostart: bool
    persistent: bool
    vcpus: int
    memory_kib: int
    max_memory_kib: int
    xml: str
    has_managed_save: bool = False
    disk_sizes: dict[str, tuple[int, int]] = field(default_factory=dict)  # target → (capacity, allocation)


def _disk_sizes(dom: libvirt.virDomain, xml: str) -> dict[str, tuple[int, int]]:
    sizes = {}
    try:
        targets = [d.target for d in Domain.parse(xml).disks if d.target and d.source]
    except ValueError:
        return {}
    for target in targets:
        try:
            capacity, allocation, _physical = dom.blockInfo(target)
        except libvirt.libvirtError:
            continue  # empty CD-ROM, network disk, driver without blockInfo
        sizes[target] = (capacity, allocation)
    return sizes


def _read_one(conn: libvirt.virConnect, uuid: str, xml_flags: int, with_sizes: bool = False) -> DomainRead:
    dom = _by_uuid(conn, uuid)
    state, reason = dom.state()
    _state, max_mem, mem, vcpus, _cpu = dom.info()
    try:
        managed = bool(dom.hasManagedSaveImage())
    except libvirt.libvirtError:
        managed = False
    xml = dom.XMLDesc(xml_flags)
    return DomainRead(uuid=dom.UUIDString(), name=dom.name(), state=state, reason=reason,
                      autostart=bool(dom.autostart()), persistent=bool(dom.isPersistent()), vcpus=vcpus,
                      memory_kib=mem, max_memory_kib=max_mem, xml=xml, has_managed_save=managed,
                      disk_sizes=_disk_sizes(dom, xml) if with_sizes else {})


def read(uri: str, uuid: str, *, inactive: bool = False, disk_sizes: bool = False) -> DomainRead:
    """Re-read one guest (raises GuestNotFound when it is gone); `inactive` = next-boot XML.

    `disk_sizes` adds each disk's capacity/allocation (the detail page); all in one round.
    """
    flags = libvirt.VIR_DOMAIN_XML_INACTIVE if inactive else 0
    return connections.call(uri, lambda conn: _read_one(conn, uuid, flags, disk_sizes), what=f"guest {uuid}")


def state(uri: str, uuid: str) -> int:
    """The guest's libvirt state number (see guests.choices.state_from_libvirt)."""
    return connections.call(uri, lambda conn: _by_uuid(conn, uuid).state()[0], what=f"guest {uuid}")


# --------------------------------------------------------------------- lifecycle actions
# Each converges: asking for the state the guest is already in succeeds without a call.

def _act(uri: str, uuid: str, what: str, fn: Callable[[libvirt.virDomain], None]) -> None:
    connections.call(uri, lambda conn: fn(_by_uuid(conn, uuid)), what=f"{what} guest {uuid}")


def _shutdown(dom: libvirt.virDomain) -> None:
    if dom.isActive():
        dom.shutdown()


def _destroy(dom: libvirt.virDomain) -> None:
    if dom.isActive():
        dom.destroy()


def _suspend(dom: libvirt.virDomain) -> None:
    if dom.state()[0] != libvirt.VIR_DOMAIN_PAUSED:
        dom.suspend()


def _resume(dom: libvirt.virDomain) -> None:
    if dom.state()[0] == libvirt.VIR_DOMAIN_PAUSED:
        dom.resume()


def _managed_save(dom: libvirt.virDomain) -> None:
    if dom.isActive():
        dom.managedSave(0)


def shutdown(uri: str, uuid: str) -> None:
    """Ask the guest OS to power off (ACPI); returns at once, the guest may ignore it."""
    _act(uri, uuid, "shutting down", _shutdown)


def destroy(uri: str, uuid: str) -> None:
    _act(uri, uuid, "forcing off", _destroy)


def reboot(uri: str, uuid: str) -> None:
    _act(uri, uuid, "rebooting", lambda dom: dom.reboot(0))


def reset(uri: str, uuid: str) -> None:
    _act(uri, uuid, "resetting", lambda dom: dom.reset(0))


def suspend(uri: str, uuid: str) -> None:
    _act(uri, uuid, "pausing", _suspend)


def resume(uri: str, uuid: str) -> None:
    _act(uri, uuid, "resuming", _resume)


def managed_save(uri: str, uuid: str) -> None:
    _act(uri, uuid, "saving", _managed_save)


def set_autostart(uri: str, uuid: str, enabled: bool) -> None:
    _act(uri, uuid, "setting autostart of", lambda dom: dom.setAutostart(1 if enabled else 0))


def _delete_volume(conn: libvirt.virConnect, path: str) -> str:
    try:
        conn.storageVolLookupByPath(path).delete(0)
    except libvirt.libvirtError as exc:
        return f"{path}: {exc.get_error_message()}"
    return ""


def _undefine(conn: libvirt.virConnect, uuid: str, volume_paths: list[str], force: bool) -> list[str]:
    dom = _by_uuid(conn, uuid)
    if dom.isActive():
        if not force:
            raise OperationRefused(f"{dom.name()} is running: force it off first, or ask for a forced delete")
        dom.destroy()
    flags = (libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
             | libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)
    try:
        dom.undefineFlags(flags)
    except libvirt.libvirtError:
        optional = libvirt.VIR_DOMAIN_UNDEFINE_NVRAM | libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA
        dom.undefineFlags(flags & ~optional)  # drivers without NVRAM/checkpoint support
    return [problem for path in volume_paths if (problem := _delete_volume(conn, path))]


def undefine(uri: str, uuid: str, *, volume_paths: list[str] = (), force: bool = False) -> list[str]:
    """Remove the guest's definition, then the storage volumes at `volume_paths`.

    Refuses a running guest unless `force` (then it is forced off first). Returns the volumes
    that could not be deleted, with the reason; the guest itself is gone when this returns.
    """
    return connections.call(uri, lambda conn: _undefine(conn, uuid, list(volume_paths), force),
                            what=f"deleting guest {uuid}", timeout=60)

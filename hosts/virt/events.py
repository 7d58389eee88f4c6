"""Domain event subscription: libvirt callbacks become plain `DomainEvent` values."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import libvirt

LIFECYCLE_NAMES = ["defined", "undefined", "started", "suspended", "resumed", "stopped", "shutdown",
                   "pmsuspended", "crashed"]


@dataclass(frozen=True)
class DomainEvent:
    uuid: str
    name: str
    kind: str  # "lifecycle", "reboot", "device", "metadata", ...
    event: str = ""  # e.g. "started", "stopped"
    detail: int = 0


Sink = Callable[[DomainEvent], None]

_EXTRA_EVENTS = {
    libvirt.VIR_DOMAIN_EVENT_ID_REBOOT: "reboot",
    libvirt.VIR_DOMAIN_EVENT_ID_DEVICE_ADDED: "device",
    libvirt.VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED: "device",
    libvirt.VIR_DOMAIN_EVENT_ID_METADATA_CHANGE: "metadata",
}


def subscribe(conn: libvirt.virConnect, sink: Sink) -> list[int]:
    """Register for lifecycle and change events on `conn`; returns callback ids."""

    def lifecycle(_conn, dom, event, detail, _opaque):
        name = LIFECYCLE_NAMES[event] if 0 <= event < len(LIFECYCLE_NAMES) else str(event)
        sink(DomainEvent(dom.UUIDString(), dom.name(), "lifecycle", name, detail))

    ids = [conn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, lifecycle, None)]
    for event_id, kind in _EXTRA_EVENTS.items():
        def relay(_conn, dom, *rest, _kind=kind):
            sink(DomainEvent(dom.UUIDString(), dom.name(), _kind))

        try:
            ids.append(conn.domainEventRegisterAny(None, event_id, relay, None))
        except libvirt.libvirtError:
            pass  # a driver without this event (older libvirt, test driver)
    return ids


def unsubscribe(conn: libvirt.virConnect, ids: list[int]) -> None:
    for callback_id in ids:
        try:
            conn.domainEventDeregisterAny(callback_id)
        except libvirt.libvirtError:
            pass

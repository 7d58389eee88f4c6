"""A plain-dict digest of a domain for the inventory (the database caches this)."""

from __future__ import annotations

from typing import Any

from .domain import Domain


def summarize(dom: Domain) -> dict[str, Any]:
    """JSON-friendly facts about ``dom``; never raises on odd but well-formed XML."""
    return {
        "name": dom.name,
        "uuid": dom.uuid,
        "title": dom.title,
        "virt_type": dom.type,
        "arch": dom.arch,
        "machine": dom.machine,
        "vcpus": dom.vcpus,
        "vcpus_max": dom.vcpus_max,
        "memory_kib": dom.memory_kib,
        "current_memory_kib": dom.current_memory_kib,
        "os_id": dom.os_id,
        "firmware": dom.firmware,
        "boot_order": dom.boot_order(),
        "owner": dom.owner,
        "tags": dom.tags,
        "disks": [
            {
                "target": d.target,
                "bus": d.bus,
                "device": d.device or "disk",
                "source": d.source,
                "format": d.driver_type,
            }
            for d in dom.disks
        ],
        "nics": [
            {"mac": n.mac, "model": n.model, "type": n.type, "source": n.source}
            for n in dom.interfaces
        ],
        "graphics": [{"type": g.type, "port": g.port, "listen": g.listen} for g in dom.graphics],
    }

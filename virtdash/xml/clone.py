"""Preparing a copy of a guest definition (the volumes are copied by the caller)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .base import find_path, parse_xpath, remove_child
from .devices import Disk, random_mac
from .domain import Domain


@dataclass
class ClonePlan:
    """The new definition, and the disks whose storage must be copied before defining it.

    After copying, point each disk at its copy (``disk.set_source_file(new_path)``)
    and define ``domain``.
    """

    domain: Domain
    disks_to_copy: list[Disk] = field(default_factory=list)

    @property
    def sources(self) -> list[str]:
        return [d.source for d in self.disks_to_copy if d.source]


def _needs_copy(disk: Disk) -> bool:
    # Shared, read-only and removable media are used in place, like virt-clone does.
    return not (disk.is_removable or disk.readonly or disk.shareable) and disk.source is not None


def clone_prepare(dom: Domain, new_name: str) -> ClonePlan:
    """Deep-copy ``dom`` as ``new_name``: no UUID (libvirt assigns one), fresh MACs,
    no NVRAM path (each guest needs its own vars file), the original left untouched."""
    new = dom.copy()
    new.name = new_name
    new.uuid = None
    nvram = find_path(new.element, parse_xpath("./os/nvram")[0])
    if nvram is not None:
        remove_child(nvram)
    for graphics in new.graphics:
        if graphics.autoport is False:
            graphics.autoport, graphics.port = True, -1
    for nic in new.interfaces:
        nic.mac = random_mac()
        nic.target_dev = None
    return ClonePlan(domain=new, disks_to_copy=[d for d in new.disks if _needs_copy(d)])

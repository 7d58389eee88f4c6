"""``<domainsnapshot>``: what libvirt returns for a snapshot and what we send to create one."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Self

from .base import XMLChildren, XMLObject, XMLProperty
from .errors import XMLValueError

MEMORY_MODES = ("no", "internal", "external")


class SnapshotDisk(XMLObject):
    """One ``<disks><disk>``: how that disk is captured (``internal``/``external``/``no``)."""

    TAG = "disk"

    name = XMLProperty("./@name")
    snapshot = XMLProperty("./@snapshot")
    type = XMLProperty("./@type")
    driver_type = XMLProperty("./driver/@type")
    source_file = XMLProperty("./source/@file")


class DomainSnapshot(XMLObject):
    TAG = "domainsnapshot"
    CHILD_ORDER = {
        "domainsnapshot": ("name", "description", "state", "parent", "creationTime", "memory", "disks", "domain"),
    }

    name = XMLProperty("./name")
    description = XMLProperty("./description")
    state = XMLProperty("./state")
    parent_name = XMLProperty("./parent/name")
    creation_time = XMLProperty("./creationTime", int)
    memory_snapshot = XMLProperty("./memory/@snapshot")
    memory_file = XMLProperty("./memory/@file")
    disks = XMLChildren(SnapshotDisk, "./disks")

    @property
    def created(self) -> datetime | None:
        seconds = self.creation_time
        return None if seconds is None else datetime.fromtimestamp(seconds, UTC)

    @classmethod
    def new(
        cls,
        name: str,
        description: str | None = None,
        *,
        memory: str | None = None,
        memory_file: str | None = None,
        disks: Sequence[tuple[str, str]] = (),
    ) -> Self:
        """Snapshot request. ``disks`` is ``[(target, "internal"|"external"|"no"), ...]``;
        leave it empty to let libvirt decide per disk."""
        # Same rule as guest names, but snapshot names may start with '_'; keep it simple.
        if not name or len(name) > 64 or "/" in name or not name.isprintable():
            raise XMLValueError(f"Snapshot name {name!r} is not allowed.")
        if memory is not None and memory not in MEMORY_MODES:
            raise XMLValueError(f"Memory snapshot must be one of {', '.join(MEMORY_MODES)}.")
        if memory == "external" and not memory_file:
            raise XMLValueError("An external memory snapshot needs a file.")
        snap = cls.blank()
        snap.name = name
        snap.description = description
        snap.memory_snapshot = memory
        snap.memory_file = memory_file
        for target, mode in disks:
            if mode not in MEMORY_MODES:
                raise XMLValueError(f"Disk snapshot mode must be one of {', '.join(MEMORY_MODES)}.")
            disk = snap.disks.new()
            disk.name, disk.snapshot = target, mode
        return snap

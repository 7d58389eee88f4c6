"""``<domain>``: the guest definition, edited in place (STYLE rule 7: an edit is a round trip)."""

from __future__ import annotations

import re
import uuid as uuid_mod
from collections.abc import Iterator, Sequence
from typing import Any, Self, TypeVar

from lxml import etree

from .base import (
    NAMESPACES,
    XMLObject,
    XMLProperty,
    XMLSizeProperty,
    append_child,
    find_path,
    parse_xpath,
    place_child,
    prune_empty,
    remove_child,
)
from .devices import NON_DEVICE_TAGS, Device, Disk, Graphics, Interface, device_for
from .errors import XMLValueError
from .names import validate_guest_name, validate_uuid
from .units import KIB, MIB

D = TypeVar("D", bound=Device)

MAX_VCPUS = 4096
_FEATURE_RE = re.compile(r"[a-z][a-z0-9_-]*")
_EFI_HINTS = ("ovmf", "edk2", "aavmf", "efi")


class Domain(XMLObject):
    """A libvirt guest. Sizes are in KiB unless a name says otherwise."""

    TAG = "domain"
    CHILD_ORDER = {
        "domain": (
            "name", "uuid", "genid", "title", "description", "metadata", "maxMemory", "memory",
            "currentMemory", "blkiotune", "memtune", "memoryBacking", "vcpu", "vcpus", "iothreads",
            "cputune", "numatune", "resource", "sysinfo", "bootloader", "bootloader_args", "os",
            "idmap", "features", "cpu", "clock", "on_poweroff", "on_reboot", "on_crash",
            "on_lockfailure", "pm", "perf", "devices", "seclabel",
        ),
        "os": ("type", "loader", "nvram", "kernel", "initrd", "cmdline", "dtb", "boot", "bootmenu", "smbios", "bios"),
    }

    type = XMLProperty("./@type")
    name = XMLProperty("./name", validate=validate_guest_name)
    uuid = XMLProperty("./uuid", validate=validate_uuid)
    title = XMLProperty("./title")
    description = XMLProperty("./description")
    memory_kib = XMLSizeProperty("./memory", "KiB", KIB, "KiB")
    current_memory_kib = XMLSizeProperty("./currentMemory", "KiB", KIB, "KiB")
    vcpus_max = XMLProperty("./vcpu", int)
    vcpus_current_attr = XMLProperty("./vcpu/@current", int)
    vcpu_placement = XMLProperty("./vcpu/@placement")
    os_type = XMLProperty("./os/type")
    arch = XMLProperty("./os/type/@arch")
    machine = XMLProperty("./os/type/@machine")
    os_firmware = XMLProperty("./os/@firmware")
    loader = XMLProperty("./os/loader")
    loader_type = XMLProperty("./os/loader/@type")
    loader_readonly = XMLProperty("./os/loader/@readonly", bool)
    loader_secure = XMLProperty("./os/loader/@secure", bool)
    nvram = XMLProperty("./os/nvram")
    boot_menu = XMLProperty("./os/bootmenu/@enable", bool)
    kernel = XMLProperty("./os/kernel")
    initrd = XMLProperty("./os/initrd")
    cmdline = XMLProperty("./os/cmdline")
    acpi = XMLProperty("./features/acpi", bool, presence=True)
    apic = XMLProperty("./features/apic", bool, presence=True)
    pae = XMLProperty("./features/pae", bool, presence=True)
    cpu_mode = XMLProperty("./cpu/@mode")
    clock_offset = XMLProperty("./clock/@offset")
    on_poweroff = XMLProperty("./on_poweroff")
    on_reboot = XMLProperty("./on_reboot")
    on_crash = XMLProperty("./on_crash")
    emulator = XMLProperty("./devices/emulator")
    owner = XMLProperty("./metadata/virtdash:instance/virtdash:owner")
    os_id = XMLProperty("./metadata/libosinfo:libosinfo/libosinfo:os/@id")

    # ------------------------------------------------------------ memory and vcpus

    @property
    def memory_mib(self) -> int | None:
        kib = self.memory_kib
        return None if kib is None else kib // 1024

    def set_memory_mib(self, memory_mib: int, current_mib: int | None = None) -> None:
        """Set maximum (and current, default the same) memory; both end up in KiB."""
        current_mib = memory_mib if current_mib is None else current_mib
        for value in (memory_mib, current_mib):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise XMLValueError(f"Memory must be a positive number of MiB, got {value!r}.")
        if current_mib > memory_mib:
            raise XMLValueError("Current memory cannot exceed maximum memory.")
        if memory_mib * MIB > 16 * 1024**4:
            raise XMLValueError(f"{memory_mib} MiB is more memory than any host has.")
        self.memory_kib = memory_mib * 1024
        self.current_memory_kib = current_mib * 1024

    @property
    def vcpus(self) -> int | None:
        """vCPUs online at boot: ``<vcpu current=...>`` if present, else the maximum."""
        current = self.vcpus_current_attr
        return current if current is not None else self.vcpus_max

    def set_vcpus(self, current: int, maximum: int | None = None) -> None:
        maximum = current if maximum is None else maximum
        for value in (current, maximum):
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_VCPUS:
                raise XMLValueError(f"vCPU count must be between 1 and {MAX_VCPUS}, got {value!r}.")
        if current > maximum:
            raise XMLValueError("Current vCPUs cannot exceed the maximum.")
        self.vcpus_max = maximum
        self.vcpus_current_attr = None if current == maximum else current

    # ------------------------------------------------------------ firmware and boot

    @property
    def firmware(self) -> str:
        """``"efi"`` or ``"bios"``, from ``<os firmware=...>`` or the loader."""
        if self.os_firmware:
            return self.os_firmware
        loader = (self.loader or "").lower()
        if self.loader_type == "pflash" or any(hint in loader for hint in _EFI_HINTS):
            return "efi"
        return "bios"

    def set_firmware(self, firmware: str) -> None:
        """Switch to ``efi`` (libvirt picks the loader) or back to ``bios``.

        Going to BIOS drops a pflash loader and its NVRAM path, which would
        otherwise keep the guest booting UEFI.
        """
        if firmware == "efi":
            self.os_firmware = "efi"
        elif firmware == "bios":
            self.os_firmware = None
            if self.firmware == "efi":
                for path in ("./os/loader", "./os/nvram"):
                    node = find_path(self.element, parse_xpath(path)[0])
                    if node is not None:
                        remove_child(node)
        else:
            raise XMLValueError(f"Firmware must be 'bios' or 'efi', got {firmware!r}.")

    @property
    def boot_devs(self) -> list[str]:
        """The old-style ``<os><boot dev=.../>`` list, e.g. ``["hd", "cdrom"]``."""
        os_node = find_path(self.element, parse_xpath("./os")[0])
        if os_node is None:
            return []
        return [b.get("dev", "") for b in os_node.iterchildren("boot")]

    @boot_devs.setter
    def boot_devs(self, devs: Sequence[str]) -> None:
        allowed = {"hd", "cdrom", "network", "fd"}
        if bad := [d for d in devs if d not in allowed]:
            raise XMLValueError(f"Unknown boot device(s) {bad}; use {sorted(allowed)}.")
        os_node = find_path(self.element, parse_xpath("./os")[0], create=bool(devs), order=self.CHILD_ORDER)
        if os_node is None:
            return
        for node in list(os_node.iterchildren("boot")):
            remove_child(node)
        for dev in devs:
            place_child(os_node, etree.Element("boot", dev=dev), self.CHILD_ORDER["os"])

    def boot_order(self) -> list[str]:
        """What boots first: per-device ``<boot order>`` if any, else ``boot_devs``."""
        ordered = sorted((d for d in self.devices() if d.boot_order is not None), key=lambda d: d.boot_order)
        return [d.describe() for d in ordered] if ordered else self.boot_devs

    def set_boot_order(self, devices: Sequence[Device]) -> None:
        """Per-device boot order; libvirt refuses it mixed with ``<os><boot>``, so those go."""
        self.boot_devs = []
        for dev in self.devices():
            dev.boot_order = None
        for index, dev in enumerate(devices, start=1):
            dev.boot_order = index

    # ------------------------------------------------------------ features

    def features(self) -> list[str]:
        node = find_path(self.element, parse_xpath("./features")[0])
        return [] if node is None else [str(c.tag) for c in node if isinstance(c.tag, str)]

    def set_feature(self, name: str, enabled: bool) -> None:
        """Turn a flag feature such as ``acpi`` or ``pae`` on (``<acpi/>``) or off."""
        if not _FEATURE_RE.fullmatch(name):
            raise XMLValueError(f"{name!r} is not a feature name.")
        XMLProperty(f"./features/{name}", bool, presence=True).__set__(self, enabled)

    # ------------------------------------------------------------ metadata

    @property
    def tags(self) -> list[str]:
        node = find_path(self.element, parse_xpath("./metadata/virtdash:instance/virtdash:tags")[0])
        return [] if node is None else [t.text or "" for t in node.iterchildren(_vd("tag"))]

    @tags.setter
    def tags(self, tags: Sequence[str]) -> None:
        cleaned = list(dict.fromkeys(t.strip() for t in tags if t.strip()))
        steps = parse_xpath("./metadata/virtdash:instance/virtdash:tags")[0]
        node = find_path(self.element, steps, create=bool(cleaned), order=self.CHILD_ORDER)
        if node is None:
            return
        for child in list(node):
            remove_child(child)
        for tag in cleaned:
            append_child(node, etree.Element(_vd("tag"))).text = tag
        prune_empty(self.element, node)

    # ------------------------------------------------------------ devices

    def devices(self) -> Iterator[Device]:
        """Every child of ``<devices>`` as a typed object (``UnknownDevice`` if unmodelled)."""
        node = find_path(self.element, parse_xpath("./devices")[0])
        for child in () if node is None else node:
            if isinstance(child.tag, str) and child.tag not in NON_DEVICE_TAGS:
                yield device_for(child)

    def devices_of(self, cls: type[D]) -> list[D]:
        return [d for d in self.devices() if isinstance(d, cls)]

    @property
    def disks(self) -> list[Disk]:
        return self.devices_of(Disk)

    @property
    def interfaces(self) -> list[Interface]:
        return self.devices_of(Interface)

    @property
    def graphics(self) -> list[Graphics]:
        return self.devices_of(Graphics)

    def find_disk(self, target: str) -> Disk | None:
        return next((d for d in self.disks if d.target == target), None)

    def add_device(self, device: D) -> D:
        """Insert after the last device of the same kind, so disks stay together."""
        if device.element.getparent() is not None:
            raise XMLValueError("That device already belongs to a domain; copy() it first.")
        parent = find_path(self.element, parse_xpath("./devices")[0], create=True, order=self.CHILD_ORDER)
        assert parent is not None
        same = list(parent.iterchildren(device.element.tag))
        append_child(parent, device.element, after=same[-1] if same else None)
        return device

    def remove_device(self, device: Device) -> None:
        node = find_path(self.element, parse_xpath("./devices")[0])
        if node is None or device.element.getparent() is not node:
            raise XMLValueError(f"{device.describe()} is not a device of this domain.")
        remove_child(device.element)

    def change_media(self, target: str, path: str | None) -> Disk:
        """Insert ``path`` into the cdrom/floppy at ``target``, or eject it with None."""
        disk = self.find_disk(target)
        if disk is None:
            raise XMLValueError(f"No disk with target {target!r}.")
        if not disk.is_removable:
            raise XMLValueError(f"{target} is a {disk.device}, not a cdrom or floppy.")
        if path is None:
            disk.clear_source()
        elif path.startswith("/dev/"):
            disk.set_source_block(path)
        else:
            disk.set_source_file(path)
        return disk

    def summary(self) -> dict[str, Any]:
        from .summary import summarize

        return summarize(self)

    # ------------------------------------------------------------ builder

    @classmethod
    def new(
        cls,
        name: str,
        memory_mib: int,
        vcpus: int,
        virt_type: str = "qemu",
        *,
        arch: str = "x86_64",
        machine: str | None = None,
        firmware: str = "bios",
        uuid: str | None = None,
    ) -> Self:
        """A minimal, definable guest with no devices yet; add them with ``add_device``."""
        dom = cls.blank()
        dom.type = virt_type
        dom.name = name
        dom.uuid = uuid or str(uuid_mod.uuid4())
        dom.set_memory_mib(memory_mib)
        dom.set_vcpus(vcpus)
        dom.os_type = "hvm"
        dom.arch = arch
        dom.machine = machine
        if firmware != "bios":
            dom.set_firmware(firmware)
        dom.boot_devs = ["hd"]
        dom.acpi = True
        dom.apic = True
        dom.clock_offset = "utc"
        dom.on_poweroff, dom.on_reboot, dom.on_crash = "destroy", "restart", "destroy"
        find_path(dom.element, parse_xpath("./devices")[0], create=True, order=dom.CHILD_ORDER)
        return dom


def _vd(local: str) -> str:
    return f"{{{NAMESPACES['virtdash']}}}{local}"

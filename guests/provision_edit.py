"""Edit plans: change only what the user asked in a parsed inactive definition.

Pure functions over `virtdash.xml.Domain` (no Django, no libvirt): each `plan_*` edits the
domain in place and returns the `Plan` of extra work the task does around the define —
volumes to create or resize first, and the hot-plug calls that make the change live too.
Ops are plain dicts so they survive a trip through the Job's JSON params.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field

from virtdash.xml import Disk, Domain, Graphics, Interface, StorageVolume, Video, XMLValueError, parse_size
from virtdash.xml.names import validate_bridge_name, validate_network_name

MAX_DISK_BYTES = 64 * 1024**4  # 64 TiB: above that is a typo, not a disk
TARGET_PREFIX = {"virtio": "vd", "sata": "sd", "scsi": "sd", "usb": "sd", "ide": "hd"}
NIC_MODELS = ("virtio", "e1000", "e1000e", "rtl8139")
VIDEO_MODELS = ("virtio", "vga", "qxl", "bochs", "cirrus", "none")


class EditError(ValueError):
    """The requested change is invalid; the message is for the operator."""


@dataclass
class Plan:
    pre_ops: list[dict] = field(default_factory=list)
    live_ops: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_params(self) -> dict:
        return {"pre_ops": self.pre_ops, "live_ops": self.live_ops, "notes": self.notes}


def _int(value, what: str, low: int, high: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise EditError(f"{what} must be a whole number.") from None
    if not low <= number <= high:
        raise EditError(f"{what} must be between {low} and {high}; got {number}.")
    return number


def _size(value, what: str) -> int:
    try:
        return parse_size(str(value), default_unit="G", max_bytes=MAX_DISK_BYTES)
    except ValueError as exc:
        raise EditError(f"{what}: {exc}") from None


# ------------------------------------------------------------------ CPU, memory, metadata, boot


def plan_general(dom: Domain, data: dict, *, active: bool) -> Plan:
    """vCPUs, memory, title/description/tags/owner, boot menu, autostart."""
    plan = Plan()
    old_vcpus, old_max_vcpus = dom.vcpus, dom.vcpus_max
    old_kib, old_max_kib = dom.current_memory_kib or dom.memory_kib, dom.memory_kib
    max_vcpus = _int(data["max_vcpus"], "Maximum vCPUs", 1, 4096)
    vcpus = _int(data["vcpus"], "vCPUs", 1, 4096)
    max_mib = _int(data["max_memory_mib"], "Maximum memory (MiB)", 16, 16 * 1024 * 1024)
    mib = _int(data["memory_mib"], "Memory (MiB)", 16, 16 * 1024 * 1024)
    try:
        dom.set_vcpus(vcpus, max_vcpus)
        dom.set_memory_mib(max_mib, mib)
    except XMLValueError as exc:
        raise EditError(str(exc)) from None
    if active:
        if max_vcpus == old_max_vcpus and vcpus != old_vcpus:
            plan.live_ops.append({"op": "vcpus", "count": vcpus})
        if max_mib * 1024 == old_max_kib and mib * 1024 != old_kib:
            plan.live_ops.append({"op": "memory", "kib": mib * 1024})
    dom.title = data.get("title") or None
    dom.description = data.get("description") or None
    dom.owner = data.get("owner") or None
    dom.tags = [t for t in str(data.get("tags", "")).replace(",", " ").split() if t]
    if "boot_menu" in data:
        dom.boot_menu = bool(data["boot_menu"]) or None
    if data.get("autostart") is not None and bool(data["autostart"]) != data.get("autostart_now"):
        plan.live_ops.append({"op": "autostart", "enabled": bool(data["autostart"])})
    return plan


def plan_boot(dom: Domain, order: list[str], boot_menu: bool) -> Plan:
    """Boot order by device labels (``disk vda``, ``interface 52:54:...``) as shown to the user."""
    by_label = {d.describe(): d for d in dom.devices() if isinstance(d, Disk | Interface)}
    unknown = [label for label in order if label not in by_label]
    if unknown:
        raise EditError(f"Unknown boot device(s): {', '.join(unknown)}.")
    if order:
        dom.set_boot_order([by_label[label] for label in order])
    dom.boot_menu = True if boot_menu else None
    return Plan()


def plan_display(dom: Domain, graphics: str, video: str) -> Plan:
    """Graphics VNC (loopback) or none; one video model."""
    if graphics not in ("vnc", "none"):
        raise EditError("Graphics must be VNC or none.")
    if video not in VIDEO_MODELS:
        raise EditError(f"Video model must be one of {', '.join(VIDEO_MODELS)}.")
    current = [g for g in dom.graphics]
    if graphics == "none":
        for gfx in current:
            dom.remove_device(gfx)
    elif not any(g.type == "vnc" for g in current):
        for gfx in current:
            dom.remove_device(gfx)
        dom.add_device(Graphics.new("vnc", listen="127.0.0.1"))
    videos = dom.devices_of(Video)
    if video == "none":
        for vid in videos:
            dom.remove_device(vid)
    elif videos:
        videos[0].model = video
    else:
        dom.add_device(Video.new(video))
    return Plan()


# ------------------------------------------------------------------ disks


def next_target(dom: Domain, bus: str) -> str:
    prefix = TARGET_PREFIX.get(bus)
    if prefix is None:
        raise EditError(f"Disk bus must be one of {', '.join(TARGET_PREFIX)}.")
    used = {d.target for d in dom.disks}
    for letter in string.ascii_lowercase:
        if prefix + letter not in used:
            return prefix + letter
    raise EditError("No free disk target left on that bus.")


def plan_add_disk(dom: Domain, data: dict, *, active: bool, pool_path: str = "") -> Plan:
    """A new volume in a pool (name, size, format) or an existing volume/image path."""
    plan = Plan()
    bus = data.get("bus") or "virtio"
    target = next_target(dom, bus)
    fmt = data.get("format") or "qcow2"
    if data.get("existing_path"):
        path = str(data["existing_path"])
        disk = Disk.new(target, path=path, bus=bus, driver_type=data.get("existing_format") or fmt)
    else:
        try:
            vol = StorageVolume.new(data["volume_name"], _size(data["size"], "Disk size"), format=fmt)
        except (ValueError, KeyError) as exc:
            raise EditError(str(exc)) from None
        if not pool_path:
            raise EditError("Pick a directory-backed storage pool for the new disk.")
        path = f"{pool_path.rstrip('/')}/{vol.name}"
        plan.pre_ops.append({"op": "create_volume", "pool": data["pool"], "xml": vol.to_string(), "path": path})
        disk = Disk.new(target, path=path, bus=bus, driver_type=fmt)
    dom.add_device(disk)
    if active:
        plan.live_ops.append({"op": "attach", "xml": disk.to_string()})
    plan.notes.append(f"add disk {target} ({path})")
    return plan


def _disk(dom: Domain, target: str) -> Disk:
    disk = dom.find_disk(target)
    if disk is None:
        raise EditError(f"The guest has no disk {target}.")
    return disk


def plan_remove_disk(dom: Domain, target: str, *, active: bool) -> Plan:
    plan = Plan()
    disk = _disk(dom, target)
    if active:
        plan.live_ops.append({"op": "detach", "xml": disk.to_string()})
    dom.remove_device(disk)
    plan.notes.append(f"remove disk {target} (its volume is kept)")
    return plan


def plan_resize_disk(dom: Domain, target: str, size, *, active: bool, current_capacity: int) -> Plan:
    """Grow a disk's volume; shrinking loses data and is refused."""
    disk = _disk(dom, target)
    if active:
        raise EditError("Shut the guest down before resizing a disk.")
    if not disk.source_file:
        raise EditError(f"{target} is not a file-backed volume VirtDash can resize.")
    capacity = _size(size, "New size")
    if capacity <= current_capacity:
        raise EditError("A disk can only grow; the new size must be larger than the current one.")
    return Plan(pre_ops=[{"op": "resize_volume", "path": disk.source_file, "capacity": capacity}],
                notes=[f"resize {target} to {capacity} bytes"])


def plan_media(dom: Domain, target: str, path: str | None, *, active: bool) -> Plan:
    """Insert an ISO into a CD/floppy drive, or eject it (path None)."""
    plan = Plan()
    try:
        disk = dom.change_media(target, path)
    except XMLValueError as exc:
        raise EditError(str(exc)) from None
    if active:
        plan.live_ops.append({"op": "update", "xml": disk.to_string()})
    return plan


def plan_add_cdrom(dom: Domain, path: str | None) -> Plan:
    bus = "sata"
    target = next_target(dom, bus)
    dom.add_device(Disk.new(target, path=path, device="cdrom", bus=bus, driver_type="raw"))
    return Plan(notes=[f"add CD drive {target}"])


# ------------------------------------------------------------------ network interfaces


def _nic_source(kind: str, source: str) -> str | None:
    try:
        if kind == "network":
            return validate_network_name(source)
        if kind == "bridge":
            return validate_bridge_name(source)
    except ValueError as exc:
        raise EditError(str(exc)) from None
    raise EditError("A NIC connects to a libvirt network or a bridge.")


def plan_add_nic(dom: Domain, kind: str, source: str, model: str, *, active: bool) -> Plan:
    if model not in NIC_MODELS:
        raise EditError(f"NIC model must be one of {', '.join(NIC_MODELS)}.")
    nic = dom.add_device(Interface.new(kind, _nic_source(kind, source), model=model))
    plan = Plan(notes=[f"add NIC {nic.mac} on {kind} {source}"])
    if active:
        plan.live_ops.append({"op": "attach", "xml": nic.to_string()})
    return plan


def _nic(dom: Domain, mac: str) -> Interface:
    nic = next((n for n in dom.interfaces if n.mac == mac), None)
    if nic is None:
        raise EditError(f"The guest has no NIC {mac}.")
    return nic


def plan_remove_nic(dom: Domain, mac: str, *, active: bool) -> Plan:
    nic = _nic(dom, mac)
    plan = Plan(notes=[f"remove NIC {mac}"])
    if active:
        plan.live_ops.append({"op": "detach", "xml": nic.to_string()})
    dom.remove_device(nic)
    return plan


def plan_change_nic(dom: Domain, mac: str, kind: str, source: str, model: str) -> Plan:
    """Change a NIC's network/bridge and model in place (takes effect at next boot)."""
    nic = _nic(dom, mac)
    if model not in NIC_MODELS:
        raise EditError(f"NIC model must be one of {', '.join(NIC_MODELS)}.")
    src = _nic_source(kind, source)
    nic.source_network = nic.source_bridge = None
    nic.type = kind
    if kind == "network":
        nic.source_network = src
    else:
        nic.source_bridge = src
    nic.model = model
    return Plan(notes=[f"NIC {mac} → {kind} {source} ({model})"])

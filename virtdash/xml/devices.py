"""Typed views over the children of ``<devices>``.

Only what the dashboard shows or edits is mapped; everything else stays in the
tree untouched. Any element without a class here is listed as :class:`UnknownDevice`.
"""

from __future__ import annotations

from typing import Self

from .base import Element, XMLProperty, find_path, parse_xpath, remove_child
from .devicebase import Device, UnknownDevice, random_mac
from .devices_misc import (
    Audio,
    Channel,
    CharDevice,
    Console,
    Controller,
    Filesystem,
    Hostdev,
    Input,
    Memballoon,
    Parallel,
    Redirdev,
    Rng,
    Serial,
    Smartcard,
    Sound,
    Tpm,
    Video,
    Watchdog,
)
from .names import validate_mac


class Disk(Device):
    TAG = "disk"
    CHILD_ORDER = {
        "disk": (
            "driver", "source", "backingStore", "target", "iotune", "readonly", "shareable",
            "serial", "boot", "alias", "address",
        ),
    }

    type = XMLProperty("./@type")
    device = XMLProperty("./@device")
    target = XMLProperty("./target/@dev")
    bus = XMLProperty("./target/@bus")
    driver_name = XMLProperty("./driver/@name")
    driver_type = XMLProperty("./driver/@type")
    driver_cache = XMLProperty("./driver/@cache")
    source_file = XMLProperty("./source/@file")
    source_dev = XMLProperty("./source/@dev")
    source_dir = XMLProperty("./source/@dir")
    source_pool = XMLProperty("./source/@pool")
    source_volume = XMLProperty("./source/@volume")
    source_protocol = XMLProperty("./source/@protocol")
    source_name = XMLProperty("./source/@name")
    source_host = XMLProperty("./source/host/@name")
    readonly = XMLProperty("./readonly", bool, presence=True)
    shareable = XMLProperty("./shareable", bool, presence=True)
    serial = XMLProperty("./serial")

    @property
    def source(self) -> str | None:
        """Where the data comes from, as one string whatever the disk type."""
        if self.source_pool and self.source_volume:
            return f"{self.source_pool}/{self.source_volume}"
        if self.source_protocol:
            host = f"{self.source_host}/" if self.source_host else ""
            return f"{self.source_protocol}://{host}{self.source_name or ''}"
        return self.source_file or self.source_dev or self.source_dir or self.source_name

    @property
    def is_removable(self) -> bool:
        return self.device in ("cdrom", "floppy")

    def clear_source(self) -> None:
        """Eject: drop ``<source>`` entirely, as libvirt wants for an empty drive."""
        node = find_path(self.element, parse_xpath("./source")[0])
        if node is not None:
            remove_child(node)

    def _reset_source(self, type: str) -> None:
        """Empty ``<source>`` in place (keeping its position) before a new one is set."""
        node = find_path(self.element, parse_xpath("./source")[0])
        if node is not None:
            node.attrib.clear()
            for child in list(node):
                remove_child(child)
        self.type = type

    def set_source_file(self, path: str) -> None:
        self._reset_source("file")
        self.source_file = path

    def set_source_block(self, dev: str) -> None:
        self._reset_source("block")
        self.source_dev = dev

    def set_source_volume(self, pool: str, volume: str) -> None:
        self._reset_source("volume")
        self.source_pool = pool
        self.source_volume = volume

    def describe(self) -> str:
        return f"{self.device or 'disk'} {self.target or '?'}"

    @classmethod
    def new(
        cls,
        target: str,
        *,
        path: str | None = None,
        device: str = "disk",
        bus: str = "virtio",
        driver_type: str | None = "qcow2",
        readonly: bool = False,
    ) -> Self:
        """A file-backed disk (or an empty cdrom when ``path`` is None)."""
        disk = cls.blank()
        disk.type = "file"
        disk.device = device
        if driver_type:
            disk.driver_name = "qemu"
            disk.driver_type = driver_type
        if path is not None:
            disk.source_file = path
        disk.target = target
        disk.bus = bus
        disk.readonly = readonly or device == "cdrom"
        return disk


class Interface(Device):
    TAG = "interface"
    CHILD_ORDER = {
        "interface": ("mac", "source", "virtualport", "target", "model", "driver", "link", "boot", "alias", "address"),
    }

    type = XMLProperty("./@type")
    mac = XMLProperty("./mac/@address", validate=validate_mac)
    model = XMLProperty("./model/@type")
    source_network = XMLProperty("./source/@network")
    source_bridge = XMLProperty("./source/@bridge")
    source_dev = XMLProperty("./source/@dev")
    source_mode = XMLProperty("./source/@mode")
    target_dev = XMLProperty("./target/@dev")
    link_state = XMLProperty("./link/@state")

    @property
    def source(self) -> str | None:
        return self.source_network or self.source_bridge or self.source_dev

    def describe(self) -> str:
        return f"interface {self.mac or self.type or '?'}"

    @classmethod
    def new(cls, type: str, source: str | None = None, *, model: str = "virtio", mac: str | None = None) -> Self:
        """``type`` is network/bridge/direct/user; ``source`` the network, bridge or host device."""
        nic = cls.blank()
        nic.type = type
        nic.mac = mac or random_mac()
        if type == "network":
            nic.source_network = source
        elif type == "bridge":
            nic.source_bridge = source
        elif type == "direct":
            nic.source_dev = source
            nic.source_mode = "bridge"
        nic.model = model
        return nic


class Graphics(Device):
    TAG = "graphics"

    type = XMLProperty("./@type")
    port = XMLProperty("./@port", int)
    tls_port = XMLProperty("./@tlsPort", int)
    autoport = XMLProperty("./@autoport", bool)
    listen_attr = XMLProperty("./@listen")
    listen_type = XMLProperty("./listen/@type")
    passwd = XMLProperty("./@passwd")
    keymap = XMLProperty("./@keymap")
    gl = XMLProperty("./gl/@enable", bool)

    @property
    def listen(self) -> str | None:
        """The address to listen on, from ``<listen type='address'>`` or the old attribute."""
        node = find_path(self.element, parse_xpath("./listen[@type='address']")[0])
        return node.get("address") if node is not None and node.get("address") else self.listen_attr

    @listen.setter
    def listen(self, address: str | None) -> None:
        # libvirt wants the attribute and the first <listen> to agree.
        self.listen_attr = address
        steps = parse_xpath("./listen[@type='address']")[0]
        node = find_path(self.element, steps, create=address is not None)
        if node is not None:
            if address is None:
                remove_child(node)
            else:
                node.set("address", address)

    @classmethod
    def new(cls, type: str = "vnc", *, listen: str | None = "127.0.0.1", port: int | None = None) -> Self:
        gfx = cls.blank()
        gfx.type = type
        gfx.port = -1 if port is None else port
        gfx.autoport = port is None
        if listen is not None:
            gfx.listen = listen
        return gfx


DEVICE_CLASSES: dict[str, type[Device]] = {
    cls.TAG: cls
    for cls in (
        Disk, Interface, Graphics, Video, Controller, Serial, Console, Parallel, Channel, Input,
        Sound, Hostdev, Memballoon, Watchdog, Rng, Redirdev, Filesystem, Tpm, Smartcard, Audio,
    )
}

#: Children of ``<devices>`` that are not devices (``<emulator>`` is ``Domain.emulator``).
NON_DEVICE_TAGS: frozenset[str] = frozenset({"emulator"})


def device_for(element: Element) -> Device:
    """The typed wrapper for any element under ``<devices>``; never raises."""
    cls = DEVICE_CLASSES.get(element.tag if isinstance(element.tag, str) else "", UnknownDevice)
    return cls(element)



__all__ = [
    "DEVICE_CLASSES",
    "Audio",
    "Channel",
    "CharDevice",
    "Console",
    "Controller",
    "Device",
    "Disk",
    "Filesystem",
    "Graphics",
    "Hostdev",
    "Input",
    "Interface",
    "Memballoon",
    "Parallel",
    "Redirdev",
    "Rng",
    "Serial",
    "Smartcard",
    "Sound",
    "Tpm",
    "UnknownDevice",
    "Video",
    "Watchdog",
    "device_for",
    "random_mac",
]

"""Device classes that are listed and lightly edited; see :mod:`.devices` for the rest."""

from __future__ import annotations

from typing import Self

from .base import XMLProperty
from .devicebase import Device


class Video(Device):
    TAG = "video"

    model = XMLProperty("./model/@type")
    vram = XMLProperty("./model/@vram", int)
    heads = XMLProperty("./model/@heads", int)
    primary = XMLProperty("./model/@primary", bool)
    accel3d = XMLProperty("./model/acceleration/@accel3d", bool)

    @classmethod
    def new(cls, model: str = "virtio") -> Self:
        video = cls.blank()
        video.model = model
        return video


class Controller(Device):
    TAG = "controller"

    type = XMLProperty("./@type")
    index = XMLProperty("./@index", int)
    model = XMLProperty("./@model")
    ports = XMLProperty("./@ports", int)

    def describe(self) -> str:
        return f"controller {self.type} {self.index}"

    @classmethod
    def new(cls, type: str, index: int = 0, model: str | None = None) -> Self:
        ctrl = cls.blank()
        ctrl.type, ctrl.index, ctrl.model = type, index, model
        return ctrl


class CharDevice(Device):
    """``<serial>``, ``<console>``, ``<parallel>`` and ``<channel>`` share one shape."""

    type = XMLProperty("./@type")
    source_path = XMLProperty("./source/@path")
    source_mode = XMLProperty("./source/@mode")
    source_host = XMLProperty("./source/@host")
    source_service = XMLProperty("./source/@service")
    target_type = XMLProperty("./target/@type")
    target_port = XMLProperty("./target/@port", int)
    target_name = XMLProperty("./target/@name")

    @classmethod
    def new(cls, type: str = "pty", target_type: str | None = None) -> Self:
        dev = cls.blank()
        dev.type = type
        dev.target_type = target_type
        return dev


class Serial(CharDevice):
    TAG = "serial"


class Console(CharDevice):
    TAG = "console"


class Parallel(CharDevice):
    TAG = "parallel"


class Channel(CharDevice):
    TAG = "channel"

    def describe(self) -> str:
        return f"channel {self.target_name or self.type}"


class Input(Device):
    TAG = "input"

    type = XMLProperty("./@type")
    bus = XMLProperty("./@bus")

    @classmethod
    def new(cls, type: str = "tablet", bus: str = "usb") -> Self:
        dev = cls.blank()
        dev.type, dev.bus = type, bus
        return dev


class Sound(Device):
    TAG = "sound"

    model = XMLProperty("./@model")


class Hostdev(Device):
    TAG = "hostdev"

    mode = XMLProperty("./@mode")
    type = XMLProperty("./@type")
    managed = XMLProperty("./@managed", bool)
    vendor_id = XMLProperty("./source/vendor/@id")
    product_id = XMLProperty("./source/product/@id")
    pci_domain = XMLProperty("./source/address/@domain")
    pci_bus = XMLProperty("./source/address/@bus")
    pci_slot = XMLProperty("./source/address/@slot")
    pci_function = XMLProperty("./source/address/@function")

    def describe(self) -> str:
        if self.type == "pci" and self.pci_bus is not None:
            return f"hostdev pci {self.pci_domain}:{self.pci_bus}:{self.pci_slot}.{self.pci_function}"
        if self.vendor_id:
            return f"hostdev {self.type} {self.vendor_id}:{self.product_id}"
        return f"hostdev {self.type}"


class Memballoon(Device):
    TAG = "memballoon"

    model = XMLProperty("./@model")


class Watchdog(Device):
    TAG = "watchdog"

    model = XMLProperty("./@model")
    action = XMLProperty("./@action")


class Rng(Device):
    TAG = "rng"

    model = XMLProperty("./@model")
    backend_model = XMLProperty("./backend/@model")
    backend = XMLProperty("./backend")


class Redirdev(Device):
    TAG = "redirdev"

    bus = XMLProperty("./@bus")
    type = XMLProperty("./@type")


class Filesystem(Device):
    TAG = "filesystem"

    type = XMLProperty("./@type")
    source_dir = XMLProperty("./source/@dir")
    target_dir = XMLProperty("./target/@dir")
    readonly = XMLProperty("./readonly", bool, presence=True)


class Tpm(Device):
    TAG = "tpm"

    model = XMLProperty("./@model")
    backend_type = XMLProperty("./backend/@type")
    backend_version = XMLProperty("./backend/@version")


class Smartcard(Device):
    TAG = "smartcard"

    mode = XMLProperty("./@mode")


class Audio(Device):
    TAG = "audio"

    type = XMLProperty("./@type")
    id = XMLProperty("./@id", int)

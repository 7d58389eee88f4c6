"""Device base classes.

The base every device class extends, and the fallback for elements we do not model.
"""

from __future__ import annotations

import secrets

from .base import XMLObject, XMLProperty


def random_mac() -> str:
    """A random MAC under QEMU's ``52:54:00`` prefix (locally administered, unicast)."""
    tail = secrets.token_bytes(3)
    return "52:54:00:" + ":".join(f"{b:02x}" for b in tail)


class Device(XMLObject):
    """Common to every device: libvirt alias, per-device boot order, address type."""

    alias = XMLProperty("./alias/@name")
    boot_order = XMLProperty("./boot/@order", int)
    address_type = XMLProperty("./address/@type")

    @property
    def kind(self) -> str:
        return str(self.element.tag)

    def describe(self) -> str:
        """Short label for lists and boot order, e.g. ``disk vda``."""
        return self.kind


class UnknownDevice(Device):
    """Any device element we do not model: its tag and attributes, read-only in spirit."""

    @property
    def attributes(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in self.element.attrib.items()}

    def describe(self) -> str:
        kind = self.element.get("type") or self.element.get("model")
        return f"{self.kind} {kind}" if kind else self.kind

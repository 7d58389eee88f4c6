"""Boot probe: does a real Linux guest reach userspace with a given virt type on this host?

libvirt offers `kvm` wherever /dev/kvm exists, but a stand-in /dev/kvm can hang Linux guests
(see shared/ENVIRONMENT.md), so VirtDash uses KVM only after this probe passed. The probe
boots the tiny test kernel with `virtdash.probe` on its command line; its init powers off as
soon as it runs, so success is simply "the domain stopped by itself within the timeout".
"""

from __future__ import annotations

import time
import uuid as uuid_mod
from dataclasses import dataclass

import libvirt
from lxml import etree

from hosts.virt import connections
from virtdash.xml import Domain

PROBE_PREFIX = "virtdash-probe-"


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    seconds: float
    detail: str


def _offers(conn: libvirt.virConnect, virt_type: str) -> bool:
    caps = etree.fromstring(conn.getCapabilities().encode())
    return bool(caps.xpath("guest[arch/@name='x86_64']/arch/domain[@type=$t]", t=virt_type))


def _probe_xml(virt_type: str, kernel: str, initrd: str) -> str:
    dom = Domain.new(f"{PROBE_PREFIX}{uuid_mod.uuid4().hex[:8]}", 96, 1, virt_type)
    dom.kernel, dom.initrd = kernel, initrd
    dom.cmdline = "console=ttyS0 virtdash.probe panic=-1"
    dom.on_poweroff, dom.on_reboot, dom.on_crash = "destroy", "destroy", "destroy"
    return dom.to_string()


def boot_probe(uri: str, virt_type: str, kernel: str, initrd: str, timeout: float = 60) -> ProbeResult:
    """Boot a transient probe guest; never leaves it behind."""
    if not connections.call(uri, lambda conn: _offers(conn, virt_type), what=uri):
        return ProbeResult(False, 0.0, f"libvirt does not offer {virt_type} guests here")
    xml = _probe_xml(virt_type, kernel, initrd)
    started = time.monotonic()
    name = connections.call(uri, lambda conn: conn.createXML(xml, 0).name(), what="starting the probe guest")
    try:
        while time.monotonic() - started < timeout:
            if not connections.call(uri, lambda conn: _active(conn, name), what="probe guest"):
                took = time.monotonic() - started
                return ProbeResult(True, took, f"a Linux guest reached userspace in {took:.1f} s")
            time.sleep(0.5)
        return ProbeResult(False, timeout, f"a Linux guest did not reach userspace within {timeout:.0f} s")
    finally:
        connections.call(uri, lambda conn: _destroy(conn, name), what="stopping the probe guest")


def _active(conn: libvirt.virConnect, name: str) -> bool:
    try:
        return bool(conn.lookupByName(name).isActive())
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            return False  # transient and stopped: gone
        raise


def _destroy(conn: libvirt.virConnect, name: str) -> None:
    try:
        conn.lookupByName(name).destroy()
    except libvirt.libvirtError:
        pass

"""Helpers for the network tests: a namespaced libvirtd fixture body, root-namespace checks, and
a tiny guest with one e1000 NIC that asks for a DHCP lease (scripts/build-tiny-guest.sh, booted
with `virtdash.dhcp`: PVH kernel, serial only, 96 MiB, TCG)."""

from __future__ import annotations

import ipaddress
import subprocess
import time
from pathlib import Path

from tests.conftest import TEST_PREFIX
from tests.netns_libvirtd import NetnsLibvirtd, root_ipv4_networks

SUBNETS = ipaddress.IPv4Network("10.251.0.0/16")  # libvirt networks inside the namespace
GUEST_MAC = "52:54:00:d1:0c:01"


def root_snapshot() -> dict:
    """What a libvirt network started in the root namespace would change there: addresses, IPv4
    forwarding, firewall rules (links are checked by name: other tests may add unrelated ones)."""
    return {"addresses": sorted(map(str, root_ipv4_networks())),
            "ip_forward": Path("/proc/sys/net/ipv4/ip_forward").read_text().strip(),
            **{table: subprocess.run(["iptables", "-t", table, "-S"], capture_output=True, text=True).stdout
               for table in ("filter", "nat", "mangle")}}


def root_links() -> list[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True).stdout
    return sorted(line.split(":")[1].strip().split("@")[0] for line in out.splitlines())


def ns_ipv4(daemon: NetnsLibvirtd, dev: str) -> list[str]:
    """IPv4 addresses of `dev` inside the namespace ([] if the device does not exist)."""
    out = daemon.ns("ip", "-4", "-o", "addr", "show", "dev", dev, check=False)
    return [line.split()[3] for line in out.splitlines()]


def remove_networks(conn, prefix: str) -> None:
    assert prefix.startswith(TEST_PREFIX)
    for net in conn.listAllNetworks():
        if net.name().startswith(prefix):
            if net.isActive():
                net.destroy()
            if net.isPersistent():
                net.undefine()


def tiny_guest_dir() -> Path:
    from tests.integration.console_guests import ensure_tiny_guest

    guest_dir = ensure_tiny_guest()
    assert (guest_dir / "vmlinux-pvh").exists(), "the tiny guest build has no PVH kernel"
    return guest_dir


def dhcp_guest_xml(name: str, network: str, guest_dir: Path, mac: str = GUEST_MAC) -> str:
    from virtdash.xml import Console, Domain, Interface, Serial

    assert name.startswith(TEST_PREFIX)
    dom = Domain.new(name, 96, 1, "qemu")
    dom.kernel, dom.initrd = str(guest_dir / "vmlinux-pvh"), str(guest_dir / "initrd.gz")
    dom.cmdline = "console=ttyS0 virtdash.dhcp"
    dom.boot_devs = []
    dom.add_device(Serial.new("pty"))
    dom.add_device(Console.new("pty", "serial"))
    dom.add_device(Interface.new("network", network, model="e1000", mac=mac))
    return dom.to_string()


def wait_for_lease(conn, network: str, timeout: float) -> list[dict]:
    """libvirt's own view of the leases (not VirtDash's), polled until one appears."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        leases = conn.networkLookupByName(network).DHCPLeases()
        if leases:
            return leases
        time.sleep(0.5)
    raise AssertionError(f"no DHCP lease on {network} within {timeout} s")

"""``<network>``: virtual networks, with a builder per forward mode."""

from __future__ import annotations

import ipaddress
import uuid as uuid_mod
from typing import Self

from .base import BOOL_ON_OFF, XMLChildren, XMLObject, XMLProperty, find_path, parse_xpath, remove_child
from .errors import XMLValueError
from .names import (
    validate_bridge_name,
    validate_mac,
    validate_network_name,
    validate_uuid,
)

#: ``isolated`` means no ``<forward>`` element at all.
FORWARD_MODES = ("nat", "route", "open", "bridge", "isolated")


class DhcpHost(XMLObject):
    """A static lease: ``<host mac=... name=... ip=.../>``."""

    TAG = "host"

    mac = XMLProperty("./@mac", validate=validate_mac)
    name = XMLProperty("./@name")
    ip = XMLProperty("./@ip")


class NetworkIP(XMLObject):
    TAG = "ip"

    family = XMLProperty("./@family")
    address = XMLProperty("./@address")
    prefix = XMLProperty("./@prefix", int)
    netmask = XMLProperty("./@netmask")
    dhcp_start = XMLProperty("./dhcp/range/@start")
    dhcp_end = XMLProperty("./dhcp/range/@end")
    dhcp_hosts = XMLChildren(DhcpHost, "./dhcp")

    @property
    def interface(self) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface | None:
        """Address plus prefix, whether libvirt wrote ``prefix`` or ``netmask``."""
        if not self.address:
            return None
        suffix = self.prefix if self.prefix is not None else self.netmask
        try:
            return ipaddress.ip_interface(f"{self.address}/{suffix}" if suffix is not None else self.address)
        except ValueError:
            return None

    def add_dhcp_host(self, mac: str, ip: str, name: str | None = None) -> DhcpHost:
        iface = self.interface
        if iface is None or ipaddress.ip_address(ip) not in iface.network:
            raise XMLValueError(f"{ip} is not inside this network.")
        host = self.dhcp_hosts.new()
        host.mac, host.ip, host.name = mac, ip, name
        return host


class Network(XMLObject):
    TAG = "network"
    CHILD_ORDER = {
        "network": ("name", "uuid", "metadata", "forward", "bridge", "mtu", "mac", "domain", "dns", "ip", "route"),
    }

    name = XMLProperty("./name", validate=validate_network_name)
    uuid = XMLProperty("./uuid", validate=validate_uuid)
    forward_mode = XMLProperty("./forward/@mode")
    forward_dev = XMLProperty("./forward/@dev")
    bridge_name = XMLProperty("./bridge/@name", validate=validate_bridge_name)
    bridge_stp = XMLProperty("./bridge/@stp", bool, bool_values=BOOL_ON_OFF)
    domain_name = XMLProperty("./domain/@name")
    mac = XMLProperty("./mac/@address", validate=validate_mac)
    ips = XMLChildren(NetworkIP)

    @property
    def mode(self) -> str:
        """``nat``/``route``/``open``/``bridge``/..., or ``"isolated"`` without ``<forward>``."""
        if find_path(self.element, parse_xpath("./forward")[0]) is None:
            return "isolated"
        return self.forward_mode or "nat"  # libvirt's default for a bare <forward/>

    def set_mode(self, mode: str) -> None:
        """Change the forward mode; ``isolated`` removes ``<forward>`` with its children,
        and leaving NAT drops the ``<nat>`` port range that only applies to it."""
        if mode not in FORWARD_MODES:
            raise XMLValueError(f"Network mode must be one of {', '.join(FORWARD_MODES)}, got {mode!r}.")
        forward = find_path(self.element, parse_xpath("./forward")[0])
        if mode == "isolated":
            if forward is not None:
                remove_child(forward)
            return
        self.forward_mode = mode
        nat = find_path(self.element, parse_xpath("./forward/nat")[0])
        if mode != "nat" and nat is not None:
            remove_child(nat)

    @property
    def ipv4(self) -> NetworkIP | None:
        return next((ip for ip in self.ips if ip.family in (None, "ipv4")), None)

    @classmethod
    def new(
        cls,
        name: str,
        mode: str = "nat",
        *,
        ipv4: str | None = "192.168.100.1/24",
        dhcp: bool = True,
        bridge: str | None = None,
        dhcp_range: tuple[str, str] | None = None,
    ) -> Self:
        """``ipv4`` is the host side ``address/prefix``; DHCP hands out the rest of the subnet, or
        ``dhcp_range`` (first, last) when given, which must lie inside it and leave out the host.

        ``mode="bridge"`` attaches to an existing host bridge (``bridge``) and has no IP.
        """
        if mode not in FORWARD_MODES:
            raise XMLValueError(f"Network mode must be one of {', '.join(FORWARD_MODES)}, got {mode!r}.")
        net = cls.blank()
        net.name = name
        net.uuid = str(uuid_mod.uuid4())
        if mode != "isolated":
            net.forward_mode = mode
        if mode == "bridge":
            if not bridge:
                raise XMLValueError("A bridged network needs the name of an existing host bridge.")
            net.bridge_name = bridge
            return net
        if bridge:
            net.bridge_name = bridge
        if dhcp_range and not (ipv4 and dhcp):
            raise XMLValueError("A DHCP range needs the host's address and prefix, with DHCP turned on.")
        if ipv4:
            _add_ipv4(net, ipv4, dhcp, dhcp_range)
        return net

    @classmethod
    def new_nat(cls, name: str, ipv4: str = "192.168.100.1/24", dhcp: bool = True) -> Self:
        return cls.new(name, "nat", ipv4=ipv4, dhcp=dhcp)

    @classmethod
    def new_routed(cls, name: str, ipv4: str, dhcp: bool = True) -> Self:
        return cls.new(name, "route", ipv4=ipv4, dhcp=dhcp)

    @classmethod
    def new_open(cls, name: str, ipv4: str, dhcp: bool = True) -> Self:
        return cls.new(name, "open", ipv4=ipv4, dhcp=dhcp)

    @classmethod
    def new_isolated(cls, name: str, ipv4: str = "192.168.100.1/24", dhcp: bool = True) -> Self:
        return cls.new(name, "isolated", ipv4=ipv4, dhcp=dhcp)

    @classmethod
    def new_bridge(cls, name: str, bridge: str) -> Self:
        return cls.new(name, "bridge", ipv4=None, bridge=bridge)


def _add_ipv4(net: Network, ipv4: str, dhcp: bool, dhcp_range: tuple[str, str] | None = None) -> None:
    try:
        iface = ipaddress.IPv4Interface(ipv4)
    except ValueError:
        raise XMLValueError(f"{ipv4!r} is not an IPv4 address with prefix, e.g. 192.168.100.1/24.") from None
    subnet = iface.network
    if subnet.prefixlen > 30:
        raise XMLValueError(f"{subnet} is too small; use a /30 or larger.")
    if iface.ip in (subnet.network_address, subnet.broadcast_address):
        raise XMLValueError(f"{iface.ip} is the network or broadcast address of {subnet}.")
    ip = net.ips.new()
    ip.address = str(iface.ip)
    ip.prefix = subnet.prefixlen
    if dhcp_range:
        start, end = _dhcp_range(iface, *dhcp_range)
    elif dhcp:
        # Everything in the subnet but the gateway, keeping the range contiguous.
        first, last = subnet.network_address + 1, subnet.broadcast_address - 1
        start, end = (first, last - 1) if iface.ip == last else (iface.ip + 1, last)
    else:
        return
    ip.dhcp_start, ip.dhcp_end = str(start), str(end)


def _dhcp_range(
    iface: ipaddress.IPv4Interface, first: str, last: str
) -> tuple[ipaddress.IPv4Address, ipaddress.IPv4Address]:
    """A user's DHCP range: two addresses of the subnet's hosts, in order, not including the host."""
    if not first or not last:
        raise XMLValueError("Give both the first and the last address of the DHCP range, or neither.")
    try:
        start, end = ipaddress.IPv4Address(first), ipaddress.IPv4Address(last)
    except ValueError:
        raise XMLValueError(f"The DHCP range {first!r} – {last!r} must be two IPv4 addresses.") from None
    subnet = iface.network
    lowest, highest = subnet.network_address + 1, subnet.broadcast_address - 1
    if not (lowest <= start <= highest and lowest <= end <= highest):
        raise XMLValueError(f"The DHCP range {start} – {end} is not inside {subnet} ({lowest} – {highest}).")
    if start > end:
        raise XMLValueError(f"The DHCP range starts at {start}, after its end {end}.")
    if start <= iface.ip <= end:
        raise XMLValueError(f"The DHCP range {start} – {end} includes the host's own address {iface.ip}.")
    return start, end

"""Virtual networks: list, create, start/stop, autostart, delete, DHCP leases.

Safety: starting a NAT, routed, open or isolated network with an IP address creates a bridge
that takes that address *on the host*. ``NetworkInfo.adds_host_address`` tells the UI to warn
and to ask for confirmation; ``start_network`` refuses unless the caller confirms it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import UTC, datetime

import libvirt

from hosts.virt import connections
from hosts.virt.errors import Conflict, OperationRefused
from virtdash.xml import Network, XMLValueError
from virtdash.xml.names import validate_bridge_name, validate_network_name
from virtdash.xml.network import FORWARD_MODES

CREATE_MODES = ("nat", "route", "isolated", "bridge")


@dataclass(frozen=True)
class NetworkInfo:
    name: str
    uuid: str
    active: bool
    autostart: bool
    persistent: bool
    mode: str
    bridge: str
    ipv4: str  # "192.168.100.1/24" or ""
    dhcp_start: str
    dhcp_end: str
    forward_dev: str = ""

    @property
    def adds_host_address(self) -> bool:
        """Starting it gives the host a new bridge with an IP address."""
        return self.mode != "bridge" and bool(self.ipv4)


@dataclass(frozen=True)
class Lease:
    mac: str
    ip: str
    prefix: int | None
    hostname: str
    client_id: str
    expires: int  # seconds since the epoch, 0 when unknown
    type: str = field(default="ipv4")

    @property
    def expires_at(self) -> datetime | None:
        return datetime.fromtimestamp(self.expires, tz=UTC) if self.expires else None


def _info(net: libvirt.virNetwork) -> NetworkInfo:
    parsed = Network.parse(net.XMLDesc(0))
    ip = parsed.ipv4
    iface = ip.interface if ip is not None else None
    return NetworkInfo(
        name=net.name(), uuid=net.UUIDString(), active=bool(net.isActive()), autostart=bool(net.autostart()),
        persistent=bool(net.isPersistent()), mode=parsed.mode, bridge=parsed.bridge_name or "",
        ipv4=str(iface) if iface is not None else "", dhcp_start=(ip.dhcp_start if ip is not None else "") or "",
        dhcp_end=(ip.dhcp_end if ip is not None else "") or "", forward_dev=parsed.forward_dev or "",
    )


def _net(conn: libvirt.virConnect, name: str) -> libvirt.virNetwork:
    return conn.networkLookupByName(name)


def list_networks(uri: str) -> list[NetworkInfo]:
    return connections.call(uri, lambda conn: sorted((_info(n) for n in conn.listAllNetworks(0)),
                                                     key=lambda n: n.name), what=f"networks of {uri}")


def get_network(uri: str, name: str) -> NetworkInfo:
    return connections.call(uri, lambda conn: _info(_net(conn, name)), what=f"network {name}")


def network_xml(name: str, mode: str, *, ipv4: str = "", dhcp: bool = True, bridge: str = "",
                forward_dev: str = "", dhcp_start: str = "", dhcp_end: str = "") -> str:
    """Validated network XML; raises ``ValueError`` subclasses with an operator-readable message.
    ``dhcp_start``/``dhcp_end``: a DHCP range of the user's (both or neither; default: the whole subnet)."""
    validate_network_name(name)
    if mode not in CREATE_MODES:
        raise XMLValueError(f"Network mode must be one of {', '.join(CREATE_MODES)}, got {mode!r}.")
    if bridge:
        validate_bridge_name(bridge)
    if mode in ("nat", "route") and not ipv4:
        raise XMLValueError("Give the host's address in the network, e.g. 192.168.100.1/24.")
    dhcp_range = (dhcp_start, dhcp_end) if dhcp_start or dhcp_end else None
    net = Network.new(name, mode, ipv4=ipv4 or None, dhcp=dhcp, bridge=bridge or None, dhcp_range=dhcp_range)
    if forward_dev and mode in ("nat", "route"):
        net.forward_dev = validate_bridge_name(forward_dev)
    return net.to_string()


def define_network(uri: str, name: str, mode: str, *, ipv4: str = "", dhcp: bool = True, bridge: str = "",
                   forward_dev: str = "", autostart: bool = False, dhcp_start: str = "",
                   dhcp_end: str = "") -> NetworkInfo:
    """Define a persistent network (not started: starting is a separate, confirmed step)."""
    xml = network_xml(name, mode, ipv4=ipv4, dhcp=dhcp, bridge=bridge, forward_dev=forward_dev,
                      dhcp_start=dhcp_start, dhcp_end=dhcp_end)

    def _define(conn):
        try:
            conn.networkLookupByName(name)
        except libvirt.libvirtError:
            pass
        else:
            raise Conflict(f"A network named {name!r} already exists on this host.")
        if ipv4:
            _refuse_overlap(conn, ipaddress.IPv4Interface(ipv4).network)
        net = conn.networkDefineXML(xml)
        if autostart:
            net.setAutostart(1)
        return _info(net)

    return connections.call(uri, _define, what=f"creating network {name}")


def _refuse_overlap(conn: libvirt.virConnect, subnet: ipaddress.IPv4Network) -> None:
    for other in conn.listAllNetworks(0):
        info = _info(other)
        if info.ipv4 and ipaddress.IPv4Interface(info.ipv4).network.overlaps(subnet):
            raise Conflict(f"{subnet} overlaps network {info.name} ({info.ipv4}); choose another subnet.")


def start_network(uri: str, name: str, *, confirm_host_address: bool = False) -> NetworkInfo:
    """Start a network; one that would put an address on the host needs ``confirm_host_address``."""
    def _start(conn):
        net = _net(conn, name)
        info = _info(net)
        if info.active:
            return info
        if info.adds_host_address and not confirm_host_address:
            raise OperationRefused(f"Starting {name} adds bridge {info.bridge or '(new)'} with address {info.ipv4} "
                                   "on the host; confirm to go ahead.")
        net.create()
        return _info(net)

    return connections.call(uri, _start, what=f"starting network {name}", timeout=60)


def stop_network(uri: str, name: str) -> NetworkInfo:
    def _stop(conn):
        net = _net(conn, name)
        if net.isActive():
            net.destroy()
        return _info(net)

    return connections.call(uri, _stop, what=f"stopping network {name}", timeout=60)


def set_network_autostart(uri: str, name: str, enabled: bool) -> NetworkInfo:
    def _autostart(conn):
        net = _net(conn, name)
        net.setAutostart(1 if enabled else 0)
        return _info(net)

    return connections.call(uri, _autostart, what=f"changing autostart of network {name}")


def delete_network(uri: str, name: str) -> None:
    """Stop (if running) and undefine a network."""
    def _delete(conn):
        net = _net(conn, name)
        if net.isActive():
            net.destroy()
        if net.isPersistent():
            net.undefine()

    connections.call(uri, _delete, what=f"deleting network {name}", timeout=60)


def dhcp_leases(uri: str, name: str, *, timeout: float | None = None, keep_on_timeout: bool = False) -> list[Lease]:
    """Current DHCP leases; an empty list when the driver has no lease support (test driver).
    `keep_on_timeout`: see connections.call."""
    def _leases(conn):
        net = _net(conn, name)
        if not net.isActive():
            return []
        try:
            raw = net.DHCPLeases()
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_SUPPORT:
                return []
            raise
        return [Lease(mac=item.get("mac", ""), ip=item.get("ipaddr", ""), prefix=item.get("prefix"),
                      hostname=item.get("hostname") or "", client_id=item.get("clientid") or "",
                      expires=int(item.get("expirytime") or 0),
                      type="ipv6" if item.get("type") == libvirt.VIR_IP_ADDR_TYPE_IPV6 else "ipv4")
                for item in raw]

    return connections.call(uri, _leases, what=f"DHCP leases of network {name}", timeout=timeout,
                            keep_on_timeout=keep_on_timeout)


__all__ = ["CREATE_MODES", "FORWARD_MODES", "Lease", "NetworkInfo", "define_network", "delete_network",
           "dhcp_leases", "get_network", "list_networks", "network_xml", "set_network_autostart",
           "start_network", "stop_network"]

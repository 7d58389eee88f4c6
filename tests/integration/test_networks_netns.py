"""Virtual networks through VirtDash on a REAL libvirtd that runs inside a network namespace the test
creates (tests/netns_libvirtd.py): bridges, addresses, NAT rules and dnsmasq really exist, but only
inside that namespace — each test also checks that the root namespace gained nothing.

Pages are driven with Django's test client (in-process: views → services → hosts.virt over
qemu+tcp to the daemon); outcomes are read back from libvirt and with `ip` inside the namespace.
A real guest's DHCP lease on the network page: tests/e2e/test_networks_netns_journey.py.
"""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path

import libvirt
import pytest

from core.models import AuditEntry
from hosts.models import Host
from hosts.uri import validate_uri
from hosts.virt import connections
from hosts.virt.errors import Conflict
from tests.conftest import TEST_PREFIX
from tests.integration.network_guests import (
    SUBNETS,
    ns_ipv4,
    remove_networks,
    root_links,
    root_snapshot,
)
from tests.netns_libvirtd import NetnsLibvirtd, free_subnet, root_ipv4_networks
from tests.stack import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def daemon():
    with NetnsLibvirtd() as running:
        yield running
        connections.drop(running.uri)


@pytest.fixture
def lv(daemon):
    """A direct connection to the namespaced daemon, for assertions (per test: one test restarts it)."""
    conn = libvirt.open(daemon.uri)
    yield conn
    conn.close()


@pytest.fixture
def host(db, daemon):
    return Host.objects.create(name="netns", uri=validate_uri(daemon.uri))


@pytest.fixture
def net_name(daemon):
    """A fresh vdtest- network name; networks whose names start with it are removed afterwards."""
    name = f"{TEST_PREFIX}net-{uuid.uuid4().hex[:6]}"
    yield name
    conn = libvirt.open(daemon.uri)  # a new one: the test may have restarted the daemon
    remove_networks(conn, name)
    conn.close()


@pytest.fixture
def subnet(running_net):
    """A /24 for a libvirt network, with no address of it in the root namespace (nor running_net's)."""
    while (candidate := free_subnet(SUBNETS, 24)) == running_net[1]:
        pass
    return candidate


@pytest.fixture(scope="module")
def running_net(daemon):
    """(name, subnet) of an active NAT network kept for the module: what refused input must not touch."""
    name, subnet = f"{TEST_PREFIX}up-{uuid.uuid4().hex[:6]}", free_subnet(SUBNETS, 24)
    from hosts.virt import networks

    networks.define_network(daemon.uri, name, "nat", ipv4=f"{subnet.network_address + 1}/24")
    networks.start_network(daemon.uri, name, confirm_host_address=True)
    yield name, subnet
    conn = libvirt.open(daemon.uri)
    remove_networks(conn, name)
    conn.close()


@pytest.fixture
def root_before():
    """The root namespace's addresses, IPv4 forwarding and firewall rules before the test."""
    return root_snapshot()


def ns_links(daemon: NetnsLibvirtd) -> list[str]:
    out = daemon.ns("ip", "-o", "link", "show")
    return [line.split(":")[1].strip().split("@")[0] for line in out.splitlines()]


def serves_dhcp(daemon: NetnsLibvirtd, network: str) -> bool:
    """Whether a dnsmasq for `network` runs in the namespace (libvirt starts one per network)."""
    for pid in daemon.pids():
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        if argv[0].endswith(b"dnsmasq") and f"--conf-file=/var/lib/libvirt/dnsmasq/{network}.conf".encode() in argv:
            return True
    return False


def lv_state(lv, name: str) -> tuple[bool, bool] | None:
    """(active, autostart) in libvirt, or None when the network does not exist."""
    try:
        net = lv.networkLookupByName(name)
    except libvirt.libvirtError:
        return None
    return bool(net.isActive()), bool(net.autostart())


def lv_bridge(lv, name: str) -> str:
    return lv.networkLookupByName(name).bridgeName()


def text(response) -> str:
    return response.content.decode()


def audit_trail() -> list[tuple[str, str]]:
    return list(AuditEntry.objects.order_by("id").values_list("action", "result"))


def test_a_nat_network_made_through_the_pages_runs_inside_the_namespace_only(
        operator_client, host, daemon, lv, net_name, subnet, root_before):
    base = f"/hosts/{host.pk}/networks"
    gateway = f"{subnet.network_address + 1}/24"
    created = operator_client.post(f"{base}/add/", {"name": net_name, "mode": "nat", "ipv4": gateway, "dhcp": "on"},
                                   follow=True)
    assert f"Created network {net_name}" in text(created)
    assert lv_state(lv, net_name) == (False, False)
    assert f"{subnet.network_address + 2} – {subnet.broadcast_address - 1}" in text(created)

    refused = operator_client.post(f"{base}/{net_name}/start/", {}, follow=True)
    assert "confirm to go ahead" in text(refused) and lv_state(lv, net_name) == (False, False)
    started = operator_client.post(f"{base}/{net_name}/start/", {"confirm_host_address": "1"}, follow=True)
    assert f"Started network {net_name}" in text(started)
    assert lv_state(lv, net_name) == (True, False)

    bridge = lv_bridge(lv, net_name)
    assert ns_ipv4(daemon, bridge) == [gateway]                      # the bridge and its address: inside
    assert bridge not in root_links()                                # … and not in the root namespace
    assert gateway not in map(str, root_ipv4_networks())
    masquerade = daemon.ns("iptables", "-t", "nat", "-S")
    assert f"-s {subnet} ! -d {subnet} -p tcp -j MASQUERADE" in masquerade
    assert daemon.ns("cat", "/proc/sys/net/ipv4/ip_forward").strip() == "1"
    assert serves_dhcp(daemon, net_name)
    assert root_snapshot() == root_before                            # no address, link, forwarding or NAT rule

    listed = text(operator_client.get(f"{base}/"))
    row = re.search(rf'<tr data-network="{net_name}">.*?</tr>', listed, re.S).group(0)
    assert "Active" in row and bridge in row and gateway in row

    operator_client.post(f"{base}/{net_name}/action/", {"action": "autostart-on"})
    assert lv_state(lv, net_name) == (True, True)
    operator_client.post(f"{base}/{net_name}/action/", {"action": "autostart-off"})
    assert lv_state(lv, net_name) == (True, False)
    stopped = operator_client.post(f"{base}/{net_name}/action/", {"action": "stop"}, follow=True)
    assert f"Stopped network {net_name}" in text(stopped) and lv_state(lv, net_name) == (False, False)
    assert bridge not in ns_links(daemon) and not serves_dhcp(daemon, net_name)
    deleted = operator_client.post(f"{base}/{net_name}/action/", {"action": "delete"}, follow=True)
    assert f"Deleted network {net_name}" in text(deleted) and lv_state(lv, net_name) is None
    assert net_name not in text(operator_client.get(f"{base}/"))

    assert audit_trail() == [("network.create", "ok"), ("network.start", "failed"), ("network.start", "ok"),
                             ("network.autostart-on", "ok"), ("network.autostart-off", "ok"),
                             ("network.stop", "ok"), ("network.delete", "ok")]
    assert root_snapshot() == root_before


@pytest.mark.parametrize("mode, with_address", [("route", True), ("isolated", True), ("isolated", False),
                                                ("bridge", False)])
def test_each_kind_of_network_starts_stops_and_goes_inside_the_namespace(
        operator_user, host, daemon, lv, net_name, subnet, root_before, mode, with_address):
    from hosts import services_networks as services

    gateway = f"{subnet.network_address + 1}/24" if with_address else ""
    bridge = ""
    if mode == "bridge":  # a bridge network attaches to an existing bridge: make one in the namespace
        bridge = f"{TEST_PREFIX}br{uuid.uuid4().hex[:4]}"
        daemon.ns("ip", "link", "add", bridge, "type", "bridge")
    info = services.create_network(operator_user, host, name=net_name, mode=mode, ipv4=gateway, bridge=bridge)
    assert (info.mode, info.adds_host_address, info.active) == (mode, with_address, False)
    services.start_network(operator_user, host, net_name, confirm_host_address=with_address)
    assert lv_state(lv, net_name) == (True, False)
    bridge = lv_bridge(lv, net_name)
    assert bridge in ns_links(daemon) and bridge not in root_links()
    assert ns_ipv4(daemon, bridge) == ([gateway] if with_address else [])
    if mode == "route":
        assert f"-d {subnet} -o {bridge} -j ACCEPT" in daemon.ns("iptables", "-S")
    assert root_snapshot() == root_before

    services.network_action(operator_user, host, net_name, "stop")
    assert lv_state(lv, net_name) == (False, False)
    assert (bridge in ns_links(daemon)) == (mode == "bridge")  # libvirt removes only bridges it made
    services.network_action(operator_user, host, net_name, "delete")
    assert lv_state(lv, net_name) is None
    if mode == "bridge":
        daemon.ns("ip", "link", "del", bridge)
    assert root_snapshot() == root_before


def lv_networks(lv) -> dict[str, tuple[bool, str]]:
    return {n.name(): (bool(n.isActive()), n.XMLDesc(0)) for n in lv.listAllNetworks()}


@pytest.mark.parametrize("fields, message", [
    ({"name": "vdtest-bad/name"}, "Network name"),
    ({"name": "vdtest-<b>x"}, "Network name"),
    ({"name": "vdtest-nl\n"}, "Network name"),
    ({"name": "x" * 100}, "limit is 64"),
    ({"ipv4": "10.251.300.1/24"}, "not an IPv4 address"),
    ({"ipv4": "not-an-address"}, "not an IPv4 address"),
    ({"ipv4": "{network}/24"}, "network or broadcast"),
    ({"ipv4": "{broadcast}/24"}, "network or broadcast"),
    ({"ipv4": "{gateway}/31"}, "too small"),
    ({"ipv4": "{other}/24"}, "overlaps network"),  # another address in the running network's /24
    ({"ipv4": "{gateway}/16"}, "overlaps network"),  # a supernet of it
    ({"mode": "route", "ipv4": ""}, "Give the host"),
    ({"mode": "bridge", "bridge": "br0; reboot"}, "Bridge name"),
    ({"name": "{existing}"}, "already exists"),
    ({"dhcp_start": "{fresh}.10", "dhcp_end": "{other}"}, "is not inside"),  # range reaching another subnet
    ({"dhcp_start": "{fresh}.30", "dhcp_end": "{fresh}.20"}, "after its end"),
    ({"dhcp_start": "{fresh}.1", "dhcp_end": "{fresh}.20"}, "own address"),  # the host's address
    ({"dhcp_start": "{fresh}.10"}, "Give both"),
])
def test_refused_network_input_changes_nothing(admin_client, host, daemon, lv, running_net, net_name, subnet,
                                               root_before, fields, message):
    existing, taken = running_net
    before, ns_before = lv_networks(lv), daemon.ns("ip", "-4", "-o", "addr")
    values = {"network": taken.network_address, "broadcast": taken.broadcast_address,
              "gateway": taken.network_address + 1, "other": taken.network_address + 7, "existing": existing}
    values["fresh"] = str(subnet.network_address).rsplit(".", 1)[0]  # "10.251.N" of this test's own /24
    data = {"name": net_name, "mode": "nat", "ipv4": f"{subnet.network_address + 1}/24", "dhcp": "on"}
    data.update({key: value.format(**values) for key, value in fields.items()})
    response = admin_client.post(f"/hosts/{host.pk}/networks/add/", data)
    assert response.status_code == 200, "a refusal shows the form again"
    assert message in text(response)
    assert lv_networks(lv) == before and daemon.ns("ip", "-4", "-o", "addr") == ns_before
    assert root_snapshot() == root_before
    reached_libvirt = message in ("overlaps network", "already exists")  # the form refused the others
    assert audit_trail() == ([("network.create", "failed")] if reached_libvirt else [])


def test_the_service_refuses_overlap_even_without_the_form(operator_user, host, daemon, lv, net_name, subnet):
    from hosts import services_networks as services

    gateway = f"{subnet.network_address + 1}/24"
    services.create_network(operator_user, host, name=net_name, mode="isolated", ipv4=gateway)
    with pytest.raises(Conflict, match="overlaps"):
        services.create_network(operator_user, host, name=f"{net_name}-2", mode="nat",
                                ipv4=f"{subnet.network_address + 129}/25")
    assert lv_state(lv, f"{net_name}-2") is None


def test_a_viewer_sees_the_real_network_but_cannot_start_it(viewer_client, host, daemon, lv, net_name, subnet):
    from hosts.virt import networks

    networks.define_network(daemon.uri, net_name, "nat", ipv4=f"{subnet.network_address + 1}/24")
    page = text(viewer_client.get(f"/hosts/{host.pk}/networks/{net_name}/"))
    assert net_name in page and "I understand" not in page
    response = viewer_client.post(f"/hosts/{host.pk}/networks/{net_name}/start/", {"confirm_host_address": "1"})
    assert response.status_code == 403 and lv_state(lv, net_name) == (False, False)
    assert audit_trail() == [("network.start", "denied")]


def test_autostart_starts_the_network_when_the_daemon_starts_after_a_boot_and_the_page_follows(
        operator_client, host, daemon, net_name, subnet, root_before):
    from hosts.virt import networks

    base = f"/hosts/{host.pk}/networks"
    auto, manual = f"{net_name}-auto", f"{net_name}-manual"
    networks.define_network(daemon.uri, auto, "isolated", ipv4=f"{subnet.network_address + 1}/25")
    networks.define_network(daemon.uri, manual, "isolated", ipv4=f"{subnet.network_address + 129}/25")
    operator_client.post(f"{base}/{auto}/action/", {"action": "autostart-on"})

    daemon.restart()  # libvirt autostarts once per boot: a plain restart leaves both down
    conn = libvirt.open(daemon.uri)
    assert (lv_state(conn, auto), lv_state(conn, manual)) == ((False, True), (False, False))
    conn.close()

    restarted = time.monotonic()
    daemon.restart(as_after_boot=True)
    conn = libvirt.open(daemon.uri)
    try:
        assert (lv_state(conn, auto), lv_state(conn, manual)) == ((True, True), (False, False))
        assert ns_ipv4(daemon, lv_bridge(conn, auto)) == [f"{subnet.network_address + 1}/25"]
    finally:
        conn.close()
    assert root_snapshot() == root_before

    # VirtDash's connection died with the daemon: the page reports it, then reconnects on its own.
    wait_until(lambda: "Active" in text(operator_client.get(f"{base}/{auto}/")), timeout=15,
               message="the network page to show the autostarted network")
    print(f"page shows the autostarted network {time.monotonic() - restarted:.1f} s after the restart began")

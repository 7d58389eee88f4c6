"""A DHCP range of the user's: inside the subnet, in order, leaving out the host; refused otherwise
before any libvirt call (the form and the service say the same)."""

from __future__ import annotations

import pytest

from hosts.virt import networks
from virtdash.xml import Network

URI = "test:///default"
UNREACHABLE = "qemu+tcp://127.0.0.1:1/system"  # a refusal must come before any connection


def test_a_given_range_replaces_the_whole_subnet_default():
    ip = Network.parse(networks.network_xml("vdtest-r", "nat", ipv4="10.61.0.1/24", dhcp_start="10.61.0.100",
                                            dhcp_end="10.61.0.199")).ipv4
    assert (ip.dhcp_start, ip.dhcp_end) == ("10.61.0.100", "10.61.0.199")
    default = Network.parse(networks.network_xml("vdtest-r", "nat", ipv4="10.61.0.1/24")).ipv4
    assert (default.dhcp_start, default.dhcp_end) == ("10.61.0.2", "10.61.0.254")


def test_libvirt_keeps_the_range_it_was_given(test_host, net_state):
    info = networks.define_network(URI, "vdtest-range", "isolated", ipv4="10.62.0.254/24",
                                   dhcp_start="10.62.0.10", dhcp_end="10.62.0.20")
    assert (info.dhcp_start, info.dhcp_end) == ("10.62.0.10", "10.62.0.20")
    networks.delete_network(URI, "vdtest-range")


@pytest.mark.parametrize("kwargs, message", [
    ({"dhcp_start": "10.63.0.10"}, "Give both"),
    ({"dhcp_end": "10.63.0.10"}, "Give both"),
    ({"dhcp_start": "10.63.0.10", "dhcp_end": "10.64.0.10"}, "not inside 10.63.0.0/24"),
    ({"dhcp_start": "10.62.0.10", "dhcp_end": "10.63.0.10"}, "not inside"),
    ({"dhcp_start": "10.63.0.0", "dhcp_end": "10.63.0.10"}, "not inside"),  # the network address
    ({"dhcp_start": "10.63.0.10", "dhcp_end": "10.63.0.255"}, "not inside"),  # the broadcast address
    ({"dhcp_start": "10.63.0.20", "dhcp_end": "10.63.0.10"}, "after its end"),
    ({"dhcp_start": "10.63.0.1", "dhcp_end": "10.63.0.10"}, "host's own address 10.63.0.1"),
    ({"dhcp_start": "10.63.0.x", "dhcp_end": "10.63.0.10"}, "two IPv4 addresses"),
    ({"dhcp_start": "10.63.0.10\n", "dhcp_end": "10.63.0.20"}, "two IPv4 addresses"),
    ({"dhcp_start": "10.63.0.10", "dhcp_end": "10.63.0.20", "dhcp": False}, "DHCP turned on"),
])
def test_a_bad_range_is_refused_before_libvirt(kwargs, message):
    with pytest.raises(ValueError, match=message):
        networks.define_network(UNREACHABLE, "vdtest-r", "nat", ipv4="10.63.0.1/24", **kwargs)


def test_a_range_without_an_address_is_refused():
    with pytest.raises(ValueError, match="needs the host's address"):
        networks.network_xml("vdtest-r", "isolated", dhcp_start="10.63.0.10", dhcp_end="10.63.0.20")


def test_the_form_refuses_a_range_outside_the_subnet_and_defines_nothing(admin_client, test_host, net_state):
    url = f"/hosts/{test_host.pk}/networks/add/"
    data = {"name": "vdtest-form-range", "mode": "nat", "ipv4": "10.64.0.1/24", "dhcp": "on",
            "dhcp_start": "10.64.1.10", "dhcp_end": "10.64.1.20"}
    refused = admin_client.post(url, data)
    assert refused.status_code == 200 and "is not inside 10.64.0.0/24" in refused.content.decode()
    assert net_state("vdtest-form-range") is None
    created = admin_client.post(url, {**data, "dhcp_start": "10.64.0.10", "dhcp_end": "10.64.0.20"}, follow=True)
    assert "10.64.0.10 – 10.64.0.20" in created.content.decode()
    assert net_state("vdtest-form-range") == (False, False)

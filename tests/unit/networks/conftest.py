"""Network fixtures on libvirt's in-process test driver (no real bridge is ever created)."""

from __future__ import annotations

import uuid

import libvirt
import pytest

from tests.conftest import TEST_PREFIX

URI = "test:///default"


@pytest.fixture
def net_name(test_host):
    """A defined, inactive NAT network vdtest-net-<hex> on 10.<random>.0.1/24; removed afterwards."""
    from hosts.virt import connections, networks

    name = f"{TEST_PREFIX}net-{uuid.uuid4().hex[:6]}"
    networks.define_network(URI, name, "nat", ipv4=f"10.{uuid.uuid4().int % 200 + 20}.0.1/24")
    yield name
    conn = connections.connection(URI)
    for net in conn.listAllNetworks():
        if net.name().startswith(TEST_PREFIX):
            try:
                if net.isActive():
                    net.destroy()
                net.undefine()
            except libvirt.libvirtError:
                pass


@pytest.fixture
def net_state(net_name):
    from hosts.virt import connections

    def read(name: str = net_name):
        try:
            net = connections.connection(URI).networkLookupByName(name)
        except libvirt.libvirtError:
            return None
        return bool(net.isActive()), bool(net.autostart())

    return read

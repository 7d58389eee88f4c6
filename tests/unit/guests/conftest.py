"""Guest fixtures: hosts on private test-driver node files (fresh libvirt state per test)."""

from __future__ import annotations

import pytest
from guest_helpers import domain_xml, write_node

from tests.conftest import TEST_PREFIX


@pytest.fixture
def node_host(db, tmp_path):
    """A Host whose libvirt is a private node file with three guests (two running, one shut off).

    test:///<file> domains start running; the fixture shuts the third off through the same
    per-process connection VirtDash uses, so both see one state.
    """
    from hosts.models import Host
    from hosts.virt import connections

    names = [f"{TEST_PREFIX}alpha", f"{TEST_PREFIX}beta", f"{TEST_PREFIX}gamma"]
    uri = write_node(tmp_path / "node.xml", [domain_xml(n, vcpus=i + 1) for i, n in enumerate(names)])
    conn = connections.connection(uri)
    conn.lookupByName(names[2]).destroy()
    host = Host.objects.create(name=f"node-{tmp_path.name}"[:64], uri=uri, status="connected")
    yield host
    connections.drop(uri)


@pytest.fixture
def virt(node_host):
    """The libvirt connection VirtDash uses for node_host (tests may change libvirt with it)."""
    from hosts.virt import connections

    return connections.connection(node_host.uri)


@pytest.fixture
def synced(node_host):
    from guests import inventory

    inventory.resync(node_host, full=True)
    return node_host


@pytest.fixture
def count_libvirt_calls(monkeypatch):
    """Counts every call through hosts.virt.connections.call (the only door to libvirt)."""
    from hosts.virt import connections

    calls = []
    real = connections.call

    def counting(uri, fn, **kwargs):
        calls.append(kwargs.get("what", uri))
        return real(uri, fn, **kwargs)

    monkeypatch.setattr(connections, "call", counting)
    return lambda: len(calls)

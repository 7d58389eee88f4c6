"""Two hosts on private test-driver node files: a source with guests and an empty destination."""

from __future__ import annotations

import pytest
from migrate_helpers import DISKLESS, WITH_DISK, domain_xml


def _node_host(tmp_path, name: str, domains: list[str]):
    from hosts.models import Host

    path = tmp_path / f"{name}.xml"
    path.write_text("<node>" + "".join(domains) + "</node>")
    return Host.objects.create(name=name, uri=f"test://{path}", status="connected",
                               facts={"memory_free": 8 * 2**30, "memory_total": 16 * 2**30, "cpus": 4,
                                      "guests_running": 0})


@pytest.fixture
def hosts(db, tmp_path):
    """(source, destination): the source has DISKLESS and WITH_DISK, both running at first."""
    from guests import inventory
    from hosts.virt import connections

    source = _node_host(tmp_path, "src", [domain_xml(DISKLESS), domain_xml(WITH_DISK, disk=True)])
    dest = _node_host(tmp_path, "dst", [])
    inventory.resync(source, full=True)
    yield source, dest
    for host in (source, dest):
        connections.drop(host.uri)


@pytest.fixture
def conn():
    """VirtDash's own connection to a host (tests may change libvirt through it)."""
    from hosts.virt import connections

    return lambda host: connections.connection(host.uri)


@pytest.fixture
def shut_off(conn):
    """Shut a guest off in libvirt and in the inventory; returns the Guest row."""
    from guests import inventory
    from guests.models import Guest

    def shut(host, name):
        conn(host).lookupByName(name).destroy()
        inventory.resync(host)
        return Guest.objects.get(name=name)

    return shut


@pytest.fixture
def dest_with(db, tmp_path):
    """Replace the destination's libvirt with a node file holding `extra` (pools) and no guests."""
    from hosts.virt import connections

    def make(dest, extra: str):
        path = tmp_path / "dst-with.xml"
        path.write_text("<node>" + extra + "</node>")
        connections.drop(dest.uri)
        dest.uri = f"test://{path}"
        dest.save(update_fields=["uri"])
        return dest

    yield make

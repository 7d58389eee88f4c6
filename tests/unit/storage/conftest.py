"""Storage fixtures on libvirt's in-process test driver. Its state lives as long as this
process's cached connection, so every object a test makes is vdtest-named and removed after."""

from __future__ import annotations

import uuid

import libvirt
import pytest

from tests.conftest import TEST_PREFIX

URI = "test:///default"


def _conn():
    from hosts.virt import connections

    return connections.connection(URI)


@pytest.fixture
def pool_name(test_host):
    """A running dir pool vdtest-pool-<hex> with one 1 GiB qcow2 volume 'vdtest-vol.qcow2'."""
    from hosts.virt import storage

    name = f"{TEST_PREFIX}pool-{uuid.uuid4().hex[:6]}"
    storage.define_pool(URI, "dir", name, target_path=f"/{name}")
    storage.create_volume(URI, name, "vdtest-vol.qcow2", "1G")
    yield name
    conn = _conn()
    try:
        pool = conn.storagePoolLookupByName(name)
    except libvirt.libvirtError:
        return
    if pool.isActive():
        for vol in pool.listAllVolumes():
            vol.delete(0)
        pool.destroy()
    pool.undefine()


@pytest.fixture
def pool_state(pool_name):
    """A function returning (active, autostart, sorted volume names) straight from libvirt."""
    def read():
        pool = _conn().storagePoolLookupByName(pool_name)
        names = sorted(v.name() for v in pool.listAllVolumes()) if pool.isActive() else []
        return bool(pool.isActive()), bool(pool.autostart()), names

    return read


@pytest.fixture
def guest_using(pool_name):
    """Define a shut-off vdtest- guest whose disk is the fixture volume; undefined afterwards."""
    from virtdash.xml import Disk, Domain

    names = []

    def define(volume: str = "vdtest-vol.qcow2") -> str:
        name = f"{TEST_PREFIX}g-{uuid.uuid4().hex[:6]}"
        dom = Domain.new(name, 64, 1)
        dom.add_device(Disk.new("vda", path=f"/{pool_name}/{volume}"))
        _conn().defineXML(dom.to_string())
        names.append(name)
        return name

    yield define
    for name in names:
        try:
            _conn().lookupByName(name).undefine()
        except libvirt.libvirtError:
            pass


"""Integration fixtures: real Redis, libvirtd, Celery worker, watcher and web server."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import TEST_PREFIX
from tests.stack import Stack, ensure_libvirtd, ensure_redis, free_port


def pytest_collection_modifyitems(items):
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def services():
    ensure_redis()
    ensure_libvirtd()


@pytest.fixture
def stack(services, transactional_db):
    """Web server, Celery worker and watcher, started fresh for the test."""
    running = Stack(port=free_port())
    running.start_worker()
    running.start_watcher()
    running.start_web()
    yield running
    running.stop_all()


@pytest.fixture
def libvirt_conn(services):
    """A direct qemu:///system connection for assertions (tests may import libvirt)."""
    import libvirt

    conn = libvirt.open("qemu:///system")
    yield conn
    conn.close()


@pytest.fixture
def guest_name():
    return f"{TEST_PREFIX}{uuid.uuid4().hex[:8]}"


@pytest.fixture
def cleanup_guests(libvirt_conn):
    """Yields a list; every domain name appended is destroyed and undefined afterwards."""
    import libvirt

    names: list[str] = []
    yield names
    for name in names:
        assert name.startswith(TEST_PREFIX)
        try:
            dom = libvirt_conn.lookupByName(name)
        except libvirt.libvirtError:
            continue
        if dom.isActive():
            dom.destroy()
        flags = libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
        try:
            dom.undefineFlags(flags | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)
        except libvirt.libvirtError:
            dom.undefineFlags(flags)

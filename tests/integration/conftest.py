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


@pytest.fixture
def scratch_pool(libvirt_conn):
    """(name, folder) for a vdtest- dir pool in a temp folder; whatever pool of that name exists
    afterwards is removed with its vdtest- volumes, and so is the folder."""
    import os
    import shutil
    import tempfile

    name = f"{TEST_PREFIX}{uuid.uuid4().hex[:8]}"
    folder = tempfile.mkdtemp(prefix=f"{name}-")
    os.chmod(folder, 0o755)  # libvirt-qemu must reach the volumes
    yield name, folder
    remove_test_pool(libvirt_conn, name)
    shutil.rmtree(folder, ignore_errors=True)


def remove_test_pool(conn, name: str) -> None:
    import libvirt

    assert name.startswith(TEST_PREFIX)
    try:
        pool = conn.storagePoolLookupByName(name)
    except libvirt.libvirtError:
        return
    if pool.isActive():
        pool.refresh(0)
        for vol in pool.listAllVolumes():
            assert vol.name().startswith(TEST_PREFIX)
            vol.delete(0)
        pool.destroy()
    pool.undefine()


@pytest.fixture
def partial_stack(services, transactional_db):
    """Start only some processes: `partial_stack("worker", "watcher")` → a running Stack."""
    started: list[Stack] = []

    def start(*parts: str) -> Stack:
        running = Stack(port=free_port())
        for part in parts:
            getattr(running, f"start_{part}")()
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop_all()


@pytest.fixture(scope="module")
def sshd(services):
    """A private sshd on 127.0.0.1 in front of the local libvirtd, for qemu+ssh hosts (tests/ssh_host.py)."""
    from tests import ssh_host

    host = ssh_host.start()
    yield host
    host.stop()

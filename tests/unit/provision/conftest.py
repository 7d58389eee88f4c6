"""Fixtures for provisioning unit tests: guests defined on the in-process test:/// driver."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import TEST_PREFIX


@pytest.fixture
def make_test_guest(test_host):
    """Define guests named vdtest-… on test:///default (per-process state); undefined afterwards."""
    from guests.services_provision import touch_inventory
    from hosts.virt import provision
    from virtdash.xml import Disk, Domain

    made: list[str] = []

    def make(memory_mib: int = 128, *, disk: bool = True):
        name = f"{TEST_PREFIX}{uuid.uuid4().hex[:8]}"
        dom = Domain.new(name, memory_mib, 1, "test")
        if disk:
            dom.add_device(Disk.new("vda", path=f"/default-pool/{name}.img", driver_type="raw"))
        uid = provision.define_validated(test_host.uri, dom.to_string())
        made.append(uid)
        return touch_inventory(test_host, uid)

    yield make
    from hosts.virt import provision as prov
    from hosts.virt.errors import GuestNotFound

    for uid in made:
        try:
            prov.destroy(test_host.uri, uid)
            prov.undefine(test_host.uri, uid)
        except GuestNotFound:
            pass


@pytest.fixture
def guest(make_test_guest):
    return make_test_guest()


def run_job(job, work):
    """Run a queued job's work in this process (what the Celery task does) and reload it."""
    from core import jobs

    jobs.run(job.pk, work)
    job.refresh_from_db()
    return job

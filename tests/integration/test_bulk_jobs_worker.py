"""Bulk jobs through a real Celery worker on a test-driver host shared through libvirtd: the bulk
job holds its guests from creation to its end; a busy guest is a skipped item."""

from __future__ import annotations

import uuid

import pytest

from core import jobs
from core.models import GuestLock, Job
from guests import inventory, services
from guests.models import Guest
from hosts.models import Host
from tests.conftest import TEST_PREFIX
from tests.stack import wait_until

URI = "test+unix:///default"  # one state for this process and the worker while a connection is open


def _domain(name: str) -> str:
    return (f"<domain type='test'><name>{name}</name><uuid>{uuid.uuid4()}</uuid><memory unit='MiB'>64</memory>"
            "<os><type arch='x86_64'>hvm</type></os></domain>")


@pytest.fixture
def shared_test_guests(services):
    """Three running vdtest- guests on the daemon's test driver; undefined afterwards."""
    import libvirt

    conn = libvirt.open(URI)
    names = [f"{TEST_PREFIX}bulk-{uuid.uuid4().hex[:6]}-{i}" for i in range(3)]
    doms = [conn.defineXML(_domain(name)) for name in names]
    for dom in doms:
        dom.create()
    yield conn, doms
    for dom in doms:
        if dom.isActive():
            dom.destroy()
        dom.undefine()
    conn.close()


def _finished(job_id: int) -> Job | None:
    job = Job.objects.get(pk=job_id)
    return job if job.is_finished else None


def test_a_bulk_job_holds_its_guests_until_the_worker_has_finished_it(partial_stack, shared_test_guests,
                                                                      admin_user):
    conn, doms = shared_test_guests
    host = Host.objects.create(name=f"{TEST_PREFIX}shared-test", uri=URI, status="connected")
    inventory.resync(host, full=True)
    first, second, busy = (Guest.objects.get(uuid=d.UUIDString()) for d in doms)
    single = services.request_action(admin_user, busy, "suspend")  # queued before the bulk job
    bulk = services.request_bulk(admin_user, [first, second, busy], "suspend")
    with pytest.raises(jobs.JobRefused, match=f"held by bulk job #{bulk.pk}"):
        services.request_action(admin_user, first, "destroy")  # queued bulk job: already held

    partial_stack("worker")
    bulk = wait_until(lambda: _finished(bulk.pk), 30, message="bulk job finished")
    assert bulk.status == "succeeded", bulk.message
    assert {i["name"]: bool(i.get("skipped")) for i in bulk.items} == {first.name: False, second.name: False,
                                                                      busy.name: True}
    assert f"job #{single.pk}" in next(i["message"] for i in bulk.items if i.get("skipped"))
    # the single job runs in parallel on the worker's other slot: its end is not the bulk job's
    assert wait_until(lambda: _finished(single.pk), 30, message="single job finished").status == "succeeded"
    assert all(d.state()[0] == 3 for d in doms)  # paused: two by the bulk job, one by the single job
    assert not GuestLock.objects.filter(job_id=bulk.pk).exists()

    follow_up = services.request_action(admin_user, first, "resume")  # released: accepted
    assert wait_until(lambda: _finished(follow_up.pk), 30, message="resume finished").status == "succeeded"
    assert doms[0].state()[0] == 1

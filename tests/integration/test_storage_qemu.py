"""Storage on the real qemu:///system daemon: a dir pool in a temp folder, volumes created,
resized, cloned and deleted through the pages with a real Celery worker running the jobs, and
deleting a volume a (shut-off) guest uses refused with the guest's name. Only vdtest- objects
this test made are removed."""

from __future__ import annotations

import os

import pytest

from core.models import Job
from hosts.models import Host
from hosts.virt import storage
from tests.conftest import TEST_PREFIX
from tests.stack import wait_until
from virtdash.xml import Disk, Domain

MIB = 1024 * 1024


@pytest.fixture
def worker(partial_stack):
    """Only a Celery worker: the pages run in-process through Django's test client."""
    return partial_stack("worker")


@pytest.fixture
def scratch_pool(scratch_pool):
    """(name, target path) of a pool the test creates through the pages."""
    name, folder = scratch_pool
    return name, f"{folder}/pool"


def _finished(job_id: int) -> Job:
    wait_until(lambda: Job.objects.get(pk=job_id).is_finished, 30, message=f"job {job_id} finished")
    return Job.objects.get(pk=job_id)


def _volumes(conn, pool: str) -> dict[str, tuple[int, int]]:
    p = conn.storagePoolLookupByName(pool)
    p.refresh(0)
    return {v.name(): tuple(v.info()[1:]) for v in p.listAllVolumes()}


def test_volumes_in_a_dir_pool_are_created_resized_cloned_and_deleted(worker, admin_client, libvirt_conn,
                                                                      scratch_pool, cleanup_guests, guest_name):
    name, folder = scratch_pool
    host = Host.objects.create(name="local", uri="qemu:///system")
    base = f"/hosts/{host.pk}/storage"

    page = admin_client.post(f"{base}/add/", {"type": "dir", "name": name, "target_path": folder}, follow=True)
    assert f"Created storage pool {name}" in page.content.decode()
    assert libvirt_conn.storagePoolLookupByName(name).isActive() and os.path.isdir(folder)

    disk = f"{TEST_PREFIX}disk.qcow2"
    admin_client.post(f"{base}/{name}/volumes/add/", {"name": disk, "capacity": "64M", "format": "qcow2"})
    job = _finished(Job.objects.get(kind="volume.create").pk)
    assert job.status == "succeeded", job.message
    assert _volumes(libvirt_conn, name)[disk][0] == 64 * MIB

    admin_client.post(f"{base}/{name}/volumes/{disk}/resize/", {"capacity": "128M"})
    assert _volumes(libvirt_conn, name)[disk][0] == 128 * MIB
    shrink = admin_client.post(f"{base}/{name}/volumes/{disk}/resize/", {"capacity": "64M"}, follow=True)
    assert "shrinking" in shrink.content.decode() and _volumes(libvirt_conn, name)[disk][0] == 128 * MIB

    copy = f"{TEST_PREFIX}copy.qcow2"
    admin_client.post(f"{base}/{name}/volumes/{disk}/clone/", {"new_name": copy})
    job = _finished(Job.objects.get(kind="volume.clone").pk)
    assert (job.status, job.progress) == ("succeeded", 100), job.message
    assert _volumes(libvirt_conn, name)[copy][0] == 128 * MIB
    assert storage.volume_by_path("qemu:///system", os.path.join(folder, copy)).name == copy

    # A shut-off guest using the copy: deleting the copy is refused, naming the guest.
    dom = Domain.new(guest_name, 64, 1, "qemu")
    dom.add_device(Disk.new("vda", path=os.path.join(folder, copy)))
    cleanup_guests.append(guest_name)
    libvirt_conn.defineXML(dom.to_string())
    refused = admin_client.post(f"{base}/{name}/volumes/{copy}/delete/", follow=True).content.decode()
    assert "attached to guest(s)" in refused and guest_name in refused
    assert copy in _volumes(libvirt_conn, name)
    assert not Job.objects.filter(kind="volume.delete").exists()

    admin_client.post(f"{base}/{name}/volumes/{disk}/delete/")
    job = _finished(Job.objects.get(kind="volume.delete").pk)
    assert job.status == "succeeded", job.message
    assert set(_volumes(libvirt_conn, name)) == {copy}

    libvirt_conn.lookupByName(guest_name).undefine()
    admin_client.post(f"{base}/{name}/volumes/{copy}/delete/")
    _finished(Job.objects.filter(kind="volume.delete").latest("id").pk)
    assert _volumes(libvirt_conn, name) == {}

    page = admin_client.post(f"{base}/{name}/delete/", {"delete_storage": "1"}, follow=True).content.decode()
    assert f"Removed storage pool {name} and its directory" in page
    assert name not in libvirt_conn.listStoragePools() + libvirt_conn.listDefinedStoragePools()
    assert not os.path.exists(folder)

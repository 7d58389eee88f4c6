"""Provisioning on the real qemu:///system daemon with a real Celery worker and watcher:
config history from define events, internal snapshots with memory (revert works), an external
disk-only snapshot whose revert libvirt 9.0 refuses (clear message), and full and linked clones
of a shut-off guest. Only vdtest- objects this test made are removed."""

from __future__ import annotations

import pytest

from core.models import Job
from guests import services_provision as svc
from guests.models import Guest
from guests.models_history import ConfigVersion
from hosts.models import Host
from tests.stack import wait_until
from virtdash.xml import Disk, Domain, StoragePool, StorageVolume

MIB = 1024 * 1024


@pytest.fixture
def worker_and_watcher(partial_stack):
    return partial_stack("worker", "watcher")


@pytest.fixture
def vdtest_pool(libvirt_conn, scratch_pool):
    """An active vdtest- dir pool in a temp folder (removed with its volumes afterwards)."""
    name, folder = scratch_pool
    pool = libvirt_conn.storagePoolDefineXML(StoragePool.new("dir", name, target_path=folder).to_string())
    pool.create(0)
    return name, folder


def _finished(job: Job, timeout: float = 60) -> Job:
    wait_until(lambda: Job.objects.get(pk=job.pk).is_finished, timeout, message=f"job {job.pk} finished")
    return Job.objects.get(pk=job.pk)


def test_history_snapshots_and_clones_on_a_real_daemon(worker_and_watcher, admin_user, libvirt_conn, vdtest_pool,
                                                       cleanup_guests, guest_name):
    pool_name, _folder = vdtest_pool
    host = Host.objects.create(name="local", uri="qemu:///system")
    wait_until(lambda: Host.objects.get(pk=host.pk).status == "connected", 30, message="watcher connected")
    pool = libvirt_conn.storagePoolLookupByName(pool_name)
    vol = pool.createXML(StorageVolume.new(f"{guest_name}.qcow2", 64 * MIB).to_string(), 0)
    dom = Domain.new(guest_name, 64, 1, "qemu")
    dom.add_device(Disk.new("vda", path=vol.path()))
    cleanup_guests.extend([guest_name, f"{guest_name}-full", f"{guest_name}-linked"])
    domain = libvirt_conn.defineXML(dom.to_string())
    uuid_ = domain.UUIDString()

    # The watcher keeps the definition it saw (no author: defined outside VirtDash).
    first = wait_until(lambda: ConfigVersion.objects.filter(host=host, guest_uuid=uuid_).first(), 20,
                       message="define event recorded in the history")
    assert first.source == "event" and first.actor is None
    guest = wait_until(lambda: Guest.objects.filter(host=host, uuid=uuid_).first(), 20, message="inventory row")

    # Internal snapshot with memory of a running guest, then revert.
    domain.create()
    job = _finished(svc.queue_snapshot(admin_user, guest, name="with-ram", description="", memory=True,
                                       disk_only=False))
    assert job.status == "succeeded", job.message
    snap = domain.snapshotLookupByName("with-ram")
    assert b"<memory snapshot='internal'" in snap.getXMLDesc().encode()
    job = _finished(svc.queue_snapshot_action(admin_user, guest, "snapshot.revert", "with-ram"))
    assert job.status == "succeeded", job.message
    assert domain.isActive()
    job = _finished(svc.queue_snapshot_action(admin_user, guest, "snapshot.delete", "with-ram"))
    assert job.status == "succeeded" and domain.snapshotNum() == 0

    # Full and linked clones of the shut-off guest: new UUID, new volumes.
    domain.destroy()
    wait_until(lambda: not domain.isActive(), 10)
    job = _finished(svc.queue_clone(admin_user, guest, f"{guest_name}-full", linked=False))
    assert job.status == "succeeded", job.message
    full = libvirt_conn.lookupByName(f"{guest_name}-full")
    assert full.UUIDString() != uuid_
    pool.refresh(0)
    copy = pool.storageVolLookupByName(f"{guest_name}-full-vda.qcow2")
    assert copy.info()[1] == 64 * MIB and copy.path() in full.XMLDesc(0)
    job = _finished(svc.queue_clone(admin_user, guest, f"{guest_name}-linked", linked=True))
    assert job.status == "succeeded", job.message
    overlay = pool.storageVolLookupByName(f"{guest_name}-linked-vda.qcow2")
    assert vol.path() in overlay.XMLDesc(0)  # backing store is the original disk
    assert ConfigVersion.objects.get(guest_uuid=full.UUIDString(), source="clone").actor == admin_user

    # A disk-only snapshot is external: libvirt 9.0 cannot revert it, and says so clearly.
    domain.create()
    job = _finished(svc.queue_snapshot(admin_user, guest, name="disk-only", description="", memory=False,
                                       disk_only=True))
    assert job.status == "succeeded", job.message
    job = _finished(svc.queue_snapshot_action(admin_user, guest, "snapshot.revert", "disk-only"))
    assert job.status == "failed"
    assert "external" in job.message and "internal snapshots" in job.message.lower()
    domain.destroy()


def test_the_wizard_builds_cloud_init_iso_and_import_guests(worker_and_watcher, admin_user, libvirt_conn,
                                                            vdtest_pool, cleanup_guests, guest_name):
    from guests import services_create

    pool_name, _folder = vdtest_pool
    host = Host.objects.create(name="local", uri="qemu:///system")
    pool = libvirt_conn.storagePoolLookupByName(pool_name)
    image = pool.createXML(StorageVolume.new(f"{guest_name}-image.qcow2", 64 * MIB).to_string(), 0)
    iso = pool.createXML(StorageVolume.new(f"{guest_name}-install.iso", 1 * MIB, format="raw").to_string(), 0)
    base = {"vcpus": 1, "memory_mib": 64, "firmware": "bios", "pool": pool_name, "disk_size": "128M",
            "disk_format": "qcow2", "network": "none", "graphics": "none", "start": False}
    names = {kind: f"{guest_name}-{kind}" for kind in ("cloud", "iso", "import")}
    cleanup_guests.extend(names.values())
    specs = {
        "cloud": {**base, "name": names["cloud"], "source": "cloud", "source_path": image.path(),
                  "import_format": "qcow2", "cloud_user": "ops", "ssh_key": "ssh-ed25519 AAAAtest ops@example"},
        "iso": {**base, "name": names["iso"], "source": "iso", "source_path": iso.path()},
        "import": {**base, "name": names["import"], "source": "import", "source_path": image.path(),
                   "import_format": "qcow2"},
    }
    jobs = {kind: services_create.queue_create(admin_user, host, spec) for kind, spec in specs.items()}
    for kind, job in jobs.items():
        job = _finished(job)
        assert job.status == "succeeded", f"{kind}: {job.message}"

    cloud = Domain.parse(libvirt_conn.lookupByName(names["cloud"]).XMLDesc(0))
    overlay = libvirt_conn.storageVolLookupByPath(cloud.find_disk("vda").source_file)
    assert image.path() in overlay.XMLDesc(0)  # the cloud image is the untouched backing file
    seed = next(d for d in cloud.disks if d.device == "cdrom").source_file
    with open(seed, "rb") as fh:
        data = fh.read()
    assert data[0x8001:0x8006] == b"CD001" and b"ssh-ed25519 AAAAtest ops@example" in data

    installer = Domain.parse(libvirt_conn.lookupByName(names["iso"]).XMLDesc(0))
    assert installer.boot_devs == ["cdrom", "hd"]
    assert next(d for d in installer.disks if d.device == "cdrom").source_file == iso.path()
    imported = Domain.parse(libvirt_conn.lookupByName(names["import"]).XMLDesc(0))
    assert imported.find_disk("vda").source_file == image.path() and imported.graphics == []

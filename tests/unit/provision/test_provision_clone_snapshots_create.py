"""Clone, snapshots and the create wizard on the test:/// driver, run as jobs."""

from __future__ import annotations

import re

from core.choices import JobStatus
from core.models import Job
from guests import services_create
from guests import services_provision as svc
from guests.models import Guest
from hosts.virt import provision
from tests.unit.provision.conftest import run_job
from virtdash.xml import StorageVolume


def _guest_with_pool_disk(make_test_guest, test_host):
    guest = make_test_guest(disk=False)
    path = provision.create_volume(test_host.uri, "default-pool",
                                   StorageVolume.new(f"{guest.name}.img", "1G", format="raw").to_string())
    from virtdash.xml import Disk, Domain

    dom = Domain.parse(provision.inactive_xml(test_host.uri, guest.uuid))
    dom.add_device(Disk.new("vda", path=path, driver_type="raw"))
    provision.define_validated(test_host.uri, dom.to_string())
    return guest, path


def test_a_clone_gets_a_new_name_uuid_mac_and_its_own_disk(operator_client, make_test_guest, test_host):
    guest, path = _guest_with_pool_disk(make_test_guest, test_host)
    response = operator_client.post(f"/guests/{guest.uuid}/clone/", {"new_name": f"{guest.name}-c"})
    assert response.status_code == 302
    job = run_job(Job.objects.get(kind="guest.clone"), svc.run_clone)
    assert job.status == JobStatus.SUCCEEDED, job.message
    new_uuid = provision.uuid_for_name(test_host.uri, f"{guest.name}-c")
    try:
        assert new_uuid and new_uuid != guest.uuid
        xml = provision.inactive_xml(test_host.uri, new_uuid)
        assert f"/default-pool/{guest.name}-c-vda.img" in xml and path not in xml
        assert Guest.objects.filter(host=test_host, uuid=new_uuid).exists()
    finally:
        provision.undefine(test_host.uri, new_uuid)
        provision.delete_volume(test_host.uri, f"/default-pool/{guest.name}-c-vda.img")
        provision.delete_volume(test_host.uri, path)


def test_a_running_guest_is_not_cloned(operator_client, guest):
    provision.start(guest.host.uri, guest.uuid)
    page = operator_client.post(f"/guests/{guest.uuid}/clone/", {"new_name": f"{guest.name}-c"})
    assert "Shut" in page.content.decode() and not Job.objects.exists()


def test_snapshots_are_taken_listed_reverted_and_deleted(operator_client, guest):
    operator_client.post(f"/guests/{guest.uuid}/snapshots/new/", {"name": "before-upgrade", "description": "safe"})
    job = run_job(Job.objects.get(kind="snapshot.create"), svc.run_snapshot_create)
    assert job.status == JobStatus.SUCCEEDED, job.message
    operator_client.post(f"/guests/{guest.uuid}/snapshots/new/", {"name": "child"})
    run_job(Job.objects.filter(kind="snapshot.create").first(), svc.run_snapshot_create)
    page = operator_client.get(f"/guests/{guest.uuid}/snapshots/").content.decode()
    assert "before-upgrade" in page and "--depth: 1" in page  # child under its parent
    operator_client.post(f"/guests/{guest.uuid}/snapshots/action/", {"name": "before-upgrade", "action": "revert"})
    job = run_job(Job.objects.get(kind="snapshot.revert"), svc.run_snapshot_revert)
    assert job.status == JobStatus.SUCCEEDED, job.message
    operator_client.post(f"/guests/{guest.uuid}/snapshots/action/", {"name": "child", "action": "delete"})
    job = run_job(Job.objects.get(kind="snapshot.delete"), svc.run_snapshot_delete)
    assert job.status == JobStatus.SUCCEEDED, job.message
    assert [s["name"] for s in svc.snapshot_list(guest)] == ["before-upgrade"]


def test_a_duplicate_snapshot_name_fails_the_job_clearly(operator_client, guest):
    for _ in range(2):
        operator_client.post(f"/guests/{guest.uuid}/snapshots/new/", {"name": "twice"})
        run_job(Job.objects.filter(kind="snapshot.create").first(), svc.run_snapshot_create)
    assert "exists already" in Job.objects.filter(kind="snapshot.create").first().message


def test_the_wizard_walks_its_steps_and_creates_a_guest(operator_client, test_host):
    test_host.facts = {"cpus": 4, "memory_free": 2 * 1024**3, "pools": []}
    test_host.save()
    name = "vdtest-wizard1"
    steps = [("host", {"host": test_host.pk}), ("source", {"name": name, "source": "none"}),
             ("resources", {"vcpus": 1, "memory_mib": 64, "firmware": "bios"}),
             ("storage", {"pool": "default-pool", "disk_size": "1G", "disk_format": "qcow2", "network": "none",
                          "graphics": "vnc", "start": "on"})]
    page = operator_client.get("/guests/new/")
    assert b"most room" in page.content
    for step, data in steps:
        response = operator_client.post(f"/guests/new/?step={step}", data)
        assert response.status_code == 302, response.content.decode()[-3000:]
    page = operator_client.get("/guests/new/?step=review")
    assert name.encode() in page.content
    operator_client.post("/guests/new/?step=review")
    job = run_job(Job.objects.get(kind="guest.create"), services_create.run_create)
    assert job.status == JobStatus.SUCCEEDED, job.message
    uuid = provision.uuid_for_name(test_host.uri, name)
    try:
        xml = provision.inactive_xml(test_host.uri, uuid)
        assert "<graphics type='vnc'" in xml and "<interface" not in xml
        assert provision.state(test_host.uri, uuid)["active"]
        assert svc.versions(Guest.objects.get(uuid=uuid)).first().source == "create"
    finally:
        provision.destroy(test_host.uri, uuid)
        provision.undefine(test_host.uri, uuid)
        provision.delete_volume(test_host.uri, f"/default-pool/{name}.qcow2")


def test_new_guests_use_qemu_unless_kvm_passed_a_boot_check(test_host):
    assert services_create.virt_type(test_host) == "qemu"
    test_host.kvm_usable = True
    assert services_create.virt_type(test_host) == "kvm"


def test_the_cloud_init_seed_is_an_iso_labelled_cidata():
    data = services_create.cloud_init_iso("vm1", "ops", "ssh-ed25519 AAAA key")
    assert data[0x8001:0x8006] == b"CD001"
    assert re.search(rb"CIDATA|cidata", data[0x8000:0x8100])
    assert b"#cloud-config" in data and b"ssh-ed25519 AAAA key" in data


def test_os_variants_come_from_libosinfo_with_recommended_defaults():
    variants = dict(services_create.os_variants())
    assert "http://debian.org/debian/11" in variants
    defaults = services_create.os_defaults("http://debian.org/debian/11")
    assert defaults["memory_mib"] >= 512 and defaults["disk_size"].endswith("G")
    assert services_create.os_defaults("http://example.com/unknown") == {}


def test_the_host_step_shows_running_vcpus_and_suggests_the_roomiest_host(operator_user, make_test_guest, test_host):
    from hosts.models import Host

    roomy = Host.objects.create(name="roomy", uri="test:///default?unused=1", facts={"memory_free": 8 * 1024**3})
    for _ in range(2):
        guest = make_test_guest()
        provision.start(test_host.uri, guest.uuid)
        svc.touch_inventory(test_host, guest.uuid)
    rows = {row["host"].name: row for row in services_create.host_choices(operator_user)}
    assert rows["testhost"]["vcpus_in_use"] == 2
    assert rows["roomy"].get("suggested") and not rows["testhost"].get("suggested")
    roomy.delete()

"""Edits: preview the diff, apply as a job, only what was asked changes; refusals change nothing."""

from __future__ import annotations

import re

from core.choices import JobStatus
from core.models import Job
from guests import services_provision as svc
from hosts.virt import provision
from tests.unit.provision.conftest import run_job
from virtdash.xml import Domain, Video

GENERAL = {"vcpus": "1", "max_vcpus": "2", "memory_mib": "128", "max_memory_mib": "256", "title": "Web",
           "description": "front end", "tags": "prod, web", "owner": "team-a"}


def _preview(client, guest, section: str, data: dict):
    return client.post(f"/guests/{guest.uuid}/edit/{section}/", data)


def _apply(client, guest, page, mode="config"):
    token = re.search(r'name="token" value="([^"]+)"', page.content.decode()).group(1)
    return client.post(f"/guests/{guest.uuid}/edit/apply/", {"token": token, "mode": mode})


def test_the_edit_page_shows_the_current_configuration(operator_client, guest):
    page = operator_client.get(f"/guests/{guest.uuid}/edit/")
    assert page.status_code == 200
    assert b'value="128"' in page.content and b"vda" in page.content


def test_an_edit_shows_a_diff_first_and_changes_nothing_until_applied(operator_client, guest):
    before = provision.inactive_xml(guest.host.uri, guest.uuid)
    page = _preview(operator_client, guest, "general", GENERAL)
    assert page.status_code == 200
    assert b"diff-add" in page.content and b"team-a" in page.content
    assert provision.inactive_xml(guest.host.uri, guest.uuid) == before
    assert not Job.objects.exists()


def test_applying_an_edit_changes_only_what_was_asked(operator_client, guest):
    page = _preview(operator_client, guest, "general", GENERAL)
    response = _apply(operator_client, guest, page)
    job = Job.objects.get(kind="guest.edit")
    assert response.status_code == 302 and response["Location"] == f"/jobs/{job.pk}/"
    job = run_job(job, svc.run_edit)
    assert job.status == JobStatus.SUCCEEDED, job.message
    dom = Domain.parse(provision.inactive_xml(guest.host.uri, guest.uuid))
    assert (dom.vcpus, dom.vcpus_max, dom.memory_mib) == (1, 2, 256)
    assert dom.title == "Web" and dom.owner == "team-a" and dom.tags == ["prod", "web"]
    assert dom.find_disk("vda") is not None  # untouched
    assert svc.versions(guest).first().actor_name == "oscar-operator"


def test_an_edit_refuses_when_the_definition_changed_since_the_preview(operator_client, guest):
    page = _preview(operator_client, guest, "general", GENERAL)
    _apply(operator_client, guest, page)
    dom = Domain.parse(provision.inactive_xml(guest.host.uri, guest.uuid))
    dom.description = "changed by someone else"
    provision.define_validated(guest.host.uri, dom.to_string())
    job = run_job(Job.objects.get(kind="guest.edit"), svc.run_edit)
    assert job.status == JobStatus.FAILED and "changed since the preview" in job.message
    assert Domain.parse(provision.inactive_xml(guest.host.uri, guest.uuid)).owner is None


def test_adding_a_disk_creates_its_volume_and_attaches_it(operator_client, guest):
    page = _preview(operator_client, guest, "add_disk", {"pool": "default-pool", "volume_name": f"{guest.name}-b.qcow2",
                                                        "size": "1G", "format": "qcow2", "bus": "virtio"})
    assert b"vdb" in page.content, page.content[:3000]
    _apply(operator_client, guest, page)
    job = run_job(Job.objects.get(kind="guest.edit"), svc.run_edit)
    assert job.status == JobStatus.SUCCEEDED, job.message
    disk = Domain.parse(provision.inactive_xml(guest.host.uri, guest.uuid)).find_disk("vdb")
    assert disk.source_file == f"/default-pool/{guest.name}-b.qcow2"
    assert provision.volume_by_path(guest.host.uri, disk.source_file)["capacity"] == 1024**3
    provision.delete_volume(guest.host.uri, disk.source_file)


def test_removing_a_disk_and_adding_a_cd_drive(operator_client, guest):
    page = _preview(operator_client, guest, "remove_disk", {"target": "vda"})
    _apply(operator_client, guest, page)
    run_job(Job.objects.get(kind="guest.edit"), svc.run_edit)
    page = _preview(operator_client, guest, "add_cdrom", {})
    _apply(operator_client, guest, page)
    run_job(Job.objects.filter(kind="guest.edit").first(), svc.run_edit)
    dom = Domain.parse(provision.inactive_xml(guest.host.uri, guest.uuid))
    assert dom.find_disk("vda") is None
    assert [d.device for d in dom.disks] == ["cdrom"]


def test_nics_can_be_added_changed_and_removed(operator_client, guest):
    page = _preview(operator_client, guest, "add_nic", {"kind": "network", "source": "default", "model": "virtio"})
    _apply(operator_client, guest, page)
    run_job(Job.objects.get(kind="guest.edit"), svc.run_edit)
    mac = Domain.parse(provision.inactive_xml(guest.host.uri, guest.uuid)).interfaces[0].mac
    page = _preview(operator_client, guest, "change_nic", {"mac": mac, "kind": "bridge", "source": "br0",
                                                          "model": "e1000"})
    _apply(operator_client, guest, page)
    run_job(Job.objects.filter(kind="guest.edit").first(), svc.run_edit)
    nic = Domain.parse(provision.inactive_xml(guest.host.uri, guest.uuid)).interfaces[0]
    assert (nic.type, nic.source_bridge, nic.model) == ("bridge", "br0", "e1000")
    page = _preview(operator_client, guest, "remove_nic", {"mac": mac})
    _apply(operator_client, guest, page)
    run_job(Job.objects.filter(kind="guest.edit").first(), svc.run_edit)
    assert Domain.parse(provision.inactive_xml(guest.host.uri, guest.uuid)).interfaces == []


def test_boot_order_display_and_autostart(operator_client, guest):
    page = _preview(operator_client, guest, "boot", {"order": ["disk vda"], "boot_menu": "on"})
    _apply(operator_client, guest, page)
    run_job(Job.objects.get(kind="guest.edit"), svc.run_edit)
    page = _preview(operator_client, guest, "display", {"graphics": "vnc", "video": "vga"})
    _apply(operator_client, guest, page)
    run_job(Job.objects.filter(kind="guest.edit").first(), svc.run_edit)
    page = _preview(operator_client, guest, "general", {**GENERAL, "autostart": "on"})
    _apply(operator_client, guest, page)
    run_job(Job.objects.filter(kind="guest.edit").first(), svc.run_edit)
    dom = Domain.parse(provision.inactive_xml(guest.host.uri, guest.uuid))
    assert dom.boot_order() == ["disk vda"] and dom.boot_menu is True
    assert dom.graphics[0].type == "vnc" and dom.devices_of(Video)[0].model == "vga"
    assert provision.state(guest.host.uri, guest.uuid)["autostart"] is True


def test_a_running_guest_can_take_memory_live(operator_client, guest):
    provision.start(guest.host.uri, guest.uuid)
    page = _preview(operator_client, guest, "general", {**GENERAL, "max_memory_mib": "128", "memory_mib": "64",
                                                        "max_vcpus": "1"})
    assert b"Now and persistent" in page.content
    _apply(operator_client, guest, page, mode="both")
    job = run_job(Job.objects.get(kind="guest.edit"), svc.run_edit)
    assert job.status == JobStatus.SUCCEEDED, job.message
    assert Domain.parse(provision.inactive_xml(guest.host.uri, guest.uuid)).current_memory_kib == 64 * 1024


def test_submitting_the_current_values_offers_nothing_to_apply(operator_client, guest):
    page = _preview(operator_client, guest, "general", {"vcpus": "1", "max_vcpus": "1", "memory_mib": "128",
                                                        "max_memory_mib": "128"})
    assert page.status_code == 302
    follow = operator_client.get(page["Location"]).content.decode()
    assert "nothing to apply" in follow


def test_a_redelivered_edit_task_converges_instead_of_failing(operator_client, guest):
    from core.choices import JobStatus as Status

    page = _preview(operator_client, guest, "general", GENERAL)
    _apply(operator_client, guest, page)
    job = run_job(Job.objects.get(kind="guest.edit"), svc.run_edit)
    assert job.status == Status.SUCCEEDED
    Job.objects.filter(pk=job.pk).update(status=Status.QUEUED)  # as if the broker delivered it again
    job = run_job(job, svc.run_edit)
    assert job.status == Status.SUCCEEDED, job.message

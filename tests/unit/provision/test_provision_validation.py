"""Refused with a clear message and nothing changed: absurd sizes, names, counts and hostile XML."""

from __future__ import annotations

import pytest

from core.choices import JobStatus
from core.models import Job
from guests import services_create
from guests import services_provision as svc
from guests.provision_edit import EditError
from hosts.virt import provision
from tests.unit.provision.conftest import run_job

XXE = """<?xml version="1.0"?>
<!DOCTYPE domain [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<domain type='test'><name>NAME</name><memory>131072</memory><description>&xxe;</description>
<os><type>hvm</type></os></domain>"""

LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<domain type='test'><name>NAME</name><memory>131072</memory><description>&lol3;</description>
<os><type>hvm</type></os></domain>"""


def _edit(client, guest, section, data):
    return client.post(f"/guests/{guest.uuid}/edit/{section}/", data, follow=True)


def _general(**over):
    return {"vcpus": "1", "max_vcpus": "1", "memory_mib": "128", "max_memory_mib": "128", **over}


@pytest.mark.parametrize("over, words", [
    ({"memory_mib": "0", "max_memory_mib": "0"}, "greater than or equal to 16"),
    ({"vcpus": "10000", "max_vcpus": "10000"}, "less than or equal to 4096"),
    ({"vcpus": "-1"}, "greater than or equal to 1"),
    ({"vcpus": "2", "max_vcpus": "1"}, "cannot exceed the maximum"),
])
def test_absurd_cpu_and_memory_are_refused(operator_client, guest, over, words):
    before = provision.inactive_xml(guest.host.uri, guest.uuid)
    page = _edit(operator_client, guest, "general", _general(**over)).content.decode()
    assert "Nothing was changed" in page and words in page
    assert provision.inactive_xml(guest.host.uri, guest.uuid) == before and not Job.objects.exists()


@pytest.mark.parametrize("volume_name, size, words", [
    ("../../etc/passwd", "1G", "not allowed"),
    ("a/b", "1G", "not allowed"),
    ("x" * 300, "1G", "at most 200 characters"),
    ("ok.qcow2", "10P", "larger than the limit"),
    ("ok.qcow2", "-1G", "negative"),
])
def test_hostile_volume_names_and_sizes_are_refused(operator_client, guest, volume_name, size, words):
    before = provision.inactive_xml(guest.host.uri, guest.uuid)
    page = _edit(operator_client, guest, "add_disk", {"pool": "default-pool", "volume_name": volume_name,
                                                      "size": size, "format": "qcow2", "bus": "virtio"})
    text = page.content.decode()
    assert "Nothing was changed" in text and words in text
    assert provision.inactive_xml(guest.host.uri, guest.uuid) == before


def test_a_nul_in_a_volume_name_is_refused(operator_client, guest):
    page = _edit(operator_client, guest, "add_disk", {"pool": "default-pool", "volume_name": "a\x00b",
                                                      "size": "1G", "format": "qcow2", "bus": "virtio"})
    assert "Nothing was changed" in page.content.decode()


@pytest.mark.parametrize("doc", [XXE, LAUGHS])
def test_raw_xml_with_entities_is_refused(admin_client, guest, doc):
    before = provision.inactive_xml(guest.host.uri, guest.uuid)
    page = admin_client.post(f"/guests/{guest.uuid}/xml/", {"xml": doc.replace("NAME", guest.name)})
    assert page.status_code == 200
    assert "DOCTYPE or ENTITY declaration is refused" in page.content.decode()
    assert provision.inactive_xml(guest.host.uri, guest.uuid) == before and not Job.objects.exists()


def test_raw_xml_that_libvirt_rejects_keeps_the_old_definition(admin_client, guest):
    before = provision.inactive_xml(guest.host.uri, guest.uuid)
    response = admin_client.post(f"/guests/{guest.uuid}/xml/", {"xml": before.replace("<memory", "<bogus/><memory", 1)})
    job = run_job(Job.objects.get(kind="guest.raw_xml"), svc.run_define)
    assert response.status_code == 302
    assert job.status == JobStatus.FAILED and "failed to validate" in job.message
    assert provision.inactive_xml(guest.host.uri, guest.uuid) == before
    page = admin_client.get(f"/guests/{guest.uuid}/xml/").content.decode()
    assert "was refused and changed nothing" in page and "failed to validate" in page


def test_raw_xml_that_libvirt_accepts_replaces_the_definition(admin_client, guest):
    before = provision.inactive_xml(guest.host.uri, guest.uuid)
    admin_client.post(f"/guests/{guest.uuid}/xml/", {"xml": before.replace("</name>", "</name><title>raw</title>")})
    job = run_job(Job.objects.get(kind="guest.raw_xml"), svc.run_define)
    assert job.status == JobStatus.SUCCEEDED, job.message
    assert "<title>raw</title>" in provision.inactive_xml(guest.host.uri, guest.uuid)
    assert svc.versions(guest).first().source == "raw"


def test_raw_xml_for_another_guest_is_refused(admin_client, guest):
    xml = provision.inactive_xml(guest.host.uri, guest.uuid).replace(guest.uuid, "00000000-0000-0000-0000-000000000001")
    page = admin_client.post(f"/guests/{guest.uuid}/xml/", {"xml": xml})
    assert "another guest" in page.content.decode()


def test_a_duplicate_guest_name_is_refused_by_the_wizard_and_clone(test_host, guest):
    with pytest.raises(EditError, match="already exists"):
        services_create.check_name(test_host, "test")
    with pytest.raises(EditError, match="already exists"):
        svc.check_clone(guest, guest.name)


@pytest.mark.parametrize("over, words", [
    ({"memory_mib": 0}, "Memory must be"),
    ({"vcpus": 10000}, "vCPUs must be"),
    ({"disk_size": "10P"}, "larger than the limit"),
    ({"disk_size": "-5G"}, "negative"),
    ({"name": "../../etc/passwd"}, "not allowed"),
    ({"name": "a/b"}, "not allowed"),
    ({"name": "a\x00b"}, "not allowed"),
    ({"name": "x" * 300}, "limit is 64"),
    ({"name": "test"}, "already exists"),
    ({"firmware": "efi"}, "OVMF"),
])
def test_the_wizard_refuses_absurd_specs(test_host, over, words):
    spec = {"name": "vdtest-wizard", "source": "none", "vcpus": 1, "memory_mib": 128, "firmware": "bios",
            "pool": "default-pool", "disk_size": "1G", "disk_format": "qcow2", "network": "none",
            "graphics": "vnc", **over}
    with pytest.raises(EditError, match=words):
        services_create.check_spec(test_host, spec)

"""Attaching an existing volume whose qcow2 backing chain leaves VIRTDASH_POOL_PATHS, on qemu:///system.

A qcow2 backed by /etc/hostname (/etc/shadow in an attack) would hand that host file to the guest.
An operator's "add disk" with such a volume is refused at the preview (audited, the guest's XML
unchanged); a plain qcow2 and a linked clone backed by another volume of the same pool (under the
allowed prefixes: tests/settings.py allows the temp dir) are attached. Admins are exempt. The
create wizard's "import existing image" source is refused the same way."""

from __future__ import annotations

import subprocess

import pytest
from django.test import Client

from core import jobs
from core.models import AuditEntry, Job
from guests import services_create as create_svc
from guests import services_provision as svc
from guests.provision_edit import EditError
from hosts.models import Host
from hosts.virt import storage
from tests.conftest import TEST_PREFIX
from virtdash.xml import Domain

URI = "qemu:///system"


@pytest.fixture
def pool(scratch_pool):
    name, folder = scratch_pool
    storage.define_pool(URI, "dir", name, target_path=folder)
    return name, folder


def _qcow2(folder: str, name: str, *options: str) -> str:
    assert name.startswith(TEST_PREFIX)
    path = f"{folder}/{name}"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", *options, path, "1M"], check=True)
    return path


def _add_disk(client, guest, path: str):
    return client.post(f"/guests/{guest.uuid}/edit/add_disk/",
                       {"existing_path": path, "bus": "virtio", "format": "qcow2", "size": ""}, follow=True)


def _apply(client, guest) -> Job:
    token = next(iter(client.session["provision_pending"]))
    client.post(f"/guests/{guest.uuid}/edit/apply/", {"token": token, "mode": "config"})
    job = Job.objects.filter(kind="guest.edit", guest_uuid=guest.uuid).latest("pk")
    jobs.run(job.pk, svc.run_edit)  # the worker's part, inline (no Celery needed for this check)
    return Job.objects.get(pk=job.pk)


def test_operators_cannot_attach_a_volume_backed_by_a_host_file_but_same_pool_overlays_attach(
        services, db, operator_user, operator_client, admin_user, libvirt_conn, pool, cleanup_guests, guest_name):
    pool_name, folder = pool
    host = Host.objects.create(name="local", uri=URI)
    evil = _qcow2(folder, f"{guest_name}-evil.qcow2", "-b", "/etc/hostname", "-F", "raw")
    plain = _qcow2(folder, f"{guest_name}-plain.qcow2")
    linked = _qcow2(folder, f"{guest_name}-linked.qcow2", "-b", plain, "-F", "qcow2")
    relinked = _qcow2(folder, f"{guest_name}-relinked.qcow2", "-b", evil, "-F", "qcow2")  # evil one level down
    storage.refresh_pool(URI, pool_name)
    assert storage.backing_chain(URI, relinked).paths == (evil, "/etc/hostname")

    cleanup_guests.append(guest_name)
    domain = libvirt_conn.defineXML(Domain.new(guest_name, 64, 1, "qemu").to_string())
    guest = svc.touch_inventory(host, domain.UUIDString())
    before = domain.XMLDesc(0)

    for bad in (evil, relinked):
        page = _add_disk(operator_client, guest, bad)
        text = page.content.decode()
        assert "Nothing was changed" in text and "/etc/hostname" in text and "VIRTDASH_POOL_PATHS" in text
        assert domain.XMLDesc(0) == before
    refusal = AuditEntry.objects.filter(action="guest.edit", actor=operator_user).latest("pk")
    assert refusal.result == "failed" and "/etc/hostname" in refusal.detail
    assert not Job.objects.filter(kind="guest.edit").exists()

    # The wizard's "import an existing image" source is refused too (before any job).
    with pytest.raises(EditError, match="/etc/hostname"):
        create_svc.queue_create(operator_user, host, {
            "name": f"{guest_name}-imp", "source": "import", "source_path": evil, "vcpus": 1, "memory_mib": 64,
            "network": "none", "graphics": "none"})
    assert not Job.objects.filter(kind="guest.create").exists()

    # A plain qcow2 and a linked clone backed by a volume of the same (allowed) pool are attached.
    for good in (plain, linked):
        page = _add_disk(operator_client, guest, good)
        assert page.status_code == 200 and "Nothing was changed" not in page.content.decode()
        job = _apply(operator_client, guest)
        assert job.status == "succeeded", job.message
        assert good in domain.XMLDesc(0)

    # Admins are exempt (they may put pools anywhere as well): the same volume is attached for them.
    svc.check_attach_source(admin_user, host, evil)
    admin_client = Client()
    admin_client.force_login(admin_user)
    page = _add_disk(admin_client, guest, evil)
    assert "Nothing was changed" not in page.content.decode()
    assert _apply(admin_client, guest).status == "succeeded"
    assert evil in domain.XMLDesc(0)

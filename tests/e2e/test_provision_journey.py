"""An admin provisions a guest in Chromium against the real libvirtd, each step checked in libvirt:
wizard (1 GiB qcow2 in a vdtest- dir pool, no NIC, VNC) → it runs → add a second disk live →
snapshot, revert, delete it → edit memory → roll back to the previous version from the history →
clone the shut-off guest → delete the guest with its volumes."""

from __future__ import annotations

import re

import libvirt
import pytest

from core.models import Job
from guests.models import Guest
from hosts.models import Host
from tests.e2e.conftest import login, screenshot
from tests.stack import wait_until
from virtdash.xml import Domain, StoragePool

GIB = 1024**3
INACTIVE = libvirt.VIR_DOMAIN_XML_INACTIVE


@pytest.fixture
def e2e_pool(libvirt_conn, scratch_pool):
    """An active vdtest- dir pool in a temp folder (removed with its volumes afterwards)."""
    name, folder = scratch_pool
    pool = libvirt_conn.storagePoolDefineXML(StoragePool.new("dir", name, target_path=folder).to_string())
    pool.create(0)
    return pool


def _job_done(page) -> Job:
    page.wait_for_url(re.compile(r"/jobs/\d+/$"))
    job_id = int(re.search(r"/jobs/(\d+)/$", page.url).group(1))
    wait_until(lambda: Job.objects.get(pk=job_id).is_finished, 60, message=f"job {job_id}")
    job = Job.objects.get(pk=job_id)
    assert job.status == "succeeded", job.message
    return job


def _inactive(dom) -> Domain:
    return Domain.parse(dom.XMLDesc(INACTIVE))


def test_admin_creates_edits_snapshots_rolls_back_clones_and_deletes_a_guest(
        stack, page, admin_user, libvirt_conn, e2e_pool, guest_name, cleanup_guests):
    cleanup_guests.extend([guest_name, f"{guest_name}-clone"])
    host = Host.objects.create(name="local", uri="qemu:///system")
    wait_until(lambda: Host.objects.get(pk=host.pk).status == "connected", 30, message="local connected")
    login(page, stack.url, admin_user.username)

    # 1. The wizard.
    page.goto(f"{stack.url}/guests/")
    page.click("#new-guest")
    page.check(f"#host-{host.pk}")
    page.click("#wizard-next")
    page.fill("#id_name", guest_name)
    page.check("input[name=source][value=none]")
    page.click("#wizard-next")
    page.fill("#id_vcpus", "1")
    page.fill("#id_memory_mib", "128")
    page.click("#wizard-next")
    page.select_option("#id_pool", e2e_pool.name())
    page.fill("#id_disk_size", "1G")
    page.select_option("#id_disk_format", "qcow2")
    page.select_option("#id_network", "none")
    page.select_option("#id_graphics", "vnc")
    page.check("#id_start")
    page.click("#wizard-next")
    assert guest_name in page.locator("dl.facts").inner_text()
    screenshot(page, "provision-wizard-review")
    page.click("#wizard-next")
    _job_done(page)
    dom = libvirt_conn.lookupByName(guest_name)
    assert dom.isActive()
    created = _inactive(dom)
    assert created.type == "qemu" and created.interfaces == [] and created.graphics[0].type == "vnc"
    vda = libvirt_conn.storageVolLookupByPath(created.find_disk("vda").source_file)
    assert vda.info()[1] == GIB and "qcow2" in vda.XMLDesc(0)

    # Its VNC console connects (the screen shows SeaBIOS looking for a bootable disk).
    guest = wait_until(lambda: Guest.objects.filter(uuid=dom.UUIDString()).first(), 20, message="inventory row")
    page.goto(f"{stack.url}/consoles/{guest.uuid}/vnc/")
    page.wait_for_function("() => document.getElementById('console-status').textContent.startsWith('Connected')",
                           timeout=20000)
    page.wait_for_timeout(1000)
    screenshot(page, "provision-new-guest-console")

    # 2. A second disk, hot-plugged and persistent.
    page.goto(f"{stack.url}/guests/{guest.uuid}/")
    page.click(".provision-actions >> text=Edit")
    screenshot(page, "provision-edit")
    form = page.locator("#form-add-disk")
    form.locator("#id_pool").select_option(e2e_pool.name())
    form.locator("#id_volume_name").fill(f"{guest_name}-data.qcow2")
    form.locator("#id_size").fill("64M")
    form.locator("button[type=submit]").click()
    assert "vdb" in page.locator("pre.diff").inner_text()
    page.check("input[name=mode][value=both]")
    screenshot(page, "provision-edit-preview")
    page.click("#apply-form button[type=submit]")
    _job_done(page)
    assert _inactive(dom).find_disk("vdb") is not None
    assert Domain.parse(dom.XMLDesc(0)).find_disk("vdb") is not None  # live too

    # 3. Snapshot with memory, revert, delete.
    page.goto(f"{stack.url}/guests/{guest.uuid}/snapshots/")
    page.fill("#id_name", "before-change")
    page.check("#id_memory")
    page.click("#snapshot-form button[type=submit]")
    _job_done(page)
    assert dom.snapshotLookupByName("before-change").getName() == "before-change"
    page.goto(f"{stack.url}/guests/{guest.uuid}/snapshots/")
    screenshot(page, "provision-snapshots")
    page.click("[data-snapshot='before-change'] button[value=revert]")
    _job_done(page)
    assert dom.isActive() and dom.hasCurrentSnapshot()
    page.goto(f"{stack.url}/guests/{guest.uuid}/snapshots/")
    page.click("[data-snapshot='before-change'] button[value=delete]")
    _job_done(page)
    assert dom.snapshotNum() == 0

    # 4. Edit memory (persistent) and see it in libvirt.
    page.goto(f"{stack.url}/guests/{guest.uuid}/edit/")
    page.fill("#id_max_memory_mib", "192")
    page.fill("#id_memory_mib", "192")
    page.click("#form-general button[type=submit]")
    assert "196608" in page.locator("pre.diff").inner_text()
    page.click("#apply-form button[type=submit]")
    _job_done(page)
    assert _inactive(dom).memory_mib == 192

    # 5. Roll back to the previous version from the history.
    page.goto(f"{stack.url}/guests/{guest.uuid}/history/")
    screenshot(page, "provision-history")
    page.locator("tbody tr").nth(1).locator("text=Roll back to this").click()
    _job_done(page)
    rolled = _inactive(dom)
    assert rolled.memory_mib == 128 and rolled.find_disk("vdb") is not None

    # The raw XML editor highlights the definition and refuses an external entity, changing nothing.
    page.goto(f"{stack.url}/guests/{guest.uuid}/xml/")
    page.wait_for_selector("#xml-highlight .xml-tag")
    screenshot(page, "provision-raw-xml")
    before = dom.XMLDesc(INACTIVE)
    page.fill("#id_xml", '<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>' + before)
    page.click("form.card button[type=submit]")
    assert "DOCTYPE or ENTITY declaration is refused" in page.locator("#xml-error").inner_text()
    assert dom.XMLDesc(INACTIVE) == before

    # 6. Clone the shut-off guest.
    dom.destroy()
    wait_until(lambda: Guest.objects.get(pk=guest.pk).state == "shutoff", 20, message="inventory sees shut off")
    page.goto(f"{stack.url}/guests/{guest.uuid}/clone/")
    page.fill("#id_new_name", f"{guest_name}-clone")
    page.click("form.card button[type=submit]")
    _job_done(page)
    clone = libvirt_conn.lookupByName(f"{guest_name}-clone")
    cloned = _inactive(clone)
    assert clone.UUIDString() != dom.UUIDString()
    assert {d.source_file for d in cloned.disks}.isdisjoint({d.source_file for d in rolled.disks})
    assert all(libvirt_conn.storageVolLookupByPath(d.source_file) for d in cloned.disks)

    # 7. Delete the guest with its volumes (the guest page's own delete action).
    page.goto(f"{stack.url}/guests/{guest.uuid}/delete/")
    for box in page.locator("input[name=volume]").all():
        box.check()
    page.fill("#confirm", guest_name)
    page.click("#delete-form button[type=submit]")
    _job_done(page)
    assert guest_name not in [d.name() for d in libvirt_conn.listAllDomains()]
    e2e_pool.refresh(0)
    left = {v.name() for v in e2e_pool.listAllVolumes()}
    assert f"{guest_name}.qcow2" not in left and f"{guest_name}-data.qcow2" not in left

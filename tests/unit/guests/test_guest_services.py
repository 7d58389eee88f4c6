"""Guest services run as the worker runs them (task functions called directly, test driver)."""

from datetime import timedelta

from django.utils import timezone

from core import jobs
from core.models import Job
from guests import samples, services
from guests.models import Guest, GuestSample, HostSample, Resolution
from hosts.virt import stats


def _run(user, guest, name):
    job = jobs.create(user, f"guest.{name}", guest=guest, params={"action": name})
    jobs.run(job.pk, services.perform_action)
    job.refresh_from_db()
    return job


def test_actions_change_libvirt_and_the_row(admin_user, synced, virt):
    guest = Guest.objects.get(name="vdtest-alpha")
    dom = virt.lookupByUUIDString(guest.uuid)
    assert _run(admin_user, guest, "suspend").status == "succeeded"
    assert dom.state()[0] == 3 and Guest.objects.get(pk=guest.pk).state == "paused"
    assert _run(admin_user, guest, "resume").status == "succeeded"
    assert dom.state()[0] == 1
    assert _run(admin_user, guest, "destroy").status == "succeeded"
    assert not dom.isActive() and Guest.objects.get(pk=guest.pk).state == "shutoff"
    assert _run(admin_user, guest, "start").status == "succeeded"
    assert dom.isActive()


def test_start_on_a_running_guest_converges_to_success(admin_user, synced, virt):
    guest = Guest.objects.get(name="vdtest-alpha")
    job = _run(admin_user, guest, "start")
    assert job.status == "succeeded" and job.progress == 100


def test_autostart_on_and_off(admin_user, synced, virt):
    guest = Guest.objects.get(name="vdtest-beta")
    _run(admin_user, guest, "autostart-on")
    assert virt.lookupByUUIDString(guest.uuid).autostart() == 1
    assert Guest.objects.get(pk=guest.pk).autostart is True
    _run(admin_user, guest, "autostart-off")
    assert virt.lookupByUUIDString(guest.uuid).autostart() == 0


def test_a_bulk_job_reports_each_guest(admin_user, synced, virt):
    guests = list(Guest.objects.filter(host=synced))
    job = jobs.create(admin_user, "guest.bulk-destroy", target_name="3 guests",
                      params={"action": "destroy", "guests": [g.pk for g in guests]})
    jobs.run(job.pk, services.perform_bulk)
    job.refresh_from_db()
    assert job.status == "succeeded" and len(job.items) == 3 and all(i["ok"] for i in job.items)
    assert not any(d.isActive() for d in virt.listAllDomains())


def test_delete_undefines_the_guest_and_removes_the_row(admin_user, synced, virt):
    guest = Guest.objects.get(name="vdtest-gamma")
    job = jobs.create(admin_user, "guest.delete", guest=guest, params={"volume_paths": [], "force": False})
    jobs.run(job.pk, services.perform_delete)
    job.refresh_from_db()
    assert job.status == "succeeded", job.message
    assert guest.uuid not in {d.UUIDString() for d in virt.listAllDomains()}
    assert not Guest.objects.filter(pk=guest.pk).exists()


def test_a_running_guest_is_not_deleted_without_force(admin_user, synced, virt):
    guest = Guest.objects.get(name="vdtest-alpha")
    job = jobs.create(admin_user, "guest.delete", guest=guest, params={"volume_paths": [], "force": False})
    jobs.run(job.pk, services.perform_delete)
    job.refresh_from_db()
    assert job.status == "failed" and "is running" in job.message
    assert virt.lookupByUUIDString(guest.uuid).isActive()


def test_samples_are_recorded_for_active_guests_only_and_rolled_up(synced):
    first = stats.read_host(synced.uri, known=frozenset(), capacity=True)
    second = stats.read_host(synced.uri, known=frozenset(), capacity=True)
    # the test driver reports no counters; give the reads some, as QEMU would (cumulative ns/bytes)
    for read, cpu_ns in ((first, 10**9), (second, 2 * 10**9)):
        read.monotonic = 100.0 if read is first else 110.0
        for dom in read.domains.values():
            dom.cpu_time_ns, dom.memory_used_bytes, dom.net_rx_bytes = cpu_ns, 2**25, cpu_ns // 1000
    now = timezone.now().replace(minute=7, second=0, microsecond=0)
    assert samples.record(synced, first, None, now - timedelta(minutes=6)) == 2  # gamma is shut off
    samples.record(synced, second, first, now - timedelta(minutes=5, seconds=50))
    latest = GuestSample.objects.filter(guest__name="vdtest-alpha").order_by("-time").first()
    assert latest.cpu_percent == 10.0 and latest.net_rx_bps == 100_000.0  # 1 s of CPU over 10 s
    host = HostSample.objects.filter(host=synced).first()
    assert host.guests_running == 2 and host.guests_defined == 3 and host.vcpus_running == 3
    assert host.vcpus_all == 6 and host.memory_total > 0
    done = samples.roll_up(synced, now=now)
    assert done["guest_5m"] == 2 and done["host_5m"] == 1
    assert GuestSample.objects.filter(resolution=Resolution.FIVE_MINUTES, count=2).count() == 2
    assert samples.roll_up(synced, now=now)["guest_5m"] == 0  # idempotent
    samples.roll_up(synced, now=now + timedelta(days=2))
    assert not GuestSample.objects.filter(resolution=Resolution.RAW).exists()  # raw kept 24 h


def test_managed_save_then_restore_brings_the_guest_back(admin_user, synced, virt):
    guest = Guest.objects.get(name="vdtest-beta")
    dom = virt.lookupByUUIDString(guest.uuid)
    assert _run(admin_user, guest, "save").status == "succeeded"
    assert not dom.isActive() and dom.hasManagedSaveImage()
    row = Guest.objects.get(pk=guest.pk)
    assert row.state == "shutoff" and row.state_reason == "saved"
    assert [a.name for a in services.offered_actions(admin_user, row)][:1] == ["restore"]
    assert _run(admin_user, row, "restore").status == "succeeded"
    assert dom.isActive() and not dom.hasManagedSaveImage()


POOL = """<pool type='dir'><name>vdtest-pool</name><capacity>107374182400</capacity>
  <allocation>0</allocation><available>107374182400</available>
  <target><path>/vdtest-pool</path></target>
  <volume type='file'><name>vdtest-a.img</name><capacity>1073741824</capacity><allocation>0</allocation>
    <target><path>/vdtest-pool/vdtest-a.img</path></target></volume>
  <volume type='file'><name>vdtest-keep.img</name><capacity>1073741824</capacity><allocation>0</allocation>
    <target><path>/vdtest-pool/vdtest-keep.img</path></target></volume>
</pool>"""


def test_delete_removes_only_the_chosen_volumes(admin_user, admin_client, db, tmp_path):
    from guest_helpers import domain_xml, write_node

    from guests import inventory
    from hosts.models import Host
    from hosts.virt import connections

    disk = "<disk type='file' device='disk'><source file='/vdtest-pool/vdtest-keep.img'/><target dev='vdb'/></disk>"
    xml = domain_xml("vdtest-vols", extra_devices=disk, disk_path="/vdtest-pool/vdtest-a.img")
    uri = write_node(tmp_path / "node.xml", [xml, POOL])
    host = Host.objects.create(name="vols", uri=uri, status="connected")
    virt = connections.connection(uri)
    try:
        inventory.resync(host, full=True)
        guest = Guest.objects.get(name="vdtest-vols")
        assert {d["source"] for d in guest.summary["disks"]} == {"/vdtest-pool/vdtest-a.img",
                                                                  "/vdtest-pool/vdtest-keep.img"}
        response = admin_client.post(f"/guests/{guest.uuid}/delete/", {
            "confirm": "vdtest-vols", "force": "on", "volume": ["/vdtest-pool/vdtest-a.img"]})
        assert response.status_code == 302
        job = Job.objects.get()
        jobs.run(job.pk, services.perform_delete)
        job.refresh_from_db()
        assert job.status == "succeeded", job.message
        volumes = virt.storagePoolLookupByName("vdtest-pool").listVolumes()
        assert volumes == ["vdtest-keep.img"]
        assert "vdtest-vols" not in [d.name() for d in virt.listAllDomains()]
    finally:
        connections.drop(uri)


def test_a_bulk_shutdown_waits_once_for_all_guests(admin_user, synced, virt):
    guests = list(Guest.objects.filter(host=synced, state="running"))
    job = jobs.create(admin_user, "guest.bulk-shutdown", target_name="2 guests",
                      params={"action": "shutdown", "guests": [g.pk for g in guests]})
    jobs.run(job.pk, services.perform_bulk)
    job.refresh_from_db()
    assert job.status == "succeeded", job.items
    assert sorted(i["name"] for i in job.items) == ["vdtest-alpha", "vdtest-beta"]
    assert not any(d.isActive() for d in virt.listAllDomains())

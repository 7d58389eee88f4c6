"""Moving a guest between two real libvirtds through the web server, the Celery worker and the watcher.

Two extra daemons (tests/second_libvirtd.py) at 127.0.0.4 and 127.0.0.5, each with its own
migration address, port range and host UUID. The guest is the tiny kernel-boot guest
(scripts/build-tiny-guest.sh: TCG, 96 MiB, no disk, no NIC, no display, serial pty): it needs no
shared storage, and its booted kernel dirties enough memory that a 2 MiB/s limit keeps a
migration running long enough to cancel it. Guests are destroyed and the daemons stopped
at teardown.
"""

from __future__ import annotations

import secrets
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from core.models import Job
from guests.models import Guest
from hosts.models import Host
from tests.integration.console_guests import TINY_DIR, ensure_tiny_guest
from tests.second_libvirtd import SecondLibvirtd
from tests.stack import session_cookie, wait_until
from virtdash.xml import Console, Disk, Domain, Serial


def _post(url: str, session: str, data: dict) -> int:
    csrf = secrets.token_hex(16)
    origin = "{0.scheme}://{0.netloc}".format(urllib.parse.urlsplit(url))
    request = urllib.request.Request(url, data=urllib.parse.urlencode(data).encode(), method="POST", headers={
        "Cookie": f"sessionid={session}; csrftoken={csrf}", "X-CSRFToken": csrf, "Origin": origin, "Referer": url,
        "Content-Type": "application/x-www-form-urlencoded"})

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    try:
        with urllib.request.build_opener(NoRedirect).open(request, timeout=15) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.fixture
def two_hosts(services):
    """Daemons A and B; every vdtest- guest on them is destroyed before they stop."""
    import libvirt

    daemons = [SecondLibvirtd("127.0.0.4", migration_ports=(49400, 49409)),
               SecondLibvirtd("127.0.0.5", migration_ports=(49410, 49419))]
    try:
        for daemon in daemons:
            daemon.start()  # seeded with the main daemon's QEMU capability cache: no probe
        yield daemons
    finally:
        for daemon in daemons:
            try:
                conn = libvirt.open(daemon.uri)
            except libvirt.libvirtError:
                continue
            for dom in conn.listAllDomains():
                if dom.name().startswith("vdtest-"):
                    if dom.isActive():
                        dom.destroy()
                    if dom.isPersistent():
                        dom.undefine()
            _remove_pool(conn)
            conn.close()
        for daemon in daemons:
            daemon.stop()


POOL_PATH = "/var/lib/libvirt/images/vdtest-migpool"  # one folder per daemon: /var/lib/libvirt is its own


def tiny_guest_xml(name: str, disk: str = "") -> str:
    dom = Domain.new(name, 96, 1, "qemu")
    if disk:
        dom.add_device(Disk.new("vda", path=disk))
    dom.kernel, dom.initrd = str(TINY_DIR / "vmlinuz"), str(TINY_DIR / "initrd.gz")
    dom.cmdline = "console=ttyS0"
    dom.boot_devs = []
    dom.add_device(Serial.new("pty"))
    dom.add_device(Console.new("pty", "serial"))
    return dom.to_string()


def _make_pool(conn) -> None:
    pool = conn.storagePoolDefineXML("<pool type='dir'><name>vdtest-migpool</name>"
                                     f"<target><path>{POOL_PATH}</path></target></pool>")
    pool.build(0)
    pool.create()


def _remove_pool(conn) -> None:
    import libvirt

    try:
        pool = conn.storagePoolLookupByName("vdtest-migpool")
    except libvirt.libvirtError:
        return
    for volume in pool.listAllVolumes():
        volume.delete(0)
    if pool.isActive():
        pool.destroy()
    pool.delete(0)
    pool.undefine()


def _migrate(stack, session: str, guest: Guest, dest: Host, *, bandwidth: int = 0, cancel_when: str = "",
             copy_storage: bool = False) -> tuple[Job, list[int]]:
    """POST the form, then follow the Job row (cancelling it once its message starts with
    `cancel_when`); returns the finished job and the progress values seen."""
    url = f"{stack.url}/guests/{guest.uuid}/migrate/"
    before = Job.objects.filter(kind="guest.migrate").count()
    form = {"destination": dest.pk, "bandwidth": bandwidth, **({"copy_storage": "on"} if copy_storage else {})}
    assert _post(url, session, form) == 302
    seen: list[int] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = Job.objects.filter(kind="guest.migrate", guest_uuid=guest.uuid).order_by("-pk").first()
        assert job is not None and Job.objects.filter(kind="guest.migrate").count() == before + 1
        if job.progress not in seen:
            seen.append(job.progress)
        if job.is_finished:
            return job, seen
        if cancel_when and job.message.startswith(cancel_when):
            assert _post(f"{url}{job.pk}/cancel/", session, {}) == 302
            cancel_when = ""
        time.sleep(0.05)
    raise AssertionError("the migration job did not finish within 60 s")


def _on(conn, uuid: str):
    import libvirt

    try:
        return conn.lookupByUUIDString(uuid)
    except libvirt.libvirtError:
        return None


def test_guests_move_live_offline_and_with_a_disk_copy_and_a_cancelled_move_leaves_them_in_place(
        stack, two_hosts, admin_user, guest_name):
    import libvirt

    ensure_tiny_guest()
    a, b = two_hosts
    conn_a, conn_b = libvirt.open(a.uri), libvirt.open(b.uri)
    dom = conn_a.defineXML(tiny_guest_xml(guest_name))
    dom.create()
    uuid = dom.UUIDString()
    host_a = Host.objects.create(name="mig-a", uri=a.uri)
    host_b = Host.objects.create(name="mig-b", uri=b.uri)
    row = wait_until(lambda: Guest.objects.filter(uuid=uuid, host=host_a, state="running").first(), 30,
                     message="guest listed on A")
    wait_until(lambda: Host.objects.filter(pk=host_b.pk, status="connected").exists(), 30, message="B connected")
    session = session_cookie(admin_user)

    started = time.monotonic()
    job, seen = _migrate(stack, session, row, host_b, bandwidth=2, cancel_when="Copying memory")
    print(f"cancelled migration job: {time.monotonic() - started:.1f} s, progress seen {seen}; {job.message}")
    assert job.status == "failed"
    assert job.message == "Migration cancelled by the operator; the guest stays on the source host."
    assert _on(conn_a, uuid).isActive() and _on(conn_b, uuid) is None
    assert list(Guest.objects.filter(uuid=uuid).values_list("pk", "host_id")) == [(row.pk, host_a.pk)]

    started = time.monotonic()
    job, seen = _migrate(stack, session, row, host_b)
    print(f"live migration job: {time.monotonic() - started:.1f} s, progress seen {seen}; {job.message}")
    assert job.status == "succeeded", job.message
    assert job.message.startswith(f"{guest_name} now runs on mig-b (live migration in")
    assert any(0 < p < 100 for p in seen) and job.progress == 100
    moved = _on(conn_b, uuid)
    assert moved is not None and moved.isActive() and moved.isPersistent()
    assert _on(conn_a, uuid) is None  # gone from A, definition included
    rows = wait_until(lambda: (r := list(Guest.objects.filter(uuid=uuid))) and r[0].host_id == host_b.pk and r, 10,
                      message="inventory row on B")
    assert len(rows) == 1 and rows[0].state == "running"
    assert rows[0].pk == row.pk  # moved, not deleted and recreated: events, samples and grants stay
    time.sleep(1)  # a few watcher rounds on both hosts: still one row, still on B
    assert list(Guest.objects.filter(uuid=uuid).values_list("host_id", flat=True)) == [host_b.pk]

    moved.destroy()
    row = wait_until(lambda: Guest.objects.filter(uuid=uuid, host=host_b, state="shutoff").first(), 15,
                     message="shut-off state seen")
    started = time.monotonic()
    job, _seen = _migrate(stack, session, row, host_a)
    print(f"offline migration job: {time.monotonic() - started:.1f} s; {job.message}")
    assert job.status == "succeeded", job.message
    back = _on(conn_a, uuid)
    assert back is not None and not back.isActive() and back.isPersistent()
    assert _on(conn_b, uuid) is None
    wait_until(lambda: list(Guest.objects.filter(uuid=uuid).values_list("host_id", flat=True)) == [host_a.pk], 10,
               message="inventory row back on A")
    _a_guest_with_a_local_disk_moves_live_with_a_disk_copy(stack, session, conn_a, conn_b, host_a, host_b,
                                                           guest_name + "-d")
    conn_a.close()
    conn_b.close()


def _a_guest_with_a_local_disk_moves_live_with_a_disk_copy(stack, session, conn_a, conn_b, host_a, host_b, name):
    for conn in (conn_a, conn_b):
        _make_pool(conn)
    volume = conn_a.storagePoolLookupByName("vdtest-migpool").createXML(
        "<volume><name>vdtest-disk.qcow2</name><capacity unit='MiB'>16</capacity>"
        "<target><format type='qcow2'/></target></volume>")
    dom = conn_a.defineXML(tiny_guest_xml(name, disk=volume.path()))
    dom.create()
    uuid = dom.UUIDString()
    row = wait_until(lambda: Guest.objects.filter(uuid=uuid, host=host_a, state="running").first(), 15,
                     message="guest with a disk listed on A")
    job, _seen = _migrate(stack, session, row, host_b)
    assert job.status == "failed" and "Live migration needs shared storage" in job.message, job.message
    assert f"vda: {volume.path()}" in job.message and _on(conn_a, uuid).isActive()

    started = time.monotonic()
    job, seen = _migrate(stack, session, row, host_b, copy_storage=True)
    print(f"live migration with disk copy: {time.monotonic() - started:.1f} s, progress {seen}; {job.message}")
    assert job.status == "succeeded", job.message
    assert "Its disks (vda) were copied; the originals on mig-a remain" in job.message
    assert _on(conn_b, uuid).isActive() and _on(conn_a, uuid) is None
    copied = conn_b.storageVolLookupByPath(volume.path())  # same path, in B's own pool folder
    assert copied.info()[1] == 16 * 2**20
    wait_until(lambda: list(Guest.objects.filter(uuid=uuid).values_list("host_id", flat=True)) == [host_b.pk], 10,
               message="inventory row of the disk guest on B")

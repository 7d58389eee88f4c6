"""Guests against the real libvirtd, Celery worker and watcher (TCG guests, 64 MiB, no NIC).

The guest is diskless: SeaBIOS finds nothing to boot and idles, and it ignores ACPI — exactly
what the shutdown-timeout path needs. Every domain is named vdtest-… and removed at teardown.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from core.models import Job
from guests.models import Guest
from hosts.models import Host
from tests.second_libvirtd import SecondLibvirtd
from tests.stack import session_cookie, wait_until
from virtdash.xml import Domain

URI = "qemu:///system"


def diskless_xml(name: str) -> str:
    return Domain.new(name, 64, 1, "qemu").to_string()


def post_form(url: str, session: str, data: dict | None = None) -> int:
    csrf = secrets.token_hex(16)
    origin = "{0.scheme}://{0.netloc}".format(urllib.parse.urlsplit(url))
    request = urllib.request.Request(url, data=urllib.parse.urlencode(data or {}, doseq=True).encode(), headers={
        "Cookie": f"sessionid={session}; csrftoken={csrf}", "X-CSRFToken": csrf, "Origin": origin,
        "Referer": url, "Content-Type": "application/x-www-form-urlencoded"}, method="POST")

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    try:
        with urllib.request.build_opener(NoRedirect).open(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.fixture
def quick_settings(monkeypatch):
    """Short timeouts for the live processes (they inherit this environment)."""
    monkeypatch.setenv("VIRTDASH_SHUTDOWN_TIMEOUT", "3")
    monkeypatch.setenv("VIRTDASH_SAMPLE_SECONDS", "2")
    monkeypatch.setenv("VIRTDASH_STALE_JOB_SECONDS", "10")


def _row(name: str) -> Guest | None:
    return Guest.objects.filter(name=name).first()


def _state(name: str) -> str | None:
    row = _row(name)
    return row.state if row else None


def _job(kind: str, name: str) -> Job | None:
    return Job.objects.filter(kind=kind, target_name=name).order_by("-pk").first()


def _act(stack, session, guest: Guest, action: str, timeout: float = 20) -> Job:
    assert post_form(f"{stack.url}/guests/{guest.uuid}/action/{action}/", session) == 302
    return wait_until(lambda: (j := _job(f"guest.{action}", guest.name)) and j.is_finished and j, timeout,
                      message=f"job {action} finished")


def test_inventory_follows_virsh_and_actions_run_through_the_worker(
        quick_settings, stack, admin_user, libvirt_conn, guest_name, cleanup_guests):
    cleanup_guests.append(guest_name)
    dom = libvirt_conn.defineXML(diskless_xml(guest_name))
    Host.objects.create(name="local", uri=URI)
    wait_until(lambda: _state(guest_name) == "shutoff", 20, message="defined guest listed")

    started = time.monotonic()
    dom.create()  # outside VirtDash, like virsh start
    # figure printed (well under 1 s when idle); the budget is for a busy 2-core CI machine
    wait_until(lambda: _state(guest_name) == "running", 6, interval=0.05,
               message="row running within 6 s of virsh start")
    print(f"virsh start → row running in {time.monotonic() - started:.2f} s")

    session = session_cookie(admin_user)
    guest = _row(guest_name)
    assert _act(stack, session, guest, "suspend").status == "succeeded"
    assert dom.state()[0] == 3  # VIR_DOMAIN_PAUSED, asserted in libvirt
    assert _act(stack, session, guest, "resume").status == "succeeded"
    assert dom.state()[0] == 1
    assert _act(stack, session, guest, "start").status == "succeeded"  # converges: already running

    job = _act(stack, session, guest, "shutdown")  # no OS: ACPI is ignored → timeout
    assert job.status == "failed" and "did not shut down" in job.message
    assert dom.isActive()
    assert _act(stack, session, guest, "destroy").status == "succeeded"
    assert not dom.isActive()
    wait_until(lambda: _state(guest_name) == "shutoff", 6, message="row shut off")
    wait_until(lambda: _row(guest_name).samples.exists(), 1, message="samples recorded while it ran")

    assert post_form(f"{stack.url}/guests/{guest.uuid}/delete/", session, {"confirm": guest_name}) == 302
    wait_until(lambda: (j := _job("guest.delete", guest_name)) and j.status == "succeeded", 20, message="deleted")
    assert guest_name not in [d.name() for d in libvirt_conn.listAllDomains()]
    wait_until(lambda: _row(guest_name) is None, 5, message="row removed")


def test_a_job_whose_worker_was_killed_ends_failed_not_stuck(
        quick_settings, monkeypatch, stack, admin_user, libvirt_conn, guest_name, cleanup_guests):
    cleanup_guests.append(guest_name)
    dom = libvirt_conn.defineXML(diskless_xml(guest_name))
    dom.create()
    Host.objects.create(name="local", uri=URI)
    wait_until(lambda: _state(guest_name) == "running", 20, message="guest listed")
    # a long shutdown wait so the job is surely running when the worker dies
    stack.stop("worker")
    monkeypatch.setenv("VIRTDASH_SHUTDOWN_TIMEOUT", "60")
    stack.start_worker()
    session = session_cookie(admin_user)
    guest = _row(guest_name)
    assert post_form(f"{stack.url}/guests/{guest.uuid}/action/shutdown/", session) == 302
    wait_until(lambda: (j := _job("guest.shutdown", guest_name)) and j.status == "running", 20, message="running")
    worker = stack.processes["worker"]
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(5)
    killed = time.monotonic()
    monkeypatch.setenv("VIRTDASH_SHUTDOWN_TIMEOUT", "3")
    stack.start_worker()  # the restarted worker; the watcher reaps the job whose heartbeat stopped
    job = wait_until(lambda: (j := _job("guest.shutdown", guest_name)) and j.is_finished and j, 45,
                     message="the killed job finished")
    print(f"job ended {job.status} {time.monotonic() - killed:.1f} s after kill -9: {job.message}")
    assert job.status in ("failed", "succeeded")
    # the guest is free again: a new action is accepted and runs
    assert _act(stack, session, guest, "destroy").status == "succeeded"
    assert not dom.isActive()


class RestartableLibvirtd(SecondLibvirtd):
    """The second daemon, stopped and started again over the same state folders."""

    def restart(self, timeout: float = 60) -> None:
        self.proc.terminate()
        self.proc.wait(15)
        from tests.second_libvirtd import DIRS

        mounts = " && ".join(f"mount --bind {self.root / name} {target}" for name, target in DIRS.items())
        script = (f"{mounts} && (virtlogd -d -p {self.root / 'run' / 'virtlogd2.pid'} || true)"
                  f" && exec libvirtd -l -p {self.root / 'run' / 'libvirtd.pid'}")
        self.proc = subprocess.Popen(["unshare", "-m", "--propagation", "private", "bash", "-c", script],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self.wait_listening(timeout)  # fails at once if it exits (an old daemon still on the port)


@pytest.fixture
def restartable_libvirtd(services):
    daemon = RestartableLibvirtd("127.0.0.6").start()
    yield daemon
    for pidfile in ("virtlogd2.pid",):
        path = daemon.root / "run" / pidfile
        if path.exists():
            try:
                os.kill(int(path.read_text().strip()), signal.SIGTERM)
            except (ProcessLookupError, ValueError):
                pass
    daemon.stop()


def test_after_a_libvirtd_restart_the_inventory_is_correct_again(quick_settings, stack, restartable_libvirtd,
                                                                 guest_name):
    import libvirt

    uri = restartable_libvirtd.uri
    conn = libvirt.open(uri)
    conn.defineXML(diskless_xml(guest_name))
    conn.close()
    host = Host.objects.create(name="second", uri=uri)
    wait_until(lambda: _state(guest_name) == "shutoff", 30, message="guest of the second host listed")

    restartable_libvirtd.restart()
    restarted = time.monotonic()
    conn = libvirt.open(uri)  # changes VirtDash could only learn from a resync
    conn.lookupByName(guest_name).undefine()
    conn.defineXML(diskless_xml(guest_name + "-b"))
    conn.close()
    wait_until(lambda: _row(guest_name) is None and _state(guest_name + "-b") == "shutoff", 30,
               message="inventory correct after the restart")
    print(f"inventory correct {time.monotonic() - restarted:.1f} s after the libvirtd restart")
    assert Host.objects.get(pk=host.pk).status == "connected"

"""Host zones with real Celery workers and watchers (Redis broker, a test-driver host shared through
libvirtd): a zone's job runs on that zone's worker only, waits while it has none, and a watcher
without --zone leaves a zone to that zone's watcher."""

from __future__ import annotations

import subprocess
import time
import uuid

import pytest
import redis
from django.conf import settings

from core.models import Job
from guests import inventory, services
from guests.models import Guest
from hosts.models import Host
from hosts.watch_zones import ADVERT_KEY
from tests.conftest import TEST_PREFIX
from tests.stack import ARTIFACTS, VENV_BIN, Stack, free_port, wait_for_port, wait_until

URI = "test+unix:///default"  # one state for this process and the workers while a connection is open
RUNNING, PAUSED = 1, 3


@pytest.fixture
def shared_test_guest(services):
    """A running vdtest- guest on the daemon's test driver; undefined afterwards."""
    import libvirt

    conn = libvirt.open(URI)
    name = f"{TEST_PREFIX}zone-{uuid.uuid4().hex[:6]}"
    dom = conn.defineXML(f"<domain type='test'><name>{name}</name><uuid>{uuid.uuid4()}</uuid>"
                         "<memory unit='MiB'>64</memory><os><type arch='x86_64'>hvm</type></os></domain>")
    dom.create()
    yield dom
    if dom.isActive():
        dom.destroy()
    dom.undefine()
    conn.close()


@pytest.fixture
def zone_stack(services, transactional_db):
    running = Stack(port=free_port())
    yield running
    running.stop_all()


class Log:
    """A process's log in artifacts/logs from the moment this object was made."""

    def __init__(self, name: str):
        self.path = ARTIFACTS / "logs" / f"{name}.log"
        self.offset = self.path.stat().st_size if self.path.exists() else 0

    def text(self) -> str:
        if not self.path.exists():
            return ""
        with open(self.path, "rb") as log:
            log.seek(self.offset)
            return log.read().decode(errors="replace")

    def tasks_succeeded(self, task: str = "guests.action") -> int:
        return sum(1 for line in self.text().splitlines() if f"Task {task}[" in line and " succeeded " in line)


def _finished(job_id: int) -> Job | None:
    job = Job.objects.get(pk=job_id)
    return job if job.is_finished else None


def test_a_zone_job_waits_for_its_zones_worker_and_a_default_zone_job_runs_on_the_default_one(
        zone_stack, shared_test_guest, admin_user):
    dom = shared_test_guest
    host = Host.objects.create(name=f"{TEST_PREFIX}zone-z1", uri=URI, zone="z1", status="connected")
    inventory.resync(host, full=True)
    guest = Guest.objects.get(uuid=dom.UUIDString())
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    default_log, z1_log = Log("worker-zone-default"), Log("worker-zone-z1")

    zone_stack.start_worker(name="worker-zone-default")  # the Procfile's worker: Celery's default queue only
    job = services.request_action(admin_user, guest, "suspend")
    wait_until(lambda: broker.llen("zone.z1") == 1, 5, message="the job's message in queue zone.z1")
    time.sleep(2)  # the default worker is up and idle: it must leave the job alone
    assert Job.objects.get(pk=job.pk).status == "queued"
    assert broker.llen("zone.z1") == 1 and dom.state()[0] == RUNNING

    started = time.monotonic()
    zone_stack.start_worker(queues=["zone.z1"], name="worker-zone-z1")
    job = wait_until(lambda: _finished(job.pk), 20, message="the z1 job finished")
    print(f"z1 job done {time.monotonic() - started:.1f} s after its worker was started")
    assert job.status == "succeeded", job.message
    assert dom.state()[0] == PAUSED  # done in libvirt
    # Celery logs "succeeded" after the task returns, a moment after the job's row says so
    wait_until(lambda: z1_log.tasks_succeeded() == 1, 10, message="the z1 worker logging the task")
    assert (z1_log.tasks_succeeded(), default_log.tasks_succeeded()) == (1, 0)

    host.zone = ""  # the default zone again: the next job is the default worker's
    host.save()
    job = services.request_action(admin_user, Guest.objects.get(pk=guest.pk), "resume")
    job = wait_until(lambda: _finished(job.pk), 20, message="the default-zone job finished")
    assert job.status == "succeeded", job.message
    assert dom.state()[0] == RUNNING
    wait_until(lambda: default_log.tasks_succeeded() == 1, 10, message="the default worker logging the task")
    assert (z1_log.tasks_succeeded(), default_log.tasks_succeeded()) == (1, 1)
    broker.close()


def _watch(stack: Stack, name: str, *zones: str, **env: str) -> None:
    argv = [str(VENV_BIN / "python"), "manage.py", "watch", "--sync-seconds", "0.5"]
    for zone in zones:
        argv += ["--zone", zone]
    stack.start(name, argv, ready="Watcher running.", LOG_LEVEL="INFO", **env)


def test_a_watcher_without_zone_leaves_a_zone_to_its_own_watcher_and_takes_it_back_when_it_stops(
        zone_stack):
    Host.objects.create(name=f"{TEST_PREFIX}plain", uri="test:///default")
    Host.objects.create(name=f"{TEST_PREFIX}zone-z1", uri=URI, zone="z1")
    z1_log, all_log = Log("watcher-zone-z1"), Log("watcher-zone-all")
    watching_z1 = f"watching {URI}"

    _watch(zone_stack, "watcher-zone-z1", "z1")
    wait_until(lambda: watching_z1 in z1_log.text(), 15, message="the z1 watcher watching its host")
    assert "watching test:///default" not in z1_log.text()

    _watch(zone_stack, "watcher-zone-all")  # scripts/up's and the Procfile's watcher
    wait_until(lambda: "watching test:///default" in all_log.text(), 15, message="the default-zone host watched")
    time.sleep(1.5)  # three rounds
    assert watching_z1 not in all_log.text()  # z1 has its own watcher

    zone_stack.stop("watcher-zone-z1")  # a clean stop hands z1 back at once
    stopped = time.monotonic()
    wait_until(lambda: watching_z1 in all_log.text(), 10, message="z1 taken back by the watcher without --zone")
    print(f"z1 taken back {time.monotonic() - stopped:.1f} s after its watcher stopped")


def _redis_server(port: int) -> subprocess.Popen:
    server = subprocess.Popen(["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                               "--appendonly", "no"], stdout=subprocess.DEVNULL)
    wait_for_port(port, 10)
    return server


def test_while_redis_is_down_or_restarts_empty_a_watcher_without_zone_still_leaves_a_zone_to_its_watcher(
        zone_stack):
    """Both watchers use a private Redis that stops, then comes back without data (no persistence, as
    scripts/up runs it): the central watcher must not connect to z1's host meanwhile."""
    port = free_port()
    server = _redis_server(port)
    env = {"REDIS_URL": f"redis://127.0.0.1:{port}/0"}
    try:
        Host.objects.create(name=f"{TEST_PREFIX}plain", uri="test:///default")
        Host.objects.create(name=f"{TEST_PREFIX}zone-z1", uri=URI, zone="z1")
        z1_log, all_log = Log("watcher-zone-z1-redis"), Log("watcher-zone-all-redis")
        watching_z1 = f"watching {URI}"
        _watch(zone_stack, "watcher-zone-z1-redis", "z1", **env)
        wait_until(lambda: watching_z1 in z1_log.text(), 15, message="the z1 watcher watching its host")
        _watch(zone_stack, "watcher-zone-all-redis", **env)
        wait_until(lambda: "watching test:///default" in all_log.text(), 15, message="the default-zone host watched")
        time.sleep(1)
        assert watching_z1 not in all_log.text()

        server.terminate()
        server.wait(5)
        wait_until(lambda: "Redis unavailable for the watcher's zones" in all_log.text(), 5,
                   message="the central watcher noticing Redis is down")
        time.sleep(4)  # 8 rounds without Redis, within 3 × the adverts' 10 s time to live
        text = all_log.text()
        assert watching_z1 not in text
        assert text.count("Redis unavailable for the watcher's zones") == 1
        assert "leaving zone(s) z1 to their watchers as last read" in text
        assert text.count("could not claim watcher duty") == 1  # once, not every round

        server = _redis_server(port)  # back, empty: z1's advert is gone until its watcher's next round
        wait_until(lambda: "Redis reachable again for the watcher's zones" in all_log.text(), 10,
                   message="the central watcher reading Redis again")
        time.sleep(2)
        assert watching_z1 not in all_log.text()
        adverts = redis.Redis.from_url(env["REDIS_URL"])
        assert [m.decode().split()[0] for m in adverts.zrange(ADVERT_KEY, 0, -1)] == ["z1"]  # re-advertised
        adverts.close()
    finally:
        zone_stack.stop_all()
        server.terminate()
        server.wait(5)

"""The watcher's back-off and its nudge (hosts/watcher.py): a host another process reached ends the
back-off at once, but only for a Connected written after this watcher's own last failure, and once per
such write — a watcher that cannot reach a host another watcher reaches (a zone's own watcher) must not
retry, and rewrite Unreachable, every round. Real HostWatcher threads against a port that refuses
connections at once; each test stops and joins its watcher (no live updates leak into later tests)."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from hosts import services
from hosts.choices import HostStatus
from hosts.models import Host
from hosts.virt.errors import HostUnreachable
from hosts.watcher import HostWatcher, Supervisor
from tests.stack import wait_until

REFUSING = "qemu+tcp://127.0.0.1:1/system"  # nothing listens on port 1: refused at once


@pytest.fixture
def supervisor(transactional_db):
    running = Supervisor()
    yield running
    running.stop()
    for watcher in running.watchers.values():
        watcher.join(10)


@pytest.fixture
def failing_host(transactional_db):
    return Host.objects.create(name="far", uri=REFUSING)


def _in_long_backoff(supervisor: Supervisor, host: Host) -> HostWatcher:
    """The host's watcher, failed once after five earlier failures: waiting 30 s before its next try."""
    watcher = HostWatcher(host)
    watcher.failures = 5
    supervisor.watchers[host.pk] = watcher
    watcher.start()
    wait_until(lambda: watcher.failures == 6, 10, message="the watcher's first failure")
    return watcher


def _written_connected(host: Host, since) -> None:
    """What another process's successful check writes (a connection test, a zone's own watcher)."""
    Host.objects.filter(pk=host.pk).update(status=HostStatus.CONNECTED, status_since=since, last_error="")


def _rounds(supervisor: Supervisor, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        supervisor.sync()
        time.sleep(0.1)


def test_a_connected_written_after_the_watchers_failure_ends_its_back_off_once(supervisor, failing_host):
    watcher = _in_long_backoff(supervisor, failing_host)
    services.record_status(Host.objects.get(pk=failing_host.pk), ok=True)  # e.g. an admin's connection test
    supervisor.sync()
    wait_until(lambda: watcher.failures == 7, 5, message="the nudged retry")  # retried at once, failed again

    since = timezone.now() + timedelta(seconds=30)  # another watcher keeps the row Connected, rewritten
    _written_connected(failing_host, since)
    _rounds(supervisor, 0.5)
    assert watcher.failures == 8  # one more retry for that new write ...
    for _ in range(3):  # ... and none for the same write, seen round after round (was: every round)
        _written_connected(failing_host, since)
        _rounds(supervisor, 0.5)
    assert watcher.failures == 8
    assert Host.objects.get(pk=failing_host.pk).status == HostStatus.CONNECTED  # nobody rewrote it since


def test_a_connected_older_than_the_watchers_failure_does_not_end_its_back_off(supervisor, failing_host):
    watcher = _in_long_backoff(supervisor, failing_host)
    _written_connected(failing_host, watcher.failed_at - timedelta(seconds=1))  # another watcher's, from before
    _rounds(supervisor, 1.5)
    assert watcher.failures == 6
    assert Host.objects.get(pk=failing_host.pk).status == HostStatus.CONNECTED  # not flipped to Unreachable


def test_a_nudge_from_before_a_connect_attempt_does_not_also_skip_the_next_back_off(failing_host):
    watcher = HostWatcher(failing_host)
    watcher.retry_now.set()  # a nudge that ended the last back-off, or came just before this attempt
    with pytest.raises(HostUnreachable):
        watcher._connect()
    assert not watcher.retry_now.is_set()


def test_a_stopped_watcher_ends_at_once_even_in_a_long_back_off(supervisor, failing_host):
    watcher = _in_long_backoff(supervisor, failing_host)
    started = time.monotonic()
    watcher.stop()
    watcher.join(5)
    assert not watcher.is_alive() and time.monotonic() - started < 2

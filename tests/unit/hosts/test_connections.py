"""The libvirt access layer on the test driver: calls, error translation, timeouts, back-off."""

import time

import pytest

from hosts.virt import connections, facts
from hosts.virt.errors import GuestNotFound, HostUnreachable


def test_one_connection_per_process_per_host():
    first = connections.connection("test:///default")
    assert connections.connection("test:///default") is first


def test_a_missing_guest_becomes_guest_not_found():
    with pytest.raises(GuestNotFound, match="not found"):
        connections.call("test:///default", lambda conn: conn.lookupByName("no-such-guest"), what="guest x")


def test_a_call_that_hangs_times_out_and_the_host_counts_as_unreachable():
    started = time.monotonic()
    with pytest.raises(HostUnreachable, match="not answering"):
        connections.call("test:///default", lambda conn: time.sleep(5), timeout=0.3)
    assert time.monotonic() - started < 2
    # the next call opens a fresh connection after the short back-off
    time.sleep(1.1)
    assert connections.call("test:///default", lambda conn: conn.getType()) == "TEST"


def test_a_refused_host_fails_fast_and_then_backs_off():
    uri = "qemu+tcp://127.0.0.1:1/system"
    with pytest.raises(HostUnreachable, match="127.0.0.1"):
        connections.connection(uri, force=True)
    started = time.monotonic()
    with pytest.raises(HostUnreachable):
        connections.connection(uri)  # within the back-off window: no new attempt
    assert time.monotonic() - started < 0.1


def test_facts_of_the_test_driver():
    found = facts.read_facts("test:///default")
    assert found["cpus"] == 16 and found["guests_total"] == 1 and found["hypervisor"] == "TEST"
    assert found["pools"][0]["name"] == "default-pool"

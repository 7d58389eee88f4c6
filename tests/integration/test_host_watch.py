"""The watcher against real libvirt daemons: facts, unreachable hosts, a hung daemon and recovery."""

import subprocess
import time

import pytest

from hosts.models import Host
from tests.second_libvirtd import SecondLibvirtd
from tests.stack import http_get, session_cookie, wait_until


def _status(host_id: int) -> str:
    return Host.objects.get(pk=host_id).status


def _nodeinfo() -> dict[str, str]:
    out = subprocess.run(["virsh", "-c", "qemu:///system", "nodeinfo"], capture_output=True, text=True, check=True)
    return {k.strip(): v.strip() for k, v in (line.split(":", 1) for line in out.stdout.splitlines() if ":" in line)}


@pytest.fixture
def short_call_timeout(monkeypatch):
    """Libvirt calls of the stack's processes give up after 5 s (10 s by default): a watcher poll blocked
    on the hung daemon then ends within the test's 15 s on a busy machine too (request it before `stack`)."""
    monkeypatch.setenv("VIRTDASH_CALL_TIMEOUT", "5")


@pytest.fixture
def second_libvirtd(services):
    daemon = SecondLibvirtd("127.0.0.2").start()
    yield daemon
    daemon.stop()


def test_local_host_facts_match_virsh_nodeinfo(stack, admin_user):
    host = Host.objects.create(name="local", uri="qemu:///system")
    wait_until(lambda: _status(host.pk) == "connected", 20, message="local host connected")
    facts = Host.objects.get(pk=host.pk).facts
    node = _nodeinfo()
    assert facts["cpus"] == int(node["CPU(s)"])
    assert facts["memory_total"] // 1024 // 1024 == int(node["Memory size"].split()[0]) // 1024
    status, page = http_get(f"{stack.url}/hosts/{host.pk}/", session_cookie(admin_user))
    assert status == 200 and f"{facts['cpus']} = " in page


def test_an_unreachable_host_is_reported_within_5_seconds_and_lists_stay_fast(stack, admin_user):
    started = time.monotonic()
    host = Host.objects.create(name="nowhere", uri="qemu+tcp://127.0.0.1:1/system")
    wait_until(lambda: _status(host.pk) == "unreachable", 5, interval=0.05, message="unreachable")
    took = time.monotonic() - started
    print(f"unreachable host reported after {took:.2f} s (the watcher was ready before the host was added)")
    assert took < 5
    assert "refused" in Host.objects.get(pk=host.pk).last_error.lower()
    cookie = session_cookie(admin_user)
    status, page = http_get(f"{stack.url}/hosts/", cookie, timeout=3)  # answers at once; figures in bench/
    assert status == 200 and "Unreachable" in page


def test_a_hung_libvirtd_turns_unreachable_within_15_seconds_and_recovers(short_call_timeout, stack, admin_user,
                                                                          second_libvirtd):
    host = Host.objects.create(name="second", uri=second_libvirtd.uri)
    wait_until(lambda: _status(host.pk) == "connected", 30, message="second host connected")
    cookie = session_cookie(admin_user)

    second_libvirtd.pause()
    stopped_at = time.monotonic()
    try:
        while _status(host.pk) != "unreachable":
            assert time.monotonic() - stopped_at < 15, "host not marked unreachable within 15 s"
            status, _ = http_get(f"{stack.url}/hosts/{host.pk}/", cookie, timeout=3)
            assert status == 200, "pages must keep answering"
            time.sleep(0.5)
        took = time.monotonic() - stopped_at
        print(f"marked unreachable {took:.1f} s after SIGSTOP")
    finally:
        second_libvirtd.resume()
    resumed = time.monotonic()
    wait_until(lambda: _status(host.pk) == "connected", 40, message="recovery after SIGCONT")
    print(f"connected again {time.monotonic() - resumed:.1f} s after SIGCONT")
    status, page = http_get(f"{stack.url}/hosts/", cookie)
    assert status == 200 and "Connected" in page

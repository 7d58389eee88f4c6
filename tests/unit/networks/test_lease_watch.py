"""Live DHCP leases (hosts/leases.py): what counts as a change, which networks are polled (only
those with an open page), the hint an open page receives, and a failing poll that backs off
without breaking the watcher. On the test driver, which reports no leases; the change detection
is checked on Lease values shaped like the ones libvirt returns (a real guest's lease:
tests/e2e/test_networks_netns_journey.py)."""

from __future__ import annotations

import time

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from hosts import leases
from hosts.models import Host
from hosts.virt import connections
from hosts.virt.networks import Lease
from virtdash.asgi import application

NOW = int(time.time())


def lease(mac="52:54:00:d1:0c:01", ip="10.251.7.100", hostname="virtdash-tiny", expires=NOW + 3600, **extra):
    return Lease(mac=mac, ip=ip, prefix=24, hostname=hostname, client_id="01:" + mac, expires=expires, **extra)


@pytest.fixture
def fresh_hooks(test_host, settings):
    settings.VIRTDASH_LEASE_POLL_SECONDS = 1
    leases.forget_viewers(test_host.pk)  # host ids repeat across tests; the Redis set must not
    yield leases.LeaseHooks()
    leases.forget_viewers(test_host.pk)


def test_the_same_leases_in_another_order_are_no_change():
    one, two = lease(), lease(mac="52:54:00:d1:0c:02", ip="10.251.7.101", hostname="other")
    assert leases.fingerprint([one, two]) == leases.fingerprint([two, one])


@pytest.mark.parametrize("after", [
    [lease(), lease(mac="52:54:00:d1:0c:02", ip="10.251.7.101")],  # a new lease
    [],  # the lease is gone (released, or expired: libvirt stops listing it)
    [lease(ip="10.251.7.102")],  # another address
    [lease(hostname="renamed")],
    [lease(expires=NOW + 3600 + 1800)],  # renewed: the page's expiry moves
    [lease(type="ipv6", ip="fd00::64")],
])
def test_a_new_gone_readdressed_renamed_or_renewed_lease_is_a_change(after):
    assert leases.fingerprint([lease()]) != leases.fingerprint(after)


def test_time_passing_is_no_change():
    """libvirt reports the absolute expiry: the same lease read a poll later is equal."""
    first = leases.fingerprint([lease(expires=NOW + 3600)])
    assert leases.fingerprint([lease(expires=NOW + 3600)]) == first


@pytest.mark.parametrize("persona, marks", [("viewer_client", True), ("outsider_client", False)])
def test_opening_the_network_page_or_its_fragment_marks_it_for_polling(request, fresh_hooks, test_host, persona,
                                                                         marks):
    client = request.getfixturevalue(persona)
    for url in ("/hosts/{}/networks/default/", "/hosts/{}/networks/default/?partial=state"):
        leases.forget_viewers(test_host.pk)
        client.get(url.format(test_host.pk))
        assert leases.viewed_networks(test_host.pk) == (["default"] if marks else [])


def test_a_page_mark_runs_out(fresh_hooks, test_host, monkeypatch):
    leases.note_viewed(test_host.pk, "default")
    assert leases.viewed_networks(test_host.pk) == ["default"]
    monkeypatch.setattr(leases, "VIEW_SECONDS", -1)  # a mark made "long ago"
    leases.note_viewed(test_host.pk, "default")
    assert leases.viewed_networks(test_host.pk) == []


def test_nothing_is_read_while_no_page_is_open(fresh_hooks, test_host):
    state = leases._HostLeases()
    assert fresh_hooks.poll(test_host, state) == [] and state.seen == {}


def test_with_the_setting_at_zero_nothing_is_marked_or_polled(fresh_hooks, test_host, settings, viewer_client):
    settings.VIRTDASH_LEASE_POLL_SECONDS = 0
    viewer_client.get(f"/hosts/{test_host.pk}/networks/default/")
    assert leases.viewed_networks(test_host.pk) == []
    fresh_hooks.on_tick(test_host)
    assert fresh_hooks.hosts[test_host.pk].seen == {}


def test_a_viewed_network_is_compared_poll_to_poll_and_forgotten_when_closed(fresh_hooks, test_host):
    leases.note_viewed(test_host.pk, "default")
    state = leases._HostLeases()
    assert fresh_hooks.poll(test_host, state) == ["default"]  # first look: the page may predate the last poll
    assert fresh_hooks.poll(test_host, state) == []  # unchanged: no hint
    assert state.seen == {"default": ()}
    leases.forget_viewers(test_host.pk)
    assert fresh_hooks.poll(test_host, state) == [] and state.seen == {}


def test_a_deleted_network_counts_as_no_leases(fresh_hooks, test_host):
    leases.note_viewed(test_host.pk, "vdtest-gone")
    state = leases._HostLeases(seen={"vdtest-gone": leases.fingerprint([lease()])})
    assert fresh_hooks.poll(test_host, state) == ["vdtest-gone"] and state.seen == {"vdtest-gone": ()}


def test_a_failing_poll_is_logged_and_backs_off_without_raising(fresh_hooks, db, caplog):
    down = Host.objects.create(name="down", uri="qemu+tcp://127.0.0.1:1/system")  # nothing listens on port 1
    leases.forget_viewers(down.pk)
    leases.note_viewed(down.pk, "default")
    try:
        before = time.monotonic()
        fresh_hooks.on_tick(down)  # must not raise: the watcher loop goes on
        state = fresh_hooks.hosts[down.pk]
        assert state.failures == 1 and state.next_poll >= before + 2
        assert "reading DHCP leases of down failed" in caplog.text
        fresh_hooks.on_tick(down)  # within the back-off: not retried
        assert state.failures == 1
        state.next_poll = 0
        fresh_hooks.on_tick(down)
        assert state.failures == 2 and state.next_poll >= time.monotonic() + 3
    finally:
        leases.forget_viewers(down.pk)


@pytest.mark.django_db(transaction=True)
async def test_an_open_network_page_gets_one_hint_then_none_while_nothing_changes(fresh_hooks, viewer_user,
                                                                                  test_host):
    client = Client()
    await sync_to_async(client.force_login)(viewer_user)
    headers = [(b"host", b"127.0.0.1:8000"), (b"origin", b"http://127.0.0.1:8000"),
               (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())]
    socket = WebsocketCommunicator(application, "/ws/live/", headers=headers)
    assert (await socket.connect())[0]
    await socket.send_json_to({"subscribe": [f"host.{test_host.pk}"]})
    assert (await socket.receive_json_from(timeout=5))["subscribed"] == [f"host.{test_host.pk}"]

    await sync_to_async(client.get)(f"/hosts/{test_host.pk}/networks/default/")  # the page opens
    await sync_to_async(fresh_hooks.on_tick)(test_host)
    hint = await socket.receive_json_from(timeout=5)
    assert (hint["topic"], hint["event"], hint["data"]) == (f"host.{test_host.pk}", "network",
                                                            {"name": "default", "leases": True})
    fresh_hooks.hosts[test_host.pk].next_poll = 0
    await sync_to_async(fresh_hooks.on_tick)(test_host)  # nothing changed: silence
    assert await socket.receive_nothing(timeout=0.5)
    await socket.disconnect()


@pytest.fixture
def test_networks(test_host):
    """Active networks vdtest-lease-a … -d on the test driver (no address, no bridge: nothing real is
    made), beside its own "default"; undefined afterwards."""
    from hosts.virt import connections

    names = [f"vdtest-lease-{letter}" for letter in "abcd"]

    def define(conn):
        for name in names:
            conn.networkDefineXML(f"<network><name>{name}</name></network>").create()

    def undefine(conn):
        for net in conn.listAllNetworks(0):
            if net.name().startswith("vdtest-lease-"):
                if net.isActive():
                    net.destroy()
                net.undefine()

    connections.call(test_host.uri, define)
    yield names
    connections.call(test_host.uri, undefine)


@pytest.fixture
def lease_reads(monkeypatch):
    """Every lease read made, in order: (network, timeout, keep_on_timeout); the real libvirt read runs,
    its result is returned unchanged. `slow` seconds are added after each read (a slow host)."""
    from hosts.virt import networks

    real = networks.dhcp_leases

    class Reads(list):
        slow = 0.0

    reads = Reads()

    def counted(uri, name, *, timeout=None, keep_on_timeout=False):
        reads.append((name, timeout, keep_on_timeout))
        try:
            return real(uri, name, timeout=timeout, keep_on_timeout=keep_on_timeout)
        finally:
            time.sleep(reads.slow)

    monkeypatch.setattr(networks, "dhcp_leases", counted)
    return reads


def test_a_guest_page_asks_each_network_once_and_skips_what_it_cannot_read(test_host, test_networks, lease_reads):
    """The test driver's networks report no leases (no lease support); a gone network adds nothing."""
    nics = [{"mac": "52:54:00:00:00:01", "type": "network", "source": "default"},
            {"mac": "52:54:00:00:00:02", "type": "network", "source": "default"},
            {"mac": "52:54:00:00:00:03", "type": "network", "source": "vdtest-lease-a"},
            {"mac": "52:54:00:00:00:04", "type": "network", "source": "vdtest-lease-a"},
            {"mac": "52:54:00:00:00:05", "type": "network", "source": "vdtest-lease-b"},
            {"mac": "52:54:00:00:00:06", "type": "network", "source": "vdtest-gone"},
            {"mac": "52:54:00:00:00:07", "type": "network", "source": "vdtest-gone"},
            {"mac": "52:54:00:00:00:08", "type": "bridge", "source": "br0"}]
    assert leases.addresses_by_nic(test_host.uri, nics) == {}
    assert sorted(name for name, _, _ in lease_reads) == ["default", "vdtest-gone", "vdtest-lease-a",
                                                          "vdtest-lease-b"]  # once each; none for the bridge


def test_a_guest_page_reads_leases_within_one_budget_without_dropping_the_connection(test_host, test_networks,
                                                                                      lease_reads, monkeypatch):
    monkeypatch.setattr(leases, "READ_BUDGET_SECONDS", 1.0)
    lease_reads.slow = 0.4
    nics = [{"mac": f"52:54:00:00:00:0{i}", "type": "network", "source": name} for i, name in enumerate(test_networks)]
    conn = connections.connection(test_host.uri)
    started = time.monotonic()
    assert leases.addresses_by_nic(test_host.uri, nics) == {}
    assert time.monotonic() - started < 1.3
    assert connections.connection(test_host.uri) is conn  # the same connection: not dropped
    assert [name for name, _, _ in lease_reads] == test_networks[:2]  # the rest: no time left, no address shown
    assert all(0 < timeout <= 1.0 and keep for _, timeout, keep in lease_reads)


def test_a_nics_address_comes_from_its_own_networks_lease_only():
    """A MAC leased on network B (another guest's NIC, or this NIC before it moved) is not the address
    of the NIC on network A."""
    same_mac = "52:54:00:aa:00:01"
    nics = [{"mac": same_mac.upper(), "type": "network", "source": "net-a"},
            {"mac": "52:54:00:aa:00:02", "type": "network", "source": "net-a"},
            {"mac": "52:54:00:aa:00:03", "type": "network", "source": "net-b"}]
    found = {"net-a": [lease(mac="52:54:00:aa:00:02", ip="10.0.1.2")],
             "net-b": [lease(mac=same_mac, ip="10.0.2.1"), lease(mac="52:54:00:aa:00:03", ip="10.0.2.3"),
                       lease(mac="52:54:00:aa:00:03", ip="fd00::3", type="ipv6")]}
    assert leases.nic_addresses(nics, found) == {"52:54:00:aa:00:02": "10.0.1.2",
                                                 "52:54:00:aa:00:03": "10.0.2.3, fd00::3"}


def test_a_poll_stops_at_its_deadline_and_the_next_starts_with_the_networks_left(fresh_hooks, test_host,
                                                                                 test_networks, lease_reads,
                                                                                 monkeypatch):
    monkeypatch.setattr(leases, "READ_BUDGET_SECONDS", 1.0)
    lease_reads.slow = 0.4  # two reads fit in the budget, not three
    for name in test_networks:
        leases.note_viewed(test_host.pk, name)
    state = leases._HostLeases()
    started = time.monotonic()
    assert fresh_hooks.poll(test_host, state) == test_networks[:2]
    assert time.monotonic() - started < 1.3  # the watcher loop waited one budget, not four reads
    assert fresh_hooks.poll(test_host, state) == test_networks[2:]  # first look at the rest, first
    assert [name for name, _, _ in lease_reads] == test_networks
    assert fresh_hooks.poll(test_host, state) == []  # all seen; a, b read again, unchanged
    assert [name for name, _, _ in lease_reads[4:]] == test_networks[:2]
    assert all(0 < timeout <= 1.0 and keep for _, timeout, keep in lease_reads)


def test_the_read_budget_never_exceeds_the_call_timeout(settings):
    settings.VIRTDASH_CALL_TIMEOUT = 2
    assert leases.read_budget() == 2
    settings.VIRTDASH_CALL_TIMEOUT = 30
    assert leases.read_budget() == leases.READ_BUDGET_SECONDS


def test_a_best_effort_read_that_times_out_leaves_the_hosts_connection_open(test_host):
    """What lease reads ask of connections.call: a slow read must not cost the watcher a reconnect and
    full resync (a hung host is its ping's business)."""
    from hosts.virt import connections
    from hosts.virt.errors import HostUnreachable

    conn = connections.connection(test_host.uri)

    def slow(c):
        time.sleep(0.5)
        return c.getLibVersion()

    with pytest.raises(HostUnreachable, match="not answering"):
        connections.call(test_host.uri, slow, what="a slow read", timeout=0.1, keep_on_timeout=True)
    assert connections.connection(test_host.uri) is conn
    assert connections.call(test_host.uri, lambda c: c.getLibVersion()) > 0


def test_the_guest_page_has_an_address_column(viewer_client, test_host):
    from guests import inventory
    from guests.models import Guest

    inventory.resync(test_host, full=True)  # the test driver's running guest "test", NIC on "default"
    guest = Guest.objects.get(host=test_host, name="test")
    page = viewer_client.get(f"/guests/{guest.uuid}/").content.decode()
    row = page.split('id="nic-table"')[1].split("</tr>")[1]
    assert "Address (DHCP)" in page and "aa:bb:cc:dd:ee:ff" in row and row.endswith('<td class="mono">–</td>')

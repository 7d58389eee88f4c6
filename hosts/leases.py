"""Live DHCP leases: libvirt has no lease events, so the watcher re-reads the leases of the
networks someone is looking at and publishes a "network" hint on ``host.<pk>`` when they change;
the open network page (data-live-events="network ...") then re-reads its fragment.

Who is looking: the network page and its live fragment record the network in a Redis sorted set
per host (member = network name, score = until when), renewed by every render — live.js re-reads
the fragment at least every 60 s, within VIEW_SECONDS. Nobody looking, no libvirt call: a lease
list is cheap (libvirt reads dnsmasq's status file), but a host with networks nobody opens should
cost nothing, and hundreds of hosts polled every few seconds for no reader would add up.

Change detection: a sorted tuple of the leases (MAC, IP, prefix, host name, client id, type and the
*absolute* expiry time). The expiry only moves when a client renews (dnsmasq's default 1 h lease:
about every 30 min per guest), so a hint goes out on a new, gone or renewed lease, never merely
because time passed; at most one per network per poll.

Cost to the watcher: the reads run on the host watcher's thread and its shared connection, so one
poll has one deadline for all its reads, `read_budget()` (READ_BUDGET_SECONDS, never more than
VIRTDASH_CALL_TIMEOUT): once it has passed, the networks not read yet are read first at the next
poll, so many open network pages cost the watcher loop at most that long per poll. A read that times
out does not drop the host's connection (`keep_on_timeout`): a hung host is the watcher ping's and the
keepalive's business, and a slow lease read must not cost a reconnect and full resync. Trade-off: the
timed-out call stays in flight on the daemon (libvirtd serves 5 per client) until it returns or the
connection closes; the poll's back-off after a failure (2 × the interval, doubling, at most
MAX_BACKOFF_SECONDS) bounds how many can pile up, and if they do, the ping times out and the watcher
reconnects, as it did before on any lease timeout. The guest page's address lookup has the same
deadline: networks it could not read in time show no address.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import redis
from django.conf import settings

from core import live, shared_redis
from hosts.models import Host
from hosts.virt import networks
from hosts.virt.errors import ObjectNotFound, VirtError

log = logging.getLogger(__name__)
VIEW_SECONDS = 150  # a page counts as open this long after its last render (live.js re-reads every 60 s)
READ_BUDGET_SECONDS = 5  # all the lease reads of one poll (or one guest page) together, like the watcher's ping
MIN_READ_SECONDS = 0.25  # less time left than this: the read is left for later rather than made to time out
MAX_BACKOFF_SECONDS = 300


def read_budget() -> float:
    """Seconds one poll (or guest page) may spend reading leases: READ_BUDGET_SECONDS, at most VIRTDASH_CALL_TIMEOUT."""
    return min(READ_BUDGET_SECONDS, settings.VIRTDASH_CALL_TIMEOUT)


def _key(host_pk: int) -> str:
    return f"vd:leases:viewed:{host_pk}"


def note_viewed(host_pk: int, network: str) -> None:
    """The network's page (or fragment) was just shown: poll its leases for VIEW_SECONDS."""
    if not settings.VIRTDASH_LEASE_POLL_SECONDS:
        return
    key = _key(host_pk)
    try:
        pipe = shared_redis.client().pipeline(transaction=False)
        pipe.zadd(key, {network: time.time() + VIEW_SECONDS})
        pipe.expire(key, VIEW_SECONDS)
        pipe.execute()
    except redis.RedisError as exc:  # the page still shows the leases; only their live update waits
        log.warning("could not note a viewer of network %s: %s", network, exc)


def viewed_networks(host_pk: int) -> list[str]:
    """Networks of the host with an open page, sorted (forgets the expired ones)."""
    key = _key(host_pk)
    pipe = shared_redis.client().pipeline(transaction=False)
    pipe.zremrangebyscore(key, "-inf", time.time())
    pipe.zrange(key, 0, -1)
    _, names = pipe.execute()
    return sorted(name.decode() for name in names)


def forget_viewers(host_pk: int) -> None:
    shared_redis.client().delete(_key(host_pk))


def fingerprint(leases: Iterable[networks.Lease]) -> tuple:
    """What a change is: the leases in a canonical order, with their absolute expiry (moves on renewal only)."""
    return tuple(sorted((lease.mac, lease.ip, lease.prefix or 0, lease.hostname, lease.client_id,
                         lease.type, lease.expires) for lease in leases))


def addresses_by_nic(uri: str, nics: Iterable[dict]) -> dict[str, str]:
    """{NIC MAC as given: "10.0.0.5, fd00::5"} for NICs on libvirt networks (type "network") that hold a
    DHCP lease on *their own* network: one lease read per distinct network, never per guest or NIC, all
    within one `read_budget()`. A network that cannot be read (stopped, gone, no lease support, out of
    time) adds nothing."""
    nics = [n for n in nics if n.get("type") == "network" and n.get("source") and n.get("mac")]
    deadline = time.monotonic() + read_budget()
    found: dict[str, list[networks.Lease]] = {}
    for name in sorted({n["source"] for n in nics}):
        remaining = deadline - time.monotonic()
        if remaining < MIN_READ_SECONDS:
            log.info("no time left to read the leases of network %s for a guest page", name)
            break
        try:
            found[name] = networks.dhcp_leases(uri, name, timeout=remaining, keep_on_timeout=True)
        except VirtError as exc:
            log.info("no leases of network %s for a guest page: %s", name, exc)
    return nic_addresses(nics, found)


def nic_addresses(nics: Iterable[dict], leases_by_network: dict[str, list[networks.Lease]]) -> dict[str, str]:
    """{NIC MAC: its addresses}: a NIC's lease counts only on the network the NIC is on (keyed by
    (network, MAC)); the same MAC leased on another network is another NIC's, or an old one's."""
    by_key: dict[tuple[str, str], list[str]] = {}
    for network, found in leases_by_network.items():
        for lease in found:
            by_key.setdefault((network, lease.mac.lower()), []).append(lease.ip)
    addresses = {}
    for nic in nics:
        if nic.get("type") != "network" or not nic.get("source") or not nic.get("mac"):
            continue
        ips = by_key.get((nic["source"], nic["mac"].lower()))
        if ips:
            addresses[nic["mac"]] = ", ".join(ips)
    return addresses


@dataclass
class _HostLeases:
    seen: dict[str, tuple] = field(default_factory=dict)  # network → fingerprint at the last poll
    next_poll: float = 0.0
    failures: int = 0
    resume_at: str = ""  # the last poll ran out of time here: the next one starts with this network


class LeaseHooks:
    """Watcher hooks (registered in hosts/apps.py): every VIRTDASH_LEASE_POLL_SECONDS, one lease read
    per viewed network of the host, all within one `read_budget()`. A failure is logged and backs off;
    it never reaches the watcher loop (a dead host is the ping's business)."""

    def __init__(self) -> None:
        self.hosts: dict[int, _HostLeases] = {}

    def on_connected(self, host: Host) -> None:
        self.hosts[host.pk] = _HostLeases()  # changes while disconnected: the first poll publishes

    def on_event(self, host: Host, event) -> None: ...

    def on_disconnected(self, host: Host) -> None:
        self.hosts.pop(host.pk, None)

    def on_tick(self, host: Host) -> None:
        interval = settings.VIRTDASH_LEASE_POLL_SECONDS
        state = self.hosts.setdefault(host.pk, _HostLeases())
        now = time.monotonic()
        if interval <= 0 or now < state.next_poll:
            return
        try:
            self.poll(host, state)
        except Exception as exc:  # VirtError, RedisError, anything: logged, retried later
            state.failures += 1
            delay = min(MAX_BACKOFF_SECONDS, interval * 2 ** min(state.failures, 8))
            log.warning("reading DHCP leases of %s failed (%s); next try in %s s", host.name, exc, delay)
            state.next_poll = now + delay
            return
        state.failures = 0
        state.next_poll = now + interval

    def poll(self, host: Host, state: _HostLeases) -> list[str]:
        """Re-read the viewed networks' leases until `read_budget()` has passed; publish a hint per
        changed one. Returns their names. Networks left unread are the next poll's first."""
        deadline = time.monotonic() + read_budget()
        viewed = viewed_networks(host.pk)
        state.seen = {name: seen for name, seen in state.seen.items() if name in viewed}
        order = [name for name in viewed if name >= state.resume_at] + [n for n in viewed if n < state.resume_at]
        state.resume_at = ""
        changed = []
        for name in order:
            remaining = deadline - time.monotonic()
            if remaining < MIN_READ_SECONDS:
                state.resume_at = name
                log.info("lease poll of %s out of time; network %s and after: next poll", host.name, name)
                break
            try:
                current = fingerprint(networks.dhcp_leases(host.uri, name, timeout=remaining, keep_on_timeout=True))
            except ObjectNotFound:
                current = ()  # deleted meanwhile: its page says so on the delete's own hint
            except VirtError:
                state.resume_at = name  # a slow host: after the back-off, start where it failed
                raise
            if state.seen.get(name) != current:  # also a first look: the page may predate the last poll
                state.seen[name] = current
                changed.append(name)
                live.publish([f"host.{host.pk}"], "network", {"name": name, "leases": True})
        return changed


hooks = LeaseHooks()

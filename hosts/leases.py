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
CALL_TIMEOUT = 5  # per lease read: the watcher's thread waits on it (like its ping)
MAX_BACKOFF_SECONDS = 300

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
    DHCP lease there: one lease read per distinct network, never per guest or NIC. A network that
    cannot be read (stopped, gone, no lease support) adds nothing."""
    nics = [n for n in nics if n.get("type") == "network" and n.get("source") and n.get("mac")]
    found: dict[str, list[str]] = {}
    for name in sorted({n["source"] for n in nics}):
        try:
            for lease in networks.dhcp_leases(uri, name, timeout=CALL_TIMEOUT):
                found.setdefault(lease.mac.lower(), []).append(lease.ip)
        except VirtError as exc:
            log.info("no leases of network %s for a guest page: %s", name, exc)
    return {n["mac"]: ", ".join(found[n["mac"].lower()]) for n in nics if n["mac"].lower() in found}


@dataclass
class _HostLeases:
    seen: dict[str, tuple] = field(default_factory=dict)  # network → fingerprint at the last poll
    next_poll: float = 0.0
    failures: int = 0


class LeaseHooks:
    """Watcher hooks (registered in hosts/apps.py): every VIRTDASH_LEASE_POLL_SECONDS, one lease read
    per viewed network of the host. A failure is logged and backs off; it never reaches the watcher
    loop (a dead host is the ping's business)."""

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
        """Re-read the viewed networks' leases; publish a hint per changed one. Returns their names."""
        viewed = viewed_networks(host.pk)
        state.seen = {name: seen for name, seen in state.seen.items() if name in viewed}
        changed = []
        for name in viewed:
            try:
                current = fingerprint(networks.dhcp_leases(host.uri, name, timeout=CALL_TIMEOUT))
            except ObjectNotFound:
                current = ()  # deleted meanwhile: its page says so on the delete's own hint
            if state.seen.get(name) != current:  # also a first look: the page may predate the last poll
                state.seen[name] = current
                changed.append(name)
                live.publish([f"host.{host.pk}"], "network", {"name": name, "leases": True})
        return changed


hooks = LeaseHooks()

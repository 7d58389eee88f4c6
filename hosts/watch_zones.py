"""Which hosts a watcher watches (its zones), and the deployment-wide duties one watcher does per round.

`manage.py watch --zone Z` (repeatable; `--zone default` is the blank zone) watches the enabled hosts
of those zones, and advertises them in Redis every round (a sorted set, scored by Redis's own clock
plus a time to live, so hosts' clocks do not matter). A watcher without `--zone` — the single-machine
install, scripts/up, the Procfile — watches every enabled host *except* those of zones another
watcher currently advertises: in a mixed deployment the central watcher hands a zone over when that
zone's own watcher starts (within one round) and takes it back when that watcher stops (at once on
a clean stop, after the time to live when it died). Two watchers given the same zone both watch it; a
warning says so.

When Redis cannot be read, a watcher without `--zone` keeps leaving alone the zones of its last
successful read, for up to STALE_TTLS × the time to live after that read (a Redis restart or a short
outage must not make it connect to and resync every zone's hosts for a round, then drop them again,
while the zones' own watchers go on watching them); after that it watches everything, as without
zones, until Redis answers again. For one time to live after Redis answers again, the zones of that
last read stay left alone too: their watchers re-advertise on their next round, and a watcher without
`--zone` that reads first must not take them for that one round. Each change is logged once.

Duties that are not about one host (today: reaping jobs whose worker died) are claimed per round
with SET NX PX on a Redis key, so one watcher in the deployment does each round's duty; when Redis
cannot be asked the watcher does the duty anyway, which is safe (`core.jobs.reap_stale` changes each
row by compare-and-set).
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Iterable

import redis

from core import shared_redis
from hosts import zones as zone_names
from hosts.models import Host

log = logging.getLogger(__name__)
ADVERT_KEY = "vd:watch:zones"  # sorted set: member "<zone label> <watcher id>", score = valid until (Redis time)
DUTY_KEY = "vd:watch:duty:{name}"
STALE_TTLS = 3  # while Redis fails, the last read zones stay left alone this many times the time to live


def watcher_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def _redis_now(client: redis.Redis) -> float:
    seconds, micros = client.time()
    return seconds + micros / 1e6


class ZoneScope:
    """The hosts one watcher watches. `zones` None = every zone no other watcher has taken."""

    def __init__(self, zones: Iterable[str] | None = None, *, ttl: float = 15.0, ident: str | None = None):
        self.zones = frozenset(zones) if zones is not None else None
        self.ttl = max(0.1, ttl)
        self.ident = ident or watcher_id()
        self._redis_ok = True
        self._warned: set[str] = set()
        self._taken: set[str] | None = None  # the zones of the last successful read (None: never read)
        self._taken_at = 0.0  # time.monotonic() of that read
        self._outage_over_at: float | None = None  # Redis answered again after failing: when (monotonic)
        self._gave_up = False  # the last read is too old: watching every zone until Redis answers

    def describe(self) -> str:
        if self.zones is None:
            return "every zone without its own watcher"
        return "zone(s) " + ", ".join(sorted(zone_names.label(z) for z in self.zones))

    def hosts(self):
        """The enabled hosts to watch this round (advertises a dedicated watcher's zones first)."""
        enabled = Host.objects.filter(enabled=True)
        if self.zones is not None:
            self.advertise()
            return enabled.filter(zone__in=self.zones)
        taken = self.taken_zones()
        return enabled.exclude(zone__in=taken) if taken else enabled

    def _members(self) -> dict[str, str]:
        return {f"{zone_names.label(zone)} {self.ident}": zone for zone in self.zones or ()}

    def advertise(self) -> None:
        try:
            client = shared_redis.client()
            now = _redis_now(client)
            pipe = client.pipeline(transaction=False)
            pipe.zremrangebyscore(ADVERT_KEY, "-inf", now)
            pipe.zadd(ADVERT_KEY, {member: now + self.ttl for member in self._members()})
            pipe.zrange(ADVERT_KEY, 0, -1)
            _, _, members = pipe.execute()
        except redis.RedisError as exc:
            self._redis_failed(exc, "watchers without --zone may watch these zones too meanwhile")
            return
        self._redis_recovered()
        for member in members:
            label, _, other = member.decode().partition(" ")
            if other != self.ident and label in {zone_names.label(z) for z in self.zones} and other not in self._warned:
                self._warned.add(other)
                log.warning("watcher %s also watches zone %s: its hosts are watched twice; give each zone one "
                            "watcher", other, label)

    def taken_zones(self) -> set[str]:
        """Zones another watcher advertises (a watcher without --zone leaves them alone).

        Redis failing: the zones of the last successful read, for STALE_TTLS × ttl after it; then none."""
        try:
            client = shared_redis.client()
            now = _redis_now(client)
            pipe = client.pipeline(transaction=False)
            pipe.zremrangebyscore(ADVERT_KEY, "-inf", now)
            pipe.zrange(ADVERT_KEY, 0, -1)
            _, members = pipe.execute()
        except redis.RedisError as exc:
            return self._taken_while_redis_fails(exc)
        taken = set()
        for member in members:
            label, _, other = member.decode().partition(" ")
            if other != self.ident:
                taken.add("" if label == zone_names.DEFAULT_NAME else label)
        if not self._redis_ok:
            self._redis_recovered()
            if self._taken and not self._gave_up:
                self._outage_over_at = time.monotonic()
        if self._outage_over_at is not None:
            if time.monotonic() - self._outage_over_at < self.ttl:  # their watchers re-advertise meanwhile
                return taken | self._taken
            self._outage_over_at = None
        self._taken, self._taken_at, self._gave_up = taken, time.monotonic(), False
        return taken

    def _taken_while_redis_fails(self, exc: Exception) -> set[str]:
        self._outage_over_at = None
        limit = STALE_TTLS * self.ttl
        age = time.monotonic() - self._taken_at
        if self._taken is not None and age <= limit:
            if self._taken:
                self._redis_failed(exc, "leaving zone(s) " + ", ".join(sorted(zone_names.label(z) for z in self._taken))
                                   + f" to their watchers as last read, for up to {limit:g} s")
            else:
                self._redis_failed(exc, "no zone had its own watcher at the last read; watching every zone")
            return set(self._taken)
        if self._taken and not self._gave_up:
            log.warning("Redis still unavailable for the watcher's zones, %g s after the last read: watching every "
                        "zone meanwhile (zones with their own watcher are watched twice)", limit)
        self._gave_up = True
        self._redis_failed(exc, "watching every zone meanwhile")
        return set()

    def release(self) -> None:
        """A clean stop: hand the zones back at once (a watcher without --zone takes them next round)."""
        if not self.zones:
            return
        try:
            shared_redis.client().zrem(ADVERT_KEY, *self._members())
        except redis.RedisError as exc:
            log.warning("could not hand zones back (%s); they free up after %s s", exc, self.ttl)

    def _redis_failed(self, exc: Exception, consequence: str) -> None:
        if self._redis_ok:
            log.warning("Redis unavailable for the watcher's zones (%s): %s", exc, consequence)
        self._redis_ok = False

    def _redis_recovered(self) -> None:
        if not self._redis_ok:
            log.info("Redis reachable again for the watcher's zones")
        self._redis_ok = True


def claim_duty(name: str, seconds: float, ident: str) -> bool:
    """True for the one watcher that does duty `name` in this `seconds`-long round (SET NX PX).

    Without Redis: True (the duties are safe to run concurrently, just wasteful); logged once per outage."""
    try:
        claimed = bool(shared_redis.client().set(DUTY_KEY.format(name=name), ident, nx=True,
                                                 px=max(1, int(seconds * 1000))))
    except redis.RedisError as exc:
        if name not in _duties_unclaimable:
            _duties_unclaimable.add(name)
            log.warning("could not claim watcher duty %s (%s); doing it anyway until Redis answers", name, exc)
        return True
    _duties_unclaimable.discard(name)
    return claimed


_duties_unclaimable: set[str] = set()  # duties whose claim failed (warned once until a claim works again)

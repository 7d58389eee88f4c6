"""Which hosts a watcher watches (its zones), and the deployment-wide duties one watcher does per round.

`manage.py watch --zone Z` (repeatable; `--zone default` is the blank zone) watches the enabled hosts
of those zones, and advertises them in Redis every round (a sorted set, scored by Redis's own clock
plus a time to live, so hosts' clocks do not matter). A watcher without `--zone` — the single-machine
install, scripts/up, the Procfile — watches every enabled host *except* those of zones another
watcher currently advertises: in a mixed deployment the central watcher hands a zone over when that
zone's own watcher starts (within one round) and takes it back when that watcher stops (at once on
a clean stop, after the time to live when it died). Without Redis a watcher without `--zone` watches
everything, as before zones. Two watchers given the same zone both watch it; a warning says so.

Duties that are not about one host (today: reaping jobs whose worker died) are claimed per round
with SET NX PX on a Redis key, so one watcher in the deployment does each round's duty; when Redis
cannot be asked the watcher does the duty anyway, which is safe (`core.jobs.reap_stale` changes each
row by compare-and-set).
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Iterable

import redis

from core import shared_redis
from hosts import zones as zone_names
from hosts.models import Host

log = logging.getLogger(__name__)
ADVERT_KEY = "vd:watch:zones"  # sorted set: member "<zone label> <watcher id>", score = valid until (Redis time)
DUTY_KEY = "vd:watch:duty:{name}"


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
        """Zones another watcher advertises (a watcher without --zone leaves them alone)."""
        try:
            client = shared_redis.client()
            now = _redis_now(client)
            pipe = client.pipeline(transaction=False)
            pipe.zremrangebyscore(ADVERT_KEY, "-inf", now)
            pipe.zrange(ADVERT_KEY, 0, -1)
            _, members = pipe.execute()
        except redis.RedisError as exc:
            self._redis_failed(exc, "watching every zone meanwhile")
            return set()
        self._redis_recovered()
        taken = set()
        for member in members:
            label, _, other = member.decode().partition(" ")
            if other != self.ident:
                taken.add("" if label == zone_names.DEFAULT_NAME else label)
        return taken

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

    Without Redis: True (the duties are safe to run concurrently, just wasteful)."""
    try:
        return bool(shared_redis.client().set(DUTY_KEY.format(name=name), ident, nx=True,
                                              px=max(1, int(seconds * 1000))))
    except redis.RedisError as exc:
        log.warning("could not claim watcher duty %s (%s); doing it anyway", name, exc)
        return True

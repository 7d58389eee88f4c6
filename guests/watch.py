"""Watcher hooks of the guest inventory (registered in guests/apps.py).

Runs on each host's watcher thread: a full resync after every (re)connect (events were lost
while the connection was down), one re-read per event, and every min(VIRTDASH_SAMPLE_SECONDS,
VIRTDASH_RECONCILE_SECONDS) one bulk read that both reconciles the inventory (repairing drift,
e.g. a lost event) and records samples — the reconcile costs nothing extra on top of the stats
call. Roll-ups and retention run every five minutes per host.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from django.conf import settings

from guests import inventory, samples
from hosts.models import Host
from hosts.virt.errors import VirtError
from hosts.virt.events import DomainEvent
from hosts.virt.stats import HostRead

log = logging.getLogger(__name__)
ROLL_UP_SECONDS = 300


@dataclass
class _HostState:
    previous: HostRead | None = None
    next_poll: float = 0.0
    next_roll_up: float = 0.0


class InventoryHooks:
    def __init__(self) -> None:
        self.hosts: dict[int, _HostState] = {}

    def _state(self, host: Host) -> _HostState:
        return self.hosts.setdefault(host.pk, _HostState())

    def on_connected(self, host: Host) -> None:
        state = self._state(host)
        read, changes = inventory.resync(host, full=True, capacity=True)
        log.info("resynced %s: %d guests in %.3f s (%d changes)", host.name, len(read.domains), read.seconds,
                 changes.count)
        state.previous = read
        state.next_poll = time.monotonic() + self._poll_seconds()

    def on_event(self, host: Host, event: DomainEvent) -> None:
        try:
            inventory.refresh_guest(host, event.uuid, event.kind if event.kind == "reboot" else event.event)
        except VirtError as exc:
            if exc.transient:
                raise  # the host is gone: the watcher reconnects and resyncs in full
            log.warning("re-reading %s on %s after %s failed: %s", event.name, host.name, event.event, exc)

    def on_tick(self, host: Host) -> None:
        state = self._state(host)
        now = time.monotonic()
        if now >= state.next_poll:
            state.next_poll = now + self._poll_seconds()
            try:
                self.poll(host, state)
            except VirtError as exc:
                if exc.transient:
                    raise
                log.warning("bulk read of %s failed: %s", host.name, exc)  # one odd guest must not mark it down
        if now >= state.next_roll_up:
            state.next_roll_up = now + ROLL_UP_SECONDS
            samples.roll_up(host)

    def on_disconnected(self, host: Host) -> None:
        # Rows keep their last state; pages show the host as unreachable (Host.status).
        self._state(host).previous = None

    def poll(self, host: Host, state: _HostState) -> None:
        read, _changes = inventory.resync(host, capacity=True)
        samples.record(host, read, state.previous)
        state.previous = read

    @staticmethod
    def _poll_seconds() -> float:
        return min(settings.VIRTDASH_SAMPLE_SECONDS, settings.VIRTDASH_RECONCILE_SECONDS)


hooks = InventoryHooks()

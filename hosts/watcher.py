"""The watcher: one thread per enabled host holding its event connection.

Each HostWatcher connects (with back-off), subscribes to domain events, pings the host every
few seconds with a timeout, refreshes host facts, and calls the registered hooks (the guest
inventory registers its own). libvirt callbacks only enqueue; all database work happens on the
host's own thread, never in libvirt's event-loop thread.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from datetime import datetime
from typing import Protocol

from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from hosts import services
from hosts.choices import HostStatus
from hosts.models import Host
from hosts.virt import connections, events
from hosts.virt.errors import VirtError

log = logging.getLogger(__name__)
PING_SECONDS = 4
PING_TIMEOUT = 5


class WatcherHooks(Protocol):
    def on_connected(self, host: Host) -> None: ...  # full resync after (re)connect
    def on_event(self, host: Host, event: events.DomainEvent) -> None: ...
    def on_tick(self, host: Host) -> None: ...  # called about every second while connected
    def on_disconnected(self, host: Host) -> None: ...


_hooks: list[WatcherHooks] = []


def register_hooks(hooks: WatcherHooks) -> None:
    if hooks not in _hooks:
        _hooks.append(hooks)


def _run_hooks(method: str, *args) -> None:
    for hooks in _hooks:
        try:
            getattr(hooks, method)(*args)
        except VirtError:
            raise
        except Exception:
            log.exception("watcher hook %s.%s failed", type(hooks).__name__, method)


class HostWatcher(threading.Thread):
    def __init__(self, host: Host):
        super().__init__(name=f"watch:{host.name}", daemon=True)
        self.host = host
        self.inbox: queue.Queue = queue.Queue()
        self.stopping = threading.Event()
        self.retry_now = threading.Event()  # ends a back-off early (stop, or another process connected)
        self.conn = None
        self.callback_ids: list[int] = []
        self.failures = 0
        self.failed_at: datetime | None = None  # this watcher's last failure (timezone.now())
        self._nudged_for: datetime | None = None  # the status_since that last ended a back-off early

    def stop(self) -> None:
        self.stopping.set()
        self.retry_now.set()
        self.inbox.put(("stop", None))

    def connection_closed(self, reason: str) -> None:
        self.inbox.put(("closed", reason))

    def nudge(self, status: str, status_since: datetime | None) -> bool:
        """The host row says another process reached the host (a connection test, a trusted SSH host key):
        end the back-off now instead of waiting for it. Only for a Connected written *after* this
        watcher's own last failure, and once per such write: a watcher that cannot reach a host another
        watcher reaches (a zone's own watcher during a hand-over) must not retry, and write Unreachable,
        every round the other writes Connected. True when it nudged."""
        if (not self.failures or status != HostStatus.CONNECTED or status_since is None or self.failed_at is None
                or status_since <= self.failed_at or status_since == self._nudged_for):
            return False
        self._nudged_for = status_since
        self.retry_now.set()
        return True

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                if self.conn is None:
                    self._connect()
                else:
                    self._serve()
            except VirtError as exc:
                self._mark_down(exc.detail or str(exc))
            except Exception:
                log.exception("watcher for %s failed; retrying", self.host.name)
                self._mark_down("internal error in the watcher; see its log")
            finally:
                close_old_connections()
        self._unsubscribe()

    def _connect(self) -> None:
        self.retry_now.clear()  # a nudge from before this attempt is used up by it; one during it ends the next wait
        if self.stopping.is_set():
            self.retry_now.set()  # stop() raced with the clear: its wake-up must not be lost
        self.conn = connections.connection(self.host.uri, force=True)
        self.callback_ids = connections.run_with_timeout(
            lambda: events.subscribe(self.conn, lambda ev: self.inbox.put(("event", ev))),
            PING_TIMEOUT, f"subscribing to {self.host.uri}")
        self.failures = 0
        self.retry_now.clear()  # connected: a nudge that came during the attempt is moot (stop() also sets stopping)
        services.refresh_facts(self.host)
        _run_hooks("on_connected", self.host)
        log.info("watching %s", self.host.uri)

    def _serve(self) -> None:
        next_ping = time.monotonic() + PING_SECONDS
        next_facts = time.monotonic() + settings.VIRTDASH_HOST_REFRESH_SECONDS
        while not self.stopping.is_set() and self.conn is not None:
            try:
                kind, payload = self.inbox.get(timeout=1)
            except queue.Empty:
                kind, payload = "tick", None
            if kind == "closed":
                raise VirtError(payload)
            if kind == "event":
                _run_hooks("on_event", self.host, payload)
                continue
            now = time.monotonic()
            if now >= next_ping:
                connections.call(self.host.uri, lambda c: c.getLibVersion(), timeout=PING_TIMEOUT)
                next_ping = now + PING_SECONDS
            if now >= next_facts:
                services.refresh_facts(self.host)
                next_facts = now + settings.VIRTDASH_HOST_REFRESH_SECONDS
            _run_hooks("on_tick", self.host)

    def _mark_down(self, reason: str) -> None:
        self.failed_at = timezone.now()
        self._unsubscribe()
        connections.drop(self.host.uri, reason)
        services.record_status(self.host, ok=False, error=reason)
        _run_hooks("on_disconnected", self.host)
        self.failures += 1
        delay = min(30, 2 ** min(self.failures - 1, 5))
        log.warning("%s unreachable (%s); retrying in %s s", self.host.name, reason, delay)
        if not self.stopping.is_set():
            self.retry_now.wait(delay)
        self._drain()

    def _drain(self) -> None:
        while True:
            try:
                kind, _ = self.inbox.get_nowait()
            except queue.Empty:
                return
            if kind == "stop":
                self.stopping.set()

    def _unsubscribe(self) -> None:
        conn, ids = self.conn, self.callback_ids
        self.conn, self.callback_ids = None, []
        if conn is not None and ids:
            threading.Thread(target=events.unsubscribe, args=(conn, ids), daemon=True).start()


class Supervisor:
    """Keeps one HostWatcher per enabled host in scope (hosts/watch_zones.py; None = every enabled
    host), following additions, edits, zone changes and removals."""

    def __init__(self, scope=None):
        self.watchers: dict[int, HostWatcher] = {}
        self.scope = scope
        connections.add_close_listener(self._on_close)

    def _on_close(self, uri: str, reason: str) -> None:
        for watcher in list(self.watchers.values()):
            if watcher.host.uri == uri:
                watcher.connection_closed(reason)

    def sync(self) -> None:
        hosts = self.scope.hosts() if self.scope is not None else Host.objects.filter(enabled=True)
        wanted = {h.pk: h for h in hosts}
        for pk, watcher in list(self.watchers.items()):
            host = wanted.get(pk)
            if host is None or host.uri != watcher.host.uri:
                watcher.stop()
                del self.watchers[pk]
            else:
                watcher.host.name = host.name
                watcher.nudge(host.status, host.status_since)
        for pk, host in wanted.items():
            if pk not in self.watchers:
                watcher = HostWatcher(host)
                self.watchers[pk] = watcher
                watcher.start()

    def stop(self) -> None:
        for watcher in self.watchers.values():
            watcher.stop()
        if self.scope is not None:
            self.scope.release()

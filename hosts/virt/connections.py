"""One libvirt connection per process per host, with keepalive, back-off and call timeouts.

Why threads: libvirt-python calls block, and a hung daemon (SIGSTOP, dead network) would hang
the caller forever. Every call runs in a short-lived daemon thread and the caller waits at most
`timeout` seconds; the keepalive (driven by the event-loop thread) later closes the dead
connection, which frees the stuck thread. Connections are keyed by process id, so a Celery
prefork child never uses a connection inherited from its parent.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import libvirt
from django.conf import settings

from hosts.virt import ssh
from hosts.virt.errors import HostUnreachable, VirtError, translate

log = logging.getLogger(__name__)
T = TypeVar("T")

# libvirtd serves at most 5 concurrent calls per client (max_client_requests); stay below.
MAX_CONCURRENT_CALLS = 4
MAX_BACKOFF_SECONDS = 30

_registry_lock = threading.Lock()
_registry: dict[tuple[int, str], _Entry] = {}
_loop_pid: int | None = None
_loop_registered = False
_close_listeners: list[Callable[[str, str], None]] = []


@dataclass
class _Entry:
    uri: str
    conn: libvirt.virConnect | None = None
    failures: int = 0
    retry_at: float = 0.0
    last_error: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)
    slots: threading.BoundedSemaphore = field(default_factory=lambda: threading.BoundedSemaphore(MAX_CONCURRENT_CALLS))


def ensure_event_loop() -> None:
    """Register libvirt's default event loop and run it in a daemon thread, once per process."""
    global _loop_pid, _loop_registered
    if _loop_pid == os.getpid():
        return
    with _registry_lock:
        if _loop_pid == os.getpid():
            return
        if not _loop_registered:
            libvirt.registerErrorHandler(lambda _ctx, _err: None, None)  # no stderr noise
            libvirt.virEventRegisterDefaultImpl()
            _loop_registered = True
        threading.Thread(target=_run_event_loop, name="libvirt-events", daemon=True).start()
        _loop_pid = os.getpid()


def _run_event_loop() -> None:
    while True:
        try:
            libvirt.virEventRunDefaultImpl()
        except libvirt.libvirtError:
            log.exception("libvirt event loop iteration failed")
            time.sleep(0.5)


def add_close_listener(listener: Callable[[str, str], None]) -> None:
    """Call `listener(uri, reason)` whenever a connection of this process closes."""
    _close_listeners.append(listener)


def run_with_timeout(fn: Callable[[], T], timeout: float, what: str) -> T:
    """Run fn in a daemon thread; raise TimeoutError if it has not returned within `timeout`."""
    outcome: dict[str, object] = {}
    done = threading.Event()

    def target() -> None:
        try:
            outcome["value"] = fn()
        except BaseException as exc:  # handed to the caller below
            outcome["error"] = exc
        finally:
            done.set()

    threading.Thread(target=target, name=f"libvirt-call:{what}", daemon=True).start()
    if not done.wait(timeout):
        raise TimeoutError(f"{what} did not answer within {timeout:g} s")
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]


def _refuse_interactive_auth(_credentials, _data) -> int:
    return -1  # never prompt: SSH hosts authenticate with the service account's key


def _open(uri: str, timeout: float) -> libvirt.virConnect:
    ensure_event_loop()
    auth = [[libvirt.VIR_CRED_AUTHNAME, libvirt.VIR_CRED_PASSPHRASE], _refuse_interactive_auth, None]
    target = ssh.connect_uri(uri)  # qemu+ssh: our key, known_hosts and ssh options
    conn = run_with_timeout(lambda: libvirt.openAuth(target, auth, 0), timeout, f"connecting to {uri}")
    try:
        conn.setKeepAlive(settings.VIRTDASH_KEEPALIVE_INTERVAL, settings.VIRTDASH_KEEPALIVE_COUNT)
    except libvirt.libvirtError:
        pass  # local drivers (test:///) have no keepalive
    return conn


def open_standalone(uri: str, timeout: float | None = None) -> libvirt.virConnect:
    """A private connection not shared with other callers (event loops, console streams)."""
    timeout = timeout or settings.VIRTDASH_CONNECT_TIMEOUT
    try:
        return _open(uri, timeout)
    except TimeoutError as exc:
        raise HostUnreachable(f"{uri} is unreachable: {exc}") from None
    except libvirt.libvirtError as exc:
        raise translate(exc, uri) from None


def _entry(uri: str) -> _Entry:
    key = (os.getpid(), uri)
    with _registry_lock:
        entry = _registry.get(key)
        if entry is None:
            entry = _registry[key] = _Entry(uri)
        return entry


def _on_close(conn: libvirt.virConnect, reason: int, entry: _Entry) -> None:
    reasons = {0: "error", 1: "end of file", 2: "keepalive timeout", 3: "client closed"}
    text = f"connection closed ({reasons.get(reason, reason)})"
    _forget(entry, conn, text)
    for listener in list(_close_listeners):
        try:
            listener(entry.uri, text)
        except Exception:
            log.exception("close listener failed")


def _forget(entry: _Entry, conn: libvirt.virConnect | None, reason: str, *, failed: bool = True) -> None:
    """Drop the entry's connection; a failure (not a deliberate drop) starts a short back-off."""
    with entry.lock:
        if conn is not None and entry.conn is not conn:
            return
        dead, entry.conn = entry.conn, None
        if failed:
            entry.last_error = reason
            entry.failures = max(entry.failures, 1)
            entry.retry_at = time.monotonic() + 1
    if dead is not None:
        close_in_background(dead)


def close_in_background(conn: libvirt.virConnect) -> None:
    """close() on a hung daemon blocks too: never make the caller wait for it."""
    threading.Thread(target=_close_quietly, args=(conn,), daemon=True).start()


def _close_quietly(conn: libvirt.virConnect) -> None:
    try:
        conn.unregisterCloseCallback()
        conn.close()
    except libvirt.libvirtError:
        pass


def connection(uri: str, *, force: bool = False) -> libvirt.virConnect:
    """This process's open connection to `uri`, opening it if needed.

    While a host is failing, new attempts wait for an exponential back-off (1 s … 30 s);
    `force` tries at once (connection tests, the watcher's scheduled retries).
    """
    entry = _entry(uri)
    with entry.lock:
        if entry.conn is not None:
            return entry.conn
        if not force and time.monotonic() < entry.retry_at:
            raise HostUnreachable(f"{uri} is unreachable: {entry.last_error}", detail=entry.last_error)
        try:
            conn = _open(uri, settings.VIRTDASH_CONNECT_TIMEOUT)
        except (TimeoutError, libvirt.libvirtError) as exc:
            error = translate(exc, uri) if isinstance(exc, libvirt.libvirtError) else HostUnreachable(
                f"{uri} is unreachable: {exc}"
            )
            entry.failures += 1
            entry.last_error = error.detail or str(error)
            entry.retry_at = time.monotonic() + min(MAX_BACKOFF_SECONDS, 2 ** (entry.failures - 1))
            raise HostUnreachable(str(error), detail=entry.last_error) from None
        try:
            conn.registerCloseCallback(_on_close, entry)
        except libvirt.libvirtError:
            pass  # in-process drivers have no close callback
        entry.conn, entry.failures, entry.last_error = conn, 0, ""
        log.info("connected to %s (libvirt %s)", uri, conn.getLibVersion())
        return conn


def call(uri: str, fn: Callable[[libvirt.virConnect], T], *, what: str = "", timeout: float | None = None,
         force: bool = False, keep_on_timeout: bool = False) -> T:
    """Run `fn(conn)` on this process's connection to `uri` with a timeout; errors become ours.

    A timeout drops the connection (the host is taken as hung), unless `keep_on_timeout`: best-effort
    reads (the watcher's lease polls) leave a hung host to the keepalive and the watcher's ping."""
    timeout = timeout or settings.VIRTDASH_CALL_TIMEOUT
    where = what or uri
    conn = connection(uri, force=force)
    entry = _entry(uri)
    if not entry.slots.acquire(timeout=timeout):
        raise HostUnreachable(f"{where}: too many calls in flight to {uri}; it is not answering")
    try:
        return run_with_timeout(lambda: fn(conn), timeout, where)
    except TimeoutError as exc:
        if not keep_on_timeout:
            _forget(entry, conn, str(exc))
        raise HostUnreachable(f"{uri} is not answering: {exc}", detail=str(exc)) from None
    except libvirt.libvirtError as exc:
        error = translate(exc, where)
        if isinstance(error, HostUnreachable):
            _forget(entry, conn, error.detail)
        raise error from None
    finally:
        entry.slots.release()


def drop(uri: str, reason: str = "closed by VirtDash") -> None:
    """Close this process's connection to `uri` (host removed or its URI changed)."""
    entry = _entry(uri)
    _forget(entry, entry.conn, reason, failed=False)


__all__ = ["HostUnreachable", "VirtError", "add_close_listener", "call", "connection", "drop",
           "ensure_event_loop", "open_standalone", "run_with_timeout"]

"""Guest consoles: graphics lookup from the live XML, screenshots, and serial console streams.

Callers get plain data (`ConsoleInfo`, `GraphicsInfo`, PNG bytes) and a `SerialStream` object
that hides the libvirt stream. Two traps from ENVIRONMENT.md shape `SerialStream`: an undrained
console stream slows the guest's serial output to a line a second, and a *blocking* recv() on a
shared connection stalls every other call while the console is quiet. So each serial console
gets its own connection and a VIR_STREAM_NONBLOCK stream whose data arrives through callbacks on
libvirt's event-loop thread (`connections.ensure_event_loop`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import libvirt

from hosts.virt import connections
from hosts.virt.errors import Conflict, VirtError, translate
from virtdash.xml import Domain

log = logging.getLogger(__name__)

_STATE_NAMES = {
    libvirt.VIR_DOMAIN_NOSTATE: "no state",
    libvirt.VIR_DOMAIN_RUNNING: "running",
    libvirt.VIR_DOMAIN_BLOCKED: "running",
    libvirt.VIR_DOMAIN_PAUSED: "paused",
    libvirt.VIR_DOMAIN_SHUTDOWN: "shutting down",
    libvirt.VIR_DOMAIN_SHUTOFF: "shut off",
    libvirt.VIR_DOMAIN_CRASHED: "crashed",
    libvirt.VIR_DOMAIN_PMSUSPENDED: "suspended",
}
# A guest whose display can be shown (a paused guest still has a frozen screen).
_DISPLAY_STATES = {libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_BLOCKED, libvirt.VIR_DOMAIN_PAUSED}


@dataclass(frozen=True)
class GraphicsInfo:
    """One <graphics> device of a running guest as QEMU actually uses it (live XML)."""

    type: str  # vnc, spice, ...
    port: int | None  # None or -1 while not assigned
    tls_port: int | None
    listen: str | None  # the address QEMU listens on, on the guest's host
    listen_type: str | None  # address, network, socket, none
    passwd: str | None = field(default=None, repr=False)  # never logged


@dataclass(frozen=True)
class ConsoleInfo:
    uuid: str
    name: str
    state: str
    displayable: bool  # running or paused: a screen exists
    graphics: tuple[GraphicsInfo, ...]
    has_serial: bool

    def first(self, kind: str) -> GraphicsInfo | None:
        return next((g for g in self.graphics if g.type == kind), None)


def _console_info(dom: libvirt.virDomain) -> ConsoleInfo:
    state = dom.state()[0]
    # SECURE: the VNC password is part of the answer; it goes to the proxy, never to a browser.
    xml = Domain.parse(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_SECURE))
    graphics = tuple(
        GraphicsInfo(type=g.type or "", port=g.port, tls_port=g.tls_port, listen=g.listen,
                     listen_type=g.listen_type or ("address" if g.listen else None), passwd=g.passwd)
        for g in xml.graphics
    )
    tags = {child.tag for node in xml.element.findall("devices") for child in node}
    return ConsoleInfo(uuid=dom.UUIDString(), name=dom.name(), state=_STATE_NAMES.get(state, "unknown"),
                       displayable=state in _DISPLAY_STATES, graphics=graphics,
                       has_serial=bool(tags & {"serial", "console"}))


def console_info(uri: str, uuid: str) -> ConsoleInfo:
    """The guest's state and graphics from its live XML (raises GuestNotFound, HostUnreachable)."""
    return connections.call(uri, lambda conn: _console_info(conn.lookupByUUIDString(uuid)),
                            what=f"guest {uuid}")


def screenshot(uri: str, uuid: str, *, max_bytes: int = 8 << 20) -> tuple[str, bytes]:
    """A screenshot of the guest's first screen: (mime type, image bytes)."""

    def _shot(conn: libvirt.virConnect) -> tuple[str, bytes]:
        dom = conn.lookupByUUIDString(uuid)
        stream = conn.newStream(0)
        try:
            mime = dom.screenshot(stream, 0, 0) or "application/octet-stream"
            chunks: list[bytes] = []
            size = 0
            while True:
                chunk = stream.recv(262144)
                if not chunk or chunk == -2:
                    break
                size += len(chunk)
                if size > max_bytes:
                    raise VirtError(f"guest {uuid}: screenshot larger than {max_bytes} bytes")
                chunks.append(chunk)
            stream.finish()
            return mime, b"".join(chunks)
        except BaseException:
            try:
                stream.abort()
            except libvirt.libvirtError:
                pass
            raise

    return connections.call(uri, _shot, what=f"screenshot of guest {uuid}")


class SerialStream:
    """A guest's serial console on a private connection; data arrives on libvirt's event thread.

    `on_data(bytes)` and `on_close(reason)` are called from that thread: hand them over to your
    own loop (e.g. `loop.call_soon_threadsafe`). `pause()`/`resume()` stop and restart reading so
    a slow reader applies back-pressure to the guest instead of growing a buffer.
    """

    READ_SIZE = 65536

    def __init__(self, uri: str, uuid: str, *, on_data: Callable[[bytes], None],
                 on_close: Callable[[str], None], force: bool = False, timeout: float = 10):
        self.uri, self.uuid, self.force, self.timeout = uri, uuid, force, timeout
        self.on_data, self.on_close = on_data, on_close
        self._conn: libvirt.virConnect | None = None
        self._stream: libvirt.virStream | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._paused = False

    # -- opening and closing (blocking: run them in a worker thread) ---------------------------
    def open(self) -> None:
        """Open the console; raises Conflict when another session holds it (unless force)."""
        self._conn = connections.open_standalone(self.uri, self.timeout)
        try:
            connections.run_with_timeout(self._open_stream, self.timeout, f"console of guest {self.uuid}")
        except TimeoutError as exc:
            self.close()
            raise VirtError(f"guest {self.uuid}: the console did not open: {exc}") from None
        except libvirt.libvirtError as exc:
            self.close()
            error = translate(exc, f"guest {self.uuid}")
            if "active console session" in (error.detail or "").lower():
                raise Conflict("Another session holds this guest's serial console.", detail=error.detail) from None
            raise error from None
        except BaseException:
            self.close()
            raise

    def _open_stream(self) -> None:
        assert self._conn is not None
        dom = self._conn.lookupByUUIDString(self.uuid)
        stream = self._conn.newStream(libvirt.VIR_STREAM_NONBLOCK)
        flags = libvirt.VIR_DOMAIN_CONSOLE_FORCE if self.force else libvirt.VIR_DOMAIN_CONSOLE_SAFE
        dom.openConsole(None, stream, flags)
        self._stream = stream
        stream.eventAddCallback(self._events(reading=True), self._on_event, None)

    @staticmethod
    def _events(*, reading: bool) -> int:
        events = libvirt.VIR_STREAM_EVENT_ERROR | libvirt.VIR_STREAM_EVENT_HANGUP
        return events | libvirt.VIR_STREAM_EVENT_READABLE if reading else events

    def close(self, reason: str = "") -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            stream, conn = self._stream, self._conn
            self._stream = self._conn = None
        if stream is not None:
            for step in (stream.eventRemoveCallback, stream.abort):
                try:
                    step()
                except libvirt.libvirtError:
                    pass
        if conn is not None:
            connections.close_in_background(conn)

    # -- data ------------------------------------------------------------------------------------
    def write(self, data: bytes) -> int:
        """Send what the stream takes now; returns the number of bytes taken (0: try later)."""
        with self._lock:
            stream = self._stream
            if stream is None:
                raise VirtError("the console is closed")
            try:
                sent = stream.send(data)
            except libvirt.libvirtError as exc:
                raise translate(exc, f"console of guest {self.uuid}") from None
        return 0 if sent == -2 else int(sent)

    def pause(self) -> None:
        self._set_reading(False)

    def resume(self) -> None:
        self._set_reading(True)

    def _set_reading(self, reading: bool) -> None:
        with self._lock:
            if self._stream is None or self._paused == (not reading):
                return
            self._paused = not reading
            try:
                self._stream.eventUpdateCallback(self._events(reading=reading))
            except libvirt.libvirtError:
                pass

    def _on_event(self, stream: libvirt.virStream, events: int, _opaque) -> None:
        if events & libvirt.VIR_STREAM_EVENT_READABLE:
            while not self._paused:
                try:
                    data = stream.recv(self.READ_SIZE)
                except libvirt.libvirtError as exc:
                    self._finish(f"console error: {exc.get_error_message()}")
                    return
                if data == -2:
                    break
                if not data:
                    self._finish("the console was closed by the host (the guest stopped or another session took over)")
                    return
                self.on_data(data)
        if events & (libvirt.VIR_STREAM_EVENT_ERROR | libvirt.VIR_STREAM_EVENT_HANGUP):
            self._finish("the console was closed by the host (the guest stopped or another session took over)")

    def _finish(self, reason: str) -> None:
        if self._closed:
            return
        try:
            self.on_close(reason)
        finally:
            self.close()


__all__ = ["ConsoleInfo", "GraphicsInfo", "SerialStream", "console_info", "screenshot"]

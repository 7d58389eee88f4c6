"""Serial console WebSocket: /ws/consoles/<guest uuid>/serial/[?force=1] ↔ the guest's console stream.

Browser → server: binary frames are keystrokes. Server → browser: binary frames are console
output; text frames are JSON status ({"status": ...} or {"error": ..., "code": ...}).
Authorised by the session cookie, the Origin check and the same policy as the VNC console
(Action.CONSOLE; taking over another session needs Action.OPERATE).

Output waits in a queue bounded by `conf.SERIAL_HIGH_WATER`: above it we stop reading the
libvirt stream (the guest's serial port then waits), below a quarter of it we read again.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import time
from urllib.parse import parse_qs

from channels.db import database_sync_to_async

from consoles import checks, conf, sessions
from core.choices import AuditResult
from hosts.virt.consoles import SerialStream
from hosts.virt.errors import Conflict, GuestNotFound, HostUnreachable, VirtError

log = logging.getLogger(__name__)
MAX_INPUT = 65536


class _Gone(Exception):
    pass


@database_sync_to_async
def _authorise(user, uuid: str, force: bool):
    """(guest, uri, refusal text or '') — and one audit entry for the attempt."""
    from core import audit
    from core.policy import Action, can, visible_guests

    guest = visible_guests(user).filter(uuid=uuid).select_related("host").first()
    if guest is None:
        audit.record(user, "console.serial", result=AuditResult.DENIED, detail="guest not visible",
                     target_type="guest", target_id=uuid[:64], target_name=uuid)
        return None, "", "no such guest"
    if not can(user, Action.CONSOLE, guest) or (force and not can(user, Action.OPERATE, guest)):
        audit.record(user, "console.serial", guest, result=AuditResult.DENIED, detail=f"force={force}")
        return None, "", "not allowed"
    audit.record(user, "console.serial", guest, detail="take over" if force else "")
    return guest, guest.host.uri, ""


class SerialBridge:
    async def __call__(self, scope, receive, send):
        if scope["type"] != "websocket":
            return
        if (await receive())["type"] != "websocket.connect":
            return
        await _SerialSession(scope, receive, send).run()


class _SerialSession:
    def __init__(self, scope, receive, send):
        self.scope, self._receive, self._send = scope, receive, send
        self.user = scope.get("user")
        self.uuid = str(scope.get("url_route", {}).get("kwargs", {}).get("uuid", ""))
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        self.force = query.get("force", ["0"])[0] == "1"
        self.loop = asyncio.get_running_loop()
        self.output: collections.deque[bytes] = collections.deque()
        self.queued = 0
        self.wakeup = asyncio.Event()
        self.ended: str | None = None
        self.last_input = time.monotonic()
        self.stream: SerialStream | None = None
        self.closed = False

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if not self.closed:
            self.closed = True
            with contextlib.suppress(Exception):
                await self._send({"type": "websocket.close", "code": code, "reason": reason[:120]})

    async def status(self, **data) -> None:
        await self._send({"type": "websocket.send", "text": json.dumps(data)})

    async def run(self) -> None:
        if self.user is None or not self.user.is_authenticated or not checks.origin_ok(self.scope):
            await self.close(4403)
            return
        guest, uri, refusal = await _authorise(self.user, self.uuid, self.force)
        self.guest = guest
        if refusal:
            await self.close(4403)
            return
        session_id = await sessions.acquire(self.user.pk)
        if session_id is None:
            await self.close(4403)
            return
        await self._send({"type": "websocket.accept"})
        try:
            await asyncio.wait_for(self.serve(uri), conf.ABSOLUTE_TIMEOUT)
        except TimeoutError:
            await self.status(error="The console session reached its time limit.", code="timeout")
        except (_Gone, OSError):
            pass
        finally:
            await sessions.release(self.user.pk, session_id)
            if self.stream is not None:
                await asyncio.to_thread(self.stream.close)
            await self.close()

    async def serve(self, uri: str) -> None:
        self.stream = SerialStream(uri, self.uuid, on_data=self._from_libvirt, on_close=self._closed_by_libvirt,
                                   force=self.force)
        try:
            await asyncio.to_thread(self.stream.open)
        except Conflict:
            self.stream = None
            await self.status(error="Another session is using this serial console.", code="busy")
            return
        except (GuestNotFound, HostUnreachable, VirtError) as exc:
            self.stream = None
            await self.status(error=_explain(exc), code="unavailable")
            return
        await self.status(status="connected", forced=self.force)
        jobs = (self.upstream, self.downstream, self.idle_watch, self.policy_watch)
        tasks = [asyncio.create_task(job()) for job in jobs]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    # -- libvirt's event thread hands data over here -------------------------------------------
    def _from_libvirt(self, data: bytes) -> None:
        self.loop.call_soon_threadsafe(self._push, data)

    def _closed_by_libvirt(self, reason: str) -> None:
        self.loop.call_soon_threadsafe(self._end, reason)

    def _push(self, data: bytes) -> None:
        self.output.append(data)
        self.queued += len(data)
        if self.queued > conf.SERIAL_HIGH_WATER and self.stream is not None:
            self.stream.pause()
        self.wakeup.set()

    def _end(self, reason: str) -> None:
        self.ended = reason
        self.wakeup.set()

    # -- pumps --------------------------------------------------------------------------------------
    async def downstream(self) -> None:
        while True:
            await self.wakeup.wait()
            self.wakeup.clear()
            while self.output:
                data = self.output.popleft()
                self.queued -= len(data)
                await self._send({"type": "websocket.send", "bytes": data})
                if self.queued < conf.SERIAL_HIGH_WATER // 4 and self.stream is not None:
                    self.stream.resume()
            if self.ended:
                await self.status(error=f"Disconnected: {self.ended}.", code="closed")
                return

    async def upstream(self) -> None:
        while True:
            message = await self._receive()
            if message["type"] == "websocket.disconnect":
                raise _Gone()
            data = message.get("bytes")
            if data is None:
                continue  # text frames are reserved for control messages; none are needed yet
            if len(data) > MAX_INPUT:
                await self.status(error="Pasted text too long; paste less at a time.", code="too_long")
                continue
            self.last_input = time.monotonic()
            while data:
                sent = await asyncio.to_thread(self.stream.write, data)
                data = data[sent:]
                if data:
                    await asyncio.sleep(0.01)

    async def policy_watch(self) -> None:
        from consoles.services import still_allowed

        while True:
            await asyncio.sleep(conf.RECHECK_SECONDS)
            allowed = await database_sync_to_async(still_allowed)(self.user.pk, self.guest.host_id, self.uuid, "full")
            if not allowed:
                await self.status(error="Your permission for this console was withdrawn.", code="revoked")
                return

    async def idle_watch(self) -> None:
        while True:
            left = self.last_input + conf.IDLE_TIMEOUT - time.monotonic()
            if left <= 0:
                await self.status(error="Closed after being idle for too long.", code="idle")
                return
            await asyncio.sleep(min(left, 30))


def _explain(exc: Exception) -> str:
    if isinstance(exc, GuestNotFound):
        return "The guest no longer exists."
    if isinstance(exc, HostUnreachable):
        return f"The host is unreachable: {exc.detail or exc}"
    text = str(exc)
    if "not running" in text.lower() or "inactive" in text.lower():
        return "The guest is not running: start it to use its serial console."
    return f"The serial console cannot be opened: {text}"

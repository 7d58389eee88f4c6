"""The VNC console proxy: WebSocket /websockify/<guest uuid> on the dashboard's own origin → VNC TCP.

It runs inside the ASGI web process (routed by Channels, behind its session auth middleware),
so one reverse-proxy rule for the site also carries consoles. Each connection must present a
one-time token (subprotocol `vd-token.<token>`, so it never appears in a logged URL); the
target comes only from that token. The proxy authenticates to the VNC server itself (the
guest's XML password) and offers the browser security None.

Memory per session is bounded: we read at most `conf.CHUNK` from the target and await each
send to the browser (the server's transport pauses us at its 64 KiB high-water mark), and the
ASGI server stops reading the browser until we took its last message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from channels.db import database_sync_to_async

from consoles import checks, conf, rfb, sessions, tokens
from consoles.tunnel import Link, TargetUnreachable, open_link
from core.choices import AuditResult
from hosts.virt.ssh import explain

log = logging.getLogger(__name__)


class Refused(Exception):
    """Refuse the WebSocket handshake (HTTP 403); `detail` goes to the audit log."""

    def __init__(self, detail: str, audit: bool = True):
        super().__init__(detail)
        self.detail, self.audit = detail, audit


class ClientGone(Exception):
    pass


@database_sync_to_async
def _audit(user, guest_uuid: str, result: str, detail: str) -> None:
    from core import audit
    from guests.models import Guest

    guest = Guest.objects.filter(uuid=guest_uuid).first()
    if guest is not None:
        audit.record(user, "console.vnc", guest, result=result, detail=detail)
    else:
        audit.record(user, "console.vnc", result=result, detail=detail, target_type="guest",
                     target_id=guest_uuid[:64], target_name=guest_uuid)


@database_sync_to_async
def _still_allowed(grant: tokens.ConsoleGrant) -> bool:
    from consoles.services import still_allowed

    return still_allowed(grant.user_id, grant.host_id, grant.guest_uuid, grant.mode)


class VncProxy:
    """ASGI application for one WebSocket route; one `_Session` per connection."""

    async def __call__(self, scope, receive, send):
        if scope["type"] != "websocket":
            return
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        await _Session(scope, receive, send).run()


class _Session:
    def __init__(self, scope, receive, send):
        self.scope, self._receive, self._send = scope, receive, send
        self.user = scope.get("user")
        self.guest_uuid = str(scope.get("url_route", {}).get("kwargs", {}).get("uuid", ""))
        self.last_input = time.monotonic()
        self.session_id: str | None = None
        self.closed = False

    # -- the WebSocket side ----------------------------------------------------------------------
    async def send_bytes(self, data: bytes) -> None:
        await self._send({"type": "websocket.send", "bytes": data})

    async def next_message(self) -> bytes:
        message = await self._receive()
        if message["type"] == "websocket.disconnect":
            raise ClientGone()
        data = message.get("bytes")
        if data is None:
            data = (message.get("text") or "").encode()
        if len(data) > conf.MAX_CLIENT_MESSAGE:
            raise rfb.RfbError("client message too large")
        self.last_input = time.monotonic()
        return data

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if not self.closed:
            self.closed = True
            with contextlib.suppress(Exception):
                await self._send({"type": "websocket.close", "code": code, "reason": reason[:120]})

    # -- the session -----------------------------------------------------------------------------
    async def run(self) -> None:
        try:
            grant = await self.authorise()
        except Refused as refusal:
            log.info("console refused for %s: %s", getattr(self.user, "pk", None), refusal.detail)
            if refusal.audit:
                await _audit(self.user, self.guest_uuid, AuditResult.DENIED, refusal.detail)
            await self.close(4403)  # before accept: the handshake fails with HTTP 403
            return
        except Exception:  # Redis or the database failing: refuse, never proxy unchecked
            log.exception("console authorisation failed for guest %s", self.guest_uuid)
            await self.close(4500)
            return
        await self._send({"type": "websocket.accept", "subprotocol": checks.reply_protocol(self.scope)})
        try:
            await asyncio.wait_for(self.serve(grant), conf.ABSOLUTE_TIMEOUT)
        except TimeoutError:
            await self.close(4408, "console session time limit reached")
        except ClientGone:
            pass
        finally:
            if self.session_id:
                await sessions.release(grant.user_id, self.session_id)
            await self.close()

    async def authorise(self) -> tokens.ConsoleGrant:
        if self.user is None or not self.user.is_authenticated:
            raise Refused("not logged in", audit=False)
        if not checks.origin_ok(self.scope):
            raise Refused(f"foreign or missing Origin {checks.headers(self.scope).get('origin', '')!r}")
        if self.scope.get("query_string"):
            # The target comes from the token only: a client naming host, port or anything else is refused.
            raise Refused("the client supplied connection parameters")
        token = checks.token_from_protocols(self.scope)
        if not token:
            raise Refused("no console token presented")
        grant = await tokens.aconsume(token)
        if grant is None:
            raise Refused("unknown, expired or already used console token")
        if grant.user_id != self.user.pk:
            raise Refused("console token issued to another user")
        if grant.guest_uuid != self.guest_uuid:
            raise Refused(f"console token issued for guest {grant.guest_uuid}")
        if not await _still_allowed(grant):
            raise Refused("permission for this console was withdrawn")
        self.session_id = await sessions.acquire(self.user.pk)
        if self.session_id is None:
            raise Refused(f"more than {conf.MAX_SESSIONS_PER_USER} console sessions open")
        return grant

    async def serve(self, grant: tokens.ConsoleGrant) -> None:
        self.grant = grant
        client = rfb.ByteQueue(self.next_message)
        try:
            link = await open_link(grant.target)
        except TargetUnreachable as exc:
            await rfb.client_refusal(client, self.send_bytes, f"The guest's display is unreachable: {exc}")
            return
        try:
            try:
                await asyncio.wait_for(rfb.server_handshake(link.reader, link.writer, grant.password),
                                       conf.CONNECT_TIMEOUT)
            except (TimeoutError, asyncio.IncompleteReadError, ConnectionError, rfb.RfbError) as exc:
                await rfb.client_refusal(client, self.send_bytes, await self._why(link, exc))
                return
            try:
                await asyncio.wait_for(rfb.client_handshake(client, self.send_bytes), conf.CONNECT_TIMEOUT * 2)
            except TimeoutError:
                await self.close(4408, "the VNC client did not complete the handshake")
                return
            await self.relay(link, client.drain(), rfb.ViewOnlyFilter() if grant.mode == "view" else None)
        finally:
            await link.close()

    async def _why(self, link: Link, exc: Exception) -> str:
        if isinstance(exc, rfb.RfbError):
            return f"The guest's VNC server: {exc}"
        detail = explain(await link.ssh_error())  # ssh's banners and channel errors, made readable
        if detail:
            return f"The SSH tunnel to the host failed: {detail}"
        if isinstance(exc, asyncio.TimeoutError):
            return "The guest's VNC server did not answer in time."
        return "The guest's VNC server closed the connection (the guest may have stopped)."

    async def relay(self, link: Link, pending: bytes, view_filter: rfb.ViewOnlyFilter | None) -> None:
        async def upstream() -> None:
            data = pending
            while True:
                if view_filter is not None:
                    data = view_filter.feed(data)
                if data:
                    link.writer.write(data)
                    await link.writer.drain()  # back-pressure: the browser waits while QEMU is slow
                data = await self.next_message()

        async def downstream() -> None:
            while True:
                data = await link.reader.read(conf.CHUNK)
                if not data:
                    await self.close(1000, "the VNC server closed the connection")
                    return
                await self.send_bytes(data)  # waits while the browser's socket buffer is full

        async def idle_watch() -> None:
            while True:
                left = self.last_input + conf.IDLE_TIMEOUT - time.monotonic()
                if left <= 0:
                    await self.close(4408, "idle for too long")
                    return
                await asyncio.sleep(min(left, 30))

        async def policy_watch() -> None:
            while True:
                await asyncio.sleep(conf.RECHECK_SECONDS)
                if not await _still_allowed(self.grant):
                    await self.close(4403, "permission withdrawn")
                    return

        tasks = [asyncio.create_task(job()) for job in (upstream, downstream, idle_watch, policy_watch)]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                exc = task.exception()
                if isinstance(exc, rfb.RfbError):
                    await self.close(4400, str(exc))
                elif exc is not None and not isinstance(exc, (ClientGone, OSError)):
                    log.warning("console relay for guest %s ended: %r", self.guest_uuid, exc)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

"""Volume uploads as a raw ASGI endpoint: refuse before reading, then stream with back-pressure.

Django's ASGI handler reads a request body in full (spooling past 2.5 MiB to a temporary file)
before any middleware or view runs: a 4 GiB ISO needed 4 GiB of temporary disk on the web host
and was read even from a user who may not upload. So ``route_uploads`` answers
``POST /hosts/<pk>/storage/<pool>/upload/?name=…&format=…`` itself, ahead of Django (the page
at the same URL, GET, stays a Django view), in this order:

1. session cookie → user, through Django's session engine and auth backends (401 if anonymous);
2. CSRF exactly as Django checks it: ``CsrfViewMiddleware`` (Origin, and Referer on HTTPS; the
   ``X-CSRFToken`` header against the ``csrftoken`` cookie) (403);
3. ``core.policy`` MANAGE on the host (403, denial audited); name, format and size validated
   (400/411/413/415); the volume created and its libvirt stream opened (pool, clash, free space);

and only then reads the body. Every refusal is sent without reading a byte of it, with
``Connection: close`` so the client stops sending. The body moves ≤ 1 MiB at a time: the next
piece is received only after libvirt took the previous one, so memory stays at about two chunks
whatever the file size, and the browser's progress bar follows what libvirt accepted. A disconnect, a stall longer than
``VIRTDASH_UPLOAD_IDLE_SECONDS`` (60) or a libvirt failure aborts the stream and deletes the partial
volume; every outcome is audited as ``volume.upload``.

Threads: the blocking libvirt calls (open, each chunk, finish, delete) run in ``hosts.transfers``'
own threads; only the short database parts (session, policy, audit) run on asgiref's shared sync
thread, which Channels uses for every WebSocket handshake and the live consumer. A user may run
``VIRTDASH_TRANSFERS_PER_USER`` (4) uploads and downloads at once; one more is refused with 429.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
from dataclasses import dataclass
from importlib import import_module

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import get_user
from django.core import signals
from django.core.exceptions import DisallowedHost
from django.core.handlers.asgi import ASGIRequest
from django.http import QueryDict
from django.middleware.csrf import CsrfViewMiddleware
from django.urls import reverse

from core.policy import Action, can
from hosts import services_storage as services
from hosts import transfers
from hosts.forms_resources import UploadParamsForm
from hosts.models import Host
from hosts.virt import storage
from hosts.virt.errors import Conflict, HostUnreachable, ObjectNotFound, VirtError
from virtdash.xml.names import validate_pool_name

log = logging.getLogger(__name__)

UPLOAD_PATH = re.compile(r"/hosts/(?P<pk>[0-9]+)/storage/(?P<pool>[^/]+)/upload/")
CHUNK = storage.CHUNK
# A browser that sends nothing for this long has gone (a laptop lid closed): abort and clean up.
# VIRTDASH_UPLOAD_IDLE_SECONDS, by default VIRTDASH_TRANSFER_IDLE_SECONDS (read in hosts/transfers.py).
IDLE_SECONDS = transfers.UPLOAD_IDLE_SECONDS


def route_uploads(django_app):
    """The HTTP application: volume uploads here, everything else to ``django_app``."""

    async def app(scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "POST":
            match = UPLOAD_PATH.fullmatch(_path(scope))
            if match:
                return await upload(scope, receive, send, int(match["pk"]), match["pool"])
        return await django_app(scope, receive, send)

    return app


def _path(scope) -> str:
    path, root = scope["path"], scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root) else path


class Refusal(Exception):
    """Refused before the body was read: HTTP ``status`` and a message for the page."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


@dataclass
class Accepted:
    user: object
    host: Host
    pool: str
    name: str
    format: str
    length: int


class _CsrfCheck(CsrfViewMiddleware):
    """Django's own checks; a rejection returns its reason instead of rendering the failure page."""

    def _reject(self, request, reason):
        log.warning("Forbidden (%s): %s", reason, request.path)
        return reason


def _csrf_exempt_no(_request):  # the "view" handed to the CSRF check: not exempt
    return None


def _authorise(scope, pk: int, pool: str) -> Accepted:
    """Everything decided before the body is read (runs in Django's sync thread)."""
    try:
        return _decide(ASGIRequest(scope, io.BytesIO()), pk, pool)
    finally:
        _request_finished()


def _decide(request: ASGIRequest, pk: int, pool: str) -> Accepted:
    engine = import_module(settings.SESSION_ENGINE)
    request.session = engine.SessionStore(request.COOKIES.get(settings.SESSION_COOKIE_NAME))
    user = get_user(request)
    if not user.is_authenticated:
        raise Refusal(401, "Log in first.")
    request.POST = QueryDict()  # the body is the file, never a form: the token comes from the header
    csrf = _CsrfCheck(_csrf_exempt_no)
    try:
        csrf.process_request(request)
        reason = csrf.process_view(request, _csrf_exempt_no, (), {})
    except DisallowedHost as exc:
        raise Refusal(400, str(exc)) from None
    if reason is not None:
        raise Refusal(403, f"CSRF check failed ({reason}); reload the page and try again.")
    host = Host.objects.filter(pk=pk).first()
    if host is None:
        raise Refusal(404, "There is no such host.")
    name = request.GET.get("name", "")
    if not can(user, Action.MANAGE, host):
        services.audit_denied(user, "volume.upload", host, pool, name[:200])
        raise Refusal(403, "You may not change storage on this host.")
    try:
        return _check_request(request, user, host, pool)
    except Refusal as refusal:
        services.audit_refused(user, "volume.upload", host, pool, name[:200], refusal.message)
        raise


def _check_request(request: ASGIRequest, user, host: Host, pool: str) -> Accepted:
    try:
        validate_pool_name(pool)
    except ValueError as exc:
        raise Refusal(400, str(exc)) from None
    params = UploadParamsForm(request.GET)
    if not params.is_valid():
        raise Refusal(400, " ".join(str(e) for errors in params.errors.values() for e in errors))
    if request.content_type != "application/octet-stream":
        raise Refusal(415, "Send the file as application/octet-stream.")
    if "HTTP_TRANSFER_ENCODING" in request.META or not request.META.get("CONTENT_LENGTH"):
        raise Refusal(411, "Send the file with its length (Content-Length).")
    try:
        length = int(request.META["CONTENT_LENGTH"])
    except ValueError:
        raise Refusal(400, "Content-Length is not a number.") from None
    if length <= 0:
        raise Refusal(400, "The file is empty.")
    try:
        storage.validate_capacity(length)
    except ValueError as exc:
        raise Refusal(413, str(exc)) from None
    return Accepted(user, host, pool, params.cleaned_data["name"], params.cleaned_data["format"], length)


def _status_for(exc: Exception) -> int:
    if isinstance(exc, storage.NotEnoughSpace):
        return 413
    if isinstance(exc, ObjectNotFound):
        return 404
    if isinstance(exc, Conflict):
        return 409
    if isinstance(exc, HostUnreachable):
        return 502
    return 400


async def _respond(send, status: int, payload: dict, *, close: bool = False) -> None:
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"cache-control", b"no-store"), (b"x-content-type-options", b"nosniff")]
    if close:
        headers.append((b"connection", b"close"))  # the unread body is not wanted: stop the client
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _request_finished() -> None:
    """What Django does after each request: close stale database connections (and so on)."""
    signals.request_finished.send(sender=route_uploads)


def _in_db_thread(fn):
    """Run fn on Django's sync thread, then tidy up as after a request."""
    def run(*args):
        try:
            return fn(*args)
        finally:
            _request_finished()

    return sync_to_async(run)


class ClientGone(Exception):
    """The browser went away (no answer possible) or stalled (answered 408)."""

    def __init__(self, message: str, *, stalled: bool = False):
        super().__init__(message)
        self.stalled = stalled


async def upload(scope, receive, send, pk: int, pool: str) -> None:
    try:
        accepted = await sync_to_async(_authorise)(scope, pk, pool)
    except Refusal as refusal:
        return await _respond(send, refusal.status, {"error": refusal.message}, close=True)
    user, host = accepted.user, accepted.host
    try:
        slot = await transfers.blocking(transfers.acquire, user.pk)
    except transfers.TransferRefused as refused:
        await _in_db_thread(services.audit_refused)(user, "volume.upload", host, pool, accepted.name, refused.message)
        return await _respond(send, refused.status, {"error": refused.message}, close=True)
    try:
        await _upload(receive, send, accepted, slot)
    finally:
        await asyncio.shield(transfers.blocking(slot.release))


async def _upload(receive, send, accepted: Accepted, slot: transfers.Slot) -> None:
    user, host, pool = accepted.user, accepted.host, accepted.pool
    try:  # libvirt: connect, check the pool, create the volume, open the stream (off the DB thread)
        transfer = await transfers.blocking(
            lambda: storage.open_upload(host.uri, pool, accepted.name, accepted.length, format=accepted.format))
    except (VirtError, ValueError) as exc:
        await _in_db_thread(services.audit_refused)(user, "volume.upload", host, pool, accepted.name, str(exc))
        return await _respond(send, _status_for(exc), {"error": str(exc)}, close=True)
    if not await _receive_into(receive, send, transfer, user, host, slot):
        return None
    try:
        volume = await transfers.blocking(transfer.finish)  # deletes the volume itself on failure
    except (VirtError, ValueError) as exc:
        await _in_db_thread(services.upload_failed)(user, host, transfer, str(exc))
        return await _respond(send, _status_for(exc), {"error": str(exc)})
    await _in_db_thread(services.upload_finished)(user, host, transfer, accepted.format)
    await _respond(send, 200, {"ok": True, "volume": volume.name, "capacity": volume.capacity,
                               "message": f"Uploaded {volume.name} ({accepted.length} bytes) to {pool}.",
                               "pool_url": reverse("resources:pool", args=[host.pk, pool])})


async def _abandon(user, host: Host, transfer: storage.Upload, reason: str) -> None:
    """Delete the partial volume (libvirt, off the DB thread), then audit (DB thread)."""
    await transfers.blocking(transfer.abort)
    await _in_db_thread(services.upload_failed)(user, host, transfer, reason)


async def _receive_into(receive, send, transfer: storage.Upload, user, host: Host,
                        slot: transfers.Slot | None = None) -> bool:
    """Pump the body into libvirt; on any failure delete the partial volume, audit, answer if
    the browser is still there, and return False."""
    try:
        await _pump(receive, transfer, slot)
        return True
    except ClientGone as gone:
        await _abandon(user, host, transfer, str(gone))
        if gone.stalled:
            await _respond(send, 408, {"error": f"The upload stalled: {gone}."}, close=True)
    except (VirtError, ValueError) as exc:
        await _abandon(user, host, transfer, str(exc))
        await _respond(send, _status_for(exc), {"error": str(exc)}, close=True)
    except BaseException as exc:  # cancelled by the server, or a bug: never keep half a volume
        await asyncio.shield(_abandon(user, host, transfer, f"internal error: {exc!r}"))
        raise
    return False


async def _pump(receive, transfer: storage.Upload, slot: transfers.Slot | None = None) -> None:
    """Body → libvirt, ≤ 1 MiB at a time; the next piece is received only once libvirt took the last.

    While we write, the server stops reading the socket once its small buffer is full (uvicorn:
    64 KiB), so TCP slows the browser down to libvirt's pace.
    """
    idle = IDLE_SECONDS
    pieces: list[bytes] = []
    held = received = 0
    more = True
    while more:
        try:
            message = await asyncio.wait_for(receive(), idle)
        except TimeoutError:
            raise ClientGone(f"the browser sent nothing for {idle} s after {received} of "
                             f"{transfer.length} bytes; nothing was kept", stalled=True) from None
        if message["type"] == "http.disconnect":
            raise ClientGone(f"the browser went away after {received} of {transfer.length} bytes; "
                             "nothing was kept")
        body = message.get("body", b"")
        more = message.get("more_body", False)
        received += len(body)
        if body:
            pieces.append(body)
            held += len(body)
        if held >= CHUNK or (held and not more):
            data = b"".join(pieces)
            pieces.clear()
            held = 0
            await transfers.blocking(_write, transfer, slot, data)
            del data


def _write(transfer: storage.Upload, slot: transfers.Slot | None, data: bytes) -> None:
    transfer.write(data)
    if slot is not None:
        slot.renew()

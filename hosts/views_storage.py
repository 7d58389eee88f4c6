"""Storage pages: thin views over hosts.services_storage. VIEW to see, MANAGE to change (denials
audited); changes only over POST; libvirt failures and refused input become messages, never 500s."""

from __future__ import annotations

import asyncio
import logging

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core.choices import JobStatus
from core.jobs import JobRefused
from core.models import Job
from core.policy import Action, can, require
from core.templatetags.virtdash import bytes as human_bytes
from hosts import resource_lists, transfers
from hosts import services_storage as services
from hosts.forms_resources import CloneForm, PoolForm, ResizeForm, VolumeForm
from hosts.models import Host
from hosts.virt.errors import ObjectNotFound, VirtError

REFUSED = (VirtError, ValueError, JobRefused)
log = logging.getLogger(__name__)


def _host(request, pk: int, *, manage: bool = False, action: str = "", pool: str = "", volume: str = "") -> Host:
    host = get_object_or_404(Host, pk=pk)
    if not manage:
        require(request.user, Action.VIEW, host)
    elif not can(request.user, Action.MANAGE, host):
        services.audit_denied(request.user, action, host, pool, volume)
        raise PermissionDenied("You may not change storage on this host.")
    return host


def _pool_url(host: Host, pool: str) -> str:
    return reverse("resources:pool", args=[host.pk, pool])


def _back(host: Host, pool: str) -> HttpResponseRedirect:
    return redirect(_pool_url(host, pool))


def _first_error(form) -> str:
    return " ".join(str(e) for errors in form.errors.values() for e in errors)


# --------------------------------------------------------------------------- pools


@require_GET
def pool_list(request, pk: int):
    """The page, or with ?partial=table only its table (the live fragment; same permission)."""
    return resource_lists.render_list(request, _host(request, pk),
                                      read=services.pools, key="pools", what="storage pools",
                                      page="hosts/storage/pool_list.html",
                                      table="hosts/storage/partials/_pool_table.html")


@require_http_methods(["GET", "POST"])
def pool_add(request, pk: int):
    host = _host(request, pk, manage=True, action="pool.create")
    form = PoolForm(request.POST or None, allowed_paths=services.pool_paths_for(request.user, host))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            pool = services.create_pool(request.user, host, type=data["type"], name=data["name"],
                                        autostart=data["autostart"], **form.parts())
        except REFUSED as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"Created storage pool {pool.name}.")
            return _back(host, pool.name)
    if form.location_refused:  # a try outside VIRTDASH_POOL_PATHS is worth an audit entry
        services.audit_refused(request.user, "pool.create", host, str(form.cleaned_data.get("name", "")), "",
                               form.location_refused)
    return render(request, "hosts/storage/pool_form.html", {"host": host, "form": form})


def _storage_jobs(host: Host, pool: str):
    return Job.objects.filter(host=host, kind__in=services.VOLUME_JOB_KINDS, params__pool=pool).order_by("-id")[:5]


@require_GET
def pool_detail(request, pk: int, pool: str):
    """The page, or a live fragment of it (same permission): ?partial=volumes (jobs and volumes) or
    ?partial=state (state and capacity). A fragment answers 200 with a message when the pool is gone."""
    host = _host(request, pk)
    partial = request.GET.get("partial", "")
    try:
        info, volumes = services.pool_with_volumes(host, pool)
    except ObjectNotFound:
        missing = f"There is no storage pool {pool!r} on {host.name}."
    except VirtError as exc:
        missing = f"Could not read storage pool {pool}: {exc}"
    else:
        context = {"host": host, "pool": info, "volumes": volumes, "can_manage": can(request.user, Action.MANAGE, host),
                   "jobs": _storage_jobs(host, pool), "volume_form": VolumeForm(), "running": JobStatus.RUNNING}
        if partial == "state":
            return render(request, "hosts/storage/partials/_pool_facts.html", context)
        if partial:
            return render(request, "hosts/storage/partials/_volumes.html", context)
        return render(request, "hosts/storage/pool_detail.html", context)
    if partial:
        return render(request, "hosts/storage/partials/_pool_facts.html", {"host": host, "missing": missing})
    messages.error(request, missing)
    return redirect("resources:storage", pk=host.pk)


@require_POST
def pool_action(request, pk: int, pool: str):
    action = request.POST.get("action", "")[:32]
    host = _host(request, pk, manage=True, action=f"pool.{action or 'action'}", pool=pool)
    try:
        messages.success(request, services.pool_action(request.user, host, pool, action))
    except REFUSED as exc:
        messages.error(request, str(exc))
    return _back(host, pool)


@require_POST
def pool_delete(request, pk: int, pool: str):
    host = _host(request, pk, manage=True, action="pool.delete", pool=pool)
    try:
        wipe = bool(request.POST.get("delete_storage"))
        message = services.delete_pool(request.user, host, pool, delete_storage=wipe)
    except REFUSED as exc:
        messages.error(request, str(exc))
        return _back(host, pool)
    messages.success(request, message)
    return redirect("resources:storage", pk=host.pk)


# --------------------------------------------------------------------------- volumes


def _volume_action(request, host: Host, pool: str, form, act) -> HttpResponseRedirect:
    """Validate `form` (if any), run `act(cleaned_data)` → (message level, text); refusals become errors."""
    if form is not None and not form.is_valid():
        messages.error(request, _first_error(form))
        return _back(host, pool)
    try:
        level, text = act(form.cleaned_data if form is not None else {})
    except REFUSED as exc:
        messages.error(request, str(exc))
    else:
        level(request, text)
    return _back(host, pool)


@require_POST
def volume_add(request, pk: int, pool: str):
    host = _host(request, pk, manage=True, action="volume.create", pool=pool)

    def act(data):
        job = services.queue_create_volume(request.user, host, pool, data["name"], data["capacity"], data["format"])
        return messages.info, f"Creating volume {data['name']} (job #{job.pk})."

    return _volume_action(request, host, pool, VolumeForm(request.POST), act)


@require_POST
def volume_resize(request, pk: int, pool: str, volume: str):
    host = _host(request, pk, manage=True, action="volume.resize", pool=pool, volume=volume)

    def act(data):
        vol = services.resize_volume(request.user, host, pool, volume, data["capacity"])
        return messages.success, f"Volume {vol.name} now holds {human_bytes(vol.capacity)}."

    return _volume_action(request, host, pool, ResizeForm(request.POST), act)


@require_POST
def volume_clone(request, pk: int, pool: str, volume: str):
    host = _host(request, pk, manage=True, action="volume.clone", pool=pool, volume=volume)

    def act(data):
        job = services.queue_clone_volume(request.user, host, pool, volume, data["new_name"])
        return messages.info, f"Cloning {volume} to {data['new_name']} (job #{job.pk})."

    return _volume_action(request, host, pool, CloneForm(request.POST), act)


@require_POST
def volume_delete(request, pk: int, pool: str, volume: str):
    host = _host(request, pk, manage=True, action="volume.delete", pool=pool, volume=volume)

    def act(_data):
        job = services.queue_delete_volume(request.user, host, pool, volume)
        return messages.info, f"Deleting volume {volume} (job #{job.pk})."

    return _volume_action(request, host, pool, None, act)


# --------------------------------------------------------------------------- transfers


@require_GET
def volume_upload(request, pk: int, pool: str):
    """The upload page. The upload itself (POST to this URL) never reaches Django: it is
    hosts.upload_stream's raw ASGI endpoint, which checks everything before reading the body."""
    host = _host(request, pk, manage=True, action="volume.upload", pool=pool)
    return render(request, "hosts/storage/upload.html", {"host": host, "pool": pool})


async def _flow_controlled(download, slot: transfers.Slot | None = None, idle: float | None = None):
    """Serve a download under ASGI with flow control: while one chunk is handed to the server
    (whose send waits while its socket buffer is full), the next is read from libvirt in a
    thread, and no further: at most two chunks are held. The download is closed (after the read
    in progress, which holds its lock) when this generator is closed, or by the watchdog below:
    on a disconnect Django closes only its own wrappers around this generator, which then waits
    at ``yield`` until the watchdog fires (or the garbage collector finds it).

    Idle watchdog: a client that stops reading but keeps its TCP connection open leaves the
    server's send waiting for ever. When the next chunk is not taken within ``idle`` seconds
    (VIRTDASH_TRANSFER_IDLE_SECONDS) the download and its libvirt connection are closed and the
    response is abandoned (the server then drops the connection)."""
    idle = transfers.IDLE_SECONDS if idle is None else idle
    loop = asyncio.get_running_loop()
    sender = asyncio.current_task()  # Django's send_response task, waiting on the socket meanwhile
    stalled = False

    def read():
        future = loop.run_in_executor(transfers.EXECUTOR, _read, download, slot)
        future.add_done_callback(lambda f: f.cancelled() or f.exception())  # retrieved when abandoned
        return future

    def on_idle():
        nonlocal stalled, download, sender
        stalled = True
        log.info("download %s: nothing taken for %s s after %s of %s bytes; closing it", download.name, idle,
                 download.sent, download.length)
        loop.run_in_executor(transfers.EXECUTOR, _close, download, slot)  # frees libvirt whatever happens
        # Django never closes this generator itself (it closes only its own wrappers around it), so
        # it may stay suspended until the garbage collector finds it: hold the libvirt objects no more.
        download = None
        if sender is not None:
            sender.cancel()  # Django treats this as a client that went away; the server drops it
            sender = None

    pending = read()
    try:
        while chunk := await pending:
            pending = read()
            watchdog = loop.call_later(idle, on_idle)
            try:
                yield chunk
            finally:
                watchdog.cancel()
            if stalled:
                return
    finally:
        pending.cancel()  # the thread finishes its read; close() below waits for it
        if download is not None:  # else the watchdog closed it
            await asyncio.shield(loop.run_in_executor(transfers.EXECUTOR, _close, download, slot))


def _read(download, slot: transfers.Slot | None) -> bytes:
    chunk = download.read()
    if slot is not None:
        slot.renew()
    return chunk


def _close(download, slot: transfers.Slot | None) -> None:
    try:
        download.close()
    finally:
        if slot is not None:
            slot.release()


class _Synchronous:
    """Under WSGI: every chunk in turn. ``close()`` (the server calls it however the response
    ended, even unread) closes the download and frees the slot."""

    def __init__(self, download, slot: transfers.Slot):
        self.download, self.slot = download, slot

    def __iter__(self):
        try:
            yield from self.download.chunks()
        finally:
            self.close()

    def close(self) -> None:
        _close(self.download, self.slot)


@require_GET
def volume_download(request, pk: int, pool: str, volume: str):
    host = _host(request, pk, manage=True, action="volume.download", pool=pool, volume=volume)
    try:
        slot = transfers.acquire(request.user.pk)
    except transfers.TransferRefused as refused:
        services.audit_refused(request.user, "volume.download", host, pool, volume, refused.message)
        response = HttpResponse(refused.message, status=refused.status, content_type="text/plain; charset=utf-8")
        response["Retry-After"] = "30"
        return response
    try:
        download = services.open_download(request.user, host, pool, volume)
    except REFUSED as exc:
        slot.release()
        messages.error(request, str(exc))
        return _back(host, pool)
    except BaseException:
        slot.release()
        raise
    content = _flow_controlled(download, slot) if isinstance(request, ASGIRequest) else _Synchronous(download, slot)
    response = StreamingHttpResponse(content, content_type="application/octet-stream")
    response["Content-Length"] = str(download.length)
    response["Content-Disposition"] = content_disposition_header(True, volume)
    return response

"""Console pages and the JSON endpoint that issues VNC console tokens."""

from __future__ import annotations

import json

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from consoles import services
from core import audit
from core.choices import AuditResult
from core.policy import Action, can, require, visible_guests


def _guest(request, uuid: str):
    guest = visible_guests(request.user).filter(uuid=uuid).select_related("host").first()
    if guest is None:
        raise Http404("No such guest.")
    return guest


@require_GET
def vnc_page(request, uuid: str):
    guest = _guest(request, uuid)
    mode = services.best_mode(request.user, guest)
    if mode is None:
        raise PermissionDenied("You may not open this console.")
    problem = services.page_problem(guest)
    return render(request, "consoles/vnc.html", {
        "guest": guest, "mode": mode, "problem": problem,
        "can_serial": can(request.user, Action.CONSOLE, guest),
    })


@require_POST
def vnc_token(request, uuid: str):
    guest = _guest(request, uuid)
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return JsonResponse({"error": "The request is not JSON."}, status=400)
    mode = body.get("mode") if isinstance(body, dict) else None
    if mode is None:
        mode = services.best_mode(request.user, guest) or "full"
    if mode not in ("full", "view"):
        return JsonResponse({"error": "mode must be 'full' or 'view'."}, status=400)
    try:
        answer = services.issue_vnc_token(request.user, guest, mode)
    except services.ConsoleUnavailable as exc:
        return JsonResponse({"error": exc.reason, "code": exc.code}, status=exc.status)
    response = JsonResponse(answer)
    response["Cache-Control"] = "no-store"
    return response


@require_GET
def serial_page(request, uuid: str):
    guest = _guest(request, uuid)
    if not can(request.user, Action.CONSOLE, guest):
        audit.record(request.user, "console.serial", guest, result=AuditResult.DENIED, detail="page")
        raise PermissionDenied("You may not open this console.")
    return render(request, "consoles/serial.html", {
        "guest": guest, "can_take_over": can(request.user, Action.OPERATE, guest),
        "can_vnc": services.best_mode(request.user, guest) is not None,
    })


@require_GET
@never_cache
def thumbnail(request, uuid: str):
    guest = _guest(request, uuid)
    require(request.user, Action.VIEW, guest)
    if not guest.is_active:
        raise Http404("The guest is not running.")
    png = services.thumbnail(guest)
    if png is None:
        raise Http404("No screenshot.")
    response = HttpResponse(png, content_type="image/png")
    response["Cache-Control"] = f"private, max-age={services.conf.THUMBNAIL_SECONDS}"
    return response


@require_POST
def spice_file(request, uuid: str):
    guest = _guest(request, uuid)
    if not can(request.user, Action.CONSOLE, guest):
        audit.record(request.user, "console.spice", guest, result=AuditResult.DENIED)
        raise PermissionDenied("You may not open this console.")
    try:
        text = services.spice_file(guest, request.user)
    except services.ConsoleUnavailable as exc:
        return HttpResponse(exc.reason, status=exc.status, content_type="text/plain; charset=utf-8")
    response = HttpResponse(text, content_type="application/x-virt-viewer")
    response["Content-Disposition"] = 'attachment; filename="console.vv"'
    response["Cache-Control"] = "no-store"
    return response

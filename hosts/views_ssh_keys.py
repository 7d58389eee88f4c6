"""The "Trust this host's key…" page of a qemu+ssh host (admins only).

Two addresses: /hosts/<pk>/ssh-host-key/ for a registered host, /hosts/ssh-host-key/?uri=…&name=…
for the add-host form's "Test connection" (the URI is validated again). GET scans and shows the
fingerprints; POST trusts exactly those (hosts.services_ssh_keys) and reconnects.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from core.policy import Action, can
from hosts import services, services_ssh_keys
from hosts.models import Host
from hosts.ssh_keys import NotSshHost, ScanFailed, target
from hosts.uri import validate_uri

TEMPLATE = "hosts/ssh_host_key.html"


def _require_admin(request, host: Host | None, uri: str) -> None:
    if not can(request.user, Action.ADMIN):
        services.audit_denied(request.user, services_ssh_keys.ACTION, host, detail=uri[:512])
        raise PermissionDenied("Only admins can trust SSH host keys.")


def _not_ssh(request, exc: NotSshHost):
    return render(request, "error.html", {"code": 404, "title": "No SSH host key here", "text": str(exc)},
                  status=404)


def _page(request, *, uri: str, host: Host | None, name: str = ""):
    context = {"host": host, "uri": uri, "name": name, "review": None, "scan_error": ""}
    try:
        context["target"] = target(uri)
        context["review"] = services_ssh_keys.review(uri)
    except NotSshHost as exc:
        return _not_ssh(request, exc)
    except ScanFailed as exc:
        context["scan_error"] = str(exc)
    return render(request, TEMPLATE, context)


def _trust(request, *, uri: str, host: Host | None) -> str | None:
    """The POST: the success message, or None after putting the refusal in the messages."""
    try:
        done = services_ssh_keys.trust(request.user, uri, fingerprints=request.POST.getlist("fingerprint"),
                                       confirm=request.POST.get("confirm", ""), host=host)
    except services_ssh_keys.Refused as exc:
        messages.error(request, str(exc))
        return None
    return done


@require_http_methods(["GET", "POST"])
def host_key(request, pk: int):
    host = get_object_or_404(Host, pk=pk)
    _require_admin(request, host, host.uri)
    try:
        target(host.uri)
    except NotSshHost as exc:
        return _not_ssh(request, exc)
    if request.method == "POST":
        done = _trust(request, uri=host.uri, host=host)
        if done is None:
            return redirect("hosts:ssh_host_key", pk=host.pk)
        if not host.enabled:
            messages.success(request, f"{done} {host.name} is disabled: enable it to connect.")
        elif services_ssh_keys.reconnect(host):
            messages.success(request, f"{done} {host.name} is connected.")
        else:
            messages.warning(request, f"{done} The connection still fails: {host.last_error}")
        return redirect("hosts:detail", pk=host.pk)
    return _page(request, uri=host.uri, host=host)


@require_http_methods(["GET", "POST"])
def new_host_key(request):
    """For a URI being added (not saved yet): back to the add form, filled in, once trusted."""
    data = request.POST if request.method == "POST" else request.GET
    uri, name = data.get("uri", "")[:1024], data.get("name", "")[:64]
    _require_admin(request, None, uri)
    try:
        target(uri)
    except NotSshHost as exc:
        return _not_ssh(request, exc)
    uri = validate_uri(uri)  # valid: target() checked it
    if request.method == "POST":
        done = _trust(request, uri=uri, host=None)
        if done is None:
            return redirect(reverse("hosts:new_ssh_host_key") + "?" + urlencode({"uri": uri, "name": name}))
        ok, message, _ = services.test_connection(uri)
        (messages.success if ok else messages.warning)(request, f"{done} {message}")
        return redirect(reverse("hosts:add") + "?" + urlencode({"uri": uri, "name": name}))
    return _page(request, uri=uri, host=None, name=name)

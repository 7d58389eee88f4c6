"""The "Trust this host's key…" page of a qemu+ssh host (admins only).

Two addresses: /hosts/<pk>/ssh-host-key/ for a registered host, /hosts/ssh-host-key/?uri=…&name=…
for the add-host form's "Test connection" (the URI is validated again). GET only shows the page
and a "Scan the host's keys" button: ssh-keyscan runs on that POST (action=scan, CSRF, audited),
never on a GET, so no link from another site can make an admin's browser probe a host:port.
POST without action=scan trusts exactly the fingerprints shown (hosts.services_ssh_keys) in this
server's known_hosts and reconnects from this server.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from core.policy import Action, can
from hosts import known_hosts, services, services_ssh_keys
from hosts.models import Host
from hosts.ssh_keys import NotSshHost, ScanFailed, target
from hosts.uri import validate_uri

TEMPLATE = "hosts/ssh_host_key.html"


def _scanning(request) -> bool:
    return request.method == "POST" and request.POST.get("action") == "scan"


def _require_admin(request, host: Host | None, uri: str) -> None:
    if not can(request.user, Action.ADMIN):
        action = services_ssh_keys.SCAN_ACTION if _scanning(request) else services_ssh_keys.ACTION
        services.audit_denied(request.user, action, host, detail=uri[:512])
        raise PermissionDenied("Only admins can trust SSH host keys.")


def _not_ssh(request, exc: NotSshHost):
    return render(request, "error.html", {"code": 404, "title": "No SSH host key here", "text": str(exc)},
                  status=404)


def _page(request, *, uri: str, host: Host | None, name: str = "", review=None, scan: bool = False):
    """The page; with `scan` (the POST of the scan button) the host's keys are read now."""
    context = {"host": host, "uri": uri, "name": name, "review": review, "scan_error": "",
               "target": target(uri), "file": str(known_hosts.path())}
    if scan:
        try:
            context["review"] = services_ssh_keys.scan_for(request.user, uri, host=host)
        except ScanFailed as exc:
            context["scan_error"] = str(exc)
    return render(request, TEMPLATE, context)


def _trust(request, *, uri: str, host: Host | None):
    """The trust POST: (outcome, None), or (None, the page again with the refusal and what was scanned)."""
    try:
        done = services_ssh_keys.trust(request.user, uri, fingerprints=request.POST.getlist("fingerprint"),
                                       confirm=request.POST.get("confirm", ""), host=host)
    except services_ssh_keys.Refused as exc:
        messages.error(request, str(exc))
        return None, _page(request, uri=uri, host=host, name=request.POST.get("name", "")[:64], review=exc.review)
    return done, None


def _said(done: services_ssh_keys.Outcome, connection: str) -> str:
    note = f" {services_ssh_keys.this_server_only(done.file)}" if done.wrote else ""
    return f"{done.message} {connection}{note}"


@require_http_methods(["GET", "POST"])
def host_key(request, pk: int):
    host = get_object_or_404(Host, pk=pk)
    _require_admin(request, host, host.uri)
    try:
        target(host.uri)
    except NotSshHost as exc:
        return _not_ssh(request, exc)
    if request.method == "POST" and not _scanning(request):
        done, refused = _trust(request, uri=host.uri, host=host)
        if refused is not None:
            return refused
        if not host.enabled:
            messages.success(request, _said(done, f"{host.name} is disabled: enable it to connect."))
        elif services_ssh_keys.reconnect(host):
            messages.success(request, _said(done, f"{host.name} is connected from this server."))
        else:
            messages.warning(request, _said(done, f"From this server the connection still fails: {host.last_error}"))
        return redirect("hosts:detail", pk=host.pk)
    return _page(request, uri=host.uri, host=host, scan=_scanning(request))


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
    if request.method == "POST" and not _scanning(request):
        done, refused = _trust(request, uri=uri, host=None)
        if refused is not None:
            return refused
        ok, message, _ = services.test_connection(uri)
        (messages.success if ok else messages.warning)(request, _said(done, f"From this server: {message}"))
        return redirect(reverse("hosts:add") + "?" + urlencode({"uri": uri, "name": name}))
    return _page(request, uri=uri, host=None, name=name, scan=_scanning(request))

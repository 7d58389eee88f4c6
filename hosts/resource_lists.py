"""The storage pool and network list pages share one shape: a live table read from libvirt."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import render

from core.policy import Action, can
from hosts.virt.errors import VirtError


def render_list(request, host, *, read, key: str, what: str, page: str, table: str):
    """The page, or with ?partial=… only its table (the live fragment; the caller checked the same
    permission). A host that does not answer gives an empty table with libvirt's message."""
    partial = bool(request.GET.get("partial"))
    rows, read_error = [], ""
    try:
        rows = read(host)
    except VirtError as exc:
        read_error = str(exc)
        if not partial:
            messages.error(request, f"Could not read the {what}: {exc}")
    return render(request, table if partial else page, {
        "host": host, key: rows, "read_error": read_error if partial else "",
        "can_manage": can(request.user, Action.MANAGE, host)})

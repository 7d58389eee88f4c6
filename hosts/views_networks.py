"""Network pages: thin views over hosts.services_networks. VIEW to see, MANAGE to change (denials
audited); changes only over POST; libvirt failures and refused input become messages."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core.policy import Action, can, require
from hosts import resource_lists
from hosts import services_networks as services
from hosts.forms_resources import NetworkForm
from hosts.models import Host
from hosts.virt.errors import ObjectNotFound, VirtError

REFUSED = (VirtError, ValueError)


def _host(request, pk: int, *, manage: bool = False, action: str = "", name: str = "-") -> Host:
    host = get_object_or_404(Host, pk=pk)
    if not manage:
        require(request.user, Action.VIEW, host)
    elif not can(request.user, Action.MANAGE, host):
        services.audit_denied(request.user, action, host, name)
        raise PermissionDenied("You may not change networks on this host.")
    return host


@require_GET
def network_list(request, pk: int):
    """The page, or with ?partial=table only its table (the live fragment; same permission)."""
    return resource_lists.render_list(request, _host(request, pk),
                                      read=services.list_networks, key="networks", what="networks",
                                      page="hosts/networks/network_list.html",
                                      table="hosts/networks/_network_table.html")


@require_http_methods(["GET", "POST"])
def network_add(request, pk: int):
    host = _host(request, pk, manage=True, action="network.create")
    form = NetworkForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            net = services.create_network(request.user, host, name=data["name"], mode=data["mode"],
                                          ipv4=data["ipv4"], dhcp=data["dhcp"], bridge=data["bridge"],
                                          forward_dev=data["forward_dev"], autostart=data["autostart"],
                                          dhcp_start=data["dhcp_start"], dhcp_end=data["dhcp_end"])
        except REFUSED as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"Created network {net.name}. It is not running yet.")
            return redirect("resources:network", pk=host.pk, name=net.name)
    return render(request, "hosts/networks/network_form.html", {"host": host, "form": form})


@require_GET
def network_detail(request, pk: int, name: str):
    """The page, or with ?partial=state its body (actions, state, leases: the live fragment; same permission).
    A fragment answers 200 with a message when the network is gone or unreadable: the page stays."""
    host = _host(request, pk)
    partial = request.GET.get("partial") == "state"
    try:
        network, leases = services.network_with_leases(host, name)
    except ObjectNotFound:
        missing = f"There is no network {name!r} on {host.name}."
    except VirtError as exc:
        missing = f"Could not read network {name}: {exc}"
    else:
        template = "hosts/networks/_network_state.html" if partial else "hosts/networks/network_detail.html"
        return render(request, template, {"host": host, "network": network, "leases": leases,
                                          "can_manage": can(request.user, Action.MANAGE, host)})
    if partial:
        return render(request, "hosts/networks/_network_state.html", {"host": host, "name": name, "missing": missing})
    messages.error(request, missing)
    return redirect("resources:networks", pk=host.pk)


@require_POST
def network_start(request, pk: int, name: str):
    host = _host(request, pk, manage=True, action="network.start", name=name)
    try:
        messages.success(request, services.start_network(
            request.user, host, name, confirm_host_address=bool(request.POST.get("confirm_host_address"))))
    except REFUSED as exc:
        messages.error(request, str(exc))
    return redirect("resources:network", pk=host.pk, name=name)


@require_POST
def network_action(request, pk: int, name: str):
    action = request.POST.get("action", "")[:32]
    host = _host(request, pk, manage=True, action=f"network.{action or 'action'}", name=name)
    try:
        message = services.network_action(request.user, host, name, action)
    except REFUSED as exc:
        messages.error(request, str(exc))
        return redirect("resources:network", pk=host.pk, name=name)
    messages.success(request, message)
    if action == "delete":
        return redirect("resources:networks", pk=host.pk)
    return redirect("resources:network", pk=host.pk, name=name)

"""Host pages: thin views over hosts.services; every view asks core.policy."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from core.policy import Action, can, require, visible_hosts
from guests.choices import ACTIVE_STATES
from hosts import allocation, services
from hosts.forms import HostForm
from hosts.models import Host
from hosts.ssh_keys import is_host_key_error, is_ssh_uri


def _require_admin(request, action: str, target=None) -> None:
    if not can(request.user, Action.ADMIN):
        services.audit_denied(request.user, action, target)
        raise PermissionDenied("Only admins can add, edit or remove hosts.")


def hosts_with_counts(user):
    """The hosts `user` may see, each with its guest and running-guest counts (one query)."""
    return visible_hosts(user).annotate(
        guest_count=Count("guests", distinct=True),
        running_count=Count("guests", filter=Q(guests__state__in=ACTIVE_STATES), distinct=True),
    )


def host_rows(user, limit: int | None = None) -> list[Host]:
    """Rows of the host table (host list, home page): counts, and `same_hypervisor` (names of the
    other rows that reach the same hypervisor) on each."""
    query = hosts_with_counts(user)
    hosts = list(query[:limit] if limit else query)
    same = services.same_hypervisor(hosts)
    for host in hosts:
        host.same_hypervisor = same.get(host.pk, [])
    return hosts


def host_list(request):
    limit = request.GET.get("limit", "")
    hosts = host_rows(request.user, limit=int(limit) if limit.isdigit() else None)  # the home page shows a few
    template = "hosts/partials/_host_table.html" if request.GET.get("partial") else "hosts/host_list.html"
    return render(request, template, {"hosts": hosts, "can_admin": can(request.user, Action.ADMIN)})


def host_detail(request, pk: int):
    host = get_object_or_404(Host, pk=pk)
    require(request.user, Action.VIEW, host)
    template = "hosts/partials/_host_facts.html" if request.GET.get("partial") else "hosts/host_detail.html"
    can_admin = can(request.user, Action.ADMIN)
    return render(request, template, {
        "host": host, "facts": host.facts, "can_admin": can_admin,
        "can_trust_key": can_admin and is_host_key_error(host.last_error) and is_ssh_uri(host.uri),
        "allocation": allocation.allocation(request.user, host),
        "guests": allocation.busiest_guests(request.user, host),
        "same_hypervisor": services.same_hypervisor_as(host, visible_hosts(request.user)),
    })


def _save_with_check(request, form, host=None):
    data = form.cleaned_data
    if host is None:
        host = services.create_host(request.user, **data)
    else:
        host = services.update_host(request.user, host, **data)
    if host.enabled:
        ok, message, found = services.test_connection(host.uri)
        services.record_status(host, ok=ok, error=message, found=found)
        (messages.success if ok else messages.warning)(request, f"Saved {host.name}. {message}")
    else:
        messages.success(request, f"Saved {host.name} (disabled).")
    return redirect("hosts:detail", pk=host.pk)


@require_http_methods(["GET", "POST"])
def host_add(request):
    _require_admin(request, "host.add")
    form = HostForm(request.POST or None, initial={k: request.GET[k] for k in ("name", "uri") if k in request.GET})
    trust_key = False
    if request.method == "POST" and form.is_valid():
        if "test" in request.POST:
            ok, message, _ = services.test_connection(form.cleaned_data["uri"])
            (messages.success if ok else messages.error)(request, message)
            trust_key = not ok and is_host_key_error(message) and is_ssh_uri(form.cleaned_data["uri"])
        else:
            return _save_with_check(request, form)
    return render(request, "hosts/host_form.html", {"form": form, "adding": True, "trust_key": trust_key})


@require_http_methods(["GET", "POST"])
def host_edit(request, pk: int):
    host = get_object_or_404(Host, pk=pk)
    _require_admin(request, "host.edit", host)
    form = HostForm(request.POST or None, instance=Host.objects.get(pk=pk))
    trust_key = False
    if request.method == "POST" and form.is_valid():
        if "test" in request.POST:
            ok, message, _ = services.test_connection(form.cleaned_data["uri"])
            (messages.success if ok else messages.error)(request, message)
            trust_key = not ok and is_host_key_error(message) and is_ssh_uri(form.cleaned_data["uri"])
        else:
            return _save_with_check(request, form, host)
    return render(request, "hosts/host_form.html", {"form": form, "host": host, "adding": False,
                                                    "trust_key": trust_key})


@require_http_methods(["GET", "POST"])
def host_delete(request, pk: int):
    host = get_object_or_404(Host, pk=pk)
    _require_admin(request, "host.remove", host)
    if request.method == "POST":
        name = host.name
        services.delete_host(request.user, host)
        messages.success(request, f"Removed {name} from VirtDash. Its guests in libvirt were not touched.")
        return redirect("hosts:list")
    return render(request, "hosts/host_confirm_delete.html", {"host": host})

"""Guest pages: thin views (parse → policy → one service/query function → render).

The list reads the inventory only (no libvirt call); the detail page makes one libvirt read
for the live domain XML and falls back to the inventory when the host does not answer.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from core.jobs import JobRefused
from core.policy import Action, can, global_role, visible_guests, visible_hosts
from guests import queries, services
from guests.choices import GuestState
from guests.models import Guest

PAGE_SIZE = 50


def _guest(request, uuid) -> Guest:
    guest = visible_guests(request.user).select_related("host").filter(uuid=str(uuid)).first()
    if guest is None:
        raise Http404("No such guest.")
    return guest


def _list_context(request) -> dict:
    params = queries.ListParams.from_query(request.GET)
    page = queries.guest_page(visible_guests(request.user), params, PAGE_SIZE)
    rows = list(page.object_list)
    topics = "guests hosts"  # grant-only users too: the live socket filters by their grants (core.topics)
    return {
        "page": page, "rows": rows, "params": params, "sparks": queries.sparklines([g.pk for g in rows]),
        "hosts": visible_hosts(request.user).only("id", "name"), "states": GuestState.choices,
        "live_topics": topics, "query": params.query_string(), "bulk_actions": services.BULK_ACTIONS,
        "can_operate": can(request.user, Action.OPERATE) or (global_role(request.user) is None and bool(rows)),
        "sort_links": params.sort_links(),
    }


def guest_list(request):
    return render(request, "guests/guest_list.html", _list_context(request))


def guest_rows(request):
    """The list's table as a fragment (live refresh target)."""
    return render(request, "guests/partials/_guest_table.html", _list_context(request))


@require_POST
def guest_bulk(request):
    name = request.POST.get("action", "")
    ids = [int(i) for i in request.POST.getlist("guest") if i.isdigit()]
    guests = list(visible_guests(request.user).select_related("host").filter(pk__in=ids))
    if not guests or name not in services.BULK_ACTIONS:
        messages.error(request, "Select at least one guest and an action.")
        return redirect("guests:list")
    try:
        result = services.request_bulk_by_zone(request.user, guests, name)  # one job per zone
    except JobRefused as exc:
        messages.error(request, str(exc))
        return redirect("guests:list")
    messages.success(request, result.summary())
    skipped = result.skipped()
    if skipped:  # held by other jobs: the bulk jobs leave them alone
        messages.warning(request, f"Busy with other jobs, skipped: {', '.join(skipped)}.")
    if len(result.jobs) == 1:
        return redirect("job", result.jobs[0].pk)
    return redirect("jobs")


def guest_detail(request, uuid):
    guest = _guest(request, uuid)
    context = queries.detail_context(request.user, guest)
    context["actions"] = services.offered_actions(request.user, guest)
    return render(request, "guests/guest_detail.html", context)


def guest_overview(request, uuid):
    """State, actions and jobs of one guest as a fragment (live refresh target); inventory only."""
    guest = _guest(request, uuid)
    context = queries.overview_context(request.user, guest)
    context["actions"] = services.offered_actions(request.user, guest)
    return render(request, "guests/partials/_guest_overview.html", context)


def guest_samples(request, uuid):
    guest = _guest(request, uuid)
    try:
        minutes = max(1, min(int(request.GET.get("minutes", 60)), 60 * 24 * 730))
    except ValueError:
        minutes = 60
    return JsonResponse(queries.samples_json(guest, minutes, request.GET.get("after")))


def guest_action(request, uuid, name):
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    guest = _guest(request, uuid)
    if name not in services.ACTIONS:
        raise Http404("No such action.")
    try:
        job = services.request_action(request.user, guest, name)
    except JobRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.info(request, f"{services.ACTIONS[name].label}: job #{job.pk} queued.")
    return redirect(reverse("guests:detail", args=[guest.uuid]))


def guest_delete(request, uuid):
    guest = _guest(request, uuid)
    if not can(request.user, Action.MANAGE, guest):
        if request.method == "POST":
            services.request_delete(request.user, guest, confirm="", volume_paths=[], force=False)  # audits, raises
        raise PermissionDenied(f"You may not delete {guest.name}.")
    disks = [d for d in guest.summary.get("disks", []) if d.get("source") and d.get("device", "disk") == "disk"]
    error = ""
    if request.method == "POST":
        try:
            job = services.request_delete(
                request.user, guest, confirm=request.POST.get("confirm", ""),
                volume_paths=request.POST.getlist("volume"), force=request.POST.get("force") == "on")
        except (ValueError, JobRefused) as exc:
            error = str(exc)
        else:
            messages.success(request, f"Deleting {guest.name}: job #{job.pk}.")
            return redirect("job", job.pk)
    return render(request, "guests/guest_delete.html", {"guest": guest, "disks": disks, "error": error},
                  status=400 if error else 200)

"""Migration pages: thin views (parse → policy → one service call → render or redirect).

GET shows the form (destinations the user may operate, with free memory and CPUs from the
host facts) or, while a migration runs, its live progress with a Cancel button.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from core.choices import JobStatus
from core.jobs import JobRefused
from core.models import Job
from core.policy import Action, can, visible_guests
from guests import services_migrate as services
from guests.models import Guest
from hosts.models import Host


def _guest(request, uuid) -> Guest:
    guest = visible_guests(request.user).select_related("host").filter(uuid=str(uuid)).first()
    if guest is None:
        raise Http404("No such guest.")
    return guest


def _context(request, guest: Guest, **extra) -> dict:
    last = Job.objects.filter(kind=services.KIND, guest_uuid=guest.uuid).order_by("-pk").first()
    try:
        mode, mode_error = services.mode_for(guest), ""
    except services.MigrationRefused as exc:
        mode, mode_error = "", str(exc)
    return {"guest": guest, "destinations": services.destinations(request.user, guest), "mode": mode,
            "mode_error": mode_error, "job": last, "local_disks": services.local_disks(guest),
            "running": last is not None and last.status in (JobStatus.QUEUED, JobStatus.RUNNING), **extra}


def migrate(request, uuid):
    guest = _guest(request, uuid)
    if request.method != "POST":
        if not can(request.user, Action.OPERATE, guest):
            raise PermissionDenied(f"You may not move {guest.name}.")
        return render(request, "guests/migrate/form.html", _context(request, guest))
    raw = request.POST.get("destination", "")
    dest = Host.objects.filter(pk=int(raw)).first() if raw.isdigit() and len(raw) < 10 else None
    if dest is None:
        error = "Choose a destination host."
    else:
        try:
            job = services.request_migration(request.user, guest, dest,
                                             bandwidth_mib=request.POST.get("bandwidth", "0").strip(),
                                             copy_storage=request.POST.get("copy_storage") == "on")
        except (services.MigrationRefused, JobRefused) as exc:
            error = str(exc)
        else:
            messages.info(request, f"Moving {guest.name} to {dest.name}: job #{job.pk} queued.")
            return redirect("migrate:form", guest.uuid)
    return render(request, "guests/migrate/form.html", _context(request, guest, error=error), status=400)


def status(request, uuid):
    """The latest migration job of the guest as a fragment (live refresh target)."""
    guest = _guest(request, uuid)
    return render(request, "guests/migrate/_status.html", _context(request, guest))


@require_POST
def cancel(request, uuid, job_id: int):
    guest = _guest(request, uuid)
    job = Job.objects.filter(pk=job_id, kind=services.KIND, guest_uuid=guest.uuid).first()
    if job is None:
        raise Http404("No such migration.")
    if services.request_cancel(request.user, job):
        messages.info(request, f"Cancelling job #{job.pk}; {guest.name} stays where it is if the move had not "
                               "finished.")
    else:
        messages.warning(request, f"Job #{job.pk} had already finished.")
    return redirect("migrate:form", guest.uuid)

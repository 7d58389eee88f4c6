from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, render

from core.choices import JobStatus
from core.models import AuditEntry, Job
from core.policy import Action, can, global_role, visible_guests, visible_hosts
from guests.choices import ACTIVE_STATES
from hosts.choices import HostStatus
from hosts.views import host_rows

HOME_HOSTS = 20  # hosts on the home page (and in its live refresh)


def healthz(request):
    return JsonResponse({"ok": True})


def home(request):
    hosts = visible_hosts(request.user)
    guests = visible_guests(request.user)
    counts = guests.aggregate(total=Count("id"), running=Count("id", filter=Q(state__in=ACTIVE_STATES)))
    context = {
        "host_total": hosts.count(),
        "host_down": hosts.filter(status=HostStatus.UNREACHABLE).count(),
        "guest_total": counts["total"],
        "guest_running": counts["running"],
        "recent_jobs": visible_jobs(request.user)[:8],
        "hosts": host_rows(request.user, limit=HOME_HOSTS), "host_limit": HOME_HOSTS,
        "can_admin": can(request.user, Action.ADMIN),
    }
    return render(request, "core/home.html", context)


def visible_jobs(user):
    jobs = Job.objects.select_related("host")
    if global_role(user) is None:
        jobs = jobs.filter(Q(actor=user) | Q(guest_uuid__in=visible_guests(user).values("uuid")))
    return jobs


def job_list(request):
    jobs = visible_jobs(request.user)
    status = request.GET.get("status", "")
    if status in JobStatus.values:
        jobs = jobs.filter(status=status)
    kind = request.GET.get("kind", "")
    if kind:
        jobs = jobs.filter(kind=kind)
    text = request.GET.get("q", "").strip()
    if text:
        jobs = jobs.filter(Q(target_name__icontains=text) | Q(actor_name__icontains=text) | Q(message__icontains=text))
    page = Paginator(jobs, 50).get_page(request.GET.get("page"))
    template = "core/partials/_job_table.html" if request.GET.get("partial") else "core/job_list.html"
    kinds = Job.objects.order_by().values_list("kind", flat=True).distinct()
    return render(request, template, {"page": page, "statuses": JobStatus.choices, "status": status,
                                      "kind": kind, "kinds": sorted(kinds), "q": text})


def _job_for(request, pk: int) -> Job:
    job = get_object_or_404(visible_jobs(request.user), pk=pk)
    return job


def job_detail(request, pk: int):
    template = "core/partials/_job_card.html" if request.GET.get("partial") else "core/job_detail.html"
    return render(request, template, {"job": _job_for(request, pk)})


def job_json(request, pk: int):
    job = _job_for(request, pk)
    return JsonResponse({
        "id": job.pk, "kind": job.kind, "status": job.status, "progress": job.progress,
        "message": job.message, "target": job.target_name, "items": job.items,
        "created": job.created.isoformat(), "finished": job.finished.isoformat() if job.finished else None,
    })


def jobs_running_json(request):
    running = visible_jobs(request.user).filter(status__in=[JobStatus.QUEUED, JobStatus.RUNNING]).count()
    return JsonResponse({"running": running})


def audit_list(request):
    if not can(request.user, Action.ADMIN):
        raise PermissionDenied("Only admins can read the audit log.")
    entries = AuditEntry.objects.all()
    text = request.GET.get("q", "").strip()
    if text:
        entries = entries.filter(Q(action__icontains=text) | Q(actor_name__icontains=text)
                                 | Q(target_name__icontains=text))
    page = Paginator(entries, 100).get_page(request.GET.get("page"))
    return render(request, "core/audit_list.html", {"page": page, "q": text})


def error_403(request, exception=None):
    return render(request, "error.html", {"code": 403, "title": "Not allowed",
                                          "text": str(exception) if exception else ""}, status=403)


def error_404(request, exception=None):
    return render(request, "error.html", {"code": 404, "title": "Not found",
                                          "text": "There is nothing at this address."}, status=404)


def error_500(request):
    return render(request, "error.html", {"code": 500, "title": "Something went wrong",
                                          "text": "The error was logged. Try again in a moment."}, status=500)

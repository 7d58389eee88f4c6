from django.conf import settings
from django.db import models

from core.choices import AuditResult, JobStatus, Role


class AuditEntry(models.Model):
    """One mutating action (or a denied attempt) by a user: who, what, target, when, result.

    Rows are append-only; `actor` may be null for system actions or deleted users, so
    `actor_name` keeps the name as it was.
    """

    created = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    actor_name = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    target_type = models.CharField(max_length=32, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_name = models.CharField(max_length=255, blank=True)
    result = models.CharField(max_length=16, choices=AuditResult.choices)
    detail = models.TextField(blank=True)

    class Meta:
        ordering = ["-created", "-id"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.actor_name} {self.action} {self.target_type}:{self.target_name} {self.result}"


class Job(models.Model):
    """A user-visible background operation run by a Celery task.

    Invariants: `status` only moves queued → running → succeeded|failed, changed with
    compare-and-swap updates; `progress` is 0–100; `finished` is set iff the status is final;
    `heartbeat` is refreshed by the running task so a dead worker is detected. While unfinished
    it holds the GuestLock of its guest (or, for a bulk job, of every guest it will touch).
    """

    kind = models.CharField(max_length=64, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    actor_name = models.CharField(max_length=150, blank=True)
    host = models.ForeignKey("hosts.Host", null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs")
    guest_uuid = models.CharField(max_length=36, blank=True, db_index=True)
    target_name = models.CharField(max_length=255, blank=True)
    params = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True)
    progress = models.PositiveSmallIntegerField(default=0)
    message = models.TextField(blank=True)
    items = models.JSONField(default=list, blank=True, help_text="Per-item results of a bulk job")
    created = models.DateTimeField(auto_now_add=True, db_index=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    heartbeat = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["-created", "-id"]
        # the inventory asks every round which migrations finished since its read began
        indexes = [models.Index(fields=["kind", "finished"], name="job_kind_finished")]

    def __str__(self) -> str:
        return f"{self.kind} {self.target_name} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in JobStatus.finished()


class GuestLock(models.Model):
    """One unfinished job holds one guest; single-guest and bulk jobs lock the same way.

    Invariants: at most one row per guest UUID (a unique index, so two jobs can never both take
    a guest, whatever the timing); `core.jobs` inserts a job's rows in the transaction that creates
    the job and deletes them when the job ends (succeeded, failed or reaped). A row whose job has
    finished anyway is stale: `core.jobs` ignores it and replaces it.
    """

    guest_uuid = models.CharField(max_length=36, unique=True)
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="locks")
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.guest_uuid} held by job #{self.job_id}"


class Grant(models.Model):
    """Gives one user a role on one host (all its guests) or on one guest only.

    Exactly one of `host` and `guest` is set. Grants add to the user's global role
    (from the admin/operator/viewer groups); they never take away.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="grants")
    role = models.CharField(max_length=16, choices=Role.choices)
    host = models.ForeignKey("hosts.Host", null=True, blank=True, on_delete=models.CASCADE, related_name="grants")
    guest = models.ForeignKey("guests.Guest", null=True, blank=True, on_delete=models.CASCADE, related_name="grants")

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(host__isnull=False, guest__isnull=True)
                | models.Q(host__isnull=True, guest__isnull=False),
                name="grant_targets_host_or_guest",
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} {self.role} on {self.host or self.guest}"

from django.db import models


class Role(models.TextChoices):
    """Roles in increasing power; a user's role is the highest that applies."""

    VIEWER = "viewer", "Viewer"
    OPERATOR = "operator", "Operator"
    ADMIN = "admin", "Admin"


ROLE_RANK = {None: 0, Role.VIEWER: 1, Role.OPERATOR: 2, Role.ADMIN: 3}


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"

    @classmethod
    def finished(cls) -> set[str]:
        return {cls.SUCCEEDED, cls.FAILED}


JOB_STATUS_COLOURS = {
    JobStatus.QUEUED: "grey",
    JobStatus.RUNNING: "blue",
    JobStatus.SUCCEEDED: "green",
    JobStatus.FAILED: "red",
}


class AuditResult(models.TextChoices):
    OK = "ok", "Succeeded"
    DENIED = "denied", "Denied"
    FAILED = "failed", "Failed"
    QUEUED = "queued", "Queued as a job"

"""Celery tasks for provisioning: each takes a Job id and runs one service function in it.

Registered by guests/apps.py (Celery autodiscovers guests/tasks.py only). Tasks converge when
re-run: the services check what is already done before doing it. The policy is asked again
when the task runs, so a permission revoked while the job waited stops it before libvirt.
"""

from __future__ import annotations

from celery import shared_task

from core import jobs
from core.policy import Action

TASK_OPTIONS = {"acks_late": True, "reject_on_worker_lost": True, "time_limit": 3600, "soft_time_limit": 3500}

# service function → the action its actor must still be allowed
WORK = {
    "run_edit": Action.MANAGE, "run_define": Action.MANAGE, "run_clone": Action.MANAGE,
    "run_create": Action.MANAGE, "run_snapshot_create": Action.OPERATE, "run_snapshot_revert": Action.OPERATE,
    "run_snapshot_delete": Action.OPERATE,
}


def guarded(name: str):
    """The service's work function wrapped in a fresh policy check of the job's actor."""
    from core.policy import can
    from guests import services_create, services_provision
    from guests.models import Guest

    work = getattr(services_provision, name, None) or getattr(services_create, name)

    def run(job, report):
        target = (Guest.objects.filter(host_id=job.host_id, uuid=job.guest_uuid).first()
                  if job.guest_uuid else job.host)
        action = Action.RAW_XML if job.kind == "guest.raw_xml" else WORK[name]
        if job.actor is not None and not can(job.actor, action, target):
            raise jobs.JobRefused(f"{job.actor_name} is no longer allowed to do this; nothing was changed.")
        return work(job, report)

    return run


def _run(job_id: int, name: str) -> None:
    jobs.run(job_id, guarded(name))


@shared_task(**TASK_OPTIONS)
def apply_edit(job_id: int) -> None:
    _run(job_id, "run_edit")


@shared_task(**TASK_OPTIONS)
def define_guest(job_id: int) -> None:
    _run(job_id, "run_define")


@shared_task(**TASK_OPTIONS)
def clone_guest(job_id: int) -> None:
    _run(job_id, "run_clone")


@shared_task(**TASK_OPTIONS)
def create_guest(job_id: int) -> None:
    _run(job_id, "run_create")


@shared_task(**TASK_OPTIONS)
def snapshot_create(job_id: int) -> None:
    _run(job_id, "run_snapshot_create")


@shared_task(**TASK_OPTIONS)
def snapshot_revert(job_id: int) -> None:
    _run(job_id, "run_snapshot_revert")


@shared_task(**TASK_OPTIONS)
def snapshot_delete(job_id: int) -> None:
    _run(job_id, "run_snapshot_delete")

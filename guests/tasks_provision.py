"""Celery tasks for provisioning: each takes a Job id and runs one service function in it.

Registered by guests/apps.py (Celery autodiscovers guests/tasks.py only). Tasks converge when
re-run: the services check what is already done before doing it.
"""

from __future__ import annotations

from celery import shared_task

from core import jobs

TASK_OPTIONS = {"acks_late": True, "reject_on_worker_lost": True, "time_limit": 3600, "soft_time_limit": 3500}


def _run(job_id: int, name: str) -> None:
    from guests import services_create, services_provision

    work = getattr(services_provision, name, None) or getattr(services_create, name)
    jobs.run(job_id, work)


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

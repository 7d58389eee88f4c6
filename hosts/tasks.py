"""Celery tasks for long storage work. Each takes a Job id and runs through `core.jobs.run`,
which claims the job by compare-and-swap, records progress and turns VirtError into the job's
failed message."""

from __future__ import annotations

from celery import shared_task

from core import jobs
from hosts import services_storage


@shared_task(name="hosts.create_volume")
def create_volume(job_id: int) -> None:
    jobs.run(job_id, services_storage.run_create)


@shared_task(name="hosts.clone_volume")
def clone_volume(job_id: int) -> None:
    jobs.run(job_id, services_storage.run_clone)


@shared_task(name="hosts.delete_volume")
def delete_volume(job_id: int) -> None:
    jobs.run(job_id, services_storage.run_delete)

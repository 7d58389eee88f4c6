"""Celery tasks: take a job id, run the shared service through core.jobs.run (STYLE rule 10)."""

from celery import shared_task

from core import jobs
from guests import services


@shared_task(acks_late=True, name="guests.action")
def guest_action(job_id: int) -> None:
    jobs.run(job_id, services.perform_action)


@shared_task(acks_late=True, name="guests.delete")
def guest_delete(job_id: int) -> None:
    jobs.run(job_id, services.perform_delete)


@shared_task(acks_late=True, name="guests.bulk")
def guest_bulk(job_id: int) -> None:
    jobs.run(job_id, services.perform_bulk)

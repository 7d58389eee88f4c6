"""Celery task for moving a guest to another host (registered by guests/apps.py).

Safe to re-run: the service checks where the guest is before doing anything (STYLE rule 10).
The limit is generous: a live migration of a large, busy guest can take a long time, and the
service aborts the migration itself before this limit.
"""

from __future__ import annotations

from celery import shared_task

from core import jobs


@shared_task(acks_late=True, reject_on_worker_lost=True, time_limit=3600, soft_time_limit=3550,
             name="guests.migrate")
def migrate_guest(job_id: int) -> None:
    from guests import services_migrate

    jobs.run(job_id, services_migrate.perform_migration)

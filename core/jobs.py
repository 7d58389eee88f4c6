"""Jobs: create a row, enqueue its task after commit, run it with progress, detect dead workers.

A task body is `work(job, report)`; `report(percent, message)` updates the row and tells the
browser. Failures of libvirt become the job's message in words an operator understands.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from core import audit, live
from core.choices import AuditResult, JobStatus
from core.models import GuestLock, Job
from hosts import zones
from hosts.virt.errors import VirtError

log = logging.getLogger(__name__)
HEARTBEAT_SECONDS = 10

Report = Callable[[int, str], None]


class JobRefused(Exception):
    """The job cannot start (e.g. another job holds the guest's lock); message for the user.

    `holders`: the jobs holding the guests when a bulk job was refused because all were busy."""

    def __init__(self, message: str, *, holders: list | None = None):
        super().__init__(message)
        self.holders = holders or []


def job_topics(job: Job) -> list[str]:
    topics = [f"job.{job.pk}", "jobs"]
    if job.guest_uuid:
        topics.append(f"guest.{job.guest_uuid}")
    if job.actor_id:
        topics.append(f"user.{job.actor_id}")
    return topics


def _publish(job: Job) -> None:
    live.publish(job_topics(job), "job", {"id": job.pk, "status": job.status, "progress": job.progress,
                                          "message": job.message[:500], "kind": job.kind})


UNFINISHED = (JobStatus.QUEUED, JobStatus.RUNNING)


def active_job_for_guest(guest_uuid: str, *, exclude: int | None = None) -> Job | None:
    """The unfinished job holding the guest: its lock row, or (rows older than locks) its own job."""
    lock = (GuestLock.objects.filter(guest_uuid=guest_uuid, job__status__in=UNFINISHED).exclude(job_id=exclude)
            .select_related("job").first())
    if lock is not None:
        return lock.job
    return Job.objects.filter(guest_uuid=guest_uuid, status__in=UNFINISHED).exclude(pk=exclude).first()


def busy_message(guest_name: str, holder: Job) -> str:
    if holder.guest_uuid:
        return f"{guest_name} is busy with job #{holder.pk} ({holder.kind}); wait for it to finish."
    return (f"{guest_name} is held by bulk job #{holder.pk} ({holder.kind}, {holder.target_name}); "
            "wait for it to finish.")


def _take_lock(job: Job, guest_uuid: str) -> Job | None:
    """Lock the guest for `job`; returns the job that holds it instead (nothing taken then).

    The unique index decides a race: the loser's insert fails and it reads the winner."""
    for _ in range(3):
        holder = active_job_for_guest(guest_uuid, exclude=job.pk)
        if holder is not None:
            return holder
        GuestLock.objects.filter(guest_uuid=guest_uuid).exclude(job__status__in=UNFINISHED).delete()  # stale
        try:
            with transaction.atomic():  # savepoint: a lost race must not break the caller's transaction
                GuestLock.objects.create(guest_uuid=guest_uuid, job=job)
            return None
        except IntegrityError:
            continue  # another job took it between our read and our insert: read it
    raise JobRefused("The guest's lock is changing hands right now; try again.")


def _take_locks(job: Job, guests) -> dict[str, Job]:
    """Lock every free guest of a bulk job in a few queries whatever their number; returns the
    holders of the others by UUID. A race lost on any insert falls back to one guest at a time."""
    uuids = [g.uuid for g in guests]
    holders = {lock.guest_uuid: lock.job for lock in GuestLock.objects.filter(
        guest_uuid__in=uuids, job__status__in=UNFINISHED).exclude(job_id=job.pk).select_related("job")}
    for other in Job.objects.filter(guest_uuid__in=[u for u in uuids if u not in holders],
                                    status__in=UNFINISHED).exclude(pk=job.pk):
        holders.setdefault(other.guest_uuid, other)  # rows older than locks: the job itself holds it
    free = sorted(u for u in set(uuids) if u not in holders)  # one order for every job: no lock-order deadlock
    GuestLock.objects.filter(guest_uuid__in=free).exclude(job__status__in=UNFINISHED).delete()  # stale
    try:
        with transaction.atomic():
            GuestLock.objects.bulk_create([GuestLock(guest_uuid=u, job=job) for u in free], batch_size=500)
    except IntegrityError:
        for uuid in free:
            if (holder := _take_lock(job, uuid)) is not None:
                holders[uuid] = holder
    return holders


def release_locks(job: Job) -> None:
    GuestLock.objects.filter(job_id=job.pk).delete()


def create(actor, kind: str, *, host=None, guest=None, guests=None, target_name: str = "",
           params: dict | None = None, lock_guest: bool = True) -> Job:
    """Create a queued Job holding its guest's lock; JobRefused when another unfinished job holds it.

    A bulk job passes `guests`: it takes every free guest's lock at once, for its whole run;
    guests held by other jobs become "busy — skipped" items (the job itself is not refused).
    """
    guest_uuid = guest.uuid if guest is not None else ""
    with transaction.atomic():
        job = Job.objects.create(
            kind=kind, actor=actor if actor and actor.is_authenticated else None,
            actor_name=actor.get_username() if actor and actor.is_authenticated else "system",
            host=host if host is not None else getattr(guest, "host", None), guest_uuid=guest_uuid,
            target_name=target_name or (guest.name if guest is not None else str(host or "")), params=params or {},
        )
        if guest_uuid and lock_guest:
            holder = _take_lock(job, guest_uuid)
            if holder is not None:
                raise JobRefused(busy_message(guest.name, holder))  # rolls the job back
        held = _take_locks(job, guests) if guests else {}
        holders = []
        for other in guests or ():
            if (holder := held.get(other.uuid)) is not None:
                holders.append(holder)
                job.items.append(skipped_item(other.name, other.uuid, holder))
        if guests and len(holders) == len(guests):  # every one is busy: nothing to do
            raise JobRefused(all_busy_message(holders), holders=holders)
        if job.items:
            job.save(update_fields=["items"])
        audit.record(actor, kind, guest or host, result=AuditResult.QUEUED, detail=f"job #{job.pk}")
        _publish(job)
    return job


def all_busy_message(holders: list[Job]) -> str:
    """Why a bulk request was refused: other jobs hold every selected guest."""
    return ("Other jobs hold every selected guest: " + "; ".join(f"(job #{h.pk}, {h.kind})" for h in holders[:3])
            + ("…" if len(holders) > 3 else "") + ". Wait for them to finish.")


def skipped_item(name: str, uuid: str, holder: Job) -> dict:
    """A bulk job's per-guest result for a guest another job holds."""
    return {"name": name, "uuid": uuid, "ok": False, "skipped": True,
            "message": f"busy — skipped (job #{holder.pk}, {holder.kind})"}


def zone_of(job: Job) -> str:
    """The job's zone: its host's; a bulk job (no host) names it in params["zone"] ('' = the default zone)."""
    if job.host_id:
        return job.host.zone
    return str((job.params or {}).get("zone") or "")


def queue_for(job: Job) -> str | None:
    """The Celery queue of the job: its zone's queue (hosts/zones.py), None = the default queue."""
    return zones.queue_for(zone_of(job))


def enqueue(job: Job, task) -> None:
    """Send the job's id to its Celery task once the row is committed, on its host zone's queue."""
    queue = queue_for(job)
    if queue is None:
        transaction.on_commit(lambda: task.delay(job.pk))
    else:
        transaction.on_commit(lambda: task.apply_async((job.pk,), queue=queue))


def _claim(job_id: int) -> Job | None:
    """queued → running by compare-and-swap; a redelivered task may also retake a dead running job."""
    now = timezone.now()
    claimed = Job.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING, started=now, heartbeat=now, attempts=1)
    if not claimed:
        stale = now - timedelta(seconds=settings.VIRTDASH_STALE_JOB_SECONDS)
        claimed = Job.objects.filter(pk=job_id, status=JobStatus.RUNNING, heartbeat__lt=stale).update(
            heartbeat=now, message="Retrying after the worker stopped")
    return Job.objects.filter(pk=job_id).first() if claimed else None


def _beat(job_id: int, stop: threading.Event) -> None:
    while not stop.wait(HEARTBEAT_SECONDS):
        Job.objects.filter(pk=job_id, status=JobStatus.RUNNING).update(heartbeat=timezone.now())


def finish(job: Job, status: str, message: str) -> None:
    Job.objects.filter(pk=job.pk, status=JobStatus.RUNNING).update(
        status=status, message=message, finished=timezone.now(),
        progress=100 if status == JobStatus.SUCCEEDED else job.progress, items=job.items)
    release_locks(job)
    job.refresh_from_db()
    audit.record(job.actor, job.kind, target_type="job", target_id=str(job.pk), target_name=job.target_name,
                 result=AuditResult.OK if status == JobStatus.SUCCEEDED else AuditResult.FAILED, detail=message)
    _publish(job)


def run(job_id: int, work: Callable[[Job, Report], str]) -> None:
    """Run `work` for a job: claim it, heartbeat, record progress and the outcome."""
    job = _claim(job_id)
    if job is None:
        return  # gone, finished, or running elsewhere: nothing to do
    _publish(job)

    def report(percent: int, message: str) -> None:
        job.progress, job.message = max(0, min(100, int(percent))), message
        Job.objects.filter(pk=job.pk).update(progress=job.progress, message=message, heartbeat=timezone.now(),
                                             items=job.items)
        _publish(job)

    stop = threading.Event()
    threading.Thread(target=_beat, args=(job.pk, stop), daemon=True).start()
    try:
        message = work(job, report)
        finish(job, JobStatus.SUCCEEDED, message or "Done")
    except (VirtError, JobRefused) as exc:
        finish(job, JobStatus.FAILED, str(exc))
    except Exception as exc:
        log.exception("job %s failed", job_id)
        finish(job, JobStatus.FAILED, f"Internal error ({type(exc).__name__}); see the worker log.")
    finally:
        stop.set()


_DIED = ("The worker running this job stopped (crashed or was killed); the job did not finish. "
         "Check the guest's state and run the action again if needed.")
_LOST = "No worker picked this job up (its queue message was lost, e.g. Redis restarted). Run it again."
_LOST_IN_ZONE = ("No worker of zone {zone} picked this job up: is a Celery worker running with -Q {queue}? "
                 "(Or its queue message was lost, e.g. Redis restarted.) Run it again.")


def reap_stale(now=None) -> int:
    """Mark jobs failed whose worker died (running without heartbeat) or that were never picked up."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.VIRTDASH_STALE_JOB_SECONDS)
    forgotten = now - timedelta(seconds=settings.VIRTDASH_QUEUED_JOB_SECONDS)
    candidates = [
        (JobStatus.RUNNING, {"heartbeat__lt": stale}, _DIED),
        (JobStatus.QUEUED, {"created__lt": forgotten}, _LOST),
    ]
    count = 0
    for status, condition, message in candidates:
        for job in Job.objects.filter(status=status, **condition).select_related("host"):
            why = message
            if status == JobStatus.QUEUED and (queue := queue_for(job)) is not None:
                why = _LOST_IN_ZONE.format(zone=zone_of(job), queue=queue)
            updated = Job.objects.filter(pk=job.pk, status=status, **condition).update(
                status=JobStatus.FAILED, finished=now, message=why)
            if updated:
                count += 1
                release_locks(job)
                job.refresh_from_db()
                _publish(job)
    return count

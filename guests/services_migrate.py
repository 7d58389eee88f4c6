"""Moving a guest to another host, as a Job: live if it runs, offline (define + undefine) if not.

Web side (`destinations`, `request_migration`, `request_cancel`): policy — OPERATE on the guest
and at least OPERATE on the destination host — with denials audited, and refusals an operator
understands (same host, destination not connected). Worker side (`perform_migration`): decides
from libvirt (not from the inventory row) what is left to do, so a re-run after a worker crash
converges: a guest already on the destination is success, a leftover definition on the source
is removed. After the move both hosts are re-read, which moves the inventory row by UUID.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import timedelta

from django.core.exceptions import PermissionDenied
from django.db import DatabaseError
from django.db.models import Q

from core import audit, jobs
from core.choices import AuditResult, JobStatus
from core.models import Job
from core.policy import Action, can
from guests.choices import GuestState
from guests.models import Guest
from hosts.choices import HostStatus
from hosts.models import Host
from hosts.virt import migration
from hosts.virt.errors import Conflict, GuestNotFound, OperationRefused, VirtError

log = logging.getLogger(__name__)
KIND = "guest.migrate"
LIVE_STATES = frozenset({GuestState.RUNNING, GuestState.BLOCKED, GuestState.PAUSED})
MAX_BANDWIDTH_MIB = 100_000
CANCEL_CHECK_SECONDS = 1.0


class MigrationRefused(ValueError):
    """The request cannot be queued; the message tells the operator why."""


@dataclass
class Destination:
    """A host the form may offer, with the figures an operator weighs (from Host.facts)."""

    host: Host
    available: bool
    reason: str = ""
    guest_memory: int = 0  # bytes the guest has now

    @property
    def tight(self) -> bool:
        """Less free memory than the guest uses (a warning; QEMU allocates lazily)."""
        return self.memory_free is not None and self.memory_free < self.guest_memory

    @property
    def memory_free(self) -> int | None:
        return self.host.facts.get("memory_free")

    @property
    def memory_total(self) -> int | None:
        return self.host.facts.get("memory_total")

    @property
    def cpus(self) -> int | None:
        return self.host.facts.get("cpus")

    @property
    def guests_running(self) -> int | None:
        return self.host.facts.get("guests_running")


def mode_for(guest: Guest) -> str:
    """"live" for a running or paused guest, "offline" for a shut-off one."""
    if guest.state in LIVE_STATES:
        return "live"
    if guest.state == GuestState.SHUTOFF:
        return "offline"
    raise MigrationRefused(f"{guest.name} is {guest.get_state_display().lower()}: only running, paused or "
                           "shut-off guests can be moved.")


def _unavailable_reason(host: Host) -> str:
    if not host.enabled:
        return "disabled"
    if host.status != HostStatus.CONNECTED:
        return f"unreachable{f' ({host.last_error})' if host.last_error else ''}"
    return ""


def destinations(user, guest: Guest) -> list[Destination]:
    """Other hosts the user may operate; unreachable or disabled ones are listed as unavailable."""
    hosts = Host.objects.exclude(pk=guest.host_id).order_by("name")
    return [Destination(h, not (reason := _unavailable_reason(h)), reason, guest.memory_kib * 1024)
            for h in hosts if can(user, Action.OPERATE, h)]


def _deny(actor, guest: Guest, detail: str) -> None:
    audit.record(actor, KIND, guest, result=AuditResult.DENIED, detail=detail)
    raise PermissionDenied(f"You may not move {guest.name} {detail.split(': ', 1)[-1]}.")


def check_allowed(actor, guest: Guest, dest: Host) -> None:
    """PermissionDenied (audited) unless the actor may operate the guest and the destination."""
    if not can(actor, Action.OPERATE, guest):
        _deny(actor, guest, "not allowed: at all")
    if not can(actor, Action.OPERATE, dest):
        _deny(actor, guest, f"destination not allowed: to {dest.name}")


def _bandwidth(value) -> int:
    try:
        bandwidth = int(value or 0)
    except (TypeError, ValueError):
        raise MigrationRefused("The bandwidth limit must be a whole number of MiB/s (0 for no limit).") from None
    if not 0 <= bandwidth <= MAX_BANDWIDTH_MIB:
        raise MigrationRefused(f"The bandwidth limit must be between 0 and {MAX_BANDWIDTH_MIB} MiB/s.")
    return bandwidth


def local_disks(guest: Guest) -> list[dict]:
    """Writable disks with a source, as the inventory last read them (what a storage copy moves)."""
    return [d for d in guest.summary.get("disks") or []
            if d.get("source") and d.get("device", "disk") == "disk" and not d.get("readonly")]


def request_migration(actor, guest: Guest, dest: Host, *, bandwidth_mib=0, copy_storage: bool = False) -> Job:
    """Queue moving `guest` to `dest` (PermissionDenied, MigrationRefused, jobs.JobRefused)."""
    check_allowed(actor, guest, dest)
    if dest.pk == guest.host_id:
        raise MigrationRefused(f"{guest.name} is already on {dest.name}: choose another host.")
    reason = _unavailable_reason(dest)
    if reason:
        raise MigrationRefused(f"{dest.name} is {reason}: choose a connected host.")
    if guest.host.status != HostStatus.CONNECTED:
        raise MigrationRefused(f"The guest's host {guest.host.name} is not connected: it cannot be moved now.")
    mode = mode_for(guest)
    if copy_storage and mode != "live":
        raise MigrationRefused("Disks are copied only during a live migration; copy a shut-off guest's disks "
                               "yourself, then move it offline.")
    params = {"destination": dest.pk, "destination_name": dest.name, "source": guest.host_id, "mode": mode,
              "bandwidth_mib": _bandwidth(bandwidth_mib), "copy_storage": bool(copy_storage)}
    job = jobs.create(actor, KIND, guest=guest, params=params,
                      target_name=guest.name)
    from guests.tasks_migrate import migrate_guest

    jobs.enqueue(job, migrate_guest)
    return job


def active_migration(guest: Guest) -> Job | None:
    return Job.objects.filter(kind=KIND, guest_uuid=guest.uuid,
                              status__in=[JobStatus.QUEUED, JobStatus.RUNNING]).order_by("-pk").first()


def request_cancel(actor, job: Job) -> bool:
    """Ask the running migration to abort; False when it already finished."""
    guest = Guest.objects.filter(uuid=job.guest_uuid).select_related("host").first()
    if guest is None or not can(actor, Action.OPERATE, guest):
        audit.record(actor, "guest.migrate-cancel", target_type="job", target_id=str(job.pk),
                     target_name=job.target_name, result=AuditResult.DENIED, detail="not allowed")
        raise PermissionDenied("You may not cancel this migration.")
    params = {**job.params, "cancel": actor.get_username()}
    updated = Job.objects.filter(pk=job.pk, kind=KIND, status__in=[JobStatus.QUEUED, JobStatus.RUNNING]).update(
        params=params)
    audit.record(actor, "guest.migrate-cancel", target_type="job", target_id=str(job.pk),
                 target_name=job.target_name, result=AuditResult.OK if updated else AuditResult.FAILED,
                 detail="cancel requested" if updated else "the job had already finished")
    return bool(updated)


# ------------------------------------------------------------------------ in the worker

class _CancelFlag:
    """Reads the job's cancel request from the database at most once a second."""

    def __init__(self, job_id: int):
        self.job_id, self.next_check, self.value = job_id, 0.0, False

    def __call__(self) -> bool:
        if not self.value and time.monotonic() >= self.next_check:
            self.next_check = time.monotonic() + CANCEL_CHECK_SECONDS
            try:
                params = Job.objects.filter(pk=self.job_id).values_list("params", flat=True).first() or {}
            except DatabaseError:  # never let a database hiccup stop following a running migration
                log.warning("reading the cancel flag of job %s failed", self.job_id, exc_info=True)
                return False
            self.value = bool(params.get("cancel"))
        return self.value


def _hosts(job: Job) -> tuple[Host, Host]:
    source = Host.objects.filter(pk=job.params.get("source") or job.host_id).first()
    dest = Host.objects.filter(pk=job.params.get("destination")).first()
    if source is None or dest is None:
        raise GuestNotFound("The source or destination host was removed from VirtDash meanwhile.")
    return source, dest


def hands_off(read_started, uuids=None) -> set[str]:
    """UUIDs (of `uuids`, or all) whose rows an inventory read begun at `read_started` must not
    delete, move or create; one query.

    While QEMU moves a guest, libvirt lists it on both hosts, then only on one; a watcher that saw
    the source's copy vanish before the destination's appear would delete the row (and with it the
    guest's grants, events and samples) and create a new one. So rows of guests a running migration
    job moves — including its final re-read of both hosts ("settling"), in which it moves the row
    itself — are left alone, and so are those a migration finished after the read began: such a
    read may show the guest where it was (a source still listing it, a destination that did not have
    it yet). The next read is fresh. Only jobs that ran (they settle when they end) count among the
    finished ones. The margin covers the clocks of a watcher and a worker on different machines
    (keep them NTP-synchronised). A job whose worker died is reaped, which releases its UUID.
    """
    jobs = Job.objects.filter(kind=KIND).filter(
        Q(status=JobStatus.RUNNING) | Q(finished__gte=read_started - RECENT_MARGIN, params__settling=True))
    if uuids is not None:
        jobs = jobs.filter(guest_uuid__in=list(uuids))
    return set(jobs.values_list("guest_uuid", flat=True))


RECENT_MARGIN = timedelta(seconds=2)


def _settle(job: Job) -> None:
    params = Job.objects.filter(pk=job.pk).values_list("params", flat=True).first() or {}
    Job.objects.filter(pk=job.pk).update(params={**params, "settling": True})


def sync_inventory(uuid: str, source: Host, dest: Host) -> None:
    """Re-read the guest on the destination first (moves the row by UUID), then on the source."""
    from guests import inventory  # inventory asks this module which guests are moving

    for host in (dest, source):
        try:
            inventory.refresh_guest(host, uuid, "migrated", own_migration=True)
        except Exception:  # the watcher's events and reconcile will catch up
            log.warning("re-reading %s on %s failed", uuid, host.name, exc_info=True)
            return  # without the destination's re-read, the source's could delete the row


def _storage_refusal(name: str, place: migration.GuestPlace, dest: Host, live: bool, copy: bool) -> str:
    local = [d for d in place.disks if d.needs_storage]
    if copy and local:
        problems = migration.copy_problems(dest.uri, local)
        return (f"{name}'s disks cannot be copied to {dest.name}: " + "; ".join(problems) + ".") if problems else ""
    missing = migration.missing_on(dest.uri, local)
    if not missing:
        return ""
    paths = ", ".join(f"{d.target or '?'}: {d.source}" for d in missing)
    if live:
        return (f"{name} has local disks that {dest.name} cannot reach ({paths}). Live migration needs shared "
                "storage — the same disk paths in a storage pool both hosts use (NFS, Ceph, iSCSI...) — or a "
                "storage copy (tick “copy disks”; the destination needs pools at the same paths). Diskless and "
                "kernel-boot guests need neither.")
    return (f"{name}'s disks are not in any storage pool of {dest.name} ({paths}). Copy them to the same paths "
            f"in a pool on {dest.name} (or use shared storage) before moving the guest offline.")


def _preflight(name: str, uuid: str, source: Host, dest: Host, place: migration.GuestPlace, copy: bool) -> None:
    if place.managed_save and not place.active:
        raise OperationRefused(f"{name} has a saved state (managed save) on {source.name} that cannot be moved. "
                               "Start it and migrate it live, or discard the saved state first.")
    if place.snapshots:
        raise OperationRefused(f"{name} has {place.snapshots} snapshot(s); libvirt cannot move snapshots to "
                               "another host. Delete them first, or keep the guest where it is.")
    if migration.name_taken_by_other(dest.uri, name, uuid):
        raise Conflict(f"{dest.name} already has another guest named {name}: rename one of them first.")
    problem = _storage_refusal(name, place, dest, live=place.active, copy=copy and place.active)
    if problem:
        raise OperationRefused(problem)


def _reporter(report: jobs.Report, dest: Host, with_disks: bool = False):
    """Progress readings → job reports: a new phase at once, copy figures at most once a second."""
    last = {"text": "", "percent": -1, "at": 0.0}

    def on_progress(progress: migration.Progress) -> None:
        if progress.phase == "preparing":
            percent, text = 12, f"Preparing {dest.name} to receive the guest"
        elif progress.phase == "copying":
            percent = 15 + int(progress.percent * 0.8)
            what = "disks and memory" if with_disks else "memory"
            text = (f"Copying {what}: {progress.percent}% ({progress.processed // 2**20} MiB sent, "
                    f"{progress.remaining // 2**20} MiB left)")
        else:
            percent, text = 95, f"Switching over to {dest.name}"
        if text == last["text"] or (percent == last["percent"] and time.monotonic() - last["at"] < 1):
            return
        last.update(text=text, percent=percent, at=time.monotonic())
        report(percent, text)

    return on_progress


def _move_live(job: Job, name: str, uuid: str, source: Host, dest: Host, report: jobs.Report,
               place: migration.GuestPlace) -> str:
    copy = [d.target for d in place.disks if d.needs_storage] if job.params.get("copy_storage") else []
    report(10, f"Starting live migration of {name} to {dest.name}" + (" with its disks" if copy else ""))
    outcome = migration.migrate_live(source.uri, dest.uri, uuid, on_progress=_reporter(report, dest, bool(copy)),
                                     should_cancel=_CancelFlag(job.pk),
                                     bandwidth_mib=int(job.params.get("bandwidth_mib") or 0), copy_disks=copy)
    sent = f", {outcome.transferred / 2**20:.1f} MiB sent" if outcome.transferred else ""
    downtime = f", {outcome.downtime_ms} ms paused" if outcome.downtime_ms is not None else ""
    copied = (f" Its disks ({', '.join(copy)}) were copied; the originals on {source.name} remain — delete them "
              "when you no longer need them.") if copy else ""
    return f"{name} now runs on {dest.name} (live migration in {outcome.seconds:.1f} s{sent}{downtime}).{copied}"


def _move_offline(name: str, uuid: str, source: Host, dest: Host, report: jobs.Report) -> str:
    report(30, f"Defining {name} on {dest.name}")
    migration.copy_definition(source.uri, dest.uri, uuid)
    report(70, f"Removing {name}'s definition from {source.name}")
    migration.remove_definition(source.uri, uuid)
    return f"{name} is now defined on {dest.name} (moved while shut off; its disks were not copied)."


def _keep_autostart(place: migration.GuestPlace, uuid: str, dest: Host) -> str:
    if not place.autostart:
        return ""
    try:
        migration.set_autostart(dest.uri, uuid)
    except VirtError as exc:
        return f" Autostart could not be turned on there: {exc}"
    return " Autostart stays on."


def perform_migration(job: Job, report: jobs.Report) -> str:
    source, dest = _hosts(job)
    uuid, name = job.guest_uuid, job.target_name
    if _CancelFlag(job.pk)():
        raise migration.MigrationCancelled(f"Migration of {name} was cancelled before it started.")
    report(3, f"Checking {dest.name}")
    migration.probe(dest.uri, dest.name)
    here, there = migration.locate(source.uri, uuid), migration.locate(dest.uri, uuid)
    try:
        if there.exists and (not here.exists or (there.active and not here.active)):
            migration.remove_definition(source.uri, uuid)  # a previous run got this far: finish it
            return f"{name} is on {dest.name}."
        if not here.exists:
            raise GuestNotFound(f"{name} is on neither {source.name} nor {dest.name} any more.")
        if there.active:
            raise Conflict(f"{name} runs on both {source.name} and {dest.name}; resolve this by hand.")
        _preflight(here.name or name, uuid, source, dest, here, bool(job.params.get("copy_storage")))
        if here.active:
            message = _move_live(job, here.name or name, uuid, source, dest, report, here)
        else:
            message = _move_offline(here.name or name, uuid, source, dest, report)
        return message + _keep_autostart(here, uuid, dest)
    finally:
        _settle(job)
        sync_inventory(uuid, source, dest)

"""Guest operations shared by views, the API and Celery tasks (thin views call these).

`request_*` functions run in the web process: check the policy, audit denials, create the Job
and enqueue its task after commit. `perform*` functions run in the worker: they re-load rows by
id, act through hosts.virt.domains, and converge (asking for the state the guest is already
in succeeds), so a redelivered task after a worker crash is harmless.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction

from core import audit, jobs
from core.choices import AuditResult
from core.models import Job
from core.policy import Action, can
from guests import inventory
from guests.choices import ACTIVE_STATES, GuestState, state_from_libvirt
from guests.models import Guest
from hosts import zones
from hosts.models import Host
from hosts.virt import domains
from hosts.virt.errors import GuestNotFound, VirtError

POLL_SECONDS = 0.5


class ShutdownTimeout(VirtError):
    """The guest ignored the ACPI request; the page offers Force off."""


@dataclass(frozen=True)
class GuestAction:
    name: str
    label: str
    policy: Action
    run: Callable[[Guest], None]
    when: frozenset[str]  # states in which the UI offers it (the service still converges in others)
    danger: bool = False


def _start(guest: Guest) -> None:
    domains.start(guest.host.uri, guest.uuid)  # restores a managed-save image when there is one


RUNNING = frozenset({GuestState.RUNNING, GuestState.BLOCKED})
ACTIVE = frozenset(ACTIVE_STATES)
STOPPED = frozenset({GuestState.SHUTOFF, GuestState.CRASHED, GuestState.NOSTATE})
ACTIONS: dict[str, GuestAction] = {a.name: a for a in [
    GuestAction("start", "Start", Action.OPERATE, _start, STOPPED),
    GuestAction("shutdown", "Shut down", Action.OPERATE, lambda g: _shutdown_and_wait(g, None), RUNNING),
    GuestAction("reboot", "Reboot", Action.OPERATE, lambda g: domains.reboot(g.host.uri, g.uuid), RUNNING),
    GuestAction("reset", "Reset", Action.OPERATE, lambda g: domains.reset(g.host.uri, g.uuid), RUNNING, True),
    GuestAction("destroy", "Force off", Action.OPERATE, lambda g: domains.destroy(g.host.uri, g.uuid), ACTIVE, True),
    GuestAction("suspend", "Pause", Action.OPERATE, lambda g: domains.suspend(g.host.uri, g.uuid), RUNNING),
    GuestAction("resume", "Resume", Action.OPERATE, lambda g: domains.resume(g.host.uri, g.uuid),
                frozenset({GuestState.PAUSED})),
    GuestAction("save", "Save (managed)", Action.OPERATE, lambda g: domains.managed_save(g.host.uri, g.uuid),
                RUNNING | {GuestState.PAUSED}),
    GuestAction("restore", "Restore", Action.OPERATE, _start, frozenset({GuestState.SHUTOFF})),
    GuestAction("autostart-on", "Autostart on", Action.OPERATE,
                lambda g: domains.set_autostart(g.host.uri, g.uuid, True), frozenset(GuestState.values)),
    GuestAction("autostart-off", "Autostart off", Action.OPERATE,
                lambda g: domains.set_autostart(g.host.uri, g.uuid, False), frozenset(GuestState.values)),
]}
BULK_ACTIONS = ("start", "shutdown", "reboot", "destroy", "suspend", "resume", "save")


def offered_actions(user, guest: Guest) -> list[GuestAction]:
    """The actions the detail page shows for this guest now (policy and state)."""
    if not can(user, Action.OPERATE, guest):
        return []
    offered = [a for a in ACTIONS.values() if guest.state in a.when and not a.name.startswith("autostart")]
    saved = guest.state_reason == "saved"  # shut off by a managed save: Start restores it
    offered = [a for a in offered if (a.name == "restore") == saved or a.name not in ("start", "restore")]
    offered.append(ACTIONS["autostart-off" if guest.autostart else "autostart-on"])
    return offered


def _check(actor, action: Action, guest: Guest, kind: str) -> None:
    if not can(actor, action, guest):
        audit.record(actor, kind, guest, result=AuditResult.DENIED, detail="not allowed")
        raise PermissionDenied(f"You may not {action.value} {guest.name}.")


def request_action(actor, guest: Guest, name: str) -> Job:
    """Queue one lifecycle action as a Job (raises PermissionDenied, JobRefused, KeyError)."""
    action = ACTIONS[name]
    kind = f"guest.{name}"
    _check(actor, action.policy, guest, kind)
    job = jobs.create(actor, kind, guest=guest, params={"action": name})
    from guests.tasks import guest_action

    jobs.enqueue(job, guest_action)
    return job


def request_delete(actor, guest: Guest, *, confirm: str, volume_paths: list[str], force: bool) -> Job:
    """Queue deleting the guest; `confirm` must be its name; volumes must be its own disks."""
    _check(actor, Action.MANAGE, guest, "guest.delete")
    if confirm != guest.name:
        raise ValueError("Type the guest's name exactly to confirm.")
    own = {d.get("source") for d in guest.summary.get("disks", []) if d.get("device", "disk") == "disk"}
    strangers = [p for p in volume_paths if p not in own]
    if strangers:
        raise ValueError(f"Not a disk of {guest.name}: {', '.join(strangers)}")
    if guest.state in ACTIVE_STATES and not force:
        raise ValueError(f"{guest.name} is running: shut it down first, or tick “force off and delete”.")
    job = jobs.create(actor, "guest.delete", guest=guest, params={"volume_paths": volume_paths, "force": force})
    from guests.tasks import guest_delete

    jobs.enqueue(job, guest_delete)
    return job


@dataclass
class BulkRequest:
    """What a bulk request queued: one job per zone of the selection (default zone first, then by name),
    and `busy`: (guest name, holding job) of the zones where every guest was busy (those got no job)."""

    jobs: list[Job]
    busy: list[tuple[str, Job]]

    def skipped(self) -> list[str]:
        """Every selected guest left alone because another job holds it (in a job's items or in `busy`)."""
        names = [item["name"] for job in self.jobs for item in job.items if item.get("skipped")]
        return names + [name for name, _holder in self.busy]

    @staticmethod
    def _held(job: Job) -> int:
        return len(job.params["guests"]) - sum(1 for item in job.items if item.get("skipped"))

    def summary(self) -> str:
        """Names every job: 'Queued 3 jobs: #12 (zone default, 2 guests), #13 (zone eu-west, 4 guests), …'."""
        def guests(n: int) -> str:
            return f"{n} guest{'' if n == 1 else 's'}"

        if len(self.jobs) == 1:
            job = self.jobs[0]
            zone = jobs.zone_of(job)
            return f"Job #{job.pk} started for {guests(self._held(job))}" + (f" in zone {zone}." if zone else ".")
        return f"Queued {len(self.jobs)} jobs: " + ", ".join(
            f"#{job.pk} (zone {zones.label(jobs.zone_of(job))}, {guests(self._held(job))})" for job in self.jobs) + "."


def request_bulk_by_zone(actor, guests: list[Guest], name: str) -> BulkRequest:
    """Queue one bulk Job per zone of the selected guests' hosts, each holding its own guests' locks
    and sent to its zone's Celery queue (a zone worker reaches only its zone's hosts).

    Guests the actor may not operate are audited as denied and left out. A zone whose guests are
    all busy gets no job; JobRefused only when every selected guest is busy (nothing is created then).
    """
    if name not in BULK_ACTIONS:
        raise KeyError(name)
    kind = f"guest.bulk-{name}"
    allowed = [g for g in guests if can(actor, ACTIONS[name].policy, g)]
    for guest in guests:
        if guest not in allowed:
            audit.record(actor, f"guest.{name}", guest, result=AuditResult.DENIED, detail="bulk; not allowed")
    if not allowed:
        raise PermissionDenied("You may not do that to any of the selected guests.")
    by_zone = _by_zone(allowed)
    from guests.tasks import guest_bulk

    created, busy, holders = [], [], []
    with transaction.atomic():
        for zone in sorted(by_zone, key=lambda z: (z != "", z)):
            members = by_zone[zone]
            target = f"{len(members)} guests" + (f", zone {zones.label(zone)}" if len(by_zone) > 1 or zone else "")
            try:
                job = jobs.create(actor, kind, host=None, target_name=target, guests=members,
                                  params={"action": name, "guests": [g.pk for g in members], "zone": zone})
            except jobs.JobRefused as exc:
                if len(exc.holders) != len(members):
                    raise  # not "all busy" (e.g. a lock changing hands): refuse the whole request
                holders += exc.holders
                busy += [(g.name, h) for g, h in zip(members, exc.holders, strict=True)]
                continue
            jobs.enqueue(job, guest_bulk)
            created.append(job)
        if not created:
            raise jobs.JobRefused(jobs.all_busy_message(holders), holders=holders)
    return BulkRequest(created, busy)


def _by_zone(guests: list[Guest]) -> dict[str, list[Guest]]:
    """The guests grouped by their host's zone ('' = the default zone), in selection order; one query."""
    zone_of_host = dict(Host.objects.filter(pk__in={g.host_id for g in guests}).values_list("pk", "zone"))
    groups: dict[str, list[Guest]] = {}
    for guest in guests:
        groups.setdefault(zone_of_host.get(guest.host_id, ""), []).append(guest)
    return groups


def request_bulk(actor, guests: list[Guest], name: str) -> Job:
    """Queue the one bulk Job of a selection within one zone; ValueError if the guests span zones
    (use request_bulk_by_zone, which makes one job per zone)."""
    if len(_by_zone(guests)) > 1:
        raise ValueError("The selected guests span several zones: use request_bulk_by_zone.")
    return request_bulk_by_zone(actor, guests, name).jobs[0]


# ------------------------------------------------------------------------ in the worker

def _guest_for(job: Job) -> Guest:
    guest = Guest.objects.select_related("host").filter(uuid=job.guest_uuid).first()
    if guest is None:
        raise GuestNotFound(f"{job.target_name} is no longer in the inventory (deleted meanwhile?)")
    return guest


def _shutdown_and_wait(guest: Guest, report: jobs.Report | None) -> None:
    """ACPI shutdown, then wait up to VIRTDASH_SHUTDOWN_TIMEOUT for the guest to power off."""
    domains.shutdown(guest.host.uri, guest.uuid)
    timeout = settings.VIRTDASH_SHUTDOWN_TIMEOUT
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if state_from_libvirt(domains.state(guest.host.uri, guest.uuid)) not in ACTIVE_STATES:
            return
        if report is not None:
            left = deadline - time.monotonic()
            report(int(100 * (1 - left / timeout)), f"Waiting for {guest.name} to shut down ({left:.0f} s left)")
        time.sleep(POLL_SECONDS)
    raise ShutdownTimeout(f"{guest.name} did not shut down within {timeout} s (the guest ignored the ACPI "
                          "request). Use Force off to power it off.")


def perform_action(job: Job, report: jobs.Report) -> str:
    guest = _guest_for(job)
    action = ACTIONS[job.params["action"]]
    report(10, f"{action.label}: {guest.name}")
    try:
        if action.name == "shutdown":
            _shutdown_and_wait(guest, report)
        else:
            action.run(guest)
    finally:
        inventory.refresh_after_action(guest)
    return f"{action.label}: {guest.name} done."


def perform_delete(job: Job, report: jobs.Report) -> str:
    guest = Guest.objects.select_related("host").filter(uuid=job.guest_uuid).first()
    if guest is None:
        return f"{job.target_name} was already deleted."
    report(20, f"Deleting {guest.name}")
    try:
        problems = domains.undefine(guest.host.uri, guest.uuid, volume_paths=job.params.get("volume_paths", []),
                                    force=bool(job.params.get("force")))
    except GuestNotFound:
        problems = []
    inventory.refresh_after_action(guest)
    volumes = len(job.params.get("volume_paths", []))
    if problems:
        raise VirtError(f"{guest.name} was deleted, but some volumes were not: " + "; ".join(problems))
    return f"Deleted {guest.name}" + (f" and {volumes} volume(s)." if volumes else ".")


def perform_bulk(job: Job, report: jobs.Report) -> str:
    """The job holds every guest's lock (taken at creation); guests it could not take are skipped items."""
    action = ACTIONS[job.params["action"]]
    guests = list(Guest.objects.select_related("host").filter(pk__in=job.params["guests"]))
    done = {item.get("uuid") or item["name"] for item in job.items}  # skipped, or finished before a crash
    guests = [g for g in guests if g.uuid not in done and g.name not in done]
    if action.name == "shutdown":
        _bulk_shutdown(job, guests, report)
    for index, guest in enumerate(guests if action.name != "shutdown" else []):
        job.items.append(_bulk_item(job, guest, action))
        report(int(100 * (index + 1) / max(1, len(guests))), f"{action.label}: {index + 1} of {len(guests)}")
    skipped = sum(1 for i in job.items if i.get("skipped"))
    failed = sum(1 for i in job.items if not i["ok"]) - skipped
    succeeded = len(job.items) - failed - skipped
    busy = f", {skipped} busy — skipped" if skipped else ""
    if failed:
        raise VirtError(f"{action.label}: {succeeded} succeeded, {failed} failed{busy}.")
    if skipped:
        return f"{action.label}: {succeeded} guests done{busy}."
    return f"{action.label}: all {len(job.items)} guests done."


def _bulk_shutdown(job: Job, guests: list[Guest], report: jobs.Report) -> None:
    """ACPI to every guest first, then one shared deadline: N guests take one timeout, not N."""
    waiting: dict[str, Guest] = {}
    for guest in guests:
        item = _bulk_item(job, guest, GuestAction("shutdown", "Shut down", Action.OPERATE,
                                                  lambda g: domains.shutdown(g.host.uri, g.uuid), RUNNING))
        if item["ok"]:
            waiting[guest.uuid] = guest
        else:
            job.items.append(item)
    timeout = settings.VIRTDASH_SHUTDOWN_TIMEOUT
    deadline = time.monotonic() + timeout
    while waiting and time.monotonic() < deadline:
        for uuid, guest in list(waiting.items()):  # by UUID: two hosts may hold guests of one name
            try:
                stopped = state_from_libvirt(domains.state(guest.host.uri, guest.uuid)) not in ACTIVE_STATES
            except GuestNotFound:
                stopped = True
            if stopped:
                job.items.append({"name": guest.name, "uuid": uuid, "ok": True, "message": "shut down"})
                inventory.refresh_after_action(waiting.pop(uuid))
        report(int(100 * len(job.items) / max(1, len(guests))), f"Shut down {len(job.items)} of {len(guests)}")
        if waiting:
            time.sleep(POLL_SECONDS)
    for guest in waiting.values():
        job.items.append({"name": guest.name, "uuid": guest.uuid, "ok": False,
                          "message": f"did not shut down within {timeout} s; force it off"})


def _bulk_item(job: Job, guest: Guest, action: GuestAction) -> dict:
    busy = jobs.active_job_for_guest(guest.uuid, exclude=job.pk)  # only for jobs queued before locks
    if busy is not None:
        return jobs.skipped_item(guest.name, guest.uuid, busy)
    try:
        action.run(guest)
    except VirtError as exc:
        return {"name": guest.name, "uuid": guest.uuid, "ok": False, "message": str(exc)}
    finally:
        inventory.refresh_after_action(guest)
    return {"name": guest.name, "uuid": guest.uuid, "ok": True, "message": "done"}

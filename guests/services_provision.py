"""Provisioning services: config history, edits, raw XML, clone and snapshots.

Views, tasks and the watcher hook call these. Anything that changes libvirt runs inside a
Job (`core.jobs.run` → the `run_*` functions here, called by guests/tasks_provision.py); the
request side only validates, plans and queues. Every define goes through
`provision.define_validated` (VIR_DOMAIN_DEFINE_VALIDATE), so a refused definition leaves the
old one in place. The guest wizard lives in guests/services_create.py.
"""

from __future__ import annotations

import difflib
import hashlib
import logging
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from core import audit, jobs, live
from core.choices import AuditResult
from core.models import Job
from guests.choices import state_from_libvirt
from guests.models import Guest
from guests.models_history import ConfigVersion
from guests.provision_edit import EditError, Plan
from hosts.models import Host
from hosts.virt import provision, snapshots, storage
from hosts.virt.errors import Conflict, GuestNotFound, OperationRefused, VirtError
from virtdash.xml import Disk, Domain, DomainSnapshot, StorageVolume, XMLInputError, clone_prepare, parse_untrusted
from virtdash.xml.names import validate_guest_name, validate_volume_name

log = logging.getLogger(__name__)
CLAIM_WINDOW = timedelta(seconds=120)
KEEP_VERSIONS = 200


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# ------------------------------------------------------------------ config history


def record_version(host: Host, uuid: str, xml: str, *, source: str, actor=None, note: str = "",
                   name: str = "") -> ConfigVersion:
    """Keep `xml` as the guest's newest version unless it equals the newest already kept.

    The define event of our own edit may be seen by the watcher before the task records it;
    that anonymous row is then claimed (actor, source) instead of being duplicated.
    """
    digest = sha256(xml)
    name = name or _name_of(xml)
    with transaction.atomic():
        latest = ConfigVersion.objects.filter(host=host, guest_uuid=uuid).select_for_update().first()
        if latest is not None and latest.sha256 == digest:
            fresh = timezone.now() - latest.created < CLAIM_WINDOW
            if actor is not None and latest.actor_id is None and fresh and latest.source == ConfigVersion.Source.EVENT:
                latest.actor, latest.actor_name, latest.source = actor, actor.get_username(), source
                latest.note = note[:255]
                latest.save(update_fields=["actor", "actor_name", "source", "note"])
            return latest
        authenticated = actor is not None and actor.is_authenticated
        version = ConfigVersion.objects.create(
            host=host, guest_uuid=uuid, guest_name=name[:255], xml=xml, sha256=digest, source=source,
            actor=actor if authenticated else None, actor_name=actor.get_username() if authenticated else "",
            note=note[:255])
        _prune(host, uuid)
        return version


def _prune(host: Host, uuid: str) -> None:
    """Keep the newest KEEP_VERSIONS per guest (a define loop must not fill the database)."""
    old = ConfigVersion.objects.filter(host=host, guest_uuid=uuid).values_list("pk", flat=True)[KEEP_VERSIONS:]
    stale = list(old)
    if stale:
        ConfigVersion.objects.filter(pk__in=stale).delete()


def _name_of(xml: str) -> str:
    try:
        return Domain.parse(xml).name or ""
    except (XMLInputError, ValueError):
        return ""


def ensure_baseline(host: Host, uuid: str, xml: str) -> None:
    """Before VirtDash's first change to a guest it never saw defined, keep what it was, so
    the history can always roll back to the state before VirtDash touched it."""
    if not ConfigVersion.objects.filter(host=host, guest_uuid=uuid).exists():
        record_version(host, uuid, xml, source=ConfigVersion.Source.EVENT, note="as found before the first change")


def record_current(host: Host, uuid: str, *, source: str, actor=None, note: str = "") -> ConfigVersion | None:
    """Read the inactive secure XML from libvirt and record it; None if the guest is gone."""
    try:
        xml = provision.inactive_xml(host.uri, uuid)
    except GuestNotFound:
        return None
    return record_version(host, uuid, xml, source=source, actor=actor, note=note)


def sync_history(guest: Guest) -> None:
    """Keep the definition as it is now if it differs from the newest version (a change made
    while no watcher was listening); the history page calls this before listing."""
    try:
        xml = provision.inactive_xml(guest.host.uri, guest.uuid)
    except VirtError:
        return  # host unreachable or guest gone: show what we have
    latest = versions(guest).first()
    if latest is None or latest.sha256 != sha256(xml):
        record_version(guest.host, guest.uuid, xml, source=ConfigVersion.Source.EVENT,
                       note="as found" if latest is None else "changed while VirtDash was not watching")


def versions(guest: Guest):
    return ConfigVersion.objects.filter(host_id=guest.host_id, guest_uuid=guest.uuid)


@dataclass(frozen=True)
class DiffLine:
    kind: str  # "add", "del", "hunk", "ctx", "file"
    text: str


def diff_lines(old: str, new: str, old_label: str = "before", new_label: str = "after") -> list[DiffLine]:
    """Unified diff as typed lines; the template escapes the text."""
    lines = []
    for line in difflib.unified_diff(old.splitlines(), new.splitlines(), old_label, new_label, lineterm="", n=3):
        if line.startswith(("---", "+++")):
            kind = "file"
        elif line.startswith("@@"):
            kind = "hunk"
        elif line.startswith("+"):
            kind = "add"
        elif line.startswith("-"):
            kind = "del"
        else:
            kind = "ctx"
        lines.append(DiffLine(kind, line))
    return lines


class HistoryHooks:
    """Watcher hooks: a "defined" lifecycle event means a new definition to keep."""

    def on_connected(self, host: Host) -> None:
        pass

    def on_event(self, host: Host, event) -> None:
        if event.kind == "lifecycle" and event.event == "defined":
            record_current(host, event.uuid, source=ConfigVersion.Source.EVENT)

    def on_tick(self, host: Host) -> None:
        pass

    def on_disconnected(self, host: Host) -> None:
        pass


HISTORY_HOOKS = HistoryHooks()


# ------------------------------------------------------------------ inventory


def touch_inventory(host: Host, uuid: str) -> Guest | None:
    """Re-read one guest from libvirt into its inventory row (create it if new); None if gone.

    Uses the inventory's own `refresh_guest` when present, so there is one way rows are written.
    """
    try:
        from guests.inventory import refresh_guest
    except ImportError:
        refresh_guest = None
    if refresh_guest is not None:
        refresh_guest(host, uuid)
        return Guest.objects.filter(host=host, uuid=uuid).first()
    try:
        state = provision.state(host.uri, uuid)
        dom = Domain.parse(provision.inactive_xml(host.uri, uuid))
    except GuestNotFound:
        Guest.objects.filter(host=host, uuid=uuid).delete()
        live.publish(live.guest_topics(host.pk, uuid), "guest", {"uuid": uuid, "gone": True})
        return None
    fields = {
        "name": state["name"], "state": state_from_libvirt(state["state"]), "autostart": state["autostart"],
        "persistent": state["persistent"], "title": dom.title or "", "description": dom.description or "",
        "vcpus": dom.vcpus or 0, "max_vcpus": dom.vcpus_max or 0, "memory_kib": dom.current_memory_kib or 0,
        "max_memory_kib": dom.memory_kib or 0, "owner": dom.owner or "", "tags": dom.tags,
        "os_id": dom.os_id or "", "graphics": dom.graphics[0].type if dom.graphics else "",
        "summary": dom.summary(),
    }
    guest, _ = Guest.objects.update_or_create(host=host, uuid=uuid, defaults=fields)
    live.publish(live.guest_topics(host.pk, uuid), "guest", {"uuid": uuid})
    return guest


# ------------------------------------------------------------------ edits (plan → preview → job)


@dataclass
class Pending:
    """An edit shown to the user before it is applied."""

    before: str
    after: str
    plan: Plan
    summary: str

    @property
    def before_normalised(self) -> str:
        """The current definition through our serializer, so quoting style is not a change."""
        return Domain.parse(self.before).to_string()

    @property
    def diff(self) -> list[DiffLine]:
        return diff_lines(self.before_normalised, self.after, "current definition", "after the change")

    @property
    def changed(self) -> bool:
        return self.before_normalised != self.after or bool(self.plan.live_ops or self.plan.pre_ops)

    @property
    def has_live(self) -> bool:
        return any(op["op"] not in ("autostart",) for op in self.plan.live_ops)

    def to_session(self, guest: Guest) -> dict:
        return {"guest": guest.pk, "before_sha": sha256(self.before), "after": self.after,
                "summary": self.summary, **self.plan.to_params()}


def current_domain(guest: Guest) -> tuple[str, Domain, bool]:
    """(inactive XML, parsed Domain, running?) of a guest, read from libvirt."""
    xml = provision.inactive_xml(guest.host.uri, guest.uuid)
    active = provision.state(guest.host.uri, guest.uuid)["active"]
    return xml, Domain.parse(xml), active


def plan_change(guest: Guest, summary: str, change) -> Pending:
    """Run `change(dom, active) -> Plan` on a fresh copy of the definition; nothing is applied."""
    xml, dom, active = current_domain(guest)
    plan = change(dom, active)
    return Pending(before=xml, after=dom.to_string(), plan=plan, summary=summary)


def queue_edit(actor, guest: Guest, pending: dict, mode: str) -> Job:
    """Queue the previewed edit. `mode`: "config" (next boot), "live" or "both"."""
    from guests import tasks_provision

    if mode not in ("config", "live", "both"):
        raise EditError("Choose how to apply the change.")
    params = {k: pending[k] for k in ("before_sha", "after", "pre_ops", "live_ops", "summary")}
    params["mode"] = mode
    job = jobs.create(actor, "guest.edit", guest=guest, params=params)
    jobs.enqueue(job, tasks_provision.apply_edit)
    return job


def _apply_pre_op(uri: str, op: dict, created: list[str]) -> None:
    """Volume work before the define, through the storage module (free-space checks on capacity)."""
    if op["op"] == "create_volume":
        vol = StorageVolume.parse(op["xml"])
        info = storage.create_volume(uri, op["pool"], vol.name, vol.capacity, vol.format or "qcow2")
        created.append(info.path)
        if info.path != op["path"]:
            raise Conflict(f"The pool put the volume at {info.path}, not {op['path']}; nothing else was changed.")
    elif op["op"] == "resize_volume":
        vol = provision.volume_by_path(uri, op["path"])
        if vol is None:
            raise OperationRefused(f"{op['path']} is not a volume of a storage pool; VirtDash cannot resize it.")
        storage.resize_volume(uri, vol["pool"], vol["name"], int(op["capacity"]))


def _apply_live_op(uri: str, uuid: str, op: dict, active: bool) -> None:
    kind = op["op"]
    if kind == "autostart":
        provision.set_autostart(uri, uuid, op["enabled"])
    elif not active:
        return
    elif kind == "memory":
        provision.set_memory_live(uri, uuid, int(op["kib"]))
    elif kind == "vcpus":
        provision.set_vcpus_live(uri, uuid, int(op["count"]))
    elif kind == "attach":
        provision.attach_live(uri, uuid, op["xml"])
    elif kind == "detach":
        provision.detach_live(uri, uuid, op["xml"])
    elif kind == "update":
        provision.update_live(uri, uuid, op["xml"])


def _remember(job: Job, **values) -> None:
    """Persist progress markers in the job's params so a re-delivered task can converge."""
    job.params = {**job.params, **values}
    Job.objects.filter(pk=job.pk).update(params=job.params)


def _job_guest(job: Job) -> tuple[Host, str]:
    if job.host is None:
        raise GuestNotFound("The guest's host is gone.")
    return job.host, job.guest_uuid


def run_edit(job: Job, report) -> str:
    """The task body of an edit: check nothing changed since the preview, then apply."""
    host, uuid = _job_guest(job)
    params = job.params
    current = provision.inactive_xml(host.uri, uuid)
    ensure_baseline(host, uuid, current)
    already_defined = params.get("defined_sha") == sha256(current)  # a re-delivered task after the define
    if sha256(current) != params["before_sha"] and not already_defined:
        raise Conflict("The guest's definition changed since the preview; open the editor again.")
    created: list[str] = []
    try:
        for op in [] if already_defined else params.get("pre_ops", []):
            report(20, f"Storage: {op['op'].replace('_', ' ')}")
            _apply_pre_op(host.uri, op, created)
        if params["mode"] in ("config", "both") and not already_defined:
            report(50, "Defining the new configuration")
            provision.define_validated(host.uri, params["after"])
            _remember(job, defined_sha=sha256(provision.inactive_xml(host.uri, uuid)))
    except VirtError:
        for path in created:
            provision.delete_volume(host.uri, path)
        raise
    active = provision.state(host.uri, uuid)["active"]
    for op in params.get("live_ops", []):
        if op["op"] == "autostart" or params["mode"] in ("live", "both"):
            report(75, f"Live: {op['op']}")
            _apply_live_op(host.uri, uuid, op, active)
    record_current(host, uuid, source=ConfigVersion.Source.EDIT, actor=job.actor, note=params.get("summary", ""))
    touch_inventory(host, uuid)
    return f"Applied: {params.get('summary') or 'edit'}"


# ------------------------------------------------------------------ attaching existing images


def check_attach_source(actor, host: Host, path: str) -> None:
    """Refuse (EditError) an existing image whose backing chain leaves VIRTDASH_POOL_PATHS when
    ``actor`` is no administrator of ``host``: a qcow2 backed by /etc/shadow would hand that
    file to the guest. The prefixes and their check are the pool-location ones
    (hosts.services_storage.pool_paths_for, storage.path_within); admins are exempt."""
    from hosts.services_storage import pool_paths_for

    allowed = pool_paths_for(actor, host)
    if allowed is None or not path:
        return
    chain = storage.backing_chain(host.uri, path)
    where = ", ".join(allowed) or "(none configured)"
    for backing in chain.paths:
        try:
            inside = storage.path_within(backing, allowed)
        except ValueError:
            inside = False
        if not inside:
            raise EditError(f"{path} is refused: its backing chain reaches {backing}, which is not under one of "
                            f"{where} (VIRTDASH_POOL_PATHS); only an administrator may attach it.")
    if chain.unresolved and (chain.paths or chain.unresolved != path):
        raise EditError(f"{path} is refused: the backing file {chain.unresolved} is not a volume of a storage "
                        "pool, so its own backing files cannot be checked; only an administrator may attach it.")
    if chain.unresolved:
        raise EditError(f"{path} is not a volume of a storage pool, so its backing files cannot be checked; "
                        "only an administrator may attach it.")


def new_disk_sources(pending: Pending) -> list[str]:
    """Source files of disks in the previewed definition that the current one does not have,
    except volumes the edit itself creates (pre_ops)."""
    before = {d.source_file for d in Domain.parse(pending.before).devices_of(Disk) if d.source_file}
    made = {op.get("path") for op in pending.plan.pre_ops if op.get("op") == "create_volume"}
    after = [d.source_file for d in Domain.parse(pending.after).devices_of(Disk) if d.source_file]
    return list(dict.fromkeys(p for p in after if p not in before and p not in made))


def check_new_sources(actor, guest: Guest, pending: Pending) -> None:
    for path in new_disk_sources(pending):
        check_attach_source(actor, guest.host, path)


# ------------------------------------------------------------------ raw XML and rollback


def check_raw_xml(guest: Guest, text: str) -> Domain:
    """Parse pasted XML safely and check it describes this guest; raises EditError."""
    try:
        dom = Domain(parse_untrusted(text, root="domain"))
    except XMLInputError as exc:
        raise EditError(str(exc)) from None
    if dom.uuid and dom.uuid.lower() != guest.uuid.lower():
        raise EditError("The XML has another guest's UUID; keep the UUID (clone the guest to copy it).")
    if dom.name != guest.name:
        raise EditError(f"The XML renames the guest to {dom.name!r}; keep the name {guest.name!r}.")
    if dom.uuid is None:
        dom.uuid = guest.uuid
    return dom


def queue_define(actor, guest: Guest, xml: str, *, kind: str, source: str, note: str = "") -> Job:
    """Queue a validated define of a full definition (raw editor, rollback)."""
    from guests import tasks_provision

    job = jobs.create(actor, kind, guest=guest, params={"xml": xml, "source": source, "note": note})
    jobs.enqueue(job, tasks_provision.define_guest)
    return job


def run_define(job: Job, report) -> str:
    host, uuid = _job_guest(job)
    dom = Domain(parse_untrusted(job.params["xml"], root="domain"))
    if (dom.uuid or "").lower() != uuid.lower():
        raise OperationRefused("The definition belongs to another guest; nothing was changed.")
    ensure_baseline(host, uuid, provision.inactive_xml(host.uri, uuid))
    report(40, "Validating and defining")
    provision.define_validated(host.uri, dom.to_string())
    record_current(host, uuid, source=job.params.get("source", ConfigVersion.Source.RAW), actor=job.actor,
                   note=job.params.get("note", ""))
    touch_inventory(host, uuid)
    return "The new definition is in place (it applies from the next boot if the guest is running)."


def queue_rollback(actor, guest: Guest, version: ConfigVersion) -> Job:
    if version.host_id != guest.host_id or version.guest_uuid != guest.uuid:
        raise EditError("That version belongs to another guest.")
    note = f"roll back to version #{version.pk} of {version.created:%Y-%m-%d %H:%M:%S}"
    return queue_define(actor, guest, version.xml, kind="guest.rollback", source=ConfigVersion.Source.ROLLBACK,
                        note=note)


# ------------------------------------------------------------------ clone


def check_clone(guest: Guest, new_name: str) -> str:
    try:
        new_name = validate_guest_name(new_name)
    except ValueError as exc:
        raise EditError(str(exc)) from None
    if provision.uuid_for_name(guest.host.uri, new_name) is not None:
        raise EditError(f"A guest named {new_name} already exists on {guest.host}.")
    if provision.state(guest.host.uri, guest.uuid)["active"]:
        raise EditError(f"Shut {guest.name} down before cloning it.")
    return new_name


def queue_clone(actor, guest: Guest, new_name: str, linked: bool) -> Job:
    from guests import tasks_provision

    new_name = check_clone(guest, new_name)
    job = jobs.create(actor, "guest.clone", guest=guest, target_name=f"{guest.name} → {new_name}",
                      params={"new_name": new_name, "linked": bool(linked)})
    jobs.enqueue(job, tasks_provision.clone_guest)
    return job


def _clone_volume_name(new_name: str, target: str, fmt: str) -> str:
    return validate_volume_name(f"{new_name}-{target}.{'qcow2' if fmt == 'qcow2' else 'img'}")


def run_clone(job: Job, report) -> str:
    host, uuid = _job_guest(job)
    new_name, linked = job.params["new_name"], job.params["linked"]
    existing = provision.uuid_for_name(host.uri, new_name)
    if existing is not None:
        touch_inventory(host, existing)
        return f"{new_name} exists already."  # a re-run after the define: converge
    if provision.state(host.uri, uuid)["active"]:
        raise Conflict("The guest is running; shut it down before cloning.")
    plan = clone_prepare(Domain.parse(provision.inactive_xml(host.uri, uuid)), new_name)
    created: list[str] = []
    try:
        for index, disk in enumerate(plan.disks_to_copy):
            created.append(_clone_disk(job, host, disk, new_name, linked, index, len(plan.disks_to_copy), report))
        report(90, "Defining the clone")
        new_uuid = provision.define_validated(host.uri, plan.domain.to_string())
    except VirtError:
        for path in created:
            provision.delete_volume(host.uri, path)
        raise
    record_current(host, new_uuid, source=ConfigVersion.Source.CLONE, actor=job.actor,
                   note=f"clone of {job.target_name}")
    touch_inventory(host, new_uuid)
    kind = "linked clone" if linked else "clone"
    return f"Created {kind} {new_name} with {len(created)} disk(s)."


def _clone_disk(job, host, disk, new_name, linked, index, count, report) -> str:
    source = disk.source_file
    vol = provision.volume_by_path(host.uri, source) if source else None
    if vol is None:
        raise OperationRefused(f"Disk {disk.target} ({disk.source}) is not a volume of a storage pool; "
                               "VirtDash copies pool volumes only.")
    fmt = disk.driver_type or "raw"
    if linked and fmt != "qcow2":
        raise OperationRefused(f"A linked clone needs qcow2 disks; {disk.target} is {fmt}.")
    name = _clone_volume_name(new_name, disk.target or f"disk{index}", "qcow2" if linked else fmt)
    base = 5 + index * 80 // max(1, count)
    span = 80 // max(1, count)
    if linked:
        xml = StorageVolume.new(name, vol["capacity"], format="qcow2", backing_path=source, backing_format=fmt)
        report(base, f"Creating overlay {name} on {source}")
        path = provision.create_volume(host.uri, vol["pool"], xml.to_string())
    else:
        report(base, f"Copying {disk.target} to {name}")
        path = storage.clone_volume(host.uri, vol["pool"], vol["name"], name,
                                    progress=lambda pct, text: report(base + pct * span // 100,
                                                                      f"{disk.target}: {text}")).path
    disk.set_source_file(path)
    if linked:
        disk.driver_type = "qcow2"
    return path


# ------------------------------------------------------------------ snapshots


def snapshot_list(guest: Guest) -> list[dict]:
    return snapshots.list_snapshots(guest.host.uri, guest.uuid)


def queue_snapshot(actor, guest: Guest, *, name: str, description: str, memory: bool, disk_only: bool) -> Job:
    from guests import tasks_provision

    try:
        snap = DomainSnapshot.new(name, description or None)
    except ValueError as exc:
        raise EditError(str(exc)) from None
    active = provision.state(guest.host.uri, guest.uuid)["active"]
    if disk_only:
        snap.memory_snapshot = "no"
    elif active and not memory:
        raise EditError("A running guest's internal snapshot includes its memory; tick "
                        "'with memory' or choose disk-only.")
    params = {"xml": snap.to_string(), "disk_only": disk_only, "name": name}
    job = jobs.create(actor, "snapshot.create", guest=guest, params=params)
    jobs.enqueue(job, tasks_provision.snapshot_create)
    return job


def queue_snapshot_action(actor, guest: Guest, kind: str, name: str) -> Job:
    from guests import tasks_provision

    task = {"snapshot.revert": tasks_provision.snapshot_revert, "snapshot.delete": tasks_provision.snapshot_delete}
    job = jobs.create(actor, kind, guest=guest, params={"name": name})
    jobs.enqueue(job, task[kind])
    return job


def run_snapshot_create(job: Job, report) -> str:
    host, uuid = _job_guest(job)
    existing = {s["name"] for s in snapshots.list_snapshots(host.uri, uuid)}
    if job.params["name"] in existing:
        if job.params.get("attempted"):
            return f"Snapshot {job.params['name']} created."  # a re-delivered task: it got that far
        raise Conflict(f"A snapshot named {job.params['name']} exists already.")
    _remember(job, attempted=True)
    report(30, "Taking the snapshot")
    name = snapshots.create(host.uri, uuid, job.params["xml"], disk_only=job.params["disk_only"])
    touch_inventory(host, uuid)
    _publish_snapshots(host, uuid)
    return f"Snapshot {name} created."


def run_snapshot_revert(job: Job, report) -> str:
    host, uuid = _job_guest(job)
    ensure_baseline(host, uuid, provision.inactive_xml(host.uri, uuid))
    report(30, f"Reverting to {job.params['name']}")
    snapshots.revert(host.uri, uuid, job.params["name"])
    record_current(host, uuid, source=ConfigVersion.Source.SNAPSHOT, actor=job.actor,
                   note=f"revert to snapshot {job.params['name']}")
    touch_inventory(host, uuid)
    _publish_snapshots(host, uuid)
    return f"Reverted to snapshot {job.params['name']}."


def run_snapshot_delete(job: Job, report) -> str:
    host, uuid = _job_guest(job)
    report(30, f"Deleting {job.params['name']}")
    deleted = snapshots.delete(host.uri, uuid, job.params["name"])
    _publish_snapshots(host, uuid)
    return f"Snapshot {job.params['name']} deleted." if deleted else "The snapshot was already gone."


def _publish_snapshots(host: Host, uuid: str) -> None:
    live.publish([f"guest.{uuid}"], "snapshots", {"uuid": uuid})


# ------------------------------------------------------------------ audit helpers


def audit_denied(actor, action: str, target, detail: str = "") -> None:
    audit.record(actor, action, target, result=AuditResult.DENIED, detail=detail)


def audit_refused(actor, action: str, target, detail: str) -> None:
    """Input refused before any job: recorded as a failure with the reason."""
    audit.record(actor, action, target, result=AuditResult.FAILED, detail=detail)

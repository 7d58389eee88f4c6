"""Storage operations for pages, the API and tasks: audit every change, jobs for long ones.

Views ask `core.policy` first; tasks re-check the job's actor here (`require_manage`). Inputs are
validated by `hosts.virt.storage` (names, sizes, paths) before any libvirt call; a refusal is a
`ValueError` (bad input) or a `VirtError` (libvirt or state), both with an operator's message.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings

from core import audit, jobs, live
from core.choices import AuditResult
from core.models import Job
from core.policy import Action, can
from hosts.models import Host
from hosts.virt import storage
from hosts.virt.errors import Conflict, OperationRefused, VirtError
from virtdash.xml import validate_volume_name

VOLUME_JOB_KINDS = ("volume.create", "volume.clone", "volume.delete")


def _target(host: Host, pool: str, volume: str = "") -> dict:
    name = f"{host.name}:{pool}/{volume}" if volume else f"{host.name}:{pool}"
    return {"target_type": "storage", "target_id": str(host.pk), "target_name": name}


def _audited(actor, action: str, host: Host, pool: str, volume: str, fn: Callable, detail: str = ""):
    """Run fn(); record one audit entry with its outcome; re-raise failures."""
    try:
        result = fn()
    except (VirtError, ValueError) as exc:
        audit.record(actor, action, result=AuditResult.FAILED, detail=str(exc), **_target(host, pool, volume))
        raise
    audit.record(actor, action, detail=detail, **_target(host, pool, volume))
    live.publish([f"host.{host.pk}"], "storage", {"pool": pool})
    return result


def audit_denied(actor, action: str, host: Host, pool: str = "", volume: str = "") -> None:
    audit.record(actor, action, result=AuditResult.DENIED, **_target(host, pool or "-", volume))


def audit_refused(actor, action: str, host: Host, pool: str, volume: str, reason: str) -> None:
    """Input refused before libvirt was asked (bad name, size, content type)."""
    audit.record(actor, action, result=AuditResult.FAILED, detail=reason, **_target(host, pool or "-", volume))


# --------------------------------------------------------------------------- reads


def pools(host: Host) -> list[storage.PoolInfo]:
    return storage.list_pools(host.uri)


def pool_with_volumes(host: Host, name: str) -> tuple[storage.PoolInfo, list[storage.VolumeInfo]]:
    return storage.get_pool(host.uri, name), storage.list_volumes(host.uri, name)


def volume_users(host: Host, pool: str, name: str) -> list[str]:
    return storage.volume_users(host.uri, pool, name)


# --------------------------------------------------------------------------- pools


def pool_paths_for(actor, host: Host) -> tuple[str, ...] | None:
    """Path prefixes under which ``actor`` may put a pool on ``host``; ``None``: anywhere (admins).
    Anyone else with MANAGE gets settings.VIRTDASH_POOL_PATHS: a pool on /etc or /root would let
    them download host files or attach them to a guest."""
    if can(actor, Action.ADMIN, host):
        return None
    return tuple(settings.VIRTDASH_POOL_PATHS)


def create_pool(actor, host: Host, *, type: str, name: str, autostart: bool = False, **parts: str) -> storage.PoolInfo:
    """Define and start a pool; outside pool_paths_for(actor) it is refused (audited) before libvirt."""
    detail = ", ".join(f"{k}={v}" for k, v in sorted(parts.items()) if v)

    def _create():
        storage.check_pool_location(type, parts.get("target_path", ""), pool_paths_for(actor, host))
        return storage.define_pool(host.uri, type, name, autostart=autostart, **parts)

    return _audited(actor, "pool.create", host, name, "", _create, detail=f"type={type} {detail}")


POOL_ACTIONS: dict[str, tuple[str, Callable[[str, str], storage.PoolInfo]]] = {
    "start": ("Started", storage.start_pool),
    "stop": ("Stopped", storage.stop_pool),
    "refresh": ("Refreshed", storage.refresh_pool),
    "autostart-on": ("Autostart enabled for", lambda uri, name: storage.set_pool_autostart(uri, name, True)),
    "autostart-off": ("Autostart disabled for", lambda uri, name: storage.set_pool_autostart(uri, name, False)),
}


def pool_action(actor, host: Host, name: str, action: str) -> str:
    """Start, stop, refresh or toggle autostart; returns the message to show."""
    if action not in POOL_ACTIONS:
        error = OperationRefused(f"Unknown pool action {action!r}.")
        audit.record(actor, f"pool.{action}"[:64], result=AuditResult.FAILED, detail=str(error), **_target(host, name))
        raise error
    verb, fn = POOL_ACTIONS[action]
    _audited(actor, f"pool.{action}", host, name, "", lambda: fn(host.uri, name))
    return f"{verb} storage pool {name}."


def delete_pool(actor, host: Host, name: str, *, delete_storage: bool = False) -> str:
    _audited(actor, "pool.delete", host, name, "",
             lambda: storage.delete_pool(host.uri, name, delete_storage=delete_storage),
             detail="with its directory" if delete_storage else "definition only")
    return f"Removed storage pool {name}" + (" and its directory." if delete_storage else "; its files were kept.")


# --------------------------------------------------------------------------- volumes (jobs)


def _queue(actor, host: Host, kind: str, pool: str, volume: str, params: dict, task) -> Job:
    job = jobs.create(actor, kind, host=host, target_name=f"{pool}/{volume}",
                      params={"pool": pool, "volume": volume, **params})
    jobs.enqueue(job, task)
    return job


def _refuse(actor, action: str, host: Host, pool: str, volume: str, fn: Callable) -> None:
    """Run a synchronous pre-check; a refusal is audited as failed and re-raised."""
    try:
        fn()
    except (VirtError, ValueError) as exc:
        audit.record(actor, action, result=AuditResult.FAILED, detail=str(exc), **_target(host, pool, volume))
        raise


def queue_create_volume(actor, host: Host, pool: str, name: str, capacity: str | int, format: str = "qcow2") -> Job:
    """Validate now (name, size, free space), create in a job."""
    from hosts import tasks

    sizes: list[int] = []
    _refuse(actor, "volume.create", host, pool, str(name),
            lambda: sizes.append(storage.check_new_volume(host.uri, pool, name, capacity, format)))
    return _queue(actor, host, "volume.create", pool, name, {"capacity": sizes[0], "format": format},
                  tasks.create_volume)


def queue_clone_volume(actor, host: Host, pool: str, name: str, new_name: str) -> Job:
    from hosts import tasks

    def _check():
        source = storage.get_volume(host.uri, pool, name)
        storage.check_new_volume(host.uri, pool, new_name, source.capacity, "raw")

    _refuse(actor, "volume.clone", host, pool, str(new_name), _check)
    return _queue(actor, host, "volume.clone", pool, name, {"new_name": new_name}, tasks.clone_volume)


def queue_delete_volume(actor, host: Host, pool: str, name: str) -> Job:
    """Refused at once (with the guests' names) while guests use the volume; the task checks again."""
    from hosts import tasks

    def _check():
        validate_volume_name(name)
        users = storage.volume_users(host.uri, pool, name)
        if users:
            raise Conflict(f"Volume {pool}/{name} is attached to guest(s) {', '.join(users)}; "
                           "detach it or delete the guest first.")

    _refuse(actor, "volume.delete", host, pool, name, _check)
    return _queue(actor, host, "volume.delete", pool, name, {}, tasks.delete_volume)


def resize_volume(actor, host: Host, pool: str, name: str, capacity: str | int) -> storage.VolumeInfo:
    return _audited(actor, "volume.resize", host, pool, name,
                    lambda: storage.resize_volume(host.uri, pool, name, capacity), detail=f"to {capacity}")


def require_manage(job: Job) -> None:
    """Tasks ask the policy too: the actor may have lost the right since the job was queued."""
    if job.actor is not None and not can(job.actor, Action.MANAGE, job.host):
        raise OperationRefused(f"{job.actor_name} may no longer manage storage on {job.host}.")


def run_create(job: Job, report: jobs.Report) -> str:
    require_manage(job)
    p = job.params
    report(10, f"Creating {p['volume']}")
    vol = storage.create_volume(job.host.uri, p["pool"], p["volume"], p["capacity"], p["format"])
    live.publish([f"host.{job.host_id}"], "storage", {"pool": p["pool"]})
    return f"Created volume {vol.pool}/{vol.name} ({vol.format}, {vol.capacity} bytes)."


def run_clone(job: Job, report: jobs.Report) -> str:
    require_manage(job)
    p = job.params
    report(1, f"Copying {p['volume']} to {p['new_name']}")
    vol = storage.clone_volume(job.host.uri, p["pool"], p["volume"], p["new_name"], progress=report)
    live.publish([f"host.{job.host_id}"], "storage", {"pool": p["pool"]})
    return f"Cloned {p['pool']}/{p['volume']} to {vol.name}."


def run_delete(job: Job, report: jobs.Report) -> str:
    require_manage(job)
    p = job.params
    report(10, f"Deleting {p['volume']}")
    try:
        storage.delete_volume(job.host.uri, p["pool"], p["volume"])
    except storage.ObjectNotFound:
        return f"Volume {p['pool']}/{p['volume']} was already gone."  # a re-run after a worker crash
    live.publish([f"host.{job.host_id}"], "storage", {"pool": p["pool"]})
    return f"Deleted volume {p['pool']}/{p['volume']}."


# --------------------------------------------------------------------------- transfers


# The async upload endpoint (hosts.upload_stream) runs the libvirt halves (storage.open_upload,
# Upload.finish/abort) in hosts.transfers' threads and only these short database halves on the
# database thread.


def upload_finished(actor, host: Host, upload: storage.Upload, format: str) -> None:
    audit.record(actor, "volume.upload", detail=f"{upload.length} bytes, {format}",
                 **_target(host, upload.pool, upload.name))
    live.publish([f"host.{host.pk}"], "storage", {"pool": upload.pool})


def upload_failed(actor, host: Host, upload: storage.Upload, reason: str) -> None:
    """The upload ended without a volume (already deleted): audit it, refresh the pool pages."""
    audit.record(actor, "volume.upload", result=AuditResult.FAILED, detail=reason,
                 **_target(host, upload.pool, upload.name))
    live.publish([f"host.{host.pk}"], "storage", {"pool": upload.pool})


def open_download(actor, host: Host, pool: str, name: str) -> storage.Download:
    download = storage.open_download(host.uri, pool, name)
    audit.record(actor, "volume.download", detail=f"{download.length} bytes", **_target(host, pool, name))
    return download

"""Moving a guest between hosts: live (migrate3, client-driven) and offline (define + undefine).

Client-driven: this process holds the connections to both hosts and libvirt's client library
runs the Begin/Prepare/Perform/Finish/Confirm steps over them, so the hosts need no credentials
for each other (peer-to-peer would make the source daemon log in to the destination). The
migration data stream goes straight from QEMU to QEMU over `tcp://<destination address>`,
derived from the destination's libvirt URI (hosts often share a host name, and libvirt's default
— the destination's own host name — would point back at the wrong machine).

`migrate3` blocks for the whole migration, so it runs in its own thread while the caller polls
`jobStats` on the source through the same connection (libvirt serves several calls at once),
reports progress, and can abort the job. Failures become messages an operator can act on.
"""

from __future__ import annotations

import posixpath
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field

import libvirt

from hosts.virt import connections
from hosts.virt.errors import Conflict, GuestNotFound, HostUnreachable, OperationRefused, VirtError
from virtdash.xml import Domain, StoragePool

LIVE_FLAGS = libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PERSIST_DEST | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE
MIGRATE_TIMEOUT = 3300  # seconds for the blocking migrate3 call; the Celery task's limit is 3600
POLL_SECONDS = 0.25
PROBE_TIMEOUT = 10
ABORT_WAIT_SECONDS = 60


class MigrationFailed(OperationRefused):
    """libvirt or QEMU refused or failed the migration; the message says why and what to do."""


class MigrationCancelled(Conflict):
    """The operator (or the time limit) aborted the migration; the guest stays on the source."""


# --------------------------------------------------------------------- plain data

@dataclass
class DiskInfo:
    target: str
    source: str  # a path, "pool/volume", or "protocol://host/name"
    device: str
    type: str  # file, block, dir, volume, network
    readonly: bool
    shareable: bool

    @property
    def needs_storage(self) -> bool:
        """A writable local disk whose contents must be reachable on the destination.

        Empty and read-only media, shareable disks and network disks (RBD, iSCSI, NBD...) are
        reached the same way from any host.
        """
        return bool(self.source) and not self.readonly and not self.shareable and self.type != "network"


@dataclass
class GuestPlace:
    """What one host knows of the guest: absent, defined (inactive) or active."""

    exists: bool = False
    active: bool = False
    name: str = ""
    persistent: bool = False
    autostart: bool = False
    managed_save: bool = False
    snapshots: int = 0
    disks: list[DiskInfo] = field(default_factory=list)


@dataclass
class Progress:
    phase: str  # "preparing", "copying", "finishing"
    percent: int  # 0–100 of the data copy
    processed: int = 0  # bytes sent so far
    remaining: int = 0
    total: int = 0
    elapsed_ms: int = 0


@dataclass
class Outcome:
    seconds: float
    transferred: int = 0  # bytes
    downtime_ms: int | None = None


# --------------------------------------------------------------------- addresses

def migration_uri(dest_uri: str) -> str | None:
    """`tcp://<host>` for QEMU's data stream, from the destination's libvirt URI; None if local."""
    host = urllib.parse.urlsplit(dest_uri).hostname
    if not host:
        return None
    return f"tcp://[{host}]" if ":" in host else f"tcp://{host}"


# --------------------------------------------------------------------- reading

def _disks(xml: str) -> list[DiskInfo]:
    found = []
    for disk in Domain.parse(xml).disks:
        found.append(DiskInfo(target=disk.target or "", source=disk.source or "", device=disk.device or "disk",
                              type=disk.type or "file", readonly=bool(disk.readonly),
                              shareable=bool(disk.shareable)))
    return found


def _place(conn: libvirt.virConnect, uuid: str) -> GuestPlace:
    try:
        dom = conn.lookupByUUIDString(uuid)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            return GuestPlace()
        raise
    try:
        snapshots = dom.snapshotNum(0)
    except libvirt.libvirtError:
        snapshots = 0
    try:
        managed_save = bool(dom.hasManagedSaveImage(0))
    except libvirt.libvirtError:
        managed_save = False
    active = bool(dom.isActive())
    # a running guest's live XML also has disks hot-plugged since it started
    xml = dom.XMLDesc(0 if active else libvirt.VIR_DOMAIN_XML_INACTIVE)
    return GuestPlace(exists=True, active=active, name=dom.name(), persistent=bool(dom.isPersistent()),
                      autostart=bool(dom.autostart()), managed_save=managed_save, snapshots=snapshots,
                      disks=_disks(xml))


def locate(uri: str, uuid: str) -> GuestPlace:
    """Where the guest stands on one host (absent is a normal answer, not an error)."""
    return connections.call(uri, lambda conn: _place(conn, uuid), what=f"guest {uuid}")


def probe(uri: str, host_name: str) -> None:
    """Check a host answers; HostUnreachable with an operator message otherwise."""
    try:
        connections.call(uri, lambda conn: conn.getLibVersion(), what=host_name, timeout=PROBE_TIMEOUT, force=True)
    except HostUnreachable as exc:
        raise HostUnreachable(f"The destination host {host_name} is unreachable: {exc.detail or exc}. "
                              "Check that its libvirtd runs and VirtDash can connect to it.",
                              detail=exc.detail) from None


def _name_owner(conn: libvirt.virConnect, name: str) -> str:
    try:
        return conn.lookupByName(name).UUIDString()
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            return ""
        raise


def name_taken_by_other(uri: str, name: str, uuid: str) -> bool:
    """True when a different guest (another UUID) already uses `name` on the host at `uri`."""
    owner = connections.call(uri, lambda conn: _name_owner(conn, name), what=f"guest {name}")
    return bool(owner) and owner != uuid


def _has_volume(conn: libvirt.virConnect, disk: DiskInfo) -> bool:
    try:
        if disk.type == "volume":
            pool, _, volume = disk.source.partition("/")
            conn.storagePoolLookupByName(pool).storageVolLookupByName(volume)
        else:
            conn.storageVolLookupByPath(disk.source)
    except libvirt.libvirtError:
        return False
    return True


def missing_on(uri: str, disks: list[DiskInfo]) -> list[DiskInfo]:
    """The disks that no storage pool of the host at `uri` holds (same path, or same pool/volume)."""
    if not disks:
        return []
    return connections.call(uri, lambda conn: [d for d in disks if not _has_volume(conn, d)],
                            what="looking up disks on the destination")


def _pool_path(pool: libvirt.virStoragePool) -> str:
    """The pool's target path, normalised (storagePoolLookupByTargetPath is not in every driver)."""
    path = StoragePool.parse(pool.XMLDesc(0)).target_path or ""
    return posixpath.normpath(path) if path else ""


def _copy_problem(conn: libvirt.virConnect, disk: DiskInfo) -> str:
    if disk.type != "file":
        return f"{disk.target}: only file disks can be copied (this one is a {disk.type} disk)"
    if _has_volume(conn, disk):
        return (f"{disk.target}: the destination already has a volume at {disk.source} — if that is shared "
                "storage, migrate without copying; otherwise remove that volume there first")
    folder = posixpath.normpath(posixpath.dirname(disk.source))
    if not any(p.isActive() and _pool_path(p) == folder for p in conn.listAllStoragePools()):
        return (f"{disk.target}: the destination has no active storage pool at {posixpath.dirname(disk.source)}; "
                "create one with that path (the copy keeps the same path)")
    return ""


def copy_problems(uri: str, disks: list[DiskInfo]) -> list[str]:
    """Why the destination cannot receive copies of `disks` (empty when it can).

    libvirt creates each copy in the destination pool whose path is the disk's folder, under
    the same name, so the same pool paths must exist there and the file must not.
    """
    return connections.call(uri, lambda conn: [p for d in disks if (p := _copy_problem(conn, d))],
                            what="checking the destination's storage pools")


# --------------------------------------------------------------------- offline

def _undefine_inactive(conn: libvirt.virConnect, uuid: str) -> None:
    dom = conn.lookupByUUIDString(uuid)
    if dom.isActive():
        raise Conflict(f"{dom.name()} started on the source during the move; it was not removed there.")
    flags = libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | libvirt.VIR_DOMAIN_UNDEFINE_KEEP_NVRAM
    try:
        dom.undefineFlags(flags)
    except libvirt.libvirtError:
        dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE)  # drivers without NVRAM support


def copy_definition(src_uri: str, dest_uri: str, uuid: str) -> None:
    """Define the guest's inactive secure XML on the destination (same UUID and name).

    SECURE keeps passwords (VNC, secrets references) so the copy is complete; the XML stays in
    memory, never logged.
    """
    flags = libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE
    xml = connections.call(src_uri, lambda conn: conn.lookupByUUIDString(uuid).XMLDesc(flags), what=f"guest {uuid}")
    try:
        connections.call(dest_uri, lambda conn: conn.defineXML(xml).UUIDString(), what="the destination", timeout=60)
    except (OperationRefused, Conflict) as exc:
        raise MigrationFailed(f"The destination refused the guest's definition: {exc.detail or exc}",
                              detail=exc.detail) from None


def set_autostart(uri: str, uuid: str) -> None:
    """Turn autostart on (libvirt does not carry it over with the definition)."""
    connections.call(uri, lambda conn: conn.lookupByUUIDString(uuid).setAutostart(1), what=f"guest {uuid}")


def remove_definition(src_uri: str, uuid: str) -> None:
    """Undefine a shut-off guest on the source (its disks stay where they are)."""
    try:
        connections.call(src_uri, lambda conn: _undefine_inactive(conn, uuid), what=f"guest {uuid}", timeout=60)
    except GuestNotFound:
        pass  # already gone: converge


# --------------------------------------------------------------------- live

def _stats(conn: libvirt.virConnect, uuid: str) -> dict:
    try:
        return conn.lookupByUUIDString(uuid).jobStats()
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            return {}  # the source already let go of it: finishing
        raise


def progress_of(stats: dict) -> Progress:
    """One jobStats reading as progress; the remaining amount shrinks as dirty pages converge."""
    processed = int(stats.get("data_processed") or 0)
    remaining = int(stats.get("data_remaining") or 0)
    total = int(stats.get("data_total") or 0)
    elapsed = int(stats.get("time_elapsed") or 0)
    if stats.get("type", libvirt.VIR_DOMAIN_JOB_NONE) == libvirt.VIR_DOMAIN_JOB_NONE:
        return Progress("finishing", 100, processed, 0, total, elapsed)
    if not total:
        return Progress("preparing", 0, elapsed_ms=elapsed)
    percent = int(100 * processed / max(1, processed + remaining))
    return Progress("copying", min(99, percent), processed, remaining, total, elapsed)


def read_progress(src_uri: str, uuid: str) -> Progress | None:
    """The migration's progress as the source reports it; None when it cannot be read now.

    The timeout is generous: a call that times out drops the shared connection, and with it
    the migrate call running on it.
    """
    try:
        stats = connections.call(src_uri, lambda conn: _stats(conn, uuid), what=f"guest {uuid}", timeout=30)
    except VirtError:
        return None  # a missed reading is not a failure; the migrate call tells the outcome
    return progress_of(stats) if stats else Progress("finishing", 100)


def abort(src_uri: str, uuid: str) -> None:
    """Ask the source to abort the guest's running job (the migration)."""
    connections.call(src_uri, lambda conn: conn.lookupByUUIDString(uuid).abortJob(), what=f"guest {uuid}", timeout=15)


def _completed(conn: libvirt.virConnect, uuid: str) -> dict:
    try:
        return conn.lookupByUUIDString(uuid).jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED)
    except libvirt.libvirtError:
        return {}


def _migrate(src: libvirt.virConnect, dest_uri: str, uuid: str, params: dict, flags: int) -> str:
    dest = connections.connection(dest_uri)
    dom = src.lookupByUUIDString(uuid)
    try:
        return dom.migrate3(dest, params, flags).UUIDString()
    except libvirt.libvirtError as exc:
        raise explain(exc, dom.name()) from None


def explain(exc: libvirt.libvirtError, name: str) -> VirtError:
    """A migration failure in words an operator can act on (the libvirt text stays as detail)."""
    code = exc.get_error_code()
    text = (exc.get_error_message() or str(exc)).strip()
    lowered = text.lower()
    if code == libvirt.VIR_ERR_OPERATION_ABORTED or "canceled by client" in lowered:
        return MigrationCancelled(f"Migration of {name} was cancelled; it stays on the source host.", detail=text)
    if code == libvirt.VIR_ERR_CPU_INCOMPATIBLE or "cpu is incompatible" in lowered:
        return MigrationFailed(f"The destination's CPU cannot run {name}: {text}. Give the guest a CPU model "
                               "both hosts support (for example a named model instead of host-passthrough), "
                               "or choose another destination.", detail=text)
    if code == libvirt.VIR_ERR_MIGRATE_UNSAFE or "shared storage" in lowered or "cannot access storage" in lowered:
        return MigrationFailed(f"{name} has disks the destination cannot reach ({text}). Live migration needs "
                               "shared storage (the same disk paths on storage both hosts mount) or a storage "
                               "copy; or shut the guest down, copy its disks, and move it offline.", detail=text)
    if "unable to connect to server" in lowered or "connection refused" in lowered or "no route" in lowered:
        return MigrationFailed(f"The migration data connection to the destination failed ({text}). Check that "
                               "the destination's migration address is reachable from the source and that its "
                               "migration ports (libvirt's default 49152–49215) are open.", detail=text)
    if "already exists" in lowered:
        return MigrationFailed(f"The destination already has a different guest with this name or UUID ({text}).",
                               detail=text)
    if exc.get_error_domain() == libvirt.VIR_FROM_RPC or code in (libvirt.VIR_ERR_NO_CONNECT,
                                                                   libvirt.VIR_ERR_INVALID_CONN):
        return HostUnreachable(f"A host stopped answering during the migration of {name}: {text}", detail=text)
    return MigrationFailed(f"Migration of {name} failed: {text}", detail=text)


def live_params(dest_uri: str, *, bandwidth_mib: int = 0, copy_disks: list[str] = ()) -> dict:
    params: dict = {}
    uri = migration_uri(dest_uri)
    if uri:
        params[libvirt.VIR_MIGRATE_PARAM_URI] = uri
    if bandwidth_mib:
        params[libvirt.VIR_MIGRATE_PARAM_BANDWIDTH] = int(bandwidth_mib)
    if copy_disks:
        params[libvirt.VIR_MIGRATE_PARAM_MIGRATE_DISKS] = list(copy_disks)
    return params


def migrate_live(src_uri: str, dest_uri: str, uuid: str, *, on_progress: Callable[[Progress], None],
                 should_cancel: Callable[[], bool] = lambda: False, bandwidth_mib: int = 0,
                 copy_disks: list[str] = (), time_limit: float = MIGRATE_TIMEOUT) -> Outcome:
    """Migrate a running guest live; blocks until it runs on the destination or fails.

    `copy_disks` (disk targets) are copied to the destination during the migration (storage
    migration over NBD); other disks must be on shared storage. Progress is read from the source
    every POLL_SECONDS; `should_cancel()` returning True (or `time_limit` passing) aborts the
    migration job, after which this raises MigrationCancelled.
    """
    flags = LIVE_FLAGS | (libvirt.VIR_MIGRATE_NON_SHARED_DISK if copy_disks else 0)
    params = live_params(dest_uri, bandwidth_mib=bandwidth_mib, copy_disks=copy_disks)
    outcome: dict = {}
    started = time.monotonic()

    def run() -> None:
        try:
            outcome["uuid"] = connections.call(src_uri, lambda conn: _migrate(conn, dest_uri, uuid, params, flags),
                                               what=f"migrating guest {uuid}", timeout=time_limit + 120)
        except BaseException as exc:  # handed to the caller below
            outcome["error"] = exc

    worker = threading.Thread(target=run, name=f"migrate:{uuid}", daemon=True)
    worker.start()
    aborted = _follow(worker, src_uri, uuid, on_progress, should_cancel, started + time_limit)
    if "error" in outcome:
        error = outcome["error"]
        if aborted and isinstance(error, MigrationFailed | MigrationCancelled):
            raise MigrationCancelled(f"Migration {aborted}; the guest stays on the source host.",
                                     detail=error.detail) from None
        raise error
    if "uuid" not in outcome:
        raise MigrationFailed(f"The migration did not end {ABORT_WAIT_SECONDS} s after it was aborted "
                              f"({aborted}); check the guest on both hosts.")
    return _outcome(dest_uri, uuid, time.monotonic() - started)


def _follow(worker: threading.Thread, src_uri: str, uuid: str, on_progress: Callable[[Progress], None],
            should_cancel: Callable[[], bool], deadline: float) -> str:
    """Poll progress until the migrate thread ends; returns why it was aborted ('' if not)."""
    aborted = ""
    while worker.is_alive():
        worker.join(POLL_SECONDS)
        if not worker.is_alive():
            break
        if not aborted:
            reason = "cancelled by the operator" if should_cancel() else (
                "aborted: it reached its time limit" if time.monotonic() > deadline else "")
            if reason:
                aborted = reason
                _abort_quietly(src_uri, uuid)
                worker.join(ABORT_WAIT_SECONDS)
                break
        reading = read_progress(src_uri, uuid)
        if reading is not None and worker.is_alive():
            on_progress(reading)
    return aborted


def _abort_quietly(src_uri: str, uuid: str) -> None:
    try:
        abort(src_uri, uuid)
    except VirtError:
        pass  # no job to abort (it just finished) — the migrate call tells the outcome


def _outcome(dest_uri: str, uuid: str, seconds: float) -> Outcome:
    try:
        stats = connections.call(dest_uri, lambda conn: _completed(conn, uuid), what=f"guest {uuid}", timeout=10)
    except VirtError:
        stats = {}
    return Outcome(seconds=seconds, transferred=int(stats.get("data_processed") or 0),
                   downtime_ms=stats.get("downtime"))

"""Storage pools and volumes: list, create, act on them; callers get dataclasses, never virStorage*.

Every name and size is validated by ``virtdash.xml`` before libvirt is asked anything, and every
new volume's *capacity* (not its allocation: a sparse qcow2 is created at once and fills the pool
later) must fit the pool's available space. Volume transfers (upload, download) use a private
connection each, so a long stream never holds one of the shared connection's call slots.
"""

from __future__ import annotations

import posixpath
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import libvirt

from hosts.virt import connections
from hosts.virt.errors import Conflict, ObjectNotFound, OperationRefused, VirtError, translate
from virtdash.xml import Domain, InvalidNameError, InvalidSizeError, StoragePool, StorageVolume, XMLValueError
from virtdash.xml.names import validate_pool_name, validate_volume_name
from virtdash.xml.storage import POOL_TYPES, VOLUME_FORMATS
from virtdash.xml.units import PIB, format_size, parse_size

CHUNK = 1024 * 1024  # stream transfers move 1 MiB at a time
SEGMENT = CHUNK  # a download asks libvirt for this much at once (its client queues it all)
MAX_VOLUME_BYTES = PIB  # anything larger is a typo, not a disk
LONG_CALL_TIMEOUT = 3600  # clones and large creates; the keepalive still detects a dead daemon

_POOL_STATES = {0: "inactive", 1: "building", 2: "running", 3: "degraded", 4: "inaccessible"}
_HOST_RE = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[?[0-9A-Fa-f:.]+\]?")
_VG_RE = re.compile(r"[A-Za-z0-9+_][A-Za-z0-9+_.-]{0,126}")

Progress = Callable[[int, str], None]


class NotEnoughSpace(OperationRefused):
    """The pool's available space is smaller than the new volume's capacity."""


@dataclass(frozen=True)
class PoolInfo:
    name: str
    uuid: str
    type: str
    state: str
    active: bool
    autostart: bool
    persistent: bool
    capacity: int
    allocation: int
    available: int
    target_path: str
    source: str

    @property
    def used_percent(self) -> int:
        return round(100 * self.allocation / self.capacity) if self.capacity else 0


@dataclass(frozen=True)
class VolumeInfo:
    name: str
    pool: str
    path: str
    key: str
    format: str
    capacity: int
    allocation: int
    backing_path: str = ""


# --------------------------------------------------------------------------- validation (no libvirt)


def validate_path(value: object, what: str) -> str:
    """An absolute, normalised path without control characters or ``..`` components."""
    if not isinstance(value, str) or not value:
        raise InvalidNameError(f"{what} must not be empty.")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise InvalidNameError(f"{what} must not contain control characters.")
    if len(value) > 1024:
        raise InvalidNameError(f"{what} is {len(value)} characters long; the limit is 1024.")
    if not value.startswith("/"):
        raise InvalidNameError(f"{what} {value!r} must be an absolute path starting with '/'.")
    if ".." in value.split("/"):
        raise InvalidNameError(f"{what} {value!r} must not contain '..'.")
    normalised = posixpath.normpath(value)
    return "/" if normalised == "//" else normalised


class PoolLocationRefused(ValueError):
    """A pool would expose host files its creator may not reach (outside the allowed prefixes)."""


OPERATOR_POOL_TYPES = ("dir", "netfs")  # fs and logical hand a host block device or volume group over


def path_within(path: str, prefixes: Sequence[str]) -> bool:
    """Whether the (validated, normalised) absolute ``path`` is one of ``prefixes`` or below one.
    Compared component-wise on the string: the path is on the hypervisor, never resolved here."""
    parts = _components(validate_path(path, "Path"))
    for prefix in prefixes:
        if prefix.startswith("/") and ".." not in prefix.split("/"):
            wanted = _components(prefix)
            if parts[:len(wanted)] == wanted:
                return True
    return False


def _components(path: str) -> list[str]:
    return [part for part in path.split("/") if part not in ("", ".")]


def check_pool_location(type: str, target_path: str, allowed: Sequence[str] | None) -> None:
    """Refuse a pool outside ``allowed`` path prefixes (``None``: anywhere, for admins).

    With prefixes only dir and netfs pools are possible, and their target path must lie under
    one of them; fs and logical pools (a host block device or volume group) are refused.
    """
    if allowed is None:
        return
    where = ", ".join(allowed) or "(none configured)"
    if type not in OPERATOR_POOL_TYPES:
        raise PoolLocationRefused(f"Only an administrator may create a {type} pool (it hands a block device or "
                                  f"volume group of the host over); you may create dir and netfs pools under "
                                  f"{where}.")
    if not target_path:
        raise PoolLocationRefused(f"A target path is needed; it must be under one of {where}.")
    target = validate_path(target_path, "Target path")
    if not path_within(target, allowed):
        raise PoolLocationRefused(f"Target path {target} is not allowed: pools must be under one of {where} "
                                  "(VIRTDASH_POOL_PATHS); only an administrator may put a pool elsewhere.")


def validate_source_host(value: object) -> str:
    if not isinstance(value, str) or not _HOST_RE.fullmatch(value):
        raise InvalidNameError(f"NFS server {value!r} is not a host name or IP address.")
    return value


def validate_vg_name(value: object) -> str:
    if not isinstance(value, str) or not _VG_RE.fullmatch(value) or value in (".", ".."):
        raise InvalidNameError(f"Volume group {value!r} is not allowed: use letters, digits, '+', '_', '.', '-'.")
    return value


def validate_capacity(value: int | str) -> int:
    """Bytes from ``"20G"`` or an int; refuses zero, negative and absurd (> 1 PiB) sizes."""
    return parse_size(value, max_bytes=MAX_VOLUME_BYTES)


def validate_format(value: str) -> str:
    if value not in VOLUME_FORMATS:
        raise XMLValueError(f"Volume format must be one of {', '.join(VOLUME_FORMATS)}, got {value!r}.")
    return value


def pool_xml(type: str, name: str, *, target_path: str = "", source_host: str = "", source_dir: str = "",
             source_device: str = "", source_name: str = "", source_format: str = "") -> str:
    """Validated pool XML; raises ``ValueError`` subclasses with an operator-readable message."""
    validate_pool_name(name)
    if type not in POOL_TYPES:
        raise XMLValueError(f"Pool type must be one of {', '.join(POOL_TYPES)}, got {type!r}.")
    target_path = validate_path(target_path, "Target path") if target_path else ""
    source_dir = validate_path(source_dir, "NFS export path") if source_dir else ""
    source_device = validate_path(source_device, "Source device") if source_device else ""
    if source_device and not source_device.startswith("/dev/"):
        raise InvalidNameError(f"Source device {source_device!r} must be under /dev/.")
    source_host = validate_source_host(source_host) if source_host else ""
    source_name = validate_vg_name(source_name) if source_name else ""
    if source_format and not re.fullmatch(r"[a-z0-9]{1,16}", source_format):
        raise XMLValueError(f"Source format {source_format!r} is not a file system or pool format name.")
    pool = StoragePool.new(type, name, target_path=target_path or None, source_host=source_host or None,
                           source_dir=source_dir or None, source_device=source_device or None,
                           source_name=source_name or None, source_format=source_format or None)
    return pool.to_string()


# --------------------------------------------------------------------------- reading


def _pool(conn: libvirt.virConnect, name: str) -> libvirt.virStoragePool:
    return conn.storagePoolLookupByName(name)


def _volume(conn: libvirt.virConnect, pool: str, name: str) -> libvirt.virStorageVol:
    return _pool(conn, pool).storageVolLookupByName(name)


def _pool_info(pool: libvirt.virStoragePool) -> PoolInfo:
    state, capacity, allocation, available = pool.info()
    parsed = StoragePool.parse(pool.XMLDesc(0))
    source = {
        "netfs": f"{parsed.source_host or ''}:{parsed.source_dir or ''}",
        "fs": parsed.source_device or "",
        "logical": parsed.source_name or "",
    }.get(parsed.type or "", "")
    return PoolInfo(
        name=pool.name(), uuid=pool.UUIDString(), type=parsed.type or "", state=_POOL_STATES.get(state, str(state)),
        active=bool(pool.isActive()), autostart=bool(pool.autostart()), persistent=bool(pool.isPersistent()),
        capacity=capacity, allocation=allocation, available=available, target_path=parsed.target_path or "",
        source=source,
    )


def _volume_info(pool_name: str, vol: libvirt.virStorageVol) -> VolumeInfo:
    parsed = StorageVolume.parse(vol.XMLDesc(0))
    _type, capacity, allocation = vol.info()
    return VolumeInfo(name=vol.name(), pool=pool_name, path=vol.path(), key=vol.key(), format=parsed.format or "",
                      capacity=capacity, allocation=allocation, backing_path=parsed.backing_path or "")


def list_pools(uri: str) -> list[PoolInfo]:
    """Every pool of the host, active or not, sorted by name (one call, one thread)."""
    def _list(conn):
        return sorted((_pool_info(p) for p in conn.listAllStoragePools(0)), key=lambda p: p.name)

    return connections.call(uri, _list, what=f"storage pools of {uri}")


def get_pool(uri: str, name: str) -> PoolInfo:
    return connections.call(uri, lambda conn: _pool_info(_pool(conn, name)), what=f"storage pool {name}")


def list_volumes(uri: str, pool: str) -> list[VolumeInfo]:
    """Volumes of an active pool; an inactive pool has none to show (libvirt refuses to list)."""
    def _list(conn):
        p = _pool(conn, pool)
        if not p.isActive():
            return []
        return sorted((_volume_info(pool, v) for v in p.listAllVolumes(0)), key=lambda v: v.name)

    return connections.call(uri, _list, what=f"volumes of pool {pool}")


def get_volume(uri: str, pool: str, name: str) -> VolumeInfo:
    return connections.call(uri, lambda conn: _volume_info(pool, _volume(conn, pool, name)),
                            what=f"volume {pool}/{name}")


def volume_by_path(uri: str, path: str) -> VolumeInfo | None:
    """The pool volume behind a disk's source path, or None when no pool holds that file."""
    def _find(conn):
        try:
            vol = conn.storageVolLookupByPath(path)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_STORAGE_VOL:
                return None
            raise
        return _volume_info(vol.storagePoolLookupByVolume().name(), vol)

    return connections.call(uri, _find, what=f"volume {path}")


@dataclass(frozen=True)
class BackingChain:
    """The backing files below a disk image, nearest first, as libvirt's volume XML names them
    (``<backingStore><path>``). ``unresolved``: a path whose own backing files could not be read
    (the image itself or a backing file that is not a volume of a pool, or a chain too long or
    looping); "" when the whole chain was followed."""
    paths: tuple[str, ...]
    unresolved: str = ""


MAX_BACKING_DEPTH = 16


def backing_chain(uri: str, path: str) -> BackingChain:
    """Follow the backing chain of the image at ``path`` volume by volume (libvirt's volume XML
    shows one level); nothing is changed. Pools are not refreshed: a file written since the last
    refresh is not a volume yet and ends the chain as ``unresolved``."""
    def _follow(conn):
        paths: list[str] = []
        current = path
        for _level in range(MAX_BACKING_DEPTH + 1):
            try:
                vol = conn.storageVolLookupByPath(current)
            except libvirt.libvirtError as exc:
                if exc.get_error_code() == libvirt.VIR_ERR_NO_STORAGE_VOL:
                    return BackingChain(tuple(paths), unresolved=current)
                raise
            backing = StorageVolume.parse(vol.XMLDesc(0)).backing_path or ""
            if not backing:
                return BackingChain(tuple(paths))
            if backing in paths or backing == path:
                return BackingChain(tuple(paths), unresolved=backing)
            paths.append(backing)
            current = backing
        return BackingChain(tuple(paths), unresolved=current)

    return connections.call(uri, _follow, what=f"backing chain of {path}")


def _users_of(conn: libvirt.virConnect, pool: str, vol: libvirt.virStorageVol) -> list[str]:
    path, name = vol.path(), vol.name()
    users = []
    for dom in conn.listAllDomains(0):
        parsed = Domain.parse(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
        live = Domain.parse(dom.XMLDesc(0)) if dom.isActive() else None
        for domain in filter(None, (parsed, live)):
            if any(d.source_file == path or d.source_dev == path
                   or (d.source_pool == pool and d.source_volume == name) for d in domain.disks):
                users.append(dom.name())
                break
    return sorted(users)


def volume_users(uri: str, pool: str, name: str) -> list[str]:
    """Names of the guests on this host whose disks use the volume (one listAllDomains pass)."""
    return connections.call(uri, lambda conn: _users_of(conn, pool, _volume(conn, pool, name)),
                            what=f"guests using {pool}/{name}")


# --------------------------------------------------------------------------- pools


def define_pool(uri: str, type: str, name: str, *, target_path: str = "", source_host: str = "",
                source_dir: str = "", source_device: str = "", source_name: str = "", source_format: str = "",
                start: bool = True, autostart: bool = False) -> PoolInfo:
    """Define (and build, start) a pool from validated parts; on a failure nothing stays defined.

    ``build`` only creates the target directory (dir, fs, netfs); it never formats a device or
    creates a volume group — a logical pool must name an existing volume group.
    """
    xml = pool_xml(type, name, target_path=target_path, source_host=source_host, source_dir=source_dir,
                   source_device=source_device, source_name=source_name, source_format=source_format)

    def _define(conn):
        try:
            conn.storagePoolLookupByName(name)
        except libvirt.libvirtError:
            pass
        else:
            raise Conflict(f"A storage pool named {name!r} already exists on this host.")
        pool = conn.storagePoolDefineXML(xml, 0)
        try:
            if type in ("dir", "fs", "netfs"):
                pool.build(0)
            if start:
                pool.create(0)
            if autostart:
                pool.setAutostart(1)
        except libvirt.libvirtError:
            pool.undefine()
            raise
        return _pool_info(pool)

    return connections.call(uri, _define, what=f"creating storage pool {name}", timeout=120)


def _pool_action(uri: str, name: str, what: str, fn: Callable[[libvirt.virStoragePool], None],
                 timeout: float | None = None) -> PoolInfo:
    def _act(conn):
        pool = _pool(conn, name)
        fn(pool)
        return _pool_info(pool)

    return connections.call(uri, _act, what=f"{what} storage pool {name}", timeout=timeout)


def start_pool(uri: str, name: str) -> PoolInfo:
    """Start a pool; already running is success."""
    return _pool_action(uri, name, "starting", lambda p: p.isActive() or p.create(0), timeout=120)


def stop_pool(uri: str, name: str) -> PoolInfo:
    """Stop a pool (its volumes stay on disk); already stopped is success."""
    return _pool_action(uri, name, "stopping", lambda p: p.isActive() and p.destroy(), timeout=60)


def set_pool_autostart(uri: str, name: str, enabled: bool) -> PoolInfo:
    return _pool_action(uri, name, "changing autostart of", lambda p: p.setAutostart(1 if enabled else 0))


def refresh_pool(uri: str, name: str) -> PoolInfo:
    def _refresh(pool):
        if not pool.isActive():
            raise Conflict(f"Storage pool {name} is not running; start it before refreshing.")
        pool.refresh(0)

    return _pool_action(uri, name, "refreshing", _refresh, timeout=120)


def delete_pool(uri: str, name: str, *, delete_storage: bool = False) -> None:
    """Stop and undefine a pool. Only when asked, and only for dir pools, also remove its
    (empty) directory; libvirt refuses when volumes are still in it. Volumes are never deleted."""
    def _delete(conn):
        pool = _pool(conn, name)
        kind = StoragePool.parse(pool.XMLDesc(0)).type
        if delete_storage and kind != "dir":
            raise OperationRefused(f"Deleting the storage of a {kind} pool is not supported; only dir pools.")
        if delete_storage and pool.isActive() and pool.numOfVolumes() > 0:
            raise Conflict(f"Storage pool {name} still holds {pool.numOfVolumes()} volume(s); "
                           "delete them first or remove the pool without deleting its directory.")
        if pool.isActive():
            pool.destroy()
        if delete_storage:
            pool.delete(libvirt.VIR_STORAGE_POOL_DELETE_NORMAL)
        if pool.isPersistent():
            pool.undefine()

    connections.call(uri, _delete, what=f"deleting storage pool {name}", timeout=60)


# --------------------------------------------------------------------------- volumes


def _require_active(pool: libvirt.virStoragePool, name: str) -> None:
    if not pool.isActive():
        raise Conflict(f"Storage pool {name} is not running; start it first.")


def _require_space(pool: libvirt.virStoragePool, name: str, needed: int) -> None:
    try:
        pool.refresh(0)
    except libvirt.libvirtError:
        pass  # refused while another volume of the pool is being built: use the last figures
    available = pool.info()[3]
    if needed > available:
        raise NotEnoughSpace(f"Storage pool {name} has {format_size(available)} available; "
                               f"{format_size(needed)} are needed (the full capacity counts, sparse or not).")


def _require_absent(pool: libvirt.virStoragePool, pool_name: str, name: str) -> None:
    try:
        pool.storageVolLookupByName(name)
    except libvirt.libvirtError:
        return
    raise Conflict(f"A volume named {name!r} already exists in pool {pool_name}.")


def check_new_volume(uri: str, pool: str, name: str, capacity: int | str, format: str = "qcow2") -> int:
    """Validate a would-be volume (name, size, format, free space, no clash); returns its capacity.

    Names and sizes are checked before any libvirt call; then the pool is read, nothing changed.
    """
    validate_volume_name(name)
    size = validate_capacity(capacity)
    validate_format(format)

    def _check(conn):
        p = _pool(conn, pool)
        _require_active(p, pool)
        _require_absent(p, pool, name)
        _require_space(p, pool, size)

    connections.call(uri, _check, what=f"storage pool {pool}")
    return size


def create_volume(uri: str, pool: str, name: str, capacity: int | str, format: str = "qcow2") -> VolumeInfo:
    """A new empty (sparse) volume of ``capacity`` bytes (or ``"20G"``)."""
    validate_volume_name(name)
    size = validate_capacity(capacity)
    xml = StorageVolume.new(name, size, format=validate_format(format)).to_string()

    def _create(conn):
        p = _pool(conn, pool)
        _require_active(p, pool)
        _require_absent(p, pool, name)
        _require_space(p, pool, size)
        return _volume_info(pool, p.createXML(xml, 0))

    return connections.call(uri, _create, what=f"creating volume {pool}/{name}", timeout=LONG_CALL_TIMEOUT)


def resize_volume(uri: str, pool: str, name: str, capacity: int | str) -> VolumeInfo:
    """Grow a volume to ``capacity``; shrinking is refused (it destroys data)."""
    validate_volume_name(name)
    size = validate_capacity(capacity)

    def _resize(conn):
        p = _pool(conn, pool)
        vol = p.storageVolLookupByName(name)
        current = vol.info()[1]
        if size < current:
            raise OperationRefused(f"{pool}/{name} is {format_size(current)}; shrinking to {format_size(size)} "
                                   "would destroy data and is refused.")
        if size == current:
            return _volume_info(pool, vol)
        _require_space(p, pool, size - current)
        vol.resize(size, 0)
        return _volume_info(pool, vol)

    return connections.call(uri, _resize, what=f"resizing volume {pool}/{name}", timeout=120)


def clone_volume(uri: str, pool: str, name: str, new_name: str, *, progress: Progress | None = None,
                 poll_seconds: float = 0.5) -> VolumeInfo:
    """Full copy of a volume into the same pool, same format; reports progress from the new
    volume's allocation while libvirt copies (polled on the same connection from this thread)."""
    validate_volume_name(name)
    validate_volume_name(new_name)

    def _prepare(conn):
        p = _pool(conn, pool)
        _require_active(p, pool)
        src = p.storageVolLookupByName(name)
        _require_absent(p, pool, new_name)
        source = _volume_info(pool, src)
        _require_space(p, pool, source.capacity)
        return source

    source = connections.call(uri, _prepare, what=f"cloning volume {pool}/{name}")
    xml = StorageVolume.new(new_name, source.capacity, format=source.format if source.format in VOLUME_FORMATS
                            else "raw").to_string()
    result: dict[str, object] = {}

    def _copy():
        try:
            result["value"] = connections.call(
                uri, lambda conn: _volume_info(pool, _pool(conn, pool).createXMLFrom(
                    xml, _volume(conn, pool, name), 0)),
                what=f"cloning volume {pool}/{name}", timeout=LONG_CALL_TIMEOUT)
        except BaseException as exc:
            result["error"] = exc

    worker = threading.Thread(target=_copy, name=f"clone:{pool}/{new_name}", daemon=True)
    worker.start()
    total = max(source.allocation, 1)
    while worker.is_alive():
        worker.join(poll_seconds)
        if worker.is_alive() and progress is not None:
            try:
                done = get_volume(uri, pool, new_name).allocation
            except VirtError:
                continue  # not created yet
            progress(min(99, 100 * done // total), f"Copied {format_size(done)} of {format_size(source.allocation)}")
    if "error" in result:
        raise result["error"]  # type: ignore[misc]
    return result["value"]  # type: ignore[return-value]


def delete_volume(uri: str, pool: str, name: str) -> None:
    """Delete a volume, refused while any guest on this host (running or not) uses it."""
    validate_volume_name(name)

    def _delete(conn):
        p = _pool(conn, pool)
        vol = p.storageVolLookupByName(name)
        users = _users_of(conn, pool, vol)
        if users:
            raise Conflict(f"Volume {pool}/{name} is attached to guest(s) {', '.join(users)}; "
                           "detach it or delete the guest first.")
        vol.delete(0)

    connections.call(uri, _delete, what=f"deleting volume {pool}/{name}", timeout=120)


# --------------------------------------------------------------------------- transfers


def _stream_error(exc: libvirt.libvirtError, what: str) -> VirtError:
    return translate(exc, what)


class UnsafeImage(OperationRefused):
    """An uploaded image refers to other files of the host (backing file, external data file)."""


SAFE_UPLOAD_FORMATS = ("raw", "qcow2", "iso")  # as libvirt probes the content, not as declared
_QCOW2_MAGIC = b"QFI\xfb"
_QCOW2_EXTERNAL_DATA_FILE = 1 << 2  # incompatible feature bit (qcow2 v3)
HEAD_BYTES = 64 * 1024  # the first qcow2 cluster: header, extensions and the backing file's name


def _qcow2_problem(header: bytes) -> str:
    """What in a qcow2 header (the upload's first bytes) points outside the image, or ""."""
    if header[:4] != _QCOW2_MAGIC or len(header) < 72:
        return ""
    version = int.from_bytes(header[4:8], "big")
    offset, size = int.from_bytes(header[8:16], "big"), int.from_bytes(header[16:20], "big")
    if offset:
        name = header[offset:offset + size].decode(errors="replace") if offset + size <= len(header) else ""
        return f"its qcow2 header names the backing file {name}" if name else "its qcow2 header names a backing file"
    if version >= 3 and len(header) >= 80 and int.from_bytes(header[72:80], "big") & _QCOW2_EXTERNAL_DATA_FILE:
        return "its qcow2 header names an external data file"
    return ""


def _unsafe_image(vol: libvirt.virStorageVol, header: bytes) -> str:
    """Why an uploaded volume must not be kept, or "".

    The qcow2 header (the upload's first bytes, whatever format was declared) is checked first:
    libvirt re-reads an uploaded volume in a background refresh, so right after the upload its
    volume XML can still show the declared "raw" without the backing file (seen in CI). Then
    libvirt's own probe, after a refresh of the pool, for formats other than raw, ISO and qcow2."""
    problem = _qcow2_problem(header)
    if problem:
        return problem
    try:
        vol.storagePoolLookupByVolume().refresh(0)
    except libvirt.libvirtError:
        pass  # a refresh already running: its result is what the XML below shows, or the header sufficed
    parsed = StorageVolume.parse(vol.XMLDesc(0))
    if parsed.backing_path:
        return f"its header names the backing file {parsed.backing_path}"
    kind = parsed.format or "raw"
    if kind not in SAFE_UPLOAD_FORMATS:
        return f"libvirt reads it as a {kind} image; only raw, ISO and qcow2 images are accepted"
    return ""


class Upload:
    """An open volume upload: the new volume exists and takes exactly ``length`` bytes.

    ``write(data)`` blocks until libvirt has taken ``data`` (a blocking stream sends one packet
    at a time, so nothing queues on our side); ``finish()`` keeps the volume; ``abort()`` (or any
    failure) deletes it, so a broken upload leaves nothing behind. One writer at a time; ``abort``
    may come from another thread and waits for a write in progress.
    """

    def __init__(self, conn: libvirt.virConnect, pool: str, vol: libvirt.virStorageVol,
                 stream: libvirt.virStream, length: int, where: str):
        self.pool, self.name, self.length, self.sent = pool, vol.name(), length, 0
        self._conn, self._vol, self._stream, self._where = conn, vol, stream, where
        self._lock = threading.Lock()
        self._open = True
        self._head = b""  # the first HEAD_BYTES sent: the image header, checked at finish

    def write(self, data: bytes) -> None:
        with self._lock:
            if not self._open:
                raise OperationRefused(f"{self._where}: the upload was already ended.")
            if self.sent + len(data) > self.length:
                self._discard()
                raise OperationRefused(f"{self._where}: more data than the announced {format_size(self.length)}.")
            try:
                offset = 0
                while offset < len(data):
                    n = self._stream.send(data[offset:] if offset else data)
                    if n <= 0:
                        raise OperationRefused(f"{self._where}: libvirt stopped accepting data.")
                    offset += n
            except libvirt.libvirtError as exc:
                self._discard()
                raise _stream_error(exc, self._where) from None
            except BaseException:
                self._discard()
                raise
            self.sent += len(data)
            if len(self._head) < HEAD_BYTES:
                self._head = (self._head + data)[:HEAD_BYTES]

    def finish(self) -> VolumeInfo:
        """Close the stream and keep the volume; refused (and deleted) unless every byte came."""
        with self._lock:
            if not self._open:
                raise OperationRefused(f"{self._where}: the upload was already ended.")
            if self.sent != self.length:
                self._discard()
                raise OperationRefused(f"{self._where}: the upload ended after {format_size(self.sent)} of "
                                       f"{format_size(self.length)}; nothing was kept.")
            try:
                self._stream.finish()
                info = _volume_info(self.pool, self._vol)
                unsafe = _unsafe_image(self._vol, self._head)
            except libvirt.libvirtError as exc:
                self._discard()
                raise _stream_error(exc, self._where) from None
            if unsafe:
                self._discard()
                raise UnsafeImage(f"{self._where}: uploaded images with a backing file are refused: it could "
                                  f"expose files of the host ({unsafe}). The volume was deleted.")
            self._open = False
            connections.close_in_background(self._conn)
            return info

    def abort(self) -> None:
        """Stop the transfer and delete the partial volume (nothing happens once finished)."""
        with self._lock:
            if self._open:
                self._discard()

    def _discard(self) -> None:
        self._open = False
        _abort(self._stream)
        try:
            self._vol.delete(0)
        except libvirt.libvirtError:
            pass
        connections.close_in_background(self._conn)


def open_upload(uri: str, pool: str, name: str, length: int, *, format: str = "raw") -> Upload:
    """Create volume ``name`` of ``length`` bytes and open a stream into it (own connection).

    Name, size and format are validated before libvirt is asked; then the pool must be running,
    hold no volume of that name and have ``length`` bytes available. On any failure nothing stays.
    """
    validate_volume_name(name)
    size = validate_capacity(length)
    xml = StorageVolume.new(name, size, format=validate_format(format)).to_string()
    where = f"uploading to {pool}/{name}"
    conn = connections.open_standalone(uri)
    vol = None
    try:
        p = _pool(conn, pool)
        _require_active(p, pool)
        _require_absent(p, pool, name)
        _require_space(p, pool, size)
        vol = p.createXML(xml, 0)
        stream = conn.newStream(0)
        vol.upload(stream, 0, size, 0)
    except BaseException as exc:
        if vol is not None:
            try:
                vol.delete(0)
            except libvirt.libvirtError:
                pass
        connections.close_in_background(conn)
        if isinstance(exc, libvirt.libvirtError):
            raise _stream_error(exc, where) from None
        raise
    return Upload(conn, pool, vol, stream, size, where)


def upload_volume(uri: str, pool: str, name: str, length: int, read: Callable[[int], bytes], *,
                  format: str = "raw", progress: Progress | None = None) -> VolumeInfo:
    """Create volume ``name`` of ``length`` bytes and fill it from ``read(n)`` in 1 MiB chunks.

    Memory stays at one chunk whatever the size. If anything fails (short input, libvirt error)
    the new volume is deleted, so a failed upload leaves nothing behind.
    """
    upload = open_upload(uri, pool, name, length, format=format)
    last_report = 0.0
    try:
        while upload.sent < upload.length:
            chunk = read(min(CHUNK, upload.length - upload.sent))
            if not chunk:
                break  # finish() refuses the short upload and deletes the volume
            upload.write(chunk)
            if progress is not None and time.monotonic() - last_report > 0.5:
                last_report = time.monotonic()
                progress(100 * upload.sent // upload.length,
                         f"Wrote {format_size(upload.sent)} of {format_size(upload.length)}")
        return upload.finish()
    finally:
        upload.abort()


def _abort(stream: libvirt.virStream) -> None:
    try:
        stream.abort()
    except libvirt.libvirtError:
        pass


class Download:
    """An open volume download: ``length`` bytes, pulled one chunk at a time with ``read()``.

    Flow control: libvirt's client library reads stream data from the socket in its event-loop
    thread and queues it without limit, so one stream over the whole volume filled the web
    process with whatever the browser had not read yet (4–39 MiB seen for 50 MiB). Instead each
    ``SEGMENT`` is its own ranged download started only when the caller asks for the next chunk:
    at most one segment is ever in flight. ``close()`` (from any thread) ends it early.
    """

    def __init__(self, conn: libvirt.virConnect, vol: libvirt.virStorageVol, length: int, where: str):
        self.name, self.length, self.sent = vol.name(), length, 0
        self._conn, self._vol, self._where = conn, vol, where
        self._stream: libvirt.virStream | None = None
        self._left = 0  # bytes still to come from the current segment
        self._lock = threading.Lock()
        self._open = True

    def read(self) -> bytes:
        """The next chunk (≤ 1 MiB); ``b""`` once ``length`` bytes were read (then it is closed)."""
        with self._lock:
            if not self._open:
                raise OperationRefused(f"{self._where}: the download was already closed.")
            if self.sent >= self.length:
                self._close()
                return b""
            try:
                return self._next_chunk()
            except libvirt.libvirtError as exc:
                self._close()
                raise _stream_error(exc, self._where) from None
            except BaseException:
                self._close()
                raise

    def _next_chunk(self) -> bytes:
        if self._stream is None:
            self._left = min(SEGMENT, self.length - self.sent)
            self._stream = self._conn.newStream(0)
            self._vol.download(self._stream, self.sent, self._left, 0)
        data = self._stream.recv(min(CHUNK, self._left))
        if isinstance(data, int) or not data:
            raise OperationRefused(f"{self._where}: the volume ended after {format_size(self.sent)} of "
                                   f"{format_size(self.length)}.")
        self._left -= len(data)
        self.sent += len(data)
        if self._left <= 0:
            stream, self._stream = self._stream, None
            stream.finish()
        return data

    def chunks(self) -> Iterator[bytes]:
        """Every chunk in turn (for synchronous servers); closes the download when left early."""
        try:
            while chunk := self.read():
                yield chunk
        finally:
            self.close()

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        if not self._open:
            return
        self._open = False
        if self._stream is not None:
            _abort(self._stream)
            self._stream = None
        connections.close_in_background(self._conn)


def open_download(uri: str, pool: str, name: str) -> Download:
    """Start downloading a whole volume: ``Download.read()`` returns it chunk by chunk."""
    validate_volume_name(name)
    where = f"downloading {pool}/{name}"
    conn = connections.open_standalone(uri)
    try:
        vol = _volume(conn, pool, name)
        length = _transfer_length(vol)
    except libvirt.libvirtError as exc:
        connections.close_in_background(conn)
        raise _stream_error(exc, where) from None
    return Download(conn, vol, length, where)


def _transfer_length(vol: libvirt.virStorageVol) -> int:
    """Bytes a download yields: the physical size of file volumes (a qcow2 file, or a raw file
    with its holes read as zeros), which libvirt reports in place of the allocation with this flag."""
    try:
        _type, capacity, physical = vol.infoFlags(libvirt.VIR_STORAGE_VOL_GET_PHYSICAL)
    except libvirt.libvirtError:
        return vol.info()[1]
    return physical or capacity


__all__ = [
    "Download", "InvalidNameError", "InvalidSizeError", "NotEnoughSpace", "ObjectNotFound", "PoolInfo",
    "PoolLocationRefused", "SAFE_UPLOAD_FORMATS", "UnsafeImage", "Upload", "check_pool_location", "path_within",
    "VolumeInfo", "check_new_volume", "clone_volume", "create_volume", "define_pool", "delete_pool",
    "delete_volume", "get_pool", "get_volume", "list_pools", "list_volumes", "open_download", "open_upload",
    "pool_xml", "refresh_pool", "resize_volume", "set_pool_autostart", "start_pool", "stop_pool", "upload_volume",
    "validate_capacity", "validate_path", "volume_by_path", "volume_users",
]

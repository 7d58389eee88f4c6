"""Provisioning calls: domain XML round trips, validated defines, hot-plug, volumes for guests.

Callers get strings and dicts, never libvirt objects. Every call goes through
`connections.call` (timeout, our exceptions). Plain volume create/resize/copy live in
`hosts/virt/storage.py`; here are only what guests need beyond it (volume by path, a qcow2
overlay from our own XML, a small upload for the cloud-init seed, delete by path for cleanup).
"""

from __future__ import annotations

import libvirt
from lxml import etree

from hosts.virt import connections

INACTIVE_SECURE = libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE
LONG_TIMEOUT = 3600


def _dom(conn: libvirt.virConnect, uuid: str) -> libvirt.virDomain:
    return conn.lookupByUUIDString(uuid)


# ------------------------------------------------------------------ domain XML and state


def inactive_xml(uri: str, uuid: str) -> str:
    """The persistent definition with secrets (what an edit starts from)."""
    return connections.call(uri, lambda c: _dom(c, uuid).XMLDesc(INACTIVE_SECURE), what=f"guest {uuid}")


def state(uri: str, uuid: str) -> dict:
    """Name, whether it runs, autostart and persistence of one guest."""

    def read(conn):
        dom = _dom(conn, uuid)
        return {"name": dom.name(), "uuid": uuid, "active": bool(dom.isActive()),
                "autostart": bool(dom.autostart()), "persistent": bool(dom.isPersistent()),
                "state": dom.state()[0]}

    return connections.call(uri, read, what=f"guest {uuid}")


def uuid_for_name(uri: str, name: str) -> str | None:
    def find(conn):
        try:
            return conn.lookupByName(name).UUIDString()
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return None
            raise

    return connections.call(uri, find, what=f"guest {name}")


def define_validated(uri: str, xml: str) -> str:
    """defineXML with schema validation; the old definition stays if libvirt refuses."""
    flags = libvirt.VIR_DOMAIN_DEFINE_VALIDATE
    return connections.call(uri, lambda c: c.defineXMLFlags(xml, flags).UUIDString(), what="defining the guest")


def set_autostart(uri: str, uuid: str, enabled: bool) -> None:
    connections.call(uri, lambda c: _dom(c, uuid).setAutostart(int(enabled)), what=f"guest {uuid}")


def start(uri: str, uuid: str) -> None:
    def run(conn):
        dom = _dom(conn, uuid)
        if not dom.isActive():
            dom.create()

    connections.call(uri, run, what=f"starting guest {uuid}", timeout=60)


def destroy(uri: str, uuid: str) -> None:
    def run(conn):
        dom = _dom(conn, uuid)
        if dom.isActive():
            dom.destroy()

    connections.call(uri, run, what=f"stopping guest {uuid}", timeout=60)


def undefine(uri: str, uuid: str) -> None:
    """Undefine with its snapshot metadata, managed save and NVRAM (the guest must be off)."""
    base = libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA

    def run(conn):
        dom = _dom(conn, uuid)
        try:
            dom.undefineFlags(base | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)
        except libvirt.libvirtError:
            dom.undefineFlags(base)

    connections.call(uri, run, what=f"removing guest {uuid}")


# ------------------------------------------------------------------ live changes (hot-plug path)


def set_memory_live(uri: str, uuid: str, kib: int) -> None:
    connections.call(uri, lambda c: _dom(c, uuid).setMemoryFlags(kib, libvirt.VIR_DOMAIN_AFFECT_LIVE),
                     what=f"changing memory of guest {uuid}")


def set_vcpus_live(uri: str, uuid: str, count: int) -> None:
    connections.call(uri, lambda c: _dom(c, uuid).setVcpusFlags(count, libvirt.VIR_DOMAIN_AFFECT_LIVE),
                     what=f"changing vCPUs of guest {uuid}", timeout=30)


def attach_live(uri: str, uuid: str, device_xml: str) -> None:
    connections.call(uri, lambda c: _dom(c, uuid).attachDeviceFlags(device_xml, libvirt.VIR_DOMAIN_AFFECT_LIVE),
                     what=f"attaching a device to guest {uuid}", timeout=30)


def detach_live(uri: str, uuid: str, device_xml: str) -> None:
    connections.call(uri, lambda c: _dom(c, uuid).detachDeviceFlags(device_xml, libvirt.VIR_DOMAIN_AFFECT_LIVE),
                     what=f"detaching a device from guest {uuid}", timeout=30)


def update_live(uri: str, uuid: str, device_xml: str) -> None:
    """Change a device of a running guest in place (CD media)."""
    connections.call(uri, lambda c: _dom(c, uuid).updateDeviceFlags(device_xml, libvirt.VIR_DOMAIN_AFFECT_LIVE),
                     what=f"updating a device of guest {uuid}", timeout=30)


# ------------------------------------------------------------------ host capabilities


def firmware_options(uri: str) -> dict:
    """What the host can boot: UEFI only when an OVMF/EDK2 loader is installed."""

    def read(conn):
        try:
            caps = etree.fromstring(conn.getDomainCapabilities(None, None, None, "qemu", 0).encode())
        except libvirt.libvirtError:
            return {"efi": False, "loaders": []}
        loaders = [v.text or "" for v in caps.iterfind("os/loader/value")]
        firmware = [v.text or "" for v in caps.iterfind("os/enum[@name='firmware']/value")]
        return {"efi": bool(loaders) and "efi" in firmware, "loaders": loaders}

    return connections.call(uri, read, what=uri)


# ------------------------------------------------------------------ storage used by guests


def _pool_dict(pool: libvirt.virStoragePool) -> dict:
    _state, capacity, allocation, available = pool.info()
    xml = etree.fromstring(pool.XMLDesc(0).encode())
    return {"name": pool.name(), "active": bool(pool.isActive()), "type": xml.get("type"),
            "path": xml.findtext("target/path") or "", "capacity": capacity, "allocation": allocation,
            "available": available}


def pools(uri: str) -> list[dict]:
    return connections.call(uri, lambda c: sorted((_pool_dict(p) for p in c.listAllStoragePools()),
                                                  key=lambda p: p["name"]), what=uri)


def pool(uri: str, name: str) -> dict:
    return connections.call(uri, lambda c: _pool_dict(c.storagePoolLookupByName(name)), what=f"pool {name}")


def volumes(uri: str, pool_name: str) -> list[dict]:
    """Volumes of an active pool: name, path, capacity, allocation, format."""

    def read(conn):
        found = []
        for vol in conn.storagePoolLookupByName(pool_name).listAllVolumes():
            _type, capacity, allocation = vol.info()
            xml = etree.fromstring(vol.XMLDesc(0).encode())
            fmt = xml.find("target/format")
            found.append({"name": vol.name(), "path": vol.path(), "capacity": capacity, "allocation": allocation,
                          "format": fmt.get("type", "") if fmt is not None else ""})
        return sorted(found, key=lambda v: v["name"])

    return connections.call(uri, read, what=f"pool {pool_name}")


def volume_by_path(uri: str, path: str) -> dict | None:
    """The pool and name of the volume at `path`, or None if no pool knows it."""

    def read(conn):
        try:
            vol = conn.storageVolLookupByPath(path)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() in (libvirt.VIR_ERR_NO_STORAGE_VOL, libvirt.VIR_ERR_NO_STORAGE_POOL):
                return None
            raise
        _type, capacity, allocation = vol.info()
        return {"pool": vol.storagePoolLookupByVolume().name(), "name": vol.name(), "path": vol.path(),
                "capacity": capacity, "allocation": allocation}

    return connections.call(uri, read, what=path)


def volume_exists(uri: str, pool_name: str, name: str) -> bool:
    def read(conn):
        try:
            conn.storagePoolLookupByName(pool_name).storageVolLookupByName(name)
            return True
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_STORAGE_VOL:
                return False
            raise

    return connections.call(uri, read, what=f"pool {pool_name}")


def create_volume(uri: str, pool_name: str, volume_xml: str) -> str:
    """Create a volume from XML we built; returns its path. An existing one of that name is refused."""
    return connections.call(uri, lambda c: c.storagePoolLookupByName(pool_name).createXML(volume_xml, 0).path(),
                            what=f"creating a volume in pool {pool_name}", timeout=LONG_TIMEOUT)


def delete_volume(uri: str, path: str) -> bool:
    """Delete the volume at `path`; False when there was none (idempotent cleanup)."""

    def run(conn):
        try:
            vol = conn.storageVolLookupByPath(path)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() in (libvirt.VIR_ERR_NO_STORAGE_VOL, libvirt.VIR_ERR_NO_STORAGE_POOL):
                return False
            raise
        vol.delete(0)
        return True

    return connections.call(uri, run, what=f"deleting {path}", timeout=120)


def upload_bytes(uri: str, pool_name: str, volume_xml: str, data: bytes) -> str:
    """Create a raw volume and fill it with `data` (small files such as a cloud-init ISO)."""

    def run(conn):
        vol = conn.storagePoolLookupByName(pool_name).createXML(volume_xml, 0)
        stream = conn.newStream(0)
        vol.upload(stream, 0, len(data), 0)
        view = memoryview(data)
        while view:
            sent = stream.send(bytes(view[:262144]))
            view = view[sent:]
        stream.finish()
        return vol.path()

    return connections.call(uri, run, what=f"uploading to pool {pool_name}", timeout=120)

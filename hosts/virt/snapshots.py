"""Domain snapshots: list as a tree, create, revert, delete. Plain dicts out, our errors up."""

from __future__ import annotations

import libvirt
from lxml import etree

from hosts.virt import connections
from hosts.virt.errors import OperationRefused

SNAPSHOT_TIMEOUT = 300


def _dom(conn: libvirt.virConnect, uuid: str) -> libvirt.virDomain:
    return conn.lookupByUUIDString(uuid)


def _describe(snap: libvirt.virDomainSnapshot, current: str | None) -> dict:
    xml = etree.fromstring(snap.getXMLDesc(0).encode())
    disks = [{"name": d.get("name", ""), "snapshot": d.get("snapshot", "")} for d in xml.iterfind("disks/disk")]
    external = any(d["snapshot"] == "external" for d in disks) or xml.find("memory[@snapshot='external']") is not None
    return {
        "name": snap.getName(),
        "description": xml.findtext("description") or "",
        "state": xml.findtext("state") or "",
        "parent": xml.findtext("parent/name") or "",
        "created": int(xml.findtext("creationTime") or 0),
        "memory": (xml.find("memory").get("snapshot") if xml.find("memory") is not None else "") or "",
        "disks": disks,
        "external": external,
        "current": snap.getName() == current,
    }


def list_snapshots(uri: str, uuid: str) -> list[dict]:
    """Every snapshot, parents before children, each with `depth` for a tree view."""

    def read(conn):
        dom = _dom(conn, uuid)
        current = dom.snapshotCurrent().getName() if dom.hasCurrentSnapshot() else None
        return [_describe(s, current) for s in dom.listAllSnapshots(0)]

    return _as_tree(connections.call(uri, read, what=f"snapshots of guest {uuid}"))


def _as_tree(flat: list[dict]) -> list[dict]:
    children: dict[str, list[dict]] = {}
    for snap in sorted(flat, key=lambda s: (s["created"], s["name"])):
        children.setdefault(snap["parent"], []).append(snap)
    names = {s["name"] for s in flat}
    ordered: list[dict] = []

    def walk(parent: str, depth: int) -> None:
        for snap in children.get(parent, []):
            ordered.append({**snap, "depth": depth})
            walk(snap["name"], depth + 1)

    walk("", 0)
    for parent in [p for p in children if p and p not in names]:  # orphans: parent deleted meanwhile
        walk(parent, 0)
    return ordered


def create(uri: str, uuid: str, snapshot_xml: str, *, disk_only: bool = False) -> str:
    """Create a snapshot; libvirt's "unsupported" becomes a message naming what is missing."""
    flags = libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY | libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC if disk_only else 0

    def run(conn):
        return _dom(conn, uuid).snapshotCreateXML(snapshot_xml, flags).getName()

    try:
        return connections.call(uri, run, what="creating the snapshot", timeout=SNAPSHOT_TIMEOUT)
    except OperationRefused as exc:
        raise OperationRefused(_explain(exc.detail or str(exc)), detail=exc.detail) from None


def revert(uri: str, uuid: str, name: str) -> None:
    def run(conn):
        dom = _dom(conn, uuid)
        dom.revertToSnapshot(dom.snapshotLookupByName(name, 0), 0)

    try:
        connections.call(uri, run, what=f"reverting to snapshot {name}", timeout=SNAPSHOT_TIMEOUT)
    except OperationRefused as exc:
        raise OperationRefused(_explain(exc.detail or str(exc)), detail=exc.detail) from None


def delete(uri: str, uuid: str, name: str) -> bool:
    """Delete one snapshot (children are re-parented); False if it was already gone."""

    def run(conn):
        dom = _dom(conn, uuid)
        try:
            snap = dom.snapshotLookupByName(name, 0)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN_SNAPSHOT:
                return False
            raise
        snap.delete(0)
        return True

    try:
        return connections.call(uri, run, what=f"deleting snapshot {name}", timeout=SNAPSHOT_TIMEOUT)
    except OperationRefused as exc:
        raise OperationRefused(_explain(exc.detail or str(exc)), detail=exc.detail) from None


def _explain(detail: str) -> str:
    """libvirt's words plus what an operator can do about the usual storage limits."""
    low = detail.lower()
    if "external" in low and ("revert" in low or "not supported" in low):
        return (f"This libvirt cannot revert or delete external (disk-only) snapshots: {detail}. "
                "Use internal snapshots (qcow2 disks, not disk-only) to be able to revert.")
    if "internal snapshot" in low or "qcow2" in low or "does not support" in low or "unsupported" in low:
        return (f"The guest's storage does not support this snapshot: {detail}. Internal snapshots need "
                "every writable disk in qcow2 format; raw disks allow disk-only (external) snapshots only.")
    return f"Snapshot failed: {detail}"

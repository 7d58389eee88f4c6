"""Domains (guests): define, look up and act on them; callers get plain data, never virDomain."""

from __future__ import annotations

import libvirt

from hosts.virt import connections


def _by_uuid(conn: libvirt.virConnect, uuid: str) -> libvirt.virDomain:
    return conn.lookupByUUIDString(uuid)


def define(uri: str, xml: str) -> str:
    """Define a persistent domain from XML we built; returns its UUID."""
    return connections.call(uri, lambda conn: conn.defineXML(xml).UUIDString(), what="defining a guest")


def count(uri: str) -> int:
    return connections.call(uri, lambda conn: len(conn.listAllDomains()), what=uri)


def names(uri: str) -> list[str]:
    return connections.call(uri, lambda conn: sorted(d.name() for d in conn.listAllDomains()), what=uri)


def start(uri: str, uuid: str) -> None:
    def _start(conn):
        dom = _by_uuid(conn, uuid)
        if not dom.isActive():
            dom.create()

    connections.call(uri, _start, what=f"guest {uuid}")

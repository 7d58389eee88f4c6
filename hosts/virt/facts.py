"""Facts about a hypervisor host, read in one round of calls and returned as plain data."""

from __future__ import annotations

import libvirt
from lxml import etree

from hosts.virt import connections
from hosts.virt.errors import translate


def _version_text(number: int) -> str:
    return f"{number // 1_000_000}.{number // 1000 % 1000}.{number % 1000}"


def _from_capabilities(conn: libvirt.virConnect) -> tuple[str, str]:
    """CPU model and the hypervisor's identity: libvirt's host UUID (<host><uuid>, from SMBIOS or
    libvirtd.conf host_uuid), the same whichever URI reaches the daemon."""
    caps = etree.fromstring(conn.getCapabilities().encode())
    model = caps.findtext("host/cpu/model") or caps.findtext("host/cpu/arch") or ""
    return model, (caps.findtext("host/uuid") or "").strip().lower()


def _pools(conn: libvirt.virConnect) -> list[dict]:
    pools = []
    for pool in conn.listAllStoragePools():
        state, capacity, allocation, available = pool.info()
        pools.append(
            {
                "name": pool.name(),
                "active": bool(pool.isActive()),
                "capacity": capacity,
                "allocation": allocation,
                "available": available,
            }
        )
    return sorted(pools, key=lambda p: p["name"])


def _memory(conn: libvirt.virConnect, memory_mib: int) -> tuple[int, int | None]:
    """Total (as virsh nodeinfo reports it) and free bytes; free never exceeds total.

    Node memory stats can report more than nodeinfo (e.g. a container memory limit), so the
    free figure is clamped to keep "used" meaningful.
    """
    total = memory_mib * 1024 * 1024
    try:
        free = conn.getFreeMemory()
    except libvirt.libvirtError:
        return total, None
    return total, min(free, total)


def _read(conn: libvirt.virConnect) -> dict:
    model, memory_mib, cpus, mhz, nodes, sockets, cores, threads = conn.getInfo()
    domains = conn.listAllDomains()
    running = sum(1 for dom in domains if dom.isActive())
    total, free = _memory(conn, memory_mib)
    cpu_model, host_uuid = _from_capabilities(conn)
    return {
        "hostname": conn.getHostname(),
        "hypervisor": conn.getType(),
        "hypervisor_version": _version_text(conn.getVersion()),
        "libvirt_version": _version_text(conn.getLibVersion()),
        "arch": model,
        "cpu_model": cpu_model,
        "host_uuid": host_uuid,
        "cpus": cpus,
        "mhz": mhz,
        "numa_nodes": nodes,
        "sockets": sockets,
        "cores": cores,
        "threads": threads,
        "memory_total": total,
        "memory_free": free,
        "guests_total": len(domains),
        "guests_running": running,
        "pools": _pools(conn),
    }


def read_facts(uri: str, *, force: bool = False, timeout: float | None = None) -> dict:
    """Facts of the host at `uri`; raises hosts.virt.errors.VirtError subclasses."""
    return connections.call(uri, _read, what=uri, force=force, timeout=timeout)


def probe(uri: str, timeout: float | None = None) -> dict:
    """Open a throw-away connection and read facts: the "test connection" button."""
    conn = connections.open_standalone(uri, timeout)
    try:
        return connections.run_with_timeout(lambda: _read(conn), timeout or 10, uri)
    except TimeoutError as exc:
        raise connections.HostUnreachable(f"{uri} is not answering: {exc}") from None
    except libvirt.libvirtError as exc:
        raise translate(exc, uri) from None
    finally:
        connections.close_in_background(conn)

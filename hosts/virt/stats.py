"""Bulk reads of every domain on a host: one round per host, never one call per guest.

`read_host(uri)` runs, inside ONE `connections.call`, `listAllDomains` (all, autostart,
persistent), `getAllDomainStats` with NOWAIT (a stuck domain must not block the whole host's
stats for 30 s; shared/RELIABILITY.md), and optionally the XML of the few domains the caller
does not know yet (new guests) plus the host's capacity figures. Callers get plain dataclasses.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import libvirt

from hosts.virt import connections

_STATS = (libvirt.VIR_DOMAIN_STATS_STATE | libvirt.VIR_DOMAIN_STATS_CPU_TOTAL | libvirt.VIR_DOMAIN_STATS_BALLOON
          | libvirt.VIR_DOMAIN_STATS_VCPU | libvirt.VIR_DOMAIN_STATS_INTERFACE | libvirt.VIR_DOMAIN_STATS_BLOCK)
_NOWAIT = libvirt.VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT


@dataclass
class DomainStats:
    """What one bulk read knows about one domain. Counters are cumulative; None = not reported."""

    uuid: str
    name: str
    state: int
    reason: int = 0
    autostart: bool = False
    persistent: bool = True
    vcpus: int | None = None
    max_vcpus: int | None = None
    memory_kib: int | None = None
    max_memory_kib: int | None = None
    memory_used_bytes: int | None = None
    cpu_time_ns: int | None = None
    disk_read_bytes: int | None = None
    disk_write_bytes: int | None = None
    net_rx_bytes: int | None = None
    net_tx_bytes: int | None = None
    xml: str | None = None


@dataclass
class HostCapacity:
    cpus: int = 0
    memory_total: int = 0
    memory_free: int | None = None
    storage_capacity: int = 0
    storage_allocation: int = 0


@dataclass
class HostRead:
    """One bulk read: `domains` keyed by UUID, `monotonic` when it was taken (for rates)."""

    domains: dict[str, DomainStats]
    monotonic: float
    capacity: HostCapacity | None = None
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)


def _sum(record: dict, prefix: str, count_key: str, suffix: str) -> int | None:
    count = record.get(count_key)
    if count is None:
        return None
    values = [record.get(f"{prefix}.{i}.{suffix}") for i in range(count)]
    values = [v for v in values if v is not None]
    return sum(values) if values else (0 if count == 0 else None)


def _memory_used(record: dict) -> int | None:
    available, unused = record.get("balloon.available"), record.get("balloon.unused")
    if available is not None and unused is not None:
        return max(0, available - unused) * 1024
    for key in ("balloon.rss", "balloon.current"):
        if record.get(key) is not None:
            return record[key] * 1024
    return None


def _from_record(dom: libvirt.virDomain, record: dict) -> DomainStats:
    return DomainStats(
        uuid=dom.UUIDString(), name=dom.name(), state=record.get("state.state", 0),
        reason=record.get("state.reason", 0), vcpus=record.get("vcpu.current"),
        max_vcpus=record.get("vcpu.maximum"), memory_kib=record.get("balloon.current"),
        max_memory_kib=record.get("balloon.maximum"), memory_used_bytes=_memory_used(record),
        cpu_time_ns=record.get("cpu.time"),
        disk_read_bytes=_sum(record, "block", "block.count", "rd.bytes"),
        disk_write_bytes=_sum(record, "block", "block.count", "wr.bytes"),
        net_rx_bytes=_sum(record, "net", "net.count", "rx.bytes"),
        net_tx_bytes=_sum(record, "net", "net.count", "tx.bytes"),
    )


def _all_stats(conn: libvirt.virConnect) -> list[tuple[libvirt.virDomain, dict]]:
    try:
        return conn.getAllDomainStats(_STATS, _NOWAIT)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() not in (libvirt.VIR_ERR_INVALID_ARG, libvirt.VIR_ERR_NO_SUPPORT,
                                        libvirt.VIR_ERR_ARGUMENT_UNSUPPORTED):
            raise
    return conn.getAllDomainStats(0, 0)  # older daemons / drivers: whatever they support


def _capacity(conn: libvirt.virConnect) -> HostCapacity:
    _model, memory_mib, cpus, *_rest = conn.getInfo()
    cap = HostCapacity(cpus=cpus, memory_total=memory_mib * 1024 * 1024)
    try:
        cap.memory_free = min(conn.getFreeMemory(), cap.memory_total)
    except libvirt.libvirtError:
        pass
    for pool in conn.listAllStoragePools(libvirt.VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE):
        try:
            _state, capacity, allocation, _available = pool.info()
        except libvirt.libvirtError:
            continue  # a pool removed meanwhile
        cap.storage_capacity += capacity
        cap.storage_allocation += allocation
    return cap


def _domain_xml(dom: libvirt.virDomain) -> str | None:
    try:
        return dom.XMLDesc(0)
    except libvirt.libvirtError:
        return None  # undefined between the list and this read: the next round sees it gone


def _read(conn: libvirt.virConnect, known: set[str], capacity: bool) -> HostRead:
    started = time.monotonic()
    autostart = {d.UUIDString() for d in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_AUTOSTART)}
    persistent = {d.UUIDString() for d in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_PERSISTENT)}
    domains: dict[str, DomainStats] = {}
    for dom, record in _all_stats(conn):
        stats = _from_record(dom, record)
        stats.autostart, stats.persistent = stats.uuid in autostart, stats.uuid in persistent
        if stats.uuid not in known:
            stats.xml = _domain_xml(dom)
        domains[stats.uuid] = stats
    read = HostRead(domains=domains, monotonic=time.monotonic())
    if capacity:
        read.capacity = _capacity(conn)
    read.seconds = time.monotonic() - started
    return read


def read_host(uri: str, *, known: set[str] | frozenset[str] = frozenset(), capacity: bool = False,
              timeout: float | None = None) -> HostRead:
    """Every domain of the host with state and counters, plus the XML of those not in `known`.

    Pass no `known` for a full resync (after a reconnect events were lost, so re-read all).
    """
    return connections.call(uri, lambda conn: _read(conn, set(known), capacity), what=f"reading guests of {uri}",
                            timeout=timeout)

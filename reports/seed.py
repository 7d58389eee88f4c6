"""Synthetic capacity history for demos, tests and benchmarks (`manage.py seed_history`).

Creates demo hosts (disabled, `test:///virtdash-demo/...xml` URIs, `facts["demo"] = True`, so the
watcher never touches them), guests with owners/tags/disks, and writes the sample tables the way
retention leaves them: hourly roll-ups for the whole history, 5-minute roll-ups for the last
`fine_days`, raw samples for the last `raw_hours`. Guest behaviour: daily (business hours) and
weekly (quiet weekends) patterns, growth over the period, guests added over time (so allocation
grows), some idle guests (CPU < 1 % of a thread, no I/O), some oversized (big allocation, little
use) and some stopped that still hold storage. Deterministic for a given `seed`.
"""

from __future__ import annotations

import math
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db import connection, transaction

from guests.choices import GuestState
from guests.models import Guest, GuestSample, HostSample, Resolution
from hosts.choices import HostStatus
from hosts.models import Host
from reports.rollup import build_days

GIB = 1024**3
DEMO_PREFIX = "demo-host-"
TEAMS = ["payments", "search", "web", "data", "ml", "ops", "mobile", "billing"]
ROLES = ["api", "db", "cache", "worker", "frontend", "batch", "queue", "proxy"]
OWNERS = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"]
HOST_OVERHEAD = 4 * GIB  # memory the host itself uses


@dataclass
class SeedResult:
    hosts: list
    guests: int
    guest_samples: int
    host_samples: int
    seconds: float


@dataclass
class _Plan:
    """One synthetic guest's fixed traits."""

    name: str
    host_index: int
    profile: str  # normal | idle | oversized | stopped
    vcpus: int
    memory: int
    disk_capacity: int
    disk_allocation: int
    owner: str
    tags: list
    born: float  # fraction of the history at which it was defined
    stops: float  # fraction at which it stopped (>= 1: still running)
    base: float  # CPU load as a fraction of its vCPUs
    growth: float  # relative growth of load over the whole history
    mem_base: float  # fraction of its memory in use
    io: float  # bytes/s at full load
    phase: float = 0.0
    last: dict = field(default_factory=dict)


_BASE_LOAD = {  # CPU load as a fraction of the guest's vCPUs (idle: of one thread, see _figures)
    "normal": lambda rng: rng.uniform(0.15, 0.5),
    "idle": lambda rng: rng.uniform(0.002, 0.008),
    "oversized": lambda rng: rng.uniform(0.01, 0.03),
    "stopped": lambda rng: rng.uniform(0.05, 0.3),
}


def _plan_guest(rng: random.Random, index: int, hosts: int) -> _Plan:
    roll = rng.random()
    profile = "idle" if roll < 0.10 else "oversized" if roll < 0.22 else "stopped" if roll < 0.30 else "normal"
    team = rng.choice(TEAMS)
    vcpus = rng.choice([8, 12, 16]) if profile == "oversized" else rng.choice([1, 2, 2, 4, 4, 8])
    memory = (rng.choice([16, 32, 64]) if profile == "oversized" else rng.choice([1, 2, 4, 4, 8, 16])) * GIB
    capacity = rng.choice([10, 20, 40, 80, 160]) * GIB
    owner = "" if rng.random() < 0.1 else rng.choice(OWNERS)
    tags = [] if rng.random() < 0.1 else [f"team:{team}", rng.choice(["prod", "prod", "staging", "dev"])]
    born = 0.0 if rng.random() < 0.6 else rng.uniform(0.0, 0.95)
    stops = rng.uniform(max(born, 0.2), 0.9) if profile == "stopped" else 2.0
    return _Plan(
        name=f"{team}-{rng.choice(ROLES)}-{index:03d}", host_index=index % hosts, profile=profile, vcpus=vcpus,
        memory=memory, disk_capacity=capacity, disk_allocation=int(capacity * rng.uniform(0.2, 0.9)), owner=owner,
        tags=tags, born=born, stops=stops,
        base=_BASE_LOAD[profile](rng),
        growth=rng.uniform(0.0, 0.8),
        mem_base=rng.uniform(0.45, 0.8) if profile == "normal" else rng.uniform(0.04, 0.1),
        io=0.0 if profile == "idle" else rng.uniform(2e4, 5e6) * (0.05 if profile == "oversized" else 1.0),
        phase=rng.uniform(-2, 2),
    )


def _daily(hour_of_day: float, weekday: int) -> float:
    """Busy in business hours (peak at 14:00 UTC), quiet at night and at weekends."""
    day = 0.35 + 0.65 * max(0.0, math.sin(math.pi * (hour_of_day - 7.0) / 14.0)) if 7 <= hour_of_day <= 21 else 0.35
    return day * (0.55 if weekday >= 5 else 1.0)


def _figures(plan: _Plan, when: datetime, frac: float, rng: random.Random) -> tuple:
    """(cpu_percent of one thread, memory_used, disk r, disk w, net rx, net tx) at a time."""
    if plan.profile == "idle":
        return (plan.base * 100 * rng.uniform(0.7, 1.3), int(plan.memory * plan.mem_base), 0.0, 0.0, 0.0, 0.0)
    load = _daily(when.hour + when.minute / 60 + plan.phase, when.weekday()) * (1 + plan.growth * frac)
    noise = rng.lognormvariate(0.0, 0.18)
    cpu = min(plan.vcpus * 100.0, plan.vcpus * 100.0 * plan.base * load * noise)
    mem = int(min(plan.memory, plan.memory * plan.mem_base * (0.85 + 0.15 * load) * (1 + 0.3 * plan.growth * frac)))
    io = plan.io * load * noise
    return (cpu, mem, io * 0.6, io * 0.4, io * 0.3, io * 0.2)


def _insert(model, columns: list[str], rows: list[tuple], batch: int = 5000) -> int:
    """Bulk insert plain tuples (executemany in batches): far cheaper than model instances."""
    if not rows:
        return 0
    table = connection.ops.quote_name(model._meta.db_table)
    cols = ", ".join(connection.ops.quote_name(c) for c in columns)
    sql = f"INSERT INTO {table} ({cols}) VALUES ({', '.join(['%s'] * len(columns))})"  # our own table/column names
    with connection.cursor() as cursor:
        for i in range(0, len(rows), batch):
            cursor.executemany(sql, rows[i:i + batch])
    return len(rows)


GUEST_COLUMNS = ["guest_id", "resolution", "time", "cpu_percent", "memory_used", "memory", "disk_read_bps",
                 "disk_write_bps", "net_rx_bps", "net_tx_bps", "count"]
HOST_COLUMNS = ["host_id", "resolution", "time", "cpus", "cpu_percent", "memory_total", "memory_used",
                "guests_running", "guests_defined", "vcpus_running", "vcpus_all", "memory_allocated_running",
                "memory_allocated_all", "storage_capacity", "storage_allocation", "count"]


def delete_demo_data() -> int:
    hosts = Host.objects.filter(name__startswith=DEMO_PREFIX, facts__demo=True)
    count = hosts.count()
    GuestSample.objects.filter(guest__host__in=hosts).delete()
    HostSample.objects.filter(host__in=hosts).delete()
    hosts.delete()
    return count


def _host_sizes(plans: list[_Plan], hosts: int, rng: random.Random) -> list[dict]:
    sizes = []
    for index in range(hosts):
        mine = [p for p in plans if p.host_index == index]
        vcpus = sum(p.vcpus for p in mine) or 8
        memory = sum(p.memory for p in mine) or 64 * GIB
        disks = sum(p.disk_capacity for p in mine) or 1024 * GIB
        sizes.append({
            "cpus": max(8, int(vcpus / rng.uniform(2.0, 3.2)) // 8 * 8),
            "memory_total": math.ceil(memory * rng.uniform(1.15, 1.3) / (64 * GIB)) * 64 * GIB,
            "storage_capacity": math.ceil(disks * rng.uniform(0.8, 1.1) / (256 * GIB)) * 256 * GIB,
        })
    return sizes


def _create_inventory(plans, sizes, hosts_n: int, now: datetime, stamp: str):
    hosts = []
    for i in range(hosts_n):
        facts = {"demo": True, "cpus": sizes[i]["cpus"], "memory_total": sizes[i]["memory_total"],
                 "hypervisor": "demo", "pools": [{"name": "default", "active": True,
                                                  "capacity": sizes[i]["storage_capacity"], "allocation": 0,
                                                  "available": sizes[i]["storage_capacity"]}]}
        hosts.append(Host.objects.create(
            name=f"{DEMO_PREFIX}{i + 1}{stamp}",
            uri=f"test:///virtdash-demo/{stamp.strip('-') or 'x'}/host-{i + 1}.xml",
            description="Demo data from manage.py seed_history: synthetic, not a real host.", enabled=False,
            status=HostStatus.UNKNOWN, facts=facts, facts_updated=now))
    return hosts


def _buckets(start: datetime, end: datetime, step: int) -> list[datetime]:
    first = datetime.fromtimestamp(math.ceil(start.timestamp() / step) * step, UTC)
    out, t = [], first
    while t + timedelta(seconds=step) <= end:
        out.append(t)
        t += timedelta(seconds=step)
    return out


def seed_history(*, hosts: int = 3, guests: int = 300, days: int = 90, seed: int = 1, fine_days: float = 7.0,
                 raw_hours: float = 0.0, raw_interval: int = 60, reset: bool = False, now: datetime | None = None,
                 build_daily: bool = True, log=None) -> SeedResult:
    """Create demo hosts/guests and their history; see the module docstring."""
    started = datetime.now(UTC)
    rng = random.Random(seed)
    now = now or datetime.now(UTC)
    now = datetime.fromtimestamp(int(now.timestamp()) // 300 * 300, UTC)
    history_start = now - timedelta(days=days)
    if reset:
        delete_demo_data()
    stamp = "" if not Host.objects.filter(name=f"{DEMO_PREFIX}1").exists() else f"-{seed}-{int(now.timestamp())}"
    plans = [_plan_guest(rng, i, hosts) for i in range(guests)]
    sizes = _host_sizes(plans, hosts, rng)
    guest_rows = hsample_rows = 0
    with transaction.atomic():
        host_objs = _create_inventory(plans, sizes, hosts, now, stamp)
        guest_objs = Guest.objects.bulk_create([Guest(
            host=host_objs[p.host_index], uuid=str(uuid.UUID(int=rng.getrandbits(128), version=4)), name=p.name,
            state=GuestState.SHUTOFF if p.profile == "stopped" else GuestState.RUNNING, vcpus=p.vcpus,
            max_vcpus=p.vcpus, memory_kib=p.memory // 1024, max_memory_kib=p.memory // 1024, owner=p.owner,
            tags=p.tags, persistent=True,
            summary={"disks": [{"target": "vda", "bus": "virtio", "device": "disk", "format": "qcow2",
                                "source": f"/var/lib/libvirt/images/{p.name}.qcow2", "capacity": p.disk_capacity,
                                "allocation": p.disk_allocation}], "nics": [], "graphics": [],
                     "owner": p.owner, "tags": p.tags})
            for p in plans], batch_size=500)
        span = (now - history_start).total_seconds()
        tiers = [(Resolution.HOUR, _buckets(history_start, now, 3600))]
        if fine_days > 0:
            tiers.append((Resolution.FIVE_MINUTES, _buckets(max(history_start, now - timedelta(days=fine_days)), now,
                                                            300)))
        for resolution, times in tiers:
            if log:
                log(f"{Resolution(resolution).label}: {len(times)} buckets")
            g, h = _write_tier(plans, guest_objs, host_objs, sizes, resolution, times, history_start, span, rng)
            guest_rows += g
            hsample_rows += h
        if raw_hours > 0:
            times = _buckets(now - timedelta(hours=raw_hours), now, raw_interval)
            g, h = _write_tier(plans, guest_objs, host_objs, sizes, Resolution.RAW, times, history_start, span, rng)
            guest_rows += g
            hsample_rows += h
        _finish_inventory(plans, guest_objs, host_objs, sizes)
        if build_daily:
            build_days(history_start.date(), now.date() - timedelta(days=1), {"guest__host__in": host_objs})
    seconds = (datetime.now(UTC) - started).total_seconds()
    return SeedResult(host_objs, len(guest_objs), guest_rows, hsample_rows, seconds)


def _write_tier(plans, guest_objs, host_objs, sizes, resolution, times, history_start, span, rng) -> tuple[int, int]:
    n_hosts = len(host_objs)
    acc = [[[0.0] * 10 for _ in times] for _ in range(n_hosts)]  # per host, per bucket
    rows: list[tuple] = []
    written = 0
    fracs = [(t - history_start).total_seconds() / span for t in times]
    for plan, guest in zip(plans, guest_objs, strict=True):
        bucket_acc = acc[plan.host_index]
        for i, when in enumerate(times):
            frac = fracs[i]
            if frac < plan.born:
                continue
            slot = bucket_acc[i]
            slot[3] += 1  # defined
            slot[5] += plan.vcpus
            slot[7] += plan.memory
            slot[8] += plan.disk_allocation
            if frac >= plan.stops:
                continue
            cpu, mem, dr, dw, nr, nt = _figures(plan, when, frac, rng)
            slot[0] += cpu
            slot[1] += mem
            slot[2] += 1  # running
            slot[4] += plan.vcpus
            slot[6] += plan.memory
            plan.last = {"cpu": cpu, "mem": mem}
            rows.append((guest.pk, resolution, when, cpu, mem, plan.memory, dr, dw, nr, nt, 1))
        if len(rows) >= 50000:
            written += _insert(GuestSample, GUEST_COLUMNS, rows)
            rows = []
    written += _insert(GuestSample, GUEST_COLUMNS, rows)
    host_rows = []
    for h, host in enumerate(host_objs):
        cpus, total, capacity = sizes[h]["cpus"], sizes[h]["memory_total"], sizes[h]["storage_capacity"]
        for i, when in enumerate(times):
            cpu, mem, running, defined, vrun, vall, mrun, mall, salloc, _ = acc[h][i]
            host_rows.append((host.pk, resolution, when, cpus, min(100.0, cpu / cpus), total,
                              int(min(total, mem + HOST_OVERHEAD)), int(running), int(defined), int(vrun), int(vall),
                              int(mrun), int(mall), capacity, int(min(capacity, salloc + 50 * GIB)), 1))
    return written, _insert(HostSample, HOST_COLUMNS, host_rows)


def _finish_inventory(plans, guest_objs, host_objs, sizes) -> None:
    """Current figures on the inventory rows (what "now" shows for restricted users) and pools."""
    for plan, guest in zip(plans, guest_objs, strict=True):
        if plan.profile != "stopped" and plan.last:
            guest.cpu_percent = plan.last["cpu"]
            guest.memory_used_kib = plan.last["mem"] // 1024
    Guest.objects.bulk_update(guest_objs, ["cpu_percent", "memory_used_kib"], batch_size=500)
    for h, host in enumerate(host_objs):
        allocation = sum(p.disk_allocation for p in plans if p.host_index == h) + 50 * GIB
        host.facts["pools"][0]["allocation"] = min(allocation, sizes[h]["storage_capacity"])
        host.facts["pools"][0]["available"] = max(0, sizes[h]["storage_capacity"] - allocation)
        host.save(update_fields=["facts"])

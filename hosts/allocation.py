"""What the guests a user may see on one host are allocated, next to what the host physically has.

Read from the inventory only (no libvirt call), so the host page stays fast when the host hangs.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Case, Value, When

from core.policy import visible_guests
from guests.allocated import allocated
from guests.choices import ACTIVE_STATES
from hosts.models import Host

GUEST_ROWS = 15  # the host page lists this many guests and links to the full, filtered list


@dataclass(frozen=True)
class Allocation:
    guests_total: int
    guests_running: int
    vcpus_running: int
    vcpus_all: int
    memory_running: int  # bytes
    memory_all: int  # bytes
    threads: int | None
    memory_physical: int | None  # bytes

    @property
    def vcpu_ratio(self) -> float | None:
        return self.vcpus_running / self.threads if self.threads else None

    @property
    def memory_ratio(self) -> float | None:
        return self.memory_running / self.memory_physical if self.memory_physical else None


def allocation(user, host: Host) -> Allocation:
    """Counted as the capacity report counts it (guests.allocated), for the guests `user` may see."""
    totals = allocated(visible_guests(user).filter(host=host))
    facts = host.facts or {}
    return Allocation(
        guests_total=totals.guests_all, guests_running=totals.guests_running,
        vcpus_running=totals.vcpus_running, vcpus_all=totals.vcpus_all,
        memory_running=totals.memory_running, memory_all=totals.memory_all,
        threads=facts.get("cpus") or None, memory_physical=facts.get("memory_total") or None)


def busiest_guests(user, host: Host) -> list:
    """Running guests first, then by name: the ones an operator looks for on a host page."""
    stopped_last = Case(When(state__in=list(ACTIVE_STATES), then=Value(0)), default=Value(1))
    guests = visible_guests(user).filter(host=host).only(
        "uuid", "name", "state", "vcpus", "memory_kib", "cpu_percent", "host_id")
    return list(guests.order_by(stopped_last, "name")[:GUEST_ROWS])

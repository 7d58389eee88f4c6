"""What a set of guests is allocated: one definition for the host page, host samples and reports.

Memory counts the guest's current memory (libvirt's `currentMemory`, what the balloon gives it
now), not its maximum: that is what the host has to find. The host page, the samples behind the
capacity charts and the capacity report all count it this way, so their figures agree.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet, Sum

from guests.choices import ACTIVE_STATES

MEMORY_FIELD = "memory_kib"


@dataclass(frozen=True)
class Allocated:
    guests_all: int = 0
    guests_running: int = 0
    vcpus_all: int = 0
    vcpus_running: int = 0
    memory_all: int = 0  # bytes
    memory_running: int = 0  # bytes


def allocated(guests: QuerySet) -> Allocated:
    """One aggregate query over `guests` (already filtered by host and by what the user may see)."""
    active = Q(state__in=list(ACTIVE_STATES))
    totals = guests.aggregate(
        guests_all=Count("id"), guests_running=Count("id", filter=active),
        vcpus_all=Sum("vcpus"), vcpus_running=Sum("vcpus", filter=active),
        memory_all=Sum(MEMORY_FIELD), memory_running=Sum(MEMORY_FIELD, filter=active))
    return Allocated(
        guests_all=totals["guests_all"] or 0, guests_running=totals["guests_running"] or 0,
        vcpus_all=totals["vcpus_all"] or 0, vcpus_running=totals["vcpus_running"] or 0,
        memory_all=(totals["memory_all"] or 0) * 1024, memory_running=(totals["memory_running"] or 0) * 1024)


def memory_bytes(guest) -> int:
    """One guest's allocated memory, counted as `allocated` counts it."""
    return getattr(guest, MEMORY_FIELD) * 1024

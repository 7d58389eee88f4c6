"""Guest states: the one place libvirt's numbers become our names (templates never see VIR_*)."""

from django.db import models


class GuestState(models.TextChoices):
    NOSTATE = "nostate", "No state"
    RUNNING = "running", "Running"
    BLOCKED = "blocked", "Blocked"
    PAUSED = "paused", "Paused"
    SHUTDOWN = "shutting-down", "Shutting down"
    SHUTOFF = "shutoff", "Shut off"
    CRASHED = "crashed", "Crashed"
    PMSUSPENDED = "pmsuspended", "Suspended (power management)"


# virDomainState values, in libvirt's order.
STATE_BY_LIBVIRT_NUMBER = [
    GuestState.NOSTATE,
    GuestState.RUNNING,
    GuestState.BLOCKED,
    GuestState.PAUSED,
    GuestState.SHUTDOWN,
    GuestState.SHUTOFF,
    GuestState.CRASHED,
    GuestState.PMSUSPENDED,
]

STATE_COLOURS = {
    GuestState.RUNNING: "green",
    GuestState.BLOCKED: "amber",
    GuestState.PAUSED: "amber",
    GuestState.SHUTDOWN: "amber",
    GuestState.SHUTOFF: "grey",
    GuestState.CRASHED: "red",
    GuestState.PMSUSPENDED: "amber",
    GuestState.NOSTATE: "grey",
}

ACTIVE_STATES = {GuestState.RUNNING, GuestState.BLOCKED, GuestState.PAUSED, GuestState.SHUTDOWN, GuestState.PMSUSPENDED}


def state_from_libvirt(number: int) -> str:
    if 0 <= number < len(STATE_BY_LIBVIRT_NUMBER):
        return STATE_BY_LIBVIRT_NUMBER[number]
    return GuestState.NOSTATE

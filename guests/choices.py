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


# virDomain*Reason values per state, in libvirt's order (libvirt-domain.h).
_REASONS = {
    GuestState.RUNNING: ["", "booted", "migrated", "restored", "restored from snapshot", "unpaused",
                         "migration cancelled", "save cancelled", "woken up", "crashed", "post-copy"],
    GuestState.BLOCKED: [""],
    GuestState.PAUSED: ["", "paused by user", "migrating", "saving", "dumping", "I/O error", "watchdog",
                        "restored from snapshot", "shutting down", "taking snapshot", "crashed", "starting up",
                        "post-copy", "post-copy failed"],
    GuestState.SHUTDOWN: ["", "by user"],
    GuestState.SHUTOFF: ["", "shut down", "forced off", "crashed", "migrated", "saved", "failed",
                         "restored from snapshot", "daemon stopped"],
    GuestState.CRASHED: ["", "panicked"],
    GuestState.PMSUSPENDED: [""],
}


def reason_text(state: str, reason: int) -> str:
    """Human words for libvirt's state reason number ("" when unknown or unremarkable)."""
    names = _REASONS.get(state, [])
    return names[reason] if 0 <= reason < len(names) else ""


# Our names for lifecycle events in the timeline (hosts.virt.events.LIFECYCLE_NAMES → words).
EVENT_WORDS = {
    "defined": "Defined or changed", "undefined": "Deleted", "started": "Started", "suspended": "Paused",
    "resumed": "Resumed", "stopped": "Stopped", "shutdown": "Shutting down", "pmsuspended": "Suspended",
    "crashed": "Crashed", "reboot": "Rebooted", "appeared": "Appeared", "moved": "Moved to this host",
}

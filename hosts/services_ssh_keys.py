"""Trusting a qemu+ssh host's SSH host key: compare a fresh scan with known_hosts, then write it.

The admin sees the fingerprints of one scan; accepting scans again and refuses unless the host
offers exactly the keys shown (a key swapped in between is never trusted). A changed key (the
file holds another key of a scanned type) is only replaced when the admin typed the host name.
Every outcome is audited; callers audit denied attempts (hosts.services.audit_denied).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core import audit
from core.choices import AuditResult
from hosts import known_hosts, services
from hosts.choices import HostStatus
from hosts.models import Host
from hosts.ssh_keys import HostKey, ScanFailed, Target, scan, target

ACTION = "host.ssh_key.trust"
UNKNOWN, CHANGED, TRUSTED, REVOKED = "unknown", "changed", "trusted", "revoked"


class Refused(Exception):
    """The keys were not trusted; the message tells the admin why and what to do."""


@dataclass
class Review:
    """What the trust page shows: the host's keys now and what known_hosts says about them."""

    target: Target
    scanned: list[HostKey]
    known: list[HostKey]
    state: str
    file: str
    revoked: list[HostKey] = field(default_factory=list)

    @property
    def fingerprints(self) -> list[str]:
        return [key.fingerprint for key in self.scanned]


def state_of(scanned: list[HostKey], known: list[HostKey], revoked: list[HostKey]) -> str:
    """unknown: no key for the host; trusted: one scanned key is known and none of the same type
    differs; changed: the file holds other keys; revoked: a scanned key is marked @revoked."""
    if any(key in revoked for key in scanned):
        return REVOKED
    if not known:
        return UNKNOWN
    kinds = {key.kind for key in scanned}
    if any(key in known for key in scanned) and not any(key.kind in kinds and key not in scanned for key in known):
        return TRUSTED
    return CHANGED


def review(uri: str) -> Review:
    """Scan the host at `uri` now (NotSshHost, ScanFailed) and compare with known_hosts."""
    where = target(uri)
    scanned = scan(where)
    lines = known_hosts.read_lines()
    known, revoked = known_hosts.keys_for(where, lines), known_hosts.revoked(lines)
    return Review(where, scanned, known, state_of(scanned, known, revoked), str(known_hosts.path()),
                  [key for key in scanned if key in revoked])


def _record(actor, host: Host | None, uri: str, result: str, detail: str) -> None:
    if host is not None:
        audit.record(actor, ACTION, host, result=result, detail=detail)
    else:
        audit.record(actor, ACTION, None, result=result, detail=detail, target_type="host", target_name=uri)


def _describe(keys: list[HostKey]) -> str:
    return ", ".join(f"{key.kind} {key.fingerprint}" for key in keys)


def trust(actor, uri: str, *, fingerprints: list[str], confirm: str = "", host: Host | None = None) -> str:
    """Trust the keys the admin saw (`fingerprints`) for the host at `uri`; returns what was done.

    Raises Refused (audited as failed) when the host now offers other keys, a changed key was not
    confirmed by typing the host name, or the file changed meanwhile.
    """
    where = target(uri)
    try:
        current = review(uri)
    except ScanFailed as exc:
        _record(actor, host, uri, AuditResult.FAILED, str(exc))
        raise Refused(str(exc)) from None
    if sorted(current.fingerprints) != sorted(fingerprints):
        detail = f"{where.pattern} now offers {_describe(current.scanned)}, not the keys shown"
        _record(actor, host, uri, AuditResult.FAILED, detail)
        raise Refused(f"{where.pattern} now offers other keys than the ones you checked: nothing was trusted. "
                      "Compare the fingerprints below again.")
    if current.state == REVOKED:
        _record(actor, host, uri, AuditResult.FAILED, f"revoked key offered: {_describe(current.revoked)}")
        raise Refused(f"{where.pattern} offers a key marked @revoked in known_hosts: nothing was trusted.")
    if current.state == TRUSTED:
        return f"The key of {where.pattern} is already trusted."
    replace = current.state == CHANGED
    if replace and confirm.strip().lower() != where.host.lower():
        _record(actor, host, uri, AuditResult.FAILED, f"changed key of {where.pattern} not confirmed")
        raise Refused(f"The host key of {where.pattern} changed: type {where.host} to confirm replacing it.")
    try:
        removed = known_hosts.trust(where, current.scanned, replace=replace)
    except known_hosts.Conflict as exc:
        _record(actor, host, uri, AuditResult.FAILED, str(exc))
        raise Refused(f"{exc} Review the keys again.") from None
    detail = f"{where.pattern} in {current.file}: trusted {_describe(current.scanned)}"
    if removed:
        detail += f"; replaced {_describe(removed)}"
    _record(actor, host, uri, AuditResult.OK, detail)
    verb = "Replaced the key of" if replace else "Trusted the key of"
    return f"{verb} {where.pattern} ({_describe(current.scanned)})."


def reconnect(host: Host) -> bool:
    """Connect this process to the host now and store the outcome (status, facts, live update).

    A Connected status written here also tells the watcher, which is backing off after the key
    error, to retry at once (hosts.watcher.Supervisor.sync)."""
    services.refresh_facts(host, force=True)
    return host.status == HostStatus.CONNECTED

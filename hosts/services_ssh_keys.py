"""Trusting a qemu+ssh host's SSH host key: compare a fresh scan with known_hosts, then write it.

Scanning runs ssh-keyscan against the host's address, so it happens only on an admin's POST and
every scan is audited (SCAN_ACTION). The admin sees the fingerprints of one scan; accepting scans
again and refuses unless the host offers exactly the keys shown (a key swapped in between is never
trusted). A changed key (the file holds another key of a scanned type) is only replaced when the
admin typed the host name. Every outcome is audited, a known_hosts that cannot be written too;
callers audit denied attempts (hosts.services.audit_denied).

The file written is this server's (hosts.known_hosts.path()): other machines that reach the host
(zone watchers and workers, other web servers) keep their own unless it is on shared storage,
which the page and the outcome say (this_server_only).
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
SCAN_ACTION = "host.ssh_key.scan"
UNKNOWN, CHANGED, TRUSTED, REVOKED = "unknown", "changed", "trusted", "revoked"


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


class Refused(Exception):
    """The keys were not trusted; the message tells the admin why and what to do. `review` is the
    scan made while refusing (None when there was none), for the page to show again."""

    def __init__(self, message: str, review: Review | None = None):
        super().__init__(message)
        self.review = review


@dataclass
class Outcome:
    """What trust() did: `message` for the admin; `wrote` whether `file` (this server's) changed."""

    message: str
    wrote: bool
    file: str


def this_server_only(file: str) -> str:
    """The reminder that a trusted key reaches only the machine that wrote it."""
    return (f"This updated {file} on this server only; machines that also reach this host (zone workers and "
            "watchers, other web servers) need the same line — or put VIRTDASH_SSH_KNOWN_HOSTS on shared storage.")


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
    try:
        lines = known_hosts.read_lines()
    except OSError as exc:
        raise ScanFailed(f"VirtDash could not read {known_hosts.path()} ({exc.strerror or exc}).") from None
    known, revoked = known_hosts.keys_for(where, lines), known_hosts.revoked(lines)
    return Review(where, scanned, known, state_of(scanned, known, revoked), str(known_hosts.path()),
                  [key for key in scanned if key in revoked])


def _record(actor, host: Host | None, uri: str, result: str, detail: str, action: str = ACTION) -> None:
    if host is not None:
        audit.record(actor, action, host, result=result, detail=detail)
    else:
        audit.record(actor, action, None, result=result, detail=detail, target_type="host", target_name=uri)


def _describe(keys: list[HostKey]) -> str:
    return ", ".join(f"{key.kind} {key.fingerprint}" for key in keys)


def scan_for(actor, uri: str, *, host: Host | None = None) -> Review:
    """The admin's "Scan the host's keys" (a POST): review(uri), audited as SCAN_ACTION either way.

    Raises NotSshHost (not audited: nothing was scanned) and ScanFailed (audited as failed)."""
    where = target(uri)
    try:
        found = review(uri)
    except ScanFailed as exc:
        _record(actor, host, uri, AuditResult.FAILED, str(exc), action=SCAN_ACTION)
        raise
    _record(actor, host, uri, AuditResult.OK, f"{where.pattern} offers {_describe(found.scanned)} ({found.state})",
            action=SCAN_ACTION)
    return found


def trust(actor, uri: str, *, fingerprints: list[str], confirm: str = "", host: Host | None = None) -> Outcome:
    """Trust the keys the admin saw (`fingerprints`) for the host at `uri` in this server's known_hosts.

    Raises Refused (audited as failed) when the host now offers other keys, a changed key was not
    confirmed by typing the host name, the file changed meanwhile or cannot be written (OSError:
    read-only folder, lock file, disk full).
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
                      "Compare the fingerprints below again.", current)
    if current.state == REVOKED:
        _record(actor, host, uri, AuditResult.FAILED, f"revoked key offered: {_describe(current.revoked)}")
        raise Refused(f"{where.pattern} offers a key marked @revoked in known_hosts: nothing was trusted.", current)
    if current.state == TRUSTED:
        return Outcome(f"The key of {where.pattern} is already trusted on this server.", False, current.file)
    replace = current.state == CHANGED
    if replace and confirm.strip().lower() != where.host.lower():
        _record(actor, host, uri, AuditResult.FAILED, f"changed key of {where.pattern} not confirmed")
        raise Refused(f"The host key of {where.pattern} changed: type {where.host} to confirm replacing it.", current)
    try:
        removed = known_hosts.trust(where, current.scanned, replace=replace)
    except known_hosts.Conflict as exc:
        _record(actor, host, uri, AuditResult.FAILED, str(exc))
        raise Refused(f"{exc} Review the keys again.", current) from None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        _record(actor, host, uri, AuditResult.FAILED, f"{where.pattern}: cannot write {current.file}: {reason}")
        raise Refused(f"Nothing was trusted: VirtDash cannot write {current.file} ({reason}). The account running "
                      "VirtDash must be able to create files in its folder (it writes the file and a .lock beside "
                      "it) and the disk must have room; or set VIRTDASH_SSH_KNOWN_HOSTS to a writable file.",
                      current) from None
    detail = f"{where.pattern} in {current.file}: trusted {_describe(current.scanned)}"
    if removed:
        detail += f"; replaced {_describe(removed)}"
    _record(actor, host, uri, AuditResult.OK, detail)
    verb = "Replaced the key of" if replace else "Trusted the key of"
    return Outcome(f"{verb} {where.pattern} ({_describe(current.scanned)}).", True, current.file)


def reconnect(host: Host) -> bool:
    """Connect this process to the host now and store the outcome (status, facts, live update).

    A Connected status written here also tells the watcher, which is backing off after the key
    error, to retry at once (hosts.watcher.Supervisor.sync)."""
    services.refresh_facts(host, force=True)
    return host.status == HostStatus.CONNECTED

"""The known_hosts file VirtDash's ssh uses: reading a host's keys, trusting and replacing them.

The file is VIRTDASH_SSH_KNOWN_HOSTS when set, else ~/.ssh/known_hosts of the account running
VirtDash (its passwd home, as ssh reads it). Lines are matched the way ssh does (host names lowercased): plain names
and comma lists (case-insensitive, `*`/`?` wildcards, `!` negation), `[host]:port` for other
ports than 22, and hashed names (`|1|salt|HMAC-SHA1(salt, name)`). Edits happen under an
exclusive lock on `<file>.lock` (several web processes) and replace the file atomically, so ssh
never reads half a file. Only exact names (plain or hashed) are ever removed: a wildcard line
also covers other hosts and is left alone. Lines written hold only a validated Target pattern
and a HostKey that passed hosts.ssh_keys.parse_key.
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import hashlib
import hmac
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from hosts.ssh_keys import HostKey, Target, parse_key
from hosts.virt import ssh


class Conflict(Exception):
    """The file holds other keys for the host: replacing them needs the admin's confirmation."""


@dataclass(frozen=True)
class Line:
    marker: str  # "", "@revoked" or "@cert-authority"
    names: str  # the comma list, or one hashed name
    key: HostKey


def path() -> Path:
    """The file ssh checks for VirtDash's connections (resolved in hosts/virt/ssh.py, which hands
    the same file to libvirt's libssh/libssh2 transports)."""
    return ssh.known_hosts_path()


def parse_line(text: str) -> Line | None:
    """A host key line, or None for comments, blank and malformed lines (kept as they are)."""
    fields = text.split()
    marker = ""
    if fields and fields[0].startswith("@"):
        marker, fields = fields[0], fields[1:]
    if len(fields) < 3 or text.lstrip().startswith("#"):
        return None
    try:
        return Line(marker, fields[0], parse_key(fields[1], fields[2]))
    except ValueError:
        return None


def _hashed_match(name: str, pattern: str) -> bool:
    parts = name.split("|")  # "", "1", salt, hash
    if len(parts) != 4 or parts[1] != "1":
        return False
    try:
        salt, digest = base64.b64decode(parts[2], validate=True), base64.b64decode(parts[3], validate=True)
    except (binascii.Error, ValueError):
        return False
    return hmac.compare_digest(hmac.new(salt, pattern.lower().encode(), hashlib.sha1).digest(), digest)


def _glob(pattern: str) -> re.Pattern:
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern), re.I)


def names_match(names: str, pattern: str) -> bool:
    """Whether a line's name field covers `pattern` (a Target.pattern), as ssh decides it."""
    if names.startswith("|"):
        return _hashed_match(names, pattern)
    found = False
    for name in names.split(","):
        negated = name.startswith("!")
        if _glob(name[1:] if negated else name).fullmatch(pattern):
            if negated:
                return False
            found = True
    return found


def read_lines(file: Path | None = None) -> list[str]:
    """The file's lines ([] when it, or its folder, does not exist); other OSErrors are raised."""
    try:
        return (file or path()).read_text(errors="replace").splitlines()
    except (FileNotFoundError, NotADirectoryError):
        return []


def keys_for(target: Target, lines: list[str] | None = None) -> list[HostKey]:
    """The keys the file trusts for the target (neither revoked nor certificate authorities)."""
    lines = read_lines() if lines is None else lines
    found: list[HostKey] = []
    for text in lines:
        line = parse_line(text)
        if line and not line.marker and names_match(line.names, target.pattern) and line.key not in found:
            found.append(line.key)
    return found


def revoked(lines: list[str] | None = None) -> list[HostKey]:
    lines = read_lines() if lines is None else lines
    return [line.key for text in lines if (line := parse_line(text)) and line.marker == "@revoked"]


def _without(text: str, pattern: str) -> str | None:
    """The line with the exact name `pattern` taken out (None: drop the line); others unchanged."""
    line = parse_line(text)
    if line is None or line.marker:
        return text
    if line.names.startswith("|"):
        return None if _hashed_match(line.names, pattern) else text
    names = line.names.split(",")
    kept = [name for name in names if name.lower() != pattern.lower()]
    if len(kept) == len(names):
        return text
    if not kept:
        return None
    return text.replace(line.names, ",".join(kept), 1)


@contextmanager
def _locked(file: Path) -> Iterator[None]:
    fd = os.open(f"{file}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _write_atomically(file: Path, text: str) -> None:
    try:
        mode = file.stat().st_mode & 0o777
    except FileNotFoundError:
        mode = 0o600
    fd, tmp = tempfile.mkstemp(dir=file.parent, prefix=".known_hosts-")
    try:
        with os.fdopen(fd, "w") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, file)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _prepare(file: Path) -> Path:
    """The real file behind a symlink; its folder created 0700 when missing (~/.ssh)."""
    real = Path(os.path.realpath(file))
    if not real.parent.exists():
        real.parent.mkdir(mode=0o700, parents=True)
    return real


def trust(target: Target, keys: list[HostKey], *, replace: bool, file: Path | None = None) -> list[HostKey]:
    """Add `keys` for `target`; with `replace`, first remove the lines naming it exactly.

    Without `replace`, raises Conflict when the file already holds other keys for the target of
    a scanned type (the admin saw an unknown key, the file changed since). Returns the keys removed.
    """
    real = _prepare(file or path())
    with _locked(real):
        lines = read_lines(real)
        known = keys_for(target, lines)
        kinds = {key.kind for key in keys}
        if not replace and any(key not in keys and key.kind in kinds for key in known):
            raise Conflict(f"known_hosts already holds a different key for {target.pattern}.")
        removed = []
        if replace:
            removed = [key for key in known if key not in keys]
            lines = [kept for text in lines if (kept := _without(text, target.pattern)) is not None]
            known = keys_for(target, lines)  # what wildcard lines still say
        lines += [key.line(target) for key in keys if key not in known]
        _write_atomically(real, "\n".join(lines) + "\n")
    return removed

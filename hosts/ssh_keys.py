"""SSH host keys of a qemu+ssh host: where to reach its sshd, scanning its keys, fingerprints.

Only the host and port of a URI that passed hosts.uri.validate_uri ever reach ssh-keyscan, as
separate arguments (never a shell). Scanned keys are checked for shape (a known key type, strict
base64 whose blob names the same type) before anything else sees them, so a known_hosts line
built from a HostKey holds nothing but the validated host/port and the key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import shutil
import struct
import subprocess
from dataclasses import dataclass
from urllib.parse import urlsplit

from hosts.uri import InvalidHostURI, validate_uri

SSH_TRANSPORTS = {"ssh", "libssh", "libssh2"}
KEY_TYPES = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa",
             "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com")
SCAN_TYPES = "ed25519,ecdsa,rsa"
SCAN_TIMEOUT = 5
MAX_BLOB_CHARS = 8192
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")
HOST_KEY_ERROR = "SSH host key verification failed"


class NotSshHost(ValueError):
    """The URI does not reach its host through SSH (or is not a valid URI)."""


class ScanFailed(Exception):
    """ssh-keyscan got no usable key; the message says why in an admin's words."""


@dataclass(frozen=True)
class Target:
    """Where the host's sshd listens: the validated host name or address and the port."""

    host: str
    port: int

    @property
    def pattern(self) -> str:
        """The name ssh looks up in known_hosts: `host` on port 22, `[host]:port` otherwise."""
        return self.host if self.port == 22 else f"[{self.host}]:{self.port}"


@dataclass(frozen=True)
class HostKey:
    kind: str
    blob: str  # base64, as in a .pub file or known_hosts

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.blob)

    def line(self, target: Target) -> str:
        return f"{target.pattern} {self.kind} {self.blob}"


def target(uri: str) -> Target:
    """The sshd of the host at `uri` (validated again here); NotSshHost for other transports."""
    try:
        clean = validate_uri(uri)
    except InvalidHostURI as exc:
        raise NotSshHost(str(exc)) from None
    parts = urlsplit(clean)
    if parts.scheme.partition("+")[2] not in SSH_TRANSPORTS or not parts.hostname:
        raise NotSshHost(f"{clean} is not reached over SSH, so it has no SSH host key to trust.")
    return Target(parts.hostname, parts.port or 22)


def is_ssh_uri(uri: str) -> bool:
    try:
        target(uri)
    except NotSshHost:
        return False
    return True


def is_host_key_error(text: str) -> bool:
    """Whether a host's last error (hosts.virt.ssh.explain wording) is an unknown or changed key."""
    return HOST_KEY_ERROR in (text or "")


def fingerprint(blob: str) -> str:
    """`SHA256:<base64 of sha256(blob), no padding>`, as `ssh-keygen -lf` prints it."""
    digest = hashlib.sha256(base64.b64decode(blob, validate=True)).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def parse_key(kind: str, blob: str) -> HostKey:
    """A HostKey from a type and base64 blob; ValueError unless both have the expected shape."""
    if kind not in KEY_TYPES:
        raise ValueError(f"unknown key type {kind[:40]!r}")
    if not (0 < len(blob) <= MAX_BLOB_CHARS) or not _BASE64.fullmatch(blob):
        raise ValueError("the key is not base64")
    try:
        raw = base64.b64decode(blob, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the key is not base64") from None
    if len(raw) < 4:
        raise ValueError("the key is too short")
    (length,) = struct.unpack(">I", raw[:4])
    if raw[4:4 + length] != kind.encode():
        raise ValueError(f"the key's blob is not a {kind} key")
    return HostKey(kind, blob)


def parse_scan(output: str) -> list[HostKey]:
    """Keys from ssh-keyscan's stdout (`name type base64` lines), deduplicated, in order."""
    keys: list[HostKey] = []
    for line in output.splitlines():
        fields = line.split()
        if len(fields) != 3 or line.startswith("#"):
            continue
        try:
            key = parse_key(fields[1], fields[2])
        except ValueError:
            continue
        if key not in keys:
            keys.append(key)
    return keys


def scan(where: Target, timeout: int = SCAN_TIMEOUT) -> list[HostKey]:
    """The host's current public keys, read with ssh-keyscan (an argument list, `-T timeout`)."""
    program = shutil.which("ssh-keyscan")
    if program is None:
        raise ScanFailed("ssh-keyscan is not installed on the VirtDash server (package openssh-client).")
    argv = [program, "-T", str(timeout), "-p", str(where.port), "-t", SCAN_TYPES, "--", where.host]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout * 3 + 5,
                              stdin=subprocess.DEVNULL, check=False)
    except subprocess.TimeoutExpired:
        raise ScanFailed(f"{where.pattern} did not answer within {timeout * 3 + 5} s.") from None
    keys = parse_scan(done.stdout)
    if not keys:
        errors = [line for line in done.stderr.splitlines() if line and not line.startswith("#")]
        reason = f" ({errors[0][:200]})" if errors else ""
        raise ScanFailed(f"No SSH host key could be read from {where.pattern}{reason}: is sshd listening there?")
    return keys

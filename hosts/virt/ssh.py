"""libvirt's qemu+ssh transport with the service account's key and known_hosts (VIRTDASH_SSH_*).

libvirt runs the `ssh` program for qemu+ssh URIs, but its URI can only add `-i keyfile`: it has
no way to name a known_hosts file, and it clears the environment of the ssh it starts. So for
every ssh URI VirtDash opens (never for what a user types: hosts.uri refuses `command`) we add
`command=<wrapper>`, a fixed two-line script in VAR_DIR that runs `ssh -F <config beside it>`.
The config holds the same options as the console tunnel (consoles/tunnel.py): no prompts
(BatchMode), host keys must already be known (StrictHostKeyChecking=yes), a connect timeout,
and VIRTDASH_SSH_KEY / VIRTDASH_SSH_KNOWN_HOSTS when set; it then includes the service
account's own ~/.ssh/config and the system's, so ProxyJump and the like still apply (ssh takes
the first value it reads for each option, so ours win).

qemu+libssh/libssh2 URIs (libvirt's in-process transports) always get `known_hosts=<the file
VirtDash uses>` (known_hosts_path()): without it libvirt would read ~/.config/libvirt/known_hosts,
a file the trust page (hosts/known_hosts.py) never writes.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pwd
import re
import tempfile
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from django.conf import settings

log = logging.getLogger(__name__)
SSH_TRANSPORTS = {"ssh"}  # libvirt runs the ssh program
LIBSSH_TRANSPORTS = {"libssh", "libssh2"}  # in-process; they take keyfile=/known_hosts= parameters
WRAPPER = """#!/bin/sh
# Written by VirtDash (hosts/virt/ssh.py): libvirt runs this instead of ssh for qemu+ssh hosts.
exec ssh -F "${0%/*}/ssh_config" "$@"
"""


def home() -> Path:
    """The passwd home of the account running VirtDash (where ssh itself looks, whatever $HOME says)."""
    return Path(pwd.getpwuid(os.getuid()).pw_dir)


def known_hosts_path() -> Path:
    """The known_hosts VirtDash's ssh connections check and its trust page writes:
    VIRTDASH_SSH_KNOWN_HOSTS when set, else ~/.ssh/known_hosts of the account running VirtDash."""
    if settings.VIRTDASH_SSH_KNOWN_HOSTS:
        return Path(settings.VIRTDASH_SSH_KNOWN_HOSTS)
    return home() / ".ssh" / "known_hosts"


def _quoted(path: str) -> str:
    """A path as one ssh_config argument: quoted, and '%' escaped (ssh expands %-tokens in these)."""
    return '"' + path.replace("%", "%%") + '"'


def ssh_config_text(key: str | None = None, known_hosts: str | None = None) -> str:
    """The options for the service account (``None``: VIRTDASH_SSH_KEY / VIRTDASH_SSH_KNOWN_HOSTS)."""
    key = settings.VIRTDASH_SSH_KEY if key is None else key
    known_hosts = settings.VIRTDASH_SSH_KNOWN_HOSTS if known_hosts is None else known_hosts
    lines = ["# Written by VirtDash from its settings; the console tunnel uses the same options.",
             "BatchMode yes", "StrictHostKeyChecking yes", f"ConnectTimeout {settings.VIRTDASH_CONNECT_TIMEOUT}",
             "ServerAliveInterval 15", "ServerAliveCountMax 3", "PermitLocalCommand no"]
    if key:
        lines += [f"IdentityFile {_quoted(key)}", "IdentitiesOnly yes"]
    if known_hosts:
        lines.append(f"UserKnownHostsFile {_quoted(known_hosts)}")
    lines += ["Include ~/.ssh/config", "Include /etc/ssh/ssh_config", ""]
    return "\n".join(lines)


def _write(path: Path, text: str, mode: int) -> None:
    """Atomically (several processes may write the same files at once). The folder is named by a
    hash of the content, so a file that exists already holds it."""
    if path.exists():
        return
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def config_path(key: str | None = None, known_hosts: str | None = None) -> Path:
    """The ssh_config for the current settings (written on first use): the console tunnel runs
    `ssh -F` with it, so both reach hosts with the same options and correctly quoted paths."""
    return wrapper_path(key, known_hosts).parent / "ssh_config"


def wrapper_path(key: str | None = None, known_hosts: str | None = None) -> Path:
    """The wrapper for the current settings, written on first use (one folder per distinct config)."""
    config = ssh_config_text(key, known_hosts)
    folder = Path(settings.VAR_DIR) / "ssh" / hashlib.sha256((WRAPPER + config).encode()).hexdigest()[:12]
    folder.mkdir(parents=True, exist_ok=True, mode=0o755)
    _write(folder / "ssh_config", config, 0o644)  # ssh refuses a config others can write
    _write(folder / "ssh", WRAPPER, 0o755)
    return folder / "ssh"


def _query(query: list[tuple[str, str]]) -> str:
    """Percent-encoded (a space as %20: libvirt does not read '+' as a space)."""
    return urlencode(query, quote_via=quote)


def connect_uri(uri: str) -> str:
    """The URI to hand to libvirt for `uri` (a validated host URI): ssh ones get our wrapper,
    libssh/libssh2 ones (in-process, they take the files as parameters) our key and, always, the
    known_hosts VirtDash writes (known_hosts_path(): libvirt's own default is another file)."""
    parts = urlsplit(uri)
    transport = parts.scheme.partition("+")[2]
    if transport in LIBSSH_TRANSPORTS:
        query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
                 if k not in ("keyfile", "known_hosts")]
        query += [(k, v) for k, v in (("keyfile", settings.VIRTDASH_SSH_KEY),
                                      ("known_hosts", str(known_hosts_path()))) if v]
        return urlunsplit(parts._replace(query=_query(query)))
    if transport not in SSH_TRANSPORTS:
        return uri
    try:
        wrapper = wrapper_path()
    except OSError as exc:
        log.warning("cannot write the ssh wrapper (%s); libvirt runs plain ssh for %s", exc, uri)
        return uri
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "command"]
    query.append(("command", str(wrapper)))
    return urlunsplit(parts._replace(query=_query(query)))


# OpenSSH's wording, then libssh's (qemu+libssh/libssh2 URIs).
_CHANGED = re.compile(r"Host key for (\S+) has changed|Identity of host '([^']+)' differs from stored identity")
_UNKNOWN = re.compile(r"No \S+ host key is known for (\S+)|()no suitable callback for host key verification")
_DENIED = re.compile(r"Permission denied \(([^)]*)\)")


def explain(text: str) -> str:
    """ssh's message (via libvirt, or from a console tunnel), shortened to what an operator must do.

    ssh prints a 20-line banner on a changed host key; libvirt passes it on verbatim.
    Anything that is not one of the cases below is returned unchanged.
    """
    # Never the file names themselves: these messages end up in Host.last_error, which viewers see.
    known_hosts = ("the service account's known_hosts (VIRTDASH_SSH_KNOWN_HOSTS)" if settings.VIRTDASH_SSH_KNOWN_HOSTS
                   else "~/.ssh/known_hosts of the account running VirtDash")
    if match := _CHANGED.search(text):
        host = match.group(1) or match.group(2)
        return (f"SSH host key verification failed: the host key of {host} has changed and no longer "
                f"matches {known_hosts}. If the host was reinstalled, an admin can compare the new fingerprint "
                "and replace the key from the host page; otherwise the connection may be "
                "intercepted.")
    if match := _UNKNOWN.search(text):
        host = match.group(1) or "the host"
        return (f"SSH host key verification failed: no host key for {host} is known in {known_hosts}. "
                "An admin can check its fingerprint and trust it from the host page.")
    if "Host key verification failed" in text:
        return f"SSH host key verification failed (the host's key is not the one in {known_hosts})."
    if "administratively prohibited" in text:
        return ("the host's sshd refused to forward to the display (administratively prohibited: see "
                "AllowTcpForwarding and PermitOpen in its sshd_config).")
    if "open failed: connect failed" in text:
        after = text.partition("open failed: connect failed")[2]  # ": Connection refused\r\n…", or nothing
        lines = after[1:].splitlines() if after.startswith(":") else []
        reason = lines[0].strip() if lines else ""
        return (f"the host could not connect to the display ({reason or 'connect failed'}): nothing listens there "
                "on the host.")
    if match := _DENIED.search(text):
        key = ("the service account's key (VIRTDASH_SSH_KEY)" if settings.VIRTDASH_SSH_KEY
               else "the key of the account running VirtDash")
        return (f"SSH login refused (Permission denied: {match.group(1)}): add the public half of {key} to the "
                "user's authorized_keys on the host.")
    return text

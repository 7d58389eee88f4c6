"""Where the proxy connects for a guest's display, resolved on the server from the live XML.

The browser never names a target: the token carries one of these, computed here from the
host's URI and the guest's <graphics> element. Guests on qemu+ssh hosts usually listen on the
host's loopback; we reach them through `ssh -W` from the proxy (see consoles/tunnel.py).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from hosts.virt import ssh
from hosts.virt.consoles import GraphicsInfo

_HOSTNAME = re.compile(r"(?=.{1,253}\Z)((?!-)[A-Za-z0-9-]{1,63}(?<!-)\.)*(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
_LOCAL_SCHEMES = {"qemu", "qemu+unix", "test", "test+unix"}
_WILDCARDS = {"0.0.0.0", "::", ""}


class Unreachable(Exception):
    """The guest's display exists but the proxy cannot reach it; the message says why."""


@dataclass(frozen=True)
class Target:
    """A TCP endpoint, optionally reached through `ssh -W host:port` on an SSH host."""

    host: str
    port: int
    ssh_host: str = ""  # empty: connect directly
    ssh_user: str = ""
    ssh_port: int = 0

    @property
    def via_ssh(self) -> bool:
        return bool(self.ssh_host)

    def describe(self) -> str:
        where = f"{self.host}:{self.port}"
        return f"{where} via ssh {self.ssh_host}" if self.via_ssh else where


def valid_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return bool(_HOSTNAME.fullmatch(text or ""))


def _is_loopback(address: str) -> bool:
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def resolve(uri: str, graphics: GraphicsInfo) -> Target:
    """The proxy's target for `graphics` of a guest on the host at `uri`, or raise Unreachable."""
    if graphics.listen_type == "socket":
        raise Unreachable("The display listens on a UNIX socket on the host; configure it to listen on an address.")
    if graphics.listen_type == "none" or not graphics.port or graphics.port < 0:
        raise Unreachable("The display has no network port (listen type 'none' or no port assigned yet).")
    listen = graphics.listen or "127.0.0.1"
    if not valid_address(listen):
        raise Unreachable(f"The display's listen address {listen!r} is not an IP address or host name.")
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    # A wildcard or "localhost" is reached at 127.0.0.1; any other address (127.0.0.2, ::1) as it is.
    local_address = "127.0.0.1" if listen in _WILDCARDS or listen == "localhost" else listen
    if scheme in _LOCAL_SCHEMES or not parts.hostname:
        return Target(host=local_address, port=graphics.port)
    transport = scheme.partition("+")[2]
    if transport in ssh.SSH_TRANSPORTS | ssh.LIBSSH_TRANSPORTS:
        return Target(host=local_address, port=graphics.port, ssh_host=parts.hostname,
                      ssh_user=parts.username or "", ssh_port=parts.port or 22)
    if _is_loopback(listen):
        raise Unreachable(
            f"The display listens on {listen}, the loopback of host {parts.hostname}, which the dashboard cannot "
            f"reach over qemu+{transport}: make it listen on an address the dashboard can reach, or manage the "
            "host over qemu+ssh so VirtDash can tunnel.")
    return Target(host=parts.hostname if listen in _WILDCARDS else listen, port=graphics.port)

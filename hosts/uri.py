"""Validation of libvirt host URIs.

libvirt's remote URIs accept parameters that run programs or open arbitrary sockets
(`command`, `netcat`, `socket`, the `ext` transport, ...). We accept an allow-list of schemes,
transports and parameters and rebuild the URI from validated parts.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import parse_qsl, urlencode, urlsplit

MAX_URI_LENGTH = 512
DRIVERS = {"qemu", "test"}
TRANSPORTS = {None, "ssh", "tls", "tcp", "unix", "libssh", "libssh2"}
REMOTE_TRANSPORTS = {"ssh", "tls", "tcp", "libssh", "libssh2"}
QEMU_PATHS = {"/system", "/session"}
_SSH_AUTH = r"(agent|privkey|password|keyboard-interactive)"
ALLOWED_PARAMS = {
    "no_tty": re.compile(r"[01]"),
    "sshauth": re.compile(rf"{_SSH_AUTH}(,{_SSH_AUTH})*"),
    "mode": re.compile(r"auto|legacy|direct"),
}
_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
_USER = re.compile(r"[A-Za-z0-9._][A-Za-z0-9._-]{0,31}")
_TEST_PATH = re.compile(r"/default|(/[A-Za-z0-9_.-]+)+\.xml")


class InvalidHostURI(ValueError):
    """The URI is not one VirtDash will connect to; the message says why."""


def validate_uri(raw: str) -> str:
    """Return the normalised URI, or raise InvalidHostURI with an operator-readable reason."""
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidHostURI("Enter a libvirt URI, for example qemu:///system or qemu+ssh://root@host/system.")
    uri = raw.strip(" ")
    if len(uri) > MAX_URI_LENGTH:
        raise InvalidHostURI(f"The URI is {len(uri)} characters long; at most {MAX_URI_LENGTH} are allowed.")
    if any(ord(ch) < 33 or ord(ch) == 127 for ch in uri):
        raise InvalidHostURI("The URI contains spaces or control characters (such as a newline).")
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError as exc:
        raise InvalidHostURI(f"The URI cannot be parsed: {exc}.") from None
    driver, transport = _split_scheme(parts.scheme)
    if parts.fragment:
        raise InvalidHostURI("A libvirt URI has no #fragment.")
    if parts.password is not None:
        raise InvalidHostURI("Do not put a password in the URI; SSH hosts use the service account's key.")
    query = _validate_query(parts.query)
    hostname = parts.hostname or ""
    _validate_location(transport, hostname, parts.username, port)
    _validate_path(driver, parts.path)
    netloc = ""
    if hostname:
        host_text = f"[{hostname}]" if ":" in hostname else hostname
        netloc = (f"{parts.username}@" if parts.username else "") + host_text + (f":{port}" if port else "")
    scheme = driver + (f"+{transport}" if transport else "")
    return f"{scheme}://{netloc}{parts.path}" + (f"?{urlencode(query)}" if query else "")


def _split_scheme(scheme: str) -> tuple[str, str | None]:
    driver, _, transport = scheme.lower().partition("+")
    if driver not in DRIVERS:
        raise InvalidHostURI(
            f"Unsupported scheme {scheme!r}: use qemu (or qemu+ssh, qemu+tls, qemu+tcp, qemu+unix) or test."
        )
    transport = transport or None
    if transport == "ext":
        raise InvalidHostURI("The 'ext' transport runs an external program and is not allowed.")
    if transport not in TRANSPORTS:
        raise InvalidHostURI(f"Unsupported transport {transport!r}: use ssh, tls, tcp or unix.")
    return driver, transport


def _validate_query(query: str) -> list[tuple[str, str]]:
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise InvalidHostURI("The URI parameters cannot be parsed.") from None
    for key, value in pairs:
        if key not in ALLOWED_PARAMS:
            raise InvalidHostURI(
                f"The URI parameter {key!r} is not allowed (parameters such as command, netcat, socket, "
                "proxy or no_verify can run programs or weaken security). Allowed: "
                + ", ".join(sorted(ALLOWED_PARAMS))
                + "."
            )
        if not ALLOWED_PARAMS[key].fullmatch(value):
            raise InvalidHostURI(f"The value of URI parameter {key!r} is not valid.")
    return pairs


def _validate_location(transport: str | None, hostname: str, username: str | None, port: int | None) -> None:
    if transport in REMOTE_TRANSPORTS and not hostname:
        raise InvalidHostURI(f"A {transport} URI needs a host name, e.g. qemu+{transport}://host.example.com/system.")
    if transport == "unix" and hostname:
        raise InvalidHostURI("A unix URI is local and takes no host name: use qemu+unix:///system.")
    if hostname and not _is_hostname_or_ip(hostname):
        raise InvalidHostURI(f"{hostname!r} is not a valid host name or IP address.")
    if username is not None and not _USER.fullmatch(username):
        raise InvalidHostURI("The user name may contain letters, digits, '.', '_' and '-' only.")
    if port is not None and not 1 <= port <= 65535:
        raise InvalidHostURI("The port must be between 1 and 65535.")


def _validate_path(driver: str, path: str) -> None:
    if driver == "qemu" and path not in QEMU_PATHS:
        raise InvalidHostURI("A qemu URI ends in /system (or /session), e.g. qemu:///system.")
    if driver == "test" and (not _TEST_PATH.fullmatch(path) or ".." in path.split("/")):
        raise InvalidHostURI("A test URI ends in /default or an absolute path to a node .xml file.")


def _is_hostname_or_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        pass
    if len(name) > 253:
        return False
    return all(_HOST_LABEL.fullmatch(label) for label in name.rstrip(".").split("."))

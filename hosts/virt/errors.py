"""Our exceptions for libvirt failures, with messages an operator understands.

Only `hosts/` sees `libvirt.libvirtError`; everything else catches these.
"""

from __future__ import annotations

import logging

import libvirt

from hosts.virt import ssh

log = logging.getLogger(__name__)


class VirtError(Exception):
    """A libvirt operation failed. `transient` errors may succeed when retried."""

    transient = False

    def __init__(self, message: str, *, detail: str = ""):
        super().__init__(message)
        self.message = message
        self.detail = detail

    def __str__(self) -> str:
        return self.message


class HostUnreachable(VirtError):
    transient = True


class GuestNotFound(VirtError):
    pass


class ObjectNotFound(VirtError):
    """A storage pool, volume, network or snapshot does not exist."""


class OperationRefused(VirtError):
    """libvirt refused: invalid input, unsupported, or not allowed in the current state."""


class Conflict(VirtError):
    """The object is in a state that conflicts with the request (e.g. already running)."""


_UNREACHABLE_CODES = {
    libvirt.VIR_ERR_NO_CONNECT,
    libvirt.VIR_ERR_INVALID_CONN,
    libvirt.VIR_ERR_SYSTEM_ERROR,
    libvirt.VIR_ERR_RPC,
    libvirt.VIR_ERR_AUTH_FAILED,
    libvirt.VIR_ERR_AUTH_CANCELLED,
    libvirt.VIR_ERR_AUTH_UNAVAILABLE,
}
_NOT_FOUND = {
    libvirt.VIR_ERR_NO_DOMAIN: GuestNotFound,
    libvirt.VIR_ERR_NO_STORAGE_POOL: ObjectNotFound,
    libvirt.VIR_ERR_NO_STORAGE_VOL: ObjectNotFound,
    libvirt.VIR_ERR_NO_NETWORK: ObjectNotFound,
    libvirt.VIR_ERR_NO_DOMAIN_SNAPSHOT: ObjectNotFound,
}
_CONFLICT_CODES = {libvirt.VIR_ERR_OPERATION_INVALID, libvirt.VIR_ERR_OPERATION_FAILED}


def translate(error: libvirt.libvirtError, where: str) -> VirtError:
    """Turn a libvirtError into one of ours; `where` names the host or object for the message."""
    code = error.get_error_code()
    text = (error.get_error_message() or str(error)).strip()
    try:
        text = ssh.explain(text)  # a failed ssh login: what to do, not ssh's 20-line banner
    except Exception:  # explaining must never hide the error itself
        log.exception("could not explain libvirt's message %r", text[:500])
    if code in _NOT_FOUND:
        return _NOT_FOUND[code](f"{where}: not found ({text})", detail=text)
    if code in _UNREACHABLE_CODES or error.get_error_domain() == libvirt.VIR_FROM_RPC:
        return HostUnreachable(f"{where} is unreachable: {text}", detail=text)
    if code in _CONFLICT_CODES:
        return Conflict(f"{where}: {text}", detail=text)
    return OperationRefused(f"{where}: {text}", detail=text)

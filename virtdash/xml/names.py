"""Validators for names and identifiers that end up in libvirt XML or on disk.

Each returns the (unchanged) value so it can be used inline, and raises an
:class:`~virtdash.xml.errors.InvalidNameError` (a ``ValueError``) whose message
is fit to show an operator.
"""

from __future__ import annotations

import re
import uuid as uuid_mod

from .errors import InvalidNameError

GUEST_NAME_MAX = 64
VOLUME_NAME_MAX = 200

_GUEST_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
# No '/', no leading '.' or '-' (so no '..', hidden files or option-looking names).
_VOLUME_RE = re.compile(r"[A-Za-z0-9_+][A-Za-z0-9._+-]*")
_MAC_RE = re.compile(r"[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}")
_BRIDGE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _require_text(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise InvalidNameError(f"{what} must be text.")
    if not value:
        raise InvalidNameError(f"{what} must not be empty.")
    return value


def _check(value: object, what: str, pattern: re.Pattern[str], max_len: int, allowed: str) -> str:
    text = _require_text(value, what)
    if len(text) > max_len:
        raise InvalidNameError(f"{what} is {len(text)} characters long; the limit is {max_len}.")
    if not pattern.fullmatch(text):
        raise InvalidNameError(f"{what} {text!r} is not allowed: use {allowed}.")
    return text


def validate_guest_name(name: object) -> str:
    """1–64 characters: letters, digits, ``.``, ``_``, ``-``; starts with a letter or digit."""
    return _check(
        name, "Guest name", _GUEST_RE, GUEST_NAME_MAX,
        "letters, digits, '.', '_' and '-', starting with a letter or digit",
    )


def validate_volume_name(name: object) -> str:
    """1–200 characters of ``[A-Za-z0-9._+-]``, not starting with ``.`` or ``-``.

    Volume names become file names inside a pool directory, so path separators,
    ``..``, control characters and option-looking names are refused.
    """
    text = _check(
        name, "Volume name", _VOLUME_RE, VOLUME_NAME_MAX,
        "letters, digits, '.', '_', '+' and '-', not starting with '.' or '-'",
    )
    if ".." in text:
        raise InvalidNameError(f"Volume name {text!r} must not contain '..'.")
    return text


def validate_pool_name(name: object) -> str:
    return _check(
        name, "Pool name", _GUEST_RE, GUEST_NAME_MAX,
        "letters, digits, '.', '_' and '-', starting with a letter or digit",
    )


def validate_network_name(name: object) -> str:
    return _check(
        name, "Network name", _GUEST_RE, GUEST_NAME_MAX,
        "letters, digits, '.', '_' and '-', starting with a letter or digit",
    )


def validate_bridge_name(name: object) -> str:
    """Linux interface names: at most 15 characters."""
    return _check(name, "Bridge name", _BRIDGE_RE, 15, "up to 15 letters, digits, '.', '_' and '-'")


def validate_mac(mac: object) -> str:
    """``aa:bb:cc:dd:ee:ff``, unicast only; returned lower-case."""
    text = _require_text(mac, "MAC address")
    if not _MAC_RE.fullmatch(text):
        raise InvalidNameError(f"MAC address {text!r} is not of the form 52:54:00:12:34:56.")
    if int(text[:2], 16) & 1:
        raise InvalidNameError(f"MAC address {text!r} is a multicast address.")
    return text.lower()


def validate_uuid(value: object) -> str:
    text = _require_text(value, "UUID")
    try:
        return str(uuid_mod.UUID(text))
    except ValueError:
        raise InvalidNameError(f"UUID {text!r} is not valid.") from None

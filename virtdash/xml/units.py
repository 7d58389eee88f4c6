"""Size units as libvirt understands them (``virScaleInteger``).

Single letters and ``*iB`` are powers of 1024, ``*B`` are powers of 1000,
exactly like libvirt: ``G`` means GiB, ``GB`` means 10**9 bytes.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from .errors import InvalidSizeError

KIB = 1024
MIB = 1024**2
GIB = 1024**3
PIB = 1024**5

_POWERS = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4, "p": 5, "e": 6}


def unit_factor(unit: str | None, default: str = "b") -> int:
    """Bytes per ``unit``; ``None``/empty means ``default``."""
    name = (unit or default).strip().lower()
    if name in ("b", "byte", "bytes"):
        return 1
    letter, suffix = name[:1], name[1:]
    if letter in _POWERS and letter and suffix in ("", "ib"):
        return 1024 ** _POWERS[letter]
    if letter in _POWERS and letter and suffix == "b":
        return 1000 ** _POWERS[letter]
    raise InvalidSizeError(f"Unknown size unit {unit!r}.")


def to_bytes(value: int, unit: str | None, default: str = "b") -> int:
    return value * unit_factor(unit, default)


# Parsing a user's size string, not building XML: a regex is the right tool here.
_SIZE_RE = re.compile(r"\s*(?P<num>[+-]?[0-9]+(?:\.[0-9]+)?)\s*(?P<unit>[A-Za-z]*)\s*")


def parse_size(
    text: str | int,
    *,
    default_unit: str = "b",
    max_bytes: int = PIB,
    allow_zero: bool = False,
) -> int:
    """Parse ``"10G"``, ``"512MiB"``, ``"1.5T"`` or a plain byte count into bytes.

    Refuses negative, zero (unless ``allow_zero``) and anything above ``max_bytes``
    (1 PiB by default) with an :class:`InvalidSizeError` an operator can read.
    """
    if isinstance(text, bool):
        raise InvalidSizeError("A size must be a number such as 10G.")
    if isinstance(text, int):
        num, unit = Decimal(text), default_unit
    else:
        match = _SIZE_RE.fullmatch(str(text))
        if not match:
            raise InvalidSizeError(f"{text!r} is not a size; use a number with a unit such as 10G or 512M.")
        try:
            num = Decimal(match["num"])
        except InvalidOperation as exc:  # pragma: no cover - regex already checked
            raise InvalidSizeError(f"{text!r} is not a number.") from exc
        unit = match["unit"] or default_unit
    if num < 0:
        raise InvalidSizeError(f"Size {text!r} is negative.")
    result = int(num * unit_factor(unit))
    if result == 0 and not allow_zero:
        raise InvalidSizeError(f"Size {text!r} is zero.")
    if result > max_bytes:
        raise InvalidSizeError(f"Size {text!r} is larger than the limit of {format_size(max_bytes)}.")
    return result


def format_size(num_bytes: int) -> str:
    """Human-readable binary size, e.g. ``format_size(3 * GIB) == "3 GiB"``."""
    value = float(num_bytes)
    for suffix in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(value) < 1024 or suffix == "PiB":
            return f"{value:.0f} {suffix}" if value == int(value) else f"{value:.1f} {suffix}"
        value /= 1024
    raise AssertionError("unreachable")

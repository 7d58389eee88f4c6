from django import template

register = template.Library()

_UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]


@register.filter
def bytes(value) -> str:
    """1073741824 → '1.0 GiB'."""
    if value in (None, ""):
        return "–"
    size = float(value)
    for unit in _UNITS:
        if abs(size) < 1024 or unit == _UNITS[-1]:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} PiB"


@register.filter
def kib(value) -> str:
    return bytes(int(value) * 1024) if value not in (None, "") else "–"


@register.filter
def percent_of(part, whole) -> int:
    try:
        return max(0, min(100, round(100 * float(part) / float(whole))))
    except (TypeError, ValueError, ZeroDivisionError):
        return 0

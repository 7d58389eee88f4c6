"""Number formats for capacity reports (the CSV exports carry the raw numbers)."""

from django import template

register = template.Library()
GIB = 1024**3


@register.filter
def gib(value) -> str:
    """Bytes as GiB with one decimal: 1610612736 → '1.5'."""
    if value in (None, ""):
        return "–"
    return f"{float(value) / GIB:,.1f}"


@register.filter
def threads(value) -> str:
    if value in (None, ""):
        return "–"
    return f"{float(value):,.1f}"


@register.filter
def ratio(value) -> str:
    if value in (None, ""):
        return "–"
    return f"{float(value):.2f}×"


@register.filter
def pct(part, whole) -> str:
    try:
        return f"{100.0 * float(part) / float(whole):.0f} %"
    except (TypeError, ValueError, ZeroDivisionError):
        return "–"


@register.filter
def pct_width(part, whole) -> int:
    """0–100 for a bar's width."""
    try:
        return max(0, min(100, round(100 * float(part) / float(whole))))
    except (TypeError, ValueError, ZeroDivisionError):
        return 0


@register.filter
def urlencode_dict(value) -> str:
    from urllib.parse import urlencode

    return urlencode(value or {})


@register.filter
def get_item(mapping, key):
    try:
        return mapping.get(key) if hasattr(mapping, "get") else mapping[key]
    except (KeyError, IndexError, TypeError):
        return None


@register.filter
def monthly(per_day) -> float | None:
    return None if per_day is None else float(per_day) * 30


@register.filter
def hundred(value) -> float | None:
    return None if value is None else float(value) * 100


STATUS_LABELS = {
    "not-enough-data": "not enough data",
    "no-significant-growth": "no significant growth",
    "declining": "declining",
    "reached": "already reached",
    "beyond-horizon": "not within 5 years",
}


@register.filter
def status_label(status: str) -> str:
    return STATUS_LABELS.get(status, status)

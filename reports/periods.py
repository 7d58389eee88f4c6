"""Report periods and the roll-up resolution each one reads (pure Python apart from the choice enum)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from guests.models import Resolution

PERIODS = {"day": ("Last 24 hours", 1), "week": ("Last 7 days", 7), "month": ("Last 30 days", 30),
           "quarter": ("Last 90 days", 90), "year": ("Last 365 days", 365)}
DEFAULT_PERIOD = "week"
MAX_CUSTOM_DAYS = 2 * 366  # hourly roll-ups are kept for 2 years
FINE_SPAN = timedelta(days=8)  # host figures: up to a week (and a bit) from 5-minute averages, beyond hourly
GUEST_FINE_SPAN = timedelta(days=2)  # per-guest figures (500 guests × 5-minute points add up): hourly beyond 2 days


class PeriodError(ValueError):
    """The requested period makes no sense; the message says why."""


@dataclass(frozen=True)
class Period:
    key: str
    label: str
    start: datetime
    end: datetime

    @property
    def span(self) -> timedelta:
        return self.end - self.start

    @property
    def resolution(self) -> int:
        """The roll-up read first: 5-minute averages up to ~a week, hourly beyond (raw is never
        read by reports: 10-second points add cost, not insight, at these spans)."""
        return Resolution.FIVE_MINUTES if self.span <= FINE_SPAN else Resolution.HOUR

    @property
    def guest_resolution(self) -> int:
        return Resolution.FIVE_MINUTES if self.span <= GUEST_FINE_SPAN else Resolution.HOUR

    def resolutions(self, per_guest: bool = False) -> list[int]:
        """Preferred resolution first, then the other one as a fallback when the first has no rows."""
        first = self.guest_resolution if per_guest else self.resolution
        other = Resolution.HOUR if first == Resolution.FIVE_MINUTES else Resolution.FIVE_MINUTES
        return [first, other]

    def query(self) -> dict[str, str]:
        if self.key == "custom":
            return {"period": "custom", "start": self.start.date().isoformat(),
                    "end": (self.end - timedelta(days=1)).date().isoformat()}
        return {"period": self.key}


def _parse_day(text: str, what: str) -> date:
    try:
        return date.fromisoformat(text)
    except (TypeError, ValueError):
        raise PeriodError(f"The {what} date must look like 2026-01-31.") from None


def period_from(params, now: datetime | None = None) -> Period:
    """A Period from query parameters (`period`, and `start`/`end` for custom; end inclusive)."""
    now = now or datetime.now(UTC)
    key = params.get("period") or DEFAULT_PERIOD
    if key in PERIODS:
        label, days = PERIODS[key]
        return Period(key, label, now - timedelta(days=days), now)
    if key != "custom":
        raise PeriodError(f"Unknown period {key!r}: choose {', '.join(PERIODS)} or custom.")
    first = _parse_day(params.get("start", ""), "start")
    last = _parse_day(params.get("end", ""), "end")
    if last < first:
        raise PeriodError("The end date is before the start date.")
    if (last - first).days + 1 > MAX_CUSTOM_DAYS:
        raise PeriodError(f"A custom period spans at most {MAX_CUSTOM_DAYS} days.")
    start = datetime.combine(first, time.min, UTC)
    end = min(datetime.combine(last + timedelta(days=1), time.min, UTC), max(now, start + timedelta(hours=1)))
    return Period("custom", f"{first.isoformat()} – {last.isoformat()}", start, end)

"""Celery beat's schedule from settings: today only the capacity report e-mail.

A schedule is a five-field crontab string ("minute hour day-of-month month day-of-week", in
CELERY_TIMEZONE = TIME_ZONE), parsed here at settings time so a typo stops every process at
start instead of silently never sending.
"""

from __future__ import annotations

from celery.schedules import crontab
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from virtdash.env import SettingError

REPORT_TASK = "reports.scheduled_capacity_report"
PERIODS = ("day", "week", "month", "quarter", "year")  # reports.periods.PERIODS without "custom"


def parse_crontab(name: str, text: str) -> crontab:
    fields = text.split()
    if len(fields) != 5:
        raise SettingError(f"{name} must be five crontab fields like '0 7 * * 1', not {text!r}")
    minute, hour, day_of_month, month_of_year, day_of_week = fields
    try:
        return crontab(minute=minute, hour=hour, day_of_month=day_of_month, month_of_year=month_of_year,
                       day_of_week=day_of_week)
    except ValueError as exc:
        raise SettingError(f"{name}: {text!r} is not a valid crontab ({exc})") from None


def report_schedule(schedule: str, recipients: list[str], period: str) -> dict:
    """CELERY_BEAT_SCHEDULE: empty when no report schedule is set (beat then has nothing to do)."""
    if not schedule.strip():
        return {}
    if not recipients:
        raise SettingError("VIRTDASH_REPORT_SCHEDULE is set but VIRTDASH_REPORT_RECIPIENTS is empty")
    for address in recipients:
        try:
            validate_email(address)
        except ValidationError:
            raise SettingError(f"VIRTDASH_REPORT_RECIPIENTS: {address!r} is not an e-mail address") from None
    if period not in PERIODS:
        raise SettingError(f"VIRTDASH_REPORT_PERIOD must be one of {', '.join(PERIODS)}, not {period!r}")
    return {"capacity-report": {"task": REPORT_TASK, "schedule": parse_crontab("VIRTDASH_REPORT_SCHEDULE", schedule),
                                "options": {"expires": 6 * 3600}}}

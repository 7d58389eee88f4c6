"""Celery entry points for reports (ids in, everything re-read)."""

from celery import shared_task
from django.contrib.auth import get_user_model

from reports import email
from reports.periods import period_from


@shared_task(ignore_result=True, time_limit=300)
def send_capacity_report(user_id: int, recipients: list[str], period: str = "week") -> int:
    """For Celery beat; a user who is gone or disabled gets nothing sent on their behalf."""
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        return 0
    return email.send(user, period_from({"period": period}), recipients)

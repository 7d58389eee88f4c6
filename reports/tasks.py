"""Celery entry points for reports (ids in, everything re-read)."""

import logging

from celery import shared_task
from django.conf import settings
from django.contrib.auth import get_user_model

from reports import email, once
from reports.periods import period_from

log = logging.getLogger(__name__)


@shared_task(ignore_result=True, time_limit=300)
def send_capacity_report(user_id: int, recipients: list[str], period: str = "week") -> int:
    """For Celery beat; a user who is gone or disabled gets nothing sent on their behalf."""
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        return 0
    return email.send(user, period_from({"period": period}), recipients)


REPORT_TIME_LIMIT = 300


@shared_task(name="reports.scheduled_capacity_report", bind=True, ignore_result=True, time_limit=REPORT_TIME_LIMIT)
def scheduled_capacity_report(self) -> int:
    """What Celery beat runs on VIRTDASH_REPORT_SCHEDULE: the report as VIRTDASH_REPORT_AS_USER sees it,
    to VIRTDASH_REPORT_RECIPIENTS. A missing or disabled user sends nothing and says so in the log.

    Tasks are acknowledged late, so a worker that dies after the mail went out gets the same
    message (same id) delivered again: a delivery already sent, or still being sent, is skipped
    (reports/once.py); one whose attempt died before it finished is sent again."""
    username = settings.VIRTDASH_REPORT_AS_USER
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        log.warning("scheduled capacity report not sent: no active user %r (VIRTDASH_REPORT_AS_USER)", username)
        return 0
    recipients = list(settings.VIRTDASH_REPORT_RECIPIENTS)
    if not recipients:
        log.warning("scheduled capacity report not sent: VIRTDASH_REPORT_RECIPIENTS is empty")
        return 0
    delivery = once.Delivery("scheduled-report", self.request.id, REPORT_TIME_LIMIT)
    if delivery.done():
        log.info("scheduled capacity report %s was already sent; not sending it twice", self.request.id)
        return 0
    sent = email.send(user, period_from({"period": settings.VIRTDASH_REPORT_PERIOD}), recipients)
    delivery.mark_done()
    log.info("scheduled capacity report sent to %s as %s", ", ".join(recipients), username)
    return sent

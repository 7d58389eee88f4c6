"""The capacity report by e-mail: the overview's totals, what runs out first, what is wasted.

Numbers are those the chosen user may see (core.policy), exactly as on the pages. Scheduling is
cron calling `manage.py send_capacity_report`, or Celery beat (VIRTDASH_REPORT_SCHEDULE) running
`reports.tasks.scheduled_capacity_report`. The capacity CSV (as on the page) is attached.
"""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

from reports import exports, forecasting, services, usage
from reports.periods import Period
from reports.series import TOTAL


def build(user, period: Period) -> dict:
    data = services.overview(user, period)
    rows = forecasting.forecasts(user, period, per_host=False).get(TOTAL, [])
    return {
        "user": user, "period": period, "data": data, "total": data.total,
        "soonest": sorted((f for f in rows if f.when), key=lambda f: f.when),
        "undated": [f for f in rows if not f.when],
        "rs": usage.right_sizing(user, period),
        "site": getattr(settings, "VIRTDASH_SITE_URL", ""),
    }


def send(user, period: Period, recipients: list[str]) -> int:
    context = build(user, period)
    subject = f"VirtDash capacity report: {period.label}"
    text = render_to_string("reports/email/report.txt", context)
    html = render_to_string("reports/email/report.html", context)
    message = EmailMultiAlternatives(subject, text, settings.DEFAULT_FROM_EMAIL, recipients)
    message.attach_alternative(html, "text/html")
    csv = exports.csv_text(exports.OVERVIEW_HEADER, exports.overview_rows(context["data"], period))
    message.attach(f"capacity-{period.key}.csv", csv, "text/csv")
    return message.send()

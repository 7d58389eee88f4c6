"""manage.py send_capacity_report: e-mail the capacity report (run it from cron or Celery beat)."""

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_email

from reports import email
from reports.periods import PERIODS, period_from


class Command(BaseCommand):
    help = "E-mail the capacity report (numbers as --as-user may see them) to one or more addresses."

    def add_arguments(self, parser):
        parser.add_argument("--to", action="append", required=True, help="recipient (repeat for several)")
        parser.add_argument("--period", default="week", choices=list(PERIODS))
        parser.add_argument("--as-user", required=True, help="whose view of the hosts and guests to report")

    def handle(self, *args, **opts):
        try:
            for address in opts["to"]:
                validate_email(address)
        except ValidationError:
            raise CommandError("Every --to must be an e-mail address.") from None
        user = get_user_model().objects.filter(username=opts["as_user"], is_active=True).first()
        if user is None:
            raise CommandError(f"No active user {opts['as_user']!r}.")
        sent = email.send(user, period_from({"period": opts["period"]}), opts["to"])
        self.stdout.write(self.style.SUCCESS(f"Sent {sent} report to {', '.join(opts['to'])}."))

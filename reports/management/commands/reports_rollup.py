"""manage.py reports_rollup: (re)build the daily per-guest roll-ups for the last --days days."""

from datetime import UTC, datetime, timedelta

from django.core.management.base import BaseCommand, CommandError

from reports.rollup import build_days


class Command(BaseCommand):
    help = "Rebuild reports' daily per-guest roll-ups from hourly samples (idempotent; ended days only)."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=2, help="how many ended days back (730 = everything kept)")

    def handle(self, *args, **opts):
        if not 1 <= opts["days"] <= 800:
            raise CommandError("--days must be 1–800.")
        today = datetime.now(UTC).date()
        written = build_days(today - timedelta(days=opts["days"]), today - timedelta(days=1))
        self.stdout.write(self.style.SUCCESS(f"Wrote {written} daily rows."))

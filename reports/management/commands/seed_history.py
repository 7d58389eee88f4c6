"""manage.py seed_history: synthetic capacity history so the reports can be tried at once."""

from django.core.management.base import BaseCommand, CommandError

from reports.seed import seed_history


class Command(BaseCommand):
    help = ("Create demo hosts (disabled, test:/// URIs, marked demo) with guests and days of samples: hourly "
            "roll-ups for the whole history, 5-minute roll-ups for the last --fine-days, raw for --raw-hours.")

    def add_arguments(self, parser):
        parser.add_argument("--hosts", type=int, default=3)
        parser.add_argument("--guests", type=int, default=300)
        parser.add_argument("--days", type=int, default=90)
        parser.add_argument("--seed", type=int, default=1, help="same seed, same data")
        parser.add_argument("--fine-days", type=float, default=7.0,
                            help="days of 5-minute roll-ups (retention keeps 90; reports read them up to a week)")
        parser.add_argument("--raw-hours", type=float, default=0.0, help="hours of raw samples (retention keeps 24)")
        parser.add_argument("--raw-interval", type=int, default=60, help="seconds between raw samples")
        parser.add_argument("--reset", action="store_true", help="delete earlier demo hosts and their guests first")

    def handle(self, *args, **opts):
        if not (1 <= opts["hosts"] <= 100 and 0 <= opts["guests"] <= 100_000 and 1 <= opts["days"] <= 2 * 366):
            raise CommandError("Use 1–100 hosts, 0–100000 guests and 1–732 days.")
        result = seed_history(hosts=opts["hosts"], guests=opts["guests"], days=opts["days"], seed=opts["seed"],
                              fine_days=opts["fine_days"], raw_hours=opts["raw_hours"],
                              raw_interval=max(10, opts["raw_interval"]), reset=opts["reset"],
                              log=self.stdout.write)
        names = ", ".join(h.name for h in result.hosts)
        self.stdout.write(self.style.SUCCESS(
            f"Seeded {result.guests} guests on {names}: {result.guest_samples} guest samples, "
            f"{result.host_samples} host samples in {result.seconds:.1f} s."))

from django.db import models


class GuestDay(models.Model):
    """One guest's use over one UTC day, derived from its hourly GuestSample roll-ups.

    Why: right-sizing and breakdowns over a quarter or a year would otherwise read every hourly
    sample of every guest (500 guests × 1 year = 4.4 M rows); one row per guest per day keeps
    those pages fast without caching pages.
    Fields: `samples` hourly points of the day; `cpu_*` in host threads (cpu_percent / 100):
    mean, nearest-rank p95 and max of the day's hourly averages; `memory_*` bytes likewise;
    `io_max` the highest hourly disk+network bytes/s.
    Invariants: one row per (guest, day); written only by reports.rollup.build_days, which
    replaces a day's rows wholesale (idempotent) and only for days that have ended; a guest
    without samples on a day has no row. Rows go with their guest (CASCADE).
    """

    guest = models.ForeignKey("guests.Guest", on_delete=models.CASCADE, related_name="days")
    day = models.DateField()
    samples = models.PositiveIntegerField(default=0)
    cpu_avg = models.FloatField(null=True)
    cpu_p95 = models.FloatField(null=True)
    cpu_max = models.FloatField(null=True)
    memory_avg = models.FloatField(null=True)
    memory_p95 = models.PositiveBigIntegerField(null=True)
    memory_max = models.PositiveBigIntegerField(null=True)
    io_max = models.FloatField(default=0.0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["guest", "day"], name="guestday_unique")]
        indexes = [models.Index(fields=["day"], name="guestday_day")]

    def __str__(self) -> str:
        return f"{self.guest_id}@{self.day}"

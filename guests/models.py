from django.db import models

from guests.choices import ACTIVE_STATES, STATE_COLOURS, GuestState


class Guest(models.Model):
    """Inventory row for one libvirt domain: a cache of libvirt, never the source of truth.

    Invariants: (host, uuid) is unique and a UUID lives on one host at a time (a guest that
    migrated moves its row); rows are written by the watcher/reconciler and by job tasks after
    they re-read libvirt. Pages list guests from these rows only.
    """

    host = models.ForeignKey("hosts.Host", on_delete=models.CASCADE, related_name="guests")
    uuid = models.CharField(max_length=36, db_index=True)
    name = models.CharField(max_length=255, db_index=True)
    title = models.CharField(max_length=255, blank=True)
    description = models.TextField(blank=True)
    state = models.CharField(max_length=16, choices=GuestState.choices, default=GuestState.NOSTATE, db_index=True)
    state_reason = models.CharField(max_length=64, blank=True)
    vcpus = models.PositiveIntegerField(default=0)
    max_vcpus = models.PositiveIntegerField(default=0)
    memory_kib = models.PositiveBigIntegerField(default=0)
    max_memory_kib = models.PositiveBigIntegerField(default=0)
    autostart = models.BooleanField(default=False)
    persistent = models.BooleanField(default=True)
    graphics = models.CharField(max_length=16, blank=True)
    os_id = models.CharField(max_length=255, blank=True)
    owner = models.CharField(max_length=150, blank=True, db_index=True)
    tags = models.JSONField(default=list, blank=True)
    summary = models.JSONField(default=dict, blank=True, help_text="Disks, NICs and graphics as last read")
    started_at = models.DateTimeField(null=True, blank=True, help_text="When we saw it start; for uptime")
    cpu_percent = models.FloatField(null=True, blank=True)
    memory_used_kib = models.PositiveBigIntegerField(null=True, blank=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "host_id"]
        constraints = [models.UniqueConstraint(fields=["host", "uuid"], name="guest_unique_uuid_per_host")]

    def __str__(self) -> str:
        return self.name

    @property
    def state_colour(self) -> str:
        return STATE_COLOURS.get(self.state, "grey")

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_STATES


class Resolution(models.IntegerChoices):
    """Sample resolution in seconds; 0 is a raw sample (one watcher reading)."""

    RAW = 0, "Raw"
    FIVE_MINUTES = 300, "5 minutes"
    HOUR = 3600, "1 hour"


class GuestSample(models.Model):
    """One usage figure set for one guest at one time and resolution.

    Fields: `time` is the sample time (raw) or the start of the bucket (roll-ups, aligned to
    `resolution` seconds since the epoch); `cpu_percent` is the guest's CPU time over wall time in
    percent of ONE host thread (a 4-vCPU guest can reach 400); `memory_used` and `memory` are bytes
    (used as the balloon reports it, else the current allocation; `memory` is the allocation);
    `disk_read_bps`/`disk_write_bps`/`net_rx_bps`/`net_tx_bps` are bytes per second averaged over
    the interval; `count` is how many raw samples a roll-up averages (1 for raw).
    Invariants: only active guests get samples (inactive guests report bogus cpu figures);
    one row per (guest, resolution, time); rates are null when there is no previous reading to
    compare with. Retention: raw 24 h, 5-minute 90 days, hourly 2 years (`guests.samples.roll_up`).
    Range queries use the (guest, resolution, time) index.
    """

    guest = models.ForeignKey(Guest, on_delete=models.CASCADE, related_name="samples")
    resolution = models.PositiveIntegerField(choices=Resolution.choices, default=Resolution.RAW)
    time = models.DateTimeField()
    cpu_percent = models.FloatField(null=True, blank=True)
    memory_used = models.PositiveBigIntegerField(null=True, blank=True)
    memory = models.PositiveBigIntegerField(null=True, blank=True)
    disk_read_bps = models.FloatField(null=True, blank=True)
    disk_write_bps = models.FloatField(null=True, blank=True)
    net_rx_bps = models.FloatField(null=True, blank=True)
    net_tx_bps = models.FloatField(null=True, blank=True)
    count = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["time"]
        constraints = [models.UniqueConstraint(fields=["guest", "resolution", "time"], name="guestsample_unique")]
        indexes = [models.Index(fields=["resolution", "time"], name="guestsample_res_time")]

    def __str__(self) -> str:
        return f"{self.guest_id}@{self.time:%Y-%m-%d %H:%M:%S}/{self.resolution}"


class HostSample(models.Model):
    """Capacity figures of one host at one time and resolution (the source of capacity reports).

    Fields: `time`/`resolution`/`count` as in GuestSample; `cpus` host CPU threads; `memory_total`
    and `memory_used` bytes of host RAM (used = total - free, as the host reports it);
    `guests_running`/`guests_defined` counts; `vcpus_running`/`vcpus_all` vCPUs allocated to
    running / all guests; `memory_allocated_running`/`memory_allocated_all` bytes of guest RAM
    allocated (current memory) to running / all guests; `storage_capacity`/`storage_allocation`
    bytes summed over active storage pools; `cpu_percent` sum of running guests' CPU in percent
    of the whole host (0–100), null when unknown.
    Invariants: one row per (host, resolution, time); roll-ups average every figure.
    """

    host = models.ForeignKey("hosts.Host", on_delete=models.CASCADE, related_name="samples")
    resolution = models.PositiveIntegerField(choices=Resolution.choices, default=Resolution.RAW)
    time = models.DateTimeField()
    cpus = models.PositiveIntegerField(default=0)
    cpu_percent = models.FloatField(null=True, blank=True)
    memory_total = models.PositiveBigIntegerField(default=0)
    memory_used = models.PositiveBigIntegerField(null=True, blank=True)
    guests_running = models.PositiveIntegerField(default=0)
    guests_defined = models.PositiveIntegerField(default=0)
    vcpus_running = models.PositiveIntegerField(default=0)
    vcpus_all = models.PositiveIntegerField(default=0)
    memory_allocated_running = models.PositiveBigIntegerField(default=0)
    memory_allocated_all = models.PositiveBigIntegerField(default=0)
    storage_capacity = models.PositiveBigIntegerField(default=0)
    storage_allocation = models.PositiveBigIntegerField(default=0)
    count = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["time"]
        constraints = [models.UniqueConstraint(fields=["host", "resolution", "time"], name="hostsample_unique")]
        indexes = [models.Index(fields=["resolution", "time"], name="hostsample_res_time")]

    def __str__(self) -> str:
        return f"host {self.host_id}@{self.time:%Y-%m-%d %H:%M:%S}/{self.resolution}"


class GuestEvent(models.Model):
    """A lifecycle change of a guest as the watcher saw it (the detail page's timeline).

    Invariants: written by the watcher from libvirt events and reconcile-detected state changes,
    never edited; `event` is one of our names ("started", "stopped", "suspended", ... or
    "appeared"/"disappeared"/"moved"); older rows are pruned with raw samples (90 days).
    """

    guest = models.ForeignKey(Guest, on_delete=models.CASCADE, related_name="events")
    time = models.DateTimeField(db_index=True)
    event = models.CharField(max_length=32)
    detail = models.CharField(max_length=255, blank=True)
    state = models.CharField(max_length=16, choices=GuestState.choices, blank=True)

    class Meta:
        ordering = ["-time", "-id"]
        indexes = [models.Index(fields=["guest", "time"], name="guestevent_guest_time")]

    def __str__(self) -> str:
        return f"{self.guest_id} {self.event} @ {self.time}"
from guests.models_history import ConfigVersion  # noqa: E402,F401  config history (issue 5, provisioning)

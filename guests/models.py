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

"""Config history: every domain definition VirtDash has seen, per guest."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ConfigVersion(models.Model):
    """One inactive (persistent, with secrets) domain XML a guest had at some moment.

    Invariants: rows are keyed by (host, guest_uuid), not by the inventory row, so history
    survives the Guest row being rebuilt; `sha256` is the hash of `xml`; two consecutive
    versions of one guest never have the same hash (recording an identical XML is a no-op,
    except that an anonymous "seen" row may be claimed by the edit that caused it). `xml`
    may contain secrets (VIR_DOMAIN_XML_SECURE): it is shown only to users allowed RAW_XML
    or MANAGE on the guest. Only the newest `services_provision.KEEP_VERSIONS` rows per guest are
    kept; history outlives the guest itself (it is an audit trail as much as an undo list).
    """

    class Source(models.TextChoices):
        EVENT = "event", "Define event"
        EDIT = "edit", "Edit"
        RAW = "raw", "Raw XML"
        CREATE = "create", "Created"
        CLONE = "clone", "Cloned"
        ROLLBACK = "rollback", "Rollback"
        SNAPSHOT = "snapshot", "Snapshot revert"

    host = models.ForeignKey("hosts.Host", on_delete=models.CASCADE, related_name="config_versions")
    guest_uuid = models.CharField(max_length=36, db_index=True)
    guest_name = models.CharField(max_length=255)
    xml = models.TextField()
    sha256 = models.CharField(max_length=64)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.EVENT)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    actor_name = models.CharField(max_length=150, blank=True)
    note = models.CharField(max_length=255, blank=True)
    created = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [models.Index(fields=["host", "guest_uuid", "-created"], name="configversion_guest_idx")]

    def __str__(self) -> str:
        return f"{self.guest_name} @ {self.created:%Y-%m-%d %H:%M:%S}"

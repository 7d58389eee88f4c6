"""Host zones: a group of hosts with their own Celery queue and their own watcher.

A zone is a short slug on `Host.zone` (blank = the default zone). Jobs of a host in zone Z go
to the Celery queue ``zone.Z`` (a worker near those hosts runs ``celery worker -Q zone.Z``);
default-zone jobs and jobs without a host go to Celery's default queue, as before zones. A bulk
request makes one job per zone of its guests (guests/services.py `request_bulk_by_zone`); such a job
has no host and names its zone in ``params["zone"]`` (core/jobs.py `zone_of`).
``manage.py watch --zone Z`` watches only zone Z; see hosts/watch_zones.py for how a watcher
without ``--zone`` stays out of zones that have their own.
"""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError

ZONE_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
DEFAULT_NAME = "default"  # how the CLI names the blank zone; reserved, so no host zone may be called so
QUEUE_PREFIX = "zone."


def validate_zone(value: str) -> None:
    """Blank (the default zone) or a slug: lowercase letters, digits and '-', 1–32, not starting with '-'."""
    if not value:
        return
    if value == DEFAULT_NAME:
        raise ValidationError(f"'{DEFAULT_NAME}' names the default zone: leave the zone blank instead.")
    if not ZONE_RE.fullmatch(value):
        raise ValidationError("Enter a zone of 1–32 lowercase letters, digits and '-', starting with a letter "
                              "or digit (or leave it blank for the default zone).")


def queue_for(zone: str) -> str | None:
    """The Celery queue of a zone's jobs; None = Celery's default queue (the default zone)."""
    return f"{QUEUE_PREFIX}{zone}" if zone else None


def parse_cli_zone(value: str) -> str:
    """`manage.py watch --zone` value → zone ('' or 'default' = the default zone); ValueError if invalid."""
    value = value.strip()
    if value in ("", DEFAULT_NAME):
        return ""
    try:
        validate_zone(value)
    except ValidationError as exc:
        raise ValueError(exc.messages[0]) from None
    return value


def label(zone: str) -> str:
    return zone or DEFAULT_NAME

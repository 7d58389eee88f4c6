"""Publish live-update hints to browsers, after the transaction commits.

Messages are hints ("re-read this"), not payloads to trust. Each group has a sequence number
(Redis INCR) so a client that sees a gap, or reconnects, fetches a fresh snapshot instead of
silently missing a change: the channel layer can drop messages (shared/RELIABILITY.md).
"""

from __future__ import annotations

import logging
import re

import redis
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction

log = logging.getLogger(__name__)
_GROUP_SAFE = re.compile(r"[^A-Za-z0-9_.-]")
_redis: redis.Redis | None = None


def group_name(topic: str) -> str:
    """Channels group names allow only [A-Za-z0-9_.-] and < 100 characters."""
    return "live." + _GROUP_SAFE.sub("_", topic)[:90]


def _next_seq(group: str) -> int:
    global _redis
    if _redis is None:
        _redis = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    return int(_redis.incr(f"virtdash:seq:{group}"))


def send_now(topics: list[str], event: str, data: dict | None = None) -> None:
    """Send to each topic's group now; failures are logged, never raised (live is best effort)."""
    layer = get_channel_layer()
    if layer is None:
        return
    for topic in topics:
        group = group_name(topic)
        try:
            message = {"type": "live.message", "topic": topic, "seq": _next_seq(group), "event": event,
                       "data": data or {}}
            async_to_sync(layer.group_send)(group, message)
        except Exception as exc:  # Redis down: clients resync when it is back
            log.warning("live update to %s failed: %s", topic, exc)


def publish(topics: list[str], event: str, data: dict | None = None) -> None:
    """Send after the current transaction commits (at once outside a transaction)."""
    transaction.on_commit(lambda: send_now(topics, event, data))


def guest_topics(host_id: int, uuid: str) -> list[str]:
    return ["guests", f"host.{host_id}", f"guest.{uuid}"]


def host_topics(host_id: int) -> list[str]:
    return ["hosts", f"host.{host_id}"]

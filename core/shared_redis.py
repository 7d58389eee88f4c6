"""One synchronous Redis client per process for VirtDash's own keys (live sequence numbers,
console tokens and sessions, transfer slots, lease-page marks, once-only deliveries).

Celery and Channels keep their own connections. redis-py's connection pool is thread-safe and
replaces its connections in a forked child, so one client serves every thread of a process.
"""

from __future__ import annotations

import redis
from django.conf import settings

TIMEOUT_SECONDS = 3  # a stalled Redis fails a call quickly; callers treat Redis as best effort or refuse

_client: redis.Redis | None = None


def client() -> redis.Redis:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=TIMEOUT_SECONDS,
                                       socket_connect_timeout=TIMEOUT_SECONDS)
    return _client

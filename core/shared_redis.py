"""One synchronous Redis client per process for VirtDash's own keys (live sequence numbers,
console tokens and sessions, transfer slots, lease-page marks, once-only deliveries).

Celery and Channels keep their own connections. redis-py's connection pool is thread-safe and
replaces its connections in a forked child, so one client serves every thread of a process.
"""

from __future__ import annotations

import redis
from django.conf import settings
from redis.backoff import ConstantBackoff
from redis.retry import Retry

TIMEOUT_SECONDS = 3  # a stalled Redis fails a call quickly; callers treat Redis as best effort or refuse

_client: redis.Redis | None = None


def make_client(url: str) -> redis.Redis:
    """One retry after 0.1 s rides out a blip; redis-py's default (retries with back-off for about
    3 s) made every call wait 3 s while Redis was down, in requests and the watcher alike."""
    return redis.Redis.from_url(url, socket_timeout=TIMEOUT_SECONDS, socket_connect_timeout=TIMEOUT_SECONDS,
                                retry=Retry(ConstantBackoff(0.1), 1))


def client() -> redis.Redis:
    global _client
    if _client is None:
        _client = make_client(settings.REDIS_URL)
    return _client

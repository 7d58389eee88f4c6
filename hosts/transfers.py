"""What volume uploads and downloads share: their own threads, an idle limit and a per-user cap.

Threads: a transfer's blocking libvirt calls (open, every chunk, finish, delete) run in
``EXECUTOR``, never on asgiref's process-wide sync thread, which Channels' ``database_sync_to_async``
uses for every WebSocket handshake and the live consumer: a slow libvirt call there stalled every
live socket of the worker. Only short database/audit work runs on that thread.

Cap: at most ``PER_USER`` transfers (uploads + downloads) per user across all web processes,
counted like console sessions (consoles/sessions.py): a Redis sorted set per user whose members
are scored by the time they expire. A transfer renews its lease while data moves (``Slot.renew``),
so one of a crashed process disappears within ``LEASE_SECONDS`` by itself.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import redis

from core import shared_redis
from virtdash.env import env_int

log = logging.getLogger(__name__)

# A transfer whose other side takes or sends nothing for this long is closed (README).
IDLE_SECONDS = env_int("VIRTDASH_TRANSFER_IDLE_SECONDS", 60, minimum=1)
# Concurrent uploads + downloads per user, across all web processes (README).
PER_USER = env_int("VIRTDASH_TRANSFERS_PER_USER", 4, minimum=1)
# Uploads: the browser sending nothing for this long aborts the upload (hosts/upload_stream.py).
UPLOAD_IDLE_SECONDS = env_int("VIRTDASH_UPLOAD_IDLE_SECONDS", IDLE_SECONDS, minimum=1)
# A slot not renewed for this long is gone (its process died); transfers renew every RENEW_SECONDS
# while data moves, and wait at most an idle limit without data.
LEASE_SECONDS = 2 * max(IDLE_SECONDS, UPLOAD_IDLE_SECONDS) + 120
RENEW_SECONDS = 15
# One thread per running transfer at most (a transfer has one libvirt call in flight at a time).
EXECUTOR = ThreadPoolExecutor(max_workers=64, thread_name_prefix="vd-transfer")


class TransferRefused(Exception):
    """No slot for a new transfer: HTTP ``status`` and a message for the page."""

    status = 503

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class TooManyTransfers(TransferRefused):
    """The user already has ``PER_USER`` transfers running."""

    status = 429

    def __init__(self):
        super().__init__(f"You already have {PER_USER} uploads or downloads running (the most allowed per user, "
                         "VIRTDASH_TRANSFERS_PER_USER); wait for one to finish and try again.")


async def blocking(fn, *args):
    """Run a blocking (libvirt) call in the transfers' own threads, off the event loop and off
    asgiref's shared sync thread."""
    return await asyncio.get_running_loop().run_in_executor(EXECUTOR, fn, *args)


def _key(user_id: int) -> str:
    return f"vd:transfers:{user_id}"


class Slot:
    """One running transfer of one user; ``release()`` (idempotent) frees it."""

    def __init__(self, user_id: int, member: str):
        self.user_id, self.member = user_id, member
        self._renewed = time.monotonic()
        self._released = False

    def renew(self) -> None:
        """Push the lease on (at most every RENEW_SECONDS; cheap to call per chunk)."""
        if self._released or time.monotonic() - self._renewed < RENEW_SECONDS:
            return
        self._renewed = time.monotonic()
        try:
            pipe = shared_redis.client().pipeline(transaction=True)
            pipe.zadd(_key(self.user_id), {self.member: time.time() + LEASE_SECONDS}, xx=True)
            pipe.expire(_key(self.user_id), LEASE_SECONDS + 60)
            pipe.execute()
        except redis.RedisError as exc:
            log.warning("cannot renew transfer slot of user %s: %s", self.user_id, exc)

    def release(self) -> None:
        if self._released:
            return
        self._released = True
        try:
            shared_redis.client().zrem(_key(self.user_id), self.member)
        except redis.RedisError as exc:  # the lease runs out by itself
            log.warning("cannot release transfer slot of user %s: %s", self.user_id, exc)


def acquire(user_id: int) -> Slot:
    """A slot for a new transfer, or TooManyTransfers. Add first, then count: two racing starts
    may both be refused, never both let through. Redis unreachable: refused too (TransferRefused)."""
    member = uuid.uuid4().hex
    now = time.time()
    key = _key(user_id)
    try:
        pipe = shared_redis.client().pipeline(transaction=True)
        pipe.zremrangebyscore(key, "-inf", now)
        pipe.zadd(key, {member: now + LEASE_SECONDS})
        pipe.zcard(key)
        pipe.expire(key, LEASE_SECONDS + 60)
        _, _, count, _ = pipe.execute()
        if count > PER_USER:
            shared_redis.client().zrem(key, member)
            raise TooManyTransfers()
    except redis.RedisError as exc:
        log.warning("cannot count the transfers of user %s: %s", user_id, exc)
        raise TransferRefused("Cannot count your running transfers right now (Redis); try again shortly.") from None
    return Slot(user_id, member)


def running(user_id: int) -> int:
    """How many transfers the user has running now."""
    key = _key(user_id)
    return shared_redis.client().zcount(key, time.time(), "+inf")

"""Caps on open console sessions per user, shared by all web processes through Redis.

A session registers in a sorted set scored by the time it must be gone at the latest (its
absolute timeout), so sessions of a crashed process expire by themselves.
"""

from __future__ import annotations

import time
import uuid

import redis.asyncio as aioredis

from consoles import conf, tokens


def _client() -> aioredis.Redis:
    return tokens.async_client()


def _key(user_id: int) -> str:
    return f"vd:console:sessions:{user_id}"


async def acquire(user_id: int) -> str | None:
    """Register a new session; None when the user already has the maximum open.

    Add first, then count: two racing opens may both be refused, never both let through.
    """
    session = uuid.uuid4().hex
    now = time.time()
    key = _key(user_id)
    pipe = _client().pipeline(transaction=True)
    pipe.zremrangebyscore(key, "-inf", now)
    pipe.zadd(key, {session: now + conf.ABSOLUTE_TIMEOUT + 60})
    pipe.zcard(key)
    pipe.expire(key, conf.ABSOLUTE_TIMEOUT + 120)
    _, _, count, _ = await pipe.execute()
    if count > conf.MAX_SESSIONS_PER_USER:
        await _client().zrem(key, session)
        return None
    return session


async def release(user_id: int, session: str) -> None:
    try:
        await _client().zrem(_key(user_id), session)
    except Exception:
        pass

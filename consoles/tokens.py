"""One-time console tokens: random, short-lived, single use, bound to user, guest, mode and target.

Only the SHA-256 of a token is a Redis key, and the record under it is encrypted with a key
derived from the token itself, so reading Redis reveals neither a usable token nor a guest's
VNC password. Consuming is one atomic GETDEL: two connections racing with one token cannot
both win (Nova's tokens are reusable; ours are not).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
import time
import weakref
from dataclasses import asdict, dataclass

import redis.asyncio as aioredis
from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ConstantBackoff

from consoles import conf
from consoles.targets import Target
from core import shared_redis

TOKEN_BYTES = 32  # 256 bits
KEY_PREFIX = "vd:console:token:"
MODES = ("full", "view")



@dataclass(frozen=True)
class ConsoleGrant:
    """What a token allows: this user may open this guest's console in this mode, at this target."""

    user_id: int
    guest_uuid: str
    host_id: int
    mode: str  # "full" or "view"
    target: Target
    password: str | None = None  # the VNC password from the XML, used by the proxy only
    issued: float = 0.0

    def to_json(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> ConsoleGrant:
        data = json.loads(raw)
        data["target"] = Target(**data["target"])
        return cls(**data)


def _key(token: str) -> str:
    return KEY_PREFIX + hashlib.sha256(token.encode()).hexdigest()


def _box(token: str) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(b"vd-console-record:" + token.encode()).digest()))


def issue(grant: ConsoleGrant, ttl: int | None = None) -> str:
    """Store the grant under a new random token and return the token (the only copy)."""
    if grant.mode not in MODES:
        raise ValueError(f"unknown console mode {grant.mode!r}")
    ttl = min(ttl or conf.TOKEN_TTL, conf.TOKEN_TTL)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    stamped = ConsoleGrant(**{**asdict(grant), "target": grant.target, "issued": time.time()})
    shared_redis.client().set(_key(token), _box(token).encrypt(stamped.to_json()), ex=ttl, nx=True)
    return token


def _open(token: str, sealed: bytes | None) -> ConsoleGrant | None:
    if sealed is None:
        return None
    try:
        return ConsoleGrant.from_json(_box(token).decrypt(sealed))
    except (InvalidToken, ValueError, TypeError, KeyError):
        return None


def looks_like_token(token: str) -> bool:
    return isinstance(token, str) and 32 <= len(token) <= 64 and all(c.isalnum() or c in "-_" for c in token)


def consume(token: str) -> ConsoleGrant | None:
    """The grant for `token`, deleted in the same step; None if unknown, expired or used."""
    if not looks_like_token(token):
        return None
    return _open(token, shared_redis.client().getdel(_key(token)))


async def aconsume(token: str) -> ConsoleGrant | None:
    """`consume` for asyncio code (the proxy consumer)."""
    if not looks_like_token(token):
        return None
    return _open(token, await async_client().getdel(_key(token)))


_async_clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def async_client() -> aioredis.Redis:
    """One asyncio Redis client per event loop (a client is bound to the loop that made it)."""
    loop = asyncio.get_running_loop()
    client = _async_clients.get(loop)
    if client is None:
        client = _async_clients[loop] = aioredis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=3, socket_connect_timeout=3,
            retry=AsyncRetry(ConstantBackoff(0.1), 1))  # as core.shared_redis: no 3 s of retries when Redis is down
    return client

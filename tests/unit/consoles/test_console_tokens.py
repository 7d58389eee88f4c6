"""Console tokens: random, hashed at rest, short-lived, single use, bound to what they were issued for."""

from __future__ import annotations

import hashlib
import time

import pytest

from consoles import tokens
from consoles.targets import Target
from core import shared_redis


def _grant(**overrides) -> tokens.ConsoleGrant:
    values = {"user_id": 7, "guest_uuid": "11111111-2222-3333-4444-555555555555", "host_id": 3, "mode": "full",
              "target": Target(host="127.0.0.1", port=5901), "password": "pw"}
    values.update(overrides)
    return tokens.ConsoleGrant(**values)


def test_a_token_has_at_least_128_random_bits_and_differs_every_time():
    first, second = tokens.issue(_grant()), tokens.issue(_grant())
    assert first != second
    assert len(first) * 6 >= 128 * 1.5  # 32 random bytes, base64url


def test_redis_holds_only_the_sha256_of_the_token_and_no_readable_password():
    token = tokens.issue(_grant(password="hunter22"))
    client = shared_redis.client()
    key = tokens.KEY_PREFIX + hashlib.sha256(token.encode()).hexdigest()
    stored = client.get(key)
    assert stored is not None and b"hunter22" not in stored and token.encode() not in stored
    assert not any(token in k.decode() for k in client.keys(tokens.KEY_PREFIX + "*"))
    assert 0 < client.ttl(key) <= 30


def test_a_token_is_consumed_once_with_everything_it_was_bound_to():
    token = tokens.issue(_grant(mode="view"))
    grant = tokens.consume(token)
    assert grant is not None
    assert (grant.user_id, grant.guest_uuid, grant.host_id, grant.mode) == (7, _grant().guest_uuid, 3, "view")
    assert grant.target == Target(host="127.0.0.1", port=5901) and grant.password == "pw"
    assert tokens.consume(token) is None  # reused: refused


def test_an_expired_token_is_refused():
    token = tokens.issue(_grant(), ttl=1)
    time.sleep(1.2)
    assert tokens.consume(token) is None


@pytest.mark.parametrize("bogus", ["", "short", "x" * 500, "../../etc/passwd" * 3, "A" * 43])
def test_unknown_or_malformed_tokens_are_refused(bogus):
    assert tokens.consume(bogus) is None


def test_the_ttl_never_exceeds_the_configured_maximum():
    token = tokens.issue(_grant(), ttl=3600)
    key = tokens.KEY_PREFIX + hashlib.sha256(token.encode()).hexdigest()
    assert shared_redis.client().ttl(key) <= 30

"""Shared fixtures: personas (admin, operator, viewer, outsider) and libvirt test-driver hosts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(os.environ.get("VIRTDASH_ARTIFACTS", REPO / "artifacts"))
TEST_PREFIX = "vdtest-"  # every libvirt object the tests create carries it; cleanup touches nothing else
PERSONA_PASSWORD = "correct-horse-battery"


def pytest_sessionstart(session):
    """Channels' Redis layer and the console tokens need a Redis even in unit tests: reuse one or start it.

    Then empty the test run's own Redis database: an earlier run on this machine (CI may reuse its
    Redis) can leave Celery messages that would be redelivered into this run's fresh database with
    reused job ids, and console-session and transfer keys of user ids that come again."""
    import redis

    from tests.stack import ensure_redis

    ensure_redis()
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/9")  # tests/settings.py's default
    client = redis.Redis.from_url(url, socket_timeout=5)
    if client.connection_pool.connection_kwargs.get("db", 0) == 0:
        raise pytest.UsageError(f"REDIS_URL={url} is Redis database 0, which a running VirtDash uses: "
                                "give the tests a database of their own (the default is 9)")
    client.flushdb()
    client.close()


def make_user(username: str, role: str | None, **extra):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    user = get_user_model().objects.create_user(username=username, password=PERSONA_PASSWORD, **extra)
    if role:
        group, _ = Group.objects.get_or_create(name=role)
        user.groups.add(group)
    return user


@pytest.fixture
def admin_user(db):
    return make_user("alice-admin", "admin", is_staff=True, is_superuser=True)


@pytest.fixture
def operator_user(db):
    return make_user("oscar-operator", "operator")


@pytest.fixture
def viewer_user(db):
    return make_user("vera-viewer", "viewer")


@pytest.fixture
def outsider_user(db):
    return make_user("olga-outsider", None)


def _client_for(user):
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def admin_client(admin_user):
    return _client_for(admin_user)


@pytest.fixture
def operator_client(operator_user):
    return _client_for(operator_user)


@pytest.fixture
def viewer_client(viewer_user):
    return _client_for(viewer_user)


@pytest.fixture
def outsider_client(outsider_user):
    return _client_for(outsider_user)


@pytest.fixture
def test_host(db):
    """A Host on libvirt's in-process test driver (one guest, 'test', running)."""
    from hosts.models import Host

    return Host.objects.create(name="testhost", uri="test:///default")

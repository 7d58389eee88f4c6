"""Clear errors instead of a blank console, and the per-user session cap."""

from __future__ import annotations

import asyncio

import pytest

from consoles import conf, sessions


@pytest.fixture
def unreachable_guest(db):
    from guests.models import Guest
    from hosts.models import Host

    host = Host.objects.create(name="gone", uri="qemu+tcp://127.0.0.9/system")
    return Guest.objects.create(host=host, uuid="cccccccc-0000-4000-8000-00000000000c", name="far", state="running")


def test_an_unreachable_host_is_named_on_the_page_and_gives_no_token(operator_client, unreachable_guest):
    page = operator_client.get(f"/consoles/{unreachable_guest.uuid}/vnc/")
    assert page.status_code == 200 and b"is unreachable" in page.content
    response = operator_client.post(f"/consoles/{unreachable_guest.uuid}/vnc/token", {"mode": "full"},
                                    content_type="application/json")
    assert response.status_code == 503 and response.json()["code"] == "host_unreachable"
    assert "token" not in response.json()


def test_a_user_cannot_open_more_than_the_allowed_number_of_console_sessions():
    async def scenario():
        user_id = 987654
        held = [await sessions.acquire(user_id) for _ in range(conf.MAX_SESSIONS_PER_USER)]
        assert all(held)
        assert await sessions.acquire(user_id) is None
        await sessions.release(user_id, held[0])
        again = await sessions.acquire(user_id)
        assert again is not None
        for session in [*held[1:], again]:
            await sessions.release(user_id, session)

    run(scenario())


def run(coro):
    """asyncio.run in a thread of its own: Playwright's sync API may own this thread's loop."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()

"""The live WebSocket: login and origin required, topics authorised by the policy."""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from core import live
from guests.models import Guest
from virtdash.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)


def _headers(user=None, origin=b"http://127.0.0.1:8000"):
    headers = [(b"host", b"127.0.0.1:8000")]
    if origin:
        headers.append((b"origin", origin))
    if user is not None:
        client = Client()
        client.force_login(user)
        headers.append((b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()))
    return headers


async def _connect(headers):
    communicator = WebsocketCommunicator(application, "/ws/live/", headers=headers)
    connected, _ = await communicator.connect()
    return communicator, connected


async def test_anonymous_sockets_are_refused():
    communicator, connected = await _connect(_headers())
    assert not connected


async def test_a_foreign_origin_is_refused(admin_user):
    communicator, connected = await _connect(await sync_to_async(_headers)(admin_user, origin=b"https://evil.example"))
    assert not connected


async def test_a_viewer_receives_hints_for_topics_it_may_see(viewer_user):
    communicator, connected = await _connect(await sync_to_async(_headers)(viewer_user))
    assert connected
    await communicator.send_json_to({"subscribe": ["hosts", "guest.nope"]})
    reply = await communicator.receive_json_from(timeout=5)
    assert reply == {"subscribed": ["hosts"], "refused": ["guest.nope"]}
    await sync_to_async(live.send_now)(["hosts"], "host", {"id": 1})
    message = await communicator.receive_json_from(timeout=5)
    assert message["topic"] == "hosts" and message["event"] == "host" and message["seq"] >= 1
    await communicator.disconnect()


async def test_a_hint_sent_from_async_code_still_reaches_the_browser(viewer_user):
    """Async code (a raw ASGI endpoint, a consumer) may publish without a thread hop."""
    communicator, connected = await _connect(await sync_to_async(_headers)(viewer_user))
    assert connected
    await communicator.send_json_to({"subscribe": ["hosts"]})
    await communicator.receive_json_from(timeout=5)
    await asyncio.sleep(live.MERGE_SECONDS + 0.05)  # not merged into an earlier burst: sent at once
    live.send_now(["hosts"], "host", {"id": 2})  # called in this loop's own thread
    message = await communicator.receive_json_from(timeout=5)
    assert message["topic"] == "hosts" and message["data"] == {"id": 2}
    await communicator.disconnect()


async def test_an_outsider_cannot_subscribe_to_a_guest_it_may_not_see(outsider_user, test_host):
    guest = await sync_to_async(Guest.objects.create)(host=test_host, uuid="u-1", name="secret")
    communicator, connected = await _connect(await sync_to_async(_headers)(outsider_user))
    assert connected
    await communicator.send_json_to({"subscribe": [f"guest.{guest.uuid}", "guests", "hosts"]})
    reply = await communicator.receive_json_from(timeout=5)
    assert reply["subscribed"] == []
    await communicator.disconnect()


async def _receive_until(communicator, last_seq: int) -> list[dict]:
    received = [await communicator.receive_json_from(timeout=5)]
    while received[-1]["seq"] < last_seq:
        received.append(await communicator.receive_json_from(timeout=5))
    return received


async def _subscribed(user):
    communicator, _ = await _connect(await sync_to_async(_headers)(user))
    await communicator.send_json_to({"subscribe": ["hosts"]})
    await communicator.receive_json_from(timeout=5)
    return communicator


async def test_a_burst_reaches_the_browser_as_a_few_merged_hints_with_every_number_accounted_for(viewer_user):
    communicator = await _subscribed(viewer_user)
    for i in range(60):
        await sync_to_async(live.send_now)(["hosts"], ("host", "job")[i % 2], {"id": i})
    first = await communicator.receive_json_from(timeout=5)  # may itself be merged (an earlier test's burst window)
    received = [first]
    if first["seq"] < first.get("first", first["seq"]) + 59:
        received += await _receive_until(communicator, first.get("first", first["seq"]) + 59)
    assert len(received) < 20
    expected = first["seq"]
    for message in received[1:]:  # each merged hint starts right after the previous one ends
        assert message["first"] == expected + 1 and "gap" not in message
        expected = message["seq"]
    assert received[-1]["data"] == {"id": 59}  # the latest hint's data wins
    assert set(received[-1]["events"]) <= {"host", "job"}
    await communicator.disconnect()


async def test_numbers_missing_inside_a_burst_are_flagged_as_a_gap(viewer_user):
    from channels.layers import get_channel_layer

    communicator = await _subscribed(viewer_user)
    for seq in (1, 2, 3, 5, 6):  # 4 was lost on the way
        await get_channel_layer().group_send(live.group_name("hosts"), {
            "type": "live.message", "topic": "hosts", "seq": seq, "event": "host", "data": {}})
    received = await _receive_until(communicator, 6)
    assert received[0]["seq"] == 1
    assert received[-1]["first"] == 2 and received[-1]["gap"] is True
    await communicator.disconnect()

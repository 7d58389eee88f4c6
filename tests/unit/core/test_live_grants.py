"""Live updates for users who see guests only through grants: they follow what becomes visible
after the page loaded, and stop following what they may no longer see."""

import re

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from core import live
from core.models import Grant
from guests.models import Guest
from hosts.models import Host
from virtdash.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)


def _login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _page_topics(client: Client, user) -> list[str]:
    """What live.js subscribes to on the guest list: the page's data-live-topics, jobs and user.<id>."""
    html = client.get("/guests/").content.decode()
    topics = {"jobs", f"user.{user.pk}"}
    for found in re.findall(r'data-live-topics="([^"]*)"', html):
        topics.update(found.split())
    return sorted(topics)


async def _open(user):
    client = await sync_to_async(_login)(user)
    headers = [(b"host", b"127.0.0.1:8000"), (b"origin", b"http://127.0.0.1:8000"),
               (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())]
    communicator = WebsocketCommunicator(application, "/ws/live/", headers=headers)
    connected, _ = await communicator.connect()
    assert connected
    await communicator.send_json_to({"subscribe": await sync_to_async(_page_topics)(client, user)})
    assert "subscribed" in await communicator.receive_json_from(timeout=5)
    return communicator


async def _drain(communicator, seconds=0.6) -> list[dict]:
    """Everything that arrives until the socket stays quiet for `seconds` (receive_nothing never
    cancels the consumer, unlike a receive that times out)."""
    messages = []
    while not await communicator.receive_nothing(timeout=seconds):
        messages.append(await communicator.receive_json_from())
    return messages


def _about(messages, guest) -> list[dict]:
    return [m for m in messages if m.get("data", {}).get("uuid") == guest.uuid]


async def _changed(guest):
    """What the watcher publishes when it sees a guest appear or change."""
    await sync_to_async(live.send_now)(live.guest_topics(guest.host_id, guest.uuid), "guest", {"uuid": guest.uuid})


@pytest.fixture
def two_hosts(db):
    return (Host.objects.create(name="granted", uri="test:///default"),
            Host.objects.create(name="elsewhere", uri="test:///default?x=1"))


def _guest(host, name):
    return Guest.objects.create(host=host, uuid=f"00000000-0000-4000-8000-{abs(hash(name)) % 10**12:012d}", name=name)


async def test_a_host_grant_follows_guests_that_appear_after_connect_and_nothing_else(outsider_user, two_hosts):
    granted, elsewhere = two_hosts
    await sync_to_async(Grant.objects.create)(user=outsider_user, role="viewer", host=granted)
    communicator = await _open(outsider_user)
    new = await sync_to_async(_guest)(granted, "vdtest-new")
    foreign = await sync_to_async(_guest)(elsewhere, "vdtest-foreign")
    await _changed(new)
    await _changed(foreign)
    await _changed(new)
    messages = await _drain(communicator)
    assert _about(messages, new), messages
    assert not _about(messages, foreign), messages
    # the filtered message is not a gap for live.js (which would re-read the whole page)
    seqs = [m["seq"] for m in messages if m["topic"] == "guests"]
    assert len(seqs) == 2 and seqs[1] == seqs[0] + 1, messages  # consecutive (earlier tests may have used numbers)
    await communicator.disconnect()


async def test_a_guest_granted_after_connect_is_followed_and_a_revoked_one_is_not(outsider_user, two_hosts):
    granted, _ = two_hosts
    first = await sync_to_async(_guest)(granted, "vdtest-first")
    later = await sync_to_async(_guest)(granted, "vdtest-later")
    await sync_to_async(Grant.objects.create)(user=outsider_user, role="viewer", guest=first)
    communicator = await _open(outsider_user)
    await _changed(later)
    assert not _about(await _drain(communicator), later)

    grant = await sync_to_async(Grant.objects.create)(user=outsider_user, role="viewer", guest=later)
    await _drain(communicator)  # the access nudge and the new subscription reply
    await _changed(later)
    assert _about(await _drain(communicator), later)

    await sync_to_async(grant.delete)()
    await _drain(communicator)
    await _changed(later)
    await _changed(first)
    messages = await _drain(communicator)
    assert not _about(messages, later), messages
    assert _about(messages, first), messages
    await communicator.disconnect()


async def test_removing_a_viewers_role_stops_its_updates(viewer_user, two_hosts):
    guest = await sync_to_async(_guest)(two_hosts[0], "vdtest-any")
    communicator = await _open(viewer_user)
    await _changed(guest)
    assert _about(await _drain(communicator), guest)
    await sync_to_async(viewer_user.groups.clear)()
    await _drain(communicator)
    await _changed(guest)
    assert not _about(await _drain(communicator), guest)
    await communicator.disconnect()


async def test_a_lost_nudge_is_made_up_for_by_the_periodic_recheck(outsider_user, two_hosts, monkeypatch):
    from core import consumers

    guest = await sync_to_async(_guest)(two_hosts[0], "vdtest-quiet")
    await sync_to_async(Grant.objects.create)(user=outsider_user, role="viewer", host=two_hosts[1])
    communicator = await _open(outsider_user)
    # bulk_create sends no signals: no nudge, as if the channel layer had dropped it
    await sync_to_async(Grant.objects.bulk_create)([Grant(user=outsider_user, role="viewer", guest=guest)])
    monkeypatch.setattr(consumers, "REAUTHORISE_SECONDS", 0)
    await _changed(guest)
    assert _about(await _drain(communicator), guest)
    await communicator.disconnect()


async def test_disabling_a_user_closes_their_live_socket(viewer_user):
    communicator = await _open(viewer_user)
    viewer_user.is_active = False
    await sync_to_async(viewer_user.save)()
    output = await communicator.receive_output(timeout=5)
    assert output == {"type": "websocket.close", "code": 4403}


async def test_a_merged_burst_reaches_a_grant_only_user_only_through_the_guest_they_may_see(outsider_user, two_hosts):
    granted_host, elsewhere = two_hosts
    mine = await sync_to_async(_guest)(elsewhere, "mine")
    others = [await sync_to_async(_guest)(elsewhere, f"other-{i}") for i in range(30)]
    await sync_to_async(Grant.objects.create)(user=outsider_user, role="viewer", guest=mine)
    communicator = await _open(outsider_user)
    await _drain(communicator)
    for guest in [*others[:15], mine, *others[15:]]:  # one burst: merged by the publisher
        await sync_to_async(live.send_now)(["guests"], "guest", {"uuid": guest.uuid})
    messages = [m for m in await _drain(communicator) if m.get("topic") == "guests"]
    assert messages, "the burst held a guest the user may see"
    assert {m["data"].get("uuid") for m in messages} == {mine.uuid}  # nobody else's uuid leaks
    assert all("items" not in m for m in messages)
    await communicator.disconnect()


async def test_a_lost_hint_before_a_filtered_one_still_reaches_a_grant_only_user_as_a_gap(outsider_user, two_hosts):
    from channels.layers import get_channel_layer

    _, elsewhere = two_hosts
    mine = await sync_to_async(_guest)(elsewhere, "mine")
    other = await sync_to_async(_guest)(elsewhere, "other")
    await sync_to_async(Grant.objects.create)(user=outsider_user, role="viewer", guest=mine)
    communicator = await _open(outsider_user)
    await _drain(communicator)
    # 100 is theirs, 101 is lost on the way (it was theirs too), 102 is someone else's.
    for seq, guest in ((100, mine), (102, other)):
        await get_channel_layer().group_send(live.group_name("guests"), {
            "type": "live.message", "topic": "guests", "seq": seq, "event": "guest", "data": {"uuid": guest.uuid}})
    messages = [m for m in await _drain(communicator) if m.get("topic") == "guests"]
    assert [m["data"].get("uuid") for m in messages][:1] == [mine.uuid]
    assert messages[-1]["gap"] is True and messages[-1]["data"] == {}  # re-read, without naming the other guest
    await communicator.disconnect()


async def test_a_hint_arriving_a_little_late_is_not_a_gap(admin_user):
    from channels.layers import get_channel_layer

    communicator = await _open(admin_user)
    await _drain(communicator)
    for seq in (10, 12, 11, 13):  # two publishers raced
        await get_channel_layer().group_send(live.group_name("guests"), {
            "type": "live.message", "topic": "guests", "seq": seq, "event": "guest", "data": {}})
    messages = [m for m in await _drain(communicator) if m.get("topic") == "guests"]
    assert messages[-1]["seq"] == 13 and not any(m.get("gap") for m in messages)
    await communicator.disconnect()


async def test_emptying_a_group_from_the_group_side_stops_its_members_updates(viewer_user, two_hosts):
    from django.contrib.auth.models import Group

    guest = await sync_to_async(_guest)(two_hosts[0], "vdtest-group")
    communicator = await _open(viewer_user)
    await _changed(guest)
    assert _about(await _drain(communicator), guest)
    group = await sync_to_async(Group.objects.get)(name="viewer")
    await sync_to_async(group.user_set.clear)()  # post_clear names nobody: members are read before
    await _drain(communicator)
    await _changed(guest)
    assert not _about(await _drain(communicator), guest)
    await communicator.disconnect()


async def test_deleting_a_user_closes_their_live_socket(viewer_user):
    communicator = await _open(viewer_user)
    await sync_to_async(viewer_user.delete)()
    output = await communicator.receive_output(timeout=5)
    assert output["type"] == "websocket.close"

"""Volume transfers keep slow libvirt calls off asgiref's shared sync thread (the one Channels'
database_sync_to_async uses for every WebSocket), and a user may run only so many at once."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.db import connections

from core import shared_redis
from core.models import AuditEntry
from hosts import transfers
from hosts.models import Host
from hosts.upload_stream import route_uploads
from tests.unit.storage.test_upload_endpoint import Exchange, _keep_the_test_transaction  # noqa: F401 (autouse)


def _in_fresh_loop(coro_fn):
    """Run like uvicorn does: an event loop in a thread with no sync caller above it, so
    thread-sensitive calls go to asgiref's one process-wide sync thread."""
    async def main():
        try:
            return await coro_fn()
        finally:
            await sync_to_async(connections.close_all)()  # that thread's DB connection

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, main()).result()


@pytest.fixture
def silent_host(transactional_db, settings):
    """A host whose libvirtd accepts TCP and never answers: connecting takes the whole timeout."""
    settings.VIRTDASH_CONNECT_TIMEOUT = 2
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        yield Host.objects.create(name="silent", uri=f"qemu+tcp://127.0.0.1:{silent.getsockname()[1]}/system")


@pytest.fixture
def no_slots_left_over(admin_user):
    shared_redis.client().delete(transfers._key(admin_user.pk))  # user ids come again in later tests
    yield
    shared_redis.client().delete(transfers._key(admin_user.pk))


def test_a_slow_libvirt_step_of_an_upload_does_not_stall_database_calls_elsewhere(
        silent_host, admin_client, admin_user, no_slots_left_over):
    session = admin_client.cookies["sessionid"].value
    exchange = Exchange(f"/hosts/{silent_host.pk}/storage/default/upload/", session=session)
    waits: list[float] = []

    async def both():
        app = route_uploads(exchange.django)
        uploading = asyncio.ensure_future(app(exchange.scope, exchange.receive, exchange.send))
        await asyncio.sleep(0.5)  # the upload is connecting to the silent host now
        assert not uploading.done()
        for _ in range(3):  # what a WebSocket handshake or the live consumer does meanwhile
            started = time.monotonic()
            await database_sync_to_async(lambda: threading.current_thread().name)()
            waits.append(time.monotonic() - started)
            await asyncio.sleep(0.2)
        await uploading

    _in_fresh_loop(both)
    assert exchange.status == 502 and "unreachable" in exchange.error, exchange.error
    assert max(waits) < 0.5, f"database_sync_to_async waited {max(waits):.2f} s behind the libvirt call"
    assert AuditEntry.objects.get(action="volume.upload").result == "failed"
    assert transfers.running(admin_user.pk) == 0  # the slot was given back


def test_one_transfer_more_than_allowed_is_refused_with_429_before_libvirt_is_asked(
        test_host, pool_name, admin_client, admin_user, no_slots_left_over):
    slots = [transfers.acquire(admin_user.pk) for _ in range(transfers.PER_USER)]
    try:
        exchange = Exchange(f"/hosts/{test_host.pk}/storage/{pool_name}/upload/",
                            session=admin_client.cookies["sessionid"].value)
        exchange.run()  # first: the test client reconnects close_old_connections after its request
        assert (exchange.status, exchange.reads) == (429, 0)
        assert "VIRTDASH_TRANSFERS_PER_USER" in exchange.error
        response = admin_client.get(f"/hosts/{test_host.pk}/storage/{pool_name}/volumes/vdtest-vol.qcow2/download/")
        assert response.status_code == 429
        assert f"You already have {transfers.PER_USER} uploads or downloads running" in response.content.decode()
        denied = AuditEntry.objects.filter(action__in=["volume.upload", "volume.download"], result="failed")
        assert denied.count() == 2 and all("already have" in e.detail for e in denied)
    finally:
        for slot in slots:
            slot.release()
    assert transfers.running(admin_user.pk) == 0
    other = transfers.acquire(admin_user.pk)  # freed slots count no more
    other.release()


def test_a_download_holds_a_slot_until_its_response_is_closed_even_unread(
        test_host, pool_name, admin_client, admin_user, no_slots_left_over):
    response = admin_client.get(f"/hosts/{test_host.pk}/storage/{pool_name}/volumes/vdtest-vol.qcow2/download/")
    assert response.status_code == 200 and response.streaming
    assert transfers.running(admin_user.pk) == 1
    response.close()  # what a WSGI server does however the response ended
    assert transfers.running(admin_user.pk) == 0

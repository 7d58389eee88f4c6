"""The /websockify proxy refuses everything but a fresh token of this user for this guest.

A local fake VNC server stands in for QEMU (the real guest is in tests/integration); it
records every connection, so a refusal is also proven to open no connection at all.
"""

from __future__ import annotations

import asyncio

import pytest
from asgiref.testing import ApplicationCommunicator

from consoles import tokens
from consoles.targets import Target

UUID_A = "aaaaaaaa-0000-4000-8000-000000000001"
UUID_B = "bbbbbbbb-0000-4000-8000-000000000002"


class FakeVnc:
    def __init__(self):
        self.connections = 0

    async def handle(self, reader, writer):
        self.connections += 1
        writer.write(b"RFB 003.008\n")
        await writer.drain()
        await reader.readexactly(12)
        writer.write(b"\x01\x01")
        await reader.readexactly(1)
        writer.write(b"\x00\x00\x00\x00")
        await writer.drain()
        data = await reader.read(100)  # ClientInit
        writer.write(b"SERVERINIT:" + data)
        await writer.drain()
        await asyncio.sleep(0.5)
        writer.close()


@pytest.fixture
def guests(test_host, transactional_db):
    from guests.models import Guest

    return [Guest.objects.create(host=test_host, uuid=u, name=f"g{i}", state="running") for i, u in
            enumerate((UUID_A, UUID_B))]


def _cookie(user) -> bytes:
    from django.test import Client

    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def _open(user_cookie, path, token, origin=b"http://testserver", fake=None):
    from virtdash.asgi import application

    server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    headers = [(b"host", b"testserver"), (b"cookie", user_cookie)]
    if origin:
        headers.append((b"origin", origin))
    protocols = ["binary"] + ([f"vd-token.{token(port)}"] if token else [])
    raw_path, _, query = path.partition("?")
    scope = {"type": "websocket", "path": raw_path, "raw_path": raw_path.encode(), "query_string": query.encode(),
             "headers": headers, "subprotocols": protocols, "scheme": "ws", "client": ("127.0.0.1", 5555),
             "server": ("testserver", 80)}
    app = ApplicationCommunicator(application, scope)
    await app.send_input({"type": "websocket.connect"})
    first = await app.receive_output(10)
    connected, banner = first["type"] == "websocket.accept", None
    if connected:
        banner = (await app.receive_output(10)).get("bytes")
    await app.send_input({"type": "websocket.disconnect", "code": 1000})
    try:
        await app.wait(5)
    except Exception:
        pass
    server.close()
    return connected, banner


def _issuer(user, guest_uuid=UUID_A, mode="full"):
    host_id = _host_id()

    def issue(port):
        return tokens.issue(tokens.ConsoleGrant(user_id=user.pk, guest_uuid=guest_uuid, host_id=host_id,
                                                mode=mode, target=Target("127.0.0.1", port)))
    return issue


def _host_id():
    from hosts.models import Host

    return Host.objects.get(name="testhost").pk


def run(coro):
    """asyncio.run in a thread of its own: Playwright's sync API may own this thread's loop."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def test_a_valid_token_gets_the_rfb_banner(operator_user, guests):
    fake = FakeVnc()
    connected, banner = run(_open(_cookie(operator_user), f"/websockify/{UUID_A}", _issuer(operator_user), fake=fake))
    assert connected and banner == b"RFB 003.008\n"
    assert fake.connections == 1


def test_a_reused_token_is_refused(operator_user, guests):
    fake = FakeVnc()
    used: list[str] = []

    issuer = _issuer(operator_user)

    def once(port):
        if not used:
            used.append(issuer(port))
        return used[0]

    cookie = _cookie(operator_user)
    assert run(_open(cookie, f"/websockify/{UUID_A}", once, fake=fake))[0]
    assert run(_open(cookie, f"/websockify/{UUID_A}", once, fake=fake)) == (False, None)
    assert fake.connections == 1


def test_a_token_for_guest_a_is_refused_for_guest_b(operator_user, guests):
    fake = FakeVnc()
    result = run(_open(_cookie(operator_user), f"/websockify/{UUID_B}", _issuer(operator_user, UUID_A), fake=fake))
    assert result == (False, None) and fake.connections == 0


def test_a_token_of_another_user_is_refused(operator_user, admin_user, guests):
    fake = FakeVnc()
    result = run(_open(_cookie(admin_user), f"/websockify/{UUID_A}", _issuer(operator_user), fake=fake))
    assert result == (False, None) and fake.connections == 0


@pytest.mark.parametrize("origin", [b"http://evil.example", b"null", None, b"http://localhost"])
def test_a_foreign_or_missing_origin_is_refused(operator_user, guests, origin):
    fake = FakeVnc()
    result = run(_open(_cookie(operator_user), f"/websockify/{UUID_A}", _issuer(operator_user), origin=origin,
                       fake=fake))
    assert result == (False, None) and fake.connections == 0


def test_client_supplied_host_and_port_are_refused(operator_user, guests):
    fake = FakeVnc()
    path = f"/websockify/{UUID_A}?host=127.0.0.1&port=22"
    assert run(_open(_cookie(operator_user), path, _issuer(operator_user), fake=fake)) == (False, None)
    assert fake.connections == 0


def test_no_token_no_console(operator_user, guests):
    fake = FakeVnc()
    assert run(_open(_cookie(operator_user), f"/websockify/{UUID_A}", None, fake=fake)) == (False, None)


def test_refusals_are_audited(operator_user, guests):
    from core.models import AuditEntry

    run(_open(_cookie(operator_user), f"/websockify/{UUID_B}", _issuer(operator_user, UUID_A), fake=FakeVnc()))
    entry = AuditEntry.objects.get(action="console.vnc")
    assert entry.result == "denied" and "issued for guest" in entry.detail


def test_a_viewer_token_is_refused_once_the_viewer_loses_the_right(viewer_user, guests):
    viewer_user.groups.clear()
    fake = FakeVnc()
    result = run(_open(_cookie(viewer_user), f"/websockify/{UUID_A}", _issuer(viewer_user, mode="view"), fake=fake))
    assert result == (False, None) and fake.connections == 0

"""The VNC proxy in the real web server, against a real tiny guest (password-protected VNC).

Each refusal is a failed WebSocket handshake (HTTP 403); the accepted case speaks RFB all the
way to QEMU's ServerInit, which proves the proxy answered the VNC password itself.
"""

from __future__ import annotations

import json
import random
import re
import struct
import subprocess
import time
from pathlib import Path

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from consoles import tokens
from consoles.targets import Target
from core import shared_redis
from hosts.virt.consoles import console_info
from tests.conftest import TEST_PREFIX, make_user
from tests.integration import console_guests as cg
from tests.stack import Stack, free_port

URI = "qemu:///system"


@pytest.fixture(scope="module")
def web(services, django_db_setup):
    running = Stack(port=free_port())
    running.start_web()
    yield running
    running.stop_all()


@pytest.fixture(scope="module")
def lean_web(services, django_db_setup):
    """The web server for the memory tests: one worker, so the measured process is the one that serves
    the console (two would add a second process's own growth to the sum), and MALLOC_ARENA_MAX=2 as in
    the Procfile (threads must not each grow an arena)."""
    running = Stack(port=free_port())
    running.env["MALLOC_ARENA_MAX"] = "2"
    running.start_web(workers=1)
    yield running
    running.stop_all()


@pytest.fixture(scope="module")
def tiny(services, libvirt_module_conn):
    cg.ensure_tiny_guest()
    name = f"{TEST_PREFIX}con-{int(time.time() * 1000) % 10**8}"
    dom = cg.define_and_start(libvirt_module_conn, name)
    yield dom
    cg.destroy(libvirt_module_conn, name)


@pytest.fixture(scope="module")
def libvirt_module_conn(services):
    import libvirt

    conn = libvirt.open(URI)
    yield conn
    conn.close()


@pytest.fixture
def rows(transactional_db, tiny):
    from guests.models import Guest

    host, (guest,) = cg.inventory_rows(URI, [tiny])
    other = Guest.objects.create(host=host, uuid="bbbbbbbb-0000-4000-8000-00000000000b", name="vdtest-other",
                                 state="running", graphics="vnc")
    return host, guest, other


@pytest.fixture
def operator(transactional_db):
    return make_user("oscar-operator", "operator")


def _ws(web, guest_uuid, token, cookie, origin=None, query=""):
    return connect(f"ws://127.0.0.1:{web.port}/websockify/{guest_uuid}{query}", origin=origin or web.url,
                   subprotocols=["binary", f"vd-token.{token}"], additional_headers={"Cookie": cookie},
                   open_timeout=10)


def _token(web, guest, cookie) -> str:
    status, body = cg.post_json(web.url, f"/consoles/{guest.uuid}/vnc/token", cookie, {"mode": "full"})
    assert status == 200, body
    return body["token"]


def _handshake(ws) -> bytes:
    """Speak RFB as noVNC does, up to QEMU's ServerInit."""
    assert ws.recv(timeout=10) == b"RFB 003.008\n"
    ws.send(b"RFB 003.008\n")
    assert ws.recv(timeout=10) == b"\x01\x01"  # the browser is offered security None
    ws.send(b"\x01")
    assert ws.recv(timeout=10) == b"\x00\x00\x00\x00"
    ws.send(b"\x01")  # ClientInit, shared
    return ws.recv(timeout=10)


def test_a_valid_token_reaches_the_guests_vnc_server_without_the_user_knowing_its_password(web, rows, operator):
    _, guest, _ = rows
    cookie = cg.session_cookie(operator)
    with _ws(web, guest.uuid, _token(web, guest, cookie), cookie) as ws:
        init = _handshake(ws)
        width, height = struct.unpack(">HH", init[:4])
        assert width > 0 and height > 0 and guest.name.encode() in init  # QEMU's ServerInit names the guest


def test_a_reused_token_is_refused(web, rows, operator):
    _, guest, _ = rows
    cookie = cg.session_cookie(operator)
    token = _token(web, guest, cookie)
    with _ws(web, guest.uuid, token, cookie) as ws:
        assert ws.recv(timeout=10) == b"RFB 003.008\n"
    with pytest.raises(InvalidStatus) as refused:
        _ws(web, guest.uuid, token, cookie)
    assert refused.value.response.status_code == 403


def test_an_expired_token_is_refused(web, rows, operator):
    host, guest, _ = rows
    cookie = cg.session_cookie(operator)
    token = tokens.issue(tokens.ConsoleGrant(user_id=operator.pk, guest_uuid=guest.uuid, host_id=host.pk,
                                             mode="full", target=Target("127.0.0.1", 5900)), ttl=1)
    time.sleep(1.3)
    with pytest.raises(InvalidStatus):
        _ws(web, guest.uuid, token, cookie)


def test_a_token_for_guest_a_is_refused_for_guest_b(web, rows, operator):
    _, guest, other = rows
    cookie = cg.session_cookie(operator)
    with pytest.raises(InvalidStatus):
        _ws(web, other.uuid, _token(web, guest, cookie), cookie)


def test_a_foreign_origin_is_refused(web, rows, operator):
    _, guest, _ = rows
    cookie = cg.session_cookie(operator)
    with pytest.raises(InvalidStatus):
        _ws(web, guest.uuid, _token(web, guest, cookie), cookie, origin="http://evil.example")


def test_a_client_supplied_target_is_refused(web, rows, operator):
    _, guest, _ = rows
    cookie = cg.session_cookie(operator)
    with pytest.raises(InvalidStatus):
        _ws(web, guest.uuid, _token(web, guest, cookie), cookie, query="?host=127.0.0.1&port=22")


def test_a_viewer_gets_403_and_no_token_for_a_full_console(web, rows, transactional_db):
    _, guest, _ = rows
    viewer = make_user("vera-viewer", "viewer")
    status, body = cg.post_json(web.url, f"/consoles/{guest.uuid}/vnc/token", cg.session_cookie(viewer),
                                {"mode": "full"})
    assert status == 403 and "token" not in body


def test_the_thumbnail_is_a_cached_png_of_the_running_guest(web, rows, operator):
    import urllib.request

    _, guest, _ = rows
    request = urllib.request.Request(f"{web.url}/consoles/{guest.uuid}/thumbnail.png",
                                     headers={"Cookie": cg.session_cookie(operator)})
    with urllib.request.urlopen(request, timeout=15) as first:
        assert first.headers["Content-Type"] == "image/png" and first.read().startswith(b"\x89PNG")
    lock = shared_redis.client().ttl(f"vd:console:thumb:{guest.host_id}:{guest.uuid}:lock")
    assert 0 < lock <= 30  # the next screenshot waits for this


def test_revoking_the_permission_closes_an_open_console_within_seconds(web, rows, operator):
    from websockets.exceptions import ConnectionClosed

    _, guest, _ = rows
    cookie = cg.session_cookie(operator)
    with _ws(web, guest.uuid, _token(web, guest, cookie), cookie) as ws:
        _handshake(ws)
        operator.groups.clear()
        started = time.monotonic()
        with pytest.raises(ConnectionClosed) as closed:
            while time.monotonic() - started < 15:
                ws.recv(timeout=15)
        assert closed.value.rcvd.code == 4403 and time.monotonic() - started < 12


def test_a_spice_guest_gets_a_clear_message_and_a_remote_viewer_file(web, rows, operator, libvirt_module_conn):
    import urllib.request

    host, _, _ = rows
    name = f"{TEST_PREFIX}spice-{int(time.time() * 1000) % 10**8}"
    dom = cg.define_and_start(libvirt_module_conn, name, graphics_type="spice")
    try:
        from guests.models import Guest

        guest = Guest.objects.create(host=host, uuid=dom.UUIDString(), name=name, state="running", graphics="spice")
        cookie = cg.session_cookie(operator)
        page = urllib.request.urlopen(urllib.request.Request(f"{web.url}/consoles/{guest.uuid}/vnc/",
                                                             headers={"Cookie": cookie}), timeout=15).read()
        assert b"uses SPICE graphics" in page and b"console.vv" in page
        status, body = cg.post_json(web.url, f"/consoles/{guest.uuid}/vnc/token", cookie, {"mode": "full"})
        assert status == 409 and body["code"] == "spice"
        csrf = "c" * 32
        request = urllib.request.Request(f"{web.url}/consoles/{guest.uuid}/console.vv", data=b"", method="POST",
                                         headers={"Cookie": f"{cookie}; csrftoken={csrf}", "X-CSRFToken": csrf,
                                                  "Origin": web.url})
        with urllib.request.urlopen(request, timeout=15) as response:
            vv = response.read().decode()
            assert response.headers["Content-Type"] == "application/x-virt-viewer"
        port = console_info(URI, guest.uuid).first("spice").port
        assert "type=spice" in vv and f"port={port}" in vv and "host=127.0.0.1" in vv
        assert f"password={cg.VNC_PASSWORD}" in vv
    finally:
        cg.destroy(libvirt_module_conn, name)


def test_a_guest_that_is_not_running_gets_a_clear_message_and_no_token(web, rows, operator, libvirt_module_conn):
    import urllib.request

    host, _, _ = rows
    name = f"{TEST_PREFIX}off-{int(time.time() * 1000) % 10**8}"
    dom = libvirt_module_conn.defineXML(cg.tiny_guest_xml(name))
    try:
        from guests.models import Guest

        guest = Guest.objects.create(host=host, uuid=dom.UUIDString(), name=name, state="shutoff", graphics="vnc")
        cookie = cg.session_cookie(operator)
        status, body = cg.post_json(web.url, f"/consoles/{guest.uuid}/vnc/token", cookie, {"mode": "full"})
        assert status == 409 and body["code"] == "not_running" and "token" not in body
        page = urllib.request.urlopen(urllib.request.Request(f"{web.url}/consoles/{guest.uuid}/vnc/",
                                                             headers={"Cookie": cookie}), timeout=15).read()
        assert b"The guest is not running" in page
    finally:
        cg.destroy(libvirt_module_conn, name)


# -- serial console -------------------------------------------------------------------------------

def _serial(web, guest, cookie, force=False):
    return connect(f"ws://127.0.0.1:{web.port}/ws/consoles/{guest.uuid}/serial/" + ("?force=1" if force else ""),
                   origin=web.url, additional_headers={"Cookie": cookie}, open_timeout=10, max_size=2**20,
                   close_timeout=2)


def _next_status(ws, timeout=15) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = ws.recv(timeout=deadline - time.monotonic())
        if isinstance(message, str):
            return json.loads(message)
    raise TimeoutError("no status message")


def test_a_second_serial_session_is_told_the_console_is_busy_and_an_operator_can_take_over(web, rows, operator):
    _, guest, _ = rows
    cookie = cg.session_cookie(operator)
    with _serial(web, guest, cookie) as first:
        assert _next_status(first) == {"status": "connected", "forced": False}
        with _serial(web, guest, cookie) as second:
            assert _next_status(second)["code"] == "busy"
        with _serial(web, guest, cookie, force=True) as third:
            assert _next_status(third) == {"status": "connected", "forced": True}
            assert _next_status(first)["code"] == "closed"  # the first session hears it lost the console


def test_a_viewer_cannot_open_the_serial_console(web, rows, transactional_db):
    _, guest, _ = rows
    viewer = make_user("vera-viewer", "viewer")
    with pytest.raises(InvalidStatus):
        _serial(web, guest, cg.session_cookie(viewer))


def _type_rfb(ws, text: str) -> None:
    for ch in text:
        sym = 0xFF0D if ch == "\n" else ord(ch)
        for down in (1, 0):
            ws.send(bytes([4, down, 0, 0]) + struct.pack(">I", sym))


def _wait_for_shell(ws, timeout: float = 60) -> None:
    seen = b""
    deadline = time.monotonic() + timeout
    while b"# " not in seen[-200:] and time.monotonic() < deadline:
        ws.send(b"\r")
        try:
            message = ws.recv(timeout=2)
        except TimeoutError:
            continue
        seen += message if isinstance(message, bytes) else b""
    assert b"# " in seen[-200:], "the guest's shell never answered"


def _serial_output(ws, command: bytes, wait: float = 3) -> bytes:
    ws.send(command)
    out = b""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            message = ws.recv(timeout=max(0.1, deadline - time.monotonic()))
        except TimeoutError:
            break
        out += message if isinstance(message, bytes) else b""
    return out


def test_a_view_only_session_cannot_type_into_the_guest_while_a_full_one_can(web, rows, operator, transactional_db):
    _, guest, _ = rows
    viewer = make_user("vera-viewer", "viewer")
    tag = str(random.randrange(10**5, 10**6))
    operator_cookie, viewer_cookie = cg.session_cookie(operator), cg.session_cookie(viewer)
    with _serial(web, guest, operator_cookie, force=True) as serial:
        assert _next_status(serial)["status"] == "connected"
        _wait_for_shell(serial)
        status, body = cg.post_json(web.url, f"/consoles/{guest.uuid}/vnc/token", viewer_cookie, {"mode": "view"})
        assert status == 200 and body["mode"] == "view"
        with _ws(web, guest.uuid, body["token"], viewer_cookie) as ws:
            _handshake(ws)
            _type_rfb(ws, f"touch /tmp/view{tag}\n")
            _rfb_sync(ws)
        with _ws(web, guest.uuid, _token(web, guest, operator_cookie), operator_cookie) as ws:
            _handshake(ws)
            _type_rfb(ws, f"touch /tmp/full{tag}\n")
            _rfb_sync(ws)
        # tty1's shell runs the keys in the order QEMU got them: once the full session's file exists,
        # the view-only session's command would have run already, had its keys got through
        started = time.monotonic()
        listing = _ls_tmp_until(serial, f"full{tag}".encode(), timeout=20)
        print(f"full-control keys → file listed after {time.monotonic() - started:.1f} s")
    assert f"full{tag}".encode() in listing, "the full session's keys never reached the guest"
    assert f"view{tag}".encode() not in listing


def _rfb_sync(ws, timeout: float = 10) -> None:
    """Ask for a FramebufferUpdate and wait for it: the proxy relays (or, view-only, drops) a session's
    client messages in order, so everything sent before has been dealt with when the answer comes."""
    ws.send(bytes([3, 0]) + struct.pack(">HHHH", 0, 0, 1, 1))  # non-incremental, one pixel
    deadline = time.monotonic() + timeout
    while True:
        message = ws.recv(timeout=max(0.1, deadline - time.monotonic()))  # TimeoutError: no answer
        if isinstance(message, bytes) and message[:1] == b"\x00":  # FramebufferUpdate
            return


def _ls_tmp_until(serial, marker: bytes, timeout: float) -> bytes:
    """`ls /tmp/` on the serial shell, again about every second, until `marker` is listed; all output."""
    seen = b""
    deadline = time.monotonic() + timeout
    while marker not in seen and time.monotonic() < deadline:
        seen += _serial_output(serial, b"ls /tmp/\r", wait=1)
    return seen


def _web_rss_kib(web) -> int:
    master = web.processes["web"].pid
    children = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True).stdout.split()
    total = 0
    for pid in [master, *children]:
        status = Path(f"/proc/{pid}/status").read_text()
        total += int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
    return total


def test_a_browser_that_stops_reading_a_flooding_console_does_not_grow_the_servers_memory(lean_web, rows, operator):
    web = lean_web
    _, guest, _ = rows
    cookie = cg.session_cookie(operator)
    with _serial(web, guest, cookie, force=True) as ws:
        assert _next_status(ws)["status"] == "connected"
        _wait_for_shell(ws)
        before = _web_rss_kib(web)
        ws.send(b"yes 0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\r")
        time.sleep(6)  # we read nothing while the guest writes as fast as it can
        grown = _web_rss_kib(web) - before
        ws.send(b"\x03")
    print(f"web process grew by {grown} KiB")
    assert grown < 32 * 1024, f"web processes grew by {grown} KiB"


def test_a_vnc_client_that_stops_reading_does_not_grow_the_proxys_memory(lean_web, rows, operator):
    web = lean_web
    _, guest, _ = rows
    cookie = cg.session_cookie(operator)
    with connect(f"ws://127.0.0.1:{web.port}/websockify/{guest.uuid}", origin=web.url, close_timeout=2,
                 subprotocols=["binary", f"vd-token.{_token(web, guest, cookie)}"],
                 additional_headers={"Cookie": cookie}, max_size=None, max_queue=4) as ws:
        init = _handshake(ws)
        width, height = struct.unpack(">HH", init[:4])
        before = _web_rss_kib(web)
        ws.send(bytes([2, 0]) + struct.pack(">Hi", 1, 0))  # raw encoding: ~1 MiB per full update
        for _ in range(300):  # ask for ~300 MiB of screen updates and read none of them
            ws.send(bytes([3, 0]) + struct.pack(">HHHH", 0, 0, width, height))
        time.sleep(5)
        grown = _web_rss_kib(web) - before
    print(f"web processes grew by {grown} KiB")
    assert grown < 32 * 1024, f"web processes grew by {grown} KiB"


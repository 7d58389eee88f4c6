"""The websockify console tier: a real websockify process with our token plugin, real QEMU guests.

websockify runs from the Procfile's own `console:` line (our TokenPlugin and ExpectOrigin, the
site's origin as --auth-source) on a free loopback port; the web server runs with
VIRTDASH_CONSOLE_TRANSPORT=websockify so the token endpoint and the page send the browser there.
Two diskless TCG guests (SeaBIOS idles) listen for VNC on 127.0.0.1: one without a password, one
with (which the tier must refuse and the endpoint must route to the in-process proxy).
"""

from __future__ import annotations

import contextlib
import re
import socket
import ssl
import struct
import subprocess
import threading
import time

import pytest
from websockets.exceptions import InvalidHandshake, InvalidStatus
from websockets.sync.client import connect

from consoles import tokens
from consoles.targets import Target
from core import shared_redis
from hosts.virt.consoles import console_info
from tests.conftest import ARTIFACTS, TEST_PREFIX, make_user
from tests.integration import console_guests as cg
from tests.nginx_site import shipped_site
from tests.stack import VENV_BIN, Stack, free_port, wait_for_port
from virtdash.xml import Domain, Graphics, Video

URI = "qemu:///system"
PASSWORD = "vd-Pw12"
REFUSED = InvalidHandshake  # websockify refuses by failing the HTTP upgrade (no 101 response)
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


def _diskless_xml(name: str, password: str | None) -> str:
    assert name.startswith(TEST_PREFIX)
    dom = Domain.new(name, 64, 1, "qemu")
    graphics = dom.add_device(Graphics.new("vnc", listen="127.0.0.1"))
    if password:
        graphics.passwd = password
    dom.add_device(Video.new("vga"))
    return dom.to_string()


@pytest.fixture(scope="module")
def libvirt_module_conn(services):
    import libvirt

    conn = libvirt.open(URI)
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def guests(libvirt_module_conn):
    """(plain, locked): running diskless guests, VNC without and with a password."""
    stamp = int(time.time() * 1000) % 10**8
    names = [f"{TEST_PREFIX}wsfy-plain-{stamp}", f"{TEST_PREFIX}wsfy-locked-{stamp}"]
    doms = []
    try:
        for name, password in zip(names, (None, PASSWORD), strict=True):
            dom = libvirt_module_conn.defineXML(_diskless_xml(name, password))
            dom.create()
            doms.append(dom)
        yield tuple(doms)
    finally:
        for name in names:
            cg.destroy(libvirt_module_conn, name)


@pytest.fixture(scope="module")
def ports():
    return {"web": free_port(), "tier": free_port(), "nginx": free_port()}


@pytest.fixture(scope="module")
def servers(services, django_db_setup, ports):
    """The web server (transport: websockify) and the websockify tier, as the Procfile runs them."""
    running = Stack(port=ports["web"])
    running.start("web", [str(VENV_BIN / "uvicorn"), "virtdash.asgi:application", "--host", "127.0.0.1",
                          "--port", str(ports["web"]), "--workers", "1", "--no-access-log"],
                  VIRTDASH_CONSOLE_TRANSPORT="websockify",
                  VIRTDASH_WEBSOCKIFY_URL=f"ws://127.0.0.1:{ports['tier']}/")
    # The site's origins, space-separated: the web server itself and the nginx TLS site in front.
    start_tier(running, "websockify", ports["tier"], origin=f"{running.url} https://127.0.0.1:{ports['nginx']}")
    wait_for_port(ports["web"], 30)
    wait_for_port(ports["tier"], 30)
    yield running
    running.stop_all()


def procfile_console_line() -> str:
    (line,) = [row for row in (cg.REPO / "Procfile").read_text().splitlines() if row.startswith("console:")]
    return line.partition(":")[2].strip()


def start_tier(stack: Stack, name: str, port: int, origin: str, **env: str) -> subprocess.Popen:
    """The Procfile's own `console:` command, through a shell as honcho runs it."""
    command = procfile_console_line().replace(".venv/bin/python", str(VENV_BIN / "python"), 1)
    return stack.start(name, ["/bin/sh", "-c", command], VIRTDASH_WEBSOCKIFY_PORT=str(port),
                       VIRTDASH_PUBLIC_ORIGIN=origin, **env)


@pytest.fixture
def rows(transactional_db, guests):
    from guests.models import Guest

    host, found = cg.inventory_rows(URI, guests)
    other = Guest.objects.create(host=host, uuid="bbbbbbbb-0000-4000-8000-00000000000c", name="vdtest-wsfy-other",
                                 state="running", graphics="vnc")
    return host, found[0], found[1], other


@pytest.fixture
def operator(transactional_db):
    return make_user("oscar-operator", "operator")


def _open(ports, token: str, servers, query: str = "", path: str = ""):
    return connect(f"ws://127.0.0.1:{ports['tier']}/{path}?token={token}{query}", origin=servers.url,
                   subprotocols=["binary"], open_timeout=10, close_timeout=2)


def _server_init(ws) -> bytes:
    """RFB as noVNC speaks it to a VNC server without a password, up to QEMU's ServerInit."""
    assert ws.recv(timeout=10) == b"RFB 003.008\n"
    ws.send(b"RFB 003.008\n")
    assert ws.recv(timeout=10) == b"\x01\x01"  # QEMU itself offers security None (no password)
    ws.send(b"\x01")
    assert ws.recv(timeout=10) == b"\x00\x00\x00\x00"
    ws.send(b"\x01")
    return ws.recv(timeout=10)


def _endpoint_token(servers, guest, cookie, mode="full") -> dict:
    status, body = cg.post_json(servers.url, f"/consoles/{guest.uuid}/vnc/token", cookie, {"mode": mode})
    assert status == 200, body
    return body


def _grant_token(host, guest, user, target: Target, ttl: int | None = None, **kw) -> str:
    return tokens.issue(tokens.ConsoleGrant(user_id=user.pk, guest_uuid=guest.uuid, host_id=host.pk, mode="full",
                                            target=target, **kw), ttl=ttl)


def _audit(guest_uuid: str, result: str | None = None):
    from core.models import AuditEntry

    entries = AuditEntry.objects.filter(action="console.vnc", target_id=guest_uuid,
                                        detail__startswith="websockify tier")
    return list(entries.filter(result=result) if result else entries)


def _wait_audit(guest_uuid: str, result: str, timeout: float = 5):
    return cg.wait_for(lambda: _audit(guest_uuid, result), timeout)


def test_a_valid_token_reaches_the_guests_vnc_server_through_websockify_and_is_audited(servers, ports, rows,
                                                                                         operator):
    _, plain, _, _ = rows
    grant = _endpoint_token(servers, plain, cg.session_cookie(operator))
    assert grant["transport"] == "websockify" and grant["url"] == f"ws://127.0.0.1:{ports['tier']}/"
    with _open(ports, grant["token"], servers) as ws:
        init = _server_init(ws)
    width, height = struct.unpack(">HH", init[:4])
    assert width > 0 and height > 0 and plain.name.encode() in init  # QEMU's ServerInit names the guest
    (entry,) = _wait_audit(plain.uuid, "ok")
    assert entry.actor_id == operator.pk and "session opened" in entry.detail and "127.0.0.1:" in entry.detail


def test_a_reused_token_is_refused_and_audited(servers, ports, rows, operator):
    _, plain, _, _ = rows
    token = _endpoint_token(servers, plain, cg.session_cookie(operator))["token"]
    with _open(ports, token, servers) as ws:
        assert ws.recv(timeout=10) == b"RFB 003.008\n"
    with pytest.raises(REFUSED):
        _open(ports, token, servers)
    from core.models import AuditEntry

    refused = cg.wait_for(
        lambda: AuditEntry.objects.filter(detail__contains="already used", result="denied").first(), 5)
    assert refused.detail.startswith("websockify tier")


def test_an_expired_token_is_refused(servers, ports, rows, operator):
    host, plain, _, _ = rows
    port = console_info(URI, plain.uuid).first("vnc").port
    token = _grant_token(host, plain, operator, Target("127.0.0.1", port), ttl=1)
    time.sleep(1.3)
    with pytest.raises(REFUSED):
        _open(ports, token, servers)
    assert not _audit(plain.uuid, "ok")
    from core.models import AuditEntry

    assert cg.wait_for(lambda: AuditEntry.objects.filter(detail__contains="unknown, expired", result="denied",
                                                         detail__startswith="websockify tier").exists(), 5)


class _Canary:
    """A TCP listener that records every connection (a target nobody's token names)."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.sendall(b"RFB 003.008\n")
            conn.close()

    def close(self):
        self.sock.close()


def test_the_target_comes_only_from_the_token_never_from_the_client(servers, ports, rows, operator):
    host, plain, _, other = rows
    canary = _Canary()
    try:
        cookie = cg.session_cookie(operator)
        # A client naming another target (query or path) still reaches only the guest its token names.
        for query, path in ((f"&host=127.0.0.1&port={canary.port}", ""),
                            (f"&target=127.0.0.1:{canary.port}", f"127.0.0.1:{canary.port}")):
            with _open(ports, _endpoint_token(servers, plain, cookie)["token"], servers, query=query, path=path) as ws:
                assert plain.name.encode() in _server_init(ws)
        assert canary.connections == 0
        # A token for another guest reaches that guest's bound target, not the guest named in the URL.
        token = _grant_token(host, other, operator, Target("127.0.0.1", canary.port))
        with _open(ports, token, servers, path=plain.uuid) as ws:
            assert ws.recv(timeout=10) == b"RFB 003.008\n"
        assert canary.connections == 1
        assert _wait_audit(other.uuid, "ok")[0].detail.endswith(" s") and len(_audit(plain.uuid, "ok")) == 2
    finally:
        canary.close()


def test_a_foreign_or_missing_origin_is_refused_and_burns_the_token(servers, ports, rows, operator):
    _, plain, _, _ = rows
    cookie = cg.session_cookie(operator)
    spent = []
    for origin in ("http://evil.example", None):
        spent.append(_endpoint_token(servers, plain, cookie)["token"])
        with pytest.raises(InvalidStatus) as refused:
            connect(f"ws://127.0.0.1:{ports['tier']}/?token={spent[-1]}", origin=origin, subprotocols=["binary"],
                    open_timeout=10)
        assert refused.value.response.status_code == 403
    denied = cg.wait_for(lambda: len(_audit(plain.uuid, "denied")) == 2 and _audit(plain.uuid, "denied"), 5)
    assert all("Origin" in entry.detail and entry.actor_id == operator.pk for entry in denied)
    for token in spent:  # websockify looked the token up before checking the Origin: it is spent
        with pytest.raises(REFUSED):
            _open(ports, token, servers)
    assert not _audit(plain.uuid, "ok")


def test_a_password_protected_guest_is_routed_in_process_and_the_tier_refuses_its_token(servers, ports, rows,
                                                                                       operator):
    host, _, locked, _ = rows
    grant = _endpoint_token(servers, locked, cg.session_cookie(operator))
    assert grant["transport"] == "inprocess" and "password" in grant["fallback"]
    with pytest.raises(REFUSED):  # the tier cannot answer QEMU's VNC password, so it never tries
        _open(ports, grant["token"], servers)
    (denied,) = _wait_audit(locked.uuid, "denied")
    assert "password-protected" in denied.detail


def test_view_only_tokens_stay_in_process(servers, rows, transactional_db):
    _, plain, _, _ = rows
    viewer = make_user("vera-viewer", "viewer")
    grant = _endpoint_token(servers, plain, cg.session_cookie(viewer), mode="view")
    assert grant["transport"] == "inprocess" and grant["path"] == f"/websockify/{plain.uuid}"


def test_the_tier_survives_redis_being_down_and_serves_once_it_is_back(servers, rows, operator, monkeypatch):
    import redis

    host, plain, _, _ = rows
    redis_port, tier_port = free_port(), free_port()
    url = f"redis://127.0.0.1:{redis_port}/0"
    tier = start_tier(servers, "websockify-no-redis", tier_port, servers.url, REDIS_URL=url)
    wait_for_port(tier_port, 30)
    vnc = Target("127.0.0.1", console_info(URI, plain.uuid).first("vnc").port)
    with pytest.raises(REFUSED):
        _open({"tier": tier_port}, "x" * 43, servers)
    assert tier.poll() is None
    failed = cg.wait_for(lambda: _audit_failed(), 5)
    assert "token check failed" in failed.detail
    server = subprocess.Popen(["redis-server", "--bind", "127.0.0.1", "--port", str(redis_port), "--save", "",
                               "--appendonly", "no"], stdout=subprocess.DEVNULL)
    try:
        wait_for_port(redis_port, 10)
        monkeypatch.setattr(shared_redis, "_client", redis.Redis.from_url(url))  # this process issues the token there
        with _open({"tier": tier_port}, _grant_token(host, plain, operator, vnc), servers) as ws:
            assert plain.name.encode() in _server_init(ws)
    finally:
        server.terminate()
        server.wait(5)
        servers.stop("websockify-no-redis")


def _audit_failed():
    from core.models import AuditEntry

    return AuditEntry.objects.filter(action="console.vnc", result="failed",
                                     detail__startswith="websockify tier").first()


def test_the_console_page_connects_through_the_websockify_tier(servers, ports, rows, operator, monkeypatch):
    from playwright.sync_api import sync_playwright

    from tests.stack import chromium_path

    _, plain, _, _ = rows
    cookie = cg.session_cookie(operator).partition("=")[2]
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's loop owns this thread
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context()
            context.add_cookies([{"name": "sessionid", "value": cookie, "url": servers.url}])
            page = context.new_page()
            sockets = []
            page.on("websocket", lambda ws: sockets.append(ws.url))
            page.goto(f"{servers.url}/consoles/{plain.uuid}/vnc/")
            page.wait_for_function("document.getElementById('console-status').textContent === 'Connected'",
                                   timeout=15000)
            ARTIFACTS.joinpath("screenshots").mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "screenshots" / "console-websockify-tier.png"))
        finally:
            browser.close()
    assert any(url.startswith(f"ws://127.0.0.1:{ports['tier']}/?token=") for url in sockets), sockets
    assert not any("/websockify/" in url for url in sockets)
    assert _wait_audit(plain.uuid, "ok")


@pytest.fixture
def nginx(servers, ports):
    """nginx with TLS: the shipped site config plus the shipped websockify-tier location, uncommented."""
    snippet = (cg.REPO / "deploy" / "nginx" / "websockify-tier.conf.example").read_text()
    location = "\n".join(line[1:] for line in snippet.splitlines() if line.startswith("#location") or
                         re.match(r"#(    |})", line))
    assert location.startswith("location /websockify-tier/ {") and location.endswith("}")
    location = location.replace("127.0.0.1:6080", f"127.0.0.1:{ports['tier']}")
    with shipped_site(ports["web"], port=ports["nginx"], extra_location=location) as site:
        yield site


def test_the_tier_works_behind_nginx_with_the_shipped_location_and_keeps_tokens_out_of_its_log(nginx, servers,
                                                                                             rows, operator):
    _, plain, _, _ = rows
    site, tmp = nginx
    token = _endpoint_token(servers, plain, cg.session_cookie(operator))["token"]
    insecure = ssl.create_default_context()
    insecure.check_hostname, insecure.verify_mode = False, ssl.CERT_NONE  # the test's self-signed certificate
    url = site.replace("https:", "wss:") + "/websockify-tier/?token="
    with connect(url + token, origin=site, subprotocols=["binary"], ssl=insecure, open_timeout=10) as ws:
        assert plain.name.encode() in _server_init(ws)
    with pytest.raises(InvalidStatus) as refused:  # the browser's Origin passes through nginx to ExpectOrigin
        connect(url + _endpoint_token(servers, plain, cg.session_cookie(operator))["token"],
                origin="https://evil.example", subprotocols=["binary"], ssl=insecure, open_timeout=10)
    assert refused.value.response.status_code == 403
    import urllib.request

    with urllib.request.urlopen(f"{site}/healthz", context=insecure, timeout=10) as response:
        assert response.status == 200  # the site's own rule still serves (and logs) the pages
    log = cg.wait_for(lambda: (tmp / "access.log").exists() and (tmp / "access.log").read_text(), 5)
    assert "/healthz" in log and token not in log and "websockify-tier" not in log


def test_revoking_the_permission_closes_an_open_tier_console_within_seconds(servers, ports, rows, operator):
    from websockets.exceptions import ConnectionClosed

    _, plain, _, _ = rows
    with _open(ports, _endpoint_token(servers, plain, cg.session_cookie(operator))["token"], servers) as ws:
        _server_init(ws)
        operator.groups.clear()
        started = time.monotonic()
        with pytest.raises(ConnectionClosed):
            while time.monotonic() - started < 15:
                ws.recv(timeout=15)
        assert time.monotonic() - started < 12  # re-checked every VIRTDASH_CONSOLE_RECHECK_SECONDS (5)


def test_the_per_user_session_cap_counts_tier_sessions(servers, ports, rows, operator):
    from consoles import conf

    _, plain, _, _ = rows
    cookie = cg.session_cookie(operator)
    with contextlib.ExitStack() as opened:
        for _ in range(conf.MAX_SESSIONS_PER_USER):
            ws = opened.enter_context(_open(ports, _endpoint_token(servers, plain, cookie)["token"], servers))
            assert ws.recv(timeout=10) == b"RFB 003.008\n"
        with pytest.raises(InvalidStatus) as refused:
            _open(ports, _endpoint_token(servers, plain, cookie)["token"], servers)
        assert refused.value.response.status_code == 403
        assert any("console sessions open" in entry.detail for entry in _wait_audit(plain.uuid, "denied"))
    # Closed sessions give their places back (released when each session's process ends).
    cg.wait_for(lambda: shared_redis.client().zcard(f"vd:console:sessions:{operator.pk}") == 0, 10)
    with _open(ports, _endpoint_token(servers, plain, cookie)["token"], servers) as ws:
        assert ws.recv(timeout=10) == b"RFB 003.008\n"

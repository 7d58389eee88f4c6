"""Operator journeys in Chromium: the VNC and serial consoles of a real tiny guest, directly and
through nginx with TLS in front (the shipped generic site config, nothing console-specific).

What is typed into the VNC console is proven on the guest itself: the serial shell greps the
text screen of tty1 (/dev/vcs1), which is what the VNC console shows.
"""

from __future__ import annotations

import random
import re
import time

import pytest

from tests.conftest import REPO, TEST_PREFIX, make_user
from tests.e2e.conftest import CHROMIUM_ARGS, login, screenshot  # noqa: F401
from tests.integration import console_guests as cg
from tests.nginx_site import shipped_site
from tests.stack import VENV_BIN, Stack, free_port, wait_for_port

URI = "qemu:///system"

SERIAL_TEXT = """() => {
  const b = window.virtdashSerial.term.buffer.active; const out = [];
  for (let i = 0; i < b.length; i++) out.push(b.getLine(i).translateToString(true));
  return out.join("\\n");
}"""


@pytest.fixture(scope="module")
def web(services, django_db_setup):
    running = Stack(port=free_port())
    # Behind the TLS proxy Django must trust X-Forwarded-Proto (deploy/nginx/virtdash.conf says so).
    running.start("web", [str(VENV_BIN / "uvicorn"), "virtdash.asgi:application", "--host", "127.0.0.1",
                          "--port", str(running.port), "--workers", "2", "--no-access-log", "--proxy-headers"],
                  SECURE_PROXY_SSL_HEADER="1")
    wait_for_port(running.port, 30)
    yield running
    running.stop_all()


@pytest.fixture(scope="module")
def tiny(services):
    import libvirt

    cg.ensure_tiny_guest()
    conn = libvirt.open(URI)
    name = f"{TEST_PREFIX}e2e-{random.randrange(10**8)}"
    dom = cg.define_and_start(conn, name)
    yield dom
    cg.destroy(conn, name)
    conn.close()


@pytest.fixture
def operator(transactional_db, tiny):
    cg.inventory_rows(URI, [tiny])
    return make_user("oscar-operator", "operator")


@pytest.fixture(scope="module")
def nginx(web):
    """nginx in the foreground on a free loopback port, TLS with a throw-away self-signed cert."""
    site = (REPO / "deploy" / "nginx" / "virtdash.conf").read_text()
    assert "websockify" not in site.split("location / {")[1]  # no console-specific rule
    with shipped_site(web.port) as running:
        yield running


def _serial_lines(tab) -> list[str]:
    return [line.rstrip() for line in tab.evaluate(SERIAL_TEXT).split("\n")]


def _serial_command(tab, command: str, expect, timeout: float = 30) -> list[str]:
    tab.locator("#serial-screen .xterm").click()
    tab.keyboard.type(command)
    tab.keyboard.press("Enter")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = _serial_lines(tab)
        if expect(lines):
            return lines
        time.sleep(0.3)
    raise AssertionError(f"serial console never showed the expected output of {command!r}:\n" +
                         "\n".join(_serial_lines(tab)[-15:]))


def _open_serial(tab, base, guest_uuid):
    tab.goto(f"{base}/consoles/{guest_uuid}/serial/")
    tab.wait_for_function("() => document.getElementById('console-status').textContent.startsWith('Connected')",
                          timeout=20000)
    # Wait for the shell (the guest may still be booting): the page sends Enter on connect.
    _serial_command(tab, "", lambda lines: any(re.search(r"# ?$", line) for line in lines), timeout=60)


def _journey(page, base: str, guest, tag: str) -> None:
    digits = str(random.randrange(10**5, 10**6))
    serial = page.context.new_page()
    _open_serial(serial, base, guest.uuid)
    lines = _serial_command(serial, "echo serial-$((6*7))", lambda ls: "serial-42" in ls)
    assert "serial-42" in lines
    screenshot(serial, f"console-serial-{tag}")

    page.goto(f"{base}/consoles/{guest.uuid}/vnc/")
    page.wait_for_function("() => document.getElementById('console-status').textContent.startsWith('Connected')",
                           timeout=20000)
    canvas = page.locator("#vnc-screen canvas")
    canvas.click()
    time.sleep(0.5)
    page.keyboard.type(f"echo vd-{digits}")  # unshifted only: noVNC sends raw key codes
    page.keyboard.press("Enter")
    time.sleep(1.5)
    screenshot(page, f"console-vnc-{tag}")
    # tty1's screen text (what VNC shows) holds the typed command and its echo.
    seen = _serial_command(serial, f"grep -o vd-{digits} /dev/vcs1",
                           lambda ls: ls.count(f"vd-{digits}") >= 2)
    assert seen.count(f"vd-{digits}") >= 2
    if tag == "direct":
        # "Paste text" types shifted characters too (Shift is pressed for them).
        page.click("#vnc-paste-toggle")
        page.fill("#vnc-paste-text", f"echo PASTE-$(({digits}+1))\n")
        page.click("#vnc-paste-send")
        expected = f"PASTE-{int(digits) + 1}"
        time.sleep(1)
        screenshot(page, "console-vnc-paste")
        for attempt in range(5):  # the typing may still be under way: look again
            try:
                _serial_command(serial, "grep -o PASTE-[0-9]* /dev/vcs1", lambda ls: expected in ls, timeout=3)
                break
            except AssertionError:
                if attempt == 4:
                    raise
        # The send-keys menu: Ctrl+Alt+F2 switches the guest to its second virtual terminal
        # (allocated first: the kernel ignores a switch to a terminal nobody opened).
        _serial_command(serial, "openvt -c 2 sleep 300; echo opened", lambda ls: "opened" in ls, timeout=10)
        page.click("#vnc-keys summary")
        page.click("[data-fkey='2']")
        _serial_command(serial, "cat /sys/class/tty/tty0/active", lambda ls: "tty2" in ls, timeout=10)
        page.click("#vnc-keys summary")
        page.click("[data-fkey='1']")
        _serial_command(serial, "cat /sys/class/tty/tty0/active", lambda ls: "tty1" in ls, timeout=10)
    serial.close()


def test_an_operator_uses_the_vnc_and_serial_consoles(page, web, tiny, operator):
    from guests.models import Guest

    guest = Guest.objects.get(uuid=tiny.UUIDString())
    login(page, web.url, "oscar-operator")
    _journey(page, web.url, guest, "direct")


def test_the_consoles_work_through_nginx_with_tls(browser, web, nginx, tiny, operator):
    from guests.models import Guest

    base, _ = nginx
    guest = Guest.objects.get(uuid=tiny.UUIDString())
    context = browser.new_context(viewport={"width": 1360, "height": 860}, ignore_https_errors=True)
    context.set_default_timeout(15000)
    page = context.new_page()
    try:
        login(page, base, "oscar-operator")
        _journey(page, base, guest, "nginx-tls")
    finally:
        context.close()


def test_a_viewer_watches_a_view_only_console(page, web, tiny, operator):
    from guests.models import Guest

    make_user("vera-viewer", "viewer")
    guest = Guest.objects.get(uuid=tiny.UUIDString())
    login(page, web.url, "vera-viewer")
    page.goto(f"{web.url}/consoles/{guest.uuid}/vnc/")
    page.wait_for_function("() => document.getElementById('console-status').textContent === 'Connected (view only)'",
                           timeout=20000)
    assert page.locator(".badge", has_text="view only").is_visible()
    assert page.locator("#vnc-cad").count() == 0 and page.locator("#vnc-paste-toggle").count() == 0
    assert page.locator("a", has_text="Serial console").count() == 0
    time.sleep(1)
    screenshot(page, "console-vnc-view-only")


def test_a_stopped_guest_says_so_instead_of_a_blank_console(page, web, operator, services):
    import libvirt

    from guests.models import Guest

    conn = libvirt.open(URI)
    name = f"{TEST_PREFIX}off-{random.randrange(10**8)}"
    dom = conn.defineXML(cg.tiny_guest_xml(name))
    try:
        host = Guest.objects.get(uuid__isnull=False, name__startswith=f"{TEST_PREFIX}e2e-").host
        guest = Guest.objects.create(host=host, uuid=dom.UUIDString(), name=name, state="shutoff")
        login(page, web.url, "oscar-operator")
        page.goto(f"{web.url}/consoles/{guest.uuid}/vnc/")
        assert "The guest is not running" in page.locator("#console-problem").inner_text()
        assert not page.locator("#vnc-screen canvas").count()
        screenshot(page, "console-vnc-not-running")
    finally:
        cg.destroy(conn, name)
        conn.close()

"""Helpers for the console tests: a tiny real guest, a web server, logged-in HTTP and WebSockets.

The guest is scripts/build-tiny-guest.sh's kernel + BusyBox initramfs, booted directly, TCG,
96 MiB, no NIC, VNC on 127.0.0.1 (autoport, with a password the user never types), serial pty.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import time
import urllib.request
from pathlib import Path

from tests.conftest import REPO, TEST_PREFIX
from virtdash.xml import Console, Domain, Graphics, Serial, Video

TINY_DIR = Path("/var/cache/virtdash/tiny-guest")
VNC_PASSWORD = "vd-Pw12"


def ensure_tiny_guest() -> Path:
    subprocess.run([str(REPO / "scripts" / "build-tiny-guest.sh"), str(TINY_DIR)], check=True,
                   stdout=subprocess.DEVNULL)
    return TINY_DIR


def tiny_guest_xml(name: str, *, password: str | None = VNC_PASSWORD, graphics_type: str = "vnc") -> str:
    assert name.startswith(TEST_PREFIX)
    dom = Domain.new(name, 96, 1, "qemu")
    dom.kernel, dom.initrd = str(TINY_DIR / "vmlinuz"), str(TINY_DIR / "initrd.gz")
    dom.cmdline = "console=tty0 console=ttyS0"
    dom.boot_devs = []
    dom.add_device(Serial.new("pty"))
    dom.add_device(Console.new("pty", "serial"))
    graphics = dom.add_device(Graphics.new(graphics_type, listen="127.0.0.1"))
    if password:
        graphics.passwd = password
    dom.add_device(Video.new("vga"))
    return dom.to_string()


def define_and_start(conn, name: str, **kw):
    dom = conn.defineXML(tiny_guest_xml(name, **kw))
    dom.create()
    return dom


def destroy(conn, name: str) -> None:
    import libvirt

    assert name.startswith(TEST_PREFIX)
    try:
        dom = conn.lookupByName(name)
    except libvirt.libvirtError:
        return
    if dom.isActive():
        dom.destroy()
    dom.undefine()


def inventory_rows(uri: str, doms):
    """The Host and Guest rows the inventory would hold (the watcher is not needed here)."""
    from guests.models import Guest
    from hosts.models import Host

    host, _ = Host.objects.get_or_create(uri=uri, defaults={"name": "local"})
    rows = [Guest.objects.get_or_create(host=host, uuid=d.UUIDString(),
                                        defaults={"name": d.name(), "state": "running", "graphics": "vnc"})[0]
            for d in doms]
    return host, rows


def session_cookie(user) -> str:
    from django.test import Client

    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


def post_json(base: str, path: str, cookie: str, body: dict, origin: str | None = None) -> tuple[int, dict]:
    csrf = secrets.token_hex(16)
    request = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST", headers={
        "Content-Type": "application/json", "Cookie": f"{cookie}; csrftoken={csrf}", "X-CSRFToken": csrf,
        "Origin": origin or base})
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def wait_for(predicate, timeout: float, step: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise TimeoutError("condition not met in time")

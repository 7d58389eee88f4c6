"""An admin trusts a qemu+ssh host's SSH host key in Chromium, and the watched host connects.

The host is this machine's libvirtd behind a private sshd (tests/ssh_host.py). VirtDash's
processes use a known_hosts in tmp_path (VIRTDASH_SSH_KNOWN_HOSTS), never root's ~/.ssh.
"""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess
import time

import pytest

from tests.conftest import ARTIFACTS, TEST_PREFIX, make_user
from tests.e2e.conftest import login, screenshot
from tests.stack import Stack, free_port, wait_until

ssh_host = pytest.importorskip("tests.ssh_host")
pytestmark = pytest.mark.skipif(not ssh_host.available(), reason="openssh-server is not installed")


@pytest.fixture
def defined_guest(services):
    """An inactive guest (never started): it enters the inventory once the watcher reaches the host."""
    import libvirt

    from virtdash.xml import Domain

    conn = libvirt.open("qemu:///system")
    dom = conn.defineXML(Domain.new(f"{TEST_PREFIX}sshkey-{secrets.token_hex(3)}", 64, 1, "qemu").to_string())
    yield dom
    dom.undefine()
    conn.close()


def _fingerprint(pub) -> str:
    return subprocess.run(["ssh-keygen", "-lf", str(pub)], capture_output=True, text=True, check=True).stdout.split()[1]


def _log_since(offset: int) -> str:
    with open(ARTIFACTS / "logs" / "watcher.log", "rb") as handle:
        handle.seek(offset)
        return handle.read().decode("utf-8", "replace")


def test_an_admin_trusts_an_unknown_host_key_and_the_host_connects(page, sshd, defined_guest, transactional_db,
                                                                   tmp_path):
    from guests.models import Guest
    from hosts import services
    from hosts.models import Host

    log = ARTIFACTS / "logs" / "watcher.log"
    offset = log.stat().st_size if log.exists() else 0
    known_hosts = tmp_path / "known_hosts"
    running = Stack(port=free_port(), env=sshd.env(known_hosts=known_hosts))
    running.start_watcher()
    running.start_web()
    try:
        admin = make_user("alice-admin", "admin", is_staff=True, is_superuser=True)
        name = f"kvm-keys-{secrets.token_hex(3)}"
        host = services.create_host(admin, name=name, uri=sshd.uri())
        wait_until(lambda: "no host key for" in Host.objects.get(pk=host.pk).last_error, 20,
                   message="the watcher's unknown-key error")

        login(page, running.url, "alice-admin")
        page.goto(f"{running.url}/hosts/{host.pk}/")
        error = page.locator("[data-field=last-error]").inner_text()
        assert "SSH host key verification failed: no host key for" in error
        page.click("text=Trust this host's key…")
        page.wait_for_url(f"**/hosts/{host.pk}/ssh-host-key/")
        assert page.locator("[data-field=fingerprint]").count() == 0  # opening the page scans nothing
        assert "on this server only" in page.locator("[data-field=this-server-only]").inner_text()
        page.click("button:has-text(\"Scan the host's keys\")")
        page.wait_for_selector("[data-field=fingerprint]")
        shown = page.locator("[data-field=fingerprint]").all_inner_texts()
        assert shown == [_fingerprint(sshd.folder / "host.pub")]
        assert page.locator("[data-field=pattern]").inner_text() == f"[127.0.0.1]:{sshd.port}"
        screenshot(page, "ssh-host-key-trust")

        # Let the watcher back off for long (16 s) so a prompt reconnection is the nudge, not the timer.
        wait_until(lambda: re.search(rf"{name} unreachable .*retrying in 16 s", _log_since(offset)), 40,
                   interval=0.5, message="the watcher backing off for 16 s")
        started = time.monotonic()
        page.click("button:has-text('Trust this key')")
        page.wait_for_url(f"**/hosts/{host.pk}/")
        said = page.locator(".msg-success").inner_text()
        assert f"{name} is connected from this server." in said
        assert f"This updated {known_hosts} on this server only; machines that also reach this host" in said
        assert page.locator("[data-status=connected]").first.is_visible()
        assert page.locator("[data-field=trust-key]").count() == 0
        wait_until(lambda: Guest.objects.filter(host=host, uuid=defined_guest.UUIDString()).exists(), 14,
                   message="the watcher's inventory of the host")
        reconnected = time.monotonic() - started
        kind, blob = (sshd.folder / "host.pub").read_text().split()[:2]
        assert known_hosts.read_text() == f"[127.0.0.1]:{sshd.port} {kind} {blob}\n"
        screenshot(page, "ssh-host-key-trusted-connected")
        print(f"\nhost key trusted: connected page and watcher inventory {reconnected:.1f} s after the click "
              "(the watcher's back-off had 16 s to run)")
        assert reconnected < 12  # well inside the 16 s back-off: the nudge, not the retry (2.7 s measured)
    finally:
        running.stop_all()


def test_an_admin_replaces_a_changed_host_key_from_the_add_form_after_typing_the_host_name(page, sshd,
                                                                                         transactional_db, tmp_path):
    from hosts.models import Host

    known_hosts = tmp_path / "known_hosts"
    shutil.copy(sshd.wrong_known_hosts, known_hosts)
    running = Stack(port=free_port(), env=sshd.env(known_hosts=known_hosts))
    running.start_web()
    try:
        make_user("alice-admin", "admin", is_staff=True, is_superuser=True)
        login(page, running.url, "alice-admin")
        page.goto(f"{running.url}/hosts/add/")
        page.fill("#id_name", "kvm-reinstalled")
        page.fill("#id_uri", sshd.uri())
        page.click("button[name=test]")
        # "Test connection" says what is wrong, at once (this server's known_hosts has another key)
        message = page.locator(".msg-error").inner_text()
        assert "SSH host key verification failed" in message and "has changed" in message, message
        screenshot(page, "ssh-host-key-changed")
        page.click("text=Trust this host's key…")
        page.wait_for_url(re.compile(r"/hosts/ssh-host-key/\?uri="))
        assert page.locator("[data-field=pattern]").inner_text() == f"[127.0.0.1]:{sshd.port}"
        page.click("button:has-text(\"Scan the host's keys\")")
        warning = page.locator("[data-field=changed-warning]")
        assert "has changed" in warning.inner_text()
        assert page.locator("[data-field=old-fingerprint]").inner_text() == _fingerprint(sshd.folder / "other.pub")
        assert page.locator("[data-field=fingerprint]").inner_text() == _fingerprint(sshd.folder / "host.pub")
        screenshot(page, "ssh-host-key-changed-warning")
        page.fill("#id_confirm", "127.0.0.1")
        page.click("button:has-text('Replace the host key')")
        page.wait_for_url(re.compile(r"/hosts/add/\?uri="))
        said = page.locator(".msg-success").inner_text()
        assert f"Replaced the key of [127.0.0.1]:{sshd.port}" in said and "From this server: Connected: QEMU" in said
        assert page.locator("#id_uri").input_value() == sshd.uri()
        assert page.locator("#id_name").input_value() == "kvm-reinstalled"
        assert (sshd.folder / "other.pub").read_text().split()[1] not in known_hosts.read_text()
        assert not Host.objects.exists()  # trusting a key adds no host
    finally:
        running.stop_all()

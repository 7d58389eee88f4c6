"""An admin adds a qemu+ssh host in Chromium and uses its guest's consoles through ssh.

The "remote" host is this machine's libvirtd behind a private sshd (tests/ssh_host.py); the web
server and watcher use its key and known_hosts through VIRTDASH_SSH_KEY / VIRTDASH_SSH_KNOWN_HOSTS.
The serial console runs over libvirt's ssh connection, the VNC console through `ssh -W`.
"""

from __future__ import annotations

import pytest

from tests.conftest import make_user
from tests.e2e.conftest import login, screenshot
from tests.e2e.test_console_e2e import _journey
from tests.stack import Stack, free_port, wait_until

ssh_host = pytest.importorskip("tests.ssh_host")
pytestmark = pytest.mark.skipif(not ssh_host.available(), reason="openssh-server is not installed")


@pytest.fixture(scope="module")
def guests(services):
    import libvirt

    conn = libvirt.open("qemu:///system")
    with ssh_host.console_guests(conn, "e2essh") as found:
        yield found
    conn.close()


@pytest.fixture
def ssh_stack(sshd, transactional_db):
    running = Stack(port=free_port(), env=sshd.env())
    running.start_watcher()
    running.start_web()
    yield running
    running.stop_all()


def _row(host, dom):
    from guests.models import Guest

    return wait_until(lambda: Guest.objects.filter(host=host, uuid=dom.UUIDString()).first(), 20,
                      message=f"{dom.name()} in the inventory")


def test_an_admin_adds_a_qemu_ssh_host_and_opens_its_guests_consoles(page, sshd, guests, ssh_stack):
    from hosts.models import Host

    make_user("alice-admin", "admin", is_staff=True, is_superuser=True)
    login(page, ssh_stack.url, "alice-admin")
    page.goto(f"{ssh_stack.url}/hosts/add/")
    page.fill("#id_name", "kvm-over-ssh")
    page.fill("#id_uri", sshd.uri())
    page.click("button[name=test]")
    assert page.locator(".msg", has_text="Connected: QEMU").is_visible()
    page.click("button[name=save]")
    page.wait_for_url("**/hosts/*/")
    assert page.locator("[data-status=connected]").first.is_visible()
    screenshot(page, "ssh-host-detail")
    host = Host.objects.get(uri=sshd.uri())

    # Serial over libvirt's ssh connection, VNC through the proxy's ssh -W tunnel; what is typed
    # on the VNC console is read back from the guest's tty1 through the serial console.
    _journey(page, ssh_stack.url, _row(host, guests["tiny"]), "qemu-ssh")

    # A display the host's sshd will not forward to: noVNC shows why.
    other = _row(host, guests["other_address"])
    page.goto(f"{ssh_stack.url}/consoles/{other.uuid}/vnc/")
    error = page.locator("#console-error")
    error.filter(has_text="The SSH tunnel to the host failed").wait_for(timeout=20000)
    assert "administratively prohibited" in error.inner_text()
    screenshot(page, "ssh-host-vnc-tunnel-refused")

    # A display on a UNIX socket of the host: the page says so before trying.
    sock = _row(host, guests["socket"])
    page.goto(f"{ssh_stack.url}/consoles/{sock.uuid}/vnc/")
    problem = page.locator("#console-problem")
    assert "The guest's graphics are unreachable: The display listens on a UNIX socket" in problem.inner_text()
    screenshot(page, "ssh-host-vnc-unix-socket")

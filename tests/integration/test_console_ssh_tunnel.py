"""Guests on qemu+ssh hosts: the proxy reaches their loopback VNC through `ssh -W`.

A throw-away sshd on a loopback port stands in for the remote host (skipped when sshd is not
installed); the tunnel must verify the host key, use the service account's key, and carry
a real QEMU VNC session including the password handshake.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from consoles import conf, rfb
from consoles.targets import Target, resolve
from consoles.tunnel import open_link
from hosts.virt.consoles import console_info
from tests.conftest import TEST_PREFIX
from tests.integration import console_guests as cg
from tests.stack import free_port, wait_for_port

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
pytestmark = pytest.mark.skipif(not Path(SSHD).exists(), reason="openssh-server is not installed")


@pytest.fixture(scope="module")
def sshd():
    tmp = Path(tempfile.mkdtemp(prefix="vdtest-sshd-"))
    for name in ("host", "client"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp / name)], check=True)
    (tmp / "authorized_keys").write_text((tmp / "client.pub").read_text())
    port = free_port()
    (tmp / "sshd_config").write_text("\n".join([
        "ListenAddress 127.0.0.1", f"Port {port}", f"HostKey {tmp / 'host'}", f"PidFile {tmp / 'sshd.pid'}",
        f"AuthorizedKeysFile {tmp / 'authorized_keys'}", "StrictModes no", "UsePAM no",
        "PasswordAuthentication no", "KbdInteractiveAuthentication no", "PermitRootLogin prohibit-password",
        "AllowTcpForwarding yes", "PermitOpen 127.0.0.1:*", ""]))
    Path("/run/sshd").mkdir(exist_ok=True)
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(tmp / "sshd_config")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    wait_for_port(port, 10)
    host_key = (tmp / "host.pub").read_text().split()
    (tmp / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n")
    (tmp / "empty_known_hosts").write_text("")
    yield tmp, port
    proc.terminate()
    proc.wait(10)
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def vnc_guest(services):
    import libvirt

    cg.ensure_tiny_guest()
    conn = libvirt.open("qemu:///system")
    name = f"{TEST_PREFIX}ssh-{random.randrange(10**8)}"
    dom = cg.define_and_start(conn, name)
    yield dom
    cg.destroy(conn, name)
    conn.close()


async def _handshake_through(target: Target) -> str:
    link = await open_link(target)
    try:
        await asyncio.wait_for(rfb.server_handshake(link.reader, link.writer, cg.VNC_PASSWORD), 15)
        link.writer.write(b"\x01")
        init = await link.reader.readexactly(24)
        return (await link.reader.readexactly(int.from_bytes(init[20:24], "big"))).decode()
    except (asyncio.IncompleteReadError, ConnectionError) as exc:
        raise RuntimeError(await link.ssh_error() or str(exc)) from None
    finally:
        await link.close()


def test_a_guest_on_the_hosts_loopback_is_reached_through_an_ssh_tunnel(sshd, vnc_guest, monkeypatch):
    tmp, port = sshd
    monkeypatch.setattr(conf, "SSH_KEY", str(tmp / "client"))
    monkeypatch.setattr(conf, "SSH_KNOWN_HOSTS", str(tmp / "known_hosts"))
    graphics = console_info("qemu:///system", vnc_guest.UUIDString()).first("vnc")
    target = resolve(f"qemu+ssh://root@127.0.0.1:{port}/system", graphics)
    assert target.via_ssh and target.host == "127.0.0.1"
    assert vnc_guest.name() in run(_handshake_through(target))


def test_an_unknown_host_key_is_refused(sshd, vnc_guest, monkeypatch):
    tmp, port = sshd
    monkeypatch.setattr(conf, "SSH_KEY", str(tmp / "client"))
    monkeypatch.setattr(conf, "SSH_KNOWN_HOSTS", str(tmp / "empty_known_hosts"))
    graphics = console_info("qemu:///system", vnc_guest.UUIDString()).first("vnc")
    target = resolve(f"qemu+ssh://root@127.0.0.1:{port}/system", graphics)
    with pytest.raises(RuntimeError, match="[Hh]ost key verification failed"):
        run(_handshake_through(target))


def run(coro):
    """asyncio.run in a thread of its own: Playwright's sync API may own this thread's loop."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()

"""A remote host over qemu+ssh, end to end: this machine's libvirtd seen through a private sshd.

The sshd (tests/ssh_host.py) logs root in by key only; VirtDash's web server and watcher get
the key and known_hosts through VIRTDASH_SSH_KEY / VIRTDASH_SSH_KNOWN_HOSTS, which both libvirt's
ssh transport (hosts/virt/ssh.py) and the console tunnel (consoles/tunnel.py) use. The host is
registered as a user would (POST /hosts/add/), the watcher connects through ssh, and the
console proxy reaches a guest's loopback VNC with `ssh -W`.
"""

from __future__ import annotations

import re
import secrets
import struct
import subprocess
import time
import urllib.request

import pytest
from websockets.sync.client import connect

from tests.conftest import make_user
from tests.integration import console_guests as cg
from tests.stack import Stack, free_port, wait_until

ssh_host = pytest.importorskip("tests.ssh_host")
pytestmark = pytest.mark.skipif(not ssh_host.available(), reason="openssh-server is not installed")


@pytest.fixture(scope="module")
def local_conn(services):
    import libvirt

    conn = libvirt.open("qemu:///system")
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def guests(local_conn):
    with ssh_host.console_guests(local_conn, "ssh") as found:
        yield found


@pytest.fixture
def ssh_stack(sshd, transactional_db):
    running = Stack(port=free_port(), env=sshd.env())
    running.start_watcher()
    running.start_web()
    yield running
    running.stop_all()


def _form_post(stack: Stack, path: str, cookie: str, fields: dict) -> tuple[int, str]:
    from urllib.parse import urlencode

    csrf = secrets.token_hex(16)
    request = urllib.request.Request(stack.url + path, data=urlencode({**fields, "csrfmiddlewaretoken": csrf}).encode(),
                                     method="POST", headers={"Cookie": f"{cookie}; csrftoken={csrf}",
                                                             "Origin": stack.url, "Referer": stack.url + path})

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    try:
        with urllib.request.build_opener(NoRedirect).open(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _get(stack: Stack, path: str, cookie: str) -> tuple[int, str]:
    request = urllib.request.Request(stack.url + path, headers={"Cookie": cookie})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _host(uri: str):
    from hosts.models import Host

    return Host.objects.filter(uri=uri).first()


def _wait_status(uri: str, status: str, timeout: float):
    def check():
        host = _host(uri)
        return host if host is not None and host.status == status else None

    return wait_until(check, timeout, message=f"{uri} {status}")


def _ws(stack: Stack, uuid: str, token: str, cookie: str):
    return connect(f"ws://127.0.0.1:{stack.port}/websockify/{uuid}", origin=stack.url,
                   subprotocols=["binary", f"vd-token.{token}"], additional_headers={"Cookie": cookie},
                   open_timeout=15)


def _token(stack: Stack, uuid: str, cookie: str) -> tuple[int, dict]:
    return cg.post_json(stack.url, f"/consoles/{uuid}/vnc/token", cookie, {"mode": "full"})


def _tunnels(vnc: str, ssh_port: int) -> list[str]:
    """`ssh -W <vnc> ... -p <ssh_port>` processes of the console proxy."""
    out = subprocess.run(["ps", "-eww", "-o", "args="], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if line.startswith("ssh -W ") and f"-W {vnc} " in line
            and f"-p {ssh_port} " in line]


def _audit_detail(guest_uuid: str) -> str:
    from core.models import AuditEntry

    entry = AuditEntry.objects.filter(action="console.vnc", target_id=guest_uuid).order_by("-pk").first()
    return entry.detail if entry else ""


def test_a_qemu_ssh_host_is_added_watched_and_its_guest_console_reached_through_an_ssh_tunnel(
        sshd, guests, ssh_stack):
    from guests.models import Guest

    admin = make_user("alice-admin", "admin", is_staff=True, is_superuser=True)
    cookie = cg.session_cookie(admin)
    uri = sshd.uri()

    # Added as an admin does it: "Test connection" first, then save (which checks again).
    status, body = _form_post(ssh_stack, "/hosts/add/", cookie,
                              {"name": "ssh-host", "uri": uri, "enabled": "on", "test": "1"})
    assert status == 200 and "Connected: QEMU" in body, body[-3000:]
    started = time.monotonic()
    status, body = _form_post(ssh_stack, "/hosts/add/", cookie, {"name": "ssh-host", "uri": uri, "enabled": "on"})
    assert status == 302, body[-3000:]
    host = _wait_status(uri, "connected", 20)
    connected_after = time.monotonic() - started
    assert host.facts["hypervisor"] == "QEMU" and host.facts["libvirt_version"].startswith("9.")
    assert host.facts["cpus"] >= 1 and host.last_error == ""

    # The watcher's inventory holds the guests it sees through ssh.
    tiny = guests["tiny"]
    row = wait_until(lambda: Guest.objects.filter(host=host, uuid=tiny.UUIDString(), state="running").first(),
                     20, message="the tiny guest in the ssh host's inventory")
    assert row.name == tiny.name()
    status, page = _get(ssh_stack, f"/hosts/{host.pk}/", cookie)
    assert status == 200 and "Connected" in page and tiny.name() in page

    # A console token for the guest names an ssh target; the proxy opens `ssh -W` and QEMU answers.
    vnc_port = int(re.search(r"<graphics type='vnc' port='(\d+)'", tiny.XMLDesc(0)).group(1))
    status, answer = _token(ssh_stack, row.uuid, cookie)
    assert status == 200, answer
    assert _audit_detail(row.uuid).startswith(f"mode full, target 127.0.0.1:{vnc_port} via ssh 127.0.0.1")
    with _ws(ssh_stack, row.uuid, answer["token"], cookie) as ws:
        assert ws.recv(timeout=15) == b"RFB 003.008\n"
        ws.send(b"RFB 003.008\n")
        assert ws.recv(timeout=15) == b"\x01\x01"
        ws.send(b"\x01")
        assert ws.recv(timeout=15) == b"\x00\x00\x00\x00"
        ws.send(b"\x01")
        init = ws.recv(timeout=15)
        width, height = struct.unpack(">HH", init[:4])
        assert width > 0 and height > 0 and tiny.name().encode() in init
        assert _tunnels(f"127.0.0.1:{vnc_port}", sshd.port), "no ssh -W tunnel while the console is open"
    wait_until(lambda: not _tunnels(f"127.0.0.1:{vnc_port}", sshd.port), 10, message="the tunnel closed")
    print(f"\nqemu+ssh host connected {connected_after:.1f} s after it was added")


def test_a_guest_whose_display_the_ssh_host_cannot_forward_to_says_why(sshd, guests, ssh_stack):
    from hosts import services

    admin = make_user("alice-admin", "admin", is_staff=True, is_superuser=True)
    cookie = cg.session_cookie(admin)
    host = services.create_host(admin, name="ssh-host", uri=sshd.uri())
    _wait_status(host.uri, "connected", 20)
    from guests.models import Guest

    # VNC on 127.0.0.2: the token is issued (the address is valid), the tunnel is refused by the
    # host (its sshd forwards to 127.0.0.1 only) and noVNC gets the reason as an RFB failure.
    other = guests["other_address"]
    wait_until(lambda: Guest.objects.filter(host=host, uuid=other.UUIDString()).exists(), 20, message="inventory")
    status, answer = _token(ssh_stack, other.UUIDString(), cookie)
    assert status == 200, answer
    with _ws(ssh_stack, other.UUIDString(), answer["token"], cookie) as ws:
        assert ws.recv(timeout=15) == b"RFB 003.008\n"
        ws.send(b"RFB 003.008\n")
        failure = ws.recv(timeout=20)
    assert failure[:1] == b"\x00"  # no security types: the reason follows
    reason = failure[5:].decode()
    assert reason.startswith("The SSH tunnel to the host failed:") and "prohibited" in reason, reason

    # VNC on a UNIX socket of the host: no token, and the console page says why.
    sock = guests["socket"]
    wait_until(lambda: Guest.objects.filter(host=host, uuid=sock.UUIDString()).exists(), 20, message="inventory")
    status, answer = _token(ssh_stack, sock.UUIDString(), cookie)
    assert status == 409 and answer["code"] == "graphics_unreachable", answer
    assert "UNIX socket" in answer["error"]
    status, page = _get(ssh_stack, f"/consoles/{sock.UUIDString()}/vnc/", cookie)
    assert status == 200
    assert "The guest&#x27;s graphics are unreachable: The display listens on a UNIX socket" in page


def test_a_wrong_host_key_or_a_closed_ssh_port_is_reported_within_seconds(sshd, ssh_stack):
    from hosts import services

    admin = make_user("alice-admin", "admin", is_staff=True, is_superuser=True)
    closed = f"qemu+ssh://root@127.0.0.1:{free_port()}/system"
    started = time.monotonic()
    services.create_host(admin, name="ssh-closed", uri=closed)
    host = _wait_status(closed, "unreachable", 10)
    assert "Connection refused" in host.last_error, host.last_error
    print(f"\nclosed ssh port: unreachable after {time.monotonic() - started:.1f} s: {host.last_error}")


def test_a_changed_or_unknown_host_key_is_refused_with_what_to_do(sshd, settings, tmp_path):
    """"Test connection" in the web process, for the ssh transport and libvirt's in-process libssh ones."""
    from hosts import services

    settings.VIRTDASH_SSH_KEY = str(sshd.key)
    (tmp_path / "empty").write_text("")
    timeout = 20  # a refusal comes at once (< 1 s measured); one that waited for this would fail below
    for transport in ("ssh", "libssh", "libssh2"):
        uri = sshd.uri().replace("qemu+ssh:", f"qemu+{transport}:")
        settings.VIRTDASH_SSH_KNOWN_HOSTS = str(sshd.wrong_known_hosts)
        started = time.monotonic()
        ok, message, _ = services.test_connection(uri, timeout=timeout)
        elapsed = time.monotonic() - started
        assert not ok and elapsed < 8, (elapsed, message)
        assert "SSH host key verification failed: the host key of " in message, message
        assert "has changed" in message and "@@@" not in message
        # Host.last_error shows this to viewers: the setting's name, never the service account's path.
        assert "VIRTDASH_SSH_KNOWN_HOSTS" in message and str(sshd.wrong_known_hosts) not in message
        print(f"\n{transport}: changed host key refused after {elapsed:.1f} s: {message}")

        settings.VIRTDASH_SSH_KNOWN_HOSTS = str(tmp_path / "empty")
        ok, message, _ = services.test_connection(uri, timeout=timeout)
        assert not ok and "SSH host key verification failed: no host key for " in message, message

        settings.VIRTDASH_SSH_KNOWN_HOSTS = str(sshd.known_hosts)
        started = time.monotonic()
        ok, message, _ = services.test_connection(uri, timeout=timeout)
        assert ok, message
        print(f"{transport}: the right key connects in {time.monotonic() - started:.1f} s")


@pytest.fixture
def fast_reconcile_stack(sshd, transactional_db):
    """Only the watcher, reconciling every second (10 s by default)."""
    running = Stack(port=free_port(), env={**sshd.env(), "VIRTDASH_SAMPLE_SECONDS": "1"})
    running.start_watcher()
    yield running
    running.stop_all()


def test_the_same_libvirtd_registered_twice_lists_each_guest_once_and_keeps_it_in_place(
        sshd, guests, fast_reconcile_stack):
    """qemu:///system and qemu+ssh://root@127.0.0.1/system are one libvirtd: every guest is seen by
    both hosts. The inventory must not list it twice, nor move it back and forth between them."""
    from guests.models import Guest, GuestEvent
    from hosts import services

    admin = make_user("alice-admin", "admin", is_staff=True, is_superuser=True)
    local = services.create_host(admin, name="local", uri="qemu:///system")
    _wait_status(local.uri, "connected", 20)
    uuid = guests["tiny"].UUIDString()
    wait_until(lambda: Guest.objects.filter(uuid=uuid).exists(), 20, message="the guest in the inventory")
    remote = services.create_host(admin, name="ssh-host", uri=sshd.uri())
    _wait_status(remote.uri, "connected", 20)
    seen = []
    deadline = time.monotonic() + 6  # the watcher reconciles every 0.5 s here
    while time.monotonic() < deadline:
        seen.append(list(Guest.objects.filter(uuid=uuid).values_list("host__name", flat=True)))
        time.sleep(0.2)
    moves = GuestEvent.objects.filter(guest__uuid=uuid, event="moved").count()
    flips = sum(1 for before, after in zip(seen, seen[1:], strict=False) if before != after)
    print(f"\n{len(seen)} samples: rows per sample {sorted({len(s) for s in seen})}, hosts seen "
          f"{sorted({h for s in seen for h in s})}, changes of host {flips}, 'moved' events {moves}")
    assert all(len(sample) == 1 for sample in seen)
    assert len({sample[0] for sample in seen}) == 1 and moves == 0


def test_an_ssh_port_that_never_answers_is_unreachable_within_the_connect_timeout(sshd, settings):
    """A listener that accepts and stays silent (a hung sshd): no hang, and no ssh left behind."""
    import socket

    from hosts import services

    settings.VIRTDASH_SSH_KEY, settings.VIRTDASH_SSH_KNOWN_HOSTS = str(sshd.key), str(sshd.known_hosts)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        started = time.monotonic()
        ok, message, _ = services.test_connection(f"qemu+ssh://root@127.0.0.1:{port}/system", timeout=3)
        elapsed = time.monotonic() - started
        # VirtDash's own 3 s ended it (not ssh's ConnectTimeout): its message; a busy machine may add seconds
        assert not ok and "unreachable" in message and "did not answer within 3 s" in message, message
        assert elapsed < 3 + 5, elapsed

        def ssh_left() -> list[str]:
            out = subprocess.run(["ps", "-eww", "-o", "args="], capture_output=True, text=True).stdout
            return [line for line in out.splitlines() if line.startswith("ssh ") and f"-p {port} " in line]

        wait_until(lambda: not ssh_left(), settings.VIRTDASH_CONNECT_TIMEOUT + 5, message="ssh gave up")
    print(f"\nsilent ssh port: refused after {elapsed:.1f} s: {message}")

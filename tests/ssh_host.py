"""A private sshd on a loopback port standing in for a remote qemu+ssh host (tests only).

It logs in root by key only, with a key pair made for the run, and reaches this machine's
libvirtd (libvirt runs `virt-ssh-helper` through it). `known_hosts` holds its real host key,
`wrong_known_hosts` another key for the same address (a changed host key).
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.stack import free_port, wait_for_port

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


def available() -> bool:
    return Path(SSHD).exists() and shutil.which("ssh-keygen") is not None


@dataclass
class SshHost:
    folder: Path
    port: int
    process: subprocess.Popen

    @property
    def key(self) -> Path:
        return self.folder / "client"

    @property
    def known_hosts(self) -> Path:
        return self.folder / "known_hosts"

    @property
    def wrong_known_hosts(self) -> Path:
        return self.folder / "wrong_known_hosts"

    def uri(self, user: str = "root") -> str:
        return f"qemu+ssh://{user}@127.0.0.1:{self.port}/system"

    def env(self, known_hosts: Path | None = None) -> dict[str, str]:
        """VirtDash settings that make its processes use this host's key and known_hosts."""
        return {"VIRTDASH_SSH_KEY": str(self.key), "VIRTDASH_SSH_KNOWN_HOSTS": str(known_hosts or self.known_hosts)}

    def sessions(self) -> list[str]:
        """Command lines of this sshd's live per-connection children (one per open ssh session)."""
        out = subprocess.run(["ps", "-ww", "-o", "args=", "--ppid", str(self.process.pid)], capture_output=True,
                             text=True)
        return [line for line in out.stdout.splitlines() if line.strip()]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        shutil.rmtree(self.folder, ignore_errors=True)


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "virtdash-test", "-f", str(path)],
                   check=True)


def start() -> SshHost:
    folder = Path(tempfile.mkdtemp(prefix="vdtest-sshhost-"))
    for name in ("host", "client", "other"):
        _keygen(folder / name)
    (folder / "authorized_keys").write_text((folder / "client.pub").read_text())
    port = free_port()
    (folder / "sshd_config").write_text("\n".join([
        "ListenAddress 127.0.0.1", f"Port {port}", f"HostKey {folder / 'host'}", f"PidFile {folder / 'sshd.pid'}",
        f"AuthorizedKeysFile {folder / 'authorized_keys'}", "StrictModes no", "UsePAM no",
        "PasswordAuthentication no", "KbdInteractiveAuthentication no", "PermitRootLogin prohibit-password",
        "AllowTcpForwarding yes", "PermitOpen 127.0.0.1:*", "MaxStartups 50", ""]))
    Path("/run/sshd").mkdir(exist_ok=True)
    log = open(folder / "sshd.log", "ab")  # noqa: SIM115 - lives as long as sshd
    process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(folder / "sshd_config")], stdout=log, stderr=log,
                               start_new_session=True)
    wait_for_port(port, 10)
    for name, key_file in (("known_hosts", "host.pub"), ("wrong_known_hosts", "other.pub")):
        kind, key = (folder / key_file).read_text().split()[:2]
        (folder / name).write_text(f"[127.0.0.1]:{port} {kind} {key}\n")
    return SshHost(folder, port, process)


def idle_guest_xml(name: str, *, listen: str | None = None, socket: bool = False) -> str:
    """A diskless guest idling in SeaBIOS (no kernel: cheap) whose VNC the proxy cannot reach."""
    from virtdash.xml import Domain, Graphics, Video

    dom = Domain.new(name, 64, 1, "qemu")
    graphics = dom.add_device(Graphics.new("vnc", listen=listen))
    if socket:
        graphics.listen_type = "socket"
    dom.add_device(Video.new("vga"))
    return dom.to_string()


@contextmanager
def console_guests(conn, tag: str):
    """{'tiny': the running tiny guest (VNC on 127.0.0.1), 'other_address': VNC on 127.0.0.2 (this
    sshd forwards to 127.0.0.1 only), 'socket': VNC on a UNIX socket}; all destroyed afterwards."""
    from tests.conftest import TEST_PREFIX
    from tests.integration import console_guests as cg

    cg.ensure_tiny_guest()
    stamp = secrets.token_hex(3)
    names = {key: f"{TEST_PREFIX}{tag}{key[:3]}-{stamp}" for key in ("tiny", "other_address", "socket")}
    try:
        found = {"tiny": cg.define_and_start(conn, names["tiny"])}
        for key, xml in (("other_address", idle_guest_xml(names["other_address"], listen="127.0.0.2")),
                         ("socket", idle_guest_xml(names["socket"], socket=True))):
            found[key] = conn.defineXML(xml)
            found[key].create()
        yield found
    finally:
        for name in names.values():
            cg.destroy(conn, name)

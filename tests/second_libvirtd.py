"""A second libvirtd in its own mount namespace, listening on TCP at 127.0.0.N (tests only).

Used to stop (SIGSTOP) or kill a hypervisor without disturbing the machine's main libvirtd,
and as a migration target. See shared/ENVIRONMENT.md "Two hosts on one machine".
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from tests.stack import ARTIFACTS, wait_for_port

DIRS = {"etc": "/etc/libvirt", "run": "/run/libvirt", "lib": "/var/lib/libvirt", "log": "/var/log/libvirt",
        "cache": "/var/cache/libvirt"}
QEMU_CAPS_CACHE = Path("/var/cache/libvirt/qemu/capabilities")


def _set(conf: Path, key: str, value: str) -> None:
    text = conf.read_text() if conf.exists() else ""
    text = re.sub(rf"(?m)^\s*{key}\s*=.*$", "", text)
    conf.write_text(text + f"\n{key} = {value}\n")


class SecondLibvirtd:
    def __init__(self, address: str = "127.0.0.2", migration_ports: tuple[int, int] | None = None):
        self.address = address
        self.migration_ports = migration_ports  # a migration peer: own port range and host UUID
        self.root = Path(tempfile.mkdtemp(prefix="vdtest-libvirtd-"))
        self.proc: subprocess.Popen | None = None

    @property
    def uri(self) -> str:
        return f"qemu+tcp://{self.address}/system"

    def start(self, timeout: float = 60) -> SecondLibvirtd:
        for name in DIRS:
            (self.root / name).mkdir(mode=0o755, exist_ok=True)
        self._seed_qemu_caps()
        for conf in Path("/etc/libvirt").glob("*.conf"):
            shutil.copy(conf, self.root / "etc" / conf.name)
        daemon_conf = self.root / "etc" / "libvirtd.conf"
        for key, value in {"listen_tcp": "1", "listen_tls": "0", "listen_addr": f'"{self.address}"',
                           "auth_tcp": '"none"', "keepalive_interval": "2", "keepalive_count": "3"}.items():
            _set(daemon_conf, key, value)
        qemu_conf = self.root / "etc" / "qemu.conf"
        _set(qemu_conf, "migration_address", f'"{self.address}"')
        _set(qemu_conf, "migration_host", f'"{self.address}"')
        if self.migration_ports:  # libvirt refuses to migrate between daemons with one host_uuid
            _set(daemon_conf, "host_uuid", f'"{uuid.uuid4()}"')
            _set(qemu_conf, "migration_port_min", str(self.migration_ports[0]))
            _set(qemu_conf, "migration_port_max", str(self.migration_ports[1]))
        mounts = " && ".join(f"mount --bind {self.root / name} {target}" for name, target in DIRS.items())
        script = (f"{mounts} && mkdir -p /var/lib/libvirt/qemu /var/log/libvirt/qemu"
                  f" && virtlogd -d -p {self.root / 'run' / 'virtlogd.pid'}"
                  f" && exec libvirtd -l -p {self.root / 'run' / 'libvirtd.pid'}")
        (ARTIFACTS / "logs").mkdir(parents=True, exist_ok=True)
        log = open(ARTIFACTS / "logs" / f"libvirtd-{self.address}.log", "ab")  # noqa: SIM115
        argv = [*self.launcher(), "unshare", "-m", "--propagation", "private", "bash", "-c", script]
        self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for_port(16509, timeout, host=self.address)
        return self

    def _seed_qemu_caps(self) -> None:
        """Start from the main daemon's QEMU capability cache (same libvirtd and QEMU binaries, same
        kernel): libvirt re-validates each entry (binary and daemon ctimes, kernel, KVM access) and
        re-probes only a stale one, so this is safe and saves a probe of several seconds per daemon
        at the first guest or capability call. Kept when the state folder already has a cache."""
        target = self.root / "cache" / "qemu" / "capabilities"
        if QEMU_CAPS_CACHE.is_dir() and not target.exists():
            shutil.copytree(QEMU_CAPS_CACHE, target)

    def launcher(self) -> list[str]:
        """Command prefix for the daemon (a subclass runs it inside a network namespace)."""
        return []

    def pause(self) -> None:
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        pidfile = self.root / "run" / "virtlogd.pid"
        if pidfile.exists():
            try:
                os.kill(int(pidfile.read_text().strip()), signal.SIGTERM)
            except (ProcessLookupError, ValueError):
                pass
        time.sleep(0.2)
        shutil.rmtree(self.root, ignore_errors=True)

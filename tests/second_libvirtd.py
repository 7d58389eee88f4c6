"""A second libvirtd in its own mount namespace, listening on TCP at 127.0.0.N (tests only).

Used to stop (SIGSTOP) or kill a hypervisor without disturbing the machine's main libvirtd,
and as a migration target. See shared/ENVIRONMENT.md "Two hosts on one machine".

Each daemon's state lives in a folder <tmp>/vdtest-libvirtd-*/ (its pid file run/libvirtd.pid, its
etc/libvirtd.conf naming the address) with an ``owner`` file: the pid and start time of the test
process that started it. The addresses are fixed, so a run killed before its cleanup leaves a daemon
answering on the next run's address: ``start`` stops such a daemon of ours when its owner is gone,
refuses (clearly) when the owner still runs or the listener is not ours, and checks that the port
answers from the new daemon, not an old one.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from tests.stack import ARTIFACTS

DIRS = {"etc": "/etc/libvirt", "run": "/run/libvirt", "lib": "/var/lib/libvirt", "log": "/var/log/libvirt",
        "cache": "/var/cache/libvirt"}
QEMU_CAPS_CACHE = Path("/var/cache/libvirt/qemu/capabilities")
PORT = 16509
ROOT_PREFIX = "vdtest-libvirtd-"


def _set(conf: Path, key: str, value: str) -> None:
    text = conf.read_text() if conf.exists() else ""
    text = re.sub(rf"(?m)^\s*{key}\s*=.*$", "", text)
    conf.write_text(text + f"\n{key} = {value}\n")


class SecondLibvirtd:
    def __init__(self, address: str = "127.0.0.2", migration_ports: tuple[int, int] | None = None):
        self.address = address
        self.migration_ports = migration_ports  # a migration peer: own port range and host UUID
        self.root = Path(tempfile.mkdtemp(prefix=ROOT_PREFIX))
        self.proc: subprocess.Popen | None = None

    @property
    def uri(self) -> str:
        return f"qemu+tcp://{self.address}/system"

    @property
    def log_path(self) -> Path:
        return ARTIFACTS / "logs" / f"libvirtd-{self.address}.log"

    def start(self, timeout: float = 60) -> SecondLibvirtd:
        try:
            self._start(timeout)
        except BaseException:
            self.stop()  # what it started (virtlogd, an exited libvirtd) and its state folder
            raise
        return self

    def _start(self, timeout: float) -> None:
        _clear_address(self.address)
        (self.root / "owner").write_text(_process_identity(os.getpid()) + "\n")
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
        log = open(self.log_path, "ab")  # noqa: SIM115
        argv = [*self.launcher(), "unshare", "-m", "--propagation", "private", "bash", "-c", script]
        self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.wait_listening(timeout)

    def wait_listening(self, timeout: float = 60) -> None:
        """Until the port answers, failing at once when the new daemon exits; and it must still run
        once the port answers (else something else answered)."""
        deadline = time.monotonic() + timeout
        while not _answers(self.address):
            if self.proc.poll() is not None:
                raise RuntimeError(f"the second libvirtd for {self.address} exited ({self.proc.returncode}) "
                                   f"before it listened: see {self.log_path}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {self.address}:{PORT} after {timeout} s")
            time.sleep(0.1)
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.address}:{PORT} answers but the new libvirtd exited "
                               f"({self.proc.returncode}): another process listens there; see {self.log_path}")

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


def _answers(address: str, port: int = PORT) -> bool:
    try:
        with socket.create_connection((address, port), timeout=0.5):
            return True
    except OSError:
        return False


def _process_identity(pid: int) -> str:
    """"<pid> <start time>": a pid the kernel reuses later does not match (field 22 of /proc/<pid>/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return f"{pid} {stat.rsplit(')', 1)[1].split()[19]}"


def _alive(identity: str) -> bool:
    pid = identity.split()[0]
    try:
        return pid.isdigit() and _process_identity(int(pid)) == identity
    except (OSError, IndexError):
        return False


def _our_daemons(address: str) -> list[tuple[int, Path]]:
    """(pid, state folder) of every running libvirtd started by this module for `address`: its pid file
    is <folder>/run/libvirtd.pid with a vdtest-libvirtd- folder whose libvirtd.conf listens there."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if Path(argv[0]).name != "libvirtd" or "-p" not in argv[:-1]:
            continue
        pidfile = Path(argv[argv.index("-p") + 1])
        root = pidfile.parent.parent
        if pidfile.name != "libvirtd.pid" or pidfile.parent.name != "run" or not root.name.startswith(ROOT_PREFIX):
            continue
        try:
            conf = (root / "etc" / "libvirtd.conf").read_text()
        except OSError:
            continue
        listen = re.findall(r'(?m)^listen_addr = "([^"]*)"$', conf)
        if listen and listen[-1] == address:
            found.append((int(proc.name), root))
    return found


def _clear_address(address: str, timeout: float = 15) -> None:
    """Make sure nothing answers on address:16509 before a new daemon starts there: stop a daemon of
    ours whose owner is gone (a run killed before its cleanup), else refuse with what to do."""
    if not _answers(address):
        return
    daemons = _our_daemons(address)
    if not daemons:
        raise RuntimeError(f"{address}:{PORT} already answers, and not from a second libvirtd of these tests "
                           f"(none runs with its state in a {ROOT_PREFIX}* folder for that address): stop what "
                           f"listens there (`ss -ltnp 'sport = :{PORT}'`)")
    for pid, root in daemons:
        owner_file = root / "owner"
        owner = owner_file.read_text().strip() if owner_file.exists() else None
        if owner is None or _alive(owner):
            who = f"test process {owner.split()[0]}, still running" if owner else "no owner file"
            raise RuntimeError(f"{address}:{PORT} is served by a second libvirtd (pid {pid}, state {root}) of "
                               f"another test run ({who}): two runs use the same fixed address; wait for it, "
                               f"or stop that libvirtd and remove {root}")
        _stop_abandoned(pid, root)
    deadline = time.monotonic() + timeout
    while _answers(address):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{address}:{PORT} still answers {timeout} s after the abandoned libvirtd stopped")
        time.sleep(0.1)


def _stop_abandoned(pid: int, root: Path, timeout: float = 10) -> None:
    """Stop an abandoned daemon (resumed first: it may have been left SIGSTOPped), the virtlogd, QEMU
    and dnsmasq whose pid files are in its state folder, and remove the folder."""
    print(f"stopping the abandoned second libvirtd {pid} ({root})")
    for sig in (signal.SIGCONT, signal.SIGTERM):
        _signal(pid, sig)
    if not _wait_gone(pid, timeout):
        _signal(pid, signal.SIGKILL)
        _wait_gone(pid, 5)
    for pidfile in (root / "run").rglob("*.pid"):
        try:
            other = int(pidfile.read_text().strip())
            comm = Path(f"/proc/{other}/comm").read_text().strip()
        except (OSError, ValueError):
            continue
        if comm in ("virtlogd", "dnsmasq") or comm.startswith("qemu-system"):
            _signal(other, signal.SIGTERM)
    shutil.rmtree(root, ignore_errors=True)


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False

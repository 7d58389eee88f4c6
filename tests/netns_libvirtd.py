"""A private libvirtd inside a network namespace of its own (tests only).

Everything it creates — bridges with addresses, NAT rules, dnsmasq, guests' tap devices, the
``ip_forward`` sysctl — stays inside the namespace ``vdtest-<hex>``; the root namespace only gets
one end of a veth pair on a private /30 (10.250.X.0/30), over which VirtDash reaches the daemon
at ``qemu+tcp://10.250.X.2/system``. The daemon also runs in its own mount namespace
(``SecondLibvirtd``: private /etc/libvirt, /run/libvirt, /var/lib/libvirt... so its sockets,
network definitions, lease files and QEMU state are its own).

    with NetnsLibvirtd() as daemon:
        daemon.uri                      # qemu+tcp://10.250.X.2/system
        daemon.ns("ip", "-4", "addr")   # a command's output, run inside the namespace

Cleanup (``stop``, also on a failed start): every process in the namespace (libvirtd, virtlogd,
dnsmasq, QEMU) is terminated, then the namespace and the veth pair are deleted. A run killed
before its cleanup (SIGKILL) leaves an owner file naming its dead pid: the next ``start`` removes
such namespaces. Only names with the ``vdtest-`` prefix are ever created or deleted.
"""

from __future__ import annotations

import ipaddress
import os
import random
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from tests.conftest import TEST_PREFIX
from tests.second_libvirtd import SecondLibvirtd

VETH_SUPERNET = ipaddress.IPv4Network("10.250.0.0/16")
QEMU_CAPS_CACHE = Path("/var/cache/libvirt/qemu/capabilities")
OWNERS = Path(tempfile.gettempdir()) / "vdtest-netns-owners"  # <netns name> → "<owner pid> <state folder>"


def _ip(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *argv], check=check, capture_output=True, text=True)


def root_ipv4_networks() -> list[ipaddress.IPv4Interface]:
    """Every IPv4 address of the root namespace (to pick free subnets and to assert absences)."""
    out = _ip("-4", "-o", "addr", "show").stdout
    return [ipaddress.IPv4Interface(line.split()[3]) for line in out.splitlines()]


def free_subnet(supernet: ipaddress.IPv4Network, prefix: int) -> ipaddress.IPv4Network:
    """A random subnet of ``supernet`` that no root-namespace address touches."""
    taken = [iface.network for iface in root_ipv4_networks()]
    candidates = list(supernet.subnets(new_prefix=prefix))
    random.shuffle(candidates)
    return next(net for net in candidates if not any(net.overlaps(t) for t in taken))


class NetnsLibvirtd(SecondLibvirtd):
    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:6]
        self.netns = f"{TEST_PREFIX}{tag}"
        self.veth_root, self.veth_ns = f"{TEST_PREFIX}{tag}r", f"{TEST_PREFIX}{tag}n"  # ≤ 15 characters
        link = free_subnet(VETH_SUPERNET, 30)
        self.root_address, ns_address = (str(a) for a in link.hosts())
        super().__init__(address=ns_address)

    def launcher(self) -> list[str]:
        return ["ip", "netns", "exec", self.netns]

    def start(self, timeout: float = 60) -> NetnsLibvirtd:
        sweep_abandoned()
        OWNERS.mkdir(exist_ok=True)
        (OWNERS / self.netns).write_text(f"{os.getpid()} {self.root}\n")
        try:
            self._make_namespace()
            self._warm_qemu_cache()
            super().start(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _make_namespace(self) -> None:
        _ip("netns", "add", self.netns)
        _ip("link", "add", self.veth_root, "type", "veth", "peer", "name", self.veth_ns, "netns", self.netns)
        _ip("addr", "add", f"{self.root_address}/30", "dev", self.veth_root)
        _ip("link", "set", self.veth_root, "up")
        _ip("-n", self.netns, "addr", "add", f"{self.address}/30", "dev", self.veth_ns)
        _ip("-n", self.netns, "link", "set", self.veth_ns, "up")
        _ip("-n", self.netns, "link", "set", "lo", "up")

    def _warm_qemu_cache(self) -> None:
        """Start from the main daemon's QEMU capability cache: libvirt re-validates it (binary and
        daemon ctimes, kernel, KVM) and re-probes only when stale, which takes ≈ 8 s."""
        target = self.root / "cache" / "qemu" / "capabilities"
        if QEMU_CAPS_CACHE.is_dir():
            shutil.copytree(QEMU_CAPS_CACHE, target)

    def ns(self, *argv: str, check: bool = True) -> str:
        """Run a command inside the namespace; its standard output."""
        return subprocess.run(["ip", "netns", "exec", self.netns, *argv], check=check, capture_output=True,
                              text=True).stdout

    def pids(self) -> list[int]:
        return [int(p) for p in _ip("netns", "pids", self.netns, check=False).stdout.split()]

    def restart(self, *, as_after_boot: bool = False, timeout: float = 60) -> None:
        """Stop libvirtd and virtlogd and start them again on the same state, namespace and address
        (running networks and their dnsmasq stay up, as with a real daemon restart).

        libvirt autostarts objects only once per boot: each driver leaves an ``autostarted`` marker
        in /run/libvirt/<driver>/. ``as_after_boot`` removes the markers, as a reboot clears /run."""
        self.proc.terminate()
        self.proc.wait(15)
        pidfile = self.root / "run" / "virtlogd.pid"
        os.kill(int(pidfile.read_text().strip()), signal.SIGTERM)  # the script starts a fresh one
        deadline = time.monotonic() + 10
        while pidfile.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        if as_after_boot:
            for marker in (self.root / "run").glob("*/autostarted"):
                marker.unlink()
        SecondLibvirtd.start(self, timeout)

    def stop(self) -> None:
        assert self.netns.startswith(TEST_PREFIX)
        self._kill_namespace_processes()
        (self.root / "run" / "virtlogd.pid").unlink(missing_ok=True)  # it ran in the namespace: gone already
        super().stop()
        _ip("netns", "del", self.netns, check=False)
        _ip("link", "del", self.veth_root, check=False)  # normally gone with the namespace already
        (OWNERS / self.netns).unlink(missing_ok=True)

    def _kill_namespace_processes(self, timeout: float = 10) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in self.pids():
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + timeout
            while self.pids() and time.monotonic() < deadline:
                time.sleep(0.1)
            if not self.pids():
                return

    def __enter__(self) -> NetnsLibvirtd:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def sweep_abandoned() -> None:
    """Remove the namespaces of earlier runs whose owner process is gone (killed before cleanup)."""
    for owner in OWNERS.glob(f"{TEST_PREFIX}*") if OWNERS.is_dir() else []:
        pid, _, root = owner.read_text().strip().partition(" ")
        if pid.isdigit() and Path(f"/proc/{pid}").exists():
            continue
        stale = NetnsLibvirtd.__new__(NetnsLibvirtd)  # the same cleanup, with the recorded names
        stale.netns, stale.veth_root, stale.proc, stale.root = owner.name, f"{owner.name}r", None, Path(root)
        stale.stop()

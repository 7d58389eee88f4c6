"""The boot probe that decides KVM vs TCG, on the real libvirtd with the tiny kernel."""

import subprocess
from pathlib import Path

import libvirt

from hosts.virt.probe import PROBE_PREFIX, boot_probe

GUEST_DIR = Path("/var/cache/virtdash/tiny-guest")


def test_a_tcg_probe_reaches_userspace_and_leaves_no_guest_behind(services):
    subprocess.run(["scripts/build-tiny-guest.sh"], check=True, stdout=subprocess.DEVNULL)
    kernel = GUEST_DIR / "vmlinux-pvh" if (GUEST_DIR / "vmlinux-pvh").exists() else GUEST_DIR / "vmlinuz"
    result = boot_probe("qemu:///system", "qemu", str(kernel), str(GUEST_DIR / "initrd.gz"), timeout=60)
    assert result.ok, result.detail
    conn = libvirt.open("qemu:///system")
    try:
        assert not [d for d in conn.listAllDomains() if d.name().startswith(PROBE_PREFIX)]
    finally:
        conn.close()

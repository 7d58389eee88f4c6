"""Test helpers for migration tests: test-driver domain and pool XML (tests only)."""

from __future__ import annotations

import uuid as uuid_mod

from tests.conftest import TEST_PREFIX

DISKLESS = f"{TEST_PREFIX}mig-diskless"
WITH_DISK = f"{TEST_PREFIX}mig-disk"


def domain_xml(name: str, *, disk: bool = False) -> str:
    """A test-driver domain (tests only; the product builds XML with virtdash.xml)."""
    device = ("<disk type='file' device='disk'><source file='/var/lib/vdtest/mig.img'/>"
              "<target dev='vda' bus='virtio'/></disk>") if disk else ""
    return (f"<domain type='test'><name>{name}</name><uuid>{uuid_mod.uuid4()}</uuid>"
            "<memory unit='MiB'>64</memory><vcpu>1</vcpu><os><type arch='x86_64'>hvm</type></os>"
            f"<devices>{device}</devices></domain>")


def pool_xml(path: str = "/var/lib/vdtest", volume: str = "") -> str:
    """A test-driver dir pool at `path`, optionally holding one volume (tests only)."""
    vol = (f"<volume><name>{volume}</name><capacity unit='MiB'>16</capacity>"
           f"<target><path>{path}/{volume}</path></target></volume>") if volume else ""
    return (f"<pool type='dir'><name>vdtest-pool</name><uuid>{uuid_mod.uuid4()}</uuid>"
            f"<target><path>{path}</path></target>{vol}</pool>")

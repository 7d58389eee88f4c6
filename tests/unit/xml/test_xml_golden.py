"""Golden-file tests: ``data/<case>-in.xml`` → one edit → ``data/<case>-out.xml``.

Regenerate the expected files with ``VIRTDASH_REGEN_GOLDEN=1 pytest tests/unit/xml``
and review the diff before committing. These check OUR output; what libvirt
makes of it is checked separately in ``test_xml_libvirt_define.py``.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from virtdash.xml import (
    Disk,
    Domain,
    DomainSnapshot,
    Interface,
    Network,
    StoragePool,
    StorageVolume,
    XMLObject,
    clone_prepare,
)

DATA = Path(__file__).parent / "data"
REGEN = os.environ.get("VIRTDASH_REGEN_GOLDEN") == "1"
UUID = "00000000-1111-2222-3333-444444444444"


def _boot_cdrom_first(dom: Domain) -> None:
    vda, sda = dom.find_disk("vda"), dom.find_disk("sda")
    assert vda is not None and sda is not None
    dom.set_boot_order([sda, vda])


def _metadata(dom: Domain) -> None:
    dom.owner = "alice"
    dom.tags = ["web", "prod", "web"]
    dom.os_id = "http://debian.org/debian/13"


def _features(dom: Domain) -> None:
    dom.set_feature("pae", True)
    dom.apic = False
    dom.boot_menu = True


def _rename(dom: Domain) -> None:
    dom.name = "web02"
    dom.title = None
    dom.description = "Moved <behind> the \"proxy\" & firewall"


def _graphics(dom: Domain) -> None:
    dom.graphics[0].listen = "0.0.0.0"
    dom.graphics[0].passwd = "s3cret"


def _clone(dom: Domain, monkeypatch: pytest.MonkeyPatch) -> Domain:
    macs = (f"52:54:00:00:00:{n:02x}" for n in itertools.count(1))
    monkeypatch.setattr("virtdash.xml.clone.random_mac", lambda: next(macs))
    plan = clone_prepare(dom, "web01-clone")
    assert plan.sources == ["/var/lib/libvirt/images/web01.qcow2"]
    return plan.domain


EDITS: dict[str, Callable[..., object]] = {
    "memory-set": lambda d: d.set_memory_mib(4096, 3072),
    "vcpus-set": lambda d: d.set_vcpus(2, 8),
    "cdrom-eject": lambda d: d.change_media("sda", None),
    "cdrom-insert": lambda d: d.change_media("sda", "/var/lib/libvirt/iso/debian-13.iso"),
    "disk-add": lambda d: d.add_device(Disk.new("vdb", path="/var/lib/libvirt/images/data.qcow2")),
    "nic-add": lambda d: d.add_device(Interface.new("bridge", "br0", mac="52:54:00:aa:bb:cc")),
    "nic-remove": lambda d: d.remove_device(d.interfaces[0]),
    "boot-order-devices": _boot_cdrom_first,
    "metadata": _metadata,
    "features": _features,
    "rename": _rename,
    "graphics-listen": _graphics,
    "firmware-efi": lambda d: d.set_firmware("efi"),
    "clone": _clone,
    "net-dhcp-host": lambda n: n.ipv4.add_dhcp_host("52:54:00:12:34:56", "192.168.77.10", "db"),
    "net-isolate": lambda n: n.set_mode("isolated"),
    "net-route": lambda n: n.set_mode("route"),
    "pool-target": lambda p: setattr(p, "target_path", "/srv/images"),
    "snapshot-describe": lambda s: setattr(s, "description", "Before the big upgrade"),
}
ROOTS: dict[str, type[XMLObject]] = {"domain": Domain, "network": Network, "pool": StoragePool,
                                     "domainsnapshot": DomainSnapshot}


def _fixed_uuid(obj: XMLObject) -> XMLObject:
    obj.uuid = UUID  # type: ignore[attr-defined]
    return obj


BUILDS: dict[str, Callable[[], XMLObject]] = {
    "build-domain": lambda: Domain.new("new-guest", 1024, 2, "kvm", machine="q35", uuid=UUID),
    "build-domain-efi": lambda: Domain.new("efi-guest", 2048, 4, firmware="efi", uuid=UUID),
    "build-network-nat": lambda: _fixed_uuid(Network.new_nat("lab", "10.10.0.1/24")),
    "build-network-bridge": lambda: _fixed_uuid(Network.new_bridge("lan", "br0")),
    "build-pool-netfs": lambda: _fixed_uuid(
        StoragePool.new("netfs", "nfs", source_host="nas.lan", source_dir="/export/vm", target_path="/mnt/nfs")
    ),
    "build-volume-overlay": lambda: StorageVolume.new(
        "web01-overlay.qcow2", "20G", backing_path="/var/lib/libvirt/images/base.qcow2"
    ),
    "build-snapshot": lambda: DomainSnapshot.new("pre", "Before upgrade", memory="no",
                                                 disks=[("vda", "internal"), ("sda", "no")]),
}


def _compare(case: str, actual: str) -> None:
    out = DATA / f"{case}-out.xml"
    if REGEN:
        out.write_text(actual + "\n")
        return
    if not out.exists():
        pytest.fail(f"{out.name} missing; run with VIRTDASH_REGEN_GOLDEN=1 and review it")
    assert actual + "\n" == out.read_text()


@pytest.mark.parametrize("case", sorted(EDITS))
def test_edit_matches_golden_file(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    text = (DATA / f"{case}-in.xml").read_text()
    obj = Domain.parse(text) if text.startswith("<domain ") else None
    if obj is None:
        root = text.split(">", 1)[0].lstrip("<").split()[0]
        obj = ROOTS[root].parse(text)
    edit = EDITS[case]
    result = edit(obj, monkeypatch) if edit is _clone else edit(obj)
    target = result if case == "clone" else obj
    assert isinstance(target, XMLObject)
    _compare(case, target.to_string())
    # Reparsing our output gives the same document again (no drift on a second round trip).
    assert type(target).parse(target.to_string()).to_string() == target.to_string()


@pytest.mark.parametrize("case", sorted(BUILDS))
def test_builder_matches_golden_file(case: str) -> None:
    _compare(case, BUILDS[case]().to_string())

"""Our builders' output is accepted by libvirt's own test driver (``test:///default``).

Not a mock: the test driver parses and validates XML with libvirt's real code.
Skipped when libvirt-python is not installed. libvirt rewrites what it is given
(placement, addresses, units), so we compare meaning, not text.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from xmltest_helpers import corpus_params

from virtdash.xml import (
    Disk,
    Domain,
    DomainSnapshot,
    Graphics,
    Interface,
    Network,
    StoragePool,
    StorageVolume,
    Video,
)
from virtdash.xml.devices import Console, Input

libvirt = pytest.importorskip("libvirt", reason="libvirt-python is not installed")


@pytest.fixture
def conn() -> Iterator[Any]:
    libvirt.registerErrorHandler(lambda *_: None, None)  # keep libvirt from printing to stderr
    try:
        connection = libvirt.open("test:///default")
    except libvirt.libvirtError as exc:  # pragma: no cover - depends on the build
        pytest.skip(f"test:///default unavailable: {exc}")
    yield connection
    connection.close()


def _full_guest(name: str) -> Domain:
    dom = Domain.new(name, 1024, 2, "test")
    dom.add_device(Disk.new("vda", path=f"/var/lib/libvirt/images/{name}.qcow2"))
    dom.add_device(Disk.new("sda", device="cdrom", bus="sata", driver_type="raw"))
    dom.add_device(Interface.new("network", "default"))
    dom.add_device(Graphics.new("vnc"))
    dom.add_device(Video.new("virtio"))
    dom.add_device(Console.new("pty", "serial"))
    dom.add_device(Input.new("tablet", "usb"))
    dom.owner, dom.tags, dom.os_id = "alice", ["web"], "http://debian.org/debian/12"
    return dom


def test_libvirt_accepts_a_built_domain_and_we_read_its_answer(conn: Any) -> None:
    dom = _full_guest("built-guest")
    virdom = conn.defineXML(dom.to_string())
    try:
        back = Domain.parse(virdom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
        assert back.summary() | {"uuid": None} == dom.summary() | {"uuid": None}
        assert back.uuid == dom.uuid
    finally:
        virdom.undefine()


def test_an_edit_round_trips_through_libvirt(conn: Any) -> None:
    virdom = conn.defineXML(_full_guest("edit-guest").to_string())
    try:
        dom = Domain.parse(virdom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE))
        dom.set_memory_mib(2048, 1536)
        dom.change_media("sda", "/var/lib/libvirt/iso/x.iso")
        dom.set_boot_order([dom.find_disk("sda"), dom.find_disk("vda")])  # type: ignore[list-item]
        dom.title = "Edited"
        virdom = conn.defineXML(dom.to_string())
        back = Domain.parse(virdom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
        assert (back.memory_mib, back.current_memory_kib, back.title) == (2048, 1536 * 1024, "Edited")
        assert back.boot_order() == ["cdrom sda", "disk vda"]
        assert back.find_disk("sda").source == "/var/lib/libvirt/iso/x.iso"  # type: ignore[union-attr]
    finally:
        virdom.undefine()


def test_a_clone_is_definable_next_to_its_original(conn: Any) -> None:
    from virtdash.xml import clone_prepare

    original = conn.defineXML(_full_guest("orig-guest").to_string())
    plan = clone_prepare(Domain.parse(original.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)), "orig-guest-clone")
    for disk in plan.disks_to_copy:
        disk.set_source_file(disk.source.replace("orig-guest", "orig-guest-clone"))  # type: ignore[union-attr]
    clone = conn.defineXML(plan.domain.to_string())
    try:
        assert clone.UUIDString() != original.UUIDString()
    finally:
        clone.undefine()
        original.undefine()


@pytest.mark.parametrize("mode", ["nat", "route", "open", "isolated"])
def test_libvirt_accepts_each_network_mode(conn: Any, mode: str) -> None:
    net = Network.new(f"vd-{mode}", mode, ipv4="10.77.0.1/24")
    net.ipv4.add_dhcp_host("52:54:00:00:00:09", "10.77.0.9", "fixed")  # type: ignore[union-attr]
    virnet = conn.networkDefineXML(net.to_string())
    try:
        back = Network.parse(virnet.XMLDesc())
        assert (back.mode, back.ipv4.dhcp_start, back.ipv4.dhcp_end) == (  # type: ignore[union-attr]
            mode, "10.77.0.2", "10.77.0.254")
    finally:
        virnet.undefine()


def test_libvirt_accepts_a_bridged_network(conn: Any) -> None:
    virnet = conn.networkDefineXML(Network.new_bridge("vd-br", "br0").to_string())
    try:
        assert Network.parse(virnet.XMLDesc()).mode == "bridge"
    finally:
        virnet.undefine()


@pytest.mark.parametrize(
    "pool",
    [
        lambda: StoragePool.new("dir", "vd-dir", target_path="/var/lib/vd"),
        lambda: StoragePool.new("fs", "vd-fs", source_device="/dev/sdb1", target_path="/mnt/vd"),
        lambda: StoragePool.new("netfs", "vd-nfs", source_host="nas", source_dir="/export", target_path="/mnt/n"),
        lambda: StoragePool.new("logical", "vd-lvm", source_name="vg0"),
    ],
    ids=["dir", "fs", "netfs", "logical"],
)
def test_libvirt_accepts_each_pool_type(conn: Any, pool: Any) -> None:
    built = pool()
    virpool = conn.storagePoolDefineXML(built.to_string())
    try:
        assert StoragePool.parse(virpool.XMLDesc()).type == built.type
    finally:
        virpool.undefine()


def test_libvirt_creates_a_volume_from_our_xml(conn: Any) -> None:
    pool = conn.storagePoolLookupByName("default-pool")
    vol = pool.createXML(StorageVolume.new("vd-test.qcow2", "3G").to_string())
    try:
        back = StorageVolume.parse(vol.XMLDesc())
        assert (back.name, back.capacity) == ("vd-test.qcow2", 3 * 1024**3)
        assert back.target_path and back.target_path.endswith("/vd-test.qcow2")
    finally:
        vol.delete()


def test_libvirt_takes_our_snapshot_request(conn: Any) -> None:
    virdom = conn.lookupByName("test")
    snap = virdom.snapshotCreateXML(DomainSnapshot.new("vd-snap", "from a test").to_string())
    try:
        back = DomainSnapshot.parse(snap.getXMLDesc())
        assert (back.name, back.description) == ("vd-snap", "from a test")
        assert back.state and back.creation_time
    finally:
        snap.delete()


@pytest.mark.parametrize("path", corpus_params("domain"))
def test_corpus_domains_read_back_from_the_test_driver(conn: Any, path: Path) -> None:
    """Where libvirt accepts a corpus file as a test guest, our summary of its answer works."""
    dom = Domain.parse(path.read_text())
    dom.type, dom.name = "test", "corpus-probe"
    try:
        virdom = conn.defineXML(dom.to_string())
    except libvirt.libvirtError as exc:
        pytest.skip(f"libvirt refuses this corpus file on the test driver: {exc.get_error_message()}")
    try:
        summary = Domain.parse(virdom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)).summary()
        assert summary["name"] == "corpus-probe"
    finally:
        virdom.undefine()

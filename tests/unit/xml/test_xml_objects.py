"""Behaviour of the typed objects: properties, units, devices, builders, clone."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from lxml import etree

from virtdash.xml import (
    Disk,
    Domain,
    DomainSnapshot,
    Graphics,
    Interface,
    Network,
    StoragePool,
    StorageVolume,
    UnknownDevice,
    XMLObject,
    XMLValueError,
    clone_prepare,
    random_mac,
)
from virtdash.xml.devices import DEVICE_CLASSES
from virtdash.xml.names import validate_bridge_name, validate_mac, validate_uuid

GUEST = (Path(__file__).parent / "data" / "memory-set-in.xml").read_text()


@pytest.fixture
def dom() -> Domain:
    return Domain.parse(GUEST)


def test_it_reads_the_basics(dom: Domain) -> None:
    basics = (dom.name, dom.type, dom.title, dom.arch, dom.machine)
    assert basics == ("web01", "kvm", "Web server", "x86_64", "pc-q35-7.2")
    assert dom.memory_kib == 2 * 1024 * 1024 and dom.memory_mib == 2048
    assert dom.vcpus == 2 and dom.firmware == "bios" and dom.boot_order() == ["hd"]
    assert dom.os_id == "http://debian.org/debian/12"
    assert dom.features() == ["acpi", "apic", "vmport"]
    assert [type(d).__name__ for d in dom.devices()][:4] == ["Disk", "Disk", "Controller", "Controller"]


@pytest.mark.parametrize(("unit", "value", "kib"), [(None, "1024", 1024), ("MiB", "2", 2048), ("G", "1", 1024**2),
                                                     ("bytes", "1048576", 1024), ("MB", "1", 976)])
def test_memory_is_converted_to_kib(unit: str | None, value: str, kib: int) -> None:
    attr = f' unit="{unit}"' if unit else ""
    assert Domain.parse(f"<domain><memory{attr}>{value}</memory></domain>").memory_kib == kib


def test_memory_and_vcpu_setters_validate(dom: Domain) -> None:
    with pytest.raises(XMLValueError):
        dom.set_memory_mib(1024, 2048)
    with pytest.raises(XMLValueError):
        dom.set_memory_mib(0)
    with pytest.raises(XMLValueError):
        dom.set_vcpus(4, 2)
    with pytest.raises(XMLValueError):
        dom.set_vcpus(0)
    dom.set_vcpus(4)
    assert dom.vcpus == dom.vcpus_max == 4 and dom.vcpus_current_attr is None


def test_properties_refuse_wrong_types_and_bad_names(dom: Domain) -> None:
    with pytest.raises(XMLValueError):
        dom.vcpus_max = "4"
    with pytest.raises(XMLValueError):
        dom.boot_menu = "yes"
    with pytest.raises(ValueError):
        dom.name = "../etc"
    with pytest.raises(ValueError):
        dom.description = "bad \x00 control"  # lxml refuses non-XML characters


def test_user_text_is_escaped_not_interpreted(dom: Domain) -> None:
    dom.description = "</description><devices><hostdev/></devices>"
    again = Domain.parse(dom.to_string())
    assert again.description == "</description><devices><hostdev/></devices>"
    assert not [d for d in again.devices() if d.kind == "hostdev"]


def test_malformed_values_raise_a_clear_error() -> None:
    dom = Domain.parse("<domain><vcpu>lots</vcpu><os><bootmenu enable='maybe'/></os></domain>")
    with pytest.raises(XMLValueError, match="vcpus_max: expected an integer"):
        _ = dom.vcpus_max
    with pytest.raises(XMLValueError, match="'yes' or 'no'"):
        _ = dom.boot_menu


def test_firmware_detection_and_switching() -> None:
    pflash = Domain.parse(
        "<domain><os><type>hvm</type><loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE.fd</loader>"
        "<nvram>/var/lib/libvirt/qemu/nvram/x_VARS.fd</nvram></os></domain>"
    )
    assert pflash.firmware == "efi"
    pflash.set_firmware("bios")
    assert pflash.firmware == "bios" and pflash.loader is None and pflash.nvram is None
    pflash.set_firmware("efi")
    assert pflash.os_firmware == "efi"
    with pytest.raises(XMLValueError):
        pflash.set_firmware("coreboot")


def test_boot_devs_and_per_device_order(dom: Domain) -> None:
    dom.boot_devs = ["cdrom", "hd"]
    assert dom.boot_devs == ["cdrom", "hd"]
    with pytest.raises(XMLValueError):
        dom.boot_devs = ["usb"]
    nic = dom.interfaces[0]
    dom.set_boot_order([nic, dom.disks[0]])
    assert dom.boot_devs == [] and dom.boot_order() == ["interface 52:54:00:6b:3c:58", "disk vda"]


def test_tags_and_owner_live_in_our_namespace(dom: Domain) -> None:
    dom.owner, dom.tags = "alice", [" web ", "web", "", "db"]
    assert dom.tags == ["web", "db"]
    meta = dom.element.find("metadata/{https://virtdash.dev/xmlns/1}instance")
    assert meta is not None and meta.nsmap["virtdash"] == "https://virtdash.dev/xmlns/1"
    dom.tags, dom.owner = [], None
    assert dom.element.find("metadata/{https://virtdash.dev/xmlns/1}instance") is None
    assert dom.os_id == "http://debian.org/debian/12"  # other metadata untouched


def test_change_media(dom: Domain) -> None:
    dom.change_media("sda", None)
    assert dom.find_disk("sda").source is None  # type: ignore[union-attr]
    dom.change_media("sda", "/dev/sr0")
    disk = dom.find_disk("sda")
    assert disk is not None and (disk.type, disk.source_dev) == ("block", "/dev/sr0")
    with pytest.raises(XMLValueError, match="not a cdrom"):
        dom.change_media("vda", "/x.iso")
    with pytest.raises(XMLValueError, match="No disk"):
        dom.change_media("hdz", None)


def test_add_and_remove_devices(dom: Domain) -> None:
    disk = dom.add_device(Disk.new("vdb", path="/var/lib/libvirt/images/b.qcow2"))
    assert [d.target for d in dom.disks] == ["vda", "sda", "vdb"]
    with pytest.raises(XMLValueError, match="already belongs"):
        dom.add_device(disk)
    dom.remove_device(disk)
    assert [d.target for d in dom.disks] == ["vda", "sda"]
    with pytest.raises(XMLValueError):
        dom.remove_device(Disk.new("vdz"))


def test_unknown_devices_are_listed_not_dropped() -> None:
    dom = Domain.parse("<domain><devices><shmem name='x'><size unit='M'>4</size></shmem><!-- c --></devices></domain>")
    (dev,) = dom.devices()
    assert isinstance(dev, UnknownDevice) and dev.attributes == {"name": "x"} and dev.describe() == "shmem"


def test_disk_sources_of_every_kind() -> None:
    disk = Disk.new("vda")
    disk.set_source_volume("default", "a.qcow2")
    assert disk.source == "default/a.qcow2" and disk.type == "volume" and disk.source_file is None
    net = Disk.parse("<disk type='network'><source protocol='rbd' name='pool/img'><host name='ceph1'/></source></disk>")
    assert net.source == "rbd://ceph1/pool/img"


def test_graphics_listen_keeps_attribute_and_element_in_step() -> None:
    gfx = Graphics.new("spice", listen=None, port=5901)
    assert gfx.listen is None and gfx.autoport is False and gfx.port == 5901
    gfx.listen = "0.0.0.0"
    assert gfx.listen_attr == "0.0.0.0" and gfx.element.find("listen").get("address") == "0.0.0.0"
    gfx.listen = None
    assert gfx.element.find("listen") is None and gfx.listen is None


def test_interfaces_get_locally_administered_macs() -> None:
    for _ in range(20):
        assert re.fullmatch(r"52:54:00(:[0-9a-f]{2}){3}", random_mac())
    assert Interface.new("direct", "eth0").source_mode == "bridge"
    with pytest.raises(ValueError):
        Interface.new("network", "default", mac="ff:ff:ff:ff:ff:ff")


def test_clone_prepare_leaves_the_original_alone(dom: Domain) -> None:
    before = dom.to_string()
    plan = clone_prepare(dom, "web01-copy")
    assert dom.to_string() == before
    assert plan.domain.name == "web01-copy" and plan.domain.uuid is None
    assert plan.domain.interfaces[0].mac != dom.interfaces[0].mac
    assert plan.sources == ["/var/lib/libvirt/images/web01.qcow2"]  # not the cdrom


def test_domain_new_validates() -> None:
    with pytest.raises(ValueError):
        Domain.new("bad/name", 1024, 1)
    with pytest.raises(XMLValueError):
        Domain.new("ok", 1024, 0)


def test_storage_builders_validate() -> None:
    with pytest.raises(XMLValueError, match="needs source_host, source_dir"):
        StoragePool.new("netfs", "nfs", target_path="/mnt")
    with pytest.raises(XMLValueError):
        StoragePool.new("iscsi", "x", target_path="/dev/disk/by-path")
    with pytest.raises(ValueError):
        StorageVolume.new("../escape.qcow2", "1G")
    with pytest.raises(ValueError):
        StorageVolume.new("big.qcow2", "10P")
    with pytest.raises(XMLValueError):
        StorageVolume.new("a.raw", "1G", format="raw", backing_path="/base.qcow2")
    pool = StoragePool.parse("<pool type='dir'><capacity unit='GiB'>2</capacity><available>5</available></pool>")
    assert pool.capacity == 2 * 1024**3 and pool.available == 5


def test_network_builders_and_mode() -> None:
    assert Network.new_isolated("iso").mode == "isolated"
    assert Network.parse("<network><forward/></network>").mode == "nat"
    with pytest.raises(XMLValueError):
        Network.new("n", "nat", ipv4="10.0.0.0/24")  # the network address itself
    with pytest.raises(XMLValueError):
        Network.new("n", "nat", ipv4="300.1.1.1/24")
    with pytest.raises(XMLValueError):
        Network.new("n", "bridge")
    net = Network.parse("<network><ip address='10.1.0.254' netmask='255.255.255.0'><dhcp/></ip></network>")
    assert str(net.ipv4.interface) == "10.1.0.254/24"  # type: ignore[union-attr]
    with pytest.raises(XMLValueError):
        net.ipv4.add_dhcp_host("52:54:00:00:00:01", "10.2.0.5")  # type: ignore[union-attr]
    gw_last = Network.new("n", "nat", ipv4="10.3.0.254/24").ipv4
    assert (gw_last.dhcp_start, gw_last.dhcp_end) == ("10.3.0.1", "10.3.0.253")  # type: ignore[union-attr]


def test_snapshot_builder_validates() -> None:
    with pytest.raises(XMLValueError):
        DomainSnapshot.new("a/b")
    with pytest.raises(XMLValueError):
        DomainSnapshot.new("s", memory="external")
    snap = DomainSnapshot.parse((Path(__file__).parent / "data" / "snapshot-describe-in.xml").read_text())
    assert (snap.parent_name, snap.state, snap.created.year) == ("fresh-install", "running", 2023)  # type: ignore[union-attr]
    assert [(d.name, d.snapshot) for d in snap.disks] == [("vda", "internal"), ("sda", "no")]


ALL_CLASSES: list[type[XMLObject]] = [Domain, Network, StoragePool, StorageVolume, DomainSnapshot,
                                      *DEVICE_CLASSES.values()]
SAMPLES = {validate_uuid: "00000000-1111-2222-3333-444444444444", validate_mac: "52:54:00:01:02:03",
           validate_bridge_name: "virbr3"}


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda c: c.__name__)
def test_every_mapped_property_round_trips_on_a_blank_element(cls: type[XMLObject]) -> None:
    """Like virt-manager's test_checkprops: no mapped property is left unexercised."""
    obj = cls.blank()
    empty = etree.tostring(obj.element)
    for name, prop in cls.properties().items():
        samples: list[object] = [True, False] if prop.kind is bool else [7] if prop.kind is int else [
            SAMPLES.get(prop.validate, "sample-value")]  # type: ignore[arg-type]
        for value in samples:
            setattr(obj, name, value)
            assert getattr(obj, name) == value, f"{cls.__name__}.{name}"
            assert type(obj).parse(obj.to_string()).__getattribute__(name) == value
        setattr(obj, name, None)
        assert getattr(obj, name) in (None, False), f"{cls.__name__}.{name} not cleared"
        assert etree.tostring(obj.element) == empty, f"{cls.__name__}.{name} left traces"

"""Every real-world document in the shared corpus survives parse → serialize and our edits.

The corpus is virt-manager's xmlparse test data, read from ``<repo>/../shared/corpus``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from lxml import etree
from xmltest_helpers import assert_only_changed, c14n, corpus_params, flatten

from virtdash.xml import (
    DomainSnapshot,
    Network,
    UnknownDevice,
    XMLObject,
    XMLProperty,
    XMLSizeProperty,
    parse_untrusted,
    to_string,
)
from virtdash.xml.base import find_path
from virtdash.xml.devices import DEVICE_CLASSES, Device
from virtdash.xml.domain import Domain
from virtdash.xml.names import validate_bridge_name, validate_mac, validate_uuid

ROOT_CLASSES: dict[str, type[XMLObject]] = {"domain": Domain, "network": Network, "domainsnapshot": DomainSnapshot}
SAMPLE_TEXT = {validate_uuid: str(uuid.UUID(int=0xABCDEF)), validate_mac: "52:54:00:ab:cd:ef",
               validate_bridge_name: "virbr9"}


def sample_value(prop: XMLProperty, current: object) -> object:
    """A value different from ``current`` that the property accepts."""
    if prop.presence or prop.kind is bool:
        return not current
    if prop.kind is int:
        return 4242 if current != 4242 else 4243
    return SAMPLE_TEXT.get(prop.validate, "virtdash-sample")  # type: ignore[arg-type]


def load(path: Path) -> XMLObject:
    root = parse_untrusted(path.read_text())
    return ROOT_CLASSES[root.tag](root)


@pytest.mark.parametrize("path", corpus_params())
def test_round_trip_loses_nothing(path: Path) -> None:
    original = etree.fromstring(path.read_bytes())
    reparsed = etree.fromstring(load(path).to_string().encode())
    assert c14n(reparsed) == c14n(original)


@pytest.mark.parametrize("path", corpus_params("domain"))
def test_every_device_parses_to_a_typed_or_unknown_object(path: Path) -> None:
    dom = Domain.parse(path.read_text())
    devices_node = dom.element.find("devices")
    children = [] if devices_node is None else [c for c in devices_node if isinstance(c.tag, str)]
    devices = list(dom.devices())
    assert len(devices) == len([c for c in children if c.tag != "emulator"])
    for dev in devices:
        expected = DEVICE_CLASSES.get(dev.element.tag, UnknownDevice)
        assert type(dev) is expected
        assert dev.describe()
        for name in type(dev).properties():
            getattr(dev, name)  # reading any mapped property never raises


@pytest.mark.parametrize("path", corpus_params("domain"))
def test_summary_works_on_every_domain(path: Path) -> None:
    summary = Domain.parse(path.read_text()).summary()
    assert set(summary) >= {"vcpus", "memory_kib", "disks", "nics", "graphics", "os_id", "firmware", "boot_order"}
    assert summary["firmware"] in ("bios", "efi")
    for disk in summary["disks"]:
        assert set(disk) == {"target", "bus", "device", "source", "format"}
    for nic in summary["nics"]:
        assert set(nic) == {"mac", "model", "type", "source"}


def _edit_each_property(obj: XMLObject, root: etree._Element, check: Callable[..., None]) -> int:
    """Set every mapped property of ``obj`` to a new value; assert only that spot changed."""
    edited = 0
    for name, prop in type(obj).properties().items():
        before = etree.fromstring(etree.tostring(root))
        current = getattr(obj, name)
        value = sample_value(prop, current)
        setattr(obj, name, value)
        assert getattr(obj, name) == value, f"{type(obj).__name__}.{name}"
        node = find_path(obj.element, prop.steps)
        target = root.getroottree().getpath(node) if node is not None else None
        if target is None:  # presence flag switched off: look it up in the old tree
            old_obj = find_path(_same_node(before, root, obj.element), prop.steps)
            assert old_obj is not None
            target = before.getroottree().getpath(old_obj)
        check(before, root, target)
        if current is None or (prop.presence and current is False):
            # Undo of a property that was absent must restore the document byte for byte.
            setattr(obj, name, None if not prop.presence else False)
            _assert_restored(before, root, target, f"{type(obj).__name__}.{name}")
        elif not isinstance(prop, XMLSizeProperty) and not prop.presence:
            setattr(obj, name, current)
        edited += 1
    return edited


def _assert_restored(before: etree._Element, after: etree._Element, target: str, what: str) -> None:
    """Byte-identical, except that an already-empty ancestor on the path (``<devices>
    </devices>``) may have been pruned along with what we created: libvirt treats both alike."""
    if c14n(after) == c14n(before):
        return
    assert not flatten(after) - flatten(before), f"undoing {what} added something"
    for path, attrs, text in flatten(before) - flatten(after):
        assert target.startswith(path + "/") and not attrs and not text, f"undoing {what} lost {path}"
        assert len(before.getroottree().xpath(path)[0]) == 0, f"undoing {what} lost non-empty {path}"


def _same_node(other_root: etree._Element, root: etree._Element, node: etree._Element) -> etree._Element:
    found = other_root.getroottree().xpath(root.getroottree().getpath(node))
    return found[0]


@pytest.mark.parametrize("path", corpus_params("domain"))
def test_editing_one_property_changes_only_that(path: Path) -> None:
    dom = Domain.parse(path.read_text())
    edited = _edit_each_property(dom, dom.element, assert_only_changed)
    for index in range(len(list(dom.devices()))):
        device: Device = list(dom.devices())[index]
        edited += _edit_each_property(device, dom.element, assert_only_changed)
    assert edited >= len(Domain.properties())


@pytest.mark.parametrize("path", corpus_params())
def test_corpus_survives_being_edited_and_reparsed(path: Path) -> None:
    obj = load(path)
    obj.element.set("virtdash-probe", "1")
    again = parse_untrusted(to_string(obj.element))
    del again.attrib["virtdash-probe"]
    assert c14n(again) == c14n(etree.fromstring(path.read_bytes()))

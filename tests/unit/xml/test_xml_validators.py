"""Name validators and size parsing refuse what could escape a directory or make no sense."""

from __future__ import annotations

import pytest

from virtdash.xml import InvalidNameError, InvalidSizeError, parse_size, validate_guest_name, validate_volume_name
from virtdash.xml.names import validate_bridge_name, validate_mac, validate_uuid
from virtdash.xml.units import GIB, KIB, MIB, PIB, format_size


@pytest.mark.parametrize("name", ["web01", "a", "db.prod-1", "A_b", "x" * 64])
def test_guest_name_accepts_plain_names(name: str) -> None:
    assert validate_guest_name(name) == name


@pytest.mark.parametrize(
    "name",
    ["", "../../etc/passwd", "a/b", "nul\x00byte", "x" * 65, "x" * 300, "-rf", ".hidden", "tab\tname",
     "spa ce", "é", "semi;colon", None, 42],
)
def test_guest_name_refuses_dangerous_or_odd_names(name: object) -> None:
    with pytest.raises(InvalidNameError):
        validate_guest_name(name)


def test_guest_name_error_is_readable() -> None:
    with pytest.raises(ValueError, match="65 characters long; the limit is 64"):
        validate_guest_name("x" * 65)


@pytest.mark.parametrize("name", ["disk.qcow2", "web01-vda.img", "a+b_c", "_x", "v" * 200])
def test_volume_name_accepts_file_names(name: str) -> None:
    assert validate_volume_name(name) == name


@pytest.mark.parametrize(
    "name",
    ["", "..", "../../etc/passwd", "a/b", "/abs", ".qcow2", "-o.img", "a..b", "nul\x00", "ctl\x1b[0m",
     "v" * 201, "v" * 300, "new\nline", "space .img"],
)
def test_volume_name_refuses_traversal_and_control_characters(name: str) -> None:
    with pytest.raises(InvalidNameError):
        validate_volume_name(name)


def test_mac_and_uuid_and_bridge_validators() -> None:
    assert validate_mac("52:54:00:AB:cd:01") == "52:54:00:ab:cd:01"
    for bad in ("01:00:5e:00:00:01", "52:54:00:ab:cd", "52-54-00-ab-cd-ef", "zz:54:00:ab:cd:ef"):
        with pytest.raises(InvalidNameError):
            validate_mac(bad)
    assert validate_uuid("4B1A0E2C-5F3D-4C8E-9A7B-2D6F1E0C3B5A") == "4b1a0e2c-5f3d-4c8e-9a7b-2d6f1e0c3b5a"
    with pytest.raises(InvalidNameError):
        validate_uuid("not-a-uuid")
    assert validate_bridge_name("virbr0") == "virbr0"
    with pytest.raises(InvalidNameError):
        validate_bridge_name("a-very-long-bridge-name")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("10G", 10 * GIB), ("10GiB", 10 * GIB), ("10GB", 10 * 10**9), ("512M", 512 * MIB), ("1.5G", 3 * GIB // 2),
     ("4096", 4096), (" 8 k ", 8 * KIB), ("1P", PIB), (2048, 2048)],
)
def test_parse_size_understands_libvirt_units(text: str | int, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["10P", "-1", "-1G", "0", "", "ten", "10X", "1e9", "10 G B", "2E", True])
def test_parse_size_refuses_negative_absurd_or_malformed_sizes(text: object) -> None:
    with pytest.raises(InvalidSizeError):
        parse_size(text)  # type: ignore[arg-type]


def test_parse_size_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match="larger than the limit of 1 PiB"):
        parse_size("10P")
    with pytest.raises(ValueError, match="negative"):
        parse_size("-1")
    assert parse_size("0", allow_zero=True) == 0


def test_format_size() -> None:
    assert format_size(3 * GIB) == "3 GiB"
    assert format_size(1536 * MIB) == "1.5 GiB"

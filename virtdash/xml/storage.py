"""``<pool>`` and ``<volume>``. Sizes are bytes in Python, whatever unit libvirt used."""

from __future__ import annotations

import uuid as uuid_mod
from typing import Self

from .base import XMLObject, XMLProperty, XMLSizeProperty
from .errors import XMLValueError
from .names import validate_pool_name, validate_uuid, validate_volume_name
from .units import parse_size

POOL_TYPES = ("dir", "fs", "netfs", "logical")
VOLUME_FORMATS = ("raw", "qcow2")


class StoragePool(XMLObject):
    TAG = "pool"
    CHILD_ORDER = {"pool": ("name", "uuid", "capacity", "allocation", "available", "source", "target")}

    type = XMLProperty("./@type")
    name = XMLProperty("./name", validate=validate_pool_name)
    uuid = XMLProperty("./uuid", validate=validate_uuid)
    capacity = XMLSizeProperty("./capacity", "bytes", 1, "bytes")
    allocation = XMLSizeProperty("./allocation", "bytes", 1, "bytes")
    available = XMLSizeProperty("./available", "bytes", 1, "bytes")
    target_path = XMLProperty("./target/path")
    source_host = XMLProperty("./source/host/@name")
    source_dir = XMLProperty("./source/dir/@path")
    source_device = XMLProperty("./source/device/@path")
    source_name = XMLProperty("./source/name")
    source_format = XMLProperty("./source/format/@type")

    @classmethod
    def new(
        cls,
        type: str,
        name: str,
        *,
        target_path: str | None = None,
        source_host: str | None = None,
        source_dir: str | None = None,
        source_device: str | None = None,
        source_name: str | None = None,
        source_format: str | None = None,
    ) -> Self:
        """A pool definition; which sources are required depends on ``type``."""
        if type not in POOL_TYPES:
            raise XMLValueError(f"Pool type must be one of {', '.join(POOL_TYPES)}, got {type!r}.")
        required = {
            "dir": ("target_path",),
            "fs": ("source_device", "target_path"),
            "netfs": ("source_host", "source_dir", "target_path"),
            "logical": ("source_name",),
        }[type]
        given = {
            "target_path": target_path,
            "source_host": source_host,
            "source_dir": source_dir,
            "source_device": source_device,
            "source_name": source_name,
        }
        if missing := [field for field in required if not given[field]]:
            raise XMLValueError(f"A {type} pool needs {', '.join(missing)}.")
        pool = cls.blank()
        pool.type = type
        pool.name = name
        pool.uuid = str(uuid_mod.uuid4())
        pool.source_host = source_host
        pool.source_dir = source_dir
        pool.source_device = source_device
        pool.source_name = source_name
        pool.source_format = source_format
        pool.target_path = target_path or (f"/dev/{source_name}" if type == "logical" else None)
        return pool


class StorageVolume(XMLObject):
    TAG = "volume"
    CHILD_ORDER = {"volume": ("name", "key", "source", "capacity", "allocation", "physical", "target", "backingStore")}

    type = XMLProperty("./@type")
    name = XMLProperty("./name", validate=validate_volume_name)
    key = XMLProperty("./key")
    capacity = XMLSizeProperty("./capacity", "bytes", 1, "bytes")
    allocation = XMLSizeProperty("./allocation", "bytes", 1, "bytes")
    format = XMLProperty("./target/format/@type")
    target_path = XMLProperty("./target/path")
    backing_path = XMLProperty("./backingStore/path")
    backing_format = XMLProperty("./backingStore/format/@type")

    @classmethod
    def new(
        cls,
        name: str,
        capacity: int | str,
        *,
        format: str = "qcow2",
        allocation: int | str = 0,
        backing_path: str | None = None,
        backing_format: str | None = None,
    ) -> Self:
        """``capacity``/``allocation`` in bytes or as ``"20G"``; a backing file makes an overlay."""
        if format not in VOLUME_FORMATS:
            raise XMLValueError(f"Volume format must be one of {', '.join(VOLUME_FORMATS)}, got {format!r}.")
        if backing_path and format != "qcow2":
            raise XMLValueError("Only qcow2 volumes can have a backing file.")
        vol = cls.blank()
        vol.name = name
        vol.capacity = parse_size(capacity)
        vol.allocation = parse_size(allocation, allow_zero=True)
        vol.format = format
        if backing_path:
            vol.backing_path = backing_path
            vol.backing_format = backing_format or "qcow2"
        return vol


__all__ = ["StoragePool", "StorageVolume", "parse_size", "validate_volume_name"]

"""Pure-Python libvirt XML layer: typed objects over lxml, edited in place.

No Django and no ``libvirt`` imports here; ``hosts/`` feeds us XML strings and
defines what we serialize. See ``base.py`` for the mechanism.
"""

from .base import (
    XMLChildren,
    XMLObject,
    XMLProperty,
    XMLSizeProperty,
    parse_untrusted,
    to_string,
)
from .clone import ClonePlan, clone_prepare
from .devices import (
    Channel,
    Console,
    Controller,
    Device,
    Disk,
    Graphics,
    Hostdev,
    Input,
    Interface,
    Serial,
    Sound,
    UnknownDevice,
    Video,
    device_for,
    random_mac,
)
from .domain import Domain
from .errors import InvalidNameError, InvalidSizeError, XMLInputError, XMLValueError
from .names import (
    validate_guest_name,
    validate_mac,
    validate_uuid,
    validate_volume_name,
)
from .network import Network, NetworkIP
from .snapshot import DomainSnapshot
from .storage import StoragePool, StorageVolume
from .summary import summarize
from .units import parse_size

__all__ = [
    "Channel", "ClonePlan", "Console", "Controller", "Device", "Disk", "Domain", "DomainSnapshot",
    "Graphics", "Hostdev", "Input", "Interface", "InvalidNameError", "InvalidSizeError", "Network",
    "NetworkIP", "Serial", "Sound", "StoragePool", "StorageVolume", "UnknownDevice", "Video",
    "XMLChildren", "XMLInputError", "XMLObject", "XMLProperty", "XMLSizeProperty", "XMLValueError",
    "clone_prepare", "device_for", "parse_size", "parse_untrusted", "random_mac", "summarize",
    "to_string", "validate_guest_name", "validate_mac", "validate_uuid", "validate_volume_name",
]

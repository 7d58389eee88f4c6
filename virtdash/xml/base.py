"""XPath-mapped XML objects edited in place, after virt-manager's ``virtinst/xmlbuilder.py``.

An :class:`XMLObject` wraps one lxml element. :class:`XMLProperty` descriptors map a
Python attribute onto a tiny XPath subset (``./a/b[@x='y']/@attr`` or element text);
setting creates the missing elements, deleting removes what became empty. Nothing
else in the tree is touched, so elements we do not model survive a round trip.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar, Generic, Self, TypeVar, overload

from lxml import etree

from .errors import InvalidSizeError, XMLInputError, XMLValueError
from .tree import (
    NAMESPACES,
    Element,
    append_child,
    find_path,
    parse_xpath,
    place_child,
    prune_empty,
    remove_child,
)
from .units import to_bytes

MAX_XML_BYTES = 1024 * 1024


_PARSER_OPTIONS: dict[str, Any] = {
    "resolve_entities": False,
    "no_network": True,
    "huge_tree": False,
    "load_dtd": False,
    "dtd_validation": False,
    "remove_blank_text": False,
    "remove_comments": False,
    "remove_pis": False,
    "strip_cdata": False,
}


def _parser() -> etree.XMLParser:
    # A fresh parser per call: lxml parsers are not thread-safe.
    return etree.XMLParser(**_PARSER_OPTIONS)


def parse_untrusted(text: str | bytes, root: str | None = None, max_bytes: int = MAX_XML_BYTES) -> Element:
    """Parse XML from anywhere (libvirt, an upload, a form) without trusting it.

    Refuses documents over ``max_bytes``, anything with a DOCTYPE (so no entity
    tricks: XXE, billion laughs), malformed XML and, when ``root`` is given, a
    different root tag. Raises :class:`XMLInputError`.
    """
    data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    if len(data) > max_bytes:
        raise XMLInputError(f"XML document is {len(data)} bytes; the limit is {max_bytes}.")
    if not data.strip():
        raise XMLInputError("XML document is empty.")
    # A str was encoded to UTF-8 above, so override whatever encoding it declares.
    parser = etree.XMLParser(encoding="utf-8", **_PARSER_OPTIONS) if isinstance(text, str) else _parser()
    try:
        doc = etree.fromstring(data, parser).getroottree()
    except etree.XMLSyntaxError as exc:
        raise XMLInputError(f"Not well-formed XML: {exc}") from None
    info = doc.docinfo
    if info.doctype or info.internalDTD is not None or info.externalDTD is not None:
        raise XMLInputError("XML with a DOCTYPE or ENTITY declaration is refused.")
    element = doc.getroot()
    if any(isinstance(node, etree._Entity) for node in element.iter()):
        raise XMLInputError("XML with entity references is refused.")
    if root is not None and element.tag != root:
        raise XMLInputError(f"Expected a <{root}> document, got <{_display_tag(element)}>.")
    return element


def to_string(element: Element) -> str:
    """Serialize without an XML declaration, as libvirt's ``*DefineXML`` expects."""
    return etree.tostring(element, encoding="unicode")


def _display_tag(element: Element) -> str:
    return etree.QName(element).localname if isinstance(element.tag, str) else "?"


__all__ = [
    "MAX_XML_BYTES", "NAMESPACES", "ChildList", "Element", "XMLChildren", "XMLObject", "XMLProperty",
    "append_child", "find_path", "parse_untrusted", "parse_xpath", "place_child", "prune_empty", "remove_child",
    "to_string",
]


# ---------------------------------------------------------------- descriptors

BOOL_YES_NO = ("yes", "no")
BOOL_ON_OFF = ("on", "off")


class XMLProperty:
    """Map an attribute onto ``xpath`` (element text, or ``@attr`` at the end).

    ``kind`` is ``str``, ``int`` or ``bool``. Booleans are stored as ``bool_values``
    (``("yes", "no")`` or ``("on", "off")``), or, with ``presence=True``, as the
    existence of the element itself (``<readonly/>``, ``<acpi/>``). ``None`` deletes.
    """

    def __init__(
        self,
        xpath: str,
        kind: type = str,
        bool_values: tuple[str, str] = BOOL_YES_NO,
        presence: bool = False,
        validate: Callable[[Any], Any] | None = None,
    ) -> None:
        self.xpath = xpath
        self.kind = kind
        self.bool_values = bool_values
        self.presence = presence
        self.validate = validate
        self.steps, self.attr = parse_xpath(xpath)
        self.name = xpath

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type) -> XMLProperty: ...
    @overload
    def __get__(self, obj: XMLObject, owner: type) -> Any: ...
    def __get__(self, obj: XMLObject | None, owner: type) -> Any:
        if obj is None:
            return self
        node = find_path(obj.element, self.steps)
        if self.presence:
            return node is not None
        if node is None:
            return None
        raw = node.get(self.attr) if self.attr else node.text
        return None if raw is None else self._decode(raw)

    def __set__(self, obj: XMLObject, value: Any) -> None:
        if value is not None and self.validate is not None:
            value = self.validate(value) or value
        if self.presence:
            if value:
                find_path(obj.element, self.steps, create=True, order=obj.CHILD_ORDER)
            else:
                self.__delete__(obj)
            return
        if value is None:
            self.__delete__(obj)
            return
        node = find_path(obj.element, self.steps, create=True, order=obj.CHILD_ORDER)
        assert node is not None
        text = self._encode(value)
        if self.attr:
            node.set(self.attr, text)
        else:
            node.text = text

    def __delete__(self, obj: XMLObject) -> None:
        node = find_path(obj.element, self.steps)
        if node is None:
            return
        if self.attr:
            node.attrib.pop(self.attr, None)
        elif self.presence:
            parent = node.getparent()
            remove_child(node)
            prune_empty(obj.element, parent)
            return
        else:
            node.text = None
        prune_empty(obj.element, node)

    def _decode(self, raw: str) -> Any:
        if self.kind is bool:
            yes, no = self.bool_values
            if raw == yes:
                return True
            if raw == no:
                return False
            raise XMLValueError(f"{self.name}: expected {yes!r} or {no!r}, got {raw!r}.")
        if self.kind is int:
            text = raw.strip()
            try:
                return int(text, 16) if text.lower().startswith("0x") else int(text)
            except ValueError:
                raise XMLValueError(f"{self.name}: expected an integer, got {raw!r}.") from None
        return raw

    def _encode(self, value: Any) -> str:
        if self.kind is bool:
            if not isinstance(value, bool):
                raise XMLValueError(f"{self.name}: expected True or False, got {value!r}.")
            return self.bool_values[0] if value else self.bool_values[1]
        if self.kind is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise XMLValueError(f"{self.name}: expected an integer, got {value!r}.")
            return str(value)
        if not isinstance(value, str):
            raise XMLValueError(f"{self.name}: expected text, got {value!r}.")
        return value


class XMLSizeProperty(XMLProperty):
    """An integer amount stored as text plus a ``unit`` attribute, e.g. ``<memory unit='MiB'>``.

    Reads convert whatever unit libvirt used (``default_unit`` if none) to multiples of
    ``scale`` bytes; writes store the value with ``unit=store_unit``.
    """

    def __init__(self, xpath: str, default_unit: str, scale: int, store_unit: str) -> None:
        super().__init__(xpath, int)
        self.default_unit, self.scale, self.store_unit = default_unit, scale, store_unit

    def __get__(self, obj: XMLObject | None, owner: type) -> Any:
        if obj is None:
            return self
        node = find_path(obj.element, self.steps)
        if node is None or node.text is None:
            return None
        try:
            amount = to_bytes(self._decode(node.text), node.get("unit"), self.default_unit)
        except InvalidSizeError as exc:
            raise XMLValueError(f"{self.name}: {exc}") from None
        return amount // self.scale

    def __set__(self, obj: XMLObject, value: Any) -> None:
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise XMLValueError(f"{self.name}: expected a non-negative integer, got {value!r}.")
        super().__set__(obj, value)
        node = find_path(obj.element, self.steps)
        if node is not None:
            node.set("unit", self.store_unit)

    def __delete__(self, obj: XMLObject) -> None:
        node = find_path(obj.element, self.steps)
        if node is not None:
            node.attrib.pop("unit", None)
        super().__delete__(obj)


T = TypeVar("T", bound="XMLObject")


class XMLObject:
    """A typed view over one lxml element; edits go straight into the tree."""

    TAG: ClassVar[str] = ""
    #: Schema order of children, by parent tag, used when creating elements.
    CHILD_ORDER: ClassVar[dict[str, tuple[str, ...]]] = {}

    def __init__(self, element: Element) -> None:
        self.element = element

    @classmethod
    def parse(cls, text: str | bytes) -> Self:
        return cls(parse_untrusted(text, root=cls.TAG or None))

    @classmethod
    def blank(cls) -> Self:
        """A new, empty element of this class's tag, not attached anywhere."""
        return cls(etree.Element(cls.TAG))

    def to_string(self) -> str:
        return to_string(self.element)

    def copy(self) -> Self:
        import copy

        return type(self)(copy.deepcopy(self.element))

    @classmethod
    def properties(cls) -> dict[str, XMLProperty]:
        """Every :class:`XMLProperty` of the class, by attribute name."""
        found: dict[str, XMLProperty] = {}
        for klass in reversed(cls.__mro__):
            found.update({k: v for k, v in vars(klass).items() if isinstance(v, XMLProperty)})
        return found

    def __eq__(self, other: object) -> bool:
        return isinstance(other, XMLObject) and other.element is self.element

    def __hash__(self) -> int:
        return id(self.element)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {_display_tag(self.element)}>"


class ChildList(Sequence[T]):
    """The children with ``cls.TAG`` under ``parent_xpath`` of an object, live."""

    def __init__(self, owner: XMLObject, cls: type[T], parent_xpath: str) -> None:
        self._owner, self._cls = owner, cls
        self._steps, _ = parse_xpath(parent_xpath)

    def _elements(self) -> list[Element]:
        parent = find_path(self._owner.element, self._steps)
        return [] if parent is None else list(parent.iterchildren(self._cls.TAG))

    def __iter__(self) -> Iterator[T]:
        return (self._cls(el) for el in self._elements())

    def __len__(self) -> int:
        return len(self._elements())

    @overload
    def __getitem__(self, index: int) -> T: ...
    @overload
    def __getitem__(self, index: slice) -> list[T]: ...
    def __getitem__(self, index: int | slice) -> T | list[T]:
        if isinstance(index, slice):
            return [self._cls(el) for el in self._elements()[index]]
        return self._cls(self._elements()[index])

    def append(self, child: T) -> T:
        parent = find_path(self._owner.element, self._steps, create=True)
        assert parent is not None
        append_child(parent, child.element)
        return child

    def new(self) -> T:
        return self.append(self._cls.blank())

    def remove(self, child: T) -> None:
        parent = child.element.getparent()
        remove_child(child.element)
        prune_empty(self._owner.element, parent)

    def clear(self) -> None:
        for child in list(self):
            self.remove(child)


class XMLChildren(Generic[T]):
    """Descriptor giving a live :class:`ChildList` of ``cls`` under ``parent_xpath``."""

    def __init__(self, cls: type[T], parent_xpath: str = ".") -> None:
        self.cls, self.parent_xpath = cls, parent_xpath

    def __get__(self, obj: XMLObject | None, owner: type) -> ChildList[T]:
        if obj is None:
            raise AttributeError("XMLChildren is only available on instances")
        return ChildList(obj, self.cls, self.parent_xpath)

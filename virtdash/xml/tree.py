"""Low-level tree edits: a tiny XPath subset and whitespace-preserving insert/remove.

Our own constant XPaths are parsed here, never user input.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from lxml import etree

Element = etree._Element

#: Prefixes usable in property XPaths; the URIs are what ends up in the XML.
NAMESPACES = {
    "virtdash": "https://virtdash.dev/xmlns/1",
    "libosinfo": "http://libosinfo.org/xmlns/libvirt/domain/1.0",
}


def _indent_of(element: Element) -> str | None:
    """The indentation string in front of ``element``, or None if it has none."""
    prev = element.getprevious()
    parent = element.getparent()
    space = prev.tail if prev is not None else (parent.text if parent is not None else None)
    if space is None or space.strip() or "\n" not in space:
        return None
    return space.rsplit("\n", 1)[1]


def append_child(parent: Element, child: Element, after: Element | None = None) -> Element:
    """Append ``child`` to ``parent`` (or right after ``after``), indented like its siblings."""
    if len(parent) == 0 and (parent.text or "").strip():
        parent.append(child)  # mixed content: do not invent whitespace
        return child
    outer = _indent_of(parent) if parent.getparent() is not None else ""
    if outer is None:
        if after is None:
            parent.append(child)
        else:
            after.addnext(child)
        return child
    inner = outer + "  "
    if len(parent):
        last = parent[-1] if after is None else after
        existing = _indent_of(parent[0])
        inner = existing if existing is not None else inner
        child.tail = last.tail
        last.tail = "\n" + inner
        last.addnext(child)
    else:
        parent.text = "\n" + inner
        child.tail = "\n" + outer
        parent.append(child)
    if len(child):
        etree.indent(child, space="  ", level=len(inner) // 2)
    return child


def remove_child(child: Element) -> None:
    """Detach ``child``, keeping the surrounding whitespace tidy."""
    parent = child.getparent()
    if parent is None:
        return
    prev = child.getprevious()
    if prev is not None:
        prev.tail = child.tail
    elif child.getnext() is None:
        parent.text = None if not (child.tail or "").strip() else child.tail
    parent.remove(child)


_STEP_RE = re.compile(r"(?P<tag>[\w.-]+(?::[\w.-]+)?)(?:\[@(?P<attr>[\w-]+)=(?P<q>['\"])(?P<val>[^'\"]*)(?P=q)\])?")


@dataclass(frozen=True)
class _Step:
    tag: str
    attr: str | None = None
    value: str | None = None

    def matches(self, element: Element) -> bool:
        return self.attr is None or element.get(self.attr) == self.value

    def create(self) -> Element:
        uri = self.tag.split("}")[0][1:] if self.tag.startswith("{") else None
        # Declare our prefix (virtdash:, libosinfo:) on the new element, not ns0:.
        nsmap = {p: u for p, u in NAMESPACES.items() if u == uri} if uri else None
        element = etree.Element(self.tag, nsmap=nsmap)
        if self.attr is not None:
            element.set(self.attr, self.value or "")
        return element


def _clark(tag: str) -> str:
    if ":" in tag:
        prefix, local = tag.split(":", 1)
        return f"{{{NAMESPACES[prefix]}}}{local}"
    return tag


def parse_xpath(xpath: str) -> tuple[tuple[_Step, ...], str | None]:
    """Split ``./a/b[@x='y']/@attr`` into element steps and a final attribute."""
    parts = [p for p in xpath.removeprefix(".").split("/") if p]
    attr = parts.pop()[1:] if parts and parts[-1].startswith("@") else None
    steps = []
    for part in parts:
        match = _STEP_RE.fullmatch(part)
        if not match:
            raise ValueError(f"Unsupported XPath step {part!r} in {xpath!r}")
        steps.append(_Step(_clark(match["tag"]), match["attr"], match["val"]))
    return tuple(steps), attr


def place_child(parent: Element, child: Element, order: Sequence[str] = ()) -> Element:
    """Insert ``child`` where libvirt's schema order (``order``, tag names) puts it.

    libvirt accepts most elements in any order, but a new ``<description>`` after
    ``<devices>`` makes diffs and golden files needlessly hard to read.
    """
    tag = str(child.tag)
    if tag not in order:
        return append_child(parent, child)
    rank = order.index(tag)
    before = [c for c in parent if isinstance(c.tag, str) and c.tag in order and order.index(c.tag) <= rank]
    if before:
        return append_child(parent, child, after=before[-1])
    first = next((c for c in parent if isinstance(c.tag, str)), None)
    if first is None or (parent.text or "").strip():
        return append_child(parent, child)
    child.tail = parent.text
    first.addprevious(child)
    if len(child):
        indent = _indent_of(child) or ""
        etree.indent(child, space="  ", level=len(indent) // 2)
    return child


def find_path(
    root: Element,
    steps: Sequence[_Step],
    create: bool = False,
    order: Mapping[str, Sequence[str]] | None = None,
) -> Element | None:
    """Walk ``steps`` from ``root``; with ``create``, add what is missing in ``order``."""
    node = root
    for step in steps:
        found = next((c for c in node.iterchildren(step.tag) if step.matches(c)), None)
        if found is None:
            if not create:
                return None
            found = place_child(node, step.create(), (order or {}).get(str(node.tag), ()))
        node = found
    return node


def _is_empty(element: Element) -> bool:
    return not element.attrib and len(element) == 0 and not (element.text or "").strip()


def prune_empty(root: Element, node: Element | None) -> None:
    """Remove ``node`` and its ancestors below ``root`` while they are empty."""
    while node is not None and node is not root and _is_empty(node):
        parent = node.getparent()
        remove_child(node)
        node = parent

"""Helpers for the XML layer tests: the shared corpus and tree comparison.

A uniquely named module rather than ``conftest.py`` so ``from ... import`` cannot pick up
another directory's conftest. No Django here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

REPO = Path(__file__).resolve().parents[3]
CORPUS = REPO.parent / "shared" / "corpus" / "domains"


def corpus_files(root_tag: str | None = None) -> list[Path]:
    """Corpus files (optionally only those whose root is ``root_tag``); [] if absent."""
    if not CORPUS.is_dir():
        return []
    files = sorted(CORPUS.glob("*.xml"))
    if root_tag is None:
        return files
    return [f for f in files if etree.parse(str(f)).getroot().tag == root_tag]


def corpus_params(root_tag: str | None = None) -> list[object]:
    files = corpus_files(root_tag)
    if not files:
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"corpus not found at {CORPUS}"))]
    return [pytest.param(f, id=f.name) for f in files]


def c14n(element: etree._Element) -> bytes:
    return etree.tostring(element, method="c14n2")


def _attrs(node: etree._Element) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(node.attrib.items())) if isinstance(node.tag, str) else ()


def flatten(element: etree._Element) -> set[tuple[str, tuple[tuple[str, str], ...], str]]:
    """Every node as (path, attributes, stripped text): whitespace-insensitive tree identity."""
    tree = element.getroottree()
    return {
        (tree.getpath(node), _attrs(node), (node.text or "").strip())
        for node in element.iter()
    }


def assert_only_changed(before: etree._Element, after: etree._Element, path: str) -> None:
    """Assert that ``after`` differs from ``before`` only at ``path``, its ancestors or descendants."""
    diff = flatten(before) ^ flatten(after)
    stray = [
        entry for entry in diff
        if not (entry[0] == path or path.startswith(entry[0] + "/") or entry[0].startswith(path + "/"))
    ]
    assert not stray, f"edit at {path} also changed {sorted(stray)[:5]}"

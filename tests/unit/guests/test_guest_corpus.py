"""Every real-world domain XML of the shared corpus renders its detail page (device counts right)."""

from pathlib import Path

import libvirt
import pytest
from lxml import etree

from guests import inventory, queries
from guests.models import Guest

CORPUS_DIR = Path(__file__).resolve().parents[3].parent / "shared" / "corpus" / "domains"  # beside the repo
CORPUS = [p for p in sorted(CORPUS_DIR.glob("*.xml"))
          if etree.parse(str(p)).getroot().tag == "domain"]  # a few files are snapshots


def test_the_shared_corpus_is_there():
    assert len(CORPUS) > 20, f"expected the shared corpus of domain XML in {CORPUS_DIR}"


def _device_counts(xml: str) -> tuple[int, int, int]:
    root = etree.fromstring(xml.encode())
    return (len(root.findall("./devices/disk")), len(root.findall("./devices/interface")),
            len([c for c in root.find("./devices") if isinstance(c.tag, str)]) if root.find("./devices") is not None
            else 0)


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_describe_reads_any_valid_domain_xml(path):
    xml = path.read_text()
    found = queries.describe(xml)
    disks, nics, _ = _device_counts(xml)
    assert len(found["disks"]) == disks and len(found["nics"]) == nics


def test_every_corpus_guest_defined_on_a_test_host_renders_its_detail_page(admin_client, node_host, virt):
    defined = 0
    for path in CORPUS:
        root = etree.fromstring(path.read_bytes())
        root.set("type", "test")  # the test driver accepts its own type only
        for uuid in root.findall("uuid"):
            root.remove(uuid)  # the -in/-out pairs share UUIDs; give each its own
        name = root.find("name")
        if name is None:
            name = etree.Element("name")
            root.insert(0, name)
        name.text = f"vdtest-corpus-{path.stem}"
        try:
            virt.defineXML(etree.tostring(root).decode())
        except libvirt.libvirtError:
            continue  # devices the test driver rejects; describe() is still covered above
        defined += 1
    assert defined >= len(CORPUS) // 2
    inventory.resync(node_host, full=True)
    for guest in Guest.objects.filter(name__startswith="vdtest-corpus-"):
        response = admin_client.get(f"/guests/{guest.uuid}/")
        assert response.status_code == 200, guest.name
        live = response.context["live"]
        assert live is not None, response.context["live_error"]
        assert len(live["disks"]) == len(guest.summary["disks"])
        assert response.context["guest"].state in ("running", "shutoff")

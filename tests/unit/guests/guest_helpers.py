"""Test helpers for guest tests: test-driver domain XML and node files (tests only)."""

from __future__ import annotations

import uuid as uuid_mod
from xml.sax.saxutils import escape

# libvirt refuses '/' in names, so the script tag stays unclosed (still executable if unescaped)
HOSTILE_NAMES = ['<script>alert(1)<\\script>', 'quote"and\'apostrophe', "Gäste-Ωμέγα-日本"]


def domain_xml(name: str, *, running: bool = True, uuid: str | None = None, memory_mib: int = 64, vcpus: int = 1,
               extra_devices: str = "", title: str = "", disk_path: str | None = None) -> str:
    """A test-driver domain (tests only; the product builds XML with virtdash.xml)."""
    state = "" if running else "<!-- shutoff -->"
    return f"""<domain type='test'>{state}
  <name>{escape(name)}</name><uuid>{uuid or uuid_mod.uuid4()}</uuid>
  {f"<title>{escape(title)}</title>" if title else ""}
  <memory unit='MiB'>{memory_mib}</memory><vcpu>{vcpus}</vcpu>
  <os><type arch='x86_64'>hvm</type><boot dev='hd'/></os>
  <devices>
    <disk type='file' device='disk'><source file='{disk_path or f"/var/lib/vdtest/{uuid_mod.uuid4().hex}.img"}'/>
      <target dev='vda' bus='virtio'/></disk>
    <interface type='network'><mac address='52:54:00:00:00:01'/><source network='default'/>
      <model type='virtio'/></interface>
    <graphics type='vnc' port='-1' autoport='yes'/>
    {extra_devices}
  </devices>
</domain>"""


def write_node(path, domains: list[str]) -> str:
    path.write_text("<node>\n" + "\n".join(domains) + "\n</node>\n")
    return f"test://{path}"

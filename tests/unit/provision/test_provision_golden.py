"""Golden files for edit plans: base-in.xml → one plan → <case>-out.xml (only the asked-for lines change).

Regenerate after an intended change with VIRTDASH_REGEN_GOLDEN=1 and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from guests import provision_edit as edit
from virtdash.xml import Domain

GOLDEN = Path(__file__).parent / "golden"

CASES = {
    "general": lambda d: edit.plan_general(d, {"vcpus": 2, "max_vcpus": 4, "memory_mib": 256, "max_memory_mib": 512,
                                               "title": "Web <1>", "description": "", "tags": "prod, web",
                                               "owner": "team-a"}, active=False),
    "add-disk": lambda d: edit.plan_add_disk(d, {"existing_path": "/var/lib/libvirt/images/data.qcow2",
                                                 "bus": "virtio", "format": "qcow2"}, active=False),
    "remove-nic": lambda d: edit.plan_remove_nic(d, "22:22:33:44:55:66", active=False),
    "change-nic": lambda d: edit.plan_change_nic(d, "22:22:33:44:55:66", "bridge", "br0", "e1000"),
    "media": lambda d: edit.plan_media(d, "hdc", "/isos/install.iso", active=False),
    "boot": lambda d: edit.plan_boot(d, ["cdrom hdc", "disk vda"], True),
    "display-none": lambda d: edit.plan_display(d, "none", "none"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_an_edit_plan_changes_only_what_it_was_asked(case):
    dom = Domain.parse((GOLDEN / "base-in.xml").read_text())
    CASES[case](dom)
    out = GOLDEN / f"{case}-out.xml"
    if os.environ.get("VIRTDASH_REGEN_GOLDEN") == "1":
        out.write_text(dom.to_string() + "\n")
    assert dom.to_string() + "\n" == out.read_text()


def test_a_running_guest_gets_hot_plug_ops_for_what_can_change_live():
    dom = Domain.parse((GOLDEN / "base-in.xml").read_text())
    plan = edit.plan_general(dom, {"vcpus": 3, "max_vcpus": 5, "memory_mib": 300, "max_memory_mib": 400},
                             active=True)
    assert {"op": "vcpus", "count": 3} in plan.live_ops and {"op": "memory", "kib": 300 * 1024} in plan.live_ops
    plan = edit.plan_add_disk(dom, {"existing_path": "/x.img", "bus": "sata", "format": "raw"}, active=True)
    assert plan.live_ops[0]["op"] == "attach" and "<target dev=\"sda\"" in plan.live_ops[0]["xml"]

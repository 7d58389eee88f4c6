"""Inventory reconcile: rows follow libvirt (gone, new, current by UUID), moves, events as hints."""

import libvirt
from guest_helpers import HOSTILE_NAMES, domain_xml, write_node

from guests import inventory
from guests.models import Guest, GuestEvent
from hosts.models import Host


def test_a_full_resync_creates_one_row_per_domain_with_its_facts(node_host):
    read, changes = inventory.resync(node_host, full=True)
    assert len(changes.created) == 3
    rows = {g.name: g for g in Guest.objects.filter(host=node_host)}
    beta = rows["vdtest-beta"]
    assert beta.state == "running" and beta.vcpus == 2 and beta.memory_kib == 64 * 1024
    assert rows["vdtest-gamma"].state == "shutoff"
    assert beta.graphics == "vnc"
    assert beta.summary["disks"][0]["target"] == "vda"
    assert beta.summary["nics"][0]["mac"] == "52:54:00:00:00:01"
    assert beta.started_at is not None and rows["vdtest-gamma"].started_at is None


def test_a_second_reconcile_without_changes_changes_nothing(synced):
    _, changes = inventory.resync(synced)
    assert changes.count == 0


def test_reconcile_follows_changes_made_outside_virtdash(synced, virt):
    virt.lookupByName("vdtest-alpha").suspend()
    virt.lookupByName("vdtest-beta").undefine()  # transient now, still running
    virt.lookupByName("vdtest-beta").destroy()  # gone
    virt.defineXML(domain_xml("vdtest-delta", vcpus=4))
    _, changes = inventory.resync(synced)
    assert len(changes.removed) == 1 and len(changes.created) == 1 and len(changes.updated) == 1
    names = set(Guest.objects.filter(host=synced).values_list("name", flat=True))
    assert names == {"vdtest-alpha", "vdtest-gamma", "vdtest-delta"}
    assert Guest.objects.get(name="vdtest-alpha").state == "paused"
    assert Guest.objects.get(name="vdtest-delta").vcpus == 4
    assert GuestEvent.objects.filter(guest__name="vdtest-alpha", event="suspended").exists()


def test_a_guest_that_appears_on_another_host_moves_its_row_instead_of_duplicating(synced, virt, tmp_path):
    alpha = Guest.objects.get(name="vdtest-alpha")
    virt.lookupByName("vdtest-alpha").destroy()
    inventory.resync(synced)
    uri = write_node(tmp_path / "other.xml", [domain_xml("vdtest-alpha", uuid=alpha.uuid)])
    other = Host.objects.create(name="other", uri=uri)
    _, changes = inventory.resync(other, full=True)
    assert changes.moved == [alpha.uuid]
    assert Guest.objects.filter(uuid=alpha.uuid).count() == 1
    assert Guest.objects.get(uuid=alpha.uuid).host == other
    # the old host still has the (shut off) definition: its next reconcile must not steal it back
    inventory.resync(synced)
    assert Guest.objects.filter(uuid=alpha.uuid).count() == 1
    assert Guest.objects.get(uuid=alpha.uuid).host == other


def test_an_event_re_reads_one_guest(synced, virt):
    dom = virt.lookupByName("vdtest-gamma")
    dom.create()
    changes = inventory.refresh_guest(synced, dom.UUIDString(), "started")
    assert changes.updated == [dom.UUIDString()]
    assert Guest.objects.get(name="vdtest-gamma").state == "running"
    dom.destroy()
    dom.undefine()
    inventory.refresh_guest(synced, dom.UUIDString(), "undefined")
    assert not Guest.objects.filter(name="vdtest-gamma").exists()


def test_hostile_names_are_stored_as_they_are(node_host, virt):
    for name in HOSTILE_NAMES:
        virt.defineXML(domain_xml(name, title=name))
    inventory.resync(node_host, full=True)
    stored = set(Guest.objects.values_list("name", flat=True))
    assert set(HOSTILE_NAMES) <= stored


def test_the_reconcile_reads_the_host_in_one_call(synced, count_libvirt_calls):
    inventory.resync(synced)
    assert count_libvirt_calls() == 1


def test_a_domain_without_state_stats_is_still_read(node_host):
    # libvirt's test driver reports only state.* in getAllDomainStats: memory/vCPUs come from XML
    inventory.resync(node_host, full=True)
    assert Guest.objects.get(name="vdtest-alpha").memory_kib == 64 * 1024
    assert libvirt.VIR_DOMAIN_RUNNING == 1


def test_watcher_hooks_resync_on_connect_follow_events_and_poll(node_host, virt):
    from guests.watch import InventoryHooks
    from hosts.virt.events import DomainEvent

    hooks = InventoryHooks()
    hooks.on_connected(node_host)
    assert Guest.objects.filter(host=node_host).count() == 3
    gamma = virt.lookupByName("vdtest-gamma")
    gamma.create()
    hooks.on_event(node_host, DomainEvent(gamma.UUIDString(), gamma.name(), "lifecycle", "started"))
    assert Guest.objects.get(name="vdtest-gamma").state == "running"
    virt.lookupByName("vdtest-alpha").destroy()  # no event delivered: the periodic poll repairs it
    hooks.hosts[node_host.pk].next_poll = 0
    hooks.on_tick(node_host)
    assert Guest.objects.get(name="vdtest-alpha").state == "shutoff"
    hooks.on_disconnected(node_host)
    assert Guest.objects.get(name="vdtest-beta").state == "running"  # rows keep their last state


def test_one_hypervisor_registered_twice_keeps_each_guest_on_its_first_row_and_says_nothing_moved(synced):
    twin = Host.objects.create(name="twin", uri=synced.uri + "?twin=1", status="connected")
    identity = {"host_uuid": "4c4c4544-0000-1111-2222-333333333333", "hypervisor": "TEST"}
    Host.objects.filter(pk__in=[synced.pk, twin.pk]).update(facts=identity)
    twin.refresh_from_db()
    for _ in range(3):
        _, changes = inventory.resync(twin, full=True)
        assert changes.moved == [] and changes.created == []
    assert set(Guest.objects.values_list("host_id", flat=True)) == {synced.pk}
    assert not GuestEvent.objects.filter(event="moved").exists()


def test_a_different_hypervisor_with_the_guest_takes_its_row_as_a_migration_does(synced):
    other = Host.objects.create(name="other", uri=synced.uri + "?other=1", status="connected",
                                facts={"host_uuid": "aaaaaaaa-0000-0000-0000-000000000001", "hypervisor": "TEST"})
    Host.objects.filter(pk=synced.pk).update(facts={"host_uuid": "bbbbbbbb-0000-0000-0000-000000000002",
                                                   "hypervisor": "TEST"})
    _, changes = inventory.resync(other, full=True)
    assert len(changes.moved) == 3  # a second test:/// instance of the file: all three run there
    assert set(Guest.objects.values_list("host_id", flat=True)) == {other.pk}

"""The machine's libvirtd registered twice, through two URIs: both rows read the same libvirt host
UUID (capabilities <host><uuid>) into their facts and both pages say "Same hypervisor as …"."""

from __future__ import annotations

from lxml import etree

from hosts import services as host_services
from hosts.models import Host
from hosts.uri import validate_uri


def test_one_libvirtd_reached_through_two_uris_is_flagged_as_the_same_hypervisor(services, libvirt_conn,
                                                                                 viewer_client):
    expected = etree.fromstring(libvirt_conn.getCapabilities().encode()).findtext("host/uuid")
    local = Host.objects.create(name="vdtest-local", uri=validate_uri("qemu:///system"))
    twin = Host.objects.create(name="vdtest-local-unix", uri=validate_uri("qemu+unix:///system"))
    for host in (local, twin):
        host_services.refresh_facts(host)
        host.refresh_from_db()
        assert host.status == "connected", host.last_error
    assert expected and local.facts["host_uuid"] == twin.facts["host_uuid"] == expected.lower()

    listing = viewer_client.get("/hosts/").content.decode()
    assert "Same hypervisor as vdtest-local-unix" in listing and "Same hypervisor as vdtest-local<" in listing
    detail = viewer_client.get(f"/hosts/{twin.pk}/").content.decode()
    assert "Same hypervisor as vdtest-local:" in detail and expected.lower() in detail

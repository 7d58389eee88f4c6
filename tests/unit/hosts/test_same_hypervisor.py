"""One hypervisor registered twice (e.g. qemu:///system and qemu+ssh://root@127.0.0.1/system) is
flagged on the host list and host detail: "Same hypervisor as <other host>". The identity is
libvirt's host UUID from the capabilities XML (<host><uuid>), kept in Host.facts["host_uuid"] with
the driver and the URI's path (/system and /session are different daemons).

libvirt's test driver reports no <host><uuid> (nor a system UUID in its sysinfo), so its facts carry
an empty host_uuid and two test-driver hosts are never flagged. The pages are tested with facts as
the watcher stores them for a QEMU host; the real read of a UUID through two URIs of one libvirtd is
tests/integration/test_same_hypervisor.py."""

from __future__ import annotations

from core.models import Grant
from hosts import services
from hosts.models import Host
from hosts.virt import facts
from tests.conftest import make_user

UUID = "532a3b57-9536-4f7f-b81f-67b7288cda0d"
OTHER_UUID = "0f6e1c1e-7d7b-4b8e-9d6a-2b1f9d1c0a11"


def _host(name: str, uri: str, host_uuid: str = UUID, hypervisor: str = "QEMU") -> Host:
    test_facts = facts.read_facts("test:///default")  # a real facts dict, then the identity of a QEMU host
    return Host.objects.create(name=name, uri=uri, status="connected",
                               facts=test_facts | {"hypervisor": hypervisor, "host_uuid": host_uuid})


def test_facts_carry_the_host_uuid_field_and_the_test_driver_reports_none(test_host):
    found = facts.read_facts("test:///default")
    assert found["host_uuid"] == ""
    services.refresh_facts(test_host)
    test_host.refresh_from_db()
    assert test_host.facts["host_uuid"] == ""
    twin = Host.objects.create(name="vdtest-twin", uri="test+unix:///default", facts=found)
    assert services.same_hypervisor([test_host, twin]) == {}
    assert services.same_hypervisor_as(test_host, Host.objects.all()) == []


def test_two_uris_of_one_hypervisor_are_flagged_on_the_host_list(viewer_client, db):
    local = _host("local", "qemu:///system")
    over_ssh = _host("local-over-ssh", "qemu+ssh://root@127.0.0.1/system")
    elsewhere = _host("elsewhere", "qemu+ssh://root@192.0.2.7/system", host_uuid=OTHER_UUID)
    page = viewer_client.get("/hosts/?partial=table").content.decode()
    rows = {h.pk: page.split(f'data-host-id="{h.pk}"')[1].split("</tr>")[0] for h in (local, over_ssh, elsewhere)}
    assert "Same hypervisor as local-over-ssh" in rows[local.pk]
    assert "Same hypervisor as local<" in rows[over_ssh.pk]
    assert "Same hypervisor" not in rows[elsewhere.pk]
    for url in ("/hosts/", "/"):  # the host list and the home page's host table
        assert "Same hypervisor as local-over-ssh" in viewer_client.get(url).content.decode(), url


def test_the_host_detail_and_its_live_fragment_name_the_other_host(viewer_client, db):
    local = _host("local", "qemu:///system")
    _host("local-over-ssh", "qemu+ssh://root@127.0.0.1/system")
    for url in (f"/hosts/{local.pk}/", f"/hosts/{local.pk}/?partial=facts"):
        page = viewer_client.get(url).content.decode()
        assert "Same hypervisor as local-over-ssh" in page and UUID in page, url


def test_session_daemons_other_drivers_and_hosts_without_facts_are_not_flagged(viewer_client, db):
    system = _host("system", "qemu:///system")
    session = _host("session", "qemu:///session")
    lxc = _host("lxc", "lxc:///system", hypervisor="LXC")
    never_reached = Host.objects.create(name="never-reached", uri="qemu+tcp://192.0.2.9/system")
    assert services.same_hypervisor([system, session, lxc, never_reached]) == {}
    assert "Same hypervisor" not in viewer_client.get("/hosts/").content.decode()
    assert "Same hypervisor" not in viewer_client.get(f"/hosts/{system.pk}/").content.decode()


def test_three_rows_of_one_hypervisor_each_name_the_two_others(db):
    rows = [_host(name, uri) for name, uri in (("a", "qemu:///system"), ("b", "qemu+unix:///system"),
                                               ("c", "qemu+ssh://root@127.0.0.1/system"))]
    assert services.same_hypervisor(rows) == {rows[0].pk: ["b", "c"], rows[1].pk: ["a", "c"], rows[2].pk: ["a", "b"]}


def test_a_user_is_not_told_the_name_of_a_host_they_may_not_see(client, db):
    local = _host("local", "qemu:///system")
    _host("secret-twin", "qemu+ssh://root@127.0.0.1/system")
    granted = make_user("gina-granted", None)
    Grant.objects.create(user=granted, role="viewer", host=local)
    client.force_login(granted)
    for url in ("/hosts/", f"/hosts/{local.pk}/", f"/hosts/{local.pk}/?partial=facts"):
        response = client.get(url)
        assert response.status_code == 200 and "secret-twin" not in response.content.decode(), url


def test_host_names_in_the_warning_are_escaped(viewer_client, db):
    local = _host("local", "qemu:///system")
    _host("<b>twin</b>", "qemu+ssh://root@127.0.0.1/system")
    page = viewer_client.get(f"/hosts/{local.pk}/").content.decode()
    assert "Same hypervisor as &lt;b&gt;twin&lt;/b&gt;" in page and "<b>twin</b>" not in page

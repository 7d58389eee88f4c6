"""Network pages and hosts.virt.networks on the test driver: list, create, start (confirmed),
stop, autostart, delete, leases; permissions for every URL; refusals change nothing."""

from __future__ import annotations

import pytest

from core.models import AuditEntry
from hosts.virt import networks
from hosts.virt.errors import Conflict, OperationRefused

URI = "test:///default"
PERSONAS = ["admin_client", "operator_client", "viewer_client", "outsider_client"]
MAY_MANAGE = {"admin_client", "operator_client"}
MAY_VIEW = MAY_MANAGE | {"viewer_client"}


def test_it_lists_networks_with_mode_bridge_and_dhcp_range(test_host):
    default = {n.name: n for n in networks.list_networks(URI)}["default"]
    assert (default.mode, default.bridge, default.ipv4) == ("nat", "virbr0", "192.168.122.1/24")
    assert (default.dhcp_start, default.dhcp_end) == ("192.168.122.2", "192.168.122.254")
    assert default.adds_host_address


@pytest.mark.parametrize("mode, kwargs, expect", [
    ("nat", {"ipv4": "10.201.0.1/24"}, ("nat", True)),
    ("route", {"ipv4": "10.202.0.1/24"}, ("route", True)),
    ("isolated", {"ipv4": "10.203.0.1/24", "dhcp": False}, ("isolated", True)),
    ("isolated", {}, ("isolated", False)),
    ("bridge", {"bridge": "br0"}, ("bridge", False)),
])
def test_it_creates_each_kind_of_network(test_host, net_state, mode, kwargs, expect):
    info = networks.define_network(URI, f"vdtest-{mode}-{len(kwargs)}", mode, **kwargs)
    assert (info.mode, info.adds_host_address) == expect
    assert not info.active
    networks.delete_network(URI, info.name)
    assert net_state(info.name) is None


def test_starting_a_network_that_adds_a_host_address_needs_confirmation(net_name, net_state):
    with pytest.raises(OperationRefused, match="on the host; confirm"):
        networks.start_network(URI, net_name)
    assert net_state() == (False, False)
    assert networks.start_network(URI, net_name, confirm_host_address=True).active
    assert networks.dhcp_leases(URI, net_name) == []  # the test driver reports no leases


@pytest.mark.parametrize("name, mode, kwargs, message", [
    ("bad/name", "nat", {"ipv4": "10.9.0.1/24"}, "Network name"),
    ("x" * 300, "nat", {"ipv4": "10.9.0.1/24"}, "limit is 64"),
    ("vdtest-ok", "nat", {"ipv4": "not-an-ip"}, "IPv4"),
    ("vdtest-ok", "nat", {"ipv4": "10.9.0.0/24"}, "network or broadcast"),
    ("vdtest-ok", "nat", {}, "host's address"),
    ("vdtest-ok", "bridge", {}, "existing host bridge"),
    ("vdtest-ok", "bridge", {"bridge": "br0; reboot"}, "Bridge name"),
    ("vdtest-ok", "weird", {"ipv4": "10.9.0.1/24"}, "mode"),
])
def test_bad_network_input_is_refused_before_libvirt(name, mode, kwargs, message):
    with pytest.raises(ValueError, match=message):
        networks.define_network("qemu+tcp://127.0.0.1:1/system", name, mode, **kwargs)


def test_an_overlapping_subnet_and_a_duplicate_name_are_refused(net_name, test_host):
    with pytest.raises(Conflict, match="overlaps network default"):
        networks.define_network(URI, "vdtest-overlap", "nat", ipv4="192.168.122.9/24")
    with pytest.raises(Conflict, match="already exists"):
        networks.define_network(URI, net_name, "isolated")


def _urls(host_id: int, name: str):
    base = f"/hosts/{host_id}/networks"
    return {
        "view": [f"{base}/", f"{base}/{name}/"],
        "manage": [
            ("get", f"{base}/add/", {}),
            ("post", f"{base}/add/", {"name": "vdtest-perm", "mode": "isolated", "dhcp": "on"}),
            ("post", f"{base}/{name}/start/", {"confirm_host_address": "1"}),
            ("post", f"{base}/{name}/action/", {"action": "autostart-on"}),
            ("post", f"{base}/{name}/action/", {"action": "stop"}),
            ("post", f"{base}/{name}/action/", {"action": "delete"}),
        ],
    }


@pytest.mark.parametrize("persona", PERSONAS)
def test_every_network_url_asks_the_policy(request, persona, test_host, net_name, net_state):
    client = request.getfixturevalue(persona)
    urls = _urls(test_host.pk, net_name)
    for url in urls["view"]:
        status = client.get(url).status_code
        assert (status == 200) == (persona in MAY_VIEW), (url, status)
    for method, url, data in urls["manage"]:
        status = getattr(client, method)(url, data).status_code
        assert status == (403 if persona not in MAY_MANAGE else status) and status in (200, 302, 403), (url, status)
    if persona in MAY_MANAGE:
        assert net_state() is None and net_state("vdtest-perm") == (False, False)
    else:
        assert net_state() == (False, False) and net_state("vdtest-perm") is None
        assert AuditEntry.objects.filter(result="denied").count() == len(urls["manage"])


def test_network_pages_show_the_warning_and_start_only_when_confirmed(operator_client, test_host, net_name, net_state):
    detail = f"/hosts/{test_host.pk}/networks/{net_name}/"
    page = operator_client.get(detail).content.decode()
    assert "adds bridge" in page and "I understand" in page
    refused = operator_client.post(f"{detail}start/", {}, follow=True).content.decode()
    assert "confirm to go ahead" in refused
    assert net_state() == (False, False)
    operator_client.post(f"{detail}start/", {"confirm_host_address": "1"})
    assert net_state() == (True, False)
    operator_client.post(f"{detail}action/", {"action": "autostart-on"})
    operator_client.post(f"{detail}action/", {"action": "stop"})
    assert net_state() == (False, True)
    results = list(AuditEntry.objects.order_by("id").values_list("action", "result"))
    assert results == [("network.start", "failed"), ("network.start", "ok"), ("network.autostart-on", "ok"),
                       ("network.stop", "ok")]


def test_creating_a_network_through_the_form(admin_client, test_host, net_state):
    response = admin_client.post(f"/hosts/{test_host.pk}/networks/add/",
                                 {"name": "vdtest-form", "mode": "nat", "ipv4": "10.250.3.1/24", "dhcp": "on"},
                                 follow=True)
    page = response.content.decode()
    assert "Created network vdtest-form" in page and "10.250.3.2" in page
    assert net_state("vdtest-form") == (False, False)
    bad = admin_client.post(f"/hosts/{test_host.pk}/networks/add/",
                            {"name": "vdtest-<b>", "mode": "nat", "ipv4": "10.250.4.1/24"})
    assert bad.status_code == 200 and "Network name" in bad.content.decode()
    assert "vdtest-&lt;b&gt;" in bad.content.decode() and "vdtest-<b>" not in bad.content.decode()
    assert net_state("vdtest-<b>") is None


def test_the_network_list_shows_the_default_network(viewer_client, test_host):
    page = viewer_client.get(f"/hosts/{test_host.pk}/networks/").content.decode()
    assert "virbr0" in page and "192.168.122.1/24" in page and "+ Add network" not in page


def test_a_missing_network_is_a_message(viewer_client, test_host):
    response = viewer_client.get(f"/hosts/{test_host.pk}/networks/vdtest-nope/", follow=True)
    assert response.status_code == 200 and "There is no network" in response.content.decode()

"""Live fragments of the network pages (what static/js/live.js re-fetches on "host.<id>"): the list
table and the detail's state and leases. They ask the same permission as the pages; the pages carry
the wiring (data-live-topics + data-live-src)."""

from __future__ import annotations

import pytest

from hosts.virt import networks

URI = "test:///default"
PERSONAS = ["admin_client", "operator_client", "viewer_client", "outsider_client"]
MAY_VIEW = {"admin_client", "operator_client", "viewer_client"}


@pytest.mark.parametrize("persona", PERSONAS)
def test_network_fragments_ask_the_same_permission_as_their_pages(request, persona, test_host, net_name):
    client = request.getfixturevalue(persona)
    base = f"/hosts/{test_host.pk}/networks"
    for url in (f"{base}/?partial=table", f"{base}/{net_name}/?partial=state"):
        status = client.get(url).status_code
        assert status == (200 if persona in MAY_VIEW else 403), (url, status)


def test_an_unknown_host_has_no_fragments(viewer_client, test_host):
    assert viewer_client.get("/hosts/999999/networks/?partial=table").status_code == 404
    assert viewer_client.get("/hosts/999999/networks/default/?partial=state").status_code == 404


def test_the_network_list_is_wired_to_its_table_fragment(viewer_client, test_host, net_name):
    page = viewer_client.get(f"/hosts/{test_host.pk}/networks/").content.decode()
    assert (f'data-live-topics="host.{test_host.pk}" '
            f'data-live-src="/hosts/{test_host.pk}/networks/?partial=table"') in page
    fragment = viewer_client.get(f"/hosts/{test_host.pk}/networks/?partial=table").content.decode()
    assert "<html" not in fragment and 'id="network-table"' in fragment
    assert f'data-network="{net_name}"' in fragment and "virbr0" in fragment


def test_the_table_fragment_shows_a_state_change_made_elsewhere(operator_client, test_host, net_name):
    url = f"/hosts/{test_host.pk}/networks/?partial=table"

    def row() -> str:
        fragment = operator_client.get(url).content.decode()
        return fragment.split(f'data-network="{net_name}"')[1].split("</tr>")[0]

    assert "Inactive" in row()
    networks.start_network(URI, net_name, confirm_host_address=True)
    assert "Active" in row() and "Inactive" not in row()


def test_the_network_detail_is_wired_to_its_state_fragment(viewer_client, test_host, net_name):
    detail = f"/hosts/{test_host.pk}/networks/{net_name}/"
    page = viewer_client.get(detail).content.decode()
    assert (f'data-live-topics="host.{test_host.pk}" data-live-src="{detail}?partial=state" '
            "data-live-keep-selection") in page
    fragment = viewer_client.get(f"{detail}?partial=state").content.decode()
    assert "<html" not in fragment and "Inactive" in fragment and "DHCP leases" in fragment
    assert "The network is not running." in fragment and "{#" not in page and "comment" not in fragment
    assert "csrfmiddlewaretoken" not in fragment and "I understand" not in fragment  # a viewer gets no forms


def test_the_fragment_buttons_follow_a_change_made_elsewhere(operator_client, test_host, net_name):
    url = f"/hosts/{test_host.pk}/networks/{net_name}/?partial=state"
    fragment = operator_client.get(url).content.decode()
    assert "Enable autostart" in fragment and 'name="confirm_host_address"' in fragment
    networks.set_network_autostart(URI, net_name, True)
    networks.start_network(URI, net_name, confirm_host_address=True)
    fragment = operator_client.get(url).content.decode()
    assert "Disable autostart" in fragment and 'value="stop"' in fragment and "I understand" not in fragment


def test_the_state_fragment_follows_start_and_stop(operator_client, test_host, net_name):
    url = f"/hosts/{test_host.pk}/networks/{net_name}/?partial=state"
    networks.start_network(URI, net_name, confirm_host_address=True)
    fragment = operator_client.get(url).content.decode()
    assert "badge-green" in fragment and "No DHCP leases" in fragment  # the test driver reports none
    networks.stop_network(URI, net_name)
    fragment = operator_client.get(url).content.decode()
    assert "Inactive" in fragment and "The network is not running." in fragment


def test_a_deleted_network_turns_its_fragment_into_a_message_not_a_redirect(viewer_client, test_host, net_name):
    networks.delete_network(URI, net_name)
    response = viewer_client.get(f"/hosts/{test_host.pk}/networks/{net_name}/?partial=state")
    assert response.status_code == 200
    assert f"There is no network &#x27;{net_name}&#x27; on {test_host.name}." in response.content.decode()


def test_an_unreachable_host_fills_the_table_fragment_with_the_error(viewer_client):
    from hosts.models import Host

    host = Host.objects.create(name="vdtest-down", uri="qemu+tcp://127.0.0.1:1/system")
    response = viewer_client.get(f"/hosts/{host.pk}/networks/?partial=table")
    assert response.status_code == 200
    assert "Could not read the networks" in response.content.decode()

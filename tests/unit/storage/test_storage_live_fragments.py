"""Live fragments of the storage pages (what static/js/live.js re-fetches on "host.<id>"): the pool
list table and the pool detail's state and capacity (its volumes fragment existed before). They ask
the same permission as the pages; the pages carry the wiring (data-live-topics + data-live-src)."""

from __future__ import annotations

import pytest

from hosts.virt import storage

URI = "test:///default"
PERSONAS = ["admin_client", "operator_client", "viewer_client", "outsider_client"]
MAY_VIEW = {"admin_client", "operator_client", "viewer_client"}


@pytest.mark.parametrize("persona", PERSONAS)
def test_storage_fragments_ask_the_same_permission_as_their_pages(request, persona, test_host, pool_name):
    client = request.getfixturevalue(persona)
    base = f"/hosts/{test_host.pk}/storage"
    for url in (f"{base}/?partial=table", f"{base}/{pool_name}/?partial=state"):
        status = client.get(url).status_code
        assert status == (200 if persona in MAY_VIEW else 403), (url, status)


def test_an_unknown_host_has_no_storage_fragments(viewer_client, test_host):
    assert viewer_client.get("/hosts/999999/storage/?partial=table").status_code == 404
    assert viewer_client.get("/hosts/999999/storage/default-pool/?partial=state").status_code == 404


def test_the_pool_list_is_wired_to_its_table_fragment(viewer_client, test_host, pool_name):
    page = viewer_client.get(f"/hosts/{test_host.pk}/storage/").content.decode()
    assert (f'data-live-topics="host.{test_host.pk}" '
            f'data-live-src="/hosts/{test_host.pk}/storage/?partial=table"') in page
    fragment = viewer_client.get(f"/hosts/{test_host.pk}/storage/?partial=table").content.decode()
    assert "<html" not in fragment and 'id="pool-table"' in fragment and f'data-pool="{pool_name}"' in fragment


def test_the_table_fragment_shows_a_pool_stopped_elsewhere(operator_client, test_host, pool_name):
    url = f"/hosts/{test_host.pk}/storage/?partial=table"

    def row() -> str:
        return operator_client.get(url).content.decode().split(f'data-pool="{pool_name}"')[1].split("</tr>")[0]

    assert "badge-green" in row()
    storage.stop_pool(URI, pool_name)
    assert "Stopped" in row() and "badge-green" not in row()


def test_the_pool_detail_is_wired_to_its_state_fragment(operator_client, test_host, pool_name):
    detail = f"/hosts/{test_host.pk}/storage/{pool_name}/"
    page = operator_client.get(detail).content.decode()
    assert f'data-live-topics="host.{test_host.pk}" data-live-src="{detail}?partial=state"' in page
    assert f'data-live-src="{detail}?partial=volumes"' in page  # the volumes fragment is still there
    fragment = operator_client.get(f"{detail}?partial=state").content.decode()
    assert "<html" not in fragment and "badge-green" in fragment and f"/{pool_name}" in fragment
    assert "vdtest-vol.qcow2" not in fragment and "csrfmiddlewaretoken" not in fragment  # state only, no forms
    storage.stop_pool(URI, pool_name)
    assert "Stopped" in operator_client.get(f"{detail}?partial=state").content.decode()


def test_a_removed_pool_turns_its_fragments_into_a_message(viewer_client, test_host, pool_name):
    storage.delete_pool(URI, pool_name)
    for partial in ("state", "volumes"):
        response = viewer_client.get(f"/hosts/{test_host.pk}/storage/{pool_name}/?partial={partial}")
        assert response.status_code == 200
        assert "There is no storage pool" in response.content.decode()

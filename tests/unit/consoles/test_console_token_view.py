"""POST /consoles/<uuid>/vnc/token: policy first, no token without permission, audited."""

from __future__ import annotations

import pytest

from core.models import AuditEntry


@pytest.fixture
def guest(test_host):
    import libvirt

    from guests.models import Guest

    uuid = libvirt.open("test:///default").lookupByName("test").UUIDString()
    return Guest.objects.create(host=test_host, uuid=uuid, name="test", state="running", graphics="vnc")


def _post(client, guest, mode=None):
    body = {} if mode is None else {"mode": mode}
    return client.post(f"/consoles/{guest.uuid}/vnc/token", body, content_type="application/json")


def test_a_viewer_asking_for_a_full_console_gets_403_and_no_token(viewer_client, guest):
    response = _post(viewer_client, guest, "full")
    assert response.status_code == 403 and "token" not in response.json()
    entry = AuditEntry.objects.get(action="console.vnc")
    assert entry.result == "denied" and entry.target_id == guest.uuid


def test_an_outsider_cannot_even_find_the_guest(outsider_client, guest):
    assert _post(outsider_client, guest, "view").status_code == 404


def test_a_token_request_needs_post(operator_client, guest):
    assert operator_client.get(f"/consoles/{guest.uuid}/vnc/token").status_code == 405


def test_a_guest_without_vnc_graphics_gets_a_clear_error_and_no_token(operator_client, guest):
    response = _post(operator_client, guest, "full")
    assert response.status_code == 409
    assert response.json()["code"] == "no_graphics" and "token" not in response.json()


def test_the_console_pages_follow_the_policy(viewer_client, operator_client, outsider_client, guest):
    assert viewer_client.get(f"/consoles/{guest.uuid}/serial/").status_code == 403
    assert outsider_client.get(f"/consoles/{guest.uuid}/vnc/").status_code == 404
    page = operator_client.get(f"/consoles/{guest.uuid}/vnc/")
    assert page.status_code == 200 and b"no VNC graphics" in page.content
    assert viewer_client.get(f"/consoles/{guest.uuid}/vnc/").status_code == 200  # view-only allowed

"""Host pages: who may see and change what, input refusals, audit entries (test:/// driver)."""

import pytest

from core.models import AuditEntry
from hosts.models import Host

HOSTILE_URIS = [
    "qemu+ext:///system?command=/bin/sh",
    "qemu+ssh://h/system?netcat=/tmp/x",
    "qemu+unix:///system?socket=/etc/shadow",
    "http://x",
    "qemu:///system\nfoo",
    "qemu:///" + "a" * 5000,
]


def _form(uri="test:///default", name="demo", **extra):
    return {"name": name, "uri": uri, "description": "", "enabled": "on", **extra}


@pytest.mark.parametrize("uri", HOSTILE_URIS, ids=lambda u: u[:30])
def test_it_refuses_hostile_uris_with_a_message_and_saves_nothing(admin_client, uri):
    response = admin_client.post("/hosts/add/", _form(uri=uri))
    assert response.status_code == 200
    assert response.context["form"].errors["uri"]
    assert Host.objects.count() == 0
    assert not AuditEntry.objects.filter(action="host.add").exists()


def test_an_admin_adds_a_test_host_and_sees_its_facts(admin_client):
    response = admin_client.post("/hosts/add/", _form())
    host = Host.objects.get(name="demo")
    assert response.status_code == 302
    assert host.status == "connected"
    assert host.facts["cpus"] == 16  # test:///default's node
    assert host.facts["guests_total"] == 1
    page = admin_client.get(f"/hosts/{host.pk}/").content.decode()
    assert "16 = 2 socket(s)" in page
    entry = AuditEntry.objects.get(action="host.add")
    assert entry.actor_name == "alice-admin" and entry.result == "ok"


def test_an_unreachable_host_is_saved_and_shown_with_libvirts_error(admin_client):
    admin_client.post("/hosts/add/", _form(uri="qemu+tcp://127.0.0.1:1/system", name="nowhere"))
    host = Host.objects.get(name="nowhere")
    assert host.status == "unreachable"
    assert "127.0.0.1" in host.last_error or "refused" in host.last_error.lower()
    page = admin_client.get("/hosts/").content.decode()
    assert "Unreachable" in page


def test_test_connection_button_saves_nothing(admin_client):
    response = admin_client.post("/hosts/add/", _form(test="1"), follow=True)
    assert "Connected: TEST" in response.content.decode()
    assert Host.objects.count() == 0


@pytest.mark.parametrize("persona", ["viewer_client", "operator_client", "outsider_client"])
def test_non_admins_may_not_add_edit_or_remove_hosts(request, persona, test_host):
    client = request.getfixturevalue(persona)
    assert client.get("/hosts/add/").status_code == 403
    assert client.post("/hosts/add/", _form(name="x")).status_code == 403
    assert client.post(f"/hosts/{test_host.pk}/edit/", _form(name="renamed")).status_code == 403
    assert client.post(f"/hosts/{test_host.pk}/remove/").status_code == 403
    test_host.refresh_from_db()
    assert test_host.name == "testhost"
    assert AuditEntry.objects.filter(result="denied").count() == 4


def test_an_admin_edits_and_removes_a_host_with_audit_entries(admin_client, test_host):
    admin_client.post(f"/hosts/{test_host.pk}/edit/", _form(name="renamed"))
    test_host.refresh_from_db()
    assert test_host.name == "renamed"
    admin_client.post(f"/hosts/{test_host.pk}/remove/")
    assert not Host.objects.exists()
    assert list(AuditEntry.objects.order_by("id").values_list("action", flat=True)) == ["host.edit", "host.remove"]


def test_viewers_see_hosts_but_outsiders_see_none(viewer_client, outsider_client, test_host):
    assert "testhost" in viewer_client.get("/hosts/").content.decode()
    assert "testhost" not in outsider_client.get("/hosts/").content.decode()
    assert outsider_client.get(f"/hosts/{test_host.pk}/").status_code == 403


def test_host_names_are_escaped(admin_client):
    Host.objects.create(name='<script>alert("x")</script>', uri="test:///default")
    page = admin_client.get("/hosts/").content.decode()
    assert '<script>alert("x")</script>' not in page
    assert "&lt;script&gt;" in page


def test_the_overview_lists_the_hosts_a_user_may_see(viewer_client, outsider_client, test_host):
    assert "testhost" in viewer_client.get("/").content.decode()
    page = outsider_client.get("/").content.decode()
    assert "testhost" not in page and "No hypervisor hosts" in page

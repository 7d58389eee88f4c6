"""Every provisioning URL for the four personas: allowed, forbidden (audited) or invisible."""

from __future__ import annotations

import pytest

from core.models import AuditEntry, Job
from guests import services_provision as svc
from guests.models_history import ConfigVersion

PERSONAS = ["admin", "operator", "viewer", "outsider"]

# (method, path template, expected status per persona); {pk} guest, {v} a version
CASES = [
    ("get", "/guests/{pk}/edit/", {"admin": 200, "operator": 200, "viewer": 403, "outsider": 404}),
    ("post", "/guests/{pk}/edit/general/", {"admin": 302, "operator": 302, "viewer": 403, "outsider": 404}),
    ("post", "/guests/{pk}/edit/apply/", {"admin": 302, "operator": 302, "viewer": 403, "outsider": 404}),
    ("get", "/guests/{pk}/xml/", {"admin": 200, "operator": 403, "viewer": 403, "outsider": 404}),
    ("post", "/guests/{pk}/xml/", {"admin": 200, "operator": 403, "viewer": 403, "outsider": 404}),
    ("get", "/guests/{pk}/history/", {"admin": 200, "operator": 200, "viewer": 403, "outsider": 404}),
    ("post", "/guests/{pk}/history/{v}/rollback/", {"admin": 302, "operator": 302, "viewer": 403, "outsider": 404}),
    ("get", "/guests/{pk}/clone/", {"admin": 200, "operator": 200, "viewer": 403, "outsider": 404}),
    ("post", "/guests/{pk}/clone/", {"admin": 200, "operator": 200, "viewer": 403, "outsider": 404}),
    ("get", "/guests/{pk}/snapshots/", {"admin": 200, "operator": 200, "viewer": 200, "outsider": 404}),
    ("post", "/guests/{pk}/snapshots/new/", {"admin": 302, "operator": 302, "viewer": 403, "outsider": 404}),
    ("post", "/guests/{pk}/snapshots/action/", {"admin": 302, "operator": 302, "viewer": 403, "outsider": 404}),
    ("get", "/guests/new/", {"admin": 200, "operator": 200, "viewer": 403, "outsider": 403}),
]


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("method, path, expected", CASES, ids=[f"{m} {p}" for m, p, _ in CASES])
def test_each_persona_gets_what_the_policy_allows(request, guest, persona, method, path, expected):
    client = request.getfixturevalue(f"{persona}_client")
    version = svc.record_current(guest.host, guest.uuid, source=ConfigVersion.Source.EVENT)
    url = path.format(pk=guest.uuid, v=version.pk)
    response = getattr(client, method)(url, {"name": "", "xml": ""} if method == "post" else None)
    assert response.status_code == expected[persona]
    if expected[persona] == 403:
        assert AuditEntry.objects.filter(result="denied").count() == 1
        assert not Job.objects.exists()


@pytest.mark.parametrize("path", ["/guests/{pk}/edit/general/", "/guests/{pk}/snapshots/new/",
                                  "/guests/{pk}/snapshots/action/", "/guests/{pk}/history/{v}/rollback/"])
def test_state_never_changes_over_get(admin_client, guest, path):
    version = svc.record_current(guest.host, guest.uuid, source=ConfigVersion.Source.EVENT)
    assert admin_client.get(path.format(pk=guest.uuid, v=version.pk)).status_code == 405


def test_posts_need_a_csrf_token(admin_user, guest):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    assert client.post(f"/guests/{guest.uuid}/snapshots/new/", {"name": "x"}).status_code == 403
    assert not Job.objects.exists()


def test_anonymous_visitors_are_sent_to_login(client, guest):
    response = client.get(f"/guests/{guest.uuid}/edit/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


@pytest.mark.parametrize("persona, links", [
    ("admin", ["edit", "snapshots", "clone", "history", "xml"]),
    ("operator", ["edit", "snapshots", "clone", "history"]),
    ("viewer", ["snapshots"]),
])
def test_the_guest_page_offers_the_actions_the_persona_may_use(request, guest, persona, links):
    page = request.getfixturevalue(f"{persona}_client").get(f"/guests/{guest.uuid}/").content.decode()
    for name in ["edit", "snapshots", "clone", "history", "xml"]:
        assert (f'href="/guests/{guest.uuid}/{name}/"' in page) == (name in links), name


@pytest.mark.parametrize("persona, shown", [("admin", True), ("operator", True), ("viewer", False)])
def test_the_guest_list_has_a_new_guest_button_for_managers(request, persona, shown):
    page = request.getfixturevalue(f"{persona}_client").get("/guests/").content.decode()
    assert ('href="/guests/new/"' in page) == shown


def test_an_unknown_edit_section_is_not_found(admin_client, guest):
    assert admin_client.post(f"/guests/{guest.uuid}/edit/format-disk/", {}).status_code == 404


def test_a_task_refuses_when_the_actor_lost_the_permission_while_it_waited(operator_user, guest):
    from core.choices import JobStatus
    from guests.tasks_provision import guarded
    from tests.unit.provision.conftest import run_job

    job = svc.queue_snapshot(operator_user, guest, name="late", description="", memory=False, disk_only=False)
    operator_user.groups.clear()
    operator_user = type(operator_user).objects.get(pk=operator_user.pk)  # drop the cached role
    job = run_job(job, guarded("run_snapshot_create"))
    assert job.status == JobStatus.FAILED and "no longer allowed" in job.message
    assert svc.snapshot_list(guest) == []

"""Guest pages: permissions for every URL and persona, no libvirt call on the list, escaping."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from guest_helpers import HOSTILE_NAMES, domain_xml

from core.models import AuditEntry, Job
from guests import inventory
from guests.models import Guest, GuestSample

PERSONAS = ["admin_client", "operator_client", "viewer_client", "outsider_client"]
READ_STATUS = {"admin_client": 200, "operator_client": 200, "viewer_client": 200, "outsider_client": 404}


def _alpha(synced):
    return Guest.objects.get(host=synced, name="vdtest-alpha")


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("suffix", ["", "overview/", "samples/", "delete/"])
def test_guest_pages_answer_each_persona_by_role(request, synced, persona, suffix):
    client = request.getfixturevalue(persona)
    guest = _alpha(synced)
    response = client.get(f"/guests/{guest.uuid}/{suffix}")
    expected = READ_STATUS[persona]
    if suffix == "delete/" and persona == "viewer_client":
        expected = 403
    assert response.status_code == expected


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("url", ["/guests/", "/guests/rows/"])
def test_the_list_shows_guests_only_to_those_who_may_see_them(request, synced, persona, url):
    response = request.getfixturevalue(persona).get(url)
    assert response.status_code == 200
    assert ("vdtest-alpha" in response.content.decode()) == (persona != "outsider_client")


@pytest.mark.parametrize("persona", ["viewer_client", "outsider_client"])
def test_bulk_actions_are_refused_to_those_who_may_not_operate(request, synced, persona):
    ids = list(Guest.objects.values_list("pk", flat=True))
    response = request.getfixturevalue(persona).post("/guests/bulk/", {"action": "destroy", "guest": ids})
    assert response.status_code in (302, 403)
    assert not Job.objects.exists()


@pytest.mark.parametrize("persona,allowed", [("admin_client", True), ("operator_client", True),
                                             ("viewer_client", False), ("outsider_client", False)])
def test_power_actions_need_operate_and_are_audited_either_way(request, synced, persona, allowed):
    client = request.getfixturevalue(persona)
    guest = _alpha(synced)
    response = client.post(f"/guests/{guest.uuid}/action/suspend/")
    if persona == "outsider_client":
        assert response.status_code == 404  # may not even know it exists
        return
    assert response.status_code == (302 if allowed else 403)
    assert Job.objects.filter(kind="guest.suspend").exists() == allowed
    result = "queued" if allowed else "denied"
    assert AuditEntry.objects.filter(action="guest.suspend", result=result).count() == 1


def test_actions_refuse_get(admin_client, synced):
    guest = _alpha(synced)
    assert admin_client.get(f"/guests/{guest.uuid}/action/start/").status_code == 405
    assert admin_client.get("/guests/bulk/").status_code == 405
    assert not Job.objects.exists()


def test_a_second_action_on_a_busy_guest_is_refused_with_a_message(admin_client, synced):
    guest = _alpha(synced)
    admin_client.post(f"/guests/{guest.uuid}/action/suspend/")
    response = admin_client.post(f"/guests/{guest.uuid}/action/destroy/", follow=True)
    assert "is busy with job" in response.content.decode()
    assert Job.objects.count() == 1


def test_delete_needs_the_typed_name_and_refuses_a_running_guest_unless_forced(admin_client, synced):
    guest = _alpha(synced)
    url = f"/guests/{guest.uuid}/delete/"
    assert admin_client.post(url, {"confirm": "wrong"}).status_code == 400
    response = admin_client.post(url, {"confirm": guest.name})
    assert response.status_code == 400 and "is running" in response.content.decode()
    response = admin_client.post(url, {"confirm": guest.name, "volume": "/etc/passwd", "force": "on"})
    assert response.status_code == 400 and "Not a disk" in response.content.decode()
    assert not Job.objects.exists()
    response = admin_client.post(url, {"confirm": guest.name, "force": "on"})
    assert response.status_code == 302 and Job.objects.get().kind == "guest.delete"


def test_a_viewer_cannot_delete_and_the_attempt_is_audited(viewer_client, synced):
    guest = _alpha(synced)
    assert viewer_client.post(f"/guests/{guest.uuid}/delete/", {"confirm": guest.name}).status_code == 403
    assert AuditEntry.objects.filter(action="guest.delete", result="denied").count() == 1


def test_bulk_actions_make_one_job_for_the_selected_guests(operator_client, synced):
    ids = list(Guest.objects.values_list("pk", flat=True))
    response = operator_client.post("/guests/bulk/", {"action": "start", "guest": ids})
    job = Job.objects.get()
    assert response.status_code == 302 and job.kind == "guest.bulk-start"
    assert sorted(job.params["guests"]) == sorted(ids)


def test_rendering_the_list_makes_no_libvirt_call_and_few_queries(admin_client, node_host, virt,
                                                                 count_libvirt_calls):
    for i in range(60):
        virt.defineXML(domain_xml(f"vdtest-many-{i:03}"))
    inventory.resync(node_host, full=True)
    now = __import__("django.utils.timezone", fromlist=["now"]).now()
    GuestSample.objects.bulk_create([GuestSample(guest=g, time=now, cpu_percent=5, memory_used=1, memory=2)
                                     for g in Guest.objects.all()])
    before = count_libvirt_calls()
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get("/guests/?sort=-memory")
    assert response.status_code == 200
    assert count_libvirt_calls() == before
    assert len(queries) <= 10, [q["sql"][:80] for q in queries]
    page2 = admin_client.get("/guests/?page=2").content.decode()
    assert "Page 2 of 2" in page2


def test_filters_by_state_host_and_text(admin_client, synced):
    body = admin_client.get("/guests/rows/?state=shutoff").content.decode()
    assert "vdtest-gamma" in body and "vdtest-alpha" not in body
    body = admin_client.get("/guests/rows/?q=bet").content.decode()
    assert "vdtest-beta" in body and "vdtest-gamma" not in body
    body = admin_client.get(f"/guests/rows/?host={synced.pk + 1000}").content.decode()
    assert "vdtest-beta" not in body


def test_hostile_names_are_escaped_on_list_and_detail(admin_client, node_host, virt):
    for name in HOSTILE_NAMES:
        virt.defineXML(domain_xml(name, title=name))
    inventory.resync(node_host, full=True)
    pages = [admin_client.get("/guests/").content.decode()]
    for guest in Guest.objects.filter(name__in=HOSTILE_NAMES):
        pages.append(admin_client.get(f"/guests/{guest.uuid}/").content.decode())
        pages.append(admin_client.get(f"/guests/{guest.uuid}/delete/").content.decode())
    for page in pages:
        assert "<script>alert(1)" not in page
        assert 'quote"and' not in page
    assert "&lt;script&gt;alert(1)" in pages[0]
    assert "Gäste-Ωμέγα-日本" in pages[0]


def test_the_detail_page_shows_console_links_only_to_those_who_may_use_them(admin_client, viewer_client, synced):
    guest = _alpha(synced)
    admin = admin_client.get(f"/guests/{guest.uuid}/").content.decode()
    viewer = viewer_client.get(f"/guests/{guest.uuid}/").content.decode()
    assert f"/consoles/{guest.uuid}/vnc/" in admin and f"/consoles/{guest.uuid}/serial/" in admin
    assert "Console (view only)" in viewer and "/serial/" not in viewer
    gamma = Guest.objects.get(name="vdtest-gamma")  # shut off: no console
    assert "/consoles/" not in admin_client.get(f"/guests/{gamma.uuid}/").content.decode()


def test_rows_of_an_unreachable_host_keep_their_state_and_say_so(admin_client, synced):
    synced.status, synced.last_error = "unreachable", "connection refused"
    synced.save()
    body = admin_client.get("/guests/").content.decode()
    assert "host unreachable" in body and "Running" in body
    detail = admin_client.get(f"/guests/{_alpha(synced).uuid}/overview/").content.decode()
    assert "is unreachable" in detail and "last known state" in detail

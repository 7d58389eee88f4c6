"""Bulk requests split by zone: one bulk job per zone of the selected guests' hosts, each holding its
own guests' locks and sent to its zone's Celery queue (test driver, real Redis broker)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.utils import timezone
from guest_helpers import domain_xml, write_node

from core import jobs
from core.models import GuestLock, Job
from guests import inventory, services
from guests.models import Guest
from hosts.models import Host
from hosts.virt import connections
from tests.celery_queue import queued_job_ids
from tests.conftest import TEST_PREFIX

ZONES = ["", "eu-west", "us-east"]
QUEUES = {"": "celery", "eu-west": "zone.eu-west", "us-east": "zone.us-east"}


@pytest.fixture
def zoned(db, tmp_path):
    """Three hosts (default zone, eu-west, us-east) with two guests each: {zone: [guest, guest]}."""
    uris, guests = [], {}
    for index, zone in enumerate(ZONES):
        names = [f"{TEST_PREFIX}z{index}-a", f"{TEST_PREFIX}z{index}-b"]
        uri = write_node(tmp_path / f"node{index}.xml", [domain_xml(n) for n in names])
        uris.append(uri)
        host = Host.objects.create(name=f"zone-host-{index}", uri=uri, zone=zone, status="connected")
        inventory.resync(host, full=True)
        guests[zone] = list(Guest.objects.filter(host=host).order_by("name"))
        assert len(guests[zone]) == 2
    yield guests
    for uri in uris:
        connections.drop(uri)


@pytest.fixture
def broker():
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.delete(*QUEUES.values())
    yield client
    client.delete(*QUEUES.values())
    client.close()


def _queued(broker, queue: str) -> list[int]:
    return queued_job_ids(broker, queue, "guests.bulk")


def _locked(job: Job) -> set[str]:
    return set(GuestLock.objects.filter(job=job).values_list("guest_uuid", flat=True))


def _selection(zoned) -> list[Guest]:
    return [zoned["eu-west"][1], zoned[""][0], zoned["us-east"][0], zoned["eu-west"][0], zoned[""][1]]


def test_a_selection_over_three_zones_makes_one_job_per_zone_on_its_zones_queue(
        admin_user, zoned, broker, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        result = services.request_bulk_by_zone(admin_user, _selection(zoned), "suspend")
    assert [jobs.zone_of(job) for job in result.jobs] == ["", "eu-west", "us-east"]  # default zone first
    expected = {"": zoned[""], "eu-west": zoned["eu-west"], "us-east": zoned["us-east"][:1]}
    for job in result.jobs:
        zone = jobs.zone_of(job)
        assert job.host_id is None and job.kind == "guest.bulk-suspend" and job.status == "queued"
        assert job.params["zone"] == zone
        assert sorted(job.params["guests"]) == sorted(g.pk for g in expected[zone])
        assert _locked(job) == {g.uuid for g in expected[zone]}
        assert job.items == []
        assert jobs.queue_for(job) == (QUEUES[zone] if zone else None)
        assert _queued(broker, QUEUES[zone]) == [job.pk]  # in the Redis list of its zone's queue, only there
    assert GuestLock.objects.count() == 5
    assert result.jobs[1].target_name == "2 guests, zone eu-west"
    assert result.summary() == (f"Queued 3 jobs: #{result.jobs[0].pk} (zone default, 2 guests), "
                                f"#{result.jobs[1].pk} (zone eu-west, 2 guests), "
                                f"#{result.jobs[2].pk} (zone us-east, 1 guest).")


def test_a_selection_within_one_zone_makes_one_job_sent_to_that_zone(
        admin_user, zoned, broker, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        job = services.request_bulk(admin_user, zoned["us-east"], "suspend")
    assert Job.objects.count() == 1 and job.params["zone"] == "us-east"
    assert _locked(job) == {g.uuid for g in zoned["us-east"]}
    assert _queued(broker, "zone.us-east") == [job.pk]
    assert _queued(broker, "celery") == [] and _queued(broker, "zone.eu-west") == []


def test_request_bulk_refuses_a_selection_spanning_zones_before_creating_anything(admin_user, zoned):
    with pytest.raises(ValueError, match="span several zones"):
        services.request_bulk(admin_user, _selection(zoned), "suspend")
    assert not Job.objects.exists() and not GuestLock.objects.exists()


def test_each_zone_job_runs_only_its_own_guests(admin_user, zoned):
    result = services.request_bulk_by_zone(admin_user, _selection(zoned), "suspend")
    east = result.jobs[2]
    jobs.run(east.pk, services.perform_bulk)
    east.refresh_from_db()
    assert east.status == "succeeded", east.message
    assert [item["name"] for item in east.items] == [zoned["us-east"][0].name]
    assert not GuestLock.objects.filter(job=east).exists()
    assert GuestLock.objects.count() == 4  # the other zones' jobs still hold theirs

    def state(guest):
        return connections.call(guest.host.uri, lambda c: c.lookupByUUIDString(guest.uuid).state()[0], what="state")

    east_guest = zoned["us-east"][0]
    assert state(east_guest) == 3  # paused in libvirt
    others = [g for guests in zoned.values() for g in guests if g.pk != east_guest.pk]
    assert [state(g) for g in others] == [1] * len(others)  # the other jobs' guests untouched (running)


def test_a_zone_whose_guests_are_all_busy_gets_no_job_and_its_guests_are_reported(admin_user, zoned):
    holder = services.request_bulk(admin_user, zoned["eu-west"], "suspend")
    single = services.request_action(admin_user, zoned[""][0], "suspend")
    result = services.request_bulk_by_zone(admin_user, _selection(zoned), "destroy")
    assert [jobs.zone_of(job) for job in result.jobs] == ["", "us-east"]
    default_job = result.jobs[0]
    assert _locked(default_job) == {zoned[""][1].uuid}  # the busy one is a skipped item, not locked
    assert [i["name"] for i in default_job.items if i.get("skipped")] == [zoned[""][0].name]
    assert f"job #{single.pk}" in default_job.items[0]["message"]
    assert {name: h.pk for name, h in result.busy} == {g.name: holder.pk for g in zoned["eu-west"]}
    assert sorted(result.skipped()) == sorted([zoned[""][0].name] + [g.name for g in zoned["eu-west"]])
    assert _locked(holder) == {g.uuid for g in zoned["eu-west"]}  # still the first job's
    assert Job.objects.count() == 4


def test_when_every_selected_guest_is_busy_the_request_is_refused_and_creates_nothing(admin_user, zoned):
    first = services.request_bulk_by_zone(admin_user, _selection(zoned), "suspend")
    locks = dict(GuestLock.objects.values_list("guest_uuid", "job_id"))
    with pytest.raises(jobs.JobRefused, match="Other jobs hold every selected guest") as refused:
        services.request_bulk_by_zone(admin_user, _selection(zoned), "destroy")
    assert {h.pk for h in refused.value.holders} == {job.pk for job in first.jobs}
    assert Job.objects.count() == 3
    assert dict(GuestLock.objects.values_list("guest_uuid", "job_id")) == locks


def test_a_zone_bulk_job_nobody_picked_up_says_which_zone_worker_is_missing(admin_user, zoned):
    result = services.request_bulk_by_zone(admin_user, _selection(zoned), "suspend")
    Job.objects.filter(pk__in=[j.pk for j in result.jobs]).update(created=timezone.now() - timedelta(hours=2))
    assert jobs.reap_stale() == 3
    messages = {jobs.zone_of(job): Job.objects.get(pk=job.pk).message for job in result.jobs}
    assert "No worker of zone eu-west picked this job up" in messages["eu-west"]
    assert "-Q zone.eu-west" in messages["eu-west"] and "-Q zone.us-east" in messages["us-east"]
    assert messages[""].startswith("No worker picked this job up")
    assert not GuestLock.objects.exists()


# ------------------------------------------------------------------ the bulk form


def test_the_bulk_form_names_every_job_it_queued_and_opens_the_job_list(operator_client, zoned):
    response = operator_client.post("/guests/bulk/", {"action": "suspend",
                                                      "guest": [g.pk for g in _selection(zoned)]})
    assert response.status_code == 302 and response.url == "/jobs/"
    created = list(Job.objects.order_by("pk"))
    page = operator_client.get("/jobs/").content.decode()
    assert (f"Queued 3 jobs: #{created[0].pk} (zone default, 2 guests), #{created[1].pk} (zone eu-west, 2 guests), "
            f"#{created[2].pk} (zone us-east, 1 guest).") in page


def test_the_bulk_form_for_one_zone_opens_its_job_and_names_the_zone(operator_client, zoned):
    response = operator_client.post("/guests/bulk/", {"action": "suspend",
                                                      "guest": [g.pk for g in zoned["eu-west"]]}, follow=True)
    job = Job.objects.get()
    assert response.redirect_chain[-1][0] == f"/jobs/{job.pk}/"
    assert f"Job #{job.pk} started for 2 guests in zone eu-west." in response.content.decode()


def test_the_bulk_form_reports_the_busy_guests_of_a_zone_that_got_no_job(operator_user, operator_client, zoned):
    services.request_bulk(operator_user, zoned["us-east"], "suspend")
    selection = zoned[""] + zoned["us-east"]
    response = operator_client.post("/guests/bulk/", {"action": "suspend", "guest": [g.pk for g in selection]},
                                    follow=True)
    page = response.content.decode()
    job = Job.objects.order_by("pk").last()
    assert f"Job #{job.pk} started for 2 guests." in page
    assert f"Busy with other jobs, skipped: {zoned['us-east'][0].name}, {zoned['us-east'][1].name}." in page


def test_the_bulk_form_refuses_when_every_selected_guest_is_busy(operator_user, operator_client, zoned):
    services.request_bulk_by_zone(operator_user, _selection(zoned), "suspend")
    response = operator_client.post("/guests/bulk/", {"action": "destroy",
                                                      "guest": [g.pk for g in _selection(zoned)]}, follow=True)
    assert "Other jobs hold every selected guest" in response.content.decode()
    assert Job.objects.count() == 3


def test_a_queued_zone_bulk_jobs_page_says_which_worker_it_waits_for(admin_client, admin_user, zoned):
    default_job, west, _east = services.request_bulk_by_zone(admin_user, _selection(zoned), "suspend").jobs
    page = admin_client.get(f"/jobs/{west.pk}/").content.decode()
    assert "zone eu-west: waits for a Celery worker started with <code>-Q zone.eu-west</code>" in page
    assert 'data-field="zone"' not in admin_client.get(f"/jobs/{default_job.pk}/").content.decode()

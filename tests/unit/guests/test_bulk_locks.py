"""Bulk jobs hold every guest's lock from creation to the end of the run (test driver, real libvirt)."""

import threading
from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from core import jobs
from core.models import GuestLock, Job
from guests import services
from guests.models import Guest


def _guests(host):
    return list(Guest.objects.filter(host=host).order_by("name"))


def test_a_single_action_on_a_guest_held_by_a_bulk_job_is_refused_naming_the_bulk_job(admin_user, synced, virt):
    alpha, beta, _ = _guests(synced)
    bulk = services.request_bulk(admin_user, [alpha, beta], "destroy")
    with pytest.raises(jobs.JobRefused, match=rf"held by bulk job #{bulk.pk} \(guest.bulk-destroy, 2 guests\)"):
        services.request_action(admin_user, alpha, "suspend")
    assert Job.objects.count() == 1  # the refused job left no row
    jobs.run(bulk.pk, services.perform_bulk)
    bulk.refresh_from_db()
    assert bulk.status == "succeeded", bulk.message
    assert not virt.lookupByUUIDString(alpha.uuid).isActive() and not virt.lookupByUUIDString(beta.uuid).isActive()
    assert not GuestLock.objects.exists()
    follow_up = services.request_action(admin_user, alpha, "start")  # released: accepted now
    jobs.run(follow_up.pk, services.perform_action)
    assert virt.lookupByUUIDString(alpha.uuid).isActive()


def test_guests_busy_at_creation_are_skipped_items_not_a_failed_job(admin_user, synced, virt):
    alpha, beta, gamma = _guests(synced)
    single = services.request_action(admin_user, alpha, "suspend")
    bulk = services.request_bulk(admin_user, [alpha, beta, gamma], "destroy")
    assert set(GuestLock.objects.filter(job=bulk).values_list("guest_uuid", flat=True)) == {beta.uuid, gamma.uuid}
    jobs.run(bulk.pk, services.perform_bulk)
    bulk.refresh_from_db()
    assert bulk.status == "succeeded", bulk.message
    assert "1 busy — skipped" in bulk.message
    items = {i["name"]: i for i in bulk.items}
    assert items[alpha.name]["skipped"] and f"busy — skipped (job #{single.pk}" in items[alpha.name]["message"]
    assert items[beta.name]["ok"] and items[gamma.name]["ok"]
    assert virt.lookupByUUIDString(alpha.uuid).isActive()  # the bulk job did not touch it
    assert not virt.lookupByUUIDString(beta.uuid).isActive()


def test_overlapping_bulk_jobs_split_the_guests_between_them(admin_user, synced):
    alpha, beta, gamma = _guests(synced)
    first = services.request_bulk(admin_user, [alpha, beta], "suspend")
    second = services.request_bulk(admin_user, [beta, gamma], "suspend")
    assert [i["name"] for i in second.items if i.get("skipped")] == [beta.name]
    assert GuestLock.objects.get(guest_uuid=beta.uuid).job_id == first.pk
    assert GuestLock.objects.get(guest_uuid=gamma.uuid).job_id == second.pk


def test_a_failed_bulk_job_releases_its_guests(admin_user, synced):
    alpha, beta, _ = _guests(synced)
    bulk = services.request_bulk(admin_user, [alpha, beta], "destroy")
    jobs.run(bulk.pk, lambda job, report: 1 / 0)
    assert Job.objects.get(pk=bulk.pk).status == "failed"
    assert jobs.active_job_for_guest(alpha.uuid) is None and not GuestLock.objects.exists()


def test_a_reaped_bulk_job_releases_its_guests(admin_user, synced, settings):
    alpha, beta, _ = _guests(synced)
    bulk = services.request_bulk(admin_user, [alpha, beta], "destroy")
    long_ago = timezone.now() - timedelta(seconds=settings.VIRTDASH_STALE_JOB_SECONDS + 5)
    Job.objects.filter(pk=bulk.pk).update(status="running", heartbeat=long_ago, started=long_ago)
    assert jobs.reap_stale() == 1
    assert not GuestLock.objects.exists()
    assert services.request_action(admin_user, beta, "suspend").status == "queued"


def test_a_stale_lock_of_a_finished_job_does_not_block(admin_user, synced):
    alpha = _guests(synced)[0]
    old = services.request_bulk(admin_user, [alpha], "destroy")
    Job.objects.filter(pk=old.pk).update(status="failed", finished=timezone.now())  # ended without releasing
    job = services.request_action(admin_user, alpha, "suspend")
    assert GuestLock.objects.get(guest_uuid=alpha.uuid).job_id == job.pk


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_for_one_guest_make_exactly_one_job(admin_user, synced):
    alpha, beta, _ = _guests(synced)
    barrier = threading.Barrier(4)
    outcomes = []

    def request(index):
        barrier.wait()
        try:
            if index % 2:
                outcomes.append(services.request_action(admin_user, alpha, "suspend").kind)
            else:
                outcomes.append(services.request_bulk(admin_user, [alpha, beta], "suspend").kind)
        except jobs.JobRefused:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=request, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    holders = {lock.guest_uuid: lock.job_id for lock in GuestLock.objects.all()}
    assert set(holders) == {alpha.uuid, beta.uuid}  # each guest held by exactly one job
    assert len(outcomes) == 4
    uuids = {g.pk: g.uuid for g in (alpha, beta)}
    for job in Job.objects.filter(status="queued"):  # every target is held by it, or a skipped item of it
        targets = {uuids[pk] for pk in job.params["guests"]} if "guests" in job.params else {job.guest_uuid}
        held = {u for u, holder in holders.items() if holder == job.pk}
        skipped = {i["uuid"] for i in job.items if i.get("skipped")}
        assert held | skipped == targets and not held & skipped, job
    assert len([o for o in outcomes if o != "refused"]) == Job.objects.filter(status="queued").count()


def test_the_database_refuses_a_second_lock_on_a_guest(admin_user, synced):
    alpha = _guests(synced)[0]
    first = services.request_action(admin_user, alpha, "suspend")
    other = Job.objects.create(kind="guest.other")
    with pytest.raises(IntegrityError), transaction.atomic():
        GuestLock.objects.create(guest_uuid=alpha.uuid, job=other)
    assert GuestLock.objects.get(guest_uuid=alpha.uuid).job_id == first.pk


def test_the_bulk_form_says_which_guests_were_skipped(operator_user, operator_client, synced):
    alpha, beta, _ = _guests(synced)
    services.request_action(operator_user, alpha, "suspend")
    response = operator_client.post("/guests/bulk/", {"action": "suspend", "guest": [alpha.pk, beta.pk]}, follow=True)
    assert f"Busy with other jobs, skipped: {alpha.name}." in response.content.decode()


def test_a_bulk_job_whose_every_guest_is_busy_is_refused_and_leaves_no_job(admin_user, synced):
    alpha, beta, _ = _guests(synced)
    first = services.request_bulk(admin_user, [alpha, beta], "suspend")
    with pytest.raises(jobs.JobRefused, match=rf"Other jobs hold every selected guest: \(job #{first.pk}"):
        services.request_bulk(admin_user, [alpha, beta], "destroy")
    assert list(Job.objects.values_list("pk", flat=True)) == [first.pk]


def test_locking_a_bulk_jobs_guests_costs_the_same_few_queries_for_ten_or_two_hundred(admin_user, test_host):
    from django.test.utils import CaptureQueriesContext

    def many(n, offset):
        return [Guest.objects.create(host=test_host, uuid=f"00000000-0000-4000-8000-{offset + i:012d}",
                                     name=f"many-{offset + i}") for i in range(n)]

    lots = many(200, 1000)
    few = many(9, 0) + lots[:1]
    busy = jobs.create(admin_user, "guest.suspend", guest=lots[0])  # both bulk jobs skip this one
    counts = []
    for guests in (few, lots):
        with CaptureQueriesContext(connection) as queries:
            bulk = jobs.create(admin_user, "guest.bulk-destroy", guests=guests, target_name=f"{len(guests)} guests")
        counts.append(len(queries))
        assert GuestLock.objects.filter(job=bulk).count() == len(guests) - 1
    assert counts[0] == counts[1], counts
    assert [i["message"] for i in bulk.items] == [f"busy — skipped (job #{busy.pk}, guest.suspend)"]


def test_a_lock_taken_by_a_racing_job_between_read_and_insert_makes_that_guest_a_skipped_item(
        admin_user, synced, monkeypatch):
    """The batched insert loses the race on one guest: it falls back to one guest at a time."""
    alpha, beta, gamma = _guests(synced)
    racer = Job.objects.create(kind="guest.suspend", guest_uuid=beta.uuid, target_name=beta.name)
    original = GuestLock.objects.bulk_create

    def racing_bulk_create(objs, *args, **kwargs):
        monkeypatch.setattr(GuestLock.objects, "bulk_create", original)
        GuestLock.objects.create(guest_uuid=beta.uuid, job=racer)  # the other job commits first
        return original(objs, *args, **kwargs)

    monkeypatch.setattr(GuestLock.objects, "bulk_create", racing_bulk_create)
    bulk = jobs.create(admin_user, "guest.bulk-destroy", guests=[alpha, beta, gamma], target_name="3 guests")
    assert set(GuestLock.objects.filter(job=bulk).values_list("guest_uuid", flat=True)) == {alpha.uuid, gamma.uuid}
    assert [i["name"] for i in bulk.items] == [beta.name]
    assert f"job #{racer.pk}" in bulk.items[0]["message"]
    assert GuestLock.objects.get(guest_uuid=beta.uuid).job_id == racer.pk  # the racer keeps it

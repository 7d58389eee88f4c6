"""Job lifecycle: claim, progress, outcome, per-guest lock, dead-worker reaping."""

from datetime import timedelta

import pytest
from django.utils import timezone

from core import jobs
from core.models import AuditEntry, Job
from guests.models import Guest
from hosts.virt.errors import HostUnreachable


@pytest.fixture
def guest(test_host):
    return Guest.objects.create(host=test_host, uuid="6695eb01-f6a4-8304-79aa-97f2502e193f", name="test")


def test_a_job_runs_reports_progress_and_succeeds(operator_user, guest):
    job = jobs.create(operator_user, "guest.start", guest=guest)
    seen = []

    def work(job, report):
        report(40, "halfway")
        seen.append(Job.objects.get(pk=job.pk).progress)
        return "Started"

    jobs.run(job.pk, work)
    job.refresh_from_db()
    assert (job.status, job.progress, job.message) == ("succeeded", 100, "Started")
    assert seen == [40]
    assert job.started and job.finished
    assert list(AuditEntry.objects.order_by("id").values_list("result", flat=True)) == ["queued", "ok"]


def test_a_libvirt_failure_becomes_the_jobs_message(operator_user, guest):
    job = jobs.create(operator_user, "guest.start", guest=guest)

    def work(job, report):
        raise HostUnreachable("testhost is unreachable: connection refused")

    jobs.run(job.pk, work)
    job.refresh_from_db()
    assert job.status == "failed"
    assert job.message == "testhost is unreachable: connection refused"


def test_an_unexpected_error_fails_the_job_without_leaking_details(operator_user, guest):
    job = jobs.create(operator_user, "guest.start", guest=guest)
    jobs.run(job.pk, lambda job, report: 1 / 0)
    job.refresh_from_db()
    assert job.status == "failed" and "ZeroDivisionError" in job.message


def test_a_second_action_on_a_busy_guest_is_refused(operator_user, guest):
    first = jobs.create(operator_user, "guest.start", guest=guest)
    with pytest.raises(jobs.JobRefused, match=f"busy with job #{first.pk}"):
        jobs.create(operator_user, "guest.shutdown", guest=guest)
    assert Job.objects.count() == 1


def test_a_finished_job_is_not_run_twice(operator_user, guest):
    job = jobs.create(operator_user, "guest.start", guest=guest)
    calls = []
    jobs.run(job.pk, lambda j, r: calls.append(1) or "ok")
    jobs.run(job.pk, lambda j, r: calls.append(2) or "ok")
    assert calls == [1]


def test_a_job_whose_worker_died_is_marked_failed(operator_user, guest, settings):
    job = jobs.create(operator_user, "guest.start", guest=guest)
    long_ago = timezone.now() - timedelta(seconds=settings.VIRTDASH_STALE_JOB_SECONDS + 5)
    Job.objects.filter(pk=job.pk).update(status="running", heartbeat=long_ago, started=long_ago)
    assert jobs.reap_stale() == 1
    job.refresh_from_db()
    assert job.status == "failed" and "worker" in job.message
    assert jobs.active_job_for_guest(guest.uuid) is None


def test_a_job_never_picked_up_is_marked_failed(operator_user, guest, settings):
    job = jobs.create(operator_user, "guest.start", guest=guest)
    long_ago = timezone.now() - timedelta(seconds=settings.VIRTDASH_QUEUED_JOB_SECONDS + 1)
    Job.objects.filter(pk=job.pk).update(created=long_ago)
    assert jobs.reap_stale() == 1
    job.refresh_from_db()
    assert job.status == "failed" and "picked" in job.message


def test_a_redelivered_task_may_retake_a_dead_running_job(operator_user, guest, settings):
    job = jobs.create(operator_user, "guest.start", guest=guest)
    long_ago = timezone.now() - timedelta(seconds=settings.VIRTDASH_STALE_JOB_SECONDS + 5)
    Job.objects.filter(pk=job.pk).update(status="running", heartbeat=long_ago)
    jobs.run(job.pk, lambda j, r: "Started")
    job.refresh_from_db()
    assert job.status == "succeeded"

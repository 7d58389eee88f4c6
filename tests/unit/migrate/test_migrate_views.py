"""The migrate form and its refusals: same host, no permission (403, audited), unreachable host."""

from __future__ import annotations

import pytest
from migrate_helpers import DISKLESS

from core.models import AuditEntry, Grant, Job
from guests.models import Guest
from hosts.models import Host
from tests.conftest import make_user


def _url(guest, suffix=""):
    return f"/guests/{guest.uuid}/migrate/{suffix}"


@pytest.fixture
def guest(hosts):
    return Guest.objects.get(name=DISKLESS)


@pytest.fixture
def enqueued(monkeypatch):
    """Record enqueued jobs instead of sending them to Celery (no broker in unit tests)."""
    from core import jobs

    sent = []
    monkeypatch.setattr(jobs, "enqueue", lambda job, task: sent.append((job.pk, task.name)))
    return sent


def test_the_form_lists_other_connected_hosts_with_free_memory_and_cpus(operator_client, guest, hosts):
    source, dest = hosts
    Host.objects.create(name="broken", uri="test:///broken-nowhere", status="unreachable", last_error="refused")
    page = operator_client.get(_url(guest))
    assert page.status_code == 200
    html = page.content.decode()
    assert f'value="{dest.pk}"' in html and f'value="{source.pk}"' not in html
    assert "8.0 GiB" in html and "of 16.0 GiB" in html
    assert "Unreachable (refused)" in html  # listed, but its radio button is disabled
    assert "migrated <strong>live</strong>" in html


def test_the_guest_page_offers_migrate_to_operators_only(operator_client, viewer_client, guest):
    assert 'data-action="migrate"' in operator_client.get(f"/guests/{guest.uuid}/").content.decode()
    assert 'data-action="migrate"' not in viewer_client.get(f"/guests/{guest.uuid}/").content.decode()


def test_posting_queues_a_live_migration_job(operator_client, operator_user, guest, hosts, enqueued):
    _source, dest = hosts
    response = operator_client.post(_url(guest), {"destination": dest.pk, "bandwidth": "20"})
    assert response.status_code == 302 and response["Location"] == _url(guest)
    job = Job.objects.get(kind="guest.migrate")
    assert job.params["mode"] == "live" and job.params["destination"] == dest.pk and job.params["bandwidth_mib"] == 20
    assert job.actor == operator_user and job.guest_uuid == guest.uuid
    assert enqueued == [(job.pk, "guests.migrate")]
    page = operator_client.get(_url(guest)).content.decode()
    assert "Migration in progress" in page and 'id="migration-cancel"' in page


def test_the_same_host_is_refused(operator_client, guest, hosts, enqueued):
    source, _dest = hosts
    response = operator_client.post(_url(guest), {"destination": source.pk})
    assert response.status_code == 400
    assert f"already on {source.name}" in response.content.decode()
    assert not Job.objects.exists() and not enqueued


def test_an_unreachable_destination_is_refused(operator_client, guest, hosts, enqueued):
    _source, dest = hosts
    Host.objects.filter(pk=dest.pk).update(status="unreachable", last_error="connection refused")
    response = operator_client.post(_url(guest), {"destination": dest.pk})
    assert response.status_code == 400
    assert f"{dest.name} is unreachable" in response.content.decode()
    assert not Job.objects.exists() and not enqueued


def test_a_destination_the_user_may_not_operate_is_403_and_audited(client, guest, hosts, enqueued):
    source, dest = hosts
    user = make_user("gina-granted", "viewer")
    Grant.objects.create(user=user, host=source, role="operator")  # may operate the guest, only views dest
    client.force_login(user)
    page = client.get(_url(guest)).content.decode()
    assert f'value="{dest.pk}"' not in page  # not offered
    response = client.post(_url(guest), {"destination": dest.pk})
    assert response.status_code == 403
    denied = AuditEntry.objects.get(action="guest.migrate", result="denied")
    assert denied.actor == user and dest.name in denied.detail
    assert not Job.objects.exists() and not enqueued


def test_a_viewer_may_not_migrate(viewer_client, viewer_user, guest, hosts, enqueued):
    _source, dest = hosts
    assert viewer_client.get(_url(guest)).status_code == 403
    assert viewer_client.post(_url(guest), {"destination": dest.pk}).status_code == 403
    assert AuditEntry.objects.filter(action="guest.migrate", result="denied", actor=viewer_user).count() == 1
    assert not enqueued


def test_an_outsider_does_not_even_see_the_guest(outsider_client, guest, hosts):
    _source, dest = hosts
    assert outsider_client.get(_url(guest)).status_code == 404
    assert outsider_client.post(_url(guest), {"destination": dest.pk}).status_code == 404


def test_get_never_migrates(admin_client, guest, hosts, enqueued):
    _source, dest = hosts
    admin_client.get(_url(guest), {"destination": dest.pk})
    assert not Job.objects.exists() and not enqueued


def test_nonsense_input_is_a_400(operator_client, guest, hosts, enqueued):
    _source, dest = hosts
    for data in ({}, {"destination": "x"}, {"destination": "99999999999999"},
                 {"destination": dest.pk, "bandwidth": "-1"}, {"destination": dest.pk, "bandwidth": "lots"}):
        assert operator_client.post(_url(guest), data).status_code == 400, data
    assert not enqueued


def test_cancel_marks_the_job_and_is_audited(operator_client, guest, hosts, enqueued):
    _source, dest = hosts
    operator_client.post(_url(guest), {"destination": dest.pk})
    job = Job.objects.get(kind="guest.migrate")
    response = operator_client.post(_url(guest, f"{job.pk}/cancel/"))
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.params["cancel"] == "oscar-operator"
    assert AuditEntry.objects.filter(action="guest.migrate-cancel", result="ok").count() == 1
    assert "Cancel requested by oscar-operator" in operator_client.get(_url(guest)).content.decode()


def test_a_viewer_cannot_cancel(viewer_client, operator_client, guest, hosts, enqueued):
    _source, dest = hosts
    operator_client.post(_url(guest), {"destination": dest.pk})
    job = Job.objects.get(kind="guest.migrate")
    assert viewer_client.post(_url(guest, f"{job.pk}/cancel/")).status_code == 403
    job.refresh_from_db()
    assert "cancel" not in job.params
    assert AuditEntry.objects.filter(action="guest.migrate-cancel", result="denied").count() == 1


def test_the_form_offers_a_disk_copy_for_a_running_guest_with_local_disks(operator_client, hosts, enqueued):
    from migrate_helpers import WITH_DISK

    _source, dest = hosts
    guest = Guest.objects.get(name=WITH_DISK)
    page = operator_client.get(_url(guest)).content.decode()
    assert 'name="copy_storage"' in page and "vda: /var/lib/vdtest/mig.img" in page
    assert operator_client.post(_url(guest), {"destination": dest.pk, "copy_storage": "on"}).status_code == 302
    assert Job.objects.get(kind="guest.migrate").params["copy_storage"] is True


def test_a_disk_copy_is_refused_for_a_shut_off_guest(operator_client, hosts, shut_off, enqueued):
    source, dest = hosts
    guest = shut_off(source, DISKLESS)
    assert 'name="copy_storage"' not in operator_client.get(_url(guest)).content.decode()
    response = operator_client.post(_url(guest), {"destination": dest.pk, "copy_storage": "on"})
    assert response.status_code == 400 and "only during a live migration" in response.content.decode()

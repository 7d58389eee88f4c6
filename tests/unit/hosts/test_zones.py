"""Host zones (test:/// driver, real Redis): the zone field on the host form, the Celery queue a
zone's jobs are sent to, which hosts a watcher watches, and watcher duties done once per round."""

from __future__ import annotations

import threading
import time

import pytest
import redis
from django.conf import settings
from django.core.management import CommandError, call_command

from core import jobs, shared_redis
from core.models import AuditEntry
from guests.tasks import guest_action
from hosts.models import Host
from hosts.watch_zones import ADVERT_KEY, DUTY_KEY, ZoneScope, claim_duty
from tests.celery_queue import queued_job_ids


@pytest.fixture
def clean_redis():
    keys = [ADVERT_KEY, DUTY_KEY.format(name="test-duty")]
    shared_redis.client().delete(*keys)
    yield
    shared_redis.client().delete(*keys)


def _form(zone: str, name: str = "zoned", uri: str = "test:///default") -> dict:
    return {"name": name, "uri": uri, "zone": zone, "description": "", "enabled": "on"}


BAD_ZONES = ["Z1", "-z1", "z_1", "z 1", "z1/../x", "a" * 33, "default", "zoné"]


@pytest.mark.parametrize("zone", BAD_ZONES)
def test_the_host_form_refuses_a_bad_zone_with_a_message_and_saves_nothing(admin_client, zone):
    response = admin_client.post("/hosts/add/", _form(zone))
    assert response.status_code == 200
    message = response.context["form"].errors["zone"][0]
    assert "zone" in message.lower() or "at most 32 characters" in message
    assert message in response.content.decode().replace("&#x27;", "'")
    assert Host.objects.count() == 0
    assert not AuditEntry.objects.filter(action="host.add").exists()


def test_editing_a_host_refuses_a_bad_zone_and_keeps_the_old_one(admin_client, test_host):
    test_host.zone = "rack-1"
    test_host.save()
    response = admin_client.post(f"/hosts/{test_host.pk}/edit/", _form("Rack 2", name=test_host.name))
    assert response.status_code == 200 and response.context["form"].errors["zone"]
    test_host.refresh_from_db()
    assert test_host.zone == "rack-1"


def test_an_admin_sets_a_zone_and_the_host_list_and_page_show_it(admin_client):
    assert admin_client.post("/hosts/add/", _form(" eu-west-2 ")).status_code == 302
    host = Host.objects.get(name="zoned")
    assert host.zone == "eu-west-2"
    listing = admin_client.get("/hosts/").content.decode()
    assert 'data-field="zone"' in listing and ">eu-west-2</span>" in listing
    page = admin_client.get(f"/hosts/{host.pk}/").content.decode()
    assert 'data-field="zone">eu-west-2' in page and "zone.eu-west-2" in page


def test_a_host_without_a_zone_shows_none(admin_client):
    admin_client.post("/hosts/add/", _form(""))
    host = Host.objects.get(name="zoned")
    assert host.zone == ""
    assert 'data-field="zone"' not in admin_client.get("/hosts/").content.decode()
    assert 'data-field="zone"' not in admin_client.get(f"/hosts/{host.pk}/").content.decode()


# ------------------------------------------------------------------ Celery queue of a job


@pytest.fixture
def broker():
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.delete("celery", "zone.z1")
    yield client
    client.delete("celery", "zone.z1")
    client.close()


def _queued_job_ids(broker, queue: str) -> list[int]:
    return queued_job_ids(broker, queue, "guests.action")


@pytest.mark.parametrize("zone, queue", [("z1", "zone.z1"), ("", "celery")])
def test_a_hosts_job_is_sent_to_its_zones_queue(operator_user, test_host, broker, zone, queue,
                                                django_capture_on_commit_callbacks):
    test_host.zone = zone
    test_host.save()
    job = jobs.create(operator_user, "guest.start", host=test_host)
    with django_capture_on_commit_callbacks(execute=True):
        jobs.enqueue(job, guest_action)
    other = "celery" if queue != "celery" else "zone.z1"
    assert _queued_job_ids(broker, queue) == [job.pk]
    assert _queued_job_ids(broker, other) == []


def test_a_job_without_a_host_goes_to_the_default_queue(operator_user, broker, django_capture_on_commit_callbacks):
    job = jobs.create(operator_user, "guest.start", target_name="nothing")
    with django_capture_on_commit_callbacks(execute=True):
        jobs.enqueue(job, guest_action)
    assert _queued_job_ids(broker, "celery") == [job.pk]


def test_a_queued_zone_jobs_page_says_which_worker_it_waits_for(admin_client, admin_user, test_host):
    test_host.zone = "z1"
    test_host.save()
    job = jobs.create(admin_user, "guest.start", host=test_host)
    page = admin_client.get(f"/jobs/{job.pk}/").content.decode()
    assert "zone z1: waits for a Celery worker started with <code>-Q zone.z1</code>" in page


def test_a_zone_job_nobody_picked_up_says_which_worker_is_missing(operator_user, test_host):
    from datetime import timedelta

    from django.utils import timezone

    test_host.zone = "z1"
    test_host.save()
    job = jobs.create(operator_user, "guest.start", host=test_host)
    jobs.Job.objects.filter(pk=job.pk).update(created=timezone.now() - timedelta(hours=2))
    assert jobs.reap_stale() == 1
    job.refresh_from_db()
    assert job.status == "failed" and "-Q zone.z1" in job.message


# ------------------------------------------------------------------ watcher: hosts per zone


@pytest.fixture
def zoned_hosts(db):
    return {
        "": Host.objects.create(name="plain", uri="test:///default"),
        "z1": Host.objects.create(name="one", uri="test:///default?a", zone="z1"),
        "z2": Host.objects.create(name="two", uri="test:///default?b", zone="z2"),
        "off": Host.objects.create(name="off", uri="test:///default?c", zone="z1", enabled=False),
    }


def _names(scope: ZoneScope) -> set[str]:
    return set(scope.hosts().values_list("name", flat=True))


def test_a_zone_watcher_watches_only_its_zones_enabled_hosts(zoned_hosts, clean_redis):
    assert _names(ZoneScope(["z1"])) == {"one"}
    assert _names(ZoneScope(["z1", "z2"])) == {"one", "two"}
    assert _names(ZoneScope([""])) == {"plain"}  # `--zone default`


def test_a_watcher_without_zone_watches_everything_until_a_zone_watcher_runs(zoned_hosts, clean_redis):
    everyone = ZoneScope(None)
    assert _names(everyone) == {"plain", "one", "two"}  # single machine: every enabled host
    z1 = ZoneScope(["z1"], ttl=0.5)
    z1.hosts()  # its round advertises z1
    assert _names(everyone) == {"plain", "two"}
    time.sleep(0.7)  # z1's watcher died: its zone comes back after the time to live
    assert _names(everyone) == {"plain", "one", "two"}
    z1.hosts()
    default = ZoneScope([""])
    default.hosts()
    assert _names(everyone) == {"two"}
    z1.release()  # a clean stop hands the zone back at once
    default.release()
    assert _names(everyone) == {"plain", "one", "two"}


def test_watch_refuses_a_bad_zone_before_watching_anything():
    with pytest.raises(CommandError, match="lowercase letters"):
        call_command("watch", "--zone", "Bad!")


# ------------------------------------------------------------------ duties done once per round


def test_two_watchers_do_not_both_do_a_duty_in_the_same_round(clean_redis):
    assert claim_duty("test-duty", 0.5, "watcher-a") is True
    assert claim_duty("test-duty", 0.5, "watcher-b") is False
    assert claim_duty("test-duty", 0.5, "watcher-a") is False  # not twice in one round either
    time.sleep(0.6)
    assert claim_duty("test-duty", 0.5, "watcher-b") is True  # next round: whoever comes first


def test_of_many_watchers_racing_for_a_round_exactly_one_wins(clean_redis):
    start = threading.Barrier(8)
    won: list[str] = []

    def race(ident: str) -> None:
        start.wait()
        if claim_duty("test-duty", 5, ident):
            won.append(ident)

    threads = [threading.Thread(target=race, args=(f"w{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(won) == 1


# ------------------------------------------------------------------ watcher: Redis failing


@pytest.fixture
def redis_down():
    """`.down()` makes this process's Redis client fail (a real client of a port nothing listens on);
    `.back()` (and the teardown) restores it."""
    from tests.stack import free_port

    real = shared_redis.client()

    class Switch:
        def down(self):
            shared_redis._client = redis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0",
                                                        socket_connect_timeout=0.5)

        def back(self):
            shared_redis._client = real

    switch = Switch()
    yield switch
    switch.back()


def test_while_redis_fails_a_watcher_without_zone_keeps_leaving_the_last_read_zones_alone(
        zoned_hosts, clean_redis, redis_down, caplog):
    everyone = ZoneScope(None, ttl=0.5)
    z1 = ZoneScope(["z1"], ttl=0.5)
    z1.hosts()
    assert _names(everyone) == {"plain", "two"}
    redis_down.down()
    caplog.clear()
    for _ in range(3):  # rounds within 3 × ttl of the last read: z1 stays its own watcher's
        assert _names(everyone) == {"plain", "two"}
    assert caplog.text.count("Redis unavailable for the watcher's zones") == 1  # logged once, not per round
    assert "leaving zone(s) z1 to their watchers as last read, for up to 1.5 s" in caplog.text

    time.sleep(1.6)  # 3 × ttl without a successful read: it may have been a dead z1 watcher; watch everything
    assert _names(everyone) == {"plain", "one", "two"}
    assert _names(everyone) == {"plain", "one", "two"}
    assert caplog.text.count("watching every zone meanwhile") == 1
    redis_down.back()
    z1.hosts()  # z1's watcher still alive: it advertises again, the hand-over resumes
    assert _names(everyone) == {"plain", "two"}
    assert "Redis reachable again for the watcher's zones" in caplog.text


def test_when_redis_answers_again_the_zones_of_the_last_read_stay_left_alone_for_one_ttl(
        zoned_hosts, clean_redis, redis_down):
    """After an outage longer than the adverts' time to live the central watcher may read before the zone
    watcher re-advertised: it must not take the zone for that round."""
    everyone = ZoneScope(None, ttl=0.5)
    z1 = ZoneScope(["z1"], ttl=0.5)
    z1.hosts()
    assert _names(everyone) == {"plain", "two"}
    redis_down.down()
    time.sleep(0.6)  # z1's advert expires meanwhile (it cannot renew it)
    assert _names(everyone) == {"plain", "two"}
    redis_down.back()
    assert _names(everyone) == {"plain", "two"}  # read first, before z1's next round: still left alone
    time.sleep(0.6)  # one ttl later without z1 advertising: its watcher is gone, the zone comes back
    assert _names(everyone) == {"plain", "one", "two"}


def test_a_watcher_without_zone_that_never_read_redis_watches_everything(zoned_hosts, clean_redis, redis_down):
    redis_down.down()
    assert _names(ZoneScope(None, ttl=0.5)) == {"plain", "one", "two"}


def test_without_redis_a_duty_is_done_anyway_and_that_is_logged_once(clean_redis, redis_down, caplog):
    redis_down.down()
    assert [claim_duty("test-duty", 0.5, "watcher-a") for _ in range(3)] == [True, True, True]
    assert caplog.text.count("could not claim watcher duty test-duty") == 1
    redis_down.back()
    assert claim_duty("test-duty", 0.5, "watcher-a") is True
    assert claim_duty("test-duty", 0.5, "watcher-b") is False  # claims work again

"""The scheduled capacity report: settings → Celery beat entry → task body → e-mail with the CSV."""

import contextlib
import csv
import io
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.core import mail

from guests.models import Guest
from hosts.models import Host
from reports import periods
from reports.tasks import scheduled_capacity_report
from virtdash import schedules
from virtdash.env import SettingError

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def report_settings(settings, viewer_user):
    settings.VIRTDASH_REPORT_AS_USER = viewer_user.username
    settings.VIRTDASH_REPORT_RECIPIENTS = ["ops@example.org", "lead@example.org"]
    settings.VIRTDASH_REPORT_PERIOD = "week"
    return settings


def test_the_beat_task_mails_the_report_with_the_capacity_csv(small_seed, report_settings):
    assert scheduled_capacity_report() == 1
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["ops@example.org", "lead@example.org"]
    assert message.subject == "VirtDash capacity report: Last 7 days"
    running = sum(g.vcpus for g in Guest.objects.filter(state="running"))
    defined = sum(g.vcpus for g in Guest.objects.all())
    assert f"vCPUs {running} running / {defined} defined" in message.body
    [(filename, content, mimetype)] = message.attachments
    assert filename.startswith("capacity-") and filename.endswith(".csv") and mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(content)))
    assert len(rows) == Host.objects.count() + 1  # one per host, then the total
    total = rows[-1]
    assert int(total["vcpus_all"]) == defined and int(total["vcpus_running"]) == running
    assert int(total["guests_all"]) == Guest.objects.count()


def test_a_missing_or_disabled_report_user_sends_nothing(small_seed, report_settings, viewer_user):
    viewer_user.is_active = False
    viewer_user.save()
    assert scheduled_capacity_report() == 0
    report_settings.VIRTDASH_REPORT_AS_USER = "nobody"
    assert scheduled_capacity_report() == 0
    assert not mail.outbox


def test_the_schedule_setting_becomes_a_beat_entry_for_the_task():
    entry = schedules.report_schedule("0 7 * * 1", ["ops@example.org"], "week")["capacity-report"]
    assert entry["task"] == scheduled_capacity_report.name == schedules.REPORT_TASK
    cron = entry["schedule"]
    assert (cron.minute, cron.hour, cron.day_of_week) == ({0}, {7}, {1})
    assert schedules.report_schedule("", [], "week") == {}  # off by default
    assert set(schedules.PERIODS) == set(periods.PERIODS)


@pytest.mark.parametrize("schedule, recipients, period", [
    ("0 7 * *", ["a@example.org"], "week"),  # four fields
    ("61 7 * * 1", ["a@example.org"], "week"),  # no minute 61
    ("0 7 * * 1", [], "week"),  # nobody to send to
    ("0 7 * * 1", ["not an address"], "week"),
    ("0 7 * * 1", ["a@example.org"], "custom"),
])
def test_a_bad_schedule_fails_loudly(schedule, recipients, period):
    with pytest.raises(SettingError):
        schedules.report_schedule(schedule, recipients, period)


def _celery_conf(**env) -> subprocess.CompletedProcess:
    code = ("from virtdash.celery import app; e = app.conf.beat_schedule.get('capacity-report');"
            "print(e and e['task'], e and sorted(e['schedule'].hour), app.conf.beat_schedule_filename)")
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", **env})


def test_the_celery_app_reads_the_schedule_from_the_environment():
    done = _celery_conf(VIRTDASH_REPORT_SCHEDULE="30 6 * * 1-5", VIRTDASH_REPORT_RECIPIENTS="ops@example.org")
    assert done.returncode == 0, done.stderr
    task, hours, filename = done.stdout.split()
    assert (task, hours) == ("reports.scheduled_capacity_report", "[6]") and filename.endswith("celerybeat-schedule")
    broken = _celery_conf(VIRTDASH_REPORT_SCHEDULE="every monday", VIRTDASH_REPORT_RECIPIENTS="ops@example.org")
    assert broken.returncode != 0 and "VIRTDASH_REPORT_SCHEDULE" in broken.stderr


def _stop(process, sig) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


def test_the_procfile_beat_line_starts_beat_with_the_report_entry():
    """The Procfile's own `beat:` command, through a shell as honcho runs it; stopped once it has
    printed its schedule (about a second)."""
    (line,) = [row for row in (REPO / "Procfile").read_text().splitlines() if row.startswith("beat:")]
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "VIRTDASH_REPORT_SCHEDULE": "15 5 1 * *",
           "VIRTDASH_REPORT_RECIPIENTS": "ops@example.org"}
    beat = subprocess.Popen(["bash", "-c", line.split(":", 1)[1] + " --loglevel DEBUG"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    watchdog = threading.Timer(30, _stop, args=(beat, signal.SIGKILL))
    watchdog.start()
    seen = []
    try:
        for row in beat.stdout:  # ends when beat exits, or when the watchdog kills a silent one
            seen.append(row)
            if "reports.scheduled_capacity_report" in row or len(seen) > 200:
                break
    finally:
        watchdog.cancel()
        _stop(beat, signal.SIGTERM)
        beat.wait(timeout=20)
    assert any("<crontab: 15 5 1 * *" in row and "capacity-report" in row for row in seen), "".join(seen)


def test_a_redelivered_report_task_does_not_send_the_mail_twice(small_seed, report_settings):
    """Late acknowledgement: a worker that dies after sending gets the same task id again."""
    task_id = f"vdtest-{os.getpid()}-{id(report_settings)}"
    scheduled_capacity_report.apply(task_id=task_id)
    scheduled_capacity_report.apply(task_id=task_id)
    assert len(mail.outbox) == 1
    scheduled_capacity_report.apply(task_id=task_id + "-next")  # the next scheduled run still sends
    assert len(mail.outbox) == 2


def test_a_redelivery_during_the_first_attempt_is_skipped_and_one_after_a_dead_attempt_sends(
        small_seed, report_settings):
    from core import shared_redis
    from reports.tasks import REPORT_TIME_LIMIT

    task_id = f"vdtest-inflight-{os.getpid()}"
    key = f"virtdash:once:scheduled-report:{task_id}"
    shared_redis.client().set(key, f"started:{time.time() - 5:.0f}")  # an attempt 5 s ago, still running
    scheduled_capacity_report.apply(task_id=task_id)
    assert not mail.outbox
    shared_redis.client().set(key, f"started:{time.time() - REPORT_TIME_LIMIT - 5:.0f}")  # that attempt died
    scheduled_capacity_report.apply(task_id=task_id)
    assert len(mail.outbox) == 1
    assert shared_redis.client().get(key) == b"done"


def test_the_report_is_sent_when_redis_cannot_say_whether_it_was(small_seed, report_settings, monkeypatch):

    from core import shared_redis

    monkeypatch.setattr(shared_redis, "_client", shared_redis.make_client("redis://127.0.0.1:1/0"))
    scheduled_capacity_report.apply(task_id=f"vdtest-noredis-{os.getpid()}")
    assert len(mail.outbox) == 1

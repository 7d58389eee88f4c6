"""The scheduled capacity report: sent through Django's e-mail backend with the page's figures."""

import re

import pytest
from django.core import mail
from django.core.management import CommandError, call_command

from core.models import Grant
from guests.models import Guest


def test_the_report_mail_carries_totals_forecasts_and_waste(small_seed, admin_user, viewer_user):
    call_command("send_capacity_report", "--to", "leads@example.org", "--as-user", viewer_user.username,
                 "--period", "week")
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["leads@example.org"]
    assert "capacity report" in message.subject
    vcpus = sum(g.vcpus for g in Guest.objects.all())
    running = sum(g.vcpus for g in Guest.objects.filter(state="running"))
    assert f"vCPUs {running} running / {vcpus} defined" in message.body
    assert "Runs out first" in message.body and "idle guests" in message.body
    assert message.alternatives[0][1] == "text/html"


def test_the_mail_respects_what_the_user_may_see(small_seed, outsider_user):
    guest = Guest.objects.order_by("name").first()
    Grant.objects.create(user=outsider_user, role="viewer", guest=guest)
    call_command("send_capacity_report", "--to", "me@example.org", "--as-user", outsider_user.username)
    assert re.search(rf"vCPUs \d+ running / {guest.vcpus} defined", mail.outbox[0].body)


def test_bad_recipients_and_unknown_users_are_refused(small_seed, viewer_user):
    with pytest.raises(CommandError):
        call_command("send_capacity_report", "--to", "not-an-address", "--as-user", viewer_user.username)
    with pytest.raises(CommandError):
        call_command("send_capacity_report", "--to", "a@example.org", "--as-user", "nobody")
    assert not mail.outbox

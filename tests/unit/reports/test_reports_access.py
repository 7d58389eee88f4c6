"""Who sees which report: every URL for the four personas; grants restrict the numbers."""

import csv
import io
import re
from urllib.parse import urlencode

import pytest

from core.models import Grant
from guests.models import Guest

LONG = {"period": "custom", "start": "2026-02-24", "end": "2026-03-01"}  # inside small_seed


URLS = ["/reports/", "/reports/overview.csv", "/reports/forecast/", "/reports/forecast.csv", "/reports/rightsizing/",
        "/reports/rightsizing.csv?table=idle", "/reports/rightsizing.csv?table=oversized",
        "/reports/rightsizing.csv?table=stopped", "/reports/breakdown/", "/reports/breakdown/?by=team",
        "/reports/breakdown/?by=tag", "/reports/breakdown.csv?by=owner"]


@pytest.mark.parametrize("persona", ["admin_client", "operator_client", "viewer_client"])
def test_staff_personas_see_every_report(small_seed, request, persona):
    client = request.getfixturevalue(persona)
    for url in URLS:
        response = client.get(url + ("&" if "?" in url else "?") + urlencode(LONG))
        assert response.status_code == 200, url
        if ".csv" in url:
            assert list(csv.reader(io.StringIO(response.content.decode())))[0], url
        else:
            assert re.search(rb"demo-host-1|data-guest=|data-group=", response.content), url


def test_an_outsider_without_grants_sees_no_hosts_and_no_numbers(small_seed, outsider_client):
    for url in URLS:
        response = outsider_client.get(url)
        assert response.status_code == 200, url
        assert b"demo-host" not in response.content, url
        if ".csv" in url:
            rows = list(csv.DictReader(io.StringIO(response.content.decode())))
            assert all(r.get("host") in (None, "All hosts") for r in rows), url
            assert all(r.get("guests_all", "0") == "0" for r in rows), url


def test_anonymous_users_are_sent_to_log_in(small_seed, client):
    for url in URLS:
        response = client.get(url)
        assert response.status_code == 302, url
        assert "/accounts/login/" in response["Location"], url


def test_a_guest_grant_shows_only_that_guests_share(small_seed, outsider_user, outsider_client):
    guest = Guest.objects.filter(state="running").order_by("name").first()
    Grant.objects.create(user=outsider_user, role="viewer", guest=guest)
    rows = list(csv.DictReader(io.StringIO(outsider_client.get("/reports/overview.csv", LONG).content.decode())))
    total = rows[-1]
    assert total["host"] == "All hosts"
    assert int(total["vcpus_all"]) == guest.vcpus
    assert int(total["memory_allocated_all_bytes"]) == guest.memory_kib * 1024
    assert int(total["guests_all"]) == 1
    # Use over time comes from this guest's samples only: never more than its own vCPUs.
    assert float(total["cpu_used_p95_threads"]) <= guest.vcpus
    html = outsider_client.get("/reports/", LONG).content.decode()
    assert "only the guests you may see" in html
    assert re.search(r'data-metric="total.guests_all">1<', html)
    others = Guest.objects.exclude(pk=guest.pk).values_list("name", flat=True)
    for url in ("/reports/rightsizing/", "/reports/breakdown/?by=owner"):
        page = outsider_client.get(url, LONG).content.decode()
        assert not any(f'data-guest="{name}"' in page for name in others)


def test_a_host_grant_shows_that_host_and_not_the_other(small_seed, outsider_user, outsider_client):
    first, second = small_seed.hosts
    Grant.objects.create(user=outsider_user, role="viewer", host=first)
    rows = list(csv.DictReader(io.StringIO(outsider_client.get("/reports/overview.csv", LONG).content.decode())))
    assert [r["host"] for r in rows] == [first.name, "All hosts"]
    assert int(rows[-1]["vcpus_all"]) == sum(g.vcpus for g in first.guests.all())
    assert outsider_client.get("/reports/", {"host": second.pk}).status_code == 404
    forecast = outsider_client.get("/reports/forecast/", LONG).content.decode()
    assert second.name not in forecast


def test_reports_are_read_only_and_refuse_posts(small_seed, admin_client):
    for url in ("/reports/", "/reports/overview.csv", "/reports/rightsizing/", "/reports/breakdown.csv"):
        assert admin_client.post(url, {}).status_code == 405
    assert Guest.objects.count() == small_seed.guests


def test_a_bad_period_falls_back_with_a_message(small_seed, viewer_client):
    response = viewer_client.get("/reports/", {"period": "custom", "start": "2026-03-01", "end": "2026-01-01"})
    assert response.status_code == 200
    assert b"The end date is before the start date." in response.content
    assert viewer_client.get("/reports/rightsizing.csv", {"table": "nope"}).status_code == 404
    assert viewer_client.get("/reports/breakdown/", {"by": "<script>"}).status_code == 404
    assert viewer_client.get("/reports/", {"host": "abc"}).status_code == 404


def _overview_rows(client):
    return {r["host"]: r for r in csv.DictReader(io.StringIO(client.get("/reports/overview.csv", LONG)
                                                              .content.decode()))}


def test_a_host_seen_entirely_reports_like_for_admins_and_a_single_guest_adds_only_itself(
        small_seed, outsider_user, outsider_client, admin_client):
    first, second = small_seed.hosts
    other = second.guests.filter(state="running").order_by("name").first()
    Grant.objects.create(user=outsider_user, role="viewer", host=first)
    Grant.objects.create(user=outsider_user, role="viewer", guest=other)
    mine, admins = _overview_rows(outsider_client), _overview_rows(admin_client)
    assert mine[first.name]["cpu_used_p95_threads"] == admins[first.name]["cpu_used_p95_threads"]
    assert mine[first.name]["memory_used_avg_bytes"] == admins[first.name]["memory_used_avg_bytes"]
    assert int(mine[second.name]["vcpus_all"]) == other.vcpus
    assert float(mine[second.name]["cpu_used_p95_threads"]) <= other.vcpus
    assert int(mine["All hosts"]["vcpus_all"]) == int(admins[first.name]["vcpus_all"]) + other.vcpus
    forecast = outsider_client.get("/reports/forecast.csv", LONG).content.decode()
    rows = list(csv.DictReader(io.StringIO(forecast)))
    vcpu = {r["scope"]: r for r in rows if r["resource"] == "vCPUs allocated"}
    assert vcpu[first.name]["reason"] != "Not available for your view (needs host-wide figures)."
    assert vcpu[second.name]["reason"] == "Not available for your view (needs host-wide figures)."

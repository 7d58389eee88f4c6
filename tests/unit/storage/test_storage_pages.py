"""Storage pages on the test driver: who may see and change what, refusals, jobs, audit."""

from __future__ import annotations

import pytest

from core.models import AuditEntry, Job
from hosts import tasks

PERSONAS = ["admin_client", "operator_client", "viewer_client", "outsider_client"]
MAY_MANAGE = {"admin_client", "operator_client"}
MAY_VIEW = MAY_MANAGE | {"viewer_client"}


def _urls(host_id: int, pool: str) -> dict[str, list[tuple[str, str, dict]]]:
    base = f"/hosts/{host_id}/storage"
    vol = f"{base}/{pool}/volumes/vdtest-vol.qcow2"
    return {
        "view": [("get", f"{base}/", {}), ("get", f"{base}/{pool}/", {}),
                 ("get", f"{base}/{pool}/?partial=volumes", {})],
        "manage": [
            ("get", f"{base}/add/", {}),
            ("post", f"{base}/add/", {"type": "dir", "name": "vdtest-perm", "target_path": "/vdtest-perm"}),
            ("post", f"{base}/{pool}/action/", {"action": "autostart-on"}),
            ("get", f"{base}/{pool}/upload/", {}),
            ("post", f"{base}/{pool}/volumes/add/", {"name": "vdtest-new", "capacity": "1G", "format": "qcow2"}),
            ("post", f"{vol}/resize/", {"capacity": "2G"}),
            ("post", f"{vol}/clone/", {"new_name": "vdtest-perm-copy"}),
            ("post", f"{vol}/delete/", {}),
            ("get", f"{vol}/download/", {}),
            ("post", f"{base}/{pool}/delete/", {}),
        ],
    }


@pytest.mark.parametrize("persona", PERSONAS)
def test_every_storage_url_asks_the_policy(request, persona, test_host, pool_name, pool_state):
    client = request.getfixturevalue(persona)
    urls = _urls(test_host.pk, pool_name)
    for method, url, data in urls["view"]:
        status = getattr(client, method)(url, data).status_code
        assert (status == 200) == (persona in MAY_VIEW), (url, status)
    before = pool_state()
    for method, url, data in urls["manage"]:
        status = getattr(client, method)(url, data).status_code
        if persona in MAY_MANAGE:
            assert status in (200, 302), (url, status)
        else:
            assert status == 403, (url, status)
    if persona not in MAY_MANAGE:
        assert pool_state() == before
        assert not Job.objects.exists()
        denied = AuditEntry.objects.filter(result="denied").count()
        assert denied == len(urls["manage"])


def test_post_only_urls_refuse_get(admin_client, test_host, pool_name, pool_state):
    base = f"/hosts/{test_host.pk}/storage/{pool_name}"
    for url in (f"{base}/action/", f"{base}/delete/", f"{base}/volumes/add/",
                f"{base}/volumes/vdtest-vol.qcow2/delete/", f"{base}/volumes/vdtest-vol.qcow2/clone/",
                f"{base}/volumes/vdtest-vol.qcow2/resize/"):
        assert admin_client.get(url).status_code == 405
    assert pool_state() == (True, False, ["vdtest-vol.qcow2"])


def test_the_pool_list_shows_capacity_bars(viewer_client, test_host, pool_name):
    page = viewer_client.get(f"/hosts/{test_host.pk}/storage/").content.decode()
    assert pool_name in page and "default-pool" in page
    assert 'class="bar"' in page and "100.0 GiB" in page
    assert "+ Add pool" not in page  # viewers get no change buttons


def test_an_operator_creates_a_volume_through_a_job(operator_client, test_host, pool_name, pool_state):
    response = operator_client.post(f"/hosts/{test_host.pk}/storage/{pool_name}/volumes/add/",
                                    {"name": "vdtest-data.qcow2", "capacity": "2G", "format": "qcow2"}, follow=True)
    job = Job.objects.get(kind="volume.create")
    assert f"job #{job.pk}" in response.content.decode()
    tasks.create_volume(job.pk)  # what the worker runs
    job.refresh_from_db()
    assert job.status == "succeeded", job.message
    assert "vdtest-data.qcow2" in pool_state()[2]
    page = operator_client.get(f"/hosts/{test_host.pk}/storage/{pool_name}/").content.decode()
    assert "vdtest-data.qcow2" in page and "2.0 GiB" in page


@pytest.mark.parametrize("name", ["../../etc/passwd", "a/b", "nul\x00", "x" * 300])
def test_bad_volume_names_are_refused_with_a_message_and_nothing_changes(admin_client, test_host, pool_name,
                                                                         pool_state, name):
    response = admin_client.post(f"/hosts/{test_host.pk}/storage/{pool_name}/volumes/add/",
                                 {"name": name, "capacity": "1G", "format": "qcow2"}, follow=True)
    page = response.content.decode()
    assert "Volume name" in page or "Null characters are not allowed" in page  # Django's own NUL check
    assert pool_state()[2] == ["vdtest-vol.qcow2"]
    assert not Job.objects.exists()


@pytest.mark.parametrize("size, message", [("10P", "larger than the limit"), ("-1G", "negative"),
                                           ("500G", "available")])
def test_bad_sizes_are_refused_with_a_message_and_nothing_changes(admin_client, test_host, pool_name, pool_state,
                                                                  size, message):
    response = admin_client.post(f"/hosts/{test_host.pk}/storage/{pool_name}/volumes/add/",
                                 {"name": "vdtest-big", "capacity": size, "format": "qcow2"}, follow=True)
    assert message in response.content.decode()
    assert pool_state()[2] == ["vdtest-vol.qcow2"]
    assert not Job.objects.exists()


def test_deleting_an_attached_volume_is_refused_naming_the_guest(admin_client, test_host, pool_name, pool_state,
                                                                guest_using):
    guest = guest_using()
    response = admin_client.post(f"/hosts/{test_host.pk}/storage/{pool_name}/volumes/vdtest-vol.qcow2/delete/",
                                 follow=True)
    page = response.content.decode()
    assert "attached to guest(s)" in page and guest in page
    assert pool_state()[2] == ["vdtest-vol.qcow2"]
    assert AuditEntry.objects.get(action="volume.delete").result == "failed"


def test_clone_and_delete_run_as_jobs_with_progress(admin_client, test_host, pool_name, pool_state):
    base = f"/hosts/{test_host.pk}/storage/{pool_name}/volumes"
    admin_client.post(f"{base}/vdtest-vol.qcow2/clone/", {"new_name": "vdtest-copy.qcow2"})
    clone = Job.objects.get(kind="volume.clone")
    tasks.clone_volume(clone.pk)
    clone.refresh_from_db()
    assert (clone.status, clone.progress) == ("succeeded", 100)
    admin_client.post(f"{base}/vdtest-copy.qcow2/delete/")
    delete = Job.objects.get(kind="volume.delete")
    tasks.delete_volume(delete.pk)
    tasks.delete_volume(delete.pk)  # a redelivered task is harmless
    delete.refresh_from_db()
    assert delete.status == "succeeded"
    assert pool_state()[2] == ["vdtest-vol.qcow2"]


def test_pool_actions_change_libvirt_and_are_audited(admin_client, test_host, pool_name, pool_state):
    url = f"/hosts/{test_host.pk}/storage/{pool_name}/action/"
    admin_client.post(url, {"action": "autostart-on"})
    admin_client.post(url, {"action": "stop"})
    assert pool_state()[:2] == (False, True)
    admin_client.post(url, {"action": "start"})
    admin_client.post(url, {"action": "refresh"})
    response = admin_client.post(url, {"action": "explode"}, follow=True)
    assert "Unknown pool action" in response.content.decode()
    assert pool_state()[:2] == (True, True)
    actions = list(AuditEntry.objects.order_by("id").values_list("action", "result"))
    assert actions == [("pool.autostart-on", "ok"), ("pool.stop", "ok"), ("pool.start", "ok"),
                       ("pool.refresh", "ok"), ("pool.explode", "failed")]


def test_an_admin_creates_and_removes_a_pool_through_the_pages(admin_client, test_host):
    from hosts.virt import storage

    response = admin_client.post(f"/hosts/{test_host.pk}/storage/add/",
                                 {"type": "dir", "name": "vdtest-made", "target_path": "/vdtest-made"}, follow=True)
    assert "Created storage pool vdtest-made" in response.content.decode()
    assert storage.get_pool("test:///default", "vdtest-made").active
    admin_client.post(f"/hosts/{test_host.pk}/storage/vdtest-made/delete/")
    assert "vdtest-made" not in {p.name for p in storage.list_pools("test:///default")}


def test_a_bad_pool_path_is_a_form_error(admin_client, test_host):
    response = admin_client.post(f"/hosts/{test_host.pk}/storage/add/",
                                 {"type": "dir", "name": "vdtest-bad", "target_path": "../../etc"})
    assert response.status_code == 200 and "absolute path" in response.content.decode()


def test_a_missing_pool_is_a_message_not_an_error_page(viewer_client, test_host):
    response = viewer_client.get(f"/hosts/{test_host.pk}/storage/vdtest-nope/", follow=True)
    assert response.status_code == 200
    assert "There is no storage pool" in response.content.decode()


def test_the_host_page_links_storage_and_networks_for_viewers(viewer_client, test_host):
    page = viewer_client.get(f"/hosts/{test_host.pk}/").content.decode()
    assert f"/hosts/{test_host.pk}/storage/" in page and f"/hosts/{test_host.pk}/networks/" in page

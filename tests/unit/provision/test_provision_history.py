"""Config history: versions with who/when, de-duplication, diffs, rollback through validation."""

from __future__ import annotations

from core.choices import JobStatus
from guests import services_provision as svc
from guests.models_history import ConfigVersion
from hosts.virt import provision
from tests.unit.provision.conftest import run_job
from virtdash.xml import Domain


def _define_with_memory(guest, mib: int) -> None:
    dom = Domain.parse(provision.inactive_xml(guest.host.uri, guest.uuid))
    dom.set_memory_mib(mib)
    provision.define_validated(guest.host.uri, dom.to_string())


def test_identical_consecutive_versions_are_kept_once(guest):
    first = svc.record_current(guest.host, guest.uuid, source=ConfigVersion.Source.EVENT)
    again = svc.record_current(guest.host, guest.uuid, source=ConfigVersion.Source.EVENT)
    assert first.pk == again.pk
    assert svc.versions(guest).count() == 1


def test_a_changed_definition_becomes_a_new_version_with_its_author(guest, operator_user):
    svc.record_current(guest.host, guest.uuid, source=ConfigVersion.Source.EVENT)
    _define_with_memory(guest, 256)
    version = svc.record_current(guest.host, guest.uuid, source=ConfigVersion.Source.EDIT, actor=operator_user)
    assert svc.versions(guest).count() == 2
    assert version.actor_name == "oscar-operator" and version.source == "edit"
    assert "262144" in version.xml


def test_our_edit_claims_the_anonymous_version_the_define_event_recorded(guest, operator_user):
    _define_with_memory(guest, 192)
    seen = svc.HISTORY_HOOKS.on_event(guest.host, type("Ev", (), {"kind": "lifecycle", "event": "defined",
                                                                  "uuid": guest.uuid})())
    assert seen is None
    claimed = svc.record_current(guest.host, guest.uuid, source=ConfigVersion.Source.EDIT, actor=operator_user)
    assert svc.versions(guest).count() == 1
    assert claimed.actor == operator_user and claimed.source == "edit"


def test_the_diff_marks_added_and_removed_lines():
    lines = svc.diff_lines("<a>\n  <b>1</b>\n</a>", "<a>\n  <b>2</b>\n</a>")
    kinds = {(line.kind, line.text.strip()) for line in lines}
    assert ("del", "-  <b>1</b>".strip()) in kinds and ("add", "+  <b>2</b>".strip()) in kinds


def test_the_history_page_shows_the_diff_escaped(admin_client, guest):
    svc.record_current(guest.host, guest.uuid, source=ConfigVersion.Source.EVENT)
    dom = Domain.parse(provision.inactive_xml(guest.host.uri, guest.uuid))
    dom.description = "<script>alert(1)</script>"
    provision.define_validated(guest.host.uri, dom.to_string())
    svc.record_current(guest.host, guest.uuid, source=ConfigVersion.Source.EDIT)
    page = admin_client.get(f"/guests/{guest.uuid}/history/").content.decode()
    assert 'class="diff-add"' in page
    assert "<script>alert(1)" not in page
    assert "&amp;lt;script&amp;gt;" in page  # the XML's own &lt; is shown, escaped once more for HTML


def test_rollback_restores_the_old_definition_as_a_job(guest, admin_user):
    old = svc.record_current(guest.host, guest.uuid, source=ConfigVersion.Source.EVENT)
    _define_with_memory(guest, 512)
    svc.record_current(guest.host, guest.uuid, source=ConfigVersion.Source.EDIT)
    job = run_job(svc.queue_rollback(admin_user, guest, old), svc.run_define)
    assert job.status == JobStatus.SUCCEEDED, job.message
    assert Domain.parse(provision.inactive_xml(guest.host.uri, guest.uuid)).memory_mib == 128
    newest = svc.versions(guest).first()
    assert newest.source == "rollback" and newest.sha256 == old.sha256


def test_rollback_that_libvirt_refuses_leaves_the_definition_intact(guest, admin_user):
    bad = ConfigVersion.objects.create(host=guest.host, guest_uuid=guest.uuid, guest_name=guest.name,
                                       xml=provision.inactive_xml(guest.host.uri, guest.uuid).replace(
                                           "<memory", "<bogus/><memory", 1), sha256="x")
    before = provision.inactive_xml(guest.host.uri, guest.uuid)
    job = run_job(svc.queue_rollback(admin_user, guest, bad), svc.run_define)
    assert job.status == JobStatus.FAILED and "bogus" in job.message
    assert provision.inactive_xml(guest.host.uri, guest.uuid) == before


def test_the_first_edit_keeps_the_definition_as_found_so_it_can_be_rolled_back(operator_client, guest):
    assert not svc.versions(guest).exists()
    page = operator_client.post(f"/guests/{guest.uuid}/edit/general/", {
        "vcpus": "1", "max_vcpus": "1", "memory_mib": "64", "max_memory_mib": "64"})
    token = page.content.decode().split('name="token" value="')[1].split('"')[0]
    operator_client.post(f"/guests/{guest.uuid}/edit/apply/", {"token": token, "mode": "config"})
    from core.models import Job

    run_job(Job.objects.get(kind="guest.edit"), svc.run_edit)
    found, edited = reversed(list(svc.versions(guest)))
    assert "131072" in found.xml and found.note == "as found before the first change"
    assert "65536" in edited.xml and edited.actor_name == "oscar-operator"


def test_the_history_page_catches_changes_made_while_nobody_watched(admin_client, guest):
    admin_client.get(f"/guests/{guest.uuid}/history/")
    assert [v.note for v in svc.versions(guest)] == ["as found"]
    _define_with_memory(guest, 96)  # no watcher in unit tests: the event is not seen
    page = admin_client.get(f"/guests/{guest.uuid}/history/").content.decode()
    assert "changed while VirtDash was not watching" in page and 'class="diff-add"' in page
    admin_client.get(f"/guests/{guest.uuid}/history/")
    assert svc.versions(guest).count() == 2


def test_only_the_newest_versions_are_kept(guest, monkeypatch):
    monkeypatch.setattr(svc, "KEEP_VERSIONS", 3)
    for index in range(5):
        svc.record_version(guest.host, guest.uuid, f"<domain><name>{guest.name}</name><!-- {index} --></domain>",
                           source=ConfigVersion.Source.EVENT)
    assert [v.xml.split("<!-- ")[1][0] for v in svc.versions(guest)] == ["4", "3", "2"]

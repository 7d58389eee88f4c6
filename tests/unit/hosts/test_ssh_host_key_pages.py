"""The "Trust this host's key…" pages: who sees the button, who may open them, what other hosts get.

No sshd needed: refusals happen before any scan, and a closed port is scanned for real.
known_hosts is a tmp file (never the account's ~/.ssh).
"""

from __future__ import annotations

import re

import pytest
from django.test import Client

from core.models import AuditEntry
from hosts.models import Host
from tests.stack import free_port

KEY_ERROR = ("SSH host key verification failed: no host key for [127.0.0.1]:2222 is known in the service "
             "account's known_hosts (VIRTDASH_SSH_KNOWN_HOSTS). Add it there after checking its fingerprint.")


@pytest.fixture(autouse=True)
def known_hosts_file(settings, tmp_path):
    settings.VIRTDASH_SSH_KNOWN_HOSTS = str(tmp_path / "known_hosts")
    return tmp_path / "known_hosts"


@pytest.fixture
def ssh_host(db):
    return Host.objects.create(name="kvm-ssh", uri=f"qemu+ssh://root@127.0.0.1:{free_port()}/system",
                               status="unreachable", last_error=KEY_ERROR)


def _urls(host):
    return [f"/hosts/{host.pk}/ssh-host-key/", f"/hosts/ssh-host-key/?uri={host.uri}&name=x"]


def test_only_admins_see_the_trust_button_when_the_host_key_is_the_problem(admin_client, operator_client,
                                                                           viewer_client, ssh_host):
    link = f'href="/hosts/{ssh_host.pk}/ssh-host-key/"'
    for client, shown in ((admin_client, True), (operator_client, False), (viewer_client, False)):
        for url in (f"/hosts/{ssh_host.pk}/", f"/hosts/{ssh_host.pk}/?partial=facts"):
            response = client.get(url)
            assert response.status_code == 200
            page = response.content.decode()
            assert "SSH host key verification failed" in page
            assert (link in page) is shown, (client, url)
    Host.objects.filter(pk=ssh_host.pk).update(last_error="connection closed (end of file)")
    assert "ssh-host-key" not in admin_client.get(f"/hosts/{ssh_host.pk}/").content.decode()


@pytest.mark.parametrize("persona", ["operator_client", "viewer_client", "outsider_client"])
def test_non_admins_get_403_on_the_key_pages_and_are_audited(request, persona, ssh_host, known_hosts_file):
    client = request.getfixturevalue(persona)
    for url in _urls(ssh_host):
        assert client.get(url).status_code == 403
        data = {"fingerprint": "SHA256:" + "A" * 43, "confirm": "127.0.0.1", "uri": ssh_host.uri}
        assert client.post(url.partition("?")[0], data).status_code == 403
        assert client.post(url.partition("?")[0], {"action": "scan", "uri": ssh_host.uri}).status_code == 403
    denied = AuditEntry.objects.filter(action="host.ssh_key.trust", result="denied")
    assert denied.count() == 4
    assert denied.filter(target_id=str(ssh_host.pk)).count() == 2
    assert AuditEntry.objects.filter(action="host.ssh_key.scan", result="denied").count() == 2
    assert not AuditEntry.objects.filter(action="host.ssh_key.scan").exclude(result="denied").exists()
    assert not known_hosts_file.exists()


def test_opening_the_page_never_scans_the_host_only_the_scan_button_post_does(admin_user, ssh_host):
    """A GET (what a link or a cross-site navigation can make an admin's browser do) runs no ssh-keyscan."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    for url, query in ((f"/hosts/{ssh_host.pk}/ssh-host-key/", {}),
                       ("/hosts/ssh-host-key/", {"uri": ssh_host.uri, "name": "x"})):
        response = client.get(url, query, headers={"Sec-Fetch-Site": "cross-site"})
        page = response.content.decode()
        assert response.status_code == 200
        assert 'data-state="not-scanned"' in page and "Scan the host's keys" in page
        assert 'name="action" value="scan"' in page and 'name="csrfmiddlewaretoken"' in page
        assert "No SSH host key could be read" not in page and 'name="fingerprint"' not in page
    # the scan button's POST without the page's CSRF token (another site's form) is refused
    assert client.post(f"/hosts/{ssh_host.pk}/ssh-host-key/", {"action": "scan"}).status_code == 403
    assert client.post("/hosts/ssh-host-key/", {"action": "scan", "uri": ssh_host.uri}).status_code == 403
    assert not AuditEntry.objects.filter(action="host.ssh_key.scan").exists()


def test_the_page_says_a_trusted_key_reaches_this_server_only_and_names_the_zone(admin_client, ssh_host,
                                                                                 known_hosts_file):
    def note():
        page = admin_client.get(f"/hosts/{ssh_host.pk}/ssh-host-key/").content.decode()
        return " ".join(re.search(r'data-field="this-server-only">(.*?)</p>', page, re.S).group(1).split())

    text = note()
    assert f'writes <span class="mono">{known_hosts_file}</span> on this server only.' in text
    assert ("Machines that also reach this host (zone workers and watchers, other web servers) need the same line "
            "— or put VIRTDASH_SSH_KNOWN_HOSTS on shared storage.") in text
    assert "is in zone" not in text
    Host.objects.filter(pk=ssh_host.pk).update(zone="rack7")
    assert "kvm-ssh is in zone <strong>rack7</strong>: its watcher and workers may run on other machines." in note()


def test_a_post_without_the_csrf_token_is_refused(admin_user, ssh_host, known_hosts_file):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    assert client.post(f"/hosts/{ssh_host.pk}/ssh-host-key/", {"fingerprint": "x"}).status_code == 403
    assert not known_hosts_file.exists()


def test_a_host_not_reached_over_ssh_has_no_key_page(admin_client, test_host):
    response = admin_client.get(f"/hosts/{test_host.pk}/ssh-host-key/")
    assert response.status_code == 404
    assert "is not reached over SSH" in response.content.decode()
    assert admin_client.post(f"/hosts/{test_host.pk}/ssh-host-key/", {}).status_code == 404
    for uri in ("qemu:///system", "qemu+tls://kvm1.example.com/system", "qemu+ssh://h/system?command=/bin/sh", ""):
        response = admin_client.get("/hosts/ssh-host-key/", {"uri": uri})
        assert response.status_code == 404, uri
    assert admin_client.get("/hosts/999999/ssh-host-key/").status_code == 404


def test_a_host_whose_sshd_does_not_answer_says_so_and_offers_nothing_to_trust(admin_client, ssh_host,
                                                                              known_hosts_file):
    response = admin_client.post(f"/hosts/{ssh_host.pk}/ssh-host-key/", {"action": "scan"})
    page = response.content.decode()
    assert response.status_code == 200
    assert "No SSH host key could be read from [127.0.0.1]:" in page and "is sshd listening there?" in page
    assert 'name="fingerprint"' not in page and "Scan again" in page
    scanned = AuditEntry.objects.get(action="host.ssh_key.scan")
    assert scanned.result == "failed" and scanned.target_id == str(ssh_host.pk)
    assert "No SSH host key could be read" in scanned.detail
    response = admin_client.post(f"/hosts/{ssh_host.pk}/ssh-host-key/", {"fingerprint": "SHA256:x"}, follow=True)
    assert "No SSH host key could be read" in response.content.decode()
    assert AuditEntry.objects.filter(action="host.ssh_key.trust", result="failed").count() == 1
    assert not known_hosts_file.exists()

"""Trusting a qemu+ssh host's key from the pages, against a real sshd in front of the local libvirtd.

The private sshd (tests/ssh_host.py) is scanned with ssh-keyscan, fingerprints are compared with
`ssh-keygen -lf` of its host key, and what VirtDash writes is read back with `ssh-keygen -F` and
then used by libvirt's ssh transport to connect. known_hosts is a tmp file, never root's ~/.ssh.
"""

from __future__ import annotations

import html
import re
import shutil
import stat
import subprocess
from urllib.parse import urlencode

import pytest

from core.models import AuditEntry
from hosts import services
from hosts.models import Host

ssh_host = pytest.importorskip("tests.ssh_host")
pytestmark = pytest.mark.skipif(not ssh_host.available(), reason="openssh-server is not installed")


@pytest.fixture
def known_hosts(settings, sshd, tmp_path):
    settings.VIRTDASH_SSH_KEY = str(sshd.key)
    settings.VIRTDASH_SSH_KNOWN_HOSTS = str(tmp_path / "known_hosts")
    return tmp_path / "known_hosts"


def _fingerprint(pub) -> str:
    return subprocess.run(["ssh-keygen", "-lf", str(pub)], capture_output=True, text=True, check=True).stdout.split()[1]


def _find(file, name: str) -> str:
    return subprocess.run(["ssh-keygen", "-F", name, "-f", str(file)], capture_output=True, text=True).stdout


def _shown(page: str, field: str) -> list[str]:
    return re.findall(rf'data-field="{field}">([^<]+)<', page)


def test_a_changed_key_is_replaced_only_after_the_admin_types_the_host_name(admin_client, sshd, known_hosts):
    # known_hosts holds another key for the sshd's address (hashed, as HashKnownHosts writes it)
    # and a line for another host that must survive.
    pattern = f"[127.0.0.1]:{sshd.port}"
    shutil.copy(sshd.wrong_known_hosts, known_hosts)
    with known_hosts.open("a") as handle:
        handle.write(f"kvm9.example.com {(sshd.folder / 'client.pub').read_text().split()[0]} "
                     f"{(sshd.folder / 'client.pub').read_text().split()[1]}\n")
    subprocess.run(["ssh-keygen", "-H", "-f", str(known_hosts)], check=True, capture_output=True)
    ok, message, _ = services.test_connection(sshd.uri(), timeout=10)
    assert not ok and "has changed" in message, message
    host = Host.objects.create(name="kvm-ssh", uri=sshd.uri())
    services.record_status(host, ok=False, error=message)
    url = f"/hosts/{host.pk}/ssh-host-key/"
    assert f'href="{url}"' in admin_client.get(f"/hosts/{host.pk}/").content.decode()

    assert 'data-state="not-scanned"' in admin_client.get(url).content.decode()  # a GET scans nothing
    page = admin_client.post(url, {"action": "scan"}).content.decode()
    new, old = _fingerprint(sshd.folder / "host.pub"), _fingerprint(sshd.folder / "other.pub")
    assert 'data-state="changed"' in page and "Warning: the host key of" in page
    assert _shown(page, "fingerprint") == [new] and _shown(page, "old-fingerprint") == [old]
    assert 'name="confirm"' in page
    before = known_hosts.read_bytes()

    # Not confirmed, confirmed with another name, or a key other than the one shown: nothing changes.
    for data, refusal in (({"fingerprint": new}, "type 127.0.0.1 to confirm"),
                          ({"fingerprint": new, "confirm": "127.0.0.2"}, "type 127.0.0.1 to confirm"),
                          ({"fingerprint": old, "confirm": "127.0.0.1"}, "now offers other keys")):
        response = admin_client.post(url, data, follow=True)
        assert refusal in response.content.decode(), data
        assert _shown(response.content.decode(), "fingerprint") == [new]  # the keys scanned while refusing
        assert known_hosts.read_bytes() == before
    assert AuditEntry.objects.filter(action="host.ssh_key.trust", result="failed").count() == 3

    response = admin_client.post(url, {"fingerprint": new, "confirm": " 127.0.0.1 "})
    assert response.status_code == 302 and response["Location"] == f"/hosts/{host.pk}/"
    found = _find(known_hosts, pattern)
    host_blob, other_blob = ((sshd.folder / f).read_text().split()[1] for f in ("host.pub", "other.pub"))
    assert host_blob in found and other_blob not in found
    assert _find(known_hosts, "kvm9.example.com")  # the other host's hashed line is kept
    assert stat.S_IMODE(known_hosts.stat().st_mode) == 0o644  # an existing file keeps its mode
    page = admin_client.get(f"/hosts/{host.pk}/").content.decode()
    assert f"Replaced the key of {pattern}" in page and "kvm-ssh is connected from this server." in page
    assert f"This updated {known_hosts} on this server only; machines that also reach this host" in page
    host.refresh_from_db()
    assert host.status == "connected" and host.last_error == "" and host.facts["hypervisor"] == "QEMU"
    entry = AuditEntry.objects.get(action="host.ssh_key.trust", result="ok")
    assert entry.target_id == str(host.pk) and f"trusted ssh-ed25519 {new}; replaced ssh-ed25519 {old}" in entry.detail
    scans = AuditEntry.objects.filter(action="host.ssh_key.scan", result="ok", target_id=str(host.pk))
    assert scans.count() == 1 and f"offers ssh-ed25519 {new} (changed)" in scans.get().detail
    assert 'data-field="trust-key"' not in page


def test_the_add_form_offers_to_trust_an_unknown_key_and_comes_back_filled_in(admin_client, sshd, known_hosts):
    uri = sshd.uri()
    page = admin_client.post("/hosts/add/", {"name": "kvm-new", "uri": uri, "enabled": "on",
                                             "test": "1"}).content.decode()
    assert "SSH host key verification failed: no host key for" in page
    link = re.search(r'data-field="trust-key">[^<]*<a class="btn btn-small" href="([^"]+)"', page).group(1)
    link = html.unescape(link)
    assert link.startswith("/hosts/ssh-host-key/?uri=") and link.endswith("&name=kvm-new")

    page = admin_client.get(link).content.decode()
    assert 'data-state="not-scanned"' in page and 'name="fingerprint"' not in page
    page = admin_client.post("/hosts/ssh-host-key/", {"action": "scan", "uri": uri, "name": "kvm-new"}).content.decode()
    fingerprint = _fingerprint(sshd.folder / "host.pub")
    assert 'data-state="unknown"' in page and _shown(page, "fingerprint") == [fingerprint]
    assert "ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub" in page and 'name="confirm"' not in page

    response = admin_client.post("/hosts/ssh-host-key/", {"fingerprint": fingerprint, "uri": uri, "name": "kvm-new"})
    assert response.status_code == 302
    assert response["Location"] == f"/hosts/add/?{urlencode({'uri': uri, 'name': 'kvm-new'})}"
    kind, blob = (sshd.folder / "host.pub").read_text().split()[:2]
    assert known_hosts.read_text() == f"[127.0.0.1]:{sshd.port} {kind} {blob}\n"
    page = admin_client.get(response["Location"]).content.decode()
    assert f"Trusted the key of [127.0.0.1]:{sshd.port}" in page and "Connected: QEMU" in page
    assert f'value="{uri}"' in page and 'value="kvm-new"' in page
    assert not Host.objects.exists()  # trusting a key adds no host
    entry = AuditEntry.objects.get(action="host.ssh_key.trust", result="ok")
    assert entry.target_name == uri and fingerprint in entry.detail

    # The line serves libvirt's in-process libssh transports too (they read the same file).
    for transport in ("libssh", "libssh2"):
        ok, message, _ = services.test_connection(uri.replace("qemu+ssh:", f"qemu+{transport}:"), timeout=10)
        assert ok, (transport, message)

    # The page again: the key is trusted now, nothing to accept.
    page = admin_client.post("/hosts/ssh-host-key/", {"action": "scan", "uri": uri, "name": "kvm-new"}).content.decode()
    assert 'data-state="trusted"' in page and 'name="fingerprint"' not in page


def test_trusting_the_key_of_a_disabled_host_does_not_connect_it(admin_client, sshd, known_hosts):
    host = Host.objects.create(name="kvm-off", uri=sshd.uri(), enabled=False, status="disabled")
    url = f"/hosts/{host.pk}/ssh-host-key/"
    page = admin_client.post(url, {"action": "scan"}).content.decode()
    assert 'data-state="unknown"' in page
    response = admin_client.post(url, {"fingerprint": _shown(page, "fingerprint")}, follow=True)
    assert "kvm-off is disabled: enable it to connect." in response.content.decode()
    assert f"[127.0.0.1]:{sshd.port} ssh-ed25519 " in known_hosts.read_text()
    host.refresh_from_db()
    assert host.status == "disabled"


def test_without_the_setting_libssh_transports_read_the_known_hosts_the_page_wrote(admin_client, sshd, settings,
                                                                                   monkeypatch, tmp_path):
    """VIRTDASH_SSH_KNOWN_HOSTS unset: the page writes ~/.ssh/known_hosts of the service account, and
    qemu+libssh/libssh2 (whose own default is ~/.config/libvirt/known_hosts) are handed that file.
    ~ is a tmp folder here (hosts.virt.ssh.home, and $HOME), never root's real ~/.ssh or ~/.config."""
    from hosts.virt import ssh

    home = tmp_path / "home"
    monkeypatch.setattr(ssh, "home", lambda: home)
    monkeypatch.setenv("HOME", str(home))
    settings.VIRTDASH_SSH_KEY, settings.VIRTDASH_SSH_KNOWN_HOSTS = str(sshd.key), ""
    file = home / ".ssh" / "known_hosts"
    uris = [sshd.uri().replace("qemu+ssh:", f"qemu+{transport}:") for transport in ("libssh2", "libssh")]
    for uri in uris:
        ok, message, _ = services.test_connection(uri, timeout=10)
        assert not ok and "SSH host key verification failed" in message, (uri, message)

    page = admin_client.post("/hosts/ssh-host-key/", {"action": "scan", "uri": uris[0], "name": "kvm-lib"})
    page = page.content.decode()
    assert 'data-state="unknown"' in page and f"{file} <span" in page
    response = admin_client.post("/hosts/ssh-host-key/", {"fingerprint": _shown(page, "fingerprint"),
                                                          "uri": uris[0], "name": "kvm-lib"}, follow=True)
    assert "From this server: Connected: QEMU" in response.content.decode()
    assert f"[127.0.0.1]:{sshd.port} ssh-ed25519 " in file.read_text()
    assert stat.S_IMODE((home / ".ssh").stat().st_mode) == 0o700
    for uri in uris:
        ok, message, _ = services.test_connection(uri, timeout=10)
        assert ok, (uri, message)
    assert not (home / ".config" / "libvirt" / "known_hosts").exists()


def test_a_known_hosts_that_cannot_be_written_is_refused_clearly_and_audited(admin_client, sshd, known_hosts,
                                                                             settings, tmp_path):
    """An OSError while writing (here: the file's folder is a regular file; root ignores chmod) is
    no 500: the admin reads why, the scanned keys stay on the page, the audit log has the failure."""
    (tmp_path / "not-a-folder").write_text("")
    settings.VIRTDASH_SSH_KNOWN_HOSTS = str(tmp_path / "not-a-folder" / "known_hosts")
    host = Host.objects.create(name="kvm-ro", uri=sshd.uri())
    url = f"/hosts/{host.pk}/ssh-host-key/"
    page = admin_client.post(url, {"action": "scan"}).content.decode()
    assert 'data-state="unknown"' in page
    response = admin_client.post(url, {"fingerprint": _shown(page, "fingerprint")})
    page = response.content.decode()
    assert response.status_code == 200
    assert (f"Nothing was trusted: VirtDash cannot write {tmp_path}/not-a-folder/known_hosts (Not a directory)."
            in page)
    assert _shown(page, "fingerprint") == [_fingerprint(sshd.folder / "host.pub")]
    entry = AuditEntry.objects.get(action="host.ssh_key.trust")
    assert entry.result == "failed" and entry.target_id == str(host.pk)
    assert entry.detail.endswith("known_hosts: Not a directory")
    assert (tmp_path / "not-a-folder").read_text() == ""

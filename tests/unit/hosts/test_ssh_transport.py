"""libvirt's qemu+ssh transport gets VirtDash's ssh options through a wrapper (hosts/virt/ssh.py)."""

from __future__ import annotations

import os
from urllib.parse import parse_qs, urlsplit

from hosts.virt import ssh


def test_an_ssh_uri_gets_the_wrapper_and_keeps_its_own_parameters(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    settings.VIRTDASH_SSH_KEY = "/srv/virtdash/.ssh/id_ed25519"
    settings.VIRTDASH_SSH_KNOWN_HOSTS = "/srv/virtdash/known 100%"
    uri = ssh.connect_uri("qemu+ssh://root@kvm1.example.com:2222/system?no_tty=1")
    parts = urlsplit(uri)
    assert parts.netloc == "root@kvm1.example.com:2222" and parts.path == "/system"
    query = parse_qs(parts.query)
    wrapper = query["command"][0]
    assert query["no_tty"] == ["1"] and os.access(wrapper, os.X_OK)
    config = (tmp_path / "ssh" / wrapper.split("/")[-2] / "ssh_config").read_text()
    assert 'IdentityFile "/srv/virtdash/.ssh/id_ed25519"' in config and "IdentitiesOnly yes" in config
    assert 'UserKnownHostsFile "/srv/virtdash/known 100%%"' in config  # ssh expands %-tokens
    assert "StrictHostKeyChecking yes" in config and "BatchMode yes" in config
    assert config.index("BatchMode") < config.index("Include ~/.ssh/config")  # ours win


def test_other_transports_are_left_alone(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    for uri in ("qemu:///system", "qemu+tls://kvm1.example.com/system", "test:///default"):
        assert ssh.connect_uri(uri) == uri


def test_a_changed_host_key_reads_as_what_to_do(settings):
    settings.VIRTDASH_SSH_KNOWN_HOSTS = "/srv/virtdash/known_hosts"
    banner = ("Cannot recv data: @@@@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n"
              "Host key for [10.0.0.5]:22 has changed and you have requested strict checking.\n"
              "Host key verification failed.: Connection reset by peer")
    text = ssh.explain(banner)
    assert text.startswith("SSH host key verification failed: the host key of [10.0.0.5]:22 has changed")
    assert "@" not in text
    assert "is known in" in ssh.explain("No ED25519 host key is known for kvm1 and you have requested strict "
                                        "checking.\nHost key verification failed.")
    assert "authorized_keys" in ssh.explain("Cannot recv data: root@kvm1: Permission denied (publickey).")
    assert ssh.explain("Cannot recv data: ssh: connect to host x port 22: Connection refused") == (
        "Cannot recv data: ssh: connect to host x port 22: Connection refused")


def test_a_refused_tunnel_says_whether_sshd_or_the_display_refused():
    assert "administratively prohibited" in ssh.explain(
        "channel 0: open failed: administratively prohibited: open failed\r\nstdio forwarding failed")
    assert ssh.explain("channel 0: open failed: connect failed: Connection refused\r\nstdio forwarding failed") == (
        "the host could not connect to the display (Connection refused): nothing listens there on the host.")


def test_libssh_uris_get_the_key_and_known_hosts_as_parameters(settings):
    settings.VIRTDASH_SSH_KEY = "/srv/virtdash/id_ed25519"
    settings.VIRTDASH_SSH_KNOWN_HOSTS = "/srv/virtdash/known_hosts"
    query = parse_qs(urlsplit(ssh.connect_uri("qemu+libssh2://root@kvm1/system?sshauth=privkey")).query)
    assert query == {"sshauth": ["privkey"], "keyfile": ["/srv/virtdash/id_ed25519"],
                     "known_hosts": ["/srv/virtdash/known_hosts"]}
    settings.VIRTDASH_SSH_KEY = settings.VIRTDASH_SSH_KNOWN_HOSTS = ""  # still the file the trust page writes
    assert parse_qs(urlsplit(ssh.connect_uri("qemu+libssh://root@kvm1/system")).query) == {
        "known_hosts": [str(ssh.known_hosts_path())]}


def test_libssh_host_key_refusals_read_the_same():
    changed = ssh.explain("authentication failed: !!! SSH HOST KEY VERIFICATION FAILED !!!: Identity of host "
                          "'10.0.0.5:22' differs from stored identity. Please verify the new host key 'AAAA'")
    assert changed.startswith("SSH host key verification failed: the host key of 10.0.0.5:22 has changed")
    unknown = ssh.explain("libssh transport error: no suitable callback for host key verification")
    assert unknown.startswith("SSH host key verification failed: no host key for the host is known in")


def test_a_tunnel_refusal_without_a_reason_reads_as_what_to_do_and_never_raises():
    for text in ("channel 0: open failed: connect failed", "channel 0: open failed: connect failed:",
                 "channel 0: open failed: connect failed:\r\nstdio forwarding failed"):
        assert ssh.explain(text) == ("the host could not connect to the display (connect failed): nothing listens "
                                     "there on the host."), text


def test_messages_name_the_service_accounts_files_by_setting_never_by_path(settings):
    """They end up in Host.last_error, which viewers of the host see."""
    settings.VIRTDASH_SSH_KEY = "/srv/virtdash/secret-place/id_ed25519"
    settings.VIRTDASH_SSH_KNOWN_HOSTS = "/srv/virtdash/secret-place/known_hosts"
    texts = [ssh.explain("Host key for kvm1 has changed and you have requested strict checking."),
             ssh.explain("No ED25519 host key is known for kvm1 and you have requested strict checking."),
             ssh.explain("Host key verification failed."),
             ssh.explain("Cannot recv data: root@kvm1: Permission denied (publickey).")]
    assert not any("secret-place" in text for text in texts), texts
    assert all("VIRTDASH_SSH_KNOWN_HOSTS" in text for text in texts[:3]) and "VIRTDASH_SSH_KEY" in texts[3]
    assert "the service account's known_hosts (VIRTDASH_SSH_KNOWN_HOSTS)" in texts[0]


def test_a_failing_explanation_never_hides_libvirts_error(monkeypatch):
    import libvirt

    from hosts.virt import connections, errors

    def broken(_text):
        raise IndexError("list index out of range")

    monkeypatch.setattr(ssh, "explain", broken)  # our own helper, not libvirt
    try:
        connections.connection("test:///default").lookupByName("vdtest-no-such-guest")
    except libvirt.libvirtError as exc:
        error = errors.translate(exc, "guest vdtest-no-such-guest")
    assert isinstance(error, errors.GuestNotFound) and "vdtest-no-such-guest" in str(error)


def test_paths_with_spaces_are_percent_encoded_in_the_uri_libvirt_gets(settings, tmp_path):
    """libvirt decodes %20 but not '+' in URI parameters."""
    settings.VIRTDASH_SSH_KEY = "/srv/virt dash/id ed25519"
    settings.VIRTDASH_SSH_KNOWN_HOSTS = "/srv/virt dash/known_hosts"
    uri = ssh.connect_uri("qemu+libssh2://root@kvm1/system?sshauth=privkey")
    assert "+" not in urlsplit(uri).query and "keyfile=%2Fsrv%2Fvirt%20dash%2Fid%20ed25519" in uri, uri
    assert parse_qs(urlsplit(uri).query)["known_hosts"] == ["/srv/virt dash/known_hosts"]
    settings.VAR_DIR = tmp_path / "var with space"
    uri = ssh.connect_uri("qemu+ssh://root@kvm1/system")
    assert "+" not in urlsplit(uri).query and "%20" in uri, uri
    assert os.access(parse_qs(urlsplit(uri).query)["command"][0], os.X_OK)

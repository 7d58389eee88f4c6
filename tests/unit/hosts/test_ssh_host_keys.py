"""SSH host keys: fingerprints as ssh-keygen prints them, key shapes, and known_hosts editing.

Real files under tmp_path, real ssh-keygen to generate keys, hash known_hosts and look names up
(`ssh-keygen -F`), so what VirtDash writes is checked by OpenSSH itself. Never the account's ~/.ssh.
"""

from __future__ import annotations

import base64
import shutil
import stat
import subprocess
import threading
from pathlib import Path

import pytest

from hosts import known_hosts
from hosts.services_ssh_keys import CHANGED, REVOKED, TRUSTED, UNKNOWN, state_of
from hosts.ssh_keys import HostKey, NotSshHost, Target, is_host_key_error, parse_key, parse_scan, target

pytestmark = pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="ssh-keygen is not installed")


def _keygen(folder: Path, name: str, kind: str, bits: str = "") -> HostKey:
    argv = ["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", "vdtest", "-f", str(folder / name)]
    if bits:
        argv[1:1] = ["-b", bits]
    subprocess.run(argv, check=True)
    kind_name, blob = (folder / f"{name}.pub").read_text().split()[:2]
    return parse_key(kind_name, blob)


def _keygen_fingerprint(file: Path) -> str:
    done = subprocess.run(["ssh-keygen", "-lf", str(file)], capture_output=True, text=True, check=True)
    return done.stdout.split()[1]


def _find(file: Path, name: str) -> str:
    """What OpenSSH itself finds for `name` in `file` (hashed entries included)."""
    return subprocess.run(["ssh-keygen", "-F", name, "-f", str(file)], capture_output=True, text=True).stdout


@pytest.fixture(autouse=True)
def _known_hosts_in_tmp(settings, tmp_path):
    settings.VIRTDASH_SSH_KNOWN_HOSTS = str(tmp_path / "known_hosts")


@pytest.mark.parametrize(("kind", "bits"), [("ed25519", ""), ("ecdsa", "256"), ("ecdsa", "521"), ("rsa", "2048")])
def test_the_fingerprint_is_the_one_ssh_keygen_prints(tmp_path, kind, bits):
    key = _keygen(tmp_path, "key", kind, bits)
    assert key.fingerprint == _keygen_fingerprint(tmp_path / "key.pub")
    assert key.fingerprint.startswith("SHA256:") and not key.fingerprint.endswith("=")


def test_a_key_must_be_a_known_type_in_base64_whose_blob_names_the_same_type(tmp_path):
    key = _keygen(tmp_path, "key", "ed25519")
    assert parse_key("ssh-ed25519", key.blob) == key
    for kind, blob in [("ssh-dss", key.blob), ("ssh-rsa", key.blob), ("ssh-ed25519", key.blob + "\n[evil]:22 x"),
                       ("ssh-ed25519", key.blob[:-4] + "$$$$"), ("ssh-ed25519", ""),
                       ("ssh-ed25519", base64.b64encode(b"\0\0\0\x0bssh-ed2551").decode()),
                       ("ssh-ed25519\nx", key.blob)]:
        with pytest.raises(ValueError):
            parse_key(kind, blob)


def test_keyscan_output_keeps_only_well_formed_keys_once(tmp_path):
    key = _keygen(tmp_path, "key", "ed25519")
    output = "\n".join(["# 127.0.0.1:2222 SSH-2.0-OpenSSH_9.2", f"[127.0.0.1]:2222 ssh-ed25519 {key.blob}",
                        f"[127.0.0.1]:2222 ssh-ed25519 {key.blob}", "[127.0.0.1]:2222 ssh-ed25519 not*base64",
                        f"[127.0.0.1]:2222 ssh-ed25519 {key.blob} extra", ""])
    assert parse_scan(output) == [key]


def test_the_ssh_address_comes_from_the_validated_uri():
    assert target("qemu+ssh://root@kvm1.example.com/system") == Target("kvm1.example.com", 22)
    assert target("qemu+ssh://root@kvm1.example.com/system").pattern == "kvm1.example.com"
    assert target("qemu+libssh2://root@10.0.0.5:2222/system").pattern == "[10.0.0.5]:2222"
    assert target("qemu+ssh://root@[fd00::5]:2222/system").pattern == "[fd00::5]:2222"
    for uri in ("qemu:///system", "qemu+tls://kvm1/system", "test:///default",
                "qemu+ssh://root@host/system?command=/bin/sh", "qemu+ssh://-oProxyCommand=x/system"):
        with pytest.raises(NotSshHost):
            target(uri)
    assert is_host_key_error("SSH host key verification failed: no host key for 127.0.0.1 is known in …")
    assert not is_host_key_error("Connection refused")


def test_trusting_writes_the_bracketed_port_form_with_private_permissions(tmp_path):
    key = _keygen(tmp_path, "key", "ed25519")
    file = Path(known_hosts.path())
    removed = known_hosts.trust(Target("127.0.0.1", 2222), [key], replace=False)
    assert removed == []
    assert file.read_text() == f"[127.0.0.1]:2222 ssh-ed25519 {key.blob}\n"
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert key.blob in _find(file, "[127.0.0.1]:2222")
    assert _find(file, "127.0.0.1") == ""  # port 22 is another address for ssh

    known_hosts.trust(Target("kvm1.example.com", 22), [key], replace=False)
    assert f"\nkvm1.example.com ssh-ed25519 {key.blob}\n" in file.read_text()
    assert key.blob in _find(file, "kvm1.example.com")
    known_hosts.trust(Target("kvm1.example.com", 22), [key], replace=False)  # again: no duplicate line
    assert file.read_text().count("kvm1.example.com") == 1


def test_a_missing_folder_is_created_private(settings, tmp_path):
    key = _keygen(tmp_path, "key", "ed25519")
    settings.VIRTDASH_SSH_KNOWN_HOSTS = str(tmp_path / "home" / ".ssh" / "known_hosts")
    known_hosts.trust(Target("10.0.0.5", 22), [key], replace=False)
    assert stat.S_IMODE((tmp_path / "home" / ".ssh").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "home" / ".ssh" / "known_hosts").stat().st_mode) == 0o600


def test_without_the_setting_the_file_is_in_the_service_accounts_home(settings):
    import os
    import pwd

    settings.VIRTDASH_SSH_KNOWN_HOSTS = None
    assert known_hosts.path() == Path(pwd.getpwuid(os.getuid()).pw_dir) / ".ssh" / "known_hosts"


@pytest.mark.parametrize("setting", ["", None, "/srv/virtdash/known_hosts"])
def test_libssh_transports_always_get_the_file_the_trust_page_writes(settings, setting):
    """Without known_hosts= libvirt's libssh/libssh2 read ~/.config/libvirt/known_hosts instead."""
    from urllib.parse import parse_qs, urlsplit

    from hosts.virt import ssh

    settings.VIRTDASH_SSH_KNOWN_HOSTS, settings.VIRTDASH_SSH_KEY = setting, ""
    for transport in ("libssh", "libssh2"):
        uri = ssh.connect_uri(f"qemu+{transport}://root@kvm1/system?known_hosts=/elsewhere")
        assert parse_qs(urlsplit(uri).query) == {"known_hosts": [str(known_hosts.path())]}
    assert ssh.known_hosts_path() == known_hosts.path()


def test_a_known_hosts_that_cannot_be_written_raises_oserror_and_is_left_as_it_was(settings, tmp_path):
    key = _keygen(tmp_path, "key", "ed25519")
    (tmp_path / "a-file").write_text("not a folder\n")
    settings.VIRTDASH_SSH_KNOWN_HOSTS = str(tmp_path / "a-file" / "known_hosts")  # root ignores chmod, not this
    assert known_hosts.read_lines() == [] and known_hosts.keys_for(Target("10.0.0.5", 22)) == []
    with pytest.raises(OSError) as raised:
        known_hosts.trust(Target("10.0.0.5", 22), [key], replace=False)
    assert raised.value.strerror == "Not a directory"
    assert (tmp_path / "a-file").read_text() == "not a folder\n"


def test_another_key_for_the_host_is_a_conflict_unless_replacing(tmp_path):
    old, new = _keygen(tmp_path, "old", "ed25519"), _keygen(tmp_path, "new", "ed25519")
    file = Path(known_hosts.path())
    where = Target("127.0.0.1", 2222)
    file.write_text(f"# kept comment\nother.example.com ssh-ed25519 {old.blob}\n"
                    f"alias.example.com,[127.0.0.1]:2222 ssh-ed25519 {old.blob}\n")
    assert known_hosts.keys_for(where) == [old]
    assert state_of([new], [old], []) == CHANGED
    with pytest.raises(known_hosts.Conflict):
        known_hosts.trust(where, [new], replace=False)
    assert new.blob not in file.read_text()

    assert known_hosts.trust(where, [new], replace=True) == [old]
    assert file.read_text() == (f"# kept comment\nother.example.com ssh-ed25519 {old.blob}\n"
                                f"alias.example.com ssh-ed25519 {old.blob}\n[127.0.0.1]:2222 ssh-ed25519 {new.blob}\n")
    assert new.blob in _find(file, "[127.0.0.1]:2222") and old.blob not in _find(file, "[127.0.0.1]:2222")
    assert old.blob in _find(file, "alias.example.com")


def test_hashed_entries_are_matched_and_replaced(tmp_path):
    old, other, new = (_keygen(tmp_path, name, "ed25519") for name in ("old", "other", "new"))
    file = Path(known_hosts.path())
    file.write_text(f"[127.0.0.1]:2222 ssh-ed25519 {old.blob}\n[127.0.0.1]:2223 ssh-ed25519 {other.blob}\n"
                    f"kvm1.example.com ssh-ed25519 {other.blob}\n")
    subprocess.run(["ssh-keygen", "-H", "-f", str(file)], check=True, capture_output=True)
    assert all(line.startswith("|1|") for line in file.read_text().splitlines())

    where = Target("127.0.0.1", 2222)
    assert known_hosts.keys_for(where) == [old]
    assert known_hosts.keys_for(Target("127.0.0.1", 2223)) == [other]
    assert known_hosts.keys_for(Target("KVM1.example.com", 22)) == [other]
    assert known_hosts.keys_for(Target("127.0.0.1", 22)) == []
    assert known_hosts.trust(where, [new], replace=True) == [old]
    found = _find(file, "[127.0.0.1]:2222")
    assert new.blob in found and old.blob not in found
    assert other.blob in _find(file, "[127.0.0.1]:2223") and other.blob in _find(file, "kvm1.example.com")
    assert len(file.read_text().splitlines()) == 3


def test_wildcards_and_negations_match_as_ssh_reads_them(tmp_path):
    key = _keygen(tmp_path, "key", "ed25519")
    file = Path(known_hosts.path())
    file.write_text(f"*.example.com,!bad.example.com ssh-ed25519 {key.blob}\n"
                    f"@cert-authority * ssh-ed25519 {key.blob}\n")
    assert known_hosts.keys_for(Target("kvm1.example.com", 22)) == [key]
    assert known_hosts.keys_for(Target("bad.example.com", 22)) == []
    assert known_hosts.keys_for(Target("kvm1.example.org", 22)) == []
    # replacing never removes a wildcard line: it covers other hosts too
    known_hosts.trust(Target("kvm1.example.com", 22), [key], replace=True)
    assert file.read_text().startswith("*.example.com,!bad.example.com ")


def test_the_state_tells_unknown_trusted_changed_and_revoked(tmp_path):
    ed, rsa, other = (_keygen(tmp_path, n, "ed25519") for n in ("a", "b", "c"))
    rsa = HostKey("ssh-rsa", _keygen(tmp_path, "r", "rsa", "2048").blob)
    assert state_of([ed, rsa], [], []) == UNKNOWN
    assert state_of([ed, rsa], [ed], []) == TRUSTED
    assert state_of([ed, rsa], [other], []) == CHANGED
    assert state_of([ed, rsa], [ed, other], []) == CHANGED
    assert state_of([ed], [ed], [ed]) == REVOKED


def test_concurrent_writers_lose_no_line(tmp_path):
    keys = [_keygen(tmp_path, f"k{i}", "ed25519") for i in range(8)]
    errors = []

    def add(i):
        try:
            known_hosts.trust(Target(f"host{i}.example.com", 22), [keys[i]], replace=False)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    text = Path(known_hosts.path()).read_text()
    assert all(f"host{i}.example.com ssh-ed25519 {keys[i].blob}" in text for i in range(8))
    assert not list(tmp_path.glob(".known_hosts-*"))  # no temporary file left behind

"""The proxy's target is resolved on the server from the host URI and the guest's live graphics."""

from __future__ import annotations

import pytest

from consoles.targets import Target, Unreachable, resolve
from consoles.tunnel import ssh_argv
from hosts.virt.consoles import GraphicsInfo


def _vnc(listen="127.0.0.1", port=5900, listen_type="address"):
    return GraphicsInfo(type="vnc", port=port, tls_port=None, listen=listen, listen_type=listen_type)


def test_a_local_guest_is_reached_on_its_listen_address():
    assert resolve("qemu:///system", _vnc("127.0.0.1", 5905)) == Target("127.0.0.1", 5905)
    assert resolve("qemu:///system", _vnc("0.0.0.0", 5905)) == Target("127.0.0.1", 5905)


def test_an_ssh_host_guest_on_loopback_is_reached_through_a_tunnel():
    target = resolve("qemu+ssh://virt@kvm1.example.com:2222/system", _vnc("127.0.0.1", 5901))
    assert target == Target("127.0.0.1", 5901, ssh_host="kvm1.example.com", ssh_user="virt", ssh_port=2222)


def test_the_ssh_tunnel_is_an_argv_list_with_strict_host_keys_and_no_shell():
    argv = ssh_argv(Target("127.0.0.1", 5901, ssh_host="kvm1.example.com", ssh_user="virt", ssh_port=22))
    assert argv[0] == "ssh" and "StrictHostKeyChecking=yes" in argv and "BatchMode=yes" in argv
    assert argv[-2:] == ["--", "kvm1.example.com"] and "127.0.0.1:5901" in argv


def test_a_tls_host_guest_is_reached_directly_but_not_on_the_hosts_loopback():
    assert resolve("qemu+tls://kvm2.example.com/system", _vnc("0.0.0.0", 5900)) == Target("kvm2.example.com", 5900)
    assert resolve("qemu+tcp://kvm2/system", _vnc("10.1.2.3", 5900)) == Target("10.1.2.3", 5900)
    with pytest.raises(Unreachable, match="loopback"):
        resolve("qemu+tls://kvm2.example.com/system", _vnc("127.0.0.1", 5900))


@pytest.mark.parametrize("graphics", [_vnc(port=-1), _vnc(listen_type="socket"), _vnc(listen="-oProxyCommand=x")])
def test_displays_without_a_usable_network_address_are_unreachable(graphics):
    with pytest.raises(Unreachable):
        resolve("qemu:///system", graphics)


def test_a_display_on_another_loopback_address_is_reached_at_that_address():
    assert resolve("qemu:///system", _vnc("127.0.0.2", 5905)) == Target("127.0.0.2", 5905)
    target = resolve("qemu+ssh://virt@kvm1.example.com/system", _vnc("::1", 5901))
    assert target == Target("::1", 5901, ssh_host="kvm1.example.com", ssh_user="virt", ssh_port=22)


def test_the_tunnel_reads_key_and_known_hosts_from_the_shared_ssh_config_even_with_spaces_and_percent(
        settings, tmp_path, monkeypatch):
    """On the command line ssh would split '-i <path>' at spaces and expand %-tokens; in the config
    libvirt's ssh transport uses (hosts/virt/ssh.py) they are quoted and escaped."""
    import subprocess

    from consoles import conf

    settings.VAR_DIR = tmp_path
    monkeypatch.setattr(conf, "SSH_KEY", "/srv/virt dash/id_ed25519")
    monkeypatch.setattr(conf, "SSH_KNOWN_HOSTS", "/srv/virt dash/known 100%")
    argv = ssh_argv(Target("127.0.0.1", 5901, ssh_host="kvm1.example.com", ssh_user="virt", ssh_port=2222))
    assert not any("virt dash" in arg for arg in argv), argv
    config = argv[argv.index("-F") + 1]
    assert "StrictHostKeyChecking=yes" in argv and argv[-2:] == ["--", "kvm1.example.com"]
    # What ssh itself makes of it (-G prints the resulting options and connects nowhere).
    printed = subprocess.run(["ssh", "-G", "-F", config, "-p", "2222", "-l", "virt", "kvm1.example.com"],
                             capture_output=True, text=True, timeout=10, check=True).stdout.splitlines()
    assert "identityfile /srv/virt dash/id_ed25519" in printed or 'identityfile "/srv/virt dash/id_ed25519"' in printed
    assert any(line.startswith("userknownhostsfile") and "/srv/virt dash/known 100%" in line for line in printed)
    assert "stricthostkeychecking true" in printed and "batchmode yes" in printed
    assert config.startswith(str(tmp_path))

import pytest

from hosts.uri import InvalidHostURI, validate_uri

REFUSED = {
    "qemu+ext:///system?command=/bin/sh": "ext",
    "qemu+ssh://h/system?netcat=/tmp/x": "netcat",
    "qemu+unix:///system?socket=/etc/shadow": "socket",
    "http://x": "Unsupported scheme",
    "qemu:///system\n": "control characters",
    "qemu:///sys\ntem": "control characters",
    "qemu:///" + "a" * 5000: "5008 characters",
    "qemu+ssh://h/system?proxy=x": "proxy",
    "qemu+tls://h/system?no_verify=1": "no_verify",
    "qemu+tls://h/system?pkipath=/etc": "pkipath",
    "qemu+ssh:///system": "needs a host name",
    "qemu+ssh://bad_host!/system": "not a valid host",
    "qemu+ssh://user:pw@h/system": "password",
    "qemu:///etc/passwd": "/system",
    "test:///../../etc/passwd.xml": "test URI",
    "": "Enter a libvirt URI",
}


@pytest.mark.parametrize(("uri", "reason"), REFUSED.items(), ids=[u[:40] for u in REFUSED])
def test_it_refuses_dangerous_or_malformed_uris(uri, reason):
    with pytest.raises(InvalidHostURI, match=reason):
        validate_uri(uri)


@pytest.mark.parametrize(
    ("uri", "normalised"),
    [
        ("qemu:///system", "qemu:///system"),
        ("  qemu:///system ", "qemu:///system"),
        ("QEMU+SSH://root@kvm1.example.com/system", "qemu+ssh://root@kvm1.example.com/system"),
        ("qemu+ssh://root@kvm1.example.com:2222/system?no_tty=1", "qemu+ssh://root@kvm1.example.com:2222/system?no_tty=1"),
        ("qemu+tcp://127.0.0.1:1/system", "qemu+tcp://127.0.0.1:1/system"),
        ("qemu+tls://[2001:db8::1]/system", "qemu+tls://[2001:db8::1]/system"),
        ("test:///default", "test:///default"),
        ("test+unix:///default", "test+unix:///default"),
        ("qemu+unix:///session", "qemu+unix:///session"),
    ],
)
def test_it_accepts_and_normalises_good_uris(uri, normalised):
    assert validate_uri(uri) == normalised

"""Where pools may go (VIRTDASH_POOL_PATHS): an operator's dir/netfs pool only under the allowed
prefixes, no fs/logical pool; an administrator anywhere. A refusal is a form error naming the
prefixes, is audited, and leaves nothing defined in libvirt (test:/// driver)."""

from __future__ import annotations

import html

import libvirt
import pytest
from django.test import override_settings

from core.models import AuditEntry
from hosts import services_storage as services
from hosts.virt import storage
from tests.unit.storage.conftest import URI
from virtdash.env import SettingError, env_path_prefixes

ALLOWED = ("/var/lib/libvirt/images", "/srv/virtdash")


def _pool_names() -> set[str]:
    return {p.name for p in storage.list_pools(URI)}


def _remove(name: str) -> None:
    from hosts.virt import connections

    try:
        pool = connections.connection(URI).storagePoolLookupByName(name)
    except libvirt.libvirtError:
        return
    if pool.isActive():
        pool.destroy()
    pool.undefine()


@pytest.fixture
def cleanup_pools():
    names: list[str] = []
    yield names
    for name in names:
        _remove(name)


def _add(client, host, **data):
    return client.post(f"/hosts/{host.pk}/storage/add/", data)


@override_settings(VIRTDASH_POOL_PATHS=ALLOWED)
@pytest.mark.parametrize("target", ["/etc", "/root", "/", "/var/lib/libvirt/images-evil", "/srv",
                                    "/var/lib/libvirt//images/../../../etc", "/var/lib/./libvirt"])
def test_an_operator_cannot_put_a_pool_outside_the_allowed_paths(operator_client, test_host, target, cleanup_pools):
    name = "vdtest-outside"
    cleanup_pools.append(name)
    response = _add(operator_client, test_host, type="dir", name=name, target_path=target)
    page = html.unescape(response.content.decode())
    assert response.status_code == 200
    assert ("/var/lib/libvirt/images, /srv/virtdash" in page) or "must not contain '..'" in page, page
    assert name not in _pool_names()


@override_settings(VIRTDASH_POOL_PATHS=ALLOWED)
def test_a_refused_pool_path_is_audited_and_names_the_allowed_prefixes(operator_client, test_host):
    response = _add(operator_client, test_host, type="dir", name="vdtest-etc", target_path="/etc")
    page = html.unescape(response.content.decode())
    assert "Target path /etc is not allowed" in page and "/var/lib/libvirt/images, /srv/virtdash" in page
    entry = AuditEntry.objects.get(action="pool.create")
    assert (entry.actor_name, entry.result, entry.target_name) == ("oscar-operator", "failed",
                                                                   f"{test_host.name}:vdtest-etc")
    assert "/etc is not allowed" in entry.detail
    assert "vdtest-etc" not in _pool_names()


@override_settings(VIRTDASH_POOL_PATHS=ALLOWED)
@pytest.mark.parametrize("target", ["/srv/virtdash", "/srv/virtdash/vdtest-in", "/var/lib/libvirt/images/fast/"])
def test_an_operator_creates_a_pool_under_an_allowed_prefix(operator_client, test_host, target, cleanup_pools):
    cleanup_pools.append("vdtest-inside")
    response = _add(operator_client, test_host, type="dir", name="vdtest-inside", target_path=target)
    assert response.status_code == 302, html.unescape(response.content.decode())
    assert storage.get_pool(URI, "vdtest-inside").target_path == target.rstrip("/")


@override_settings(VIRTDASH_POOL_PATHS=ALLOWED)
@pytest.mark.parametrize(("type", "extra"), [("fs", {"source_device": "/dev/sda1"}),
                                             ("logical", {"source_name": "vg0"})])
def test_an_operator_may_not_create_fs_or_logical_pools(operator_client, test_host, type, extra, cleanup_pools):
    cleanup_pools.append("vdtest-dev")
    response = _add(operator_client, test_host, type=type, name="vdtest-dev",
                    target_path="/srv/virtdash/vdtest-dev" if type == "fs" else "", **extra)
    page = html.unescape(response.content.decode())
    assert response.status_code == 200 and f"Only an administrator may create a {type} pool" in page
    assert "vdtest-dev" not in _pool_names()


@override_settings(VIRTDASH_POOL_PATHS=ALLOWED)
def test_an_admin_may_put_a_pool_anywhere_and_the_form_says_so(admin_client, operator_client, test_host,
                                                                cleanup_pools):
    assert "As an administrator you may use any path" in _page(admin_client, test_host)
    assert "Allowed: under /var/lib/libvirt/images, /srv/virtdash" in _page(operator_client, test_host)
    cleanup_pools.append("vdtest-anywhere")
    response = _add(admin_client, test_host, type="dir", name="vdtest-anywhere", target_path="/vdtest-anywhere")
    assert response.status_code == 302
    assert storage.get_pool(URI, "vdtest-anywhere").target_path == "/vdtest-anywhere"


def _page(client, host) -> str:
    return html.unescape(client.get(f"/hosts/{host.pk}/storage/add/").content.decode())


@override_settings(VIRTDASH_POOL_PATHS=ALLOWED)
def test_the_service_refuses_too_when_the_form_is_bypassed(operator_user, test_host):
    with pytest.raises(storage.PoolLocationRefused, match="not allowed"):
        services.create_pool(operator_user, test_host, type="dir", name="vdtest-root", target_path="/root")
    assert "vdtest-root" not in _pool_names()
    assert AuditEntry.objects.get(action="pool.create").result == "failed"


@pytest.mark.parametrize(("path", "inside"), [
    ("/srv/virtdash", True), ("/srv/virtdash/a/b", True), ("/srv/virtdash-x", False), ("/srv", False),
    ("/srv//virtdash/./a", True), ("/etc", False), ("//srv/virtdash/a", True), ("//etc", False),
])
def test_path_within_compares_whole_components(path, inside):
    assert storage.path_within(path, ALLOWED) is inside
    assert storage.path_within(path, ("/",)) is True


def test_path_within_refuses_dot_dot():
    with pytest.raises(ValueError, match=r"\.\."):
        storage.path_within("/srv/virtdash/../../etc", ALLOWED)


def test_pool_path_setting_takes_spaces_or_colons_and_refuses_relative_entries(monkeypatch):
    monkeypatch.setenv("VIRTDASH_POOL_PATHS", "/a/b/:/c  /d//e /a/b")
    assert env_path_prefixes("VIRTDASH_POOL_PATHS", "/x") == ("/a/b", "/c", "/d/e")
    monkeypatch.setenv("VIRTDASH_POOL_PATHS", "")
    assert env_path_prefixes("VIRTDASH_POOL_PATHS", "/x /y") == ("/x", "/y")
    for bad in ("relative/dir", "/a/../etc"):
        monkeypatch.setenv("VIRTDASH_POOL_PATHS", bad)
        with pytest.raises(SettingError):
            env_path_prefixes("VIRTDASH_POOL_PATHS", "/x")


def test_the_default_setting_and_the_test_prefix():
    from django.conf import settings

    assert settings.VIRTDASH_POOL_PATHS[:3] == ("/var/lib/libvirt/images", "/var/lib/virtdash/pools", "/srv/virtdash")

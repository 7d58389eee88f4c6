"""Uploads that would expose host files, and pools outside VIRTDASH_POOL_PATHS, on qemu:///system.

A qcow2 whose header names a backing file (here /etc/hostname; /etc/shadow in an attack) or an
external data file would hand that host file to any guest the volume is attached to. libvirt
probes the content whatever format the upload declared, so both a "qcow2" and a "raw" upload of
such an image are refused and deleted; a plain qcow2 is kept."""

from __future__ import annotations

import html
import http.client
import json
import os
import subprocess
from pathlib import Path
from urllib.parse import urlencode

import pytest

from core.models import AuditEntry
from hosts import services_storage as services
from hosts.models import Host
from hosts.virt import storage
from hosts.virt.errors import VirtError
from tests.conftest import TEST_PREFIX
from tests.stack import session_cookie

URI = "qemu:///system"


@pytest.fixture
def host(db):
    return Host.objects.create(name="local", uri=URI)


@pytest.fixture
def pool(scratch_pool):
    name, folder = scratch_pool
    storage.define_pool(URI, "dir", name, target_path=f"{folder}/pool")
    return name


def _image(folder: Path, name: str, *options: str) -> bytes:
    path = folder / name
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", *options, str(path), "1M"], check=True)
    return path.read_bytes()


def _upload(actor, host: Host, pool: str, name: str, data: bytes, fmt: str) -> storage.VolumeInfo:
    """What the upload endpoint (hosts.upload_stream) does: open in libvirt, write everything,
    finish, then record the outcome through the service."""
    upload = storage.open_upload(host.uri, pool, name, len(data), format=fmt)
    try:
        upload.write(data)
        volume = upload.finish()
    except (VirtError, ValueError) as exc:  # finish deletes the volume itself
        services.upload_failed(actor, host, upload, str(exc))
        raise
    services.upload_finished(actor, host, upload, fmt)
    return volume


def _volumes(conn, pool: str) -> list[str]:
    p = conn.storagePoolLookupByName(pool)
    p.refresh(0)
    return sorted(v.name() for v in p.listAllVolumes())


@pytest.mark.parametrize("declared", ["qcow2", "raw"])
def test_an_uploaded_qcow2_with_a_backing_file_is_refused_and_deleted(host, pool, admin_user, libvirt_conn,
                                                                       tmp_path, declared):
    data = _image(tmp_path, "backed.qcow2", "-b", "/etc/hostname", "-F", "raw")
    name = f"{TEST_PREFIX}backed.qcow2"
    with pytest.raises(storage.UnsafeImage) as refused:
        _upload(admin_user, host, pool, name, data, declared)
    message = str(refused.value)
    assert "uploaded images with a backing file are refused: it could expose files of the host" in message
    assert "/etc/hostname" in message and "deleted" in message
    assert _volumes(libvirt_conn, pool) == []
    entry = AuditEntry.objects.get(action="volume.upload")
    assert entry.result == "failed" and "backing file" in entry.detail


def test_the_upload_endpoint_answers_the_refusal_and_keeps_nothing(partial_stack, host, pool, operator_user,
                                                                    libvirt_conn, tmp_path):
    web = partial_stack()
    web.start_web()
    data = _image(tmp_path, "backed.qcow2", "-b", "/etc/hostname", "-F", "raw")
    csrf = "vdtestcsrfsecret0123456789abcdef"
    query = urlencode({"name": f"{TEST_PREFIX}sneaky.img", "format": "raw"})
    conn = http.client.HTTPConnection("127.0.0.1", web.port, timeout=20)
    conn.request("POST", f"/hosts/{host.pk}/storage/{pool}/upload/?{query}", body=data, headers={
        "Cookie": f"csrftoken={csrf}; sessionid={session_cookie(operator_user)}", "X-CSRFToken": csrf,
        "Origin": web.url, "Content-Type": "application/octet-stream", "Content-Length": str(len(data))})
    response = conn.getresponse()
    body = json.loads(response.read() or b"{}")
    conn.close()
    assert response.status == 400, body
    assert "uploaded images with a backing file are refused: it could expose files of the host" in body["error"]
    assert _volumes(libvirt_conn, pool) == []
    entry = AuditEntry.objects.get(action="volume.upload")
    assert (entry.actor_name, entry.result) == ("oscar-operator", "failed")


def test_an_uploaded_qcow2_with_an_external_data_file_is_refused(host, pool, admin_user, libvirt_conn, tmp_path):
    target = tmp_path / "data.raw"
    target.write_bytes(b"\0" * 1024 * 1024)
    data = _image(tmp_path, "external.qcow2", "-o", f"data_file={target},data_file_raw=on")
    with pytest.raises(storage.UnsafeImage, match="external data file"):
        _upload(admin_user, host, pool, f"{TEST_PREFIX}external.qcow2", data, "qcow2")
    assert _volumes(libvirt_conn, pool) == []


def test_a_plain_qcow2_upload_is_kept(host, pool, admin_user, libvirt_conn, tmp_path):
    data = _image(tmp_path, "plain.qcow2")
    volume = _upload(admin_user, host, pool, f"{TEST_PREFIX}plain.qcow2", data, "qcow2")
    assert (volume.format, volume.backing_path) == ("qcow2", "")
    assert _volumes(libvirt_conn, pool) == [f"{TEST_PREFIX}plain.qcow2"]
    assert AuditEntry.objects.get(action="volume.upload").result == "ok"


def test_an_operator_pool_outside_the_allowed_paths_is_refused_on_a_real_host(
        client, host, operator_user, scratch_pool, libvirt_conn, settings):
    name, folder = scratch_pool
    settings.VIRTDASH_POOL_PATHS = ("/var/lib/libvirt/images", os.path.dirname(folder))
    client.force_login(operator_user)
    page = client.post(f"/hosts/{host.pk}/storage/add/", {"type": "dir", "name": name, "target_path": "/etc"})
    text = html.unescape(page.content.decode())
    assert page.status_code == 200 and "Target path /etc is not allowed" in text
    assert name not in {p.name() for p in libvirt_conn.listAllStoragePools()}
    page = client.post(f"/hosts/{host.pk}/storage/add/", {"type": "dir", "name": name, "target_path": f"{folder}/p"})
    assert page.status_code == 302
    assert libvirt_conn.storagePoolLookupByName(name).isActive()

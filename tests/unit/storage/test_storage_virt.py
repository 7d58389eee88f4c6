"""hosts.virt.storage on libvirt's test driver: real pools and volumes, refusals change nothing."""

from __future__ import annotations

import pytest

from hosts.virt import storage
from hosts.virt.errors import Conflict, OperationRefused

URI = "test:///default"
DEAD_URI = "qemu+tcp://127.0.0.1:1/system"  # any libvirt call here fails: proves validation comes first

BAD_NAMES = ["../../etc/passwd", "a/b", "/", "nul\x00byte", "x" * 300, "..", ".hidden", "-rf", "", "new\nline"]
BAD_SIZES = ["10P", "10PiB", "-1G", "-5", "0", "lots", "1e9"]


def test_it_lists_the_test_drivers_pool_with_capacity_and_state():
    pools = {p.name: p for p in storage.list_pools(URI)}
    pool = pools["default-pool"]
    assert pool.type == "dir" and pool.active and pool.state == "running"
    assert pool.capacity == 100 * 1024**3 and pool.available <= pool.capacity
    assert pool.target_path == "/default-pool"


def test_it_creates_starts_stops_autostarts_and_removes_a_dir_pool(pool_name, pool_state):
    assert pool_state() == (True, False, ["vdtest-vol.qcow2"])
    storage.set_pool_autostart(URI, pool_name, True)
    assert pool_state()[1] is True
    info = storage.stop_pool(URI, pool_name)
    assert not info.active and info.state == "inactive"
    assert storage.list_volumes(URI, pool_name) == []
    storage.stop_pool(URI, pool_name)  # already stopped: success
    assert storage.start_pool(URI, pool_name).active
    storage.refresh_pool(URI, pool_name)
    storage.delete_pool(URI, pool_name)
    assert pool_name not in {p.name for p in storage.list_pools(URI)}


def test_a_second_pool_with_the_same_name_is_refused(pool_name):
    with pytest.raises(Conflict, match="already exists"):
        storage.define_pool(URI, "dir", pool_name, target_path="/elsewhere")


def test_it_creates_clones_and_deletes_volumes_with_progress(pool_name, pool_state):
    vol = storage.create_volume(URI, pool_name, "vdtest-raw.img", "512M", "raw")
    assert (vol.format, vol.capacity) == ("raw", 512 * 1024**2)
    reports = []
    copy = storage.clone_volume(URI, pool_name, "vdtest-vol.qcow2", "vdtest-copy.qcow2",
                                progress=lambda pct, msg: reports.append(pct), poll_seconds=0.01)
    assert copy.capacity == 1024**3 and copy.format == "qcow2"
    assert pool_state()[2] == ["vdtest-copy.qcow2", "vdtest-raw.img", "vdtest-vol.qcow2"]
    storage.delete_volume(URI, pool_name, "vdtest-copy.qcow2")
    storage.delete_volume(URI, pool_name, "vdtest-raw.img")
    assert pool_state()[2] == ["vdtest-vol.qcow2"]
    assert all(0 <= pct <= 99 for pct in reports)


@pytest.mark.parametrize("name", BAD_NAMES, ids=repr)
def test_bad_volume_names_are_refused_before_any_libvirt_call(name, pool_name, pool_state):
    for call in (lambda: storage.create_volume(DEAD_URI, pool_name, name, "1G"),
                 lambda: storage.check_new_volume(DEAD_URI, pool_name, name, "1G"),
                 lambda: storage.clone_volume(DEAD_URI, pool_name, "vdtest-vol.qcow2", name),
                 lambda: storage.upload_volume(DEAD_URI, pool_name, name, 10, lambda n: b""),
                 lambda: storage.create_volume(URI, pool_name, name, "1G")):
        with pytest.raises(ValueError, match="Volume name"):
            call()
    assert pool_state()[2] == ["vdtest-vol.qcow2"]


@pytest.mark.parametrize("size", BAD_SIZES)
def test_absurd_or_negative_sizes_are_refused_before_any_libvirt_call(size, pool_name, pool_state):
    with pytest.raises(ValueError, match="[Ss]ize|not a size"):
        storage.create_volume(DEAD_URI, pool_name, "vdtest-ok", size)
    with pytest.raises(ValueError):
        storage.resize_volume(DEAD_URI, pool_name, "vdtest-vol.qcow2", size)
    assert pool_state()[2] == ["vdtest-vol.qcow2"]


def test_a_volume_larger_than_the_free_space_is_refused_on_its_capacity(pool_name, pool_state):
    with pytest.raises(OperationRefused, match="available"):
        storage.create_volume(URI, pool_name, "vdtest-huge.qcow2", "500G", "qcow2")  # sparse, still refused
    assert pool_state()[2] == ["vdtest-vol.qcow2"]


def test_shrinking_a_volume_is_refused(pool_name):
    with pytest.raises(OperationRefused, match="shrinking"):
        storage.resize_volume(URI, pool_name, "vdtest-vol.qcow2", "512M")
    assert storage.get_volume(URI, pool_name, "vdtest-vol.qcow2").capacity == 1024**3


def test_deleting_a_volume_a_guest_uses_is_refused_naming_the_guest(pool_name, pool_state, guest_using):
    guest = guest_using()
    assert storage.volume_users(URI, pool_name, "vdtest-vol.qcow2") == [guest]
    with pytest.raises(Conflict, match=guest):
        storage.delete_volume(URI, pool_name, "vdtest-vol.qcow2")
    assert pool_state()[2] == ["vdtest-vol.qcow2"]


def test_a_failed_upload_leaves_no_volume_behind(pool_name, pool_state):
    # The test driver cannot stream; the volume created for the upload must be removed again.
    with pytest.raises(OperationRefused, match="not supported"):
        storage.upload_volume(URI, pool_name, "vdtest-up.iso", 4, lambda n: b"abcd")
    assert pool_state()[2] == ["vdtest-vol.qcow2"]


@pytest.mark.parametrize("parts, message", [
    ({"target_path": "relative/dir"}, "absolute"),
    ({"target_path": "/var/lib/../../etc"}, "'..'"),
    ({"target_path": "/tmp/x\x00y"}, "control"),
    ({"target_path": ""}, "needs target_path"),
])
def test_pool_paths_are_validated(parts, message):
    with pytest.raises(ValueError, match=message):
        storage.pool_xml("dir", "vdtest-p", **parts)


def test_pool_sources_are_validated():
    with pytest.raises(ValueError, match="NFS server"):
        storage.pool_xml("netfs", "vdtest-p", target_path="/mnt/x", source_host="bad host;rm", source_dir="/e")
    with pytest.raises(ValueError, match="/dev/"):
        storage.pool_xml("fs", "vdtest-p", target_path="/mnt/x", source_device="/etc/passwd")
    with pytest.raises(ValueError, match="Volume group"):
        storage.pool_xml("logical", "vdtest-p", source_name="../vg")
    xml = storage.pool_xml("netfs", "vdtest-p", target_path="/mnt/x", source_host="nas.example", source_dir="/export")
    assert "<host name=\"nas.example\"/>" in xml and "<dir path=\"/export\"/>" in xml


def test_a_disk_path_leads_back_to_its_pool_volume(pool_name):
    vol = storage.volume_by_path(URI, f"/{pool_name}/vdtest-vol.qcow2")
    assert (vol.pool, vol.name) == (pool_name, "vdtest-vol.qcow2")
    assert storage.volume_by_path(URI, "/nowhere/disk.img") is None

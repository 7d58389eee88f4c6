"""The new-guest wizard's services: host suggestions, OS variants, building and creating a guest.

The wizard collects a spec (plain dict, kept in the session between steps); `check_spec`
validates it as a whole, `queue_create` turns it into a Job and `run_create` does the work:
volumes, cloud-init ISO, define, start. Guests are `type='qemu'` (TCG) unless the host's facts
say a real KVM boot check passed (`Host.kvm_usable`): libvirt offering kvm is not enough.
"""

from __future__ import annotations

import io
import json
import logging
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

from django.db.models import Sum

from core import jobs
from core.models import Job
from core.policy import Action, can, visible_hosts
from guests.choices import ACTIVE_STATES
from guests.models import Guest
from guests.models_history import ConfigVersion
from guests.provision_edit import EditError
from guests.services_provision import check_attach_source, record_current, touch_inventory
from hosts.models import Host
from hosts.virt import provision, storage
from hosts.virt.errors import VirtError
from virtdash.xml import (
    Console,
    Disk,
    Domain,
    Graphics,
    Interface,
    Serial,
    StorageVolume,
    Video,
    XMLInputError,
    parse_size,
    parse_untrusted,
)
from virtdash.xml.names import validate_bridge_name, validate_guest_name, validate_network_name, validate_volume_name
from virtdash.xml.units import GIB, MIB

log = logging.getLogger(__name__)
SOURCES = {"iso": "ISO image from a pool", "import": "Import an existing disk image",
           "pxe": "Network boot (PXE)", "cloud": "Cloud image + cloud-init", "none": "None (empty disk)"}
MAX_MEMORY_MIB = 1024 * 1024
MAX_VCPUS = 256
MAX_DISK_BYTES = 64 * 1024**4


# ------------------------------------------------------------------ hosts and OS variants


def host_choices(user) -> list[dict]:
    """Hosts the user may create guests on, with free resources from their facts; best first."""
    rows = []
    in_use = dict(Guest.objects.filter(state__in=ACTIVE_STATES).order_by().values_list("host_id")
                  .annotate(Sum("vcpus")))
    for host in visible_hosts(user).filter(enabled=True):
        if not can(user, Action.MANAGE, host):
            continue
        facts = host.facts or {}
        storage_free = sum(p.get("available", 0) for p in facts.get("pools", []) if p.get("active"))
        rows.append({"host": host, "cpus": facts.get("cpus", 0), "vcpus_in_use": in_use.get(host.pk) or 0,
                     "memory_free": facts.get("memory_free") or 0,
                     "memory_total": facts.get("memory_total") or 0, "storage_free": storage_free,
                     "guests": facts.get("guests_total", 0)})
    rows.sort(key=lambda r: (r["memory_free"], r["storage_free"]), reverse=True)
    if rows:
        rows[0]["suggested"] = True
    return rows


@lru_cache(maxsize=1)
def os_variants() -> tuple[tuple[str, str], ...]:
    """(libosinfo id, label) from `osinfo-query os`, newest first per family; cached per process."""
    tool = shutil.which("osinfo-query")
    if tool is None:
        return ()
    try:
        out = subprocess.run([tool, "--fields=short-id,name,id", "os"], capture_output=True, text=True,
                             timeout=20, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        log.warning("osinfo-query failed; OS variants unavailable")
        return ()
    variants = []
    for line in out.splitlines()[2:]:
        parts = [p.strip() for p in line.split("|")]
        if len(parts) == 3 and parts[2].startswith("http"):
            variants.append((parts[2], f"{parts[1]} ({parts[0]})"))
    return tuple(sorted(variants, key=lambda v: v[1].lower()))


OSINFO_DIR = Path("/usr/share/osinfo/os")


@lru_cache(maxsize=1)
def _os_resources() -> dict[str, dict]:
    """Recommended resources per libosinfo id, read once from the osinfo-db files (trusted, local)."""
    found: dict[str, dict] = {}
    for path in OSINFO_DIR.glob("*/*.xml"):
        try:
            root = parse_untrusted(path.read_bytes(), root="libosinfo")
        except (OSError, XMLInputError):
            continue
        for os_node in root.iterfind("os"):
            res = os_node.find("resources/recommended")
            if res is None:
                res = os_node.find("resources/minimum")
            if res is not None and os_node.get("id"):
                found[os_node.get("id")] = {key: int(res.findtext(tag)) for key, tag in
                                            (("cpus", "n-cpus"), ("ram", "ram"), ("storage", "storage"))
                                            if (res.findtext(tag) or "").isdigit()}
    return found


def os_defaults(os_id: str) -> dict:
    """Wizard defaults for an OS variant: vcpus, memory_mib, disk_size; empty when unknown."""
    res = _os_resources().get(os_id or "", {})
    defaults: dict = {}
    if res.get("cpus"):
        defaults["vcpus"] = min(res["cpus"], 4)
    if res.get("ram"):
        defaults["memory_mib"] = max(16, res["ram"] // MIB)
    if res.get("storage"):
        defaults["disk_size"] = f"{max(1, res['storage'] // GIB)}G"
    return defaults


def firmware_choices(host: Host) -> list[tuple[str, str]]:
    choices = [("bios", "BIOS (SeaBIOS)")]
    try:
        if provision.firmware_options(host.uri)["efi"]:
            choices.append(("efi", "UEFI (OVMF)"))
    except VirtError:
        pass
    return choices


def virt_type(host: Host) -> str:
    return host.guest_virt_type


# ------------------------------------------------------------------ validation


def _fail(message: str):
    raise EditError(message)


def check_name(host: Host, name: str) -> str:
    try:
        name = validate_guest_name(name)
    except ValueError as exc:
        raise EditError(str(exc)) from None
    if provision.uuid_for_name(host.uri, name) is not None:
        _fail(f"A guest named {name} already exists on {host}.")
    return name


def check_spec(host: Host, spec: dict) -> dict:
    """Validate a whole wizard spec; returns it normalised. Raises EditError with one clear message."""
    spec = dict(spec)
    spec["name"] = check_name(host, spec.get("name", ""))
    source = spec.get("source", "none")
    if source not in SOURCES:
        _fail("Choose an install source.")
    if not 1 <= int(spec.get("vcpus", 0)) <= MAX_VCPUS:
        _fail(f"vCPUs must be between 1 and {MAX_VCPUS}.")
    if not 16 <= int(spec.get("memory_mib", 0)) <= MAX_MEMORY_MIB:
        _fail(f"Memory must be between 16 MiB and {MAX_MEMORY_MIB} MiB.")
    if spec.get("firmware", "bios") not in dict(firmware_choices(host)):
        _fail("UEFI needs OVMF on the host; it is not installed.")
    if source in ("iso", "import", "cloud") and not spec.get("source_path"):
        _fail("Choose the ISO or disk image.")
    if source != "import":
        try:
            spec["disk_bytes"] = parse_size(str(spec.get("disk_size", "")), default_unit="G", max_bytes=MAX_DISK_BYTES)
        except ValueError as exc:
            _fail(f"Disk size: {exc}")
        if spec.get("disk_format", "qcow2") not in ("qcow2", "raw"):
            _fail("Disk format must be qcow2 or raw.")
        if source == "cloud" and spec.get("disk_format", "qcow2") != "qcow2":
            _fail("A cloud-image disk is a qcow2 overlay; choose qcow2.")
        pool = provision.pool(host.uri, spec.get("pool", ""))
        if not pool["active"] or pool["type"] != "dir":
            _fail("Choose an active directory pool for the disk.")
        if spec["disk_bytes"] > pool["available"] and spec.get("disk_format") == "raw":
            _fail("The pool has not enough free space for that raw disk.")
        spec["pool_path"] = pool["path"]
        ext = "qcow2" if spec.get("disk_format", "qcow2") == "qcow2" else "img"
        spec["volume_name"] = validate_volume_name(f"{spec['name']}.{ext}")
        wanted = [spec["volume_name"]] + ([f"{spec['name']}-cidata.iso"] if source == "cloud" else [])
        for volume in wanted:
            if provision.volume_exists(host.uri, pool["name"], volume):
                _fail(f"A volume {volume} already exists in pool {pool['name']}.")
    network = spec.get("network", "none")
    if network == "network":
        validate_network_name(spec.get("network_name", ""))
    elif network == "bridge":
        validate_bridge_name(spec.get("bridge", ""))
    elif network != "none":
        _fail("Choose a network, a bridge or none.")
    if source == "pxe" and network == "none":
        _fail("Network boot needs a network interface.")
    if spec.get("graphics", "vnc") not in ("vnc", "none"):
        _fail("Graphics must be VNC or none.")
    return spec


# ------------------------------------------------------------------ building


def build_domain(spec: dict, virt: str, disk_path: str | None, cdrom_path: str | None) -> Domain:
    dom = Domain.new(spec["name"], int(spec["memory_mib"]), int(spec["vcpus"]), virt,
                     firmware=spec.get("firmware", "bios"))
    if spec.get("os_id"):
        dom.os_id = spec["os_id"]
    if disk_path:
        fmt = spec.get("import_format") if spec["source"] == "import" else spec.get("disk_format", "qcow2")
        dom.add_device(Disk.new("vda", path=disk_path, driver_type=fmt or "raw"))
    if cdrom_path:
        dom.add_device(Disk.new("sda", path=cdrom_path, device="cdrom", bus="sata", driver_type="raw"))
    boot = {"iso": ["cdrom", "hd"], "pxe": ["network", "hd"]}.get(spec["source"], ["hd"])
    dom.boot_devs = boot
    if spec.get("network") == "network":
        dom.add_device(Interface.new("network", spec["network_name"]))
    elif spec.get("network") == "bridge":
        dom.add_device(Interface.new("bridge", spec["bridge"]))
    dom.add_device(Serial.new("pty"))
    dom.add_device(Console.new("pty", "serial"))
    if spec.get("graphics", "vnc") == "vnc":
        dom.add_device(Graphics.new("vnc", listen="127.0.0.1"))
        dom.add_device(Video.new("vga"))
    return dom


def cloud_init_iso(hostname: str, user: str, ssh_key: str) -> bytes:
    """A NoCloud seed ISO (volume label "cidata") written in Python with pycdlib; no shell."""
    import pycdlib

    user_data = {"hostname": hostname, "users": [{"name": user or "cloud", "sudo": "ALL=(ALL) NOPASSWD:ALL",
                                                  "shell": "/bin/bash",
                                                  "ssh_authorized_keys": [ssh_key] if ssh_key else []}]}
    # JSON is valid YAML: no hand-built YAML from user strings.
    files = {"user-data": "#cloud-config\n" + json.dumps(user_data, indent=2) + "\n",
             "meta-data": json.dumps({"instance-id": hostname, "local-hostname": hostname}) + "\n"}
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, joliet=3, rock_ridge="1.09", vol_ident="cidata")
    for index, (name, text) in enumerate(files.items()):
        data = text.encode()
        iso.add_fp(io.BytesIO(data), len(data), f"/FILE{index}.;1", rr_name=name, joliet_path=f"/{name}")
    out = io.BytesIO()
    iso.write_fp(out)
    iso.close()
    return out.getvalue()


# ------------------------------------------------------------------ the job


def queue_create(actor, host: Host, spec: dict) -> Job:
    from guests import tasks_provision

    spec = check_spec(host, spec)
    if spec.get("source") in ("iso", "import", "cloud"):  # an existing image; a cloud overlay inherits its chain
        check_attach_source(actor, host, spec["source_path"])
    job = jobs.create(actor, "guest.create", host=host, target_name=spec["name"], params={"spec": spec})
    jobs.enqueue(job, tasks_provision.create_guest)
    return job


def run_create(job: Job, report) -> str:
    host, spec = job.host, job.params["spec"]
    existing = provision.uuid_for_name(host.uri, spec["name"])
    if existing is not None:
        touch_inventory(host, existing)
        return f"{spec['name']} exists already."  # a re-run after the define: converge
    created: list[str] = []
    try:
        uuid = _create(host, spec, created, report)
    except VirtError:
        for path in created:
            provision.delete_volume(host.uri, path)
        raise
    record_current(host, uuid, source=ConfigVersion.Source.CREATE, actor=job.actor, note="created by the wizard")
    job.guest_uuid = uuid
    job.save(update_fields=["guest_uuid"])
    if spec.get("start"):
        report(90, "Starting")
        provision.start(host.uri, uuid)
    touch_inventory(host, uuid)
    return f"Created {spec['name']}" + (" and started it." if spec.get("start") else ".")


def _create(host: Host, spec: dict, created: list[str], report) -> str:
    source, disk_path, cdrom_path = spec["source"], None, None
    if source == "import":
        disk_path = spec["source_path"]
    else:
        report(10, f"Creating volume {spec['volume_name']}")
        if source == "cloud":  # a qcow2 overlay on the cloud image, which stays untouched
            vol = StorageVolume.new(spec["volume_name"], spec["disk_bytes"], format="qcow2",
                                    backing_path=spec["source_path"],
                                    backing_format=spec.get("import_format") or "qcow2")
            disk_path = provision.create_volume(host.uri, spec["pool"], vol.to_string())
        else:
            disk_path = storage.create_volume(host.uri, spec["pool"], spec["volume_name"], spec["disk_bytes"],
                                              spec.get("disk_format", "qcow2")).path
        created.append(disk_path)
    if source == "iso":
        cdrom_path = spec["source_path"]
    elif source == "cloud":
        report(30, "Writing the cloud-init seed ISO")
        data = cloud_init_iso(spec["name"], spec.get("cloud_user", ""), spec.get("ssh_key", ""))
        seed = StorageVolume.new(validate_volume_name(f"{spec['name']}-cidata.iso"), len(data), format="raw")
        cdrom_path = provision.upload_bytes(host.uri, spec["pool"], seed.to_string(), data)
        created.append(cdrom_path)
    report(60, "Defining the guest")
    dom = build_domain(spec, virt_type(host), disk_path, cdrom_path)
    return provision.define_validated(host.uri, dom.to_string())

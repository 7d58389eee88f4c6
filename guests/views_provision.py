"""Provisioning pages: wizard, edit (preview then apply), raw XML, history, clone, snapshots.

Thin views: parse, ask core.policy, call one service, render or redirect to the Job. Anything
that changes libvirt is a POST that queues a Job; refusals are audited.
"""

from __future__ import annotations

import secrets

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core.jobs import JobRefused
from core.models import Job
from core.policy import Action, can, visible_guests, visible_hosts
from guests import forms_provision as forms
from guests import provision_edit as edit
from guests import services_create as create_svc
from guests import services_provision as svc
from guests.models import Guest
from guests.models_history import ConfigVersion
from hosts.virt import provision
from hosts.virt.errors import VirtError
from virtdash.xml.units import format_size as format_size_bytes

WIZARD_KEY = "provision_wizard"
PENDING_KEY = "provision_pending"
STEPS = ("host", "source", "resources", "storage", "review")


def _guest(request, uuid, action: Action, what: str) -> Guest:
    guest = visible_guests(request.user).select_related("host").filter(uuid=str(uuid)).first()
    if guest is None:
        raise Http404("No such guest.")
    if not can(request.user, action, guest):
        svc.audit_denied(request.user, what, guest)
        raise PermissionDenied(f"You may not {action.value.replace('_', ' ')} {guest.name}.")
    return guest


def _context(request, guest: Guest, **extra) -> dict:
    user = request.user
    return {"guest": guest, "can_manage": can(user, Action.MANAGE, guest),
            "can_operate": can(user, Action.OPERATE, guest), "can_raw": can(user, Action.RAW_XML, guest), **extra}


def _job_redirect(job):
    return redirect("job", pk=job.pk)


def _active_pools(uri: str) -> list[dict]:
    return [p for p in provision.pools(uri) if p["active"]]


def _images(uri: str, pools: list[dict] | None = None) -> list[dict]:
    """Every volume of the active pools (pass them when already read), labelled for a select."""
    found = []
    for pool in _active_pools(uri) if pools is None else pools:
        for vol in provision.volumes(uri, pool["name"]):
            found.append({**vol, "pool": pool["name"],
                          "label": f"{pool['name']}/{vol['name']} ({format_size_bytes(vol['capacity'])}, "
                                   f"{vol['format'] or '?'})"})
    return found


# ------------------------------------------------------------------ edit


def _edit_context(request, guest: Guest, **forms_given) -> dict:
    xml, dom, active = svc.current_domain(guest)
    pools = _active_pools(guest.host.uri)
    volumes = _images(guest.host.uri, pools)
    images = [i for i in volumes if i["name"].lower().endswith(".iso")]
    summary = dom.summary()
    general = forms.GeneralForm(initial={
        "vcpus": dom.vcpus, "max_vcpus": dom.vcpus_max, "memory_mib": (dom.current_memory_kib or 0) // 1024,
        "max_memory_mib": (dom.memory_kib or 0) // 1024, "title": dom.title, "description": dom.description,
        "tags": " ".join(dom.tags), "owner": dom.owner,
        "autostart": provision.state(guest.host.uri, guest.uuid)["autostart"]})
    video = next(iter(dom.devices_of(edit.Video)), None)
    boot_devices = [d.describe() for d in dom.devices() if isinstance(d, edit.Disk | edit.Interface)]
    return _context(request, guest, active=active, summary=summary, boot_order=dom.boot_order(),
                    boot_devices=boot_devices, boot_menu=bool(dom.boot_menu),
                    general_form=forms_given.get("general") or general,
                    display_form=forms.DisplayForm(initial={"graphics": "vnc" if dom.graphics else "none",
                                                            "video": video.model if video else "none"}),
                    add_disk_form=forms_given.get("add_disk") or forms.AddDiskForm(
                        pools=[p["name"] for p in pools], images=volumes,
                        initial={"volume_name": f"{guest.name}-disk2.qcow2"}),
                    media_form=forms.MediaForm(images=images), images=images,
                    nic_form=forms_given.get("nic") or forms.NicForm())


@require_GET
def edit_guest(request, uuid):
    guest = _guest(request, uuid, Action.MANAGE, "guest.edit")
    try:
        context = _edit_context(request, guest)
    except VirtError as exc:
        messages.error(request, str(exc))
        return render(request, "guests/provision/unavailable.html", _context(request, guest))
    return render(request, "guests/provision/edit.html", context)


def _general(post, guest):
    data = {**_valid(forms.GeneralForm(post)).cleaned_data,
            "autostart_now": provision.state(guest.host.uri, guest.uuid)["autostart"]}
    return "CPU, memory and details", lambda dom, active: edit.plan_general(dom, data, active=active)


def _boot(post, guest):
    menu = _valid(forms.BootForm(post)).cleaned_data["boot_menu"]
    order = [line for line in post.getlist("order") if line]
    return "boot order", lambda dom, active: edit.plan_boot(dom, order, menu)


def _display(post, guest):
    data = _valid(forms.DisplayForm(post)).cleaned_data
    return "graphics and video", lambda dom, active: edit.plan_display(dom, data["graphics"], data["video"])


def _add_disk(post, guest):
    pools = _active_pools(guest.host.uri)
    data = _valid(forms.AddDiskForm(post, pools=[p["name"] for p in pools],
                                    images=_images(guest.host.uri, pools))).cleaned_data
    if data.get("existing_path"):
        return (f"add disk {data['existing_path']}",
                lambda dom, active: edit.plan_add_disk(dom, data, active=active))
    pool_path = next((p["path"] for p in pools if p["name"] == data.get("pool")), "")
    return (f"add disk {data['volume_name']}",
            lambda dom, active: edit.plan_add_disk(dom, data, active=active, pool_path=pool_path))


def _remove_disk(post, guest):
    target = _valid(forms.DiskTargetForm(post)).cleaned_data["target"]
    return f"remove disk {target}", lambda dom, active: edit.plan_remove_disk(dom, target, active=active)


def _resize_disk(post, guest):
    data = _valid(forms.ResizeDiskForm(post)).cleaned_data
    return f"resize disk {data['target']}", lambda dom, active: edit.plan_resize_disk(
        dom, data["target"], data["size"], active=active, current_capacity=_capacity(guest, dom, data["target"]))


def _media(post, guest):
    data = _valid(forms.MediaForm(post, images=_images(guest.host.uri))).cleaned_data
    path = data["path"] or None
    return (f"{'insert' if path else 'eject'} media in {data['target']}",
            lambda dom, active: edit.plan_media(dom, data["target"], path, active=active))


def _add_cdrom(post, guest):
    return "add CD drive", lambda dom, active: edit.plan_add_cdrom(dom, None)


def _add_nic(post, guest):
    data = _valid(forms.NicForm(post)).cleaned_data
    return "add NIC", lambda dom, active: edit.plan_add_nic(dom, data["kind"], data["source"], data["model"],
                                                             active=active)


def _remove_nic(post, guest):
    mac = _valid(forms.NicRemoveForm(post)).cleaned_data["mac"]
    return f"remove NIC {mac}", lambda dom, active: edit.plan_remove_nic(dom, mac, active=active)


def _change_nic(post, guest):
    data = _valid(forms.NicChangeForm(post)).cleaned_data
    return f"change NIC {data['mac']}", lambda dom, active: edit.plan_change_nic(
        dom, data["mac"], data["kind"], data["source"], data["model"])


# Each posted section → (summary, change(dom, active) -> Plan); parsing raises EditError.
SECTIONS = {"general": _general, "boot": _boot, "display": _display, "add_disk": _add_disk,
            "remove_disk": _remove_disk, "resize_disk": _resize_disk, "media": _media, "add_cdrom": _add_cdrom,
            "add_nic": _add_nic, "remove_nic": _remove_nic, "change_nic": _change_nic}


def _valid(form):
    if not form.is_valid():
        errors = "; ".join(f"{'' if k == '__all__' else k + ': '}{' '.join(v)}" for k, v in form.errors.items())
        raise edit.EditError(errors)
    return form


def _capacity(guest: Guest, dom, target: str) -> int:
    disk = dom.find_disk(target)
    vol = provision.volume_by_path(guest.host.uri, disk.source_file) if disk and disk.source_file else None
    return vol["capacity"] if vol else 0


@require_POST
def edit_preview(request, uuid, section: str):
    guest = _guest(request, uuid, Action.MANAGE, "guest.edit")
    try:
        if section not in SECTIONS:
            raise Http404("No such section")
        summary, change = SECTIONS[section](request.POST, guest)
        pending = svc.plan_change(guest, summary, change)
        svc.check_new_sources(request.user, guest, pending)  # existing images: backing chain in the pool paths
    except (edit.EditError, VirtError) as exc:
        svc.audit_refused(request.user, "guest.edit", guest, str(exc))
        messages.error(request, f"Nothing was changed: {exc}")
        return redirect("provision:edit", uuid=guest.uuid)
    if not pending.changed:
        messages.info(request, "That is the current configuration already; nothing to apply.")
        return redirect("provision:edit", uuid=guest.uuid)
    token = secrets.token_urlsafe(16)
    request.session[PENDING_KEY] = {token: pending.to_session(guest)}
    return render(request, "guests/provision/edit_preview.html", _context(
        request, guest, pending=pending, token=token, apply_form=forms.ApplyForm(initial={"token": token})))


@require_POST
def edit_apply(request, uuid):
    guest = _guest(request, uuid, Action.MANAGE, "guest.edit")
    form = forms.ApplyForm(request.POST)
    pending = request.session.get(PENDING_KEY, {}).get(request.POST.get("token", ""))
    if not form.is_valid() or pending is None or pending.get("guest") != guest.pk:
        messages.error(request, "That preview has expired; make the change again.")
        return redirect("provision:edit", uuid=guest.uuid)
    try:
        job = svc.queue_edit(request.user, guest, pending, form.cleaned_data["mode"])
    except (edit.EditError, JobRefused) as exc:
        messages.error(request, str(exc))
        return redirect("provision:edit", uuid=guest.uuid)
    request.session.pop(PENDING_KEY, None)
    return _job_redirect(job)


# ------------------------------------------------------------------ raw XML


@require_http_methods(["GET", "POST"])
def raw_xml(request, uuid):
    guest = _guest(request, uuid, Action.RAW_XML, "guest.raw_xml")
    error = ""
    if request.method == "POST":
        form = forms.RawXMLForm(request.POST)
        if form.is_valid():
            try:
                dom = svc.check_raw_xml(guest, form.cleaned_data["xml"])
                job = svc.queue_define(request.user, guest, dom.to_string(), kind="guest.raw_xml",
                                       source=ConfigVersion.Source.RAW, note="raw XML editor")
                return _job_redirect(job)
            except (edit.EditError, JobRefused) as exc:
                error = str(exc)
                svc.audit_refused(request.user, "guest.raw_xml", guest, error)
    else:
        try:
            form = forms.RawXMLForm(initial={"xml": provision.inactive_xml(guest.host.uri, guest.uuid)})
        except VirtError as exc:
            messages.error(request, str(exc))
            return render(request, "guests/provision/unavailable.html", _context(request, guest))
    last = Job.objects.filter(kind="guest.raw_xml", guest_uuid=guest.uuid, actor=request.user).first()
    return render(request, "guests/provision/raw_xml.html", _context(request, guest, form=form, error=error,
                                                                      last_job=last))


# ------------------------------------------------------------------ history


@require_GET
def history(request, uuid):
    guest = _guest(request, uuid, Action.MANAGE, "guest.history")
    svc.sync_history(guest)
    rows = list(svc.versions(guest)[:200])
    by_id = {v.pk: v for v in rows}
    diff, a, b = None, None, None
    try:
        a, b = by_id.get(int(request.GET.get("a", 0))), by_id.get(int(request.GET.get("b", 0)))
    except ValueError:
        pass
    if a is None and b is None and len(rows) >= 2:
        a, b = rows[1], rows[0]
    if a is not None and b is not None:
        diff = svc.diff_lines(a.xml, b.xml, f"#{a.pk} {a.created:%Y-%m-%d %H:%M:%S}",
                              f"#{b.pk} {b.created:%Y-%m-%d %H:%M:%S}")
    return render(request, "guests/provision/history.html",
                  _context(request, guest, versions=rows, diff=diff, a=a, b=b))


@require_POST
def rollback(request, uuid, version: int):
    guest = _guest(request, uuid, Action.MANAGE, "guest.rollback")
    target = get_object_or_404(ConfigVersion, pk=version, host_id=guest.host_id, guest_uuid=guest.uuid)
    try:
        job = svc.queue_rollback(request.user, guest, target)
    except (edit.EditError, JobRefused) as exc:
        messages.error(request, str(exc))
        return redirect("provision:history", uuid=guest.uuid)
    return _job_redirect(job)


# ------------------------------------------------------------------ clone


@require_http_methods(["GET", "POST"])
def clone(request, uuid):
    guest = _guest(request, uuid, Action.MANAGE, "guest.clone")
    form = forms.CloneForm(request.POST or None, initial={"new_name": f"{guest.name}-clone"})
    if request.method == "POST":
        if form.is_valid():
            try:
                job = svc.queue_clone(request.user, guest, form.cleaned_data["new_name"], form.cleaned_data["linked"])
                return _job_redirect(job)
            except (edit.EditError, JobRefused, VirtError) as exc:
                form.add_error(None, str(exc))
        svc.audit_refused(request.user, "guest.clone", guest, form.errors.as_text())
    return render(request, "guests/provision/clone.html", _context(request, guest, form=form))


# ------------------------------------------------------------------ snapshots


@require_GET
def snapshot_list(request, uuid):
    guest = _guest(request, uuid, Action.VIEW, "snapshot.view")
    error = ""
    try:
        snaps = svc.snapshot_list(guest)
    except VirtError as exc:
        snaps, error = [], str(exc)
    template = "guests/provision/_snapshot_tree.html" if request.GET.get("partial") else \
        "guests/provision/snapshots.html"
    return render(request, template, _context(request, guest, snapshots=snaps, error=error,
                                              form=forms.SnapshotForm(initial={"memory": True})))


@require_POST
def snapshot_create(request, uuid):
    guest = _guest(request, uuid, Action.OPERATE, "snapshot.create")
    form = forms.SnapshotForm(request.POST)
    try:
        _valid(form)
        data = form.cleaned_data
        job = svc.queue_snapshot(request.user, guest, name=data["name"], description=data["description"],
                                 memory=data["memory"], disk_only=data["disk_only"])
    except (edit.EditError, JobRefused, VirtError) as exc:
        svc.audit_refused(request.user, "snapshot.create", guest, str(exc))
        messages.error(request, f"No snapshot taken: {exc}")
        return redirect("provision:snapshots", uuid=guest.uuid)
    return _job_redirect(job)


@require_POST
def snapshot_action(request, uuid):
    guest = _guest(request, uuid, Action.OPERATE, "snapshot.change")
    form = forms.SnapshotActionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a snapshot and an action.")
        return redirect("provision:snapshots", uuid=guest.uuid)
    try:
        job = svc.queue_snapshot_action(request.user, guest, f"snapshot.{form.cleaned_data['action']}",
                                        form.cleaned_data["name"])
    except JobRefused as exc:
        messages.error(request, str(exc))
        return redirect("provision:snapshots", uuid=guest.uuid)
    return _job_redirect(job)


# ------------------------------------------------------------------ create wizard


def _wizard(request) -> dict:
    return request.session.get(WIZARD_KEY, {})


def _save_wizard(request, data: dict) -> None:
    request.session[WIZARD_KEY] = data


def _wizard_host(request, spec: dict):
    host = visible_hosts(request.user).filter(pk=spec.get("host")).first()
    if host is None or not can(request.user, Action.MANAGE, host):
        return None
    return host


def _step_form(step: str, request, spec: dict, host, data=None):
    initial = spec
    if step == "host":
        rows = create_svc.host_choices(request.user)
        suggested = next((r["host"].pk for r in rows if r.get("suggested")), None)
        return forms.HostStepForm(data, hosts=rows, initial={"host": spec.get("host", suggested)}), {"hosts": rows}
    if step == "source":
        images = _images(host.uri)
        return forms.SourceStepForm(data, sources=create_svc.SOURCES.items(), images=images,
                                    variants=create_svc.os_variants(),
                                    initial={"source": "none", **initial}), {"images": images}
    if step == "resources":
        defaults = create_svc.os_defaults(spec.get("os_id", ""))
        return forms.ResourcesStepForm(data, firmware=create_svc.firmware_choices(host),
                                       initial={**defaults, **initial}), {"os_defaults": defaults}
    if step == "storage":
        initial = {"disk_size": create_svc.os_defaults(spec.get("os_id", "")).get("disk_size", "1G"), **initial}
        pools = [p for p in provision.pools(host.uri) if p["active"] and p["type"] == "dir"]
        networks = _networks(host.uri)
        return forms.StorageStepForm(data, pools=[p["name"] for p in pools], networks=networks,
                                     initial={"start": True, **initial}), {"pools": pools}
    return None, {}


def _networks(uri: str) -> list[str]:
    try:
        from hosts.virt import networks
    except ImportError:
        return []
    try:
        return [n["name"] if isinstance(n, dict) else n.name for n in networks.list_networks(uri)]
    except (VirtError, AttributeError, TypeError):
        return []


@require_http_methods(["GET", "POST"])
def create(request):
    if not create_svc.host_choices(request.user):
        svc.audit_denied(request.user, "guest.create", None)
        raise PermissionDenied("You may not create guests on any host.")
    step = request.GET.get("step", "host")
    if step not in STEPS:
        step = "host"
    spec = _wizard(request)
    host = _wizard_host(request, spec) if step != "host" else None
    if step != "host" and host is None:
        return redirect(f"{request.path}?step=host")
    if step == "review":
        return _review(request, host, spec)
    try:
        form, extra = _step_form(step, request, spec, host, request.POST if request.method == "POST" else None)
    except VirtError as exc:
        messages.error(request, str(exc))
        return redirect(f"{request.path}?step=host")
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        if step == "source":
            try:
                data["name"] = create_svc.check_name(host, data["name"])
            except edit.EditError as exc:
                form.add_error("name", str(exc))
                data = None
            if data is not None and data.get("source_path"):
                fmt = next((i["format"] for i in extra["images"] if i["path"] == data["source_path"]), "")
                data["import_format"] = fmt or "raw"
        if data is not None:
            _save_wizard(request, {**({} if step == "host" else spec), **data})
            return redirect(f"{request.path}?step={STEPS[STEPS.index(step) + 1]}")
    return render(request, "guests/provision/create.html",
                  {"step": step, "steps": STEPS, "form": form, "host": host, "spec": spec, **extra})


def _review(request, host, spec: dict):
    error = ""
    if request.method == "POST":
        try:
            job = create_svc.queue_create(request.user, host, spec)
            request.session.pop(WIZARD_KEY, None)
            return _job_redirect(job)
        except (edit.EditError, VirtError, JobRefused, ValueError) as exc:
            error = str(exc)
            svc.audit_refused(request.user, "guest.create", host, error)
    return render(request, "guests/provision/create.html",
                  {"step": "review", "steps": STEPS, "host": host, "spec": spec, "error": error,
                   "source_label": create_svc.SOURCES.get(spec.get("source", ""), "")})

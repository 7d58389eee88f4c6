"""Forms for the wizard, edits, raw XML, clone and snapshots: types and bounds only.

Checks that need libvirt (duplicate names, pools) happen in the services, which raise
`EditError` with a message the view shows next to the form.
"""

from __future__ import annotations

from django import forms

from guests.provision_edit import NIC_MODELS, VIDEO_MODELS
from virtdash.xml import InvalidNameError, parse_size, validate_guest_name, validate_volume_name

MAX_VCPUS = 256
MAX_MEMORY_MIB = 1024 * 1024


def _guest_name(value: str) -> str:
    try:
        return validate_guest_name(value)
    except InvalidNameError as exc:
        raise forms.ValidationError(str(exc)) from None


def _volume_name(value: str) -> str:
    try:
        return validate_volume_name(value)
    except InvalidNameError as exc:
        raise forms.ValidationError(str(exc)) from None


def _size(value: str) -> str:
    try:
        parse_size(value, default_unit="G", max_bytes=64 * 1024**4)
    except ValueError as exc:
        raise forms.ValidationError(str(exc)) from None
    return value.strip()


class SizeField(forms.CharField):
    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 32)
        kwargs.setdefault("help_text", "e.g. 20G, 512M (G if no unit)")
        super().__init__(**kwargs)

    def clean(self, value):
        value = super().clean(value)
        return _size(value) if value else value


# ------------------------------------------------------------------ wizard


class HostStepForm(forms.Form):
    host = forms.TypedChoiceField(coerce=int, widget=forms.RadioSelect)

    def __init__(self, *args, hosts=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["host"].choices = [(row["host"].pk, row["host"].name) for row in hosts]


class SourceStepForm(forms.Form):
    name = forms.CharField(max_length=64, widget=forms.TextInput(attrs={"autofocus": True, "autocomplete": "off"}))
    source = forms.ChoiceField(widget=forms.RadioSelect)
    source_path = forms.ChoiceField(required=False, label="ISO or disk image")
    os_id = forms.ChoiceField(required=False, label="Operating system")
    cloud_user = forms.CharField(required=False, max_length=32, label="Cloud-init user")
    ssh_key = forms.CharField(required=False, max_length=4096, label="SSH public key",
                              widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, sources=(), images=(), variants=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["source"].choices = list(sources)
        self.fields["source_path"].choices = [("", "—")] + [(v["path"], v["label"]) for v in images]
        self.fields["os_id"].choices = [("", "Generic / unknown")] + list(variants)

    def clean_name(self):
        return _guest_name(self.cleaned_data["name"])

    def clean_cloud_user(self):
        user = self.cleaned_data["cloud_user"]
        if user and not (user.isascii() and user.replace("-", "").replace("_", "").isalnum()):
            raise forms.ValidationError("Use letters, digits, '-' and '_' only.")
        return user

    def clean_ssh_key(self):
        key = self.cleaned_data["ssh_key"].strip()
        if key and ("\n" in key or not key.startswith(("ssh-", "ecdsa-", "sk-"))):
            raise forms.ValidationError("Paste one OpenSSH public key line (ssh-ed25519 AAAA…).")
        return key


class ResourcesStepForm(forms.Form):
    vcpus = forms.IntegerField(min_value=1, max_value=MAX_VCPUS, initial=1, label="vCPUs")
    memory_mib = forms.IntegerField(min_value=16, max_value=MAX_MEMORY_MIB, initial=128, label="Memory (MiB)")
    firmware = forms.ChoiceField(initial="bios")

    def __init__(self, *args, firmware=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["firmware"].choices = list(firmware)


class StorageStepForm(forms.Form):
    pool = forms.ChoiceField(required=False, label="Storage pool")
    disk_size = SizeField(required=False, initial="1G", label="Disk size")
    disk_format = forms.ChoiceField(choices=[("qcow2", "qcow2"), ("raw", "raw")], initial="qcow2")
    network = forms.ChoiceField(choices=[("none", "None"), ("network", "libvirt network"), ("bridge", "Bridge")],
                                initial="none")
    network_name = forms.ChoiceField(required=False, label="Network")
    bridge = forms.CharField(required=False, max_length=15)
    graphics = forms.ChoiceField(choices=[("vnc", "VNC"), ("none", "None")], initial="vnc")
    start = forms.BooleanField(required=False, initial=True, label="Start after creation")

    def __init__(self, *args, pools=(), networks=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["pool"].choices = [(p, p) for p in pools]
        self.fields["network_name"].choices = [("", "—")] + [(n, n) for n in networks]


# ------------------------------------------------------------------ edit


class GeneralForm(forms.Form):
    vcpus = forms.IntegerField(min_value=1, max_value=4096, label="vCPUs (current)")
    max_vcpus = forms.IntegerField(min_value=1, max_value=4096, label="vCPUs (maximum)")
    memory_mib = forms.IntegerField(min_value=16, max_value=16 * 1024 * 1024, label="Memory (MiB, current)")
    max_memory_mib = forms.IntegerField(min_value=16, max_value=16 * 1024 * 1024, label="Memory (MiB, maximum)")
    title = forms.CharField(required=False, max_length=255)
    description = forms.CharField(required=False, max_length=4000, widget=forms.Textarea(attrs={"rows": 2}))
    tags = forms.CharField(required=False, max_length=500, help_text="Separated by spaces or commas")
    owner = forms.CharField(required=False, max_length=150)
    autostart = forms.BooleanField(required=False, label="Start with the host")

    def clean(self):
        data = super().clean()
        if data.get("vcpus") and data.get("max_vcpus") and data["vcpus"] > data["max_vcpus"]:
            raise forms.ValidationError("Current vCPUs cannot exceed the maximum.")
        if data.get("memory_mib") and data.get("max_memory_mib") and data["memory_mib"] > data["max_memory_mib"]:
            raise forms.ValidationError("Current memory cannot exceed the maximum.")
        return data


class BootForm(forms.Form):
    order = forms.CharField(required=False, max_length=2000, widget=forms.HiddenInput)
    boot_menu = forms.BooleanField(required=False, label="Show the boot menu")


class DisplayForm(forms.Form):
    graphics = forms.ChoiceField(choices=[("vnc", "VNC"), ("none", "None")])
    video = forms.ChoiceField(choices=[(m, m) for m in VIDEO_MODELS])


class AddDiskForm(forms.Form):
    pool = forms.ChoiceField(required=False)
    volume_name = forms.CharField(required=False, max_length=200)
    size = SizeField(required=False, initial="1G")
    format = forms.ChoiceField(choices=[("qcow2", "qcow2"), ("raw", "raw")], initial="qcow2")
    bus = forms.ChoiceField(choices=[("virtio", "virtio"), ("sata", "SATA"), ("scsi", "SCSI")], initial="virtio")
    existing_path = forms.ChoiceField(required=False, label="Or attach an existing volume")

    def __init__(self, *args, pools=(), images=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["pool"].choices = [(p, p) for p in pools]
        self.fields["existing_path"].choices = [("", "—")] + [(v["path"], v["label"]) for v in images]
        self._formats = {v["path"]: "qcow2" if v.get("format") == "qcow2" else "raw" for v in images}

    def clean_volume_name(self):
        if self.data.get("existing_path"):
            return self.cleaned_data["volume_name"]
        return _volume_name(self.cleaned_data["volume_name"])

    def clean(self):
        data = super().clean()
        if data.get("existing_path"):
            data["existing_format"] = self._formats.get(data["existing_path"], "raw")
            return data
        if not data.get("size"):
            raise forms.ValidationError("Give the new disk a size.")
        return data


class DiskTargetForm(forms.Form):
    target = forms.RegexField(regex=r"\A[a-z]{2,3}[a-z]{1,2}\Z", max_length=8)


class ResizeDiskForm(DiskTargetForm):
    size = SizeField()


class MediaForm(DiskTargetForm):
    path = forms.ChoiceField(required=False, label="ISO")

    def __init__(self, *args, images=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["path"].choices = [("", "(eject)")] + [(v["path"], v["label"]) for v in images]


class NicForm(forms.Form):
    kind = forms.ChoiceField(choices=[("network", "libvirt network"), ("bridge", "Bridge")])
    source = forms.CharField(max_length=64, label="Network or bridge name")
    model = forms.ChoiceField(choices=[(m, m) for m in NIC_MODELS], initial="virtio")


class NicChangeForm(NicForm):
    mac = forms.CharField(max_length=17)


class NicRemoveForm(forms.Form):
    mac = forms.CharField(max_length=17)


class ApplyForm(forms.Form):
    token = forms.CharField(max_length=64)
    mode = forms.ChoiceField(choices=[("config", "Persistent (next boot)"), ("both", "Now and persistent"),
                                      ("live", "Now only (until shutdown)")], initial="config")


# ------------------------------------------------------------------ raw XML, clone, snapshots


class RawXMLForm(forms.Form):
    xml = forms.CharField(widget=forms.Textarea(attrs={"rows": 30, "spellcheck": "false", "class": "mono"}),
                          max_length=1024 * 1024, strip=False)


class CloneForm(forms.Form):
    new_name = forms.CharField(max_length=64, widget=forms.TextInput(attrs={"autofocus": True}))
    linked = forms.BooleanField(required=False, label="Linked clone (qcow2 overlay on the original disks)")

    def clean_new_name(self):
        return _guest_name(self.cleaned_data["new_name"])


class SnapshotForm(forms.Form):
    name = forms.CharField(max_length=64)
    description = forms.CharField(required=False, max_length=1000, widget=forms.Textarea(attrs={"rows": 2}))
    memory = forms.BooleanField(required=False, initial=True, label="Include memory (running guests)")
    disk_only = forms.BooleanField(required=False, label="Disk-only (external) snapshot")

    def clean_name(self):
        name = self.cleaned_data["name"]
        if "/" in name or not name.isprintable() or name.startswith("."):
            raise forms.ValidationError("Snapshot names cannot contain '/', control characters or start with '.'.")
        return name


class SnapshotActionForm(forms.Form):
    name = forms.CharField(max_length=64)
    action = forms.ChoiceField(choices=[("revert", "Revert"), ("delete", "Delete")])

"""Forms for storage pools, volumes and networks. Validation reuses hosts.virt/virtdash.xml
validators, so a page refuses exactly what the service layer would, before any libvirt call."""

from __future__ import annotations

from django import forms

from hosts.virt import networks, storage
from virtdash.xml import validate_volume_name
from virtdash.xml.storage import VOLUME_FORMATS

POOL_TYPE_CHOICES = [
    ("dir", "Directory on the host (dir)"),
    ("fs", "Pre-formatted block device (fs)"),
    ("netfs", "NFS export (netfs)"),
    ("logical", "LVM volume group (logical)"),
]
FORMAT_CHOICES = [(f, f) for f in VOLUME_FORMATS]
NETWORK_MODE_CHOICES = [
    ("nat", "NAT: guests reach out through the host"),
    ("route", "Routed: guests' subnet routed by the host"),
    ("isolated", "Isolated: guests and host only"),
    ("bridge", "Bridge: attach to an existing host bridge"),
]


def _run(validator, value, *args):
    try:
        return validator(value, *args)
    except ValueError as exc:
        raise forms.ValidationError(str(exc)) from None


class PoolForm(forms.Form):
    type = forms.ChoiceField(choices=POOL_TYPE_CHOICES, initial="dir")
    name = forms.CharField(max_length=200, strip=False)
    target_path = forms.CharField(max_length=2000, required=False, strip=False,
                                  help_text="Where volumes live on the host, e.g. /var/lib/libvirt/images/fast "
                                            "(dir, fs, netfs). Created when missing.")
    source_host = forms.CharField(max_length=300, required=False, label="NFS server (netfs)")
    source_dir = forms.CharField(max_length=2000, required=False, strip=False, label="NFS export path (netfs)")
    source_device = forms.CharField(max_length=2000, required=False, strip=False, label="Block device (fs)",
                                    help_text="An already formatted device such as /dev/sdb1; it is never formatted.")
    source_name = forms.CharField(max_length=200, required=False, label="Volume group (logical)",
                                  help_text="An existing LVM volume group; it is never created or wiped.")
    autostart = forms.BooleanField(required=False, help_text="Start the pool when libvirtd starts.")

    PARTS = ("target_path", "source_host", "source_dir", "source_device", "source_name")

    def __init__(self, *args, allowed_paths: tuple[str, ...] | None = None, **kwargs):
        """``allowed_paths``: prefixes the user's pools must stay under (services.pool_paths_for);
        ``None`` for an administrator, who may put a pool anywhere."""
        super().__init__(*args, **kwargs)
        self.allowed_paths = allowed_paths
        self.location_refused = ""  # the message when clean() refused the pool's location
        field = self.fields["target_path"]
        if allowed_paths is None:
            field.help_text += (" As an administrator you may use any path; operators are limited to "
                                "VIRTDASH_POOL_PATHS.")
        else:
            field.help_text += f" Allowed: under {', '.join(allowed_paths)} (dir and netfs pools only)."

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        parts = {key: data.get(key) or "" for key in self.PARTS}
        try:
            storage.pool_xml(data["type"], data["name"], **parts)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None
        try:
            storage.check_pool_location(data["type"], parts["target_path"], self.allowed_paths)
        except ValueError as exc:
            self.location_refused = str(exc)
            self.add_error("target_path" if data["type"] in storage.OPERATOR_POOL_TYPES else "type", str(exc))
        return data

    def parts(self) -> dict[str, str]:
        return {key: self.cleaned_data.get(key) or "" for key in self.PARTS}


class VolumeForm(forms.Form):
    name = forms.CharField(max_length=1000, strip=False, help_text="e.g. web01-disk1.qcow2")
    capacity = forms.CharField(max_length=40, label="Size", initial="10G",
                               help_text="A number with a unit: 512M, 20G, 1.5T.")
    format = forms.ChoiceField(choices=FORMAT_CHOICES, initial="qcow2")

    def clean_name(self) -> str:
        return _run(validate_volume_name, self.cleaned_data["name"])

    def clean_capacity(self) -> int:
        return _run(storage.validate_capacity, self.cleaned_data["capacity"])


class ResizeForm(forms.Form):
    capacity = forms.CharField(max_length=40, label="New size")

    def clean_capacity(self) -> int:
        return _run(storage.validate_capacity, self.cleaned_data["capacity"])


class CloneForm(forms.Form):
    new_name = forms.CharField(max_length=1000, strip=False, label="Name of the copy")

    def clean_new_name(self) -> str:
        return _run(validate_volume_name, self.cleaned_data["new_name"])


class UploadParamsForm(forms.Form):
    """Query parameters of a raw upload (the body is the file itself)."""

    name = forms.CharField(max_length=1000, strip=False)
    format = forms.ChoiceField(choices=FORMAT_CHOICES, initial="raw")

    def clean_name(self) -> str:
        return _run(validate_volume_name, self.cleaned_data["name"])


class NetworkForm(forms.Form):
    name = forms.CharField(max_length=200, strip=False)
    mode = forms.ChoiceField(choices=NETWORK_MODE_CHOICES, initial="nat")
    ipv4 = forms.CharField(max_length=64, required=False, label="Host address and prefix",
                           help_text="The host's side of the network, e.g. 192.168.150.1/24 "
                                     "(NAT, routed; optional for isolated; not used for bridge).")
    dhcp = forms.BooleanField(required=False, initial=True, label="Hand out addresses with DHCP")
    dhcp_start = forms.CharField(max_length=15, required=False, label="DHCP range: first address",
                                 help_text="Optional, e.g. 192.168.150.100; default: the whole subnet but the host.")
    dhcp_end = forms.CharField(max_length=15, required=False, label="DHCP range: last address",
                               help_text="Optional, e.g. 192.168.150.199 (give both or neither).")
    bridge = forms.CharField(max_length=64, required=False, label="Bridge",
                             help_text="For bridge mode: an existing host bridge such as br0. "
                                       "Otherwise optional; libvirt picks virbrN.")
    forward_dev = forms.CharField(max_length=64, required=False, label="Forward through device",
                                  help_text="NAT/routed: restrict to one host interface, e.g. eth0 (optional).")
    autostart = forms.BooleanField(required=False, help_text="Start with libvirtd (after you start it once).")

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        if data["mode"] == "bridge":
            data["ipv4"] = data["dhcp_start"] = data["dhcp_end"] = ""
        try:
            networks.network_xml(data["name"], data["mode"], ipv4=data["ipv4"], dhcp=data["dhcp"],
                                 bridge=data["bridge"], forward_dev=data["forward_dev"],
                                 dhcp_start=data["dhcp_start"], dhcp_end=data["dhcp_end"])
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None
        return data

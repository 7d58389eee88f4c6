from django import forms

from hosts.models import Host
from hosts.uri import InvalidHostURI, validate_uri
from hosts.zones import validate_zone


class HostForm(forms.ModelForm):
    class Meta:
        model = Host
        fields = ["name", "uri", "zone", "description", "enabled"]
        help_texts = {
            "uri": "qemu:///system for this machine; qemu+ssh://user@host/system for a remote host "
                   "(authenticates with the VirtDash service account's SSH key); test:///default for a demo.",
        }
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}

    def clean_zone(self) -> str:
        zone = self.cleaned_data["zone"].strip()
        validate_zone(zone)  # the model validates too; here first, on the stripped value
        return zone

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not name or any(ord(ch) < 32 for ch in name):
            raise forms.ValidationError("Enter a name without control characters.")
        return name

    def clean_uri(self) -> str:
        try:
            uri = validate_uri(self.cleaned_data["uri"])
        except InvalidHostURI as exc:
            raise forms.ValidationError(str(exc)) from None
        clash = Host.objects.filter(uri=uri).exclude(pk=self.instance.pk).first()
        if clash:
            raise forms.ValidationError(f"Host {clash.name} already uses this URI.")
        return uri

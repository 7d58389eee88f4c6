from django.db import models

from hosts.choices import HOST_STATUS_COLOURS, HostStatus
from hosts.zones import validate_zone


class Host(models.Model):
    """A hypervisor reached through one libvirt URI.

    Invariants: `uri` passed `hosts.uri.validate_uri` and is unique; `status`, `last_error`,
    `status_since` and `facts` are written only by the watcher and connection tests, so pages
    read them without touching libvirt. `facts` holds the last successful read (kept while the
    host is unreachable, with `facts_updated` telling its age). Removing a Host never touches
    its guests in libvirt. `zone` is blank (the default zone) or a slug passing
    `hosts.zones.validate_zone`; it picks the Celery queue of the host's jobs and which
    `manage.py watch --zone` watches the host (hosts/zones.py).
    """

    name = models.CharField(max_length=64, unique=True)
    uri = models.CharField(max_length=512, unique=True, verbose_name="libvirt URI")
    description = models.TextField(blank=True)
    enabled = models.BooleanField(default=True)
    zone = models.CharField(
        max_length=32, blank=True, default="", db_index=True, validators=[validate_zone],
        help_text="Blank for the default zone. A zone's jobs run on Celery workers started with "
                  "-Q zone.<zone>, and `manage.py watch --zone <zone>` watches its hosts.")

    status = models.CharField(max_length=16, choices=HostStatus.choices, default=HostStatus.UNKNOWN)
    status_since = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_checked = models.DateTimeField(null=True, blank=True)
    facts = models.JSONField(default=dict, blank=True)
    facts_updated = models.DateTimeField(null=True, blank=True)

    kvm_usable = models.BooleanField(
        null=True, blank=True,
        help_text="Set by a real boot test (manage.py check_kvm); unknown or False means guests use TCG")
    kvm_checked = models.DateTimeField(null=True, blank=True)

    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def status_colour(self) -> str:
        return HOST_STATUS_COLOURS.get(self.status, "grey")

    @property
    def guest_virt_type(self) -> str:
        """'kvm' only after a real boot test passed here: libvirt offering kvm is not enough."""
        return "kvm" if self.kvm_usable else "qemu"

    @property
    def is_local(self) -> bool:
        return self.uri.startswith(("qemu:///", "qemu+unix:///", "test:///", "test+unix:///"))

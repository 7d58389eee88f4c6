"""Define (and start) a small demo guest on a host that has none: TCG, no NIC, VNC on loopback."""

from django.core.management.base import BaseCommand, CommandError

from hosts.models import Host
from hosts.virt import domains
from hosts.virt.errors import VirtError
from virtdash.xml import Console, Domain, Graphics, Serial, Video

DEMO_NAME = "virtdash-demo"


def demo_domain_xml(name: str = DEMO_NAME, memory_mib: int = 96, virt_type: str = "qemu") -> str:
    """A diskless guest that boots to SeaBIOS; KVM only where a boot test proved it works."""
    dom = Domain.new(name, memory_mib, 1, virt_type)
    dom.title = "VirtDash demo guest"
    dom.description = "Created by VirtDash set-up: diskless, no network, boots to SeaBIOS."
    dom.add_device(Graphics.new("vnc", listen="127.0.0.1"))
    dom.add_device(Video.new("vga"))
    dom.add_device(Serial.new("pty"))
    dom.add_device(Console.new("pty", "serial"))
    return dom.to_string()


class Command(BaseCommand):
    help = "Define and start a demo guest on the local host if it has no guests."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="local")
        parser.add_argument("--no-start", action="store_true")

    def handle(self, *args, host, no_start, **options):
        target = Host.objects.filter(name=host).first()
        if target is None:
            raise CommandError(f"No host named {host!r}.")
        try:
            if domains.count(target.uri):
                self.stdout.write(f"{target.name} already has guests; no demo guest needed.")
                return
            uuid = domains.define(target.uri, demo_domain_xml(virt_type=target.guest_virt_type))
            if not no_start:
                domains.start(target.uri, uuid)
        except VirtError as exc:
            raise CommandError(f"Could not create the demo guest: {exc}") from None
        self.stdout.write(f"Defined demo guest {DEMO_NAME} on {target.name}.")

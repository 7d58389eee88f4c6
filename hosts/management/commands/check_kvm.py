"""`manage.py check_kvm [--host local]`: decide whether a host's guests may use KVM.

Boots the tiny test kernel (scripts/build-tiny-guest.sh) once with TCG, to prove the probe
works there, then with KVM. Only a KVM boot that reaches userspace sets Host.kvm_usable.
"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from hosts.models import Host
from hosts.virt.errors import VirtError
from hosts.virt.probe import boot_probe

DEFAULT_GUEST_DIR = "/var/cache/virtdash/tiny-guest"


class Command(BaseCommand):
    help = "Boot-test KVM on a host (local files of the tiny guest needed) and record the result."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="local")
        parser.add_argument("--guest-dir", default=DEFAULT_GUEST_DIR)
        parser.add_argument("--timeout", type=float, default=30)
        parser.add_argument("--force", action="store_true", help="Test again even if a result is recorded")

    def handle(self, *args, host, guest_dir, timeout, force, **options):
        target = Host.objects.filter(name=host).first()
        if target is None:
            raise CommandError(f"No host named {host!r}.")
        if target.kvm_checked and not force:
            self.stdout.write(f"{target.name}: KVM {'usable' if target.kvm_usable else 'not usable'} "
                              f"(tested {target.kvm_checked:%Y-%m-%d}; --force to test again).")
            return
        # The uncompressed PVH kernel boots in a few seconds under TCG; vmlinuz needs ~10 s more.
        kernel = next((Path(guest_dir) / k for k in ("vmlinux-pvh", "vmlinuz") if (Path(guest_dir) / k).exists()),
                      Path(guest_dir) / "vmlinuz")
        initrd = Path(guest_dir) / "initrd.gz"
        if not (kernel.exists() and initrd.exists()):
            raise CommandError(f"No tiny guest in {guest_dir}: run scripts/build-tiny-guest.sh first.")
        try:
            baseline = boot_probe(target.uri, "qemu", str(kernel), str(initrd), timeout)
            if not baseline.ok:
                self.stdout.write(f"The probe itself did not boot with TCG ({baseline.detail}); KVM stays unknown.")
                return
            result = boot_probe(target.uri, "kvm", str(kernel), str(initrd), timeout)
        except VirtError as exc:
            raise CommandError(f"Boot probe failed: {exc}") from None
        Host.objects.filter(pk=target.pk).update(kvm_usable=result.ok, kvm_checked=timezone.now())
        verdict = "KVM works: new guests use kvm" if result.ok else "KVM is not usable: new guests use TCG (qemu)"
        self.stdout.write(f"{target.name}: {verdict} ({result.detail}; TCG {baseline.detail}).")

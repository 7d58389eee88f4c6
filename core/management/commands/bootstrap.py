"""Idempotent first-run set-up: role groups, the admin user, the local hypervisor host."""

import os
import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand

from hosts.models import Host
from hosts.uri import validate_uri


class Command(BaseCommand):
    help = "Create the admin user (VIRTDASH_ADMIN_USER/PASSWORD) and register the local host."

    def add_arguments(self, parser):
        parser.add_argument("--local-uri", default=os.environ.get("VIRTDASH_LOCAL_URI", "qemu:///system"))
        parser.add_argument("--no-local-host", action="store_true")

    def handle(self, *args, local_uri, no_local_host, **options):
        for name in ("admin", "operator", "viewer"):
            Group.objects.get_or_create(name=name)
        self._admin()
        if not no_local_host:
            uri = validate_uri(local_uri)
            host, created = Host.objects.get_or_create(uri=uri, defaults={"name": "local"})
            if created:
                self.stdout.write(f"Registered host {host.name} ({uri}).")

    def _admin(self) -> None:
        User = get_user_model()
        username = os.environ.get("VIRTDASH_ADMIN_USER", "admin")
        if User.objects.filter(username=username).exists():
            return
        password = os.environ.get("VIRTDASH_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        user = User.objects.create_superuser(username=username, password=password, email="")
        user.groups.add(Group.objects.get(name="admin"))
        self.stdout.write(self.style.WARNING(
            f"Created admin user {username!r} with password {password!r}. Change it after logging in; "
            "it is shown only this once."))

from django.apps import AppConfig


class HostsConfig(AppConfig):
    name = "hosts"

    def ready(self) -> None:
        from hosts.leases import hooks
        from hosts.watcher import register_hooks

        register_hooks(hooks)  # DHCP leases of open network pages, re-read by the watcher

from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "reports"

    def ready(self) -> None:
        from hosts.watcher import register_hooks
        from reports.rollup import hooks

        register_hooks(hooks)  # daily per-guest roll-ups for long report periods

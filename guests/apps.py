from django.apps import AppConfig


class GuestsConfig(AppConfig):
    name = "guests"

    def ready(self) -> None:
        from guests.watch import hooks
        from hosts.watcher import register_hooks

        register_hooks(hooks)
        from guests import services_provision, tasks_provision  # noqa: F401  issue 5: config history, tasks

        register_hooks(services_provision.HISTORY_HOOKS)
        from guests import tasks_migrate  # noqa: F401  guest migration (Celery task)

from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Jobs, audit and access"

    def ready(self):
        from core import signals  # noqa: F401 - registers receivers

"""Keep Django's staff flags in step with the admin role, so admins can use the Admin pages."""

from django.contrib.auth import get_user_model
from django.db.models.signals import m2m_changed
from django.dispatch import receiver

from core.choices import Role


@receiver(m2m_changed, sender=get_user_model().groups.through)
def sync_admin_flags(sender, instance, action, **kwargs):
    if action not in {"post_add", "post_remove", "post_clear"} or not isinstance(instance, get_user_model()):
        return
    is_admin = instance.groups.filter(name=Role.ADMIN).exists()
    if instance.is_staff != is_admin or instance.is_superuser != is_admin:
        type(instance).objects.filter(pk=instance.pk).update(is_staff=is_admin, is_superuser=is_admin)
        instance.is_staff = instance.is_superuser = is_admin

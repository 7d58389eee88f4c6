"""Keep Django's staff flags in step with the admin role, so admins can use the Admin pages;
tell open live sockets when a user's access changes."""

from django.contrib.auth import get_user_model
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver

from core.choices import Role
from core.models import Grant


@receiver(m2m_changed, sender=get_user_model().groups.through)
def sync_admin_flags(sender, instance, action, **kwargs):
    if action not in {"post_add", "post_remove", "post_clear"} or not isinstance(instance, get_user_model()):
        return
    is_admin = instance.groups.filter(name=Role.ADMIN).exists()
    if instance.is_staff != is_admin or instance.is_superuser != is_admin:
        type(instance).objects.filter(pk=instance.pk).update(is_staff=is_admin, is_superuser=is_admin)
        instance.is_staff = instance.is_superuser = is_admin


# Live updates: whoever's access changes gets an "access" nudge on their own topic; their open
# sockets re-authorise every topic (core.consumers), so grants and revocations apply at once.

def _nudge(user_ids) -> None:
    from core import live

    for user_id in set(user_ids):
        live.publish([f"user.{user_id}"], "access", {})


@receiver(post_save, sender=Grant)
@receiver(post_delete, sender=Grant)
def grant_changed(sender, instance, **kwargs):
    _nudge([instance.user_id])


@receiver(m2m_changed, sender=get_user_model().groups.through)
def roles_changed(sender, instance, action, reverse, pk_set, **kwargs):
    if reverse and action == "pre_clear":  # group.user_set.clear(): post_clear names nobody
        instance._members_before_clear = list(instance.user_set.values_list("pk", flat=True))
    elif reverse and action == "post_clear":
        _nudge(getattr(instance, "_members_before_clear", []))
    elif action in {"post_add", "post_remove", "post_clear"}:
        _nudge([instance.pk] if not reverse else pk_set or [])


@receiver(post_delete, sender=get_user_model())
def user_deleted(sender, instance, **kwargs):
    _nudge([instance.pk])  # its open sockets re-authorise and close


@receiver(post_save, sender=get_user_model())
def user_changed(sender, instance, created, update_fields=None, **kwargs):
    if not created and set(update_fields or ()) != {"last_login"}:  # not on every login
        _nudge([instance.pk])

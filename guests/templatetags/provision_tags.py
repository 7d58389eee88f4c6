"""Template tags that put provisioning links on pages owned by others (guest detail and list)."""

from django import template

from core.policy import Action, can

register = template.Library()


@register.inclusion_tag("guests/provision/_actions.html", takes_context=True)
def provision_actions(context, guest):
    """Edit / Snapshots / Clone / History / XML, each only if the user may use it."""
    user = context["request"].user
    return {"guest": guest, "can_manage": can(user, Action.MANAGE, guest),
            "can_operate": can(user, Action.OPERATE, guest), "can_raw": can(user, Action.RAW_XML, guest)}


@register.inclusion_tag("guests/provision/_new_guest_button.html", takes_context=True)
def new_guest_button(context):
    """"+ New guest" for users with a global role allowed to manage (no per-host query on the list)."""
    return {"show": can(context["request"].user, Action.MANAGE)}

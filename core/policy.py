"""The one policy module: may this user do this action to this object?

Every view, API call, WebSocket consumer, console token and task asks here. A user's role is
the highest of their global role (Django groups admin/operator/viewer; superusers are admins)
and any Grant on the object's host or on the guest itself.
"""

from __future__ import annotations

from enum import StrEnum

from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet

from core.choices import ROLE_RANK, Role


class Action(StrEnum):
    VIEW = "view"  # see a host or guest, its graphs and reports
    CONSOLE_VIEW = "console_view"  # view-only VNC console
    CONSOLE = "console"  # interactive VNC or serial console
    OPERATE = "operate"  # power actions, snapshots, media changes
    MANAGE = "manage"  # create, edit, clone, delete guests; storage and networks
    RAW_XML = "raw_xml"  # edit raw domain XML: root-equivalent on the host
    ADMIN = "admin"  # add/edit/remove hosts, users and grants


REQUIRED_ROLE = {
    Action.VIEW: Role.VIEWER,
    Action.CONSOLE_VIEW: Role.VIEWER,
    Action.CONSOLE: Role.OPERATOR,
    Action.OPERATE: Role.OPERATOR,
    Action.MANAGE: Role.OPERATOR,
    Action.RAW_XML: Role.ADMIN,
    Action.ADMIN: Role.ADMIN,
}


def global_role(user) -> str | None:
    if not user or not user.is_authenticated or not user.is_active:
        return None
    if user.is_superuser:
        return Role.ADMIN
    cached = getattr(user, "_virtdash_role", False)
    if cached is not False:
        return cached
    names = set(user.groups.values_list("name", flat=True))
    role = next((r for r in (Role.ADMIN, Role.OPERATOR, Role.VIEWER) if r.value in names), None)
    user._virtdash_role = role
    return role


def _higher(a: str | None, b: str | None) -> str | None:
    return a if ROLE_RANK[a] >= ROLE_RANK[b] else b


def role_for(user, obj=None) -> str | None:
    """The user's effective role on `obj` (a Host, a Guest, or None for global)."""
    role = global_role(user)
    if role == Role.ADMIN or obj is None or not user.is_authenticated:
        return role
    from core.models import Grant

    kind = obj._meta.model_name
    if kind == "host":
        grants = Grant.objects.filter(user=user, host=obj)
    elif kind == "guest":
        grants = Grant.objects.filter(Q(guest=obj) | Q(host_id=obj.host_id), user=user)
    else:
        return role
    for granted in grants.values_list("role", flat=True):
        role = _higher(role, granted)
    return role


def can(user, action: Action, obj=None) -> bool:
    return ROLE_RANK[role_for(user, obj)] >= ROLE_RANK[REQUIRED_ROLE[action]]


def require(user, action: Action, obj=None) -> None:
    if not can(user, action, obj):
        raise PermissionDenied(f"You may not {action.value.replace('_', ' ')} this.")


def visible_hosts(user) -> QuerySet:
    from hosts.models import Host

    if global_role(user):
        return Host.objects.all()
    if not user.is_authenticated:
        return Host.objects.none()
    return Host.objects.filter(Q(grants__user=user) | Q(guests__grants__user=user)).distinct()


def visible_guests(user) -> QuerySet:
    from guests.models import Guest

    if global_role(user):
        return Guest.objects.all()
    if not user.is_authenticated:
        return Guest.objects.none()
    return Guest.objects.filter(Q(grants__user=user) | Q(host__grants__user=user)).distinct()


def can_see_anything(user) -> bool:
    return bool(global_role(user)) or (user.is_authenticated and user.grants.exists())

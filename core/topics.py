"""Which live-update topics a user may subscribe to, and which messages reach them (asks the policy).

Users with a global role see everything: their broad topics ("guests", "hosts") pass through.
Users who see guests only through Grants may subscribe to the broad topics too, but the consumer
forwards a message there only when `Access.permits` says its guest or host is visible to them —
so a guest that appears later on a granted host is followed, and nothing else leaks. When grants
or roles change, `core.signals` nudges "user.<id>" and the consumer re-authorises everything.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.policy import Action, can, global_role

FILTERED = frozenset({"guests", "hosts"})  # broad topics a grant-only user gets filtered


def _allowed(user, topic: str) -> bool:
    kind, _, ident = topic.partition(".")
    if kind in FILTERED and not ident:
        return global_role(user) is not None or (user.is_active and user.grants.exists())
    if kind == "jobs" and not ident:
        return global_role(user) is not None
    if kind == "host" and ident.isdigit():
        from hosts.models import Host

        host = Host.objects.filter(pk=int(ident)).first()
        return host is not None and can(user, Action.VIEW, host)
    if kind == "guest" and ident:
        from guests.models import Guest

        guest = Guest.objects.filter(uuid=ident).select_related("host").first()
        return guest is not None and can(user, Action.VIEW, guest)
    if kind == "job" and ident.isdigit():
        from core.models import Job

        job = Job.objects.filter(pk=int(ident)).first()
        return job is not None and (job.actor_id == user.pk or global_role(user) is not None)
    return kind == "user" and ident == str(user.pk)


def authorised_topics(user, topics: list[str]) -> tuple[list[str], list[str]]:
    allowed, refused = [], []
    for topic in dict.fromkeys(topics):
        (allowed if _allowed(user, topic) else refused).append(topic)
    return allowed, refused


@dataclass
class Access:
    """What a grant-only user may see, as of its computation: granted hosts and guests, and the
    host of every guest looked up so far (a guest on a granted host is visible)."""

    host_ids: set[int] = field(default_factory=set)
    guest_uuids: set[str] = field(default_factory=set)  # granted one by one
    visible_host_ids: set[int] = field(default_factory=set)  # granted, or holding a granted guest
    host_of: dict[str, int] = field(default_factory=dict)

    def quick(self, topic: str, data: dict) -> bool | None:
        """Decide from memory; None when the guest's host must be read first (`look_up`)."""
        if topic == "hosts":
            return data.get("id") in self.visible_host_ids
        uuid = data.get("uuid")
        if not uuid:  # a host-wide summary ("N guests changed")
            return data.get("host") in self.visible_host_ids
        if uuid in self.guest_uuids:
            return True
        if data.get("moved"):
            self.host_of.pop(uuid, None)
        if uuid in self.host_of:
            return self.host_of[uuid] in self.host_ids
        return None if self.host_ids else False

    def look_up(self, uuids: set[str]) -> dict[str, bool]:
        """One query for every guest `quick` could not decide; misses are remembered too (a hint
        names a guest only after its row is committed, so a miss is a guest that is gone)."""
        from guests.models import Guest

        hosts = dict(Guest.objects.filter(uuid__in=uuids).values_list("uuid", "host_id"))
        for uuid in uuids:
            self.host_of[uuid] = hosts.get(uuid)
        return {uuid: hosts.get(uuid) in self.host_ids for uuid in uuids}


def access_for(user) -> Access | None:
    """None for users with a global role (no filtering); else what their grants show them."""
    if global_role(user) is not None:
        return None
    from core.models import Grant
    from guests.models import Guest

    access = Access()
    if user.is_active:
        access.host_ids = set(Grant.objects.filter(user=user, host__isnull=False).values_list("host_id", flat=True))
        guests = list(Guest.objects.filter(grants__user=user).values_list("uuid", "host_id"))
        access.guest_uuids = {uuid for uuid, _ in guests}
        access.host_of = dict(Guest.objects.filter(host_id__in=access.host_ids).values_list("uuid", "host_id"))
        access.visible_host_ids = access.host_ids | {host_id for _, host_id in guests}
    return access

"""Which live-update topics a user may subscribe to (asks the policy module)."""

from __future__ import annotations

from core.policy import Action, can, global_role


def _allowed(user, topic: str) -> bool:
    kind, _, ident = topic.partition(".")
    if kind in {"hosts", "guests", "jobs"} and not ident:
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

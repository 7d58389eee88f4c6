"""Write audit entries: exactly one per mutating action or denied attempt."""

from __future__ import annotations

from core.choices import AuditResult
from core.models import AuditEntry


def record(actor, action: str, target=None, *, result: str = AuditResult.OK, detail: str = "",
           target_type: str = "", target_id: str = "", target_name: str = "") -> AuditEntry:
    """Record `actor` doing `action` to `target` (a model instance, or explicit type/id/name)."""
    if target is not None:
        target_type = target_type or target._meta.model_name
        target_id = target_id or str(getattr(target, "uuid", None) or target.pk)
        target_name = target_name or str(target)
    authenticated = actor is not None and getattr(actor, "is_authenticated", False)
    return AuditEntry.objects.create(
        actor=actor if authenticated else None,
        actor_name=actor.get_username() if authenticated else "system",
        action=action,
        target_type=target_type,
        target_id=target_id[:64],
        target_name=target_name[:255],
        result=result,
        detail=detail[:4000],
    )

"""Remember in Redis which task deliveries have done their one outside effect (an e-mail).

Celery acknowledges our tasks late so a crashed worker's task runs again; for an e-mail that
would mean a second copy. A delivery is keyed by the Celery task id, which a redelivery keeps.
"""

from __future__ import annotations

import logging

from core import shared_redis

log = logging.getLogger(__name__)
KEEP_SECONDS = 8 * 24 * 3600  # longer than any redelivery (the broker's visibility timeout)


class Delivery:
    def __init__(self, kind: str, task_id: str | None):
        self.key = f"virtdash:once:{kind}:{task_id}" if task_id else None

    def done(self) -> bool:
        """True when this delivery already did its effect; marks it started otherwise."""
        if self.key is None:  # called directly, not through Celery
            return False
        client = shared_redis.client()
        if client.set(self.key, "started", nx=True, ex=KEEP_SECONDS):
            return False
        if client.get(self.key) == b"done":
            return True
        log.warning("%s: an earlier attempt stopped before finishing; doing it again", self.key)
        return False

    def mark_done(self) -> None:
        if self.key is not None:
            shared_redis.client().set(self.key, "done", ex=KEEP_SECONDS)

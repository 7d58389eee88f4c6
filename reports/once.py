"""Remember in Redis which task deliveries have done their one outside effect (an e-mail).

Celery acknowledges our tasks late so a crashed worker's task runs again; for an e-mail that
would mean a second copy. A delivery is keyed by the Celery task id, which a redelivery keeps.
States: "started:<epoch>" while an attempt runs, "done" after the effect. A redelivery skips a
done delivery and one whose attempt is still within its time limit (the broker may redeliver a
long task early); an attempt older than that died, and the effect is done again (at least once).
When Redis cannot be asked, the effect is done anyway: a second copy beats none.
"""

from __future__ import annotations

import logging
import time

import redis

from core import shared_redis

log = logging.getLogger(__name__)
KEEP_SECONDS = 8 * 24 * 3600  # longer than any redelivery (the broker's visibility timeout)


class Delivery:
    def __init__(self, kind: str, task_id: str | None, time_limit: float):
        self.key = f"virtdash:once:{kind}:{task_id}" if task_id else None
        self.time_limit = time_limit

    def done(self) -> bool:
        """True when this delivery's effect is done or in progress elsewhere; else marks it started."""
        if self.key is None:  # called directly, not through Celery
            return False
        try:
            client = shared_redis.client()
            stamp = f"started:{time.time():.0f}"
            if client.set(self.key, stamp, nx=True, ex=KEEP_SECONDS):
                return False
            state = (client.get(self.key) or b"").decode()
            if state == "done":
                return True
            started = float(state.partition(":")[2] or 0)
            if time.time() - started < self.time_limit:
                log.warning("%s: another attempt started %.0f s ago is still within its time limit; skipping",
                            self.key, time.time() - started)
                return True
            log.warning("%s: an earlier attempt stopped before finishing; doing it again", self.key)
            client.set(self.key, stamp, ex=KEEP_SECONDS)
            return False
        except (redis.RedisError, ValueError) as exc:
            log.warning("%s: cannot tell whether it was done (%s); doing it", self.key, exc)
            return False

    def mark_done(self) -> None:
        if self.key is None:
            return
        try:
            shared_redis.client().set(self.key, "done", ex=KEEP_SECONDS)
        except redis.RedisError as exc:
            log.warning("%s: done, but Redis could not record it (%s)", self.key, exc)

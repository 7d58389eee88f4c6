"""Read what waits in a Celery queue on the Redis broker (the tests' view of job routing)."""

from __future__ import annotations

import base64
import json


def queued_job_ids(broker, queue: str, task: str) -> list[int]:
    """The job ids of the `task` messages waiting in `queue`, oldest first."""
    ids = []
    for raw in broker.lrange(queue, 0, -1):
        message = json.loads(raw)
        assert message["headers"]["task"] == task
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        ids.append(args[0])
    return ids

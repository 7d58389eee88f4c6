"""Publish live-update hints to browsers, after the transaction commits.

Messages are hints ("re-read this"), not payloads to trust. Each group has a sequence number
(Redis INCR) so a client that sees a gap, or reconnects, fetches a fresh snapshot instead of
silently missing a change: the channel layer can drop messages (shared/RELIABILITY.md).
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time

from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from django.db import transaction

from core import shared_redis

log = logging.getLogger(__name__)
_GROUP_SAFE = re.compile(r"[^A-Za-z0-9_.-]")
MERGE_SECONDS = 0.25
MERGE_ITEMS = 100  # distinct data of a merged message kept for per-user filtering; beyond: "items": None


def group_name(topic: str) -> str:
    """Channels group names allow only [A-Za-z0-9_.-] and < 100 characters."""
    return "live." + _GROUP_SAFE.sub("_", topic)[:90]


def _take_seqs(group: str, count: int) -> int:
    """Reserve `count` consecutive numbers of the group's sequence; returns the last."""
    return int(shared_redis.client().incrby(f"virtdash:seq:{group}", count))


class _Merger:
    """Per process and topic: the first hint goes out at once; hints within MERGE_SECONDS of the
    last one are merged and sent once at the interval's end, carrying the range of numbers they
    use ("first".."seq"). A watcher resync or a bulk job then publishes a few messages, not
    hundreds, and every web worker fans out a few instead of hundreds to every socket."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sent_at: dict[str, float] = {}
        self.held: dict[str, dict] = {}

    def offer(self, topic: str, event: str, data: dict) -> bool:
        """True: send now. False: merged into a held message that a timer sends."""
        now = time.monotonic()
        with self.lock:
            held = self.held.get(topic)
            if held is not None:
                held["count"] += 1
                held["data"], held["event"] = data, event
                if event not in held["events"]:
                    held["events"].append(event)
                if held["items"] is not None and data not in held["items"]:
                    held["items"] = held["items"] + [data] if len(held["items"]) < MERGE_ITEMS else None
                return False
            last = self.sent_at.get(topic, float("-inf"))
            if now - last >= MERGE_SECONDS:
                self.sent_at[topic] = now
                return True
            self.held[topic] = {"count": 1, "event": event, "events": [event], "data": data, "items": [data]}
        timer = threading.Timer(last + MERGE_SECONDS - now, self.flush, (topic,))
        timer.daemon = False  # a process that exits still sends what it held (≤ MERGE_SECONDS later)
        timer.start()
        return False

    def flush(self, topic: str) -> None:
        with self.lock:
            held = self.held.pop(topic, None)
            self.sent_at[topic] = time.monotonic()
        if held is not None:
            _send(topic, held["event"], held["data"], count=held["count"], events=held["events"],
                  items=held["items"])


_merger = _Merger()


def _send(topic: str, event: str, data: dict, *, count: int = 1, events: list[str] | None = None,
          items: list[dict] | None = None) -> None:
    """Number the hint and send it. From a thread whose event loop is running (async code that
    saved a model) both steps are scheduled on that loop: async_to_sync refuses to block a running
    loop, and the numbering's Redis call must not block it either."""
    layer = get_channel_layer()
    if layer is None:
        return
    group = group_name(topic)
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    if loop is not None:
        task = loop.create_task(_send_async(layer, group, topic, event, data, count, events, items))
        _pending.add(task)
        task.add_done_callback(_sent)
        return
    try:
        async_to_sync(layer.group_send)(group, _message(topic, _take_seqs(group, count), event, data, count,
                                                        events, items))
    except Exception as exc:  # Redis down: clients resync when it is back
        log.warning("live update to %s failed: %s", topic, exc)


def _message(topic: str, seq: int, event: str, data: dict, count: int, events: list[str] | None,
             items: list[dict] | None) -> dict:
    message = {"type": "live.message", "topic": topic, "seq": seq, "event": event, "data": data}
    if count > 1:  # the data of every merged hint goes along for the consumers' per-user filters
        message.update(first=seq - count + 1, events=events or [event], items=items)
    return message


async def _send_async(layer, group: str, topic: str, event: str, data: dict, count: int,
                      events: list[str] | None, items: list[dict] | None) -> None:
    seq = await sync_to_async(_take_seqs, thread_sensitive=False)(group, count)
    await layer.group_send(group, _message(topic, seq, event, data, count, events, items))


_pending: set = set()  # the loop keeps only weak references to tasks


def _sent(task) -> None:
    _pending.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.warning("live update failed: %s", task.exception())


def send_now(topics: list[str], event: str, data: dict | None = None) -> None:
    """Send to each topic's group now (or merged into the topic's burst); failures are logged,
    never raised (live is best effort)."""
    for topic in topics:
        if _merger.offer(topic, event, data or {}):
            _send(topic, event, data or {})


def publish(topics: list[str], event: str, data: dict | None = None) -> None:
    """Send after the current transaction commits (at once outside a transaction)."""
    transaction.on_commit(lambda: send_now(topics, event, data))


def guest_topics(host_id: int, uuid: str) -> list[str]:
    return ["guests", f"host.{host_id}", f"guest.{uuid}"]


def host_topics(host_id: int) -> list[str]:
    return ["hosts", f"host.{host_id}"]

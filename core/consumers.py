"""The one WebSocket a page opens: authenticated, origin-checked, relays live hints only.

The client sends {"subscribe": ["hosts", "guest.<uuid>", ...]}; each topic is authorised by
the policy module; refused topics are reported back, never joined. Authorisation is not frozen
at subscribe time: a "user.<id>" `access` nudge (grants or roles changed, see core.signals), or
a message arriving more than REAUTHORISE_SECONDS after the last check, re-authorises every topic
the client asked for (joining what is now allowed, leaving what is not) and re-sends the
{"subscribed", "refused"} reply (after a nudge, or when anything changed), on which live.js
re-reads the page; a deleted or disabled user's socket is closed. Broad topics of grant-only
users are filtered per message (core.topics.Access) and renumbered so that a filtered message is
not a gap, while a real gap upstream still shows as one.
"""

from __future__ import annotations

import asyncio
import json
import time

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.contrib.auth import get_user_model

from core import live
from core.topics import FILTERED, access_for, authorised_topics

MAX_TOPICS = 50  # per subscribe message
MAX_REQUESTED = 200  # per connection
REAUTHORISE_SECONDS = 60  # safety net should a nudge be lost
COALESCE_SECONDS = 0.25  # during a burst, at most one hint per topic per this interval
LATE_WINDOW = 50  # see _seen


def _authorise(user_id: int, topics: list[str]):
    """(allowed, refused, access) for the user as stored now (roles are cached per user object);
    None when the user was deleted or disabled."""
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        return None
    allowed, refused = authorised_topics(user, topics)
    return allowed, refused, access_for(user)


class LiveConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        self.user_id = user.pk
        self.own_topic = f"user.{user.pk}"
        self.requested: list[str] = []
        self.groups_joined: set[str] = set()
        self.access = None
        self.allowed: set[str] = {self.own_topic}
        self.signature = None
        self.checked = time.monotonic()
        self.upstream: dict[str, int] = {}  # topic → last seq seen in the group (filtered topics)
        self.local: dict[str, int] = {}  # topic → last seq sent to the client (filtered topics)
        self.held: dict[str, dict] = {}  # topic → the burst's hints merged into one, sent at the interval's end
        self.sent_at: dict[str, float] = {}  # topic → when a hint last went out
        self.flushers: set[asyncio.Task] = set()
        await self.channel_layer.group_add(live.group_name(self.own_topic), self.channel_name)  # for nudges
        self.groups_joined.add(live.group_name(self.own_topic))
        await self.accept()

    async def disconnect(self, code):
        for task in getattr(self, "flushers", ()):
            task.cancel()
        for group in getattr(self, "groups_joined", ()):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        try:
            request = json.loads(text_data or "{}")
            topics = [str(t) for t in request.get("subscribe", [])][:MAX_TOPICS]
        except (ValueError, AttributeError, TypeError):
            await self.send(json.dumps({"error": "bad request"}))
            return
        for topic in topics:
            if topic not in self.requested and len(self.requested) < MAX_REQUESTED:
                self.requested.append(topic)
        result = await self._reauthorise()
        if result is not None:
            allowed, refused, _ = result
            await self.send(json.dumps({"subscribed": [t for t in allowed if t in topics],
                                        "refused": [t for t in refused if t in topics]}))

    async def _reauthorise(self) -> tuple[list[str], list[str], bool] | None:
        """Join what is allowed now, leave what is not: (allowed, refused, anything changed?).
        None when the user is gone or disabled: the socket is closed."""
        result = await database_sync_to_async(_authorise)(self.user_id, self.requested)
        if result is None:
            self.allowed = set()
            await self.close(code=4403)
            return None
        allowed, refused, self.access = result
        self.checked = time.monotonic()
        wanted = {live.group_name(t) for t in allowed} | {live.group_name(self.own_topic)}
        for group in wanted - self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        for group in self.groups_joined - wanted:
            await self.channel_layer.group_discard(group, self.channel_name)
        signature = (wanted, self.access and (frozenset(self.access.host_ids), frozenset(self.access.guest_uuids)))
        changed, self.signature = signature != self.signature, signature
        self.groups_joined = wanted
        self.allowed = set(allowed) | {self.own_topic}
        return allowed, refused, changed

    async def live_message(self, message):
        topic = message["topic"]
        nudged = topic == self.own_topic and message["event"] == "access"
        if nudged or time.monotonic() - self.checked > REAUTHORISE_SECONDS:
            result = await self._reauthorise()
            if result is not None and (nudged or result[2]):  # live.js re-reads the page on this reply
                await self.send(json.dumps({"subscribed": result[0], "refused": result[1]}))
        if topic not in self.allowed:
            return  # left meanwhile (a message already on its way when the group was discarded)
        out = {k: message[k] for k in ("topic", "seq", "event", "data", "first", "events") if k in message}
        if self.access is not None and topic in FILTERED:
            first = message.get("first", message["seq"])
            items = message["items"] if "items" in message else [message.get("data") or {}]
            if items is None:  # too many merged to filter: say only "re-read", as a gap does
                out.update(data={}, gap=True)
            else:
                permitted = await self._permitted(topic, [item or {} for item in items])
                if not permitted:
                    if self._seen(topic, message["seq"], first):  # lost ones may have been theirs
                        self.local[topic] = self.local.get(topic, 0) + 2
                        await self._emit({"topic": topic, "seq": self.local[topic], "event": "gap", "data": {},
                                          "gap": True})
                    return
                out["data"] = permitted[-1]
            out["seq"] = self._renumber(topic, message["seq"], first)
            out.pop("first", None)
        await self._emit(out)

    async def _emit(self, out: dict) -> None:
        """Send a hint at once, or, within COALESCE_SECONDS of the topic's last one, merge it into one
        sent at the interval's end: {"first": seq of the first merged, "seq": the last, "events": [...],
        "gap": true if numbers were missing in between}. A burst of 300 hints then costs each browser a
        few frames instead of 300, and live.js still sees every number accounted for."""
        topic = out["topic"]
        now = time.monotonic()
        held = self.held.get(topic)
        if held is None and now - self.sent_at.get(topic, float("-inf")) >= COALESCE_SECONDS:
            self.sent_at[topic] = now
            await self.send(json.dumps(out))
            return
        if held is None:
            self.held[topic] = {"first": out["seq"], "events": [out["event"]], **out}
            task = asyncio.create_task(self._flush(topic, self.sent_at[topic] + COALESCE_SECONDS - now))
            self.flushers.add(task)
            task.add_done_callback(self.flushers.discard)
            return
        # Publishers race, so numbers may arrive a little out of order: a late one merges silently.
        gap = held.get("gap", False) or out.get("gap", False) or out.get("first", out["seq"]) > held["seq"] + 1
        events = held["events"] + [e for e in out.get("events", [out["event"]]) if e not in held["events"]]
        self.held[topic] = {**out, "first": held["first"], "seq": max(held["seq"], out["seq"]), "events": events,
                            **({"gap": True} if gap else {})}

    async def _flush(self, topic: str, delay: float) -> None:
        await asyncio.sleep(max(0.0, delay))
        held = self.held.pop(topic, None)
        if held is not None and topic in self.allowed:
            self.sent_at[topic] = time.monotonic()
            await self.send(json.dumps(held))

    async def _permitted(self, topic: str, items: list[dict]) -> list[dict]:
        """The items this user may see: decided from memory, the rest with one query."""
        verdicts = [self.access.quick(topic, item) for item in items]
        unknown = {str(item.get("uuid")) for item, verdict in zip(items, verdicts, strict=True) if verdict is None}
        if unknown:
            found = await database_sync_to_async(self.access.look_up)(unknown)
            verdicts = [found.get(str(item.get("uuid")), False) if verdict is None else verdict
                        for item, verdict in zip(items, verdicts, strict=True)]
        return [item for item, verdict in zip(items, verdicts, strict=True) if verdict]

    def _seen(self, topic: str, seq: int, first: int) -> bool:
        """Track the group's own numbering (a merged message covers first..seq); True when
        messages were lost before this one. Publishers race, so a number up to LATE_WINDOW below
        the highest seen is a late arrival, not a gap; further below, the counter was reset."""
        previous = self.upstream.get(topic)
        if previous is not None and previous - LATE_WINDOW < seq <= previous:
            return False
        self.upstream[topic] = seq
        return previous is not None and first != previous + 1

    def _renumber(self, topic: str, seq: int, first: int) -> int:
        """The client's numbering of a filtered topic: +1 per forwarded message, +2 after a real gap."""
        self.local[topic] = self.local.get(topic, 0) + (2 if self._seen(topic, seq, first) else 1)
        return self.local[topic]

"""The one WebSocket a page opens: authenticated, origin-checked, relays live hints only.

The client sends {"subscribe": ["hosts", "guest.<uuid>", ...]}; each topic is authorised by
the policy module; refused topics are reported back, never joined.
"""

from __future__ import annotations

import json

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from core import live
from core.topics import authorised_topics

MAX_TOPICS = 50


class LiveConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        self.groups_joined: set[str] = set()
        await self.accept()

    async def disconnect(self, code):
        for group in getattr(self, "groups_joined", ()):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        try:
            request = json.loads(text_data or "{}")
            topics = [str(t) for t in request.get("subscribe", [])][:MAX_TOPICS]
        except (ValueError, AttributeError, TypeError):
            await self.send(json.dumps({"error": "bad request"}))
            return
        allowed, refused = await database_sync_to_async(authorised_topics)(self.scope["user"], topics)
        for topic in allowed:
            group = live.group_name(topic)
            if group not in self.groups_joined:
                await self.channel_layer.group_add(group, self.channel_name)
                self.groups_joined.add(group)
        await self.send(json.dumps({"subscribed": allowed, "refused": refused}))

    async def live_message(self, message):
        await self.send(json.dumps({k: message[k] for k in ("topic", "seq", "event", "data")}))

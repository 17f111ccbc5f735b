"""WebSocket consumer: one per open page; joins the visitor's group only with a valid token."""
from __future__ import annotations

from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from django.core.exceptions import ImproperlyConfigured

from .engine import recommend, slot_config
from .groups import visitor_group
from .services.push import next_seq, open_slots
from .tokens import InvalidToken, read_token

CLOSE_BAD_TOKEN = 4401  # application close codes (4000-4999): the client should not retry with it
CLOSE_BAD_MESSAGE = 4400
MAX_MESSAGE_BYTES = 4096


class RecommendationsConsumer(AsyncJsonWebsocketConsumer):
    """Client messages: {"type": "subscribe", "slots": [...]}, {"type": "resync"}.
    Server messages: {"type": "recs", "slot", "seq", "recs": {...}}."""

    async def connect(self):
        query = parse_qs(self.scope.get("query_string", b"").decode())
        try:
            self.visitor_id = read_token((query.get("token") or [""])[0])
        except InvalidToken:
            await self.accept()
            await self.close(code=CLOSE_BAD_TOKEN)
            return
        self.group = visitor_group(self.visitor_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        slots = [s for s in (query.get("slots") or ["for-you"])[0].split(",") if s][:8]
        await self._resync(slots)

    async def disconnect(self, code):
        if getattr(self, "group", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        if bytes_data is not None or text_data is None or len(text_data) > MAX_MESSAGE_BYTES:
            await self.close(code=CLOSE_BAD_MESSAGE)
            return
        try:
            await super().receive(text_data=text_data, **kwargs)
        except (ValueError, RecursionError):  # RecursionError: JSON nested ~1,000 deep
            await self.close(code=CLOSE_BAD_MESSAGE)

    async def receive_json(self, content, **kwargs):
        if not isinstance(content, dict):
            await self.close(code=CLOSE_BAD_MESSAGE)
            return
        kind = content.get("type")
        slots = content.get("slots") or ["for-you"]
        if kind in ("subscribe", "resync") and isinstance(slots, list) and all(isinstance(s, str) for s in slots):
            await self._resync(slots[:8])
        else:
            await self.close(code=CLOSE_BAD_MESSAGE)

    async def _resync(self, slots: list[str]) -> None:
        # Only slots that exist are remembered: every remembered slot is recomputed on each
        # of the visitor's events, so made-up names would make each event cost more.
        known = []
        for slot in slots:
            try:
                await database_sync_to_async(slot_config)(slot)
                known.append(slot)
            except ImproperlyConfigured:
                await self.send_json({"type": "error", "slot": slot[:64], "error": "unknown slot"})
        slots = await database_sync_to_async(open_slots)(self.visitor_id, known)
        for slot in slots:
            try:
                recs = await database_sync_to_async(recommend)(self.visitor_id, slot)
            except Exception:  # unknown slot names etc.: tell the client, keep the socket
                await self.send_json({"type": "error", "slot": slot, "error": "unknown slot"})
                continue
            seq = await database_sync_to_async(next_seq)(self.visitor_id)
            await self.send_json({"type": "recs", "slot": slot, "seq": seq, "recs": recs.as_dict()})

    async def recs_updated(self, event):
        await self.send_json({"type": "recs", "slot": event["slot"], "seq": event["seq"], "recs": event["recs"]})

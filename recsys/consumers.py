"""WebSocket consumer: one per open page; joins the visitor's group only with a valid token."""
from __future__ import annotations

import json
from urllib.parse import parse_qs

import orjson
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.consumer import get_handler_name

from .groups import visitor_group
from .services import push
from .tokens import InvalidToken, read_token

CLOSE_BAD_TOKEN = 4401  # application close codes (4000-4999): the client should not retry with it
CLOSE_BAD_MESSAGE = 4400
MAX_MESSAGE_BYTES = 4096
MAX_KEYS_PER_SOCKET = 8


def _int(value, default: int = 0) -> int:
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return default


class RecommendationsConsumer(AsyncJsonWebsocketConsumer):
    """One socket per page, for every widget on it.

    Query: ``token`` (signed visitor id), ``slots`` (comma-separated slot keys: ``for-you``,
    ``similar:42``), ``seq`` (the last message number the page saw, when reconnecting).
    Client messages: ``{"type": "subscribe"|"resync", "slots": [...], "seq": n}``, ``{"type": "ping"}``.
    Server messages: ``{"type": "recs", "key", "slot", "seq", "recs": {...}, "resync"?: true}``,
    ``{"type": "error", "key", "slot", "error"}``, ``{"type": "pong"}``.
    """

    keys: list[str]
    visitor_id = ""
    # Channel-layer messages whose handlers only forward what they carry. Channels' dispatch
    # runs ``close_old_connections`` on a thread before every handler (a thread hop, waiting
    # for the GIL behind the ingest threads under load); these never touch the database, and
    # every handler that does goes through ``database_sync_to_async``, which closes old
    # connections itself.
    NO_DATABASE = frozenset({"recs.updated", "liverec.probe"})

    async def dispatch(self, message):
        if message.get("type") in self.NO_DATABASE:
            await getattr(self, get_handler_name(message))(message)
        else:
            await super().dispatch(message)

    @classmethod
    async def encode_json(cls, content):
        # orjson: a pushed list (8 items with reasons, ~3 kB) took the stdlib's encoder ~100 us
        # here, orjson 5. orjson refuses what is not valid UTF-8 (an unpaired surrogate a
        # client sent as a slot name, echoed in an error): the stdlib escapes it.
        try:
            return orjson.dumps(content).decode()
        except orjson.JSONEncodeError:
            return json.dumps(content)

    async def connect(self):
        query = parse_qs(self.scope.get("query_string", b"").decode())
        try:
            self.visitor_id = read_token((query.get("token") or [""])[0])
        except InvalidToken:
            await self.accept()
            await self.close(code=CLOSE_BAD_TOKEN)
            return
        self.keys = push.clean_slot_keys((query.get("slots") or [""])[0].split(",")) or list(push.DEFAULT_SLOTS)
        self.group = visitor_group(self.visitor_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        self.online = True
        seen = _int((query.get("seq") or ["0"])[0])
        for msg in await database_sync_to_async(push.connected)(self.visitor_id, self.keys, seen):
            await self.send_json(msg)

    async def disconnect(self, code):
        if getattr(self, "group", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)
        if getattr(self, "online", False):
            await database_sync_to_async(push.socket_closed)(self.visitor_id)

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        if bytes_data is not None or text_data is None or len(text_data) > MAX_MESSAGE_BYTES:
            await self.close(code=CLOSE_BAD_MESSAGE)
            return
        try:
            await super().receive(text_data=text_data, **kwargs)
        except (ValueError, RecursionError):  # RecursionError: JSON nested ~1,000 deep
            await self.close(code=CLOSE_BAD_MESSAGE)

    async def receive_json(self, content, **kwargs):
        if not isinstance(content, dict) or not getattr(self, "online", False):
            await self.close(code=CLOSE_BAD_MESSAGE)
            return
        kind = content.get("type")
        if kind == "ping":
            await database_sync_to_async(push.socket_alive)(self.visitor_id, self.keys)
            await self.send_json({"type": "pong"})
            return
        slots = content.get("slots", self.keys)
        keys = push.clean_slot_keys(slots)
        if kind in ("subscribe", "resync") and keys and len(keys) == len(slots):
            if kind == "subscribe":
                self.keys = (self.keys + [k for k in keys if k not in self.keys])[:MAX_KEYS_PER_SOCKET]
                await database_sync_to_async(push.open_slots)(self.visitor_id, self.keys)
            await self._resync([k for k in keys if k in self.keys], _int(content.get("seq")))
        else:
            await self.close(code=CLOSE_BAD_MESSAGE)

    async def _resync(self, keys: list[str], seen: int) -> None:
        for msg in await database_sync_to_async(push.resync)(self.visitor_id, keys, seen):
            await self.send_json(msg)

    async def recs_updated(self, event):
        if event.get("key", event["slot"]) in self.keys:
            await self.send_json({k: v for k, v in event.items() if k != "type"} | {"type": "recs"})

    async def liverec_probe(self, event):
        await self.send_json({"type": "probe", "nonce": event["nonce"]})

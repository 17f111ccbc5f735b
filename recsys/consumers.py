"""WebSocket consumer: one per open page; joins the visitor's group only with a valid token."""
from __future__ import annotations

import asyncio
import json
from urllib.parse import parse_qs

import orjson
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.consumer import get_handler_name

from .groups import visitor_group
from .services import push, pushstate
from .tokens import InvalidToken, read_token

CLOSE_BAD_TOKEN = 4401  # application close codes (4000-4999): the client should not retry with it
CLOSE_BAD_MESSAGE = 4400
MAX_MESSAGE_BYTES = 4096
MAX_KEYS_PER_SOCKET = 8
# A socket that has not sent its token this long after opening is closed (4401).
AUTH_TIMEOUT_SECONDS = 10.0
SEQ_ERROR = f"seq must be an integer from 0 to {pushstate.MAX_SEQ}"


class BadNumber(ValueError):
    pass


def clean_seq(value) -> int:
    """A message number a client says it saw: absent is 0; anything but an integer in
    [0, pushstate.MAX_SEQ] (a bool, a float, a string of digits, 2**63 - 1, 10**30) raises
    BadNumber. Bounded because it is written into the visitor's counter, which every later
    change increments."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= pushstate.MAX_SEQ:
        raise BadNumber(SEQ_ERROR)
    return value


def _query_seq(value: str) -> int:
    """``clean_seq`` of the URL's ``seq`` (digits only)."""
    if not value:
        return 0
    if not value.isascii() or not value.isdigit() or len(value) > 16:
        raise BadNumber(SEQ_ERROR)
    return clean_seq(int(value))


class RecommendationsConsumer(AsyncJsonWebsocketConsumer):
    """One socket per page, for every widget on it.

    Query: ``slots`` (comma-separated slot keys: ``for-you``, ``similar:42``), ``seq`` (the last
    message number the page saw, when reconnecting). No token in the URL (proxies and access
    logs keep URLs): the first client message is ``{"type": "auth", "token": "..."}``; a socket
    with ``token`` in its URL, a bad or expired token, or no token within
    ``AUTH_TIMEOUT_SECONDS`` is closed with 4401 and the reason.
    Client messages then: ``{"type": "subscribe"|"resync", "slots": [...], "seq": n}``, ``{"type": "ping"}``.
    Server messages: ``{"type": "recs", "key", "slot", "seq", "recs": {...}, "resync"?: true}``,
    ``{"type": "error", "key", "slot", "error"}``, ``{"type": "error", "error"}`` (a message
    refused; the socket stays open), ``{"type": "pong"}``.
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
        await self.accept()
        if "token" in query:
            await self.close(code=CLOSE_BAD_TOKEN, reason="token in the URL: send it as the first message")
            return
        self.keys = push.clean_slot_keys((query.get("slots") or [""])[0].split(",")) or list(push.DEFAULT_SLOTS)
        try:
            self.seen = _query_seq((query.get("seq") or [""])[0])
        except BadNumber as exc:
            await self.send_json({"type": "error", "error": str(exc)})
            self.seen = 0
        self.deadline = asyncio.get_running_loop().call_later(
            AUTH_TIMEOUT_SECONDS, lambda: asyncio.ensure_future(self._auth_timed_out()))

    async def _auth_timed_out(self):
        if not getattr(self, "online", False) and not getattr(self, "_closing", False):
            self._closing = True
            await self.close(code=CLOSE_BAD_TOKEN, reason="no token")

    async def _authenticate(self, content: dict):
        """The first message: ``{"type": "auth", "token", "slots"?, "seq"?}`` joins the visitor's
        group and sends the page's current lists."""
        self.deadline.cancel()
        try:
            if content.get("type") != "auth" or not isinstance(content.get("token"), str):
                raise InvalidToken("the first message must be {\"type\": \"auth\", \"token\": ...}")
            self.visitor_id = read_token(content["token"])
        except InvalidToken as exc:
            self._closing = True
            await self.close(code=CLOSE_BAD_TOKEN, reason=str(exc)[:120])  # a close reason is at most 123 bytes
            return
        if "slots" in content:
            self.keys = push.clean_slot_keys(content["slots"]) or self.keys
        if "seq" in content:
            try:
                self.seen = clean_seq(content["seq"])
            except BadNumber as exc:
                await self.send_json({"type": "error", "error": str(exc)})
        self.group = visitor_group(self.visitor_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        self.online = True
        for msg in await database_sync_to_async(push.connected)(self.visitor_id, self.keys, self.seen):
            await self.send_json(msg)

    async def disconnect(self, code):
        self._closing = True
        if getattr(self, "deadline", None):
            self.deadline.cancel()
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
        if not isinstance(content, dict):
            await self.close(code=CLOSE_BAD_MESSAGE)
            return
        if not getattr(self, "online", False):
            if getattr(self, "_closing", False):
                return
            await self._authenticate(content)
            return
        kind = content.get("type")
        if kind == "ping":
            await database_sync_to_async(push.socket_alive)(self.visitor_id, self.keys)
            await self.send_json({"type": "pong"})
            return
        slots = content.get("slots", self.keys)
        keys = push.clean_slot_keys(slots)
        if kind in ("subscribe", "resync") and keys and len(keys) == len(slots):
            try:
                seen = clean_seq(content.get("seq"))
            except BadNumber as exc:
                # Refused, not closed: the socket keeps its lists and pushes (a widget that
                # reconnected on every bad number would loop).
                await self.send_json({"type": "error", "error": str(exc)})
                return
            if kind == "subscribe":
                self.keys = (self.keys + [k for k in keys if k not in self.keys])[:MAX_KEYS_PER_SOCKET]
                await database_sync_to_async(push.open_slots)(self.visitor_id, self.keys)
            await self._resync([k for k in keys if k in self.keys], seen)
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

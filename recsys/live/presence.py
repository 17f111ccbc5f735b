"""Who is listening: each socket registers its visitor as online and the slot keys on its page
("for-you", or "similar:42" for a slot shown next to item 42). Only online visitors are
re-ranked, so a background of anonymous traffic costs a fold, not a ranking."""
from __future__ import annotations

import time

from django.core.cache import cache

from . import pushstate
from .keys import MAX_SLOT_KEYS, visitor_key

DEFAULT_SLOTS = ("for-you",)
# A socket keeps its visitor "online" this long after connecting or its last ping (heartbeat):
# the widget pings every 20 s (widget.js PING_MS), so a socket lost without a close (a crashed
# ASGI server, a laptop lid shut) leaves its visitor marked online for at most a minute, and
# the realtime cycles stop ranking for a page nobody sees.
PRESENCE_TTL = 60
OPEN_SLOTS_TTL = PRESENCE_TTL  # a page's open-slot registry lives exactly as long as its presence


def socket_opened(visitor_id: str, keys: list[str]) -> list[str]:
    """A socket for this visitor opened showing ``keys``: count it and register its slots."""
    online = visitor_key("online", visitor_id)
    cache.add(online, 0, PRESENCE_TTL)
    try:
        cache.incr(online)
    except ValueError:  # expired between add and incr
        cache.set(online, 1, PRESENCE_TTL)
    cache.touch(online, PRESENCE_TTL)
    return open_slots(visitor_id, keys)


def socket_alive(visitor_id: str, keys: list[str]) -> None:
    """A ping from an open socket: keep the visitor online and its slots registered."""
    online = visitor_key("online", visitor_id)
    if not cache.touch(online, PRESENCE_TTL):
        cache.add(online, 1, PRESENCE_TTL)
    pushstate.touch_seq(visitor_key("seq", visitor_id))
    open_slots(visitor_id, keys)


def socket_closed(visitor_id: str) -> None:
    online = visitor_key("online", visitor_id)
    try:
        left = cache.decr(online)
    except ValueError:  # already expired
        left = 0
    if left <= 0:
        cache.delete_many([online, visitor_key("slots", visitor_id)])


def open_slots(visitor_id: str, keys: list[str] | None = None) -> list[str]:
    """Register (when given) and return the slot keys on the visitor's open pages ([] when offline).

    The registry maps each key to when a socket last showed it; two tabs registering at once
    may overwrite each other, so a writer reads back and merges again (no lost slot).
    """
    registry_key = visitor_key("slots", visitor_id)
    if keys:
        for _ in range(3):
            now = time.time()
            known = {k: t for k, t in (cache.get(registry_key) or {}).items() if now - t < PRESENCE_TTL}
            known.update({k: now for k in keys})
            known = dict(sorted(known.items(), key=lambda kv: -kv[1])[:MAX_SLOT_KEYS])
            cache.set(registry_key, known, PRESENCE_TTL)
            if set(keys) <= set(cache.get(registry_key) or {}):
                break
        return sorted(known)
    return open_slots_many([visitor_id])[visitor_id]


def open_slots_many(visitor_ids: list[str]) -> dict[str, list[str]]:
    """``open_slots`` (read) of several visitors, in one round trip."""
    keys = {v: (visitor_key("online", v), visitor_key("slots", v)) for v in visitor_ids}
    got = cache.get_many([k for pair in keys.values() for k in pair])
    return {v: sorted(got.get(registry) or DEFAULT_SLOTS) if got.get(online) else []
            for v, (online, registry) in keys.items()}

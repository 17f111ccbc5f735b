"""Recompute a visitor's open slots and push them over the channel layer when they changed."""
from __future__ import annotations

import json

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.cache import cache

from ..engine import recommend
from ..groups import visitor_group

DEFAULT_SLOTS = ("for-you",)
# Open slots are registered by sockets for this long, refreshed on each (re)connect.
OPEN_SLOTS_TTL = 3600


def _slots_key(visitor_id: str) -> str:
    return f"liverec:slots:{visitor_group(visitor_id)}"


def open_slots(visitor_id: str, slots: list[str] | None = None) -> list[str]:
    """Remember (when given) and return which slots a visitor has on screen."""
    key = _slots_key(visitor_id)
    if slots:
        known = set(cache.get(key) or DEFAULT_SLOTS) | set(slots)
        cache.set(key, sorted(known), OPEN_SLOTS_TTL)
        return sorted(known)
    return list(cache.get(key) or DEFAULT_SLOTS)


def next_seq(visitor_id: str) -> int:
    key = f"liverec:seq:{visitor_group(visitor_id)}"
    cache.add(key, 0, None)
    return cache.incr(key)


def refresh(visitor_id: str, *, force: bool = False) -> list[str]:
    """Recompute each open slot; push the ones whose list changed. Returns slots pushed."""
    layer = get_channel_layer()
    pushed = []
    for slot in open_slots(visitor_id):
        recs = recommend(visitor_id, slot)
        sig_key = f"liverec:sig:{visitor_group(visitor_id)}:{slot}"
        signature = json.dumps(recs.signature())
        if not force and cache.get(sig_key) == signature:
            continue
        cache.set(sig_key, signature, OPEN_SLOTS_TTL)
        message = {"type": "recs.updated", "slot": slot, "seq": next_seq(visitor_id), "recs": recs.as_dict()}
        async_to_sync(layer.group_send)(visitor_group(visitor_id), message)
        pushed.append(slot)
    return pushed

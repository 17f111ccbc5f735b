"""Recompute a visitor's open slots and push them over the channel layer when they changed.

Who is listening: each socket registers its visitor as online and the slot keys on its page
("for-you", or "similar:42" for a slot shown next to item 42). Only online visitors are
recomputed, so a background of anonymous traffic costs a fold, not a ranking.

Bursts: the first change after a quiet spell is pushed at once (the leading edge keeps the
freshness of a single click at the cost of one ranking); changes that follow within
``PUSH_DEBOUNCE_MS`` of each other are folded into one trailing push, sent when the visitor
has been quiet for that long, or after ``PUSH_MAX_DELAY_MS`` under a continuous stream.
Ten quick clicks therefore cause one or two pushes.
"""
from __future__ import annotations

import json
import logging
import time
from typing import Any

from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured

from ..conf import settings
from ..engine import recommend
from ..groups import visitor_group
from . import layer, serving

logger = logging.getLogger(__name__)

DEFAULT_SLOTS = ("for-you",)
# A socket keeps its visitor "online" this long after connecting or its last ping; the widget
# pings every 4 minutes, so a crashed ASGI server leaks presence for at most this long.
PRESENCE_TTL = 15 * 60
OPEN_SLOTS_TTL = PRESENCE_TTL  # (foundation name)
MAX_SLOT_KEYS = 16
MAX_SLOT_KEY_LENGTH = 200
# Burst state lives a little longer than the longest hold, so a lost trailing task
# only delays the next push, never blocks it.
BURST_STATE_TTL = 30


def _key(kind: str, visitor_id: str) -> str:
    return f"liverec:{kind}:{visitor_group(visitor_id)}"


# --- slot keys ---------------------------------------------------------------------------------

def slot_key(slot: str, item_id: str = "") -> str:
    return f"{slot}:{item_id}" if item_id else slot


def parse_slot_key(key: str) -> tuple[str, dict[str, Any]]:
    """``"similar:42"`` -> ``("similar", {"item_id": "42"})``; ``"for-you"`` -> ``("for-you", {})``."""
    slot, _, item_id = key.partition(":")
    return slot, ({"item_id": item_id} if item_id else {})


def clean_slot_keys(keys: Any) -> list[str]:
    """The valid slot keys of a client's list (strings, bounded), in order, without duplicates."""
    if not isinstance(keys, list):
        return []
    out: list[str] = []
    for k in keys:
        if isinstance(k, str) and 0 < len(k) <= MAX_SLOT_KEY_LENGTH and k not in out:
            out.append(k)
    return out[:8]


# --- presence ----------------------------------------------------------------------------------

def socket_opened(visitor_id: str, keys: list[str]) -> list[str]:
    """A socket for this visitor opened showing ``keys``: count it and register its slots."""
    online = _key("online", visitor_id)
    cache.add(online, 0, PRESENCE_TTL)
    try:
        cache.incr(online)
    except ValueError:  # expired between add and incr
        cache.set(online, 1, PRESENCE_TTL)
    cache.touch(online, PRESENCE_TTL)
    return open_slots(visitor_id, keys)


def socket_alive(visitor_id: str, keys: list[str]) -> None:
    """A ping from an open socket: keep the visitor online and its slots registered."""
    online = _key("online", visitor_id)
    if not cache.touch(online, PRESENCE_TTL):
        cache.add(online, 1, PRESENCE_TTL)
    open_slots(visitor_id, keys)


def socket_closed(visitor_id: str) -> None:
    online = _key("online", visitor_id)
    try:
        left = cache.decr(online)
    except ValueError:  # already expired
        left = 0
    if left <= 0:
        cache.delete_many([online, _key("slots", visitor_id)])


def is_online(visitor_id: str) -> bool:
    return bool(cache.get(_key("online", visitor_id)))


def open_slots(visitor_id: str, keys: list[str] | None = None) -> list[str]:
    """Register (when given) and return the slot keys on the visitor's open pages ([] when offline).

    The registry maps each key to when a socket last showed it; two tabs registering at once
    may overwrite each other, so a writer reads back and merges again (no lost slot).
    """
    registry_key = _key("slots", visitor_id)
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
    if not is_online(visitor_id):
        return []
    return sorted(cache.get(registry_key) or DEFAULT_SLOTS)


# --- sequence numbers ----------------------------------------------------------------------------

def next_seq(visitor_id: str) -> int:
    """The next message number of this visitor (shared by all their tabs and slots)."""
    key = _key("seq", visitor_id)
    cache.add(key, 0, None)
    try:
        return cache.incr(key)
    except ValueError:
        cache.add(key, 0, None)
        return cache.incr(key)


def seen_seq(visitor_id: str, seq: int) -> None:
    """A reconnecting client saw ``seq``: never number a later message below it
    (the counter may have been lost with a Redis restart)."""
    key = _key("seq", visitor_id)
    cache.add(key, 0, None)
    current = cache.get(key) or 0
    if seq > current:
        cache.incr(key, seq - current)


# --- recompute and push --------------------------------------------------------------------------

def current_lists(visitor_id: str, keys: list[str]):
    """(key, RecommendationList) for each valid slot key; unknown slots are skipped and named."""
    out, unknown = [], []
    for key in keys:
        slot, context = parse_slot_key(key)
        try:
            out.append((key, recommend(visitor_id, slot, None, context or None)))
        except ImproperlyConfigured:
            unknown.append(key)
    return out, unknown


def message(key: str, recs, seq: int, *, resync: bool = False) -> dict[str, Any]:
    msg = {"type": "recs", "key": key, "slot": recs.slot, "seq": seq, "recs": recs.as_dict()}
    if resync:
        msg["resync"] = True
    return msg


def remember(visitor_id: str, key: str, recs) -> bool:
    """Store the list's signature; True when it differs from the last one sent."""
    sig_key = f"{_key('sig', visitor_id)}:{key}"
    signature = json.dumps(recs.signature())
    if cache.get(sig_key) == signature:
        return False
    cache.set(sig_key, signature, PRESENCE_TTL)
    return True


def refresh(visitor_id: str, *, force: bool = False) -> list[str]:
    """Recompute each open slot; push the ones whose list changed. Returns slot keys pushed."""
    group = visitor_group(visitor_id)
    lists, unknown = current_lists(visitor_id, open_slots(visitor_id))
    if unknown:
        logger.warning("recsys: visitor sockets name unknown slots %s", unknown)
    pushed, logs = [], []
    for key, recs in lists:
        if not remember(visitor_id, key, recs) and not force:
            continue
        seq = next_seq(visitor_id)
        layer.group_send(group, {**message(key, recs, seq), "type": "recs.updated"})
        pushed.append(key)
        logs.append(serving.log_entry(recs, "push", seq))
    serving.record(logs)  # after the sends: the log never delays a push
    return pushed


def profile_changed(visitor_id: str) -> str:
    """The visitor's profile just changed: push now, or fold into a pending trailing push.

    Returns what happened: "offline", "pushed", "unchanged" or "deferred".
    """
    if not is_online(visitor_id):
        return "offline"
    now = time.time()
    window = settings.PUSH_DEBOUNCE_MS / 1000.0
    last_key = _key("last", visitor_id)
    last = cache.get(last_key)
    cache.set(last_key, now, BURST_STATE_TTL)
    if last is None or now - last >= window:
        return "pushed" if refresh(visitor_id) else "unchanged"
    if cache.add(_key("trail", visitor_id), now, BURST_STATE_TTL):
        from ..tasks import refresh_visitor

        refresh_visitor.apply_async((visitor_id, now), countdown=window)
    return "deferred"


def trailing_refresh(visitor_id: str, deferred_at: float) -> str:
    """The end of a burst (see the module docstring). Returns "held", "pushed" or "unchanged"."""
    now = time.time()
    window = settings.PUSH_DEBOUNCE_MS / 1000.0
    quiet_for = now - (cache.get(_key("last", visitor_id)) or 0.0)
    if quiet_for < window and now - deferred_at < settings.PUSH_MAX_DELAY_MS / 1000.0:
        from ..tasks import refresh_visitor

        refresh_visitor.apply_async((visitor_id, deferred_at), countdown=window - quiet_for)
        return "held"
    # Release before recomputing: a change folded from here on schedules its own push.
    cache.delete(_key("trail", visitor_id))
    return "pushed" if refresh(visitor_id) else "unchanged"


def resync(visitor_id: str, keys: list[str], seen: int = 0) -> list[dict[str, Any]]:
    """The current lists for a (re)connecting socket, numbered after everything it has ``seen``.

    Each is remembered as sent, so the next refresh pushes only a real change.
    """
    if seen:
        seen_seq(visitor_id, seen)
    lists, unknown = current_lists(visitor_id, keys)
    out, logs = [], []
    for key, recs in lists:
        remember(visitor_id, key, recs)
        seq = next_seq(visitor_id)
        out.append(message(key, recs, seq, resync=True))
        logs.append(serving.log_entry(recs, "resync", seq))
    out.extend({"type": "error", "key": key, "slot": parse_slot_key(key)[0], "error": "unknown slot"}
               for key in unknown)
    serving.record(logs)
    return out


def probe(visitor_id: str, nonce: str) -> None:
    """A message every socket of the visitor answers as {"type": "probe"} (widgets ignore it)."""
    layer.group_send(visitor_group(visitor_id), {"type": "liverec.probe", "nonce": nonce})

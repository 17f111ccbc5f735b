"""Every per-visitor cache key name of live push, and the slot keys a page's sockets name.

A key holds a keyed hash of the visitor id (``tracking.cachekeys``), never the raw id; a forget
erases ``state_keys`` and ``state_patterns`` (the privacy registry's push-state store).
"""
from __future__ import annotations

from typing import Any

from tracking import cachekeys

MAX_SLOT_KEYS = 16
MAX_SLOT_KEY_LENGTH = 200

# Every per-visitor key kind below (``visitor_key``); "sig" keys also carry the slot key after the id.
STATE_KINDS = ("online", "slots", "seq", "last", "trail", "lists", "epoch")


def visitor_key(kind: str, visitor_id: str) -> str:
    return cachekeys.visitor_key(f"liverec:{kind}", visitor_id)


def state_keys(visitor_id: str) -> list[str]:
    """Every fixed per-visitor push-state key (a forget erases them, with ``state_patterns``)."""
    return [visitor_key(kind, visitor_id) for kind in STATE_KINDS]


def state_patterns(visitor_id: str) -> list[str]:
    return [cachekeys.visitor_pattern("liverec:sig", visitor_id)]


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

"""At most one waiting task per kind of coalesced work: a cache flag (SET NX with a TTL).

Tasks that take no ids (the cursor knows what is pending: ``process_events``,
``fold_associations``) need enqueueing once however many callers ask: whoever claims the
flag enqueues; the task releases it as it starts, before reading the log, so work committed
after that claims again. The TTL bounds a lost task's damage: the next ask after it enqueues.
"""
from __future__ import annotations

from django.core.cache import cache

from .pushstate import set_values


def claim(flag: str, ttl_seconds: int) -> bool:
    """True if this caller should enqueue (no task known to be waiting)."""
    try:
        return bool(cache.add(flag, 1, ttl_seconds))
    except Exception:  # noqa: BLE001 - cache down: enqueue anyway (a duplicate task is harmless)
        return True


def claim_many(flags: list[str], ttl_seconds: int) -> list[bool]:
    """``claim`` of each flag, in one round trip with Django's Redis cache backend
    (``pushstate.set_values``). A realtime cycle asks this for every visitor it touched
    (``summaries.request_summaries``): one ``add`` each was one round trip each."""
    try:
        return set_values([(flag, 1, ttl_seconds) for flag in flags], only_new=True)
    except Exception:  # noqa: BLE001 - cache down: enqueue anyway (a duplicate task is harmless)
        return [True] * len(flags)


def release(flag: str) -> None:
    """Called by the task as it starts (or by a caller whose enqueue failed)."""
    try:
        cache.delete(flag)
    except Exception:  # noqa: BLE001 - the flag expires on its own (its TTL): nothing to undo
        return

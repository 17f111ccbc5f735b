"""At most one waiting task per kind of coalesced work: a cache flag (SET NX with a TTL).

Tasks that take no ids (the cursor knows what is pending: ``process_events``,
``fold_associations``) need enqueueing once however many callers ask: whoever claims the
flag enqueues; the task releases it as it starts, before reading the log, so work committed
after that claims again. The TTL bounds a lost task's damage: the next ask after it enqueues.
"""
from __future__ import annotations


def claim(flag: str, ttl_seconds: int) -> bool:
    """True if this caller should enqueue (no task known to be waiting)."""
    from django.core.cache import cache

    try:
        return bool(cache.add(flag, 1, ttl_seconds))
    except Exception:  # noqa: BLE001 - cache down: enqueue anyway (a duplicate task is harmless)
        return True


def claim_many(flags: list[str], ttl_seconds: int) -> list[bool]:
    """``claim`` of each flag, in one round trip with Django's Redis cache backend (SET NX EX
    pipelined on the cache's own client, the value stored as the cache stores an int).
    A realtime cycle asks this for every visitor it touched (``summaries.request_summaries``):
    one ``add`` each was one round trip each."""
    from django.core.cache import cache

    from .pushstate import _redis

    if not flags:
        return []
    try:
        client = _redis()
        if client is None:
            return [bool(cache.add(flag, 1, ttl_seconds)) for flag in flags]
        pipe = client.pipeline(transaction=False)
        for flag in flags:
            pipe.set(cache.make_and_validate_key(flag), 1, ex=ttl_seconds, nx=True)
        return [bool(ok) for ok in pipe.execute()]
    except Exception:  # noqa: BLE001 - cache down: enqueue anyway (a duplicate task is harmless)
        return [True] * len(flags)


def release(flag: str) -> None:
    """Called by the task as it starts (or by a caller whose enqueue failed)."""
    from django.core.cache import cache

    try:
        cache.delete(flag)
    except Exception:  # noqa: BLE001 - the flag expires on its own (its TTL): nothing to undo
        return

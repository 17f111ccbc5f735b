"""Recompute a visitor's open slots and push them over the channel layer when they changed.

Who is listening is ``presence``'s; the lists and their numbers are ``lists``'s; the sends go
through ``layer`` to the channel layer.

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

from ..conf import settings
from ..cycletrace import span
from ..groups import visitor_group
from ..services import dispatch, serving
from . import layer, pushstate
from .keys import parse_slot_key, visitor_key
from .lists import (LIST_CACHE_TTL, cached_lists, current_lists, current_lists_many, message, seen_seq, store_lists,
                    store_lists_many)
from .presence import DEFAULT_SLOTS, PRESENCE_TTL, open_slots_many, socket_opened

logger = logging.getLogger(__name__)

# Burst state lives a little longer than the longest hold, so a lost trailing task
# only delays the next push, never blocks it.
BURST_STATE_TTL = 30


def refresh(visitor_id: str, *, force: bool = False, logs: list | None = None) -> list[str]:
    """Recompute each open slot; push the ones whose list changed. Returns slot keys pushed.

    The pushes' serve-log rows go to ``logs`` when given (the caller writes a batch at once),
    else straight to the database.
    """
    return refresh_many([visitor_id], force=force, logs=logs)[visitor_id]


def refresh_many(visitor_ids: list[str], *, force: bool = False, logs: list | None = None,
                 changes: dict[str, tuple[int, list[str]]] | None = None,
                 snapshots: dict[str, tuple] | None = None) -> dict[str, list[str]]:
    """``refresh`` of several visitors: their lists ranked together (``engine.recommend_many``),
    the cache read and written in a few round trips for all; pushes go out in the given order.

    ``changes`` gives, per visitor, the number of the change being pushed and the slot keys
    on their pages, as ``pushstate.on_change_many`` read them: no read before ranking then.
    Their burst timers restart when the sends are done (``profiles_changed``), written with
    the lists. ``snapshots``: states the caller holds (``engine.recommend_many``).
    """
    changes = changes or {}
    unread = [v for v in visitor_ids if v not in changes]
    read = open_slots_many(unread) if unread else {}
    keys_of = {v: changes[v][1] if v in changes else read[v] for v in visitor_ids}
    with span("p:rank"):
        lists, unknown = current_lists_many({v: keys for v, keys in keys_of.items() if keys},
                                            {v: number for v, (number, _) in changes.items()}, snapshots)
    if unknown:
        logger.warning("recsys: visitor sockets name unknown slots %s", sorted({key for _, key in unknown}))
    # Signatures of the lists pushed to every tab; only pushes set them: a list sent to one
    # socket (resync) must not stop another tab, still showing an older list, from getting it.
    with span("p:compare"):
        changed = pushstate.swap_signatures(
            [(f"{visitor_key('sig', visitor_id)}:{key}", json.dumps(recs.signature())) for visitor_id, key, _, recs in lists],
            PRESENCE_TTL)
    pushed: dict[str, list[str]] = {v: [] for v in visitor_ids}
    entries, sends = [], []
    for (visitor_id, key, seq, recs), new in zip(lists, changed):
        if not new and not force:
            continue
        sends.append((visitor_group(visitor_id), {**message(key, recs, seq), "type": "recs.updated"}))
        pushed[visitor_id].append(key)
        entries.append(serving.log_entry(recs, "push", seq))
    with span("p:send"):
        layer.group_send_many(sends)
    computed: dict[str, list] = {}
    for visitor_id, key, seq, recs in lists:
        computed.setdefault(visitor_id, []).append((key, seq, recs))
    # After the sends: neither cache nor log delays a push. The window of a pushed burst runs
    # from here: on a busy machine a ranking can outlast the window, and the events that
    # arrived meanwhile still belong to the same burst.
    done_ms = int(time.time() * 1000)
    with span("p:store"):
        store_lists_many(computed, [(visitor_key("last", v), done_ms, BURST_STATE_TTL) for v in visitor_ids if v in changes])
    if logs is None:
        serving.record(entries)
    else:
        logs.extend(entries)
    return pushed


def profiles_changed(visitor_ids: list[str], *, logs: list | None = None,
                     snapshots: dict[str, tuple] | None = None) -> dict[str, str]:
    """These visitors' profiles just changed (the visitors a fold touched, in that order): push
    now, or fold into a pending trailing push. The ones opening a burst are refreshed together
    (one ranking batch), the others get their trailing push.

    ``snapshots``: {visitor: (InterestState, sequence state)} as the fold left them, ranked
    from instead of read back (``engine.recommend_many``).

    Returns what happened to each: "offline", "pushed", "unchanged", "deferred" or "failed"
    (that visitor's push state or ranking failed; logged, and no other visitor's push waits on it).
    """
    now = time.time()
    window = settings.PUSH_DEBOUNCE_MS / 1000.0
    # One round trip: invalidate the cached lists, check presence, read and move the burst
    # timers, and read the slots each watched visitor's pages show.
    with span("p:on_change"):
        states = pushstate.on_change_many(
            [(visitor_key("seq", v), visitor_key("epoch", v), visitor_key("online", v), visitor_key("last", v), visitor_key("slots", v))
             for v in visitor_ids],
            now_ms=int(now * 1000), window_ms=int(settings.PUSH_DEBOUNCE_MS), epoch_ttl=LIST_CACHE_TTL,
            burst_ttl=BURST_STATE_TTL)
    out: dict[str, str] = {}
    leading: dict[str, tuple[int, list[str]]] = {}
    for visitor_id, change in zip(visitor_ids, states):
        if change is None:  # its push state is unreadable (logged): the others go on
            out[visitor_id] = "failed"
        elif not change.online:
            out[visitor_id] = "offline"
        elif change.leading:
            leading[visitor_id] = (change.seq, sorted(change.slots or DEFAULT_SLOTS))
        else:
            out[visitor_id] = "deferred"
            if cache.add(visitor_key("trail", visitor_id), now, BURST_STATE_TTL):
                dispatch.task("refresh_visitor").apply_async((visitor_id, now), countdown=window)
    if leading:
        try:
            pushed = refresh_many(list(leading), logs=logs, changes=leading, snapshots=snapshots)
        except Exception:
            # One visitor's failing ranking must not cost the others their push: one by one.
            logger.exception("recsys: batch refresh of %d visitors failed; refreshing one by one", len(leading))
            pushed = {}
            for visitor_id in leading:
                try:
                    pushed.update(refresh_many([visitor_id], logs=logs, changes=leading, snapshots=snapshots))
                except Exception:
                    logger.exception("recsys: push for visitor %s failed", visitor_id)
                    pushed[visitor_id] = []
                    # The burst timer still restarts, as after a push (refresh_many does it).
                    pushstate.set_last_many([visitor_key("last", visitor_id)], int(time.time() * 1000), BURST_STATE_TTL)
        out.update({v: "pushed" if pushed[v] else "unchanged" for v in leading})
    return {v: out[v] for v in visitor_ids}


def trailing_refresh(visitor_id: str, deferred_at: float) -> str:
    """The end of a burst (see the module docstring). Returns "held", "pushed" or "unchanged"."""
    now = time.time()
    window = settings.PUSH_DEBOUNCE_MS / 1000.0
    quiet_for = now - (pushstate.last_ms(visitor_key("last", visitor_id)) or 0) / 1000.0
    if quiet_for < window and now - deferred_at < settings.PUSH_MAX_DELAY_MS / 1000.0:
        dispatch.task("refresh_visitor").apply_async((visitor_id, deferred_at), countdown=window - quiet_for)
        return "held"
    # Release before recomputing: a change folded from here on schedules its own push.
    cache.delete(visitor_key("trail", visitor_id))
    return "pushed" if refresh(visitor_id) else "unchanged"


def resync(visitor_id: str, keys: list[str], seen: int = 0) -> list[dict[str, Any]]:
    """The current lists for a (re)connecting socket (see ``cached_lists``), each numbered no
    lower than anything it has ``seen``."""
    if seen:
        seen_seq(visitor_id, seen)
    cached = cached_lists(visitor_id)
    out = [message(k, cached[k]["recs"], cached[k]["seq"], resync=True) for k in keys if k in cached]
    lists, unknown = current_lists(visitor_id, [k for k in keys if k not in cached])
    out.extend(message(key, recs, seq, resync=True) for key, seq, recs in lists)
    out.extend({"type": "error", "key": key, "slot": parse_slot_key(key)[0], "error": "unknown slot"}
               for key in unknown)
    store_lists(visitor_id, lists)
    serving.record(serving.log_entry(recs, "resync", seq) for _, seq, recs in lists)
    return out


def connected(visitor_id: str, keys: list[str], seen: int = 0) -> list[dict[str, Any]]:
    """A socket opened: count it online, register its slots, return its current lists."""
    socket_opened(visitor_id, keys)
    return resync(visitor_id, keys, seen)


def probe(visitor_id: str, nonce: str) -> None:
    """A message every socket of the visitor answers as {"type": "probe"} (widgets ignore it)."""
    layer.group_send(visitor_group(visitor_id), {"type": "liverec.probe", "nonce": nonce})

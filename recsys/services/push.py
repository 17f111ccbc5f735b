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

from tracking import cachekeys

from ..conf import settings
from ..cycletrace import span
from ..engine import recommend_many, slot_config
from ..groups import visitor_group
from . import dispatch, layer, pushstate, serving

logger = logging.getLogger(__name__)

DEFAULT_SLOTS = ("for-you",)
# A socket keeps its visitor "online" this long after connecting or its last ping (heartbeat):
# the widget pings every 20 s (widget.js PING_MS), so a socket lost without a close (a crashed
# ASGI server, a laptop lid shut) leaves its visitor marked online for at most a minute, and
# the realtime cycles stop ranking for a page nobody sees.
PRESENCE_TTL = 60
OPEN_SLOTS_TTL = PRESENCE_TTL  # a page's open-slot registry lives exactly as long as its presence
MAX_SLOT_KEYS = 16
MAX_SLOT_KEY_LENGTH = 200
# Burst state lives a little longer than the longest hold, so a lost trailing task
# only delays the next push, never blocks it.
BURST_STATE_TTL = 30


# Every per-visitor key kind below (``_key``); "sig" keys also carry the slot key after the id.
STATE_KINDS = ("online", "slots", "seq", "last", "trail", "lists", "epoch")


def _key(kind: str, visitor_id: str) -> str:
    return cachekeys.visitor_key(f"liverec:{kind}", visitor_id)


def state_keys(visitor_id: str) -> list[str]:
    """Every fixed per-visitor push-state key (a forget erases them, with ``state_patterns``)."""
    return [_key(kind, visitor_id) for kind in STATE_KINDS]


def state_patterns(visitor_id: str) -> list[str]:
    return [cachekeys.visitor_pattern("liverec:sig", visitor_id)]


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
    pushstate.touch_seq(_key("seq", visitor_id))
    open_slots(visitor_id, keys)


def socket_closed(visitor_id: str) -> None:
    online = _key("online", visitor_id)
    try:
        left = cache.decr(online)
    except ValueError:  # already expired
        left = 0
    if left <= 0:
        cache.delete_many([online, _key("slots", visitor_id)])


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
    return open_slots_many([visitor_id])[visitor_id]


def open_slots_many(visitor_ids: list[str]) -> dict[str, list[str]]:
    """``open_slots`` (read) of several visitors, in one round trip."""
    keys = {v: (_key("online", v), _key("slots", v)) for v in visitor_ids}
    got = cache.get_many([k for pair in keys.values() for k in pair])
    return {v: sorted(got.get(registry) or DEFAULT_SLOTS) if got.get(online) else []
            for v, (online, registry) in keys.items()}


# --- sequence numbers ----------------------------------------------------------------------------

def next_seq(visitor_id: str) -> int:
    """The next message number of this visitor (shared by all their tabs and slots)."""
    return pushstate.next_seq(_key("seq", visitor_id))


def seen_seq(visitor_id: str, seq: int) -> None:
    """A reconnecting client saw ``seq``: never number a later message below it
    (the counter may have been lost with a Redis restart, or expired). ``seq`` comes from the
    client: bounded to ``pushstate.MAX_SEQ`` here as well as by the consumer."""
    pushstate.raise_seq(_key("seq", visitor_id), max(0, min(int(seq), pushstate.MAX_SEQ)))


# --- recompute and push --------------------------------------------------------------------------

def current_lists(visitor_id: str, keys: list[str]):
    """(key, seq, RecommendationList) for each valid slot key, and the unknown keys.

    The sequence number is taken before ranking: a list numbered higher started later, so it
    read a state at least as new (a client keeps the highest number it saw).
    """
    lists, unknown = current_lists_many({visitor_id: keys})
    return [(key, seq, recs) for _, key, seq, recs in lists], [key for _, key in unknown]


def current_lists_many(keys_of: dict[str, list[str]], numbers: dict[str, int] | None = None,
                       snapshots: dict[str, tuple] | None = None):
    """``current_lists`` of several visitors, ranked together (``engine.recommend_many``):
    [(visitor, key, seq, RecommendationList)] and the unknown [(visitor, key)].

    ``numbers`` gives a visitor's lists the number of the change that is being pushed
    (``profiles_changed``): taken before this ranking began, as ``next_seqs`` would be, and
    the visitor's epoch, so the lists stay reusable until the next change (``cached_lists``).
    Sharing it across the visitor's slots is fine: widgets compare numbers per slot.
    ``snapshots``: the visitors' states the caller holds (``engine.recommend_many``).
    """
    numbers = numbers or {}
    wanted, unknown = [], []
    for visitor_id, keys in keys_of.items():
        for key in keys:
            slot, context = parse_slot_key(key)
            try:
                slot_config(slot, visitor_id)
            except ImproperlyConfigured:
                unknown.append((visitor_id, key))
                continue
            wanted.append((visitor_id, key, slot, context))
    if not wanted:
        return [], unknown
    unnumbered = [visitor_id for visitor_id, *_ in wanted if visitor_id not in numbers]
    fresh = iter(pushstate.next_seqs([_key("seq", visitor_id) for visitor_id in unnumbered]) if unnumbered else ())
    seqs = [numbers[visitor_id] if visitor_id in numbers else next(fresh) for visitor_id, *_ in wanted]
    lists = recommend_many([(visitor_id, slot, None, context or None) for visitor_id, _, slot, context in wanted],
                           snapshots=snapshots)
    return [(visitor_id, key, seq, recs) for (visitor_id, key, _, _), seq, recs in zip(wanted, seqs, lists)], unknown


def message(key: str, recs, seq: int, *, resync: bool = False) -> dict[str, Any]:
    data = recs if isinstance(recs, dict) else recs.as_dict()
    msg = {"type": "recs", "key": key, "slot": data["slot"], "seq": seq, "recs": data}
    if resync:
        msg["resync"] = True
    return msg


# --- the last lists computed, reused by (re)connecting sockets -----------------------------------
# A page view renders the list, then its socket connects and asks for it again; a second tab
# asks for the same list. The last computed lists are kept for a minute and reused while no
# event of the visitor was folded after they were numbered (the "epoch": the number of the
# newest change; a push's lists carry that number itself), halving the ranking
# work of a page view. Trending drift within that minute is corrected by the next push.
LIST_CACHE_TTL = 60


def cached_lists(visitor_id: str) -> dict[str, dict[str, Any]]:
    """{slot key: {"seq", "recs"}} of lists still fresh."""
    got = cache.get_many([_key("lists", visitor_id), _key("epoch", visitor_id)])
    epoch = got.get(_key("epoch", visitor_id)) or 0
    return {k: v for k, v in (got.get(_key("lists", visitor_id)) or {}).items() if v["seq"] >= epoch}


def store_lists(visitor_id: str, computed) -> None:
    """Keep ``[(key, seq, RecommendationList)]`` for reuse (a lost race only costs a cache miss)."""
    store_lists_many({visitor_id: computed})


def store_lists_many(computed_of: dict[str, list], also: list[tuple[str, Any, int]] = ()) -> None:
    """``store_lists`` of several visitors: one read and one write for all. ``also``: other
    (key, value, ttl) entries to write in the same round trip."""
    computed_of = {v: c for v, c in computed_of.items() if c}
    if not computed_of:
        pushstate.set_values(list(also))
        return
    got = cache.get_many([k for v in computed_of for k in (_key("lists", v), _key("epoch", v))])
    updates = {}
    for visitor_id, computed in computed_of.items():
        epoch = got.get(_key("epoch", visitor_id)) or 0
        lists = {k: v for k, v in (got.get(_key("lists", visitor_id)) or {}).items() if v["seq"] >= epoch}
        for key, seq, recs in computed:
            if key not in lists or lists[key]["seq"] < seq:
                lists[key] = {"seq": seq, "recs": recs.as_dict()}
        updates[_key("lists", visitor_id)] = dict(list(lists.items())[-MAX_SLOT_KEYS:])
    pushstate.set_values([(key, value, LIST_CACHE_TTL) for key, value in updates.items()] + list(also))


def served_on_page(recs, key: str) -> None:
    """A page rendered this list (template tag): log it and keep it for the page's socket."""
    seq = next_seq(recs.visitor_id)
    serving.record_served(recs, "page", seq)
    if recs.visitor_id:
        store_lists(recs.visitor_id, [(key, seq, recs)])


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
            [(f"{_key('sig', visitor_id)}:{key}", json.dumps(recs.signature())) for visitor_id, key, _, recs in lists],
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
        store_lists_many(computed, [(_key("last", v), done_ms, BURST_STATE_TTL) for v in visitor_ids if v in changes])
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
            [(_key("seq", v), _key("epoch", v), _key("online", v), _key("last", v), _key("slots", v))
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
            if cache.add(_key("trail", visitor_id), now, BURST_STATE_TTL):
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
                    pushstate.set_last_many([_key("last", visitor_id)], int(time.time() * 1000), BURST_STATE_TTL)
        out.update({v: "pushed" if pushed[v] else "unchanged" for v in leading})
    return {v: out[v] for v in visitor_ids}


def trailing_refresh(visitor_id: str, deferred_at: float) -> str:
    """The end of a burst (see the module docstring). Returns "held", "pushed" or "unchanged"."""
    now = time.time()
    window = settings.PUSH_DEBOUNCE_MS / 1000.0
    quiet_for = now - (pushstate.last_ms(_key("last", visitor_id)) or 0) / 1000.0
    if quiet_for < window and now - deferred_at < settings.PUSH_MAX_DELAY_MS / 1000.0:
        dispatch.task("refresh_visitor").apply_async((visitor_id, deferred_at), countdown=window - quiet_for)
        return "held"
    # Release before recomputing: a change folded from here on schedules its own push.
    cache.delete(_key("trail", visitor_id))
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

"""Numbered lists: a visitor's message numbers, their lists ranked by the engine, and the last
lists computed, which (re)connecting sockets and page views reuse."""
from __future__ import annotations

from typing import Any

from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured

from ..engine import recommend_many, slot_config
from ..cache import set_values
from ..services import serving
from . import pushstate
from .keys import MAX_SLOT_KEYS, parse_slot_key, visitor_key


def next_seq(visitor_id: str) -> int:
    """The next message number of this visitor (shared by all their tabs and slots)."""
    return pushstate.next_seq(visitor_key("seq", visitor_id))


def seen_seq(visitor_id: str, seq: int) -> None:
    """A reconnecting client saw ``seq``: never number a later message below it
    (the counter may have been lost with a Redis restart, or expired). ``seq`` comes from the
    client: bounded to ``pushstate.MAX_SEQ`` here as well as by the consumer."""
    pushstate.raise_seq(visitor_key("seq", visitor_id), max(0, min(int(seq), pushstate.MAX_SEQ)))


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
    fresh = iter(pushstate.next_seqs([visitor_key("seq", visitor_id) for visitor_id in unnumbered]) if unnumbered else ())
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
    got = cache.get_many([visitor_key("lists", visitor_id), visitor_key("epoch", visitor_id)])
    epoch = got.get(visitor_key("epoch", visitor_id)) or 0
    return {k: v for k, v in (got.get(visitor_key("lists", visitor_id)) or {}).items() if v["seq"] >= epoch}


def store_lists(visitor_id: str, computed) -> None:
    """Keep ``[(key, seq, RecommendationList)]`` for reuse (a lost race only costs a cache miss)."""
    store_lists_many({visitor_id: computed})


def store_lists_many(computed_of: dict[str, list], also: list[tuple[str, Any, int]] = ()) -> None:
    """``store_lists`` of several visitors: one read and one write for all. ``also``: other
    (key, value, ttl) entries to write in the same round trip."""
    computed_of = {v: c for v, c in computed_of.items() if c}
    if not computed_of:
        set_values(list(also))
        return
    got = cache.get_many([k for v in computed_of for k in (visitor_key("lists", v), visitor_key("epoch", v))])
    updates = {}
    for visitor_id, computed in computed_of.items():
        epoch = got.get(visitor_key("epoch", visitor_id)) or 0
        lists = {k: v for k, v in (got.get(visitor_key("lists", visitor_id)) or {}).items() if v["seq"] >= epoch}
        for key, seq, recs in computed:
            if key not in lists or lists[key]["seq"] < seq:
                lists[key] = {"seq": seq, "recs": recs.as_dict()}
        updates[visitor_key("lists", visitor_id)] = dict(list(lists.items())[-MAX_SLOT_KEYS:])
    set_values([(key, value, LIST_CACHE_TTL) for key, value in updates.items()] + list(also))


def served_on_page(recs, key: str) -> None:
    """A page rendered this list (template tag): log it and keep it for the page's socket."""
    seq = next_seq(recs.visitor_id)
    serving.record_served(recs, "page", seq)
    if recs.visitor_id:
        store_lists(recs.visitor_id, [(key, seq, recs)])

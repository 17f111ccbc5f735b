"""Reads of the recsys app for the engine, pages and the admin."""
from __future__ import annotations

import math
from datetime import timedelta

from django.db.models import Max
from django.utils import timezone

from tracking.models import Event

from . import configcache, engagement
from .abtest import assign
from .association_model import Engagement
from .conf import settings
from .models import Item, ItemAssociation, SlotConfig, StrategyConfig
from .services.vectors import fetch_binary


def excluded_items(visitor_id: str, rules: dict[str, int | None]) -> set[str]:
    """Items to leave out: per event name, forever (None) or for a window in seconds (one query)."""
    if not rules or not visitor_id:
        return set()
    from django.db.models import Q

    now = timezone.now()
    cond = Q()
    for name, seconds in rules.items():
        q = Q(name=name)
        if seconds is not None:
            q &= Q(occurred_at__gte=now - timedelta(seconds=int(seconds)))
        cond |= q
    qs = Event.objects.filter(cond, visitor_id=visitor_id).exclude(item_id="")
    return set(qs.values_list("item_id", flat=True).distinct()[:5000])


def recent_items(visitor_id: str, limit: int = 20) -> list[str]:
    rows = (Event.objects.filter(visitor_id=visitor_id).exclude(item_id="")
            .values("item_id").annotate(t=Max("occurred_at")).order_by("-t")[:limit])
    return [r["item_id"] for r in rows]


def items_by_id(item_ids: list[str]) -> dict[str, Item]:
    return {it.item_id: it for it in Item.objects.filter(item_id__in=item_ids).defer("embedding")}


def published_slot_config(slot: str) -> dict | None:
    row = SlotConfig.objects.filter(slot=slot, active=True).order_by("-version").values_list("config", flat=True).first()
    return row


def strategy_tuning(strategy_id: str) -> dict:
    return StrategyConfig.objects.filter(strategy_id=strategy_id).values_list("config", flat=True).first() or {}


def recent_engagements(visitor_id: str, limit: int = 50):
    """The visitor's latest positive engagements with items (newest first), as
    ``association_model.Engagement`` rows weighted like the projections weigh them."""
    if not visitor_id:
        return []
    positive = [name for name, w in settings.EVENT_WEIGHTS.items() if w > 0]
    rows = (Event.objects.filter(visitor_id=visitor_id, name__in=positive, is_bot=False).exclude(item_id="")
            .order_by("-occurred_at", "-id").only("item_id", "name", "occurred_at", "properties")[:limit])
    return [Engagement(ev.item_id, engagement.event_weight(ev), ev.occurred_at, ev.name) for ev in rows]


def visitor_activity(visitor_id: str, rules: dict[str, int | None], limit: int = 50):
    """``(recent_engagements(visitor_id, limit), excluded_items(visitor_id, rules))`` in one
    round trip: the engine's first read for every request (each round trip cost 1-10 ms
    under load here)."""
    if not visitor_id:
        return [], set()
    return visitor_activity_many([visitor_id], rules, limit)[visitor_id]


def visitor_activity_many(visitor_ids: list[str], rules: dict[str, int | None], limit: int = 50):
    """``visitor_activity`` of several visitors in one round trip: {visitor_id: (engagements, excluded)}."""
    out = {v: ([], set()) for v in visitor_ids if v}
    if not out:
        return out
    positive = [name for name, w in settings.EVENT_WEIGHTS.items() if w > 0]
    table = Event._meta.db_table
    sql = (f"(SELECT 'e', item_id, name, occurred_at, properties->>'value' FROM {table} "
           f" WHERE visitor_id = q.v AND name = ANY(%s) AND NOT is_bot AND item_id <> '' "
           f" ORDER BY occurred_at DESC, id DESC LIMIT %s)")
    params: list = [positive, limit]
    now = timezone.now()
    conds, cond_params = [], []
    for name, seconds in (rules or {}).items():
        if seconds is None:
            conds.append("name = %s")
            cond_params.append(name)
        else:
            conds.append("(name = %s AND occurred_at >= %s)")
            cond_params += [name, now - timedelta(seconds=int(seconds))]
    if conds:
        sql += (f" UNION ALL (SELECT DISTINCT 'x', item_id, NULL, NULL::timestamptz, NULL FROM {table} "
                f" WHERE visitor_id = q.v AND item_id <> '' AND ({' OR '.join(conds)}) LIMIT 5000)")
        params += cond_params
    rows = fetch_binary(f"SELECT q.v, a.* FROM unnest(%s::text[]) AS q(v) CROSS JOIN LATERAL ({sql}) "
                        f"AS a(kind, item_id, name, at, value)", [list(out), *params])
    for visitor_id, kind, item_id, name, at, value in rows:
        engagements, excluded = out[visitor_id]
        if kind == "e":
            engagements.append(Engagement(item_id, engagement.weight(name, {"value": value}), at, name))
        else:
            excluded.add(item_id)
    for engagements, _ in out.values():
        engagements.sort(key=lambda e: e.at, reverse=True)
    return out


def association_keys(item_ids: list[str], per_item: int) -> tuple[dict[str, list[tuple[str, float]]], dict[str, str]]:
    """Top ``per_item`` associated items of each item, by stored log key (one index scan each),
    and the titles of the given items (for reasons), in one round trip. A batch of requests
    reads the union of their seeds once, then scales each request's own rows
    (``seed_weights``)."""
    if not item_ids:
        return {}, {}
    return association_keys_from(fetch_binary(*association_keys_read(item_ids, per_item)))


def association_keys_read(item_ids: list[str], per_item: int) -> tuple[str, list]:
    """The read of ``association_keys`` (SQL, parameters), for a caller that runs it with
    others (``strategies.base.run_together``)."""
    # One row per seed with its neighbours as arrays, in binary (text[]: psycopg's C loader;
    # varchar[] took 1.7x as long): a row per pair (~500 per for-you request, each repeating
    # the seed's title) cost 0.64 ms of client CPU for 10 seeds here, the arrays 0.26; 29 ms
    # for a realtime batch of 500 seeds, the arrays 5.
    return (f"SELECT s.a, (SELECT title FROM {Item._meta.db_table} WHERE item_id = s.a), x.b, x.k "
            f"FROM unnest(%s::text[]) AS s(a) CROSS JOIN LATERAL "
            f"(SELECT array_agg(item_b::text ORDER BY log_key DESC) AS b, array_agg(log_key ORDER BY log_key DESC) AS k "
            f" FROM (SELECT item_b, log_key FROM {ItemAssociation._meta.db_table} WHERE item_a = s.a "
            f"       ORDER BY log_key DESC LIMIT %s) y) x",
            [list(item_ids), per_item])


def association_keys_from(rows) -> tuple[dict[str, list[tuple[str, float]]], dict[str, str]]:
    """``association_keys``' result from the rows of its read."""
    out: dict[str, list[tuple[str, float]]] = {}
    titles: dict[str, str] = {}
    for a, title, bs, keys in rows:
        titles[a] = title or ""
        if bs:
            out[a] = list(zip(bs, keys))
    return out, titles


def seed_weights(keys: dict[str, list[tuple[str, float]]]) -> dict[str, tuple[float, tuple[tuple[str, float], ...]]]:
    """Log keys -> (the seed's strongest key, its pairs' weights relative to that pair).

    Forward decay makes the ratio between any two pairs independent of the time they are
    compared at, so a request scales a seed's whole row by one factor,
    ``exp(seed's top - the request's top)`` (``relative_scale``), instead of exponentiating
    each of its ~500 pairs per request: these rows are what the neighbour cache keeps.
    """
    out = {}
    for a, rows in keys.items():
        top = max(key for _, key in rows)
        out[a] = (top, tuple((b, math.exp(max(-700.0, key - top))) for b, key in rows))
    return out


def relative_scale(seed_top: float, top: float) -> float:
    """The factor taking a seed's weights (``seed_weights``) to weights relative to ``top``."""
    return math.exp(max(-700.0, seed_top - top))


# --- Admin tuning UI: experiments and the interest settings the projection reads ------------------


def experiment_slot_config(slot: str, visitor_id: str, *, snapshot: dict | None = None) -> dict | None:
    """The slot config of a running experiment's arm this visitor is assigned to, if any
    (the running experiments come from the config snapshot: no query per request)."""
    exp = (snapshot or configcache.snapshot())["experiments"].get(slot)
    if exp is None:
        return None
    return arm_config(slot, assign(exp["id"], visitor_id, exp["arms"]))


def arm_config(slot: str, arm: dict) -> dict | None:
    """An arm's slot config: its inline ``config``, else the published ``version`` of the slot."""
    if arm.get("config"):
        return arm["config"]
    if arm.get("version") is not None:
        return SlotConfig.objects.filter(slot=slot, version=int(arm["version"])).values_list("config", flat=True).first()
    return None


def interest_settings() -> dict:
    """Event weights and half-lives: the newest active published ``InterestConfig`` over settings.

    The published row comes from the config snapshot (``configcache``): publishing one takes
    effect in this process at once and in the other workers within ``CHECK_SECONDS``."""
    base = {"EVENT_WEIGHTS": dict(settings.EVENT_WEIGHTS),
            "LONG_TERM_HALF_LIFE_HOURS": settings.LONG_TERM_HALF_LIFE_HOURS,
            "SHORT_TERM_HALF_LIFE_HOURS": settings.SHORT_TERM_HALF_LIFE_HOURS}
    published = configcache.snapshot().get("interest")
    if published:
        base.update({k: v for k, v in published.items() if k in base})
    return base

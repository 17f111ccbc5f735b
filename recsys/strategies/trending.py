"""popular/trending: time-decayed engagement counts, overall; popular/in-category: per category."""
from __future__ import annotations

import time
from collections import Counter

from django.core.cache import cache
from django.db import connection

from tracking.models import Event

from ..conf import settings
from ..models import Item
from .base import Candidate, Reason, RequestContext, Strategy


# Each process also keeps the lists it read for a few seconds: under load a cache GET cost
# 1-10 ms here, the price of the whole rest of a cold visitor's request.
LOCAL_SECONDS = 5.0
# The shared copy: the scan costs 50-150 ms on a loaded machine; with a 72 h half-life a
# minute of staleness changes nothing a visitor could notice.
CACHE_SECONDS = 60
_local: dict[str, tuple[float, list[tuple[str, float]]]] = {}


def trending_scores(half_life_hours: float, window_days: int, limit: int,
                    category: str = "") -> list[tuple[str, float]]:
    """Decayed counts relative to the newest event (so an imported history trends too).

    With ``category``, only items of that category count (a join on the catalogue).
    """
    key = f"liverec:trending:{half_life_hours}:{window_days}:{limit}:{category}"
    local = _local.get(key)
    if local is not None and local[0] > time.monotonic():
        return local[1]
    cached = cache.get(key)
    if cached is not None:
        _local[key] = (time.monotonic() + LOCAL_SECONDS, cached)
        return cached
    weights = {k: v for k, v in settings.EVENT_WEIGHTS.items() if v > 0}
    cases = " ".join(f"WHEN '{name}' THEN {float(w)}" for name, w in weights.items())
    table = Event._meta.db_table
    join, params = "", []
    if category:
        join = (f"AND item_id IN (SELECT item_id FROM {Item._meta.db_table} "
                f"WHERE categories @> ARRAY[%s]::varchar(64)[])")
        params = [category]
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH ref AS (SELECT max(occurred_at) AS t FROM {table}) "
            f"SELECT item_id, sum((CASE name {cases} ELSE 0 END) * "
            f"  power(0.5, extract(epoch FROM (ref.t - occurred_at)) / 3600.0 / %s)) AS score "
            f"FROM {table}, ref WHERE item_id <> '' AND NOT is_bot AND occurred_at > ref.t - make_interval(days => %s) "
            f"{join} GROUP BY item_id ORDER BY score DESC, item_id LIMIT %s",
            [half_life_hours, window_days, *params, limit],
        )
        rows = [(r[0], float(r[1])) for r in cursor.fetchall() if r[1] and r[1] > 0]
    # A few seconds of staleness is invisible in a trending list and saves a scan per request.
    cache.set(key, rows, CACHE_SECONDS)
    _local[key] = (time.monotonic() + LOCAL_SECONDS, rows)
    return rows


class Trending(Strategy):
    id = "popular/trending"
    DEFAULT_CONFIG = {"half_life_hours": 72.0, "window_days": 30, "category": ""}

    def candidates(self, ctx: RequestContext, n: int) -> list[Candidate]:
        category = str(self.config.get("category") or "")
        # The fetch size is rounded up to a power of two (>= 64) so the cached scan is shared:
        # keyed by n + len(exclude), each visitor's every new view missed the cache (a full scan,
        # 0.4-0.9 s on the bench's log, on the live push path).
        want = n + len(ctx.exclude)
        rows = trending_scores(float(self.config["half_life_hours"]), int(self.config["window_days"]),
                               max(64, 1 << (want - 1).bit_length()), category)
        text = f"Popular in {category} right now" if category else "Popular right now"
        return [Candidate(item_id, score, [Reason(self.id, text)])
                for item_id, score in rows if item_id not in ctx.exclude][:n]


class TrendingInCategory(Strategy):
    """popular/in-category: what trends in the categories the visitor is looking at.

    Categories come from the request (``context["category"]``), else the item on the page,
    else the most common categories among the visitor's recent items (``max_categories``),
    each list weighted by how many of those items share it.
    """

    id = "popular/in-category"
    DEFAULT_CONFIG = {"half_life_hours": 72.0, "window_days": 30, "max_categories": 2, "recent_items": 10}

    def categories(self, ctx: RequestContext) -> list[tuple[str, float]]:
        if ctx.category:
            return [(ctx.category, 1.0)]
        ids = [ctx.item_id] if ctx.item_id else ctx.recent_items[: int(self.config["recent_items"])]
        if not ids:
            return []
        counts: Counter[str] = Counter()
        for cats in Item.objects.filter(item_id__in=ids).values_list("categories", flat=True):
            counts.update(set(cats))
        total = sum(counts.values()) or 1
        return [(cat, c / total) for cat, c in counts.most_common(int(self.config["max_categories"]))]

    def candidates(self, ctx: RequestContext, n: int) -> list[Candidate]:
        out: dict[str, Candidate] = {}
        for category, share in self.categories(ctx):
            rows = trending_scores(float(self.config["half_life_hours"]), int(self.config["window_days"]),
                                   n + len(ctx.exclude), category)
            top = rows[0][1] if rows else 1.0
            for item_id, score in rows:
                if item_id in ctx.exclude:
                    continue
                cand = out.setdefault(item_id, Candidate(item_id, 0.0))
                cand.score += share * score / top
                cand.reasons.append(Reason(self.id, f"Popular in {category}"))
        return sorted(out.values(), key=lambda c: (-c.score, c.item_id))[:n]

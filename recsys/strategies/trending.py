"""popular/trending: time-decayed engagement counts, overall; popular/in-category: per category."""
from __future__ import annotations

import logging
import threading
import time
from collections import Counter

from django.core.cache import cache
from django.db import connection

from tracking.models import Event

from ..conf import settings
from .. import association_model as am
from .. import reasons
from ..models import Item, ItemPopularity
from .base import Candidate, Reason, RequestContext, Strategy

logger = logging.getLogger(__name__)


# The fallback scan (a tuned half-life the projection does not hold) aggregates the whole log
# window: 0.05-2 s here, far too slow for the push path. Its lists are served from the cache, stale-while-revalidate: a list older than REFRESH_AFTER
# is still served while one thread of this process recomputes it (the work is PostgreSQL's,
# so the serving thread barely notices); only a list older than STALE_MAX (or none at all)
# is recomputed inline. With a 72 h half-life, a minute of staleness changes nothing a
# visitor could notice.
REFRESH_AFTER = 30.0
STALE_MAX = 600.0
# Each process also keeps what it read for a few seconds: a cache GET per ranking adds up.
LOCAL_SECONDS = 5.0
# One fetch size shared by every request (a key per fetch size split the cache: a visitor's
# growing exclusion list crossed into a new key, and a cold scan, every few views).
FETCH = 1024
_local: dict[str, tuple[float, list[tuple[str, float]]]] = {}
_refreshing: set[str] = set()
_refreshing_lock = threading.Lock()


def _scan(half_life_hours: float, window_days: int, limit: int, category: str) -> list[tuple[str, float]]:
    """Decayed counts relative to the newest event (so an imported history trends too)."""
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
        return [(r[0], float(r[1])) for r in cursor.fetchall() if r[1] and r[1] > 0]


def _store(key: str, rows: list[tuple[str, float]]) -> None:
    cache.set(key, {"at": time.time(), "rows": rows}, int(STALE_MAX))
    _local[key] = (time.monotonic() + LOCAL_SECONDS, rows)


def _refresh_in_background(key: str, args: tuple) -> None:
    """Recompute ``key`` on a thread of this process, at most one per key and process."""
    with _refreshing_lock:
        if key in _refreshing:
            return
        _refreshing.add(key)

    def run():
        from django.db import connection as thread_connection

        try:
            _store(key, _scan(*args))
        except Exception:  # noqa: BLE001 - the stale list stays; the next request tries again
            logger.exception("recsys: trending refresh failed")
        finally:
            thread_connection.close()  # this thread's pooled connection goes back
            with _refreshing_lock:
                _refreshing.discard(key)

    threading.Thread(target=run, name="liverec-trending", daemon=True).start()


def _from_projection(window_days: int, limit: int, category: str) -> list[tuple[str, float]]:
    """The same decayed counts, read from the popularity projection (an index scan).

    Forward decay: exp(log_key - t_ref * rate) is an item's weight decayed to t_ref, the
    newest engagement in the projection (as the aggregate decays to the newest event).
    """
    half_life = float(settings.TRENDING["HALF_LIFE_HOURS"])
    table, items = ItemPopularity._meta.db_table, Item._meta.db_table
    join, params = "", []
    if category:
        join = f"JOIN {items} i ON i.item_id = p.item_id AND i.categories @> ARRAY[%s]::varchar(64)[]"
        params = [category]
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH ref AS (SELECT max(updated) AS t FROM {table}) "
            f"SELECT p.item_id, exp(least(700, p.log_key - extract(epoch FROM (ref.t - %s)) / 3600.0 * %s)) "
            f"FROM {table} p {join} CROSS JOIN ref WHERE p.updated > ref.t - make_interval(days => %s) "
            f"ORDER BY p.log_key DESC, p.item_id LIMIT %s",
            [am.EPOCH, am.LN2 / half_life, *params, window_days, limit],
        )
        return [(r[0], float(r[1])) for r in cursor.fetchall() if r[1] and r[1] > 0]


def trending_scores(half_life_hours: float, window_days: int, limit: int,
                    category: str = "") -> list[tuple[str, float]]:
    """The ``limit`` items with the highest decayed counts.

    At the projection's half-life (``LIVEREC["TRENDING"]``, the default) they come from the
    popularity projection; a strategy tuned to another half-life aggregates the log window
    (``_scan``), served from the cache. With ``category``, only items of that category count.
    """
    fetch = max(FETCH, 1 << (max(1, limit) - 1).bit_length())
    key = f"liverec:trending:{half_life_hours}:{window_days}:{fetch}:{category}"
    local = _local.get(key)
    if local is not None and local[0] > time.monotonic():
        return local[1][:limit]
    if float(half_life_hours) == float(settings.TRENDING["HALF_LIFE_HOURS"]):
        rows = _from_projection(window_days, fetch, category)
        if rows:  # an empty projection (a new site, a replay under way) is asked again next time
            _local[key] = (time.monotonic() + LOCAL_SECONDS, rows)
        return rows[:limit]
    args = (half_life_hours, window_days, fetch, category)
    cached = cache.get(key)
    age = time.time() - cached["at"] if isinstance(cached, dict) else None
    if age is None or age > STALE_MAX:
        rows = _scan(*args)
        _store(key, rows)
        return rows[:limit]
    _local[key] = (time.monotonic() + LOCAL_SECONDS, cached["rows"])
    if age > REFRESH_AFTER:
        _refresh_in_background(key, args)
    return cached["rows"][:limit]


class Trending(Strategy):
    id = "popular/trending"
    DEFAULT_CONFIG = {"half_life_hours": 72.0, "window_days": 30, "category": ""}

    def candidates(self, ctx: RequestContext, n: int) -> list[Candidate]:
        category = str(self.config.get("category") or "")
        rows = trending_scores(float(self.config["half_life_hours"]), int(self.config["window_days"]),
                               n + len(ctx.exclude), category)
        kind = "trending_in" if category else "trending"
        text = reasons.render(kind, {"category": category})
        evidence = [{"kind": "popularity", "scope": category or "site", "window": "trending"}]
        return [Candidate(item_id, score, [Reason(self.id, text, kind=kind, evidence=evidence)])
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
                cand.reasons.append(Reason(self.id, reasons.render("popular_in", {"category": category}),
                                           kind="popular_in", evidence=[{"kind": "popularity", "scope": category}]))
        return sorted(out.values(), key=lambda c: (-c.score, c.item_id))[:n]

"""popular/trending: time-decayed engagement counts, overall."""
from __future__ import annotations

from django.core.cache import cache
from django.db import connection

from tracking.models import Event

from ..conf import settings
from .base import Candidate, Reason, RequestContext, Strategy


def trending_scores(half_life_hours: float, window_days: int, limit: int) -> list[tuple[str, float]]:
    """Decayed counts relative to the newest event (so an imported history trends too)."""
    key = f"liverec:trending:{half_life_hours}:{window_days}:{limit}"
    cached = cache.get(key)
    if cached is not None:
        return cached
    weights = {k: v for k, v in settings.EVENT_WEIGHTS.items() if v > 0}
    cases = " ".join(f"WHEN '{name}' THEN {float(w)}" for name, w in weights.items())
    table = Event._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH ref AS (SELECT max(occurred_at) AS t FROM {table}) "
            f"SELECT item_id, sum((CASE name {cases} ELSE 0 END) * "
            f"  power(0.5, extract(epoch FROM (ref.t - occurred_at)) / 3600.0 / %s)) AS score "
            f"FROM {table}, ref WHERE item_id <> '' AND NOT is_bot AND occurred_at > ref.t - make_interval(days => %s) "
            f"GROUP BY item_id ORDER BY score DESC LIMIT %s",
            [half_life_hours, window_days, limit],
        )
        rows = [(r[0], float(r[1])) for r in cursor.fetchall() if r[1] and r[1] > 0]
    # A few seconds of staleness is invisible in a trending list and saves a scan per request.
    cache.set(key, rows, 10)
    return rows


class Trending(Strategy):
    id = "popular/trending"
    DEFAULT_CONFIG = {"half_life_hours": 72.0, "window_days": 30}

    def candidates(self, ctx: RequestContext, n: int) -> list[Candidate]:
        # The fetch size is rounded up to a power of two (>= 64) so the cached scan is shared:
        # keyed by n + len(exclude), each visitor's every new view missed the cache (a full scan,
        # 0.4-0.9 s on the bench's log, on the live push path).
        want = n + len(ctx.exclude)
        rows = trending_scores(float(self.config["half_life_hours"]), int(self.config["window_days"]),
                               max(64, 1 << (want - 1).bit_length()))
        return [Candidate(item_id, score, [Reason(self.id, "Popular right now")])
                for item_id, score in rows if item_id not in ctx.exclude][:n]

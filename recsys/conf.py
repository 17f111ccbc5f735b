"""``LIVEREC`` settings. Read them only through ``recsys.conf.settings``."""
from __future__ import annotations

from tracking.appsettings import AppSettings

DEFAULTS = {
    # Text encoder backend: {"BACKEND": dotted path, "OPTIONS": {...}}.
    "ENCODER": {"BACKEND": "recsys.encoders.SentenceTransformerEncoder", "OPTIONS": {}},
    # Host models mirrored into the catalogue projection (dotted paths to ItemAdapter classes).
    "ITEM_ADAPTERS": [],
    # Interest model.
    "EVENT_WEIGHTS": {
        "item_viewed": 1.0, "item_clicked": 1.5, "recommendation_clicked": 1.5, "rated": 1.0,
        "added_to_cart": 3.0, "purchased": 5.0, "searched": 1.0, "not_interested": -2.0,
        "removed_from_cart": -0.5,
    },
    "LONG_TERM_HALF_LIFE_HOURS": 24 * 14,
    "SHORT_TERM_HALF_LIFE_HOURS": 0.5,
    # Slots: which strategies with which weights, and the rules applied to the fused list.
    "SLOTS": {
        # for-you: sequential/next-item is by far the strongest single strategy on both evaluation
        # protocols (`manage.py recsys_evaluate --ablations`, docs/evaluation.md); content and
        # trending keep small weights for visitors the sequence model cannot answer yet and to
        # break its near-ties; content/query and similar/items lead only when the page gives a
        # search or an item (cold visitors). collaborative/co-occurrence follows every event while
        # the sequence model retrains periodically, so it carries fresh visitors and a site whose
        # model is not trained yet. Diversity (MMR lambda) and freshness are per-slot tunables,
        # off by default. A weight search (`recsys_evaluate --validation --tune-weights`) finds no
        # gain that holds on held-out targets, so these hand-set weights stay.
        "for-you": {"strategies": {"sequential/next-item": 1.0, "collaborative/co-occurrence": 0.1,
                                   "content/interests": 0.05, "popular/trending": 0.02,
                                   "content/query": 0.8, "similar/items": 0.5},
                    "exclude_events": {"purchased": None, "item_viewed": 3600}, "limit": 8},
        # "More like this": behaviour first, text beside it. Text cosines of one item's
        # neighbours sit close together, so after max-normalisation text at 1.0 drowned the
        # co-occurrence list (bench/bench_similar.py, MovieLens-100K, neighbours judged by
        # held-out raters' co-rating, NDCG@10: text 1.0 + co-occurrence 0.7 0.188, text 0.3 +
        # co-occurrence 1.0 0.371, co-occurrence alone 0.399, text alone 0.062). Text still
        # fills the list for items nobody engaged with yet.
        "similar": {"strategies": {"collaborative/co-occurrence": 1.0, "similar/items": 0.3},
                    "exclude_events": {"purchased": None}, "limit": 6},
        "trending": {"strategies": {"popular/trending": 1.0}, "exclude_events": {}, "limit": 8},
        "popular-in-category": {"strategies": {"popular/in-category": 1.0}, "exclude_events": {"purchased": None},
                                "limit": 8},
        # Search results (context["query"]): full-text and semantic, fused, re-ranked by the
        # visitor's interests (recsys.services.search). Items already seen stay findable.
        "search": {"strategies": {"search/hybrid": 1.0}, "exclude_events": {}, "limit": 10, "fill": False},
    },
    "STRATEGIES": [
        "recsys.strategies.content.InterestVectors",
        "recsys.strategies.content.SimilarItems",
        "recsys.strategies.trending.Trending",
        "recsys.strategies.trending.TrendingInCategory",
        "recsys.strategies.collaborative.CoOccurrence",
        "recsys.strategies.context.QueryMatch",
        "recsys.strategies.sequential.NextItem",
        "recsys.strategies.search.HybridSearch",
    ],
    # The sequential/next-item model's training (recsys.services.sequential; the network's own
    # settings are the strategy's config). FULL_SOFTMAX_MAX_ITEMS: catalogues up to this size
    # train with a softmax over every item, larger ones with sampled softmax (cost per event
    # independent of the catalogue; bench/bench_train.py prints both). On MovieLens-100K (1,682
    # items, loo test, one 128-d member of 50 epochs) sampled scored NDCG@10 0.1216 against full
    # 0.1209 (0.1025 against 0.1223 at epoch 40: one seed, within noise); the full softmax costs
    # 1.3-1.5x the sampled per epoch at 2,000 items, ~3x at 5,000, 5.4-6x at 20,000. The volume schedule
    # (task recsys.tasks.retrain_sequential_if_due, from beat every few minutes): a site with no
    # model trains its first once FIRST_TRAINING_MIN_EVENTS engaged events are logged; after
    # that, every RETRAIN_AFTER_EVENTS engaged events since the newest version warm-start a new
    # one (WARM_START_EPOCHS epochs over the histories of the visitors behind them; new items
    # start from their text). Full retrains stay on the clock (recsys.tasks.train_sequential).
    "SEQUENTIAL": {"FULL_SOFTMAX_MAX_ITEMS": 5_000, "FIRST_TRAINING_MIN_EVENTS": 500,
                   "RETRAIN_AFTER_EVENTS": 5_000, "WARM_START_EPOCHS": 5},
    # Signed visitor tokens for sockets and the recommendations endpoint.
    "TOKEN_MAX_AGE_SECONDS": 24 * 3600,
    # GET /liverec/recs/ rate limits, in requests per fixed window ({"REQUESTS": n, "SECONDS": s},
    # or None to disable); over one the endpoint answers 429 + Retry-After. Counted in the cache
    # alias LIVEREC_TRACKING["RATE_LIMIT_CACHE"], per visitor and per client IP (the same
    # client_ip as ingest, so TRUSTED_PROXIES applies). A widget polls every
    # WIDGET_POLL_SECONDS only while its socket is down.
    "RECS_RATE_LIMIT_VISITOR": {"REQUESTS": 120, "SECONDS": 60},
    "RECS_RATE_LIMIT_IP": {"REQUESTS": 6000, "SECONDS": 60},
    # Query embeddings (recsys.services.queries.embed_query) kept in the shared cache this long
    # (0: only the in-process LRU).
    "QUERY_EMBEDDING_CACHE_SECONDS": 24 * 3600,
    # Item-item association projection (collaborative/co-occurrence). Changing HALF_LIFE_HOURS,
    # WINDOW_* or BACKWARD needs `manage.py recsys_replay` (they shape the stored weights).
    "COOCCURRENCE": {
        "HALF_LIFE_HOURS": 24 * 30,  # forward decay of pair weights, in event time
        # Pair an engagement with this many distinct earlier items (1/gap weighting leaves the
        # 10th at 0.1; each costs two upserted rows per event)...
        "WINDOW_ITEMS": 10,
        "WINDOW_HOURS": 24,  # ...engaged within this many hours of it
        "BACKWARD": 0.1,  # weight of b -> a relative to a -> b when b followed a
    },
    # The trending projection (recsys.models.ItemPopularity), folded with the associations.
    # popular/trending reads it when its half_life_hours equals this one (the default), and
    # otherwise falls back to a cached aggregate over the log. Changing it needs a replay.
    "TRENDING": {"HALF_LIFE_HOURS": 72.0},
    # The association and trending fold (batch worker) runs at most about this often: a new
    # pair or view reaches co-occurrence and trending up to this much later (plus the fold).
    # Each fold's upsert writes ~40 rows per event with two indexes to keep; run after every
    # realtime cycle (0), its write traffic slowed the realtime path's reads and commits:
    # bench_freshness under 200 events/s, probe p50 101-129 ms with 1000 against 175-325.
    "ASSOCIATION_FOLD_INTERVAL_MS": 1000,
    # How long a process reuses an item's associated items once read (recsys.neighbours): a new
    # pair reaches the co-occurrence strategy of other processes at most this much later.
    # 0 reads them on every ranking.
    "NEIGHBOUR_CACHE_SECONDS": 10.0,
    # Bursts of events for one visitor are coalesced into one refresh within this window.
    # 250 ms: quick human clicks land 100-250 ms apart; a lone event is still pushed at once.
    "PUSH_DEBOUNCE_MS": 250,
    # Live push (recsys.live.push): the first change after a quiet spell is pushed at once;
    # changes less than PUSH_DEBOUNCE_MS apart wait for one trailing push, held at most this long.
    "PUSH_MAX_DELAY_MS": 2000,
    # Threads per process that run a request's database-bound strategies while the calling
    # thread computes the CPU-bound ones (recsys.overlap; used only with Django's connection
    # pool, outside transactions). 0 (default): everything inline. It pays where a core is
    # idle during a request, on large catalogues (bench_recommend, 100,000 items: p50 ~20 ->
    # ~16 ms with 3); on a saturated machine it costs throughput (bench_freshness under load:
    # 31 pushes/s with 3 threads in the realtime workers, 37 without).
    "STRATEGY_THREADS": 0,
    # Reason texts (recsys.reasons): LANGUAGE ("" = Django's LANGUAGE_CODE) picks the templates;
    # TEMPLATES {"<language>": {"<kind>": "Because you viewed {title}", ...}} override the defaults.
    "REASONS": {"LANGUAGE": "", "TEMPLATES": {}},
    # The fallback that fills a short list (recsys.fallback): an item created within NEW_DAYS
    # reads "New this week" when the catalogue is older than that by more than a day.
    "FALLBACK": {"NEW_DAYS": 7},
    # The widget polls the JSON endpoint this often when its socket cannot connect.
    "WIDGET_POLL_SECONDS": 15,
    # Admin dashboard and reports: a group (slot, strategy, arm, minute) with fewer distinct
    # visitors than this shows "suppressed" instead of its counts (k-anonymity).
    "ADMIN_MIN_GROUP_VISITORS": 5,
    # A quick bounce: an item event whose properties carry ``dwell_ms`` below this counts
    # with BOUNCE_WEIGHT instead of its own weight (a glance and leave is a mild no).
    "BOUNCE_MAX_DWELL_MS": 3000,
    "BOUNCE_WEIGHT": -0.5,
    # Written interest summary per visitor (batch worker only, debounced). BACKEND: see
    # recsys.summaries (SmolLM2 in process with the [llm] extra, OpenAI-compatible HTTP, or
    # disabled). Off by default: a new site turns it on once it has the packages and a worker
    # with CPU to spare (SmolLM2: 2-50 s of a core per summary).
    "SUMMARY": {"BACKEND": "recsys.summaries.DisabledSummarizer", "OPTIONS": {}},
    "SUMMARY_MAX_TOKENS": 60,
    # One summary per visitor per this window, however many events arrive in it.
    "SUMMARY_DEBOUNCE_SECONDS": 60,
    # Each Celery worker records it is alive this often (recsys.heartbeat); health reports a
    # worker missing after three silent intervals.
    "WORKER_HEARTBEAT_SECONDS": 2.0,
}

settings = AppSettings("LIVEREC", DEFAULTS, import_strings=("ITEM_ADAPTERS", "STRATEGIES"))

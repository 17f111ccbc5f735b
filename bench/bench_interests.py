"""Interest projection speed on MovieLens-100K.

    LIVEREC_STACK_DIR=.stack/x python -m devstack run -- python bench/bench_interests.py

1. Loads the 1,682 films (embedded in process if needed) and the 100,000 ratings as
   ``rated`` events (visitor ``ml-<user>``, global time order) into the dev database
   with one bulk insert per 5,000 rows (its own minimal loader; idempotent).
2. Full rebuild: ``services.interests.rebuild()`` (drop + replay the whole log).
3. Incremental update per event, excluding the encoder (rated events need no encoding):
   (a) the model alone: ``interest_model.apply`` + keyphrase labelling on a profile state;
   (b) the projection path per event: ``apply_new_events(limit=1)`` (read the log after
       the cursor, load the profile, fold, save, move the cursor: one transaction).
4. LLM summary latency (``services.summaries.summarize``, the configured backend,
   SmolLM2-135M on one thread by default) for ``--summaries`` MovieLens visitors.
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone as tz
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import bench.prodenv  # noqa: E402,F401  (DEBUG off, one thread, offline models)

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import transaction  # noqa: E402

LOAD_BATCH = 5000


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def load_catalogue() -> None:
    from demo.catalogue import movielens
    from demo.catalogue.models import Film
    from recsys.services import items

    if Film.objects.count() < 1682:
        Film.objects.bulk_create([Film(ml_id=f.ml_id, title=f.title, year=f.year, genres=f.genres)
                                  for f in movielens.films()], batch_size=1000, ignore_conflicts=True)
    items.sync_from_adapters()
    stale = items.stale_item_pks()
    for start in range(0, len(stale), 256):
        items.embed_items(stale[start:start + 256])
        print(f"\r  embedded {min(start + 256, len(stale))}/{len(stale)} films", end="", flush=True)
    if stale:
        print()


def load_ratings() -> int:
    from demo.catalogue import movielens
    from tracking.models import Event

    have = Event.objects.filter(source=Event.Source.IMPORT, visitor_id__startswith="ml-").count()
    if have >= 100_000:
        return have
    # A partial earlier load is completed, not deleted (the log is append-only): the event
    # ids are deterministic and conflicts are ignored.
    rows = sorted(enumerate(movielens.ratings()), key=lambda r: (r[1][3], r[0]))  # time order, ties by file order
    now = datetime.now(tz.utc)
    t = time.perf_counter()
    for start in range(0, len(rows), LOAD_BATCH):
        batch = []
        for _, (user, item, rating, ts) in rows[start:start + LOAD_BATCH]:
            at = datetime.fromtimestamp(ts, tz.utc)
            batch.append(Event(uuid=uuid.uuid5(uuid.NAMESPACE_URL, f"ml100k/{user}/{item}/{ts}"), name="rated",
                               visitor_id=f"ml-{user}", item_id=str(item), properties={"value": rating},
                               client_time=at, occurred_at=at, received_at=now, source=Event.Source.IMPORT))
        with transaction.atomic():
            Event.objects.bulk_create(batch, ignore_conflicts=True)
    print(f"  loaded {len(rows)} rating events in {time.perf_counter() - t:.1f}s")
    return len(rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--incremental", type=int, default=1000, help="events for the per-event timings")
    parser.add_argument("--summaries", type=int, default=5, help="visitors to summarise (0: skip)")
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    load_catalogue()
    from recsys import interest_model as im
    from recsys.conf import settings
    from recsys.models import VisitorProfile
    from recsys.services import interests, labels
    from tracking.models import Event

    n_events = load_ratings()
    t = time.perf_counter()
    phrases = labels.mine_keyphrases()
    print(f"  {phrases} keyphrases mined and embedded in {time.perf_counter() - t:.1f}s")

    t = time.perf_counter()
    applied = interests.rebuild()
    rebuild_s = time.perf_counter() - t
    print(f"full rebuild: {applied} events, {VisitorProfile.objects.count()} visitors in {rebuild_s:.1f}s "
          f"({applied / rebuild_s:.0f} events/s)")

    # (a) The model alone on real states and real item vectors.
    rng = random.Random(0)
    profiles = list(VisitorProfile.objects.order_by("?")[:200])
    vecs = interests._vectors_for(list(Event.objects.filter(visitor_id__startswith="ml-")[:5000]))[0]
    keys = list(vecs)
    model_ms, label_ms = [], []
    for i in range(args.incremental):
        state = interests.load_state(profiles[i % len(profiles)])
        at = state.last_event_at + timedelta(minutes=5)
        t = time.perf_counter()
        im.apply(state, vecs[rng.choice(keys)], 1.0, at, long_half_life=settings.LONG_TERM_HALF_LIFE_HOURS,
                 short_half_life=settings.SHORT_TERM_HALF_LIFE_HOURS)
        t2 = time.perf_counter()
        labels.label_interests([state])
        t3 = time.perf_counter()
        model_ms.append(1000 * (t2 - t))
        label_ms.append(1000 * (t3 - t2))

    # (b) The projection path, one event per transaction, on fresh events of known visitors.
    last = Event.objects.filter(visitor_id__startswith="ml-").order_by("-occurred_at").first().occurred_at
    users = [p.visitor_id for p in profiles]
    for i in range(args.incremental):
        at = last + timedelta(seconds=i + 1)
        Event.objects.create(uuid=uuid.uuid4(), name="rated", visitor_id=rng.choice(users), item_id=rng.choice(keys),
                             properties={"value": 4}, client_time=at, occurred_at=at, received_at=at,
                             source=Event.Source.IMPORT)
    path_ms = []
    more = True
    while more:
        t = time.perf_counter()
        touched, more = interests.apply_new_events(limit=1)
        if touched:
            path_ms.append(1000 * (time.perf_counter() - t))
    # These events stay: the log is append-only (only tracking.privacy deletes, whole
    # visitors). Run the bench on its own LIVEREC_STACK_DIR, as the docstring says.

    print(f"incremental update per event, excluding the encoder (n={args.incremental}):")
    print(f"  interest_model.apply      p50 {statistics.median(model_ms):.3f} ms  p99 {pct(model_ms, 99):.3f} ms")
    print(f"  + keyphrase labels        p50 {statistics.median(label_ms):.3f} ms  p99 {pct(label_ms, 99):.3f} ms")
    print(f"  projection path (1 event/transaction: log read, fold, save, cursor)  "
          f"p50 {statistics.median(path_ms):.2f} ms  p99 {pct(path_ms, 99):.2f} ms")

    if args.summaries:
        from recsys.services import summaries
        from recsys.summaries import get_summarizer

        t = time.perf_counter()
        summaries.summarize(users[0])  # loads the model
        print(f"LLM summary ({type(get_summarizer()).__name__}, max_tokens {settings.SUMMARY_MAX_TOKENS}): "
              f"first call incl. model load {time.perf_counter() - t:.1f}s")
        lat = []
        for vid in users[1:1 + args.summaries]:
            t = time.perf_counter()
            text = summaries.summarize(vid)
            lat.append(time.perf_counter() - t)
        print(f"  latency p50 {statistics.median(lat):.2f}s  max {max(lat):.2f}s over {len(lat)} visitors; e.g. {text!r}")


if __name__ == "__main__":
    main()

"""One realtime cycle under the freshness bench's load pattern, phase by phase; batch against one by one.

    LIVEREC_STACK_DIR=.stack/cycle python -m devstack run -- python bench/bench_cycle.py [--rounds 8]

The realtime worker's cycle (``recsys.tasks.process_events``) after ``--visitors`` (50) visitors
with open sockets posted 4 item views each (bench_freshness's 200 events/s, one second of it):
fold the interests, store the sequence states, refresh every touched visitor (rank, compare,
push), fold the associations. On the demo catalogue with its MovieLens history and a trained
sequence model (bench_freshness sets them up on the devstack database; run that first, or
this imports them the same way).

Rounds alternate two ways of running the refresh phase, in this one process on the same
database and visitors: "batch", the product (``push.profiles_changed`` over all touched
visitors: one ranking batch, ``engine.recommend_many``) and "one by one", each visitor refreshed
on its own (``push.profiles_changed([visitor])`` per visitor, as the worker did before). Prints
per-phase medians in ms (wall, and this process's CPU); asserts nothing.
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import bench.prodenv  # noqa: E402,F401  (DEBUG off, one thread, offline models)

import django  # noqa: E402

django.setup()

from django.utils import timezone  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visitors", type=int, default=50)
    parser.add_argument("--history", type=int, default=10, help="warm-up rounds before timing (4 events each)")
    parser.add_argument("--rounds", type=int, default=8, help="timed rounds (alternating the two variants)")
    parser.add_argument("--profile", action="store_true", help="then cProfile one batch refresh phase")
    args = parser.parse_args()

    from bench.bench_freshness import ensure_catalogue, watching_visitors
    from recsys.services import cooccurrence, interests, push, serving
    from recsys.tasks import _sequence_states, _store_sequence_states
    from tracking.services import append_events

    catalogue = ensure_catalogue()
    rng = random.Random(5)
    visitors = watching_visitors("bench-cycle", args.visitors)  # every change of theirs is ranked

    def post_second() -> None:
        for v in visitors:
            append_events([{"id": str(uuid.uuid4()), "name": "item_viewed", "item_id": rng.choice(catalogue),
                            "ts": int(time.time() * 1000)} for _ in range(4)], visitor_id=v)

    def cycle(batch: bool) -> dict[str, tuple[float, float]]:
        times: dict[str, tuple[float, float]] = {}

        def phase(name, fn, *a):
            w, c = time.perf_counter(), time.process_time()
            out = fn(*a)
            times[name] = ((time.perf_counter() - w) * 1000, (time.process_time() - c) * 1000)
            return out

        folded: dict = {}
        touched = phase("fold interests", interests.catch_up_in_order, 0, folded)
        ids = [v for v, _ in touched]
        states = phase("sequence states", _sequence_states, ids)
        snapshots = {v: (state, states.states.get(v)) for v, state in folded.items()}  # as tasks.process_events
        logs: list = []
        if batch:
            phase("refresh", lambda: push.profiles_changed(ids, logs=logs, snapshots=snapshots))
        else:
            phase("refresh", lambda: [push.profiles_changed([v], logs=logs, snapshots=snapshots) for v in ids])
        phase("store states", _store_sequence_states, states)
        phase("serve log", serving.record, logs)
        phase("fold associations", cooccurrence.catch_up, 0)
        times["touched"] = (len(ids), 0.0)
        return times

    for _ in range(args.history):
        post_second()
        cycle(True)
        time.sleep(0.3)  # past the debounce window: every visitor opens a burst again
    runs: dict[bool, list[dict]] = {True: [], False: []}
    for r in range(args.rounds):
        batch = r % 2 == 0
        post_second()
        time.sleep(0.3)
        runs[batch].append(cycle(batch))
    print(f"{args.visitors} visitors x 4 views per cycle, {len(catalogue)} items, {timezone.now():%Y-%m-%d %H:%M}")
    phases = [p for p in runs[True][0] if p != "touched"]
    print(f"{'phase (median ms)':<22}{'batch wall':>12}{'cpu':>8}{'one-by-one wall':>18}{'cpu':>8}")
    totals = {True: 0.0, False: 0.0}
    for p in phases:
        row = []
        for batch in (True, False):
            wall = statistics.median(t[p][0] for t in runs[batch])
            cpu = statistics.median(t[p][1] for t in runs[batch])
            totals[batch] += wall
            row += [wall, cpu]
        print(f"{p:<22}{row[0]:>12.1f}{row[1]:>8.1f}{row[2]:>18.1f}{row[3]:>8.1f}")
    print(f"{'cycle':<22}{totals[True]:>12.1f}{'':>8}{totals[False]:>18.1f}")
    if args.profile:
        import cProfile
        import pstats

        post_second()
        time.sleep(0.3)
        ids = [v for v, _ in interests.catch_up_in_order(0)]
        _store_sequence_states(_sequence_states(ids))
        profiler = cProfile.Profile()
        profiler.runcall(push.profiles_changed, ids, logs=[])
        pstats.Stats(profiler).sort_stats(os.environ.get("SORT", "tottime")).print_stats(40)
    refresh = [statistics.median(t["refresh"][0] for t in runs[b]) for b in (True, False)]
    print(f"refresh phase, batch / one by one: {refresh[0] / refresh[1]:.2f} "
          f"({refresh[0] / args.visitors:.1f} vs {refresh[1] / args.visitors:.1f} ms per visitor)")


if __name__ == "__main__":
    main()

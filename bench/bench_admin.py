"""What the admin tools cost: the engine's experiment lookup, a side-by-side preview, the dashboard.

    LIVEREC_STACK_DIR=.stack/bench python -m devstack run -- python bench/bench_admin.py [events]

Builds a synthetic ``bench-admin-*`` catalogue (2,000 random unit 384-d items), 50 visitors
with 20 views each folded by the real interest projection, and ``events`` (default 100,000)
extra widget events (``recommendation_shown`` / ``recommendation_clicked``) spread over the
last 24 hours. Then times, in this process:
  - ``engine.slot_config(slot, visitor)`` with no experiment and with a running one (the
    per-request cost the experiment hook adds to every recommendation);
  - the preview endpoint (live list + edited list, two ``recommend`` calls) through the
    Django test client as a logged-in superuser;
  - the dashboard page over the extra events.
Removes everything it created. Prints figures; asserts nothing.
"""
from __future__ import annotations

import os
import statistics
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo.settings")

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.utils import timezone  # noqa: E402

PREFIX = "bench-admin-"
ITEMS, VISITORS, VIEWS = 2000, 50, 20


def timed(fn, runs: int, warmup: int = 5) -> tuple[float, float]:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(0.95 * (len(samples) - 1))]


def main(extra_events: int) -> None:
    call_command("migrate", verbosity=0)
    from django.contrib.auth.models import User
    from django.test import Client
    from django.urls import reverse

    from recsys import engine
    from recsys.encoders import get_encoder
    from recsys.models import Experiment, Item, VisitorProfile
    from recsys.services import experiments, interests, publishing
    from recsys.services.vectors import ensure_hnsw_index
    from tracking.models import Event

    encoder = get_encoder()
    cleanup(Event, Item, VisitorProfile, Experiment, User)
    rng = np.random.default_rng(1)
    vecs = rng.standard_normal((ITEMS, encoder.dim)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    Item.objects.bulk_create([Item(item_id=f"{PREFIX}{i}", title=f"Bench item {i}", embedding=vecs[i].tolist(),
                                   embedding_model=encoder.name, source="bench") for i in range(ITEMS)], batch_size=1000)
    ensure_hnsw_index(encoder.dim)
    now = timezone.now()
    events = [Event(uuid=uuid.uuid4(), name="item_viewed", visitor_id=f"{PREFIX}v{v}",
                    item_id=f"{PREFIX}{int(rng.integers(ITEMS))}", occurred_at=now - timedelta(minutes=VIEWS - j),
                    received_at=now - timedelta(minutes=VIEWS - j)) for v in range(VISITORS) for j in range(VIEWS)]
    Event.objects.bulk_create(events, batch_size=2000)
    t = time.perf_counter()
    interests.catch_up()
    print(f"folded {len(events)} views of {VISITORS} visitors in {time.perf_counter() - t:.1f} s")
    widget = []
    for n in range(extra_events):
        at = now - timedelta(seconds=float(rng.uniform(0, 86400)))
        widget.append(Event(uuid=uuid.uuid4(), name="recommendation_clicked" if n % 20 == 0 else "recommendation_shown",
                            visitor_id=f"{PREFIX}w{n % 3000}", occurred_at=at, received_at=at,
                            properties={"slot": "for-you", "rec_id": "r", "strategy": "content/interests"}))
    t = time.perf_counter()
    Event.objects.bulk_create(widget, batch_size=5000)
    print(f"inserted {extra_events} widget events in {time.perf_counter() - t:.1f} s")

    visitor = f"{PREFIX}v0"
    from django.db import connection

    def select_one():
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()

    med, p95 = timed(select_one, 500)
    print(f"baseline SELECT 1 round trip:      median {med:.3f} ms  p95 {p95:.3f} ms  (machine load {os.getloadavg()[0]:.1f})")
    med, p95 = timed(lambda: engine.slot_config("for-you", visitor), 500)
    print(f"slot_config, no experiment:        median {med:.3f} ms  p95 {p95:.3f} ms")
    v1 = publishing.publish_slot_config("for-you", {"strategies": {"content/interests": 1.0}}, user="bench")
    v2 = publishing.publish_slot_config("for-you", {"strategies": {"content/interests": 1.0, "popular/trending": 0.3}},
                                    user="bench")
    exp = experiments.create_experiment(f"{PREFIX}exp", "for-you", [{"name": "A", "version": v1.version},
                                                                    {"name": "B", "version": v2.version}], user="bench")
    experiments.start_experiment(exp.pk, user="bench")
    med, p95 = timed(lambda: engine.slot_config("for-you", visitor), 500)
    print(f"slot_config, running experiment:   median {med:.3f} ms  p95 {p95:.3f} ms")
    med, p95 = timed(lambda: engine.recommend(visitor, "for-you"), 100)
    print(f"recommend (for-you, in experiment): median {med:.1f} ms  p95 {p95:.1f} ms")
    experiments.stop_experiment(exp.pk, user="bench")

    user = User.objects.create_superuser(f"{PREFIX}boss", "b@example.com", "x")
    client = Client()
    client.force_login(user)
    form = {"w:content/interests": "1", "w:popular/trending": "0.5", "exclude": "item_viewed 3600", "limit": "8",
            "diversity": "0.3", "visitor": visitor}
    url = reverse("admin:recsys_tune_preview", args=["for-you"])
    med, p95 = timed(lambda: client.post(url, form), 40)
    print(f"preview (live + edited, MMR 0.3):  median {med:.1f} ms  p95 {p95:.1f} ms")
    dash = reverse("admin:recsys_dashboard")
    med, p95 = timed(lambda: client.get(dash), 10, warmup=2)
    print(f"dashboard over {Event.objects.count()} events: median {med:.1f} ms  p95 {p95:.1f} ms")
    from recsys.models import SlotConfig

    SlotConfig.objects.filter(pk__in=[v1.pk, v2.pk]).delete()
    cleanup(Event, Item, VisitorProfile, Experiment, User)


def cleanup(Event, Item, VisitorProfile, Experiment, User) -> None:
    Event.objects.filter(visitor_id__startswith=PREFIX).delete()
    VisitorProfile.objects.filter(visitor_id__startswith=PREFIX).delete()
    Item.objects.filter(item_id__startswith=PREFIX).delete()
    Experiment.objects.filter(name__startswith=PREFIX).delete()
    from recsys.models import AuditEntry

    AuditEntry.objects.filter(user__in=["bench", f"{PREFIX}boss"]).delete()
    User.objects.filter(username__startswith=PREFIX).delete()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)

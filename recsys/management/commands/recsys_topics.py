"""Mine keyphrases, cluster the catalogue into topics, and place every visitor over them."""
from __future__ import annotations

import time

from django.core.management.base import BaseCommand

from recsys.services import labels, topics


class Command(BaseCommand):
    help = "Keyphrases (embedded once), k-means catalogue topics labelled by them, visitor topic shares."

    def add_arguments(self, parser):
        parser.add_argument("-k", type=int, default=None, help="number of topics (default ~sqrt(items/2))")
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args, **opts):
        t = time.perf_counter()
        n = labels.mine_keyphrases()
        self.stdout.write(f"{n} keyphrases ({time.perf_counter() - t:.1f}s)")
        t = time.perf_counter()
        k = topics.recompute_topics(opts["k"], seed=opts["seed"])
        self.stdout.write(f"{k} topics ({time.perf_counter() - t:.1f}s)")
        v = topics.recompute_visitor_topics()
        self.stdout.write(self.style.SUCCESS(f"{v} visitors placed over the topics"))

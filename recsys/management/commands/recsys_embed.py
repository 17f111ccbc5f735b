"""Embed (or re-embed after an encoder switch) the catalogue through the batch worker."""
from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from recsys.models import Item
from recsys.services import items


class Command(BaseCommand):
    help = "Embed every item lacking a vector from the configured encoder, with a progress bar."

    def add_arguments(self, parser):
        parser.add_argument("--all", action="store_true", help="re-embed every item, not only stale ones")
        parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for the worker")
        parser.add_argument("--no-wait", action="store_true", help="enqueue and return")

    def handle(self, *args, **opts):
        pks = list(Item.objects.values_list("pk", flat=True)) if opts["all"] else items.stale_item_pks()
        if opts["all"]:
            Item.objects.update(embedding_model="")
        if not pks:
            self.stdout.write("All items are embedded.")
            return
        items.enqueue_embedding(pks)
        if opts["no_wait"]:
            self.stdout.write(f"Enqueued {len(pks)} items.")
            return
        total = Item.objects.count()
        done = items.embedded_count()
        deadline = time.monotonic() + opts["timeout"]
        with tqdm(total=total, initial=done, desc="embedding", unit="item") as bar:
            while done < total:
                if time.monotonic() > deadline:
                    raise CommandError(f"the batch worker embedded {done}/{total} items in {opts['timeout']:.0f}s; "
                                       "is a worker consuming the liverec.batch queue?")
                time.sleep(0.5)
                now = items.embedded_count()
                bar.update(now - done)
                done = now
        # Bulk runs build the HNSW index once at the end (finish_bulk_embedding).
        while not items.index_ready():
            if time.monotonic() > deadline:
                raise CommandError("the vectors are written but the batch worker did not build the HNSW index")
            time.sleep(0.2)
        self.stdout.write(self.style.SUCCESS(f"{total} items embedded."))

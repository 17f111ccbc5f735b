"""Mirror the registered host models into the catalogue, then embed it (or re-embed it after an
encoder switch) through the batch worker."""
from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from recsys.models import Item
from recsys.services import items

BATCH_QUEUE = "liverec.batch"


def queue_consumers(queue: str, timeout: float = 1.0) -> list[str]:
    """Names of the Celery workers consuming ``queue`` that answer within ``timeout`` seconds
    (a broadcast on the broker: no worker, no answer)."""
    from celery import current_app

    try:
        replies = current_app.control.inspect(timeout=timeout).active_queues() or {}
    except Exception:  # broker unreachable: `manage.py check` says so (recsys.E002)
        return []
    return sorted(name for name, queues in replies.items() if any(q.get("name") == queue for q in queues or []))


class Command(BaseCommand):
    help = "Embed every item lacking a vector from the configured encoder, with a progress bar."

    def add_arguments(self, parser):
        parser.add_argument("--all", action="store_true", help="re-embed every item, not only stale ones")
        parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for the worker")
        parser.add_argument("--no-wait", action="store_true", help="enqueue and return")
        parser.add_argument("--worker-timeout", type=float, default=60,
                            help=f"seconds to wait for a worker on {BATCH_QUEUE} to appear before giving up")

    def handle(self, *args, **opts):
        # An existing catalogue: the registered host objects saved before LiveRec was installed.
        synced = items.sync_from_adapters()
        if synced:
            self.stdout.write(f"{synced} catalogue objects mirrored from the registered adapters.")
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
        self.wait_for_worker(opts["worker_timeout"])
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

    def wait_for_worker(self, timeout: float) -> None:
        """Say so at once when no worker consumes the batch queue, instead of a silent wait."""
        if queue_consumers(BATCH_QUEUE):
            return
        self.stdout.write(f"waiting for a worker on {BATCH_QUEUE}… (start one: celery -A <project> worker "
                          f"-Q {BATCH_QUEUE})")
        self.stdout.flush()
        deadline = time.monotonic() + timeout
        while not queue_consumers(BATCH_QUEUE, timeout=2.0):
            if time.monotonic() > deadline:
                raise CommandError(f"no Celery worker consumes the {BATCH_QUEUE} queue after {timeout:.0f}s; the items "
                                   f"are enqueued and will be embedded once one starts: celery -A <project> worker "
                                   f"-Q {BATCH_QUEUE}")
        self.stdout.write("worker found.")

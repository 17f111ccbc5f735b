"""Train the batch models now (the beat schedule does it periodically)."""
from __future__ import annotations

from django.core.management.base import BaseCommand
from tqdm import tqdm

from recsys.engine import build_strategy
from recsys.services import sequential
from recsys.tasks import train_sequential


class Command(BaseCommand):
    help = "Train the sequential/next-item model on the whole event log and store a new version."

    def add_arguments(self, parser):
        parser.add_argument("--enqueue", action="store_true", help="send the task to the batch worker instead")
        parser.add_argument("--threads", type=int, default=1, help="torch threads for this run")

    def handle(self, *args, **opts):
        if opts["enqueue"]:
            train_sequential.delay()
            self.stdout.write("Enqueued recsys.tasks.train_sequential on the batch queue.")
            return
        config = build_strategy(sequential.MODEL_NAME).config
        with tqdm(total=int(config["epochs"]), desc="training sequential/next-item", unit="epoch") as bar:
            row = sequential.train_and_store(config, threads=opts["threads"],
                                             progress=lambda epoch, loss, model: (bar.update(1), bar.set_postfix(loss=f"{loss:.3f}")))
        if row is None:
            self.stdout.write("Nothing to learn yet: no visitor has two item events.")
        else:
            self.stdout.write(self.style.SUCCESS(f"Stored {row.name} v{row.version}: {row.metrics}"))

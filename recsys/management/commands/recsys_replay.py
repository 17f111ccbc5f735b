"""Drop the projections and rebuild them from the event log (or only catch up from the cursor)."""
from __future__ import annotations

from django.core.management.base import BaseCommand
from tqdm import tqdm

from recsys.services import cooccurrence, interests
from tracking.models import Event


class Command(BaseCommand):
    help = "Rebuild every projection of the event log by replay (--catch-up: only apply pending events)."

    def add_arguments(self, parser):
        parser.add_argument("--catch-up", action="store_true", help="apply events after the cursors, drop nothing")

    def handle(self, *args, **opts):
        if opts["catch_up"]:
            touched = interests.catch_up()
            cooccurrence.catch_up()
            self.stdout.write(f"Caught up; {len(touched)} visitors updated.")
            return
        with tqdm(total=Event.objects.count(), desc="replaying", unit="event") as bar:
            total = interests.rebuild(progress=bar.update)
        self.stdout.write(self.style.SUCCESS(f"Rebuilt the interest projection from {total} events."))
        with tqdm(total=Event.objects.count(), desc="co-occurrence", unit="event") as bar:
            total = cooccurrence.rebuild(progress=bar.update)
        self.stdout.write(self.style.SUCCESS(f"Rebuilt the item association projection from {total} events."))

"""Import the MovieLens-100K films into the demo shop and have the worker embed them."""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

from demo.catalogue import movielens
from demo.catalogue.models import Film
from recsys.models import TrainedModel
from recsys.services import items, labels
from tracking import imports
from tracking.models import Event


class Command(BaseCommand):
    help = "Load the 1,682 MovieLens-100K films (from the installed recbole wheel) and embed them."

    def handle(self, *args, **opts):
        if Film.objects.count() < 1682:
            films = [Film(ml_id=f.ml_id, title=f.title, year=f.year, genres=f.genres) for f in movielens.films()]
            Film.objects.bulk_create(films, batch_size=1000, update_conflicts=True, unique_fields=["ml_id"],
                                     update_fields=["title", "year", "genres"])
            self.stdout.write(f"Imported {len(films)} films.")
        synced = items.sync_from_adapters()
        self.stdout.write(f"Catalogue projection holds {synced} items.")
        call_command("recsys_embed", stdout=self.stdout)
        # Keyphrases: the readable labels of visitors' interests in their reasons.

        self.stdout.write(f"{labels.mine_keyphrases()} keyphrases mined.")
        User = get_user_model()
        if not User.objects.filter(username="admin").exists():
            User.objects.create_superuser("admin", "admin@example.com", "admin")
            self.stdout.write("Created superuser admin / admin (demo only).")
        self.import_ratings()
        self.first_training()

    def first_training(self) -> None:
        """The for-you slot leads with the sequence model, which beat retrains every 6 hours:
        a new demo asks the batch worker for its first version now (a few minutes of CPU)."""
        if not TrainedModel.objects.exists():
            call_command("recsys_train", enqueue=True, stdout=self.stdout)

    def import_ratings(self) -> None:
        """MovieLens' 100,000 ratings as the history of past visitors "ml-<user>" (first run only)."""
        import sys

        from tqdm import tqdm


        total = 100_000
        if Event.objects.filter(source=Event.Source.IMPORT, visitor_id__startswith="ml-").count() >= total:
            return
        rows = (imports.ImportRow(n + 2, str(user), str(item), "rated", str(ts), str(rating))
                for n, (user, item, rating, ts) in enumerate(movielens.ratings()))
        with tqdm(total=total, desc="importing MovieLens ratings", unit="ev", file=sys.stderr) as bar:
            report = imports.import_rows(rows, visitor_prefix="ml-", progress=bar.update)
        self.stdout.write(f"MovieLens history: {report.accepted} ratings imported, {report.duplicate} already there, "
                          f"{len(report.rejected)} rejected.")

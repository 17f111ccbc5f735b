from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    # CONCURRENTLY: a live site's log keeps taking appends while the index builds.
    atomic = False

    dependencies = [
        ("tracking", "0001_initial"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="event",
            index=models.Index(fields=["visitor_id", "txid", "id"], name="tracking_ev_visitor_log"),
        ),
    ]

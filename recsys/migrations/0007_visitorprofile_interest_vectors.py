"""VisitorProfile: the interests' centroids move from the ``interests`` JSON to a binary column.

Why: each profile's JSON held its centroids as decimal floats (~12.6 kB of text for three
384-d centroids on the demo database). The realtime fold decoded, rounded and re-encoded
them on every batch (~9% of a realtime worker's CPU under bench_freshness's load, py-spy),
and PostgreSQL parsed each float into a numeric and compressed the result on every write.
``interest_vectors`` holds the same centroids as float32 bytes (``services.interests.pack_vectors``),
and ``interests`` keeps each interest's weight and label.

Existing profiles are converted in place (the centroids as they were stored); the reverse
migration writes them back into the JSON. Float bytes do not compress, so the column is
stored uncompressed (``STORAGE EXTERNAL``: no compression attempt on each write).
"""
import numpy as np
from django.db import migrations, models

BATCH = 2000


def _rewrite(apps, fields: list[str], change) -> None:
    """``change(profile)`` on every profile, in batches; those it returns True for are saved."""
    Profile = apps.get_model("recsys", "VisitorProfile")
    batch = []
    for p in Profile.objects.only("id", *fields).order_by("id").iterator(chunk_size=BATCH):
        if change(p):
            batch.append(p)
        if len(batch) >= BATCH:
            Profile.objects.bulk_update(batch, fields)
            batch = []
    if batch:
        Profile.objects.bulk_update(batch, fields)


def _move_out(p) -> bool:
    vectors = [i.pop("vector") for i in p.interests or [] if "vector" in i]
    if vectors:
        p.interest_vectors = np.asarray(vectors, dtype="<f4").tobytes()
    return bool(vectors)


def _move_back(p) -> bool:
    stored = p.interests or []
    if not stored or not p.interest_vectors:
        return False
    vectors = np.frombuffer(bytes(p.interest_vectors), dtype="<f4").reshape(len(stored), -1)
    for i, vec in zip(stored, vectors):
        i["vector"] = np.round(vec.astype(np.float64), 6).tolist()
    return True


def _split(apps, schema_editor):
    _rewrite(apps, ["interests", "interest_vectors"], _move_out)


def _join(apps, schema_editor):
    _rewrite(apps, ["interests", "interest_vectors"], _move_back)


class Migration(migrations.Migration):

    dependencies = [
        ("recsys", "0006_itemassociation_pair_key"),
    ]

    operations = [
        migrations.AddField(
            model_name="visitorprofile",
            name="interest_vectors",
            field=models.BinaryField(blank=True, default=bytes, editable=False),
        ),
        migrations.RunSQL(
            "ALTER TABLE recsys_visitorprofile ALTER COLUMN interest_vectors SET STORAGE EXTERNAL",
            reverse_sql=migrations.RunSQL.noop,
        ),
        migrations.RunPython(_split, _join),
    ]

"""The example catalogue: 30 products (products/catalogue.json)."""
import json
from pathlib import Path

from django.db import migrations


def load(apps, schema_editor):
    Product = apps.get_model("products", "Product")
    rows = json.loads((Path(__file__).resolve().parent.parent / "catalogue.json").read_text())
    Product.objects.bulk_create(Product(title=t, description=d, tags=g, price=p) for t, d, g, p in rows)


class Migration(migrations.Migration):
    dependencies = [("products", "0001_initial")]
    operations = [migrations.RunPython(load, migrations.RunPython.noop)]

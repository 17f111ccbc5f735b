"""The demo site's Celery app (liverec.celery), as docs/quickstart.md shows it."""
from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo.settings")

from liverec.celery import make_celery  # noqa: E402

app = make_celery("demo")

"""ASGI entry point: LiveRec's whole application (liverec.asgi), as docs/quickstart.md shows it."""
from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo.settings")

from liverec.asgi import liverec_application  # noqa: E402

application = liverec_application()

"""The demo site's Celery app (liverec.celery, as docs/quickstart.md shows it), plus the stack's
process priorities."""
from __future__ import annotations

import os

from celery.signals import worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo.settings")

from devstack import priority  # noqa: E402
from liverec.celery import make_celery  # noqa: E402

app = make_celery("demo")
# The stack runs the batch worker niced: its session and its database backends follow suit.
priority.connect()


@worker_ready.connect
def lower_session_on_start(sender=None, **kwargs) -> None:
    priority.lower_own_session()  # a niced (batch) worker's session weighs as niced (autogroups)

"""The demo site's Celery app. The reusable apps only define ``@shared_task``s."""
from __future__ import annotations

import os

from celery import Celery
from celery.signals import worker_ready

from devstack import priority

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo.settings")

app = Celery("demo")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# The stack runs the batch worker niced: its session and its database backends follow suit.
priority.connect()


@worker_ready.connect
def catch_up_on_start(sender=None, **kwargs) -> None:
    """A (re)started realtime worker applies what is pending from the projection cursor.

    With acks_late a killed worker's task is redelivered only after the broker's visibility
    timeout (10 min); the cursor makes that wait unnecessary.
    """
    queues = {q.name for q in sender.app.amqp.queues.consume_from.values()} if sender else set()
    if "liverec.realtime" in queues:
        sender.app.send_task("recsys.tasks.process_events", queue="liverec.realtime")
    priority.lower_own_session()  # a niced (batch) worker's session weighs as niced (autogroups)

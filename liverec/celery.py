"""The project's Celery app in one call (the apps themselves only define ``@shared_task``s).

    # mysite/celery.py
    import os
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
    from liverec.celery import make_celery
    app = make_celery("mysite")

and ``from .celery import app as celery_app`` in ``mysite/__init__.py``, so the web process
enqueues through this app (without it Celery's default app has no broker: ``check`` says
recsys.E010).
"""
from __future__ import annotations

from celery import Celery
from celery.signals import worker_ready

from .schedule import BATCH, REALTIME

#: Celery settings LiveRec relies on; a site's own ``CELERY_*`` settings win over each.
DEFAULTS = {
    # A task of a killed worker is redelivered, not lost (the projections are idempotent).
    "task_acks_late": True,
    "task_reject_on_worker_lost": True,
    "worker_prefetch_multiplier": 1,
    # Tasks without a queue of their own go to the batch queue, never to Celery's "celery".
    "task_default_queue": BATCH,
    "broker_connection_retry_on_startup": True,
    # Redelivery after 10 min; a worker's restart catches up from the cursor at once (below).
    "broker_transport_options": {"socket_connect_timeout": 2, "visibility_timeout": 600},
}


def make_celery(name: str, *, autodiscover: bool = True) -> Celery:
    """A Celery app configured from Django's ``CELERY_*`` settings over ``DEFAULTS``, with the
    installed apps' tasks discovered. The beat schedule is ``CELERY_BEAT_SCHEDULE``; without
    one, LiveRec's (``liverec.schedule.beat_schedule()``)."""
    from .schedule import beat_schedule

    from django.conf import settings

    app = Celery(name)
    app.config_from_object("django.conf:settings", namespace="CELERY")
    # Only what the site leaves unset (Celery's add_defaults would override the site's values).
    app.conf.update({key: value for key, value in dict(DEFAULTS, beat_schedule=beat_schedule()).items()
                     if not hasattr(settings, f"CELERY_{key.upper()}")})
    if autodiscover:
        app.autodiscover_tasks()
    return app


@worker_ready.connect
def catch_up_on_start(sender=None, **kwargs) -> None:
    """A (re)started realtime worker applies what is pending from the projection cursor: with
    acks_late a killed worker's task is redelivered only after the visibility timeout."""
    if sender is None:
        return
    queues = {q.name for q in sender.app.amqp.queues.consume_from.values()}
    if REALTIME in queues:
        sender.app.send_task("recsys.tasks.process_events", queue=REALTIME)

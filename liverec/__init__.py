"""The site-facing wiring of LiveRec: one import per file a Django project owns.

``liverec.asgi.liverec_application()`` (asgi.py), ``liverec.celery.make_celery()`` (celery.py),
``liverec.schedule.beat_schedule()`` (settings) and ``include("liverec.urls")`` (urls.py).
docs/quickstart.md shows each in place. The apps themselves are ``tracking`` and ``recsys``.
"""

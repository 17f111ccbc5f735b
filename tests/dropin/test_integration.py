"""The site-facing helpers: liverec.asgi (static files, routing), liverec.celery, liverec.schedule."""
from __future__ import annotations

import asyncio

import pytest
from django.test import override_settings

from liverec.staticfiles import AppStaticFiles


async def _not_found(scope, receive, send):
    await send({"type": "http.response.start", "status": 404, "headers": []})
    await send({"type": "http.response.body", "body": b"django"})


def request(app, path: str, method: str = "GET", headers=()):
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "headers": list(headers)}
    asyncio.run(app(scope, receive, send))
    start = sent[0]
    return start["status"], dict(start["headers"]), b"".join(m.get("body", b"") for m in sent[1:])


def test_the_tracker_and_widget_scripts_are_served_and_nothing_else():
    app = AppStaticFiles(_not_found)
    status, headers, body = request(app, "/static/recsys/widget.js")
    assert status == 200 and b"liverec-widget" in body
    assert headers[b"content-type"].startswith(b"text/javascript")
    status, headers, body = request(app, "/static/tracking/liverec.js")
    assert status == 200 and body
    assert request(app, "/static/recsys/widget.css")[0] == 200
    # Another app's files, paths out of the folders, and writes go to the site.
    for path in ("/static/admin/css/base.css", "/static/recsys/../../conf.py", "/static/recsys/%2e%2e/conf.py",
                 "/static/recsys/nope.js"):
        assert request(app, path) == (404, {}, b"django"), path
    assert request(app, "/static/recsys/widget.js", method="POST")[0] == 404


def test_an_unchanged_script_is_answered_304():
    app = AppStaticFiles(_not_found)
    _, headers, _ = request(app, "/static/recsys/widget.js")
    status, _, body = request(app, "/static/recsys/widget.js", headers=[(b"if-none-match", headers[b"etag"])])
    assert status == 304 and body == b""


def test_static_url_on_another_host_serves_nothing_here():
    with override_settings(STATIC_URL="https://cdn.example/static/"):
        app = AppStaticFiles(_not_found)
    assert request(app, "/static/recsys/widget.js")[0] == 404


def test_the_application_routes_sockets_behind_the_origin_validator():
    from channels.security.websocket import OriginValidator

    from liverec.asgi import liverec_application

    app = liverec_application(freeze_heap=False)
    assert isinstance(app.application_mapping["http"], AppStaticFiles)
    assert isinstance(app.application_mapping["websocket"], OriginValidator)
    plain = liverec_application(serve_static=False, freeze_heap=False)
    assert not isinstance(plain.application_mapping["http"], AppStaticFiles)


def test_the_beat_schedule_covers_catch_up_retention_folds_and_training():
    from liverec.schedule import beat_schedule

    tasks = {e["task"] for e in beat_schedule().values()}
    assert tasks == {"recsys.tasks.process_events", "recsys.tasks.fold_associations",
                     "tracking.tasks.apply_retention", "tracking.tasks.ensure_event_partitions",
                     "recsys.tasks.prune_associations", "recsys.tasks.train_sequential",
                     "recsys.tasks.retrain_sequential_if_due"}
    assert "recsys.tasks.train_sequential" not in {e["task"] for e in beat_schedule(train_sequential_hours=None).values()}


def test_make_celery_applies_liverec_defaults_under_the_sites_own_settings():
    from liverec.celery import make_celery

    app = make_celery("t1", autodiscover=False)
    assert app.conf.task_default_queue == "liverec.batch" and app.conf.task_acks_late is True
    with override_settings(CELERY_TASK_ACKS_LATE=False, CELERY_BEAT_SCHEDULE={"mine": {"task": "x", "schedule": 1}}):
        app = make_celery("t2", autodiscover=False)
        assert app.conf.task_acks_late is False and list(app.conf.beat_schedule) == ["mine"]


@pytest.mark.parametrize("value, separators, expected", [
    ("running shoes, trail", ",", ["running shoes", "trail"]),
    ("running shoes, trail", ", ", ["running", "shoes", "trail"]),
    ("a;b, c", ",;", ["a", "b", "c"]),
    (["Sci-Fi", "Drama"], ",", ["Sci-Fi", "Drama"]),
    (None, ",", []),
])
def test_categories_split_on_commas_by_default(value, separators, expected):
    from recsys.adapters import split_categories

    assert split_categories(value, separators) == expected

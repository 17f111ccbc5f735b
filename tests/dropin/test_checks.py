"""`manage.py check` names each set-up mistake a new site makes, with its fix (recsys.checks)."""
from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from recsys import checks

REDIS_LAYER = {"BACKEND": "channels_redis.core.RedisChannelLayer"}


def ids(messages) -> set[str]:
    return {m.id for m in messages}


def test_a_site_without_a_celery_app_is_told_to_create_celery_py():
    from celery import Celery

    fallback = Celery("default", set_as_current=False)  # what current_app is without one of the site's
    [error] = checks.celery_app_errors(fallback)
    assert error.id == "recsys.E010"
    assert "make_celery('demo')" in error.hint and "demo/__init__.py" in error.hint


def test_a_celery_app_without_broker_or_result_backend_is_named():
    from celery import Celery

    bare = Celery("mysite", set_as_current=False)
    errors = checks.celery_app_errors(bare)
    assert ids(errors) == {"recsys.E011", "recsys.E012"}
    assert all("CELERY_" in e.hint for e in errors)


def test_the_demo_celery_app_passes():
    assert checks.celery_app_errors() == []


@pytest.mark.parametrize("hosts, failing", [
    (["redis://127.0.0.1:6379/0"], True),
    ([{"address": "redis://127.0.0.1:6379/0"}], True),
    ([{"address": "redis://127.0.0.1:6379/0", "socket_timeout": 5}], True),
    ([{"address": "redis://127.0.0.1:6379/0", "socket_timeout": 30}], False),
    (["redis://127.0.0.1:6379/0?socket_timeout=30"], False),
])
def test_a_channel_layer_socket_timeout_shorter_than_its_wait_is_an_error(hosts, failing):
    with override_settings(CHANNEL_LAYERS={"default": dict(REDIS_LAYER, CONFIG={"hosts": hosts})}):
        errors = checks.check_channel_layer_timeout(None)
    assert ids(errors) == ({"recsys.E013"} if failing else set())
    if failing:
        assert '"socket_timeout": 30' in errors[0].hint


def test_static_files_unserved_under_asgi_are_a_warning():
    plain = [m for m in __import__("django.conf").conf.settings.MIDDLEWARE if "whitenoise" not in m]
    with override_settings(MIDDLEWARE=plain, ASGI_APPLICATION="tests.dropin.plain_asgi.application"):
        [warning] = checks.check_static_served(None)
    assert warning.id == "recsys.W011" and "liverec_application" in warning.hint
    # The demo builds its app with liverec_application, which serves them.
    with override_settings(MIDDLEWARE=plain):
        assert checks.check_static_served(None) == []
    with override_settings(MIDDLEWARE=plain, ASGI_APPLICATION="tests.dropin.plain_asgi.application",
                           STATIC_URL="https://cdn.example/static/"):
        assert checks.check_static_served(None) == []


def test_missing_settings_are_each_named():
    from django.conf import settings

    apps = [a for a in settings.INSTALLED_APPS if a != "channels"]
    middleware = [m for m in settings.MIDDLEWARE if m != "tracking.middleware.VisitorMiddleware"]
    locmem = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    with override_settings(INSTALLED_APPS=apps, MIDDLEWARE=middleware, ASGI_APPLICATION=None, CHANNEL_LAYERS={},
                           CACHES=locmem):
        found = {m.id: m for m in checks.check_settings(None)}
    assert {"recsys.E014", "recsys.E015", "recsys.E016", "recsys.E017", "recsys.E018"} <= set(found)
    assert "recsys.cache.RedisCache" in found["recsys.E018"].hint
    assert "channels" in found["recsys.E014"].msg
    assert "socket_timeout" in found["recsys.E017"].hint


def test_the_demo_settings_pass():
    assert checks.check_settings(None) == []


def test_no_catalogue_is_a_warning(monkeypatch):
    monkeypatch.setattr("recsys.adapters._registry", {})
    assert "recsys.W010" in ids(checks.check_settings(None))


def test_a_slot_weighting_an_untrained_sequence_model_is_a_warning(db):
    from recsys.models import TrainedModel

    TrainedModel.objects.filter(name="sequential/next-item").delete()
    [warning] = checks.check_trained_models(None)
    assert warning.id == "recsys.W012" and "recsys_train" in warning.hint and "for-you" in warning.msg
    TrainedModel.objects.create(name="sequential/next-item", version=1, blob=b"")
    assert checks.check_trained_models(None) == []


def test_a_summary_backend_whose_packages_are_missing_is_a_warning_and_turns_itself_off(monkeypatch, caplog):
    from recsys import summaries

    real_find_spec = summaries.importlib.util.find_spec
    monkeypatch.setattr(summaries.importlib.util, "find_spec",
                        lambda name, *a: None if name == "xllamacpp" else real_find_spec(name, *a))
    smol = {"BACKEND": "recsys.summaries.SmolLM2Summarizer", "OPTIONS": {"threads": 1, "seed": 99}}
    with override_settings(LIVEREC={"ITEM_ADAPTERS": ["demo.catalogue.adapters.FilmAdapter"], "SUMMARY": smol}):
        [warning] = checks.check_summary_backend(None)
        assert warning.id == "recsys.W013" and "xllamacpp" in warning.msg and "--no-deps" in warning.hint
        with caplog.at_level("WARNING", logger="recsys.summaries"):
            first, second = summaries.get_summarizer(), summaries.get_summarizer()
        assert not first.enabled and second is first
        assert len([r for r in caplog.records if "interest summary is off" in r.getMessage()]) == 1
    summaries._build.cache_clear()


def test_the_new_site_default_has_no_summary_warning():
    assert checks.check_summary_backend(None) == []


def test_check_fails_on_an_error_with_the_fix_in_its_output():
    with override_settings(CHANNEL_LAYERS={"default": dict(REDIS_LAYER, CONFIG={"hosts": ["redis://127.0.0.1:6379/0"]})}):
        with pytest.raises(SystemCheckError, match="recsys.E013"):
            call_command("check")

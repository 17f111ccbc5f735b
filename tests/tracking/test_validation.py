"""Unit tests of event validation (pure logic, no database)."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from tracking.validation import ValidationError, clean_event

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)


def ev(**kw):
    base = {"id": str(uuid.uuid4()), "name": "item_viewed", "item_id": "42", "ts": int(NOW.timestamp() * 1000)}
    base.update(kw)
    return base


def clean(raw):
    return clean_event(raw, visitor_id="v1234567", user_id="", now=NOW)


def test_a_valid_item_view_is_cleaned():
    out = clean(ev())
    assert out.name == "item_viewed" and out.item_id == "42"
    assert out.client_time == NOW


@pytest.mark.parametrize("raw, reason", [
    ({"name": "item_viewed"}, "id must be a UUID"),
    (ev(name="Bad Name!"), "unknown event name"),
    (ev(item_id=None), "item_viewed needs an item_id"),
    (ev(item_id="x" * 200), "item_id must be"),
    (ev(item_id="<script>"), "item_id must be"),
    (ev(props=[1, 2]), "props must be a JSON object"),
    (ev(props={"blob": "x" * 10000}), "props are"),
    (ev(ts=int((NOW + timedelta(days=3)).timestamp() * 1000)), "too far in the future"),
    (ev(ts=int((NOW - timedelta(days=30)).timestamp() * 1000)), "too old"),
    (ev(ts="yesterday"), "ts must be"),
    (ev(ts=1e30), "out of range"),
    (ev(name="searched", item_id=None), "props.query"),
    ("not an object", "JSON object"),
])
def test_bad_events_are_rejected_with_a_reason(raw, reason):
    with pytest.raises(ValidationError) as err:
        clean(raw)
    assert reason in err.value.reason


def test_custom_event_names_follow_the_pattern():
    assert clean(ev(name="video_finished", item_id=None)).name == "video_finished"

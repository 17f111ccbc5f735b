"""A malformed row already in the log (written before a validation rule existed, or by an
import) must not stall the projection for every visitor."""
from __future__ import annotations

import json
import uuid

import pytest
from django.db import connection
from django.utils import timezone

from recsys.models import ProjectionCursor, VisitorProfile
from recsys.services import interests
from tracking import services

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_non_numeric_rating_in_the_log_does_not_stall_the_projection():
    now = timezone.now()
    # Straight into the log, as an older release or a raw import would have written them.
    with connection.cursor() as cur:
        for i, bad in enumerate(("abc", None, [5], {"x": 1}, "nan")):
            cur.execute("INSERT INTO tracking_event (uuid, name, visitor_id, user_id, item_id, session_id, properties, "
                        "occurred_at, received_at, schema_version, source, is_bot, is_repeat) VALUES "
                        "(%s, 'rated', 'visitor-poison', '', %s, 's', %s, %s, %s, 1, 'import', false, false)",
                        [str(uuid.uuid4()), str(i), json.dumps({"value": bad}), now, now])
    services.append_events([{"id": str(uuid.uuid4()), "name": "page_viewed"}], visitor_id="visitor-after")

    interests.catch_up()

    assert ProjectionCursor.objects.get(name=interests.CURSOR).position > 0
    assert VisitorProfile.objects.get(visitor_id="visitor-poison").event_count == 5
    assert VisitorProfile.objects.filter(visitor_id="visitor-after").exists()

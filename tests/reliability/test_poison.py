"""A malformed row already in the log (written before a validation rule existed, or by an
import) must not stall the projection for every visitor."""
from __future__ import annotations

import uuid

import pytest
from django.utils import timezone

from recsys.models import ProjectionCursor, VisitorProfile
from recsys.services import interests
from tracking import services
from tracking.validation import CleanEvent

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_non_numeric_rating_in_the_log_does_not_stall_the_projection():
    now = timezone.now()
    rows = [CleanEvent(uuid=uuid.uuid4(), name="rated", visitor_id="visitor-poison", item_id=str(i),
                       properties={"value": bad}, occurred_at=now)
            for i, bad in enumerate(("abc", None, [5], {"x": 1}, "nan"))]
    # Straight into the log, as an older release or a raw import would have written them.
    services._insert(rows, received_at=now, source="import", is_bot=False)
    services.append_events([{"id": str(uuid.uuid4()), "name": "page_viewed"}], visitor_id="visitor-after")

    interests.catch_up()

    assert ProjectionCursor.objects.get(name=interests.CURSOR).position > 0
    assert VisitorProfile.objects.get(visitor_id="visitor-poison").event_count == 5
    assert VisitorProfile.objects.filter(visitor_id="visitor-after").exists()

"""The engagement vocabulary: what one event is worth to the recommenders.

Event names belong to tracking (``tracking.validation.KNOWN_EVENTS`` and ``ITEM_EVENTS``, the
events that name an item); what each is worth belongs here, and every projection weighs
events through this module:

- the type's weight: ``LIVEREC["EVENT_WEIGHTS"]``, or the admin's published interest config
  (the interest projection passes it as ``weights``);
- a 1-5 ``rated`` value scales it (5 -> 1.0, 1 -> 0.2);
- the bounce rule (``bounce=True``): an item left within ``BOUNCE_MAX_DWELL_MS`` pushes the
  interest away with ``BOUNCE_WEIGHT``. Co-occurrence leaves it out: a pair is about what came
  next, and a quick bounce still says what the visitor went on to.
An event engages an item when it names one, is neither a bot's nor a repeat, and weighs > 0.
"""
from __future__ import annotations

from typing import Any, Mapping

from tracking.validation import ITEM_EVENTS, KNOWN_EVENTS

from .conf import settings

__all__ = ["ITEM_EVENTS", "KNOWN_EVENTS", "RATING_MAX", "engages", "event_weight", "rating_scale", "weight"]

RATING_MAX = 5.0
RATING_MIN_SCALE = 0.2


def rating_scale(value: Any) -> float:
    """A rating's factor on its event's weight. A value that is not a number counts as unrated:
    one such row must never stall a projection (a retried task would fail on it forever)."""
    try:
        scale = float(value) / RATING_MAX
    except (TypeError, ValueError, OverflowError):
        return 1.0
    return max(RATING_MIN_SCALE, min(1.0, scale)) if scale == scale else 1.0


def weight(name: str, properties: Mapping[str, Any] | None = None, *, item_id: str | None = None,
           weights: Mapping[str, float] | None = None, bounce: bool = False) -> float:
    """The signed weight of an event of type ``name`` with these properties."""
    value = float((settings.EVENT_WEIGHTS if weights is None else weights).get(name, 0.0))
    props = properties or {}
    if name == "rated" and props.get("value") is not None:
        value *= rating_scale(props["value"])
    if bounce and value > 0 and item_id:
        dwell = props.get("dwell_ms")
        if isinstance(dwell, (int, float)) and not isinstance(dwell, bool) and dwell < settings.BOUNCE_MAX_DWELL_MS:
            value = float(settings.BOUNCE_WEIGHT)
    return value


def event_weight(ev, weights: Mapping[str, float] | None = None, *, bounce: bool = False) -> float:
    """``weight`` of a stored event (``tracking.models.Event``)."""
    return weight(ev.name, ev.properties, item_id=ev.item_id, weights=weights, bounce=bounce)


def engages(ev) -> bool:
    """Does this stored event engage its item (co-occurrence's pairs, item popularity)?"""
    return bool(ev.item_id) and not ev.is_bot and not ev.is_repeat and event_weight(ev) > 0

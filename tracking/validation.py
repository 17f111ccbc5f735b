"""Validation of incoming events: pure functions, one verdict per event."""
from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from .conf import settings

# Built-in event names (past tense). Their weights live in recsys; here they are only names.
KNOWN_EVENTS = frozenset({
    "page_viewed", "item_viewed", "item_clicked", "added_to_cart", "removed_from_cart",
    "purchased", "searched", "identified", "not_interested", "rated",
    "recommendation_shown", "recommendation_clicked",
})
ITEM_EVENTS = frozenset({"item_viewed", "item_clicked", "added_to_cart", "removed_from_cart",
                         "purchased", "not_interested", "rated", "recommendation_clicked"})
# Matched with fullmatch: "$" also matches before a trailing newline ("x-nl\n" passed).
_ID_RE = re.compile(r"[A-Za-z0-9_.:@\-]{1,128}")


class ValidationError(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class CleanEvent:
    uuid: uuid.UUID
    name: str
    visitor_id: str
    user_id: str = ""
    item_id: str = ""
    properties: dict[str, Any] = field(default_factory=dict)
    client_time: datetime | None = None
    occurred_at: datetime | None = None


def clean_id(value: Any, what: str, max_length: int = 128) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value or len(value) > max_length or not _ID_RE.fullmatch(value):
        raise ValidationError(f"{what} must be 1-{max_length} characters of letters, digits and _.:@-")
    return value


def clean_name(name: Any) -> str:
    """A built-in event name, or a custom one matching ``CUSTOM_EVENT_PATTERN``."""
    if not isinstance(name, str) or not name:
        raise ValidationError("name is required")
    if name not in KNOWN_EVENTS and not re.fullmatch(settings.CUSTOM_EVENT_PATTERN, name):
        raise ValidationError(
            f"unknown event name {name[:64]!r}: use one of {sorted(KNOWN_EVENTS)} "
            f"or a custom name matching {settings.CUSTOM_EVENT_PATTERN}"
        )
    return name


def parse_time(value: Any) -> datetime:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        # Milliseconds since the epoch, as Date.now() gives.
        try:
            return datetime.fromtimestamp(value / 1000.0, tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            raise ValidationError("ts is out of range") from None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValidationError("ts must be milliseconds since the epoch or an ISO 8601 time") from None
        if not parsed.tzinfo:
            return parsed.replace(tzinfo=timezone.utc)
        # In UTC: PostgreSQL refuses offsets beyond +-15:59 that Python accepts (found by the fuzzer).
        try:
            return parsed.astimezone(timezone.utc)
        except OverflowError:
            raise ValidationError("ts is out of range") from None
    raise ValidationError("ts must be milliseconds since the epoch or an ISO 8601 time")


def clean_event(raw: Any, *, visitor_id: str, user_id: str, now: datetime, event_user_ids: bool = True) -> CleanEvent:
    """Validate one raw event from a batch; raises ValidationError with the reason.

    ``event_user_ids``: False for browser batches, whose events may not name a user other than
    ``user_id`` (the signed-in one): a visitor cannot attach their events to someone's account."""
    if not isinstance(raw, dict):
        raise ValidationError("event must be a JSON object")
    try:
        event_uuid = uuid.UUID(str(raw.get("id", "")))
    except ValueError:
        raise ValidationError("id must be a UUID") from None
    name = clean_name(raw.get("name"))
    item_id = ""
    if raw.get("item_id") not in (None, ""):
        item_id = clean_id(raw["item_id"], "item_id", settings.MAX_ITEM_ID_LENGTH)
    elif name in ITEM_EVENTS:
        raise ValidationError(f"{name} needs an item_id")
    props = raw.get("props", {})
    if props is None:
        props = {}
    if not isinstance(props, dict):
        raise ValidationError("props must be a JSON object")
    size = len(json.dumps(props, ensure_ascii=False, default=str).encode())
    if size > settings.MAX_PROPERTIES_BYTES:
        raise ValidationError(f"props are {size} bytes; the limit is {settings.MAX_PROPERTIES_BYTES}")
    if name == "searched" and not isinstance(props.get("query"), str):
        raise ValidationError("searched needs props.query as a string")
    if name == "rated" and "value" in props and (
            isinstance(props["value"], bool) or not isinstance(props["value"], (int, float))):
        # The interest projection scales by it: a string here would stall it (found by the fuzzer).
        raise ValidationError("rated needs props.value as a number")
    client_time = parse_time(raw["ts"]) if raw.get("ts") is not None else None
    if client_time is not None:
        if client_time - now > timedelta(seconds=settings.MAX_CLOCK_SKEW_SECONDS):
            raise ValidationError("ts is too far in the future")
        if now - client_time > timedelta(seconds=settings.MAX_EVENT_AGE_SECONDS):
            raise ValidationError("ts is too old")
    event_user = raw.get("user_id") or user_id
    if event_user and not event_user_ids and event_user != user_id:
        raise ValidationError("user_id comes from the signed-in user; an event may not name another "
                              "(server-to-server posts send LIVEREC_TRACKING['SERVER_KEY'])")
    if event_user:
        event_user = clean_id(event_user, "user_id", 64)
    return CleanEvent(uuid=event_uuid, name=name, visitor_id=visitor_id, user_id=event_user or "",
                      item_id=item_id, properties=props, client_time=client_time)

"""What an item's embedding is made of: its meaningful text, without dates.

The encoder sees the fields its adapter names (``ItemAdapter.text_fields``, default title,
text, categories), joined as ". "-separated parts, with dates removed: a release year in
parentheses ("Night of the Living Dead (1968)") or an ISO date. Such tokens carry no
meaning a visitor searches for, yet a shared one pulled unrelated items together: "more
like this" for 2001: A Space Odyssey (1968) put Night of the Living Dead (1968) first. Digits
inside a title stay ("2001", "Apollo 13"): they are part of its name.
"""
from __future__ import annotations

import re
from typing import Any, Sequence

DEFAULT_FIELDS = ("title", "text", "categories")
FIELDS = ("title", "text", "categories", "properties")
_PAREN_YEAR = re.compile(r"\s*[\(\[]\s*(1[89]|20)\d{2}\s*(-\s*((1[89]|20)\d{2})?\s*)?[\)\]]")
_ISO_DATE = re.compile(r"\b(1[89]|20)\d{2}-\d{2}-\d{2}(T[\d:.]+Z?)?\b")


def strip_dates(text: str) -> str:
    return re.sub(r"\s{2,}", " ", _ISO_DATE.sub("", _PAREN_YEAR.sub("", text or ""))).strip()


def _field(item: Any, name: str) -> str:
    value = getattr(item, name, "")
    if name == "categories":
        return ", ".join(str(c) for c in (value or []))
    if name == "properties":
        return ". ".join(f"{v}" for v in (value or {}).values() if isinstance(v, str) and v)
    return str(value or "")


def build(item: Any, fields: Sequence[str] = DEFAULT_FIELDS) -> str:
    """The text to embed for ``item`` (anything with the item's attributes)."""
    parts = [strip_dates(_field(item, name)) for name in fields]
    return ". ".join(p for p in parts if p)


def validate(fields: Sequence[str], where: str) -> Sequence[str]:
    unknown = [f for f in fields if f not in FIELDS]
    if unknown or not fields:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(f"{where}.text_fields = {tuple(fields)!r}: choose one or more of {FIELDS}")
    return fields

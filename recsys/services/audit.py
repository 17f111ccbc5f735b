"""The admin tools' audit trail: every write through the tuning services leaves an entry."""
from __future__ import annotations

from typing import Any

from ..models import AuditEntry


def record(user: str, action: str, object_repr: str = "", diff: dict[str, Any] | None = None) -> AuditEntry:
    return AuditEntry.objects.create(user=user or "system", action=action, object_repr=object_repr[:255],
                                     diff=diff or {})


def diff(old: Any, new: Any, path: str = "") -> dict[str, list]:
    """Flat ``{"a.b": [old, new]}`` of what changed between two JSON-like values."""
    out: dict[str, list] = {}
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new), key=str):
            out.update(diff(old.get(key), new.get(key), f"{path}.{key}" if path else str(key)))
    elif old != new:
        out[path or "."] = [old, new]
    return out

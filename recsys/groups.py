"""Channel-layer group names, from one place."""
from __future__ import annotations

import hashlib


def visitor_group(visitor_id: str) -> str:
    # Hashed: group names are limited to ASCII [a-zA-Z0-9-_.] and < 100 characters.
    return "liverec.v." + hashlib.sha256(visitor_id.encode()).hexdigest()[:40]

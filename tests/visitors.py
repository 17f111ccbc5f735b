"""Test helpers: requests that come from a given visitor, as a browser holding its signed cookie."""
from __future__ import annotations

from tracking import identity
from tracking.conf import settings


def cookie_value(visitor_id: str) -> str:
    return identity.sign(visitor_id)


def cookies(visitor_id: str) -> dict[str, str]:
    """For httpx: ``httpx.post(..., cookies=cookies(visitor))``."""
    return {settings.VISITOR_COOKIE: cookie_value(visitor_id)}


def cookie_header(visitor_id: str) -> str:
    return f"{settings.VISITOR_COOKIE}={cookie_value(visitor_id)}"


def as_visitor(client, payload) -> None:
    """Give a Django test client the signed cookie of the payload's ``visitor_id`` (if any)."""
    if isinstance(payload, dict) and isinstance(payload.get("visitor_id"), str):
        client.cookies[settings.VISITOR_COOKIE] = cookie_value(payload["visitor_id"])

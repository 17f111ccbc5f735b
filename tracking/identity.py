"""Who sent a request: the visitor id in the server-signed first-party cookie, and the
server-to-server key that may name another visitor.

The server issues every visitor id (a random UUID) and signs the cookie holding it
(``django.core.signing``, keyed by ``SECRET_KEY``). A cookie whose signature does not verify
(an id typed in by hand, one copied from someone else's tracker, an unsigned id from an older
version) is replaced by a fresh id, never adopted, so knowing a visitor's id gives no way to
become them.
"""
from __future__ import annotations

import hmac
import re
import uuid

from django.core import signing
from django.http import HttpRequest, HttpResponse

from .conf import settings

_SALT = "liverec.visitor-cookie"
# Ids the server issues (uuid4 hex) and ids server code may name (imports, record_event).
_ID = re.compile(r"[A-Za-z0-9_\-]{8,64}")
SERVER_KEY_HEADER = "X-LiveRec-Server-Key"


def new_visitor_id() -> str:
    return uuid.uuid4().hex


def sign(visitor_id: str) -> str:
    """The cookie value for ``visitor_id``."""
    return signing.Signer(salt=_SALT).sign(visitor_id)


def unsign(value: str) -> str | None:
    """The visitor id a cookie value names, or None when it is not one the server signed."""
    try:
        visitor_id = signing.Signer(salt=_SALT).unsign(value or "")
    except signing.BadSignature:
        return None
    return visitor_id if _ID.fullmatch(visitor_id) else None


def visitor_from_cookie(request: HttpRequest) -> tuple[str, bool]:
    """(visitor id, fresh): the signed cookie's id, or a new one (fresh=True) to set."""
    visitor_id = unsign(request.COOKIES.get(settings.VISITOR_COOKIE, ""))
    if visitor_id is None:
        return new_visitor_id(), True
    return visitor_id, False


def set_cookie(response: HttpResponse, request: HttpRequest, visitor_id: str) -> None:
    # Not HttpOnly: the tracker reads its id for ``liverec.visitorId()``; the signature, not
    # secrecy, is what stops another browser from claiming it.
    response.set_cookie(settings.VISITOR_COOKIE, sign(visitor_id), max_age=settings.VISITOR_COOKIE_MAX_AGE,
                        samesite="Lax", secure=request.is_secure())


def has_server_key(request: HttpRequest) -> bool:
    """The request carries ``LIVEREC_TRACKING["SERVER_KEY"]`` (imports, server-to-server posts)."""
    key = settings.SERVER_KEY
    sent = request.headers.get(SERVER_KEY_HEADER, "")
    return bool(key) and bool(sent) and hmac.compare_digest(sent.encode(), str(key).encode())

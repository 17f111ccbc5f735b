"""Signed, expiring visitor tokens: the only way to join a visitor's push group or read their list."""
from __future__ import annotations

from django.core import signing

from .conf import settings

_SALT = "liverec.visitor-token"


class InvalidToken(Exception):
    pass


def make_token(visitor_id: str) -> str:
    return signing.TimestampSigner(salt=_SALT).sign(visitor_id)


def read_token(token: str) -> str:
    """The visitor id the token names; raises InvalidToken (bad signature or expired)."""
    try:
        return signing.TimestampSigner(salt=_SALT).unsign(token or "", max_age=settings.TOKEN_MAX_AGE_SECONDS)
    except signing.SignatureExpired as exc:
        raise InvalidToken("token expired") from exc
    except signing.BadSignature as exc:
        raise InvalidToken("bad token") from exc

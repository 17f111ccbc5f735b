"""Opaque, expiring visitor tokens: the only way to join a visitor's push group or read their list.

A token is the visitor id encrypted and authenticated (Fernet: AES-128-CBC with an HMAC-SHA256
over it and its issue time), with a key derived from ``SECRET_KEY`` (``SECRET_KEY_FALLBACKS``
still read tokens during a key rotation). Why not a signed id: a signed value carries the id
in clear, and tokens travel in page markup and request headers; this one names nobody to
whoever sees it, and nothing is stored server-side to look it up (a Redis restart or a second
web process changes nothing).
"""
from __future__ import annotations

import base64
import time
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken as _FernetInvalid, MultiFernet
from django.conf import settings as django_settings
from django.utils.crypto import salted_hmac

from .conf import settings

_SALT = "liverec.visitor-token"
# Fernet's own allowance for an issue time ahead of the server clock (another web process).
_CLOCK_SKEW_SECONDS = 60


class InvalidToken(Exception):
    pass


@lru_cache(maxsize=4)
def _fernet(secrets: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(base64.urlsafe_b64encode(salted_hmac(_SALT, "fernet", secret=s,
                                                                    algorithm="sha256").digest()))
                        for s in secrets])


def _keys() -> MultiFernet:
    return _fernet((django_settings.SECRET_KEY, *getattr(django_settings, "SECRET_KEY_FALLBACKS", ())))


def make_token(visitor_id: str, *, issued_at: int | None = None) -> str:
    """A token for ``visitor_id`` (``issued_at``: seconds since the epoch, now by default)."""
    return _keys().encrypt_at_time(visitor_id.encode(), int(time.time() if issued_at is None else issued_at)).decode()


def read_token(token: str) -> str:
    """The visitor id the token names; raises InvalidToken ("bad token" or "token expired")."""
    fernet = _keys()
    try:
        raw = (token or "").encode("ascii")
        visitor_id = fernet.decrypt(raw).decode()
        issued = fernet.extract_timestamp(raw)
    except (_FernetInvalid, UnicodeError, ValueError, TypeError) as exc:
        raise InvalidToken("bad token") from exc
    now = time.time()
    if issued > now + _CLOCK_SKEW_SECONDS:
        raise InvalidToken("bad token")
    if now - issued > settings.TOKEN_MAX_AGE_SECONDS:
        raise InvalidToken("token expired")
    return visitor_id

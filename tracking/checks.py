"""System checks of tracking's security settings (ids ``tracking.E0xx``)."""
from __future__ import annotations

from django.conf import settings as django_settings
from django.core.checks import Error, Tags, register

# Published SECRET_KEY values: the demo's, and the prefix of the keys `startproject` writes
# (a key committed with a project is as public as the repository).
KNOWN_DEFAULT_KEYS = frozenset({"liverec-demo-insecure-key-change-me", "change-me", "changeme", "secret", ""})
KNOWN_DEFAULT_PREFIXES = ("django-insecure-",)


def is_known_default(key: str) -> bool:
    return key in KNOWN_DEFAULT_KEYS or key.startswith(KNOWN_DEFAULT_PREFIXES)


@register(Tags.security)
def check_secret_key(app_configs, **kwargs):
    """Visitor cookies, visitor tokens and sessions are signed with SECRET_KEY: with a published
    key anyone forges a token for any visitor. Refused whenever DEBUG is off."""
    if django_settings.DEBUG:
        return []
    keys = [django_settings.SECRET_KEY, *getattr(django_settings, "SECRET_KEY_FALLBACKS", ())]
    if any(is_known_default(str(k)) for k in keys):
        return [Error("SECRET_KEY (or one of SECRET_KEY_FALLBACKS) is a published default key while DEBUG is off.",
                      hint="Set SECRET_KEY to a long random value kept out of the repository, e.g. "
                           "python -c 'import secrets; print(secrets.token_urlsafe(50))'.",
                      id="tracking.E001")]
    return []

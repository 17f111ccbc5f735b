"""The strategy registry: filled from ``LIVEREC["STRATEGIES"]`` in ready(), validated."""
from __future__ import annotations

import re

from django.core.exceptions import ImproperlyConfigured

from .base import Strategy

_ID = re.compile(r"[a-z0-9-]+/[a-z0-9-]+")
_strategies: dict[str, type[Strategy]] = {}


def register(cls: type[Strategy]) -> type[Strategy]:
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise ImproperlyConfigured(f"{cls!r} is not a recsys.strategies.base.Strategy subclass")
    if not _ID.fullmatch(cls.id or ""):
        raise ImproperlyConfigured(f"{cls.__name__}.id = {cls.id!r}: ids look like 'family/name' (e.g. 'content/interests')")
    other = _strategies.get(cls.id)
    if other is not None and other is not cls:
        raise ImproperlyConfigured(f"strategy id {cls.id!r} is registered twice ({other.__name__} and {cls.__name__})")
    _strategies[cls.id] = cls
    return cls


def get(strategy_id: str) -> type[Strategy]:
    try:
        return _strategies[strategy_id]
    except KeyError:
        raise ImproperlyConfigured(
            f"unknown strategy {strategy_id!r}; registered strategies: {sorted(_strategies)}") from None


def ids() -> list[str]:
    return sorted(_strategies)


def clear() -> None:
    _strategies.clear()

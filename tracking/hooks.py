"""Named hooks: what tracking tells the apps built on it (recsys registers in its ready()).

Modelled on Wagtail's ``wagtail.hooks``: ``register(name, fn, order)``, usable as a decorator,
``get_hooks(name)`` in order, and ``register_temporarily`` / ``only`` for tests and for runs that
must not reach the site's subscribers (an offline evaluation, a bench). Not Django signals:
subscribers are few, known at start-up, and each hook has its own rule for a failing one.

The hooks:

- ``EVENTS_APPENDED`` ``fn(event_ids)``: after each committed append. A failing subscriber is
  logged and the others still run: the log is the source of truth, subscribers catch up later.
- ``VISITORS_ERASED`` ``fn(visitor_ids, user_ids=..., reason=...)``: retention deleted these
  visitors' old events (``reason="retention"``): rebuild their state from what remains. A
  forget does not publish here: it loops over the per-visitor stores registered with
  ``tracking.privacy.register_store``. ``fn`` may return a dict of counts for the report.
- ``EVENTS_EXPIRED`` ``fn(cutoff)``: a retention sweep deleted every event before ``cutoff``:
  delete what is kept per visitor and time-stamp beside the events (a serve log) from before
  it. ``fn`` may return a dict of counts.

For the last two a failure is an error the caller must see (personal data may survive): every
subscriber runs, then the first failure is raised.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from contextlib import contextmanager
from typing import Callable, Iterator, Sequence

logger = logging.getLogger(__name__)

EVENTS_APPENDED = "events_appended"
VISITORS_ERASED = "visitors_erased"
EVENTS_EXPIRED = "events_expired"

_hooks: dict[str, list[tuple[Callable, int]]] = defaultdict(list)


def register(name: str, fn: Callable | None = None, order: int = 0):
    """Run ``fn`` on hook ``name`` (lower ``order`` first). Idempotent. Without ``fn``, a decorator:
    ``@hooks.register(hooks.EVENTS_APPENDED)``."""
    if fn is None:
        def decorator(fn: Callable) -> Callable:
            register(name, fn, order)
            return fn
        return decorator
    if all(registered is not fn for registered, _ in _hooks[name]):
        _hooks[name].append((fn, order))
    return fn


def get_hooks(name: str) -> list[Callable]:
    return [fn for fn, _ in sorted(_hooks.get(name, ()), key=lambda pair: pair[1])]


@contextmanager
def register_temporarily(name: str, fn: Callable, order: int = 0) -> Iterator[None]:
    """``fn`` runs on hook ``name`` within the block only."""
    register(name, fn, order)
    try:
        yield
    finally:
        _hooks[name] = [pair for pair in _hooks[name] if pair[0] is not fn]


@contextmanager
def only(name: str, *fns: Callable) -> Iterator[None]:
    """Within the block, hook ``name`` runs ``fns`` and nothing else (none: nothing runs)."""
    saved = list(_hooks.get(name, ()))
    _hooks[name] = [(fn, 0) for fn in fns]
    try:
        yield
    finally:
        _hooks[name] = saved


def publish_appended(event_ids: Sequence[int]) -> None:
    for fn in get_hooks(EVENTS_APPENDED):
        try:
            fn(event_ids)
        except Exception:  # the log is the source of truth; subscribers catch up later
            logger.exception("tracking: subscriber %r failed for %d events", fn, len(event_ids))


def publish_erased(visitor_ids: Sequence[str], *, user_ids: Sequence[str] = (), reason: str) -> dict:
    return _run_all(VISITORS_ERASED, lambda fn: fn(list(visitor_ids), user_ids=list(user_ids), reason=reason))


def publish_expired(cutoff) -> dict:
    return _run_all(EVENTS_EXPIRED, lambda fn: fn(cutoff))


def _run_all(name: str, call: Callable) -> dict:
    """``call(fn)`` for every subscriber, their count dicts merged; every one runs (each erases
    what it can) before the first failure is raised."""
    report: dict = {}
    errors: list[BaseException] = []
    for fn in get_hooks(name):
        try:
            report.update(call(fn) or {})
        except Exception as exc:
            logger.exception("tracking: %s subscriber %r failed", name, fn)
            errors.append(exc)
    if errors:
        raise errors[0]
    return report

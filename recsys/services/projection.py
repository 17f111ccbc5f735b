"""The catch-up loop both cursor projections (interests, co-occurrence) share."""
from __future__ import annotations

import time
from typing import Callable, TypeVar

from tracking import selectors as log

from ..models import ProjectionCursor

T = TypeVar("T")

# A fold reads only below the stable horizon (the oldest running transaction), so an
# unrelated short transaction that began before an event can hold that event back for
# a moment. Callers that promise "everything committed before I was called" (commands,
# tests, the evaluation runner) wait this long for such a transaction to end.
SETTLE_SECONDS = 5.0


def catch_up(apply_batch: Callable[[int], tuple[T, int]], cursor_name: str, batch: int,
             settle: float = SETTLE_SECONDS) -> list[T]:
    """Run ``apply_batch`` until the cursor has passed every event committed before the call.

    ``apply_batch(limit)`` returns (its result, events read). With ``settle=0`` (the
    realtime worker) it stops at the horizon at once: the transaction holding it back
    enqueues its own task when it commits.
    """
    target = log.last_txid() if settle else None
    deadline = time.monotonic() + settle
    results = []
    while True:
        result, count = apply_batch(batch)
        results.append(result)
        if count == batch:
            continue
        if target is None or time.monotonic() > deadline or not _pending(cursor_name, target):
            return results
        time.sleep(0.02)


def _pending(cursor_name: str, target: int) -> bool:
    cursor = ProjectionCursor.objects.filter(name=cursor_name).values_list("txid", "position").first() or (0, 0)
    return log.pending_through(*cursor, through=target)

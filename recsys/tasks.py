"""Celery tasks: thin wrappers over services, primitive arguments, idempotent."""
from __future__ import annotations

import logging
from typing import Sequence

from celery import shared_task

from .services import interests, items, push

logger = logging.getLogger(__name__)

REALTIME = "liverec.realtime"
BATCH = "liverec.batch"


@shared_task(queue=REALTIME, ignore_result=True, acks_late=True)
def process_events() -> int:
    """Fold all pending log events into profiles, then refresh the touched visitors.

    Takes no event ids: the projection cursor knows what is pending, so a burst of
    enqueued tasks coalesces (the first does the work, the rest find nothing) and a
    lost task is made good by the next one.
    """
    touched = interests.catch_up()
    for visitor_id in sorted(touched):
        try:
            push.profile_changed(visitor_id)
        except Exception:
            logger.exception("recsys: push for visitor %s failed", visitor_id)
    return len(touched)


@shared_task(queue=REALTIME, ignore_result=True)
def refresh_visitor(visitor_id: str, deferred_at: float) -> str:
    """The trailing push of a burst of one visitor's events (see ``services.push``).

    Folds what is pending first: events still queued behind this timer belong to the burst
    and hold the push, rather than being pushed half-applied.
    """
    process_events()
    return push.trailing_refresh(visitor_id, deferred_at)


@shared_task(queue=REALTIME, ignore_result=True)
def probe_push(visitor_id: str, nonce: str) -> None:
    """Send a probe to the visitor's sockets: the Celery task -> WebSocket floor (bench, health)."""
    push.probe(visitor_id, nonce)


@shared_task(queue=BATCH, ignore_result=True, acks_late=True)
def embed_items(item_pks: Sequence[int]) -> int:
    return items.embed_items(list(item_pks))


@shared_task(queue=REALTIME)
def health_probe() -> dict:
    """A worker round trip that also proves the encoder loads and encodes."""
    from .encoders import get_encoder

    encoder = get_encoder()
    vec = encoder.encode(["health check"])
    return {"encoder": encoder.name, "dim": int(vec.shape[1])}


@shared_task(queue=BATCH)
def health_probe_batch() -> bool:
    return True

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
            push.refresh(visitor_id)
        except Exception:
            logger.exception("recsys: push for visitor %s failed", visitor_id)
    _request_summaries(touched)
    return len(touched)


def _request_summaries(visitor_ids) -> None:
    from .services import summaries

    for visitor_id in visitor_ids:
        try:
            summaries.request_summary(visitor_id)
        except Exception:  # a cache or broker hiccup must not fail the projection
            logger.exception("recsys: could not schedule the summary of %s", visitor_id)


@shared_task(queue=BATCH, ignore_result=True, acks_late=True)
def embed_items(item_pks: Sequence[int], index: bool = True) -> int:
    return items.embed_items(list(item_pks), index=index)


@shared_task(bind=True, queue=BATCH, ignore_result=True, acks_late=True, max_retries=3600)
def finish_bulk_embedding(self) -> None:
    """Builds the HNSW index after a bulk embedding; waits (retries) while chunks remain."""
    if not items.finish_bulk_embedding():
        raise self.retry(countdown=1.0)


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


@shared_task(queue=BATCH, ignore_result=True, acks_late=True)
def refresh_topics(k: int | None = None) -> int:
    """Keyphrases, catalogue topics and visitor topic shares (nightly from beat, or after an import)."""
    from .services import labels, topics

    labels.mine_keyphrases()
    topics.recompute_topics(k)
    return topics.recompute_visitor_topics()


@shared_task(queue=BATCH, ignore_result=True, acks_late=True)
def summarize_visitor(visitor_id: str) -> None:
    """The LLM summary, on the batch queue (seconds of CPU: never on the realtime one)."""
    from django.core.cache import cache

    from .services import summaries

    # Cleared first: events arriving during generation schedule the next summary.
    cache.delete(summaries._debounce_key(visitor_id))
    summaries.summarize(visitor_id)

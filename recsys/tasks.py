"""Celery tasks: thin wrappers over services, primitive arguments, idempotent."""
from __future__ import annotations

import logging
from typing import Sequence

from celery import shared_task
from django.utils import timezone

from . import heartbeat, warmup  # noqa: F401  (connect the worker signals: heartbeat, warm-up, heap freeze)
from .cycletrace import CycleTrace
from .encoders import get_encoder
from .engine import build_strategy
from .live import push
from .services import (coalesce, cooccurrence, events, interests, items, labels, latency_samples, sequential, serving,
                       summaries, topics)
from .services.evaluation_jobs import execute_run

logger = logging.getLogger(__name__)

REALTIME = "liverec.realtime"
BATCH = "liverec.batch"
# LLM visitor summaries only: seconds of CPU each, so they have a queue (and, in the demo, a
# worker) of their own and never hold an item embedding or an association fold.
SUMMARIES = "liverec.summaries"


@shared_task(queue=REALTIME, ignore_result=True, acks_late=True)
def process_events() -> int:
    """Fold all pending log events into profiles, then refresh the touched visitors.

    Takes no event ids: the projection cursor knows what is pending, so a burst of
    enqueued tasks coalesces (the first does the work, the rest find nothing) and a
    lost task is made good by the next one.
    """
    trace = CycleTrace()
    events.task_started()  # before reading the log: appends from now on enqueue a new task
    folded: dict = {}  # {visitor: InterestState} as this fold committed them
    touched = interests.catch_up_in_order(settle=0, snapshots=folded)
    trace.mark("fold")
    states = _sequence_states([visitor_id for visitor_id, _ in touched])
    # The pushes rank from what the fold and the forward pass left in memory: no read of the
    # profiles and states just computed, and the states are stored after the sends.
    snapshots = {v: (state, states.states.get(v)) for v, state in folded.items()}
    trace.mark("states")
    logs: list = []  # the serve log of every push, written once after them all
    try:
        # All the touched visitors at once, first come first served: one ranking batch for
        # those opening a burst (engine.recommend_many), a few cache round trips for all.
        outcomes = push.profiles_changed([visitor_id for visitor_id, _ in touched], logs=logs, snapshots=snapshots)
    except Exception:
        logger.exception("recsys: pushes for %d visitors failed", len(touched))
        outcomes = {}
    trace.mark("refresh")
    now = timezone.now()
    _store_sequence_states(states)
    trace.mark("store_states")
    serving.record(logs)
    pushed = [(visitor_id, received_at) for visitor_id, received_at in touched if outcomes.get(visitor_id) == "pushed"]
    pushed_at = [received_at for _, received_at in pushed]
    latencies = [(now - received_at).total_seconds() * 1000.0 for received_at in pushed_at]
    latency_samples.record_push_latencies(latencies)
    trace.mark("serve")
    touched = [visitor_id for visitor_id, _ in touched]
    if touched:
        # The association fold runs on the batch worker, not here: it was a sixth of a
        # realtime cycle (its pair upserts the costliest statement in PostgreSQL), and every
        # cycle it held kept a worker from the next visitor's push. Associations and trending
        # lag the log by a batch task instead; a visitor's own push never needed them, as
        # the pairs its events just formed join items that are already its seeds.
        cooccurrence.request_fold()
    trace.mark("associations")
    _request_summaries(touched)
    trace.done(len(touched), latencies, outcomes, queued=[trace.started * 1000.0 - r.timestamp() * 1000.0
                                                          for r in pushed_at], pushed=[v for v, _ in pushed])
    return len(touched)


@shared_task(queue=BATCH, ignore_result=True, acks_late=True)
def fold_associations() -> int:
    """Fold the pending log events into the item associations and popularity (trending).

    Coalesced like ``process_events``: no ids, the cursor knows what is pending, and a flag
    keeps at most one such task waiting (``cooccurrence.request_fold``)."""
    trace = CycleTrace()
    cooccurrence.fold_started()
    read = cooccurrence.catch_up(settle=0)
    trace.mark("fold")
    trace.done(read, [], {}, task="associations")  # touched: the events folded
    if read:
        # While this fold wrote, its transaction held back the stable horizon: an event
        # committed meanwhile was skipped by any interest fold that ran then, and only an
        # ingest commit asks for another. Ask once more (coalesced: usually a no-op).
        events.on_events_appended(())
    return read


@shared_task(queue=REALTIME, ignore_result=True)
def refresh_visitor(visitor_id: str, deferred_at: float) -> str:
    """The trailing push of a burst of one visitor's events (see ``recsys.live.push``).

    Folds what is pending first: events still queued behind this timer belong to the burst
    and hold the push, rather than being pushed half-applied.
    """
    process_events()
    trace = CycleTrace()
    outcome = push.trailing_refresh(visitor_id, deferred_at)
    trace.mark("refresh")
    trace.done(0, [], {visitor_id: f"trailing {outcome}"}, task="trailing")
    return outcome


@shared_task(queue=REALTIME, ignore_result=True)
def probe_push(visitor_id: str, nonce: str) -> None:
    """Send a probe to the visitor's sockets: the Celery task -> WebSocket floor (bench, health)."""
    push.probe(visitor_id, nonce)


def _sequence_states(visitor_ids):
    """The touched visitors' sequence-model states, in one batch before their pushes rank from
    them (``sequential.compute_states``; stored by ``_store_sequence_states``)."""
    try:
        return sequential.compute_states(visitor_ids)
    except Exception:  # rankings then run the model inline (no state, or a stale one)
        logger.exception("recsys: could not compute sequence states")
        return sequential.StateBatch()


def _store_sequence_states(batch) -> None:
    try:
        batch.write()
    except Exception:  # later requests run the model inline until the next fold stores one
        logger.exception("recsys: could not store sequence states")


def _request_summaries(visitor_ids) -> None:
    try:
        summaries.request_summaries(list(visitor_ids))
    except Exception:  # a cache or broker hiccup must not fail the projection
        logger.exception("recsys: could not schedule the summaries of %d visitors", len(visitor_ids))


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
    """A worker round trip that also proves the encoder loads and encodes, and tells how much of
    the worker's heap its start-up froze out of garbage collection (``recsys.warmup``)."""
    import gc


    encoder = get_encoder()
    vec = encoder.encode(["health check"])
    return {"encoder": encoder.name, "dim": int(vec.shape[1]), "frozen_objects": gc.get_freeze_count()}


@shared_task(queue=BATCH)
def health_probe_batch() -> bool:
    return True


@shared_task(queue=BATCH, ignore_result=True, acks_late=True)
def run_evaluation(run_id: int) -> str:
    """An admin-started offline evaluation (``recsys_evaluate``); see services.evaluation_jobs."""
    return execute_run(run_id)


@shared_task(queue=BATCH, ignore_result=True)
def prune_associations() -> int:
    """Drop item pairs that decayed to nothing (schedule it daily with Celery beat)."""
    return cooccurrence.prune()


@shared_task(queue=BATCH, ignore_result=True)
def rebuild_associations() -> int:
    """After retention deleted events, replay the item association projection from the log
    (its pairs came partly from the deleted events; see recsys.services.privacy)."""
    return cooccurrence.rebuild()


@shared_task(queue=BATCH, ignore_result=True, acks_late=True)
def refresh_topics(k: int | None = None) -> int:
    """Keyphrases, catalogue topics and visitor topic shares (nightly from beat, or after an import)."""
    labels.mine_keyphrases()
    topics.recompute_topics(k)
    return topics.recompute_visitor_topics()


@shared_task(queue=SUMMARIES, ignore_result=True, acks_late=True)
def summarize_visitor(visitor_id: str) -> None:
    """The LLM summary, on the summaries queue (seconds of CPU: never on the realtime or batch one)."""
    # Released first: events arriving during generation schedule the next summary.
    coalesce.release(summaries.pending_key(visitor_id))
    summaries.summarize(visitor_id)


@shared_task(queue=SUMMARIES)
def health_probe_summaries() -> bool:
    return True


# Not acks_late: a training run can outlast the broker's visibility timeout (600 s in the
# demo), and a redelivered copy would train twice at once; a lost run costs nothing, the
# next beat retrains.
@shared_task(queue=BATCH, ignore_result=True, acks_late=False)
def train_sequential() -> int:
    """Retrain the sequential/next-item model on the whole log; returns the new version (0: none).

    Measured on MovieLens-100K (100k events, 1,682 items, 40 epochs): 7 s per epoch on
    2 threads on a quiet machine, 60-130 s when 7 processes share the 2 cores; requests keep
    the previous version until the new row commits.
    """

    row = sequential.train_and_store(build_strategy(sequential.MODEL_NAME).config)
    return row.version if row else 0


@shared_task(queue=BATCH, ignore_result=True, acks_late=False)
def retrain_sequential_if_due() -> str:
    """The sequential model's volume schedule (``LIVEREC["SEQUENTIAL"]``, run from beat every
    few minutes): the first training once enough events are logged, then a warm start every
    ``RETRAIN_AFTER_EVENTS`` engaged events; a cheap count when nothing is due. Not acks_late,
    as ``train_sequential``."""

    return sequential.retrain_if_due(build_strategy(sequential.MODEL_NAME).config)

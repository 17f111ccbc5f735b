"""Start-up of the processes that serve live traffic: load what the first request would, then
take the start-up heap out of the cyclic garbage collector's reach.

Why: a realtime worker holds ~520,000 objects once Django, torch and the models are loaded,
an ASGI server ~255,000. CPython's collector scans them all in each full (generation 2)
collection: measured here, 271 ms in an idle worker, 127 ms in the ASGI process, and about
500 ms each under bench_freshness's load (three in 48 s across the two realtime workers),
stalling every push queued behind them. With the freeze the workers' full collections take
~30 ms (about 30 in a 70 s run). Almost all of those objects (modules, functions, classes, model
weights) live as long as the process, so scanning them finds nothing: ``gc.freeze()`` moves
them to a permanent generation that collections skip (the pattern Instagram published for
its Django workers). Reference counting still frees a frozen object that becomes unused; only
a reference cycle created before the freeze and dropped later is never reclaimed, which is
why the freeze follows a full collection and happens once, at start-up. Celery workers also
raise the collector's thresholds then (``GC_THRESHOLDS``).
"""
from __future__ import annotations

import gc
import logging

from celery.signals import worker_process_init, worker_ready

logger = logging.getLogger(__name__)

REALTIME_QUEUE = "liverec.realtime"


#: The collector's thresholds in a Celery worker (CPython's default: 700, 10, 10). A realtime
#: cycle for 50 visitors allocates a few hundred thousand short-lived objects (candidates,
#: reasons, rows) that reference counting frees anyway: at 700 they triggered ~110 young
#: collections and nearly one full collection per cycle, 25 ms of a ~410 ms cycle's CPU (max
#: 39 ms); at 10,000 four young ones and a full one every ~10 cycles, 10.6 ms (max 27), and the
#: cycle's CPU fell 4% (five interleaved blocks of five cycles each, in one process). Cyclic
#: garbage is still collected, ~100 young collections (a million allocations) apart at most.
GC_THRESHOLDS = (10_000, 10, 10)


def freeze_heap() -> int:
    """Collect what is garbage now, then exempt every surviving object from later collections.
    Returns how many objects were frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def tune_collector() -> None:
    """Collect less often from now on (``GC_THRESHOLDS``): Celery workers, where it was measured.
    The ASGI process keeps CPython's thresholds (no gain measured there). In a 10-minute soak
    the workers' resident memory stayed flat with them (694 -> 692 MB)."""
    gc.set_threshold(*GC_THRESHOLDS)


def warm_realtime() -> None:
    """Load what a realtime cycle needs: the encoder (a new item or a search is embedded
    inline), the serving sequence model and the configuration snapshot. A missing table or
    model is the first cycle's business, not a reason to refuse to start."""
    # Imported here: the ASGI module imports this one before Django is set up (freeze_heap).
    from . import configcache
    from .encoders import get_encoder
    from .services import sequential

    for step in (lambda: get_encoder().encode(["warm-up"]), sequential.current_model, configcache.snapshot):
        try:
            step()
        except Exception:  # noqa: BLE001 (logged; the worker starts anyway)
            logger.warning("recsys: warm-up step failed; the first cycle will load it", exc_info=True)


@worker_ready.connect
def _worker_ready(sender=None, **kwargs) -> None:
    """Solo and thread pools run tasks in this process: warm a realtime worker, then freeze."""
    queues = {q.name for q in sender.app.amqp.queues.consume_from.values()} if sender else set()
    if REALTIME_QUEUE in queues:
        warm_realtime()
    frozen = freeze_heap()
    tune_collector()
    logger.info("recsys: %d start-up objects frozen out of garbage collection", frozen)


@worker_process_init.connect
def _pool_process_init(**kwargs) -> None:
    """A prefork child starts with its parent's heap: freeze it there too."""
    freeze_heap()
    tune_collector()

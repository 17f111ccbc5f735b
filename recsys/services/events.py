"""recsys's subscription to the tracking log."""
from __future__ import annotations

import logging
import os
import threading
import time
from typing import Sequence

from . import coalesce, dispatch

logger = logging.getLogger(__name__)

# After a failed enqueue, skip further attempts for this long: each attempt against a dead
# broker costs the ingest request the broker's connect timeout (2 s here). Nothing is lost:
# the beat catch-up (and the next enqueue) applies everything after the projection cursor.
BROKER_DOWN_BACKOFF_SECONDS = 5.0
_skip_until = 0.0

# Coalescing (``services.coalesce``): ``process_events`` takes no ids, so while one is queued
# and not yet started, another adds nothing. Measured on bench_ingest: a Celery publish per
# request was ~10% of the ingest CPU, and under load the realtime worker drained hundreds of
# no-op tasks.
QUEUED_FLAG = "liverec:process-events:queued"
QUEUED_FLAG_TTL_SECONDS = 5


def task_started() -> None:
    """Called by ``process_events`` before it reads the log."""
    coalesce.release(QUEUED_FLAG)


def on_events_appended(event_ids: Sequence[int]) -> None:
    """Called after an append commits: enqueue the projection update.

    If the broker is down the event is still safe in the log; the next task
    (or ``manage.py recsys_replay --catch-up``) applies it from the cursor.
    """
    global _skip_until
    if time.monotonic() < _skip_until or not coalesce.claim(QUEUED_FLAG, QUEUED_FLAG_TTL_SECONDS):
        return
    try:
        dispatch.task("process_events").apply_async(retry=False)
    except Exception as exc:  # broker down: never fail the ingest request
        task_started()  # nothing is queued after all
        _skip_until = time.monotonic() + BROKER_DOWN_BACKOFF_SECONDS
        logger.warning("recsys: could not enqueue processing of %d events (retrying enqueues in %.0f s; "
                       "the catch-up applies them from the cursor): %s", len(event_ids), BROKER_DOWN_BACKOFF_SECONDS, exc)


class _Handoff:
    """One daemon thread per process that runs ``on_events_appended`` for the ingest requests.

    A request only sets a flag: with Valkey stalled (SIGSTOP, a full disk, a paused VM) a
    Celery publish or a cache call blocks until the connection's timeout, and done in the
    request it held every ingest thread (4 of 4 blocked, 8 batches stored only after the 25 s
    stall ended). Here only this thread waits; requests keep storing, and appends meanwhile
    are folded by the one enqueue that follows, or by beat's ``liverec-catch-up``.
    """

    def __init__(self) -> None:
        self._wake = threading.Event()
        self._pending = 0
        self._pid = 0
        self._lock = threading.Lock()

    def request(self, n_events: int) -> None:
        with self._lock:
            self._pending += n_events
            if self._pid != os.getpid():  # first use, or a forked child (threads do not survive fork)
                self._pid = os.getpid()
                threading.Thread(target=self._run, name="liverec-enqueue", daemon=True).start()
        self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            with self._lock:
                n, self._pending = self._pending, 0
            try:
                on_events_appended(range(n))
            except Exception:  # noqa: BLE001 - never let the thread die; the catch-up covers it
                logger.exception("recsys: enqueue after an append failed")


_handoff = _Handoff()


def on_events_appended_later(event_ids: Sequence[int]) -> None:
    """The ``tracking.hooks`` subscriber: ``on_events_appended`` off the request thread."""
    _handoff.request(len(event_ids))

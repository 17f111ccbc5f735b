"""Worker heartbeats in the cache, so health can name a worker that is gone.

Each Celery worker's main process writes ``liverec:worker:<hostname>`` (its queues and the
time) every ``LIVEREC["WORKER_HEARTBEAT_SECONDS"]`` from a daemon thread, and keeps its
hostname in the ``liverec:workers`` list. A worker that stops beating for three intervals
is reported missing by ``recsys.health`` until it (a restart under the same name) beats
again; a clean shutdown removes it. A round trip through a queue cannot tell this: a killed
worker's queue still takes tasks, which wait until a restarted worker drains them.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any

from celery.signals import worker_ready, worker_shutdown

logger = logging.getLogger(__name__)

INDEX_KEY = "liverec:workers"
# Beats missed before a worker counts as missing.
MISSED_BEATS = 3
# A registration outlives any plausible outage of the worker; health reports it missing meanwhile.
KEY_TTL_SECONDS = 24 * 3600

_stop = threading.Event()


def worker_key(hostname: str) -> str:
    return f"liverec:worker:{hostname}"


def beat(hostname: str, queues: list[str]) -> None:
    """Record that ``hostname`` (consuming ``queues``) is alive now."""
    from django.core.cache import cache

    cache.set(worker_key(hostname), {"queues": sorted(queues), "at": time.time()}, KEY_TTL_SECONDS)
    known = cache.get(INDEX_KEY) or []
    if hostname not in known:  # rare (start-up, or the cache was cleared): read-merge-write
        cache.set(INDEX_KEY, sorted(set(cache.get(INDEX_KEY) or []) | {hostname}), KEY_TTL_SECONDS)


def leave(hostname: str) -> None:
    from django.core.cache import cache

    cache.delete(worker_key(hostname))
    cache.set(INDEX_KEY, sorted(set(cache.get(INDEX_KEY) or []) - {hostname}), KEY_TTL_SECONDS)


def workers() -> dict[str, dict[str, Any]]:
    """Every registered worker: ``{hostname: {"queues": [...], "age_s": seconds since its beat}}``."""
    from django.core.cache import cache

    names = cache.get(INDEX_KEY) or []
    got = cache.get_many([worker_key(n) for n in names])
    now = time.time()
    out = {}
    for name in names:
        record = got.get(worker_key(name))
        if record:
            out[name] = {"queues": record["queues"], "age_s": round(now - record["at"], 1)}
    return out


def _run(hostname: str, queues: list[str], interval: float) -> None:
    while not _stop.is_set():
        try:
            beat(hostname, queues)
        except Exception as exc:  # noqa: BLE001 - the cache is down: health says so on its own
            logger.warning("recsys: worker heartbeat failed (%s)", exc)
        _stop.wait(interval)


@worker_ready.connect
def _start(sender=None, **kwargs) -> None:
    from .conf import settings

    if sender is None:
        return
    queues = sorted(q.name for q in sender.app.amqp.queues.consume_from.values())
    threading.Thread(target=_run, args=(sender.hostname, queues, float(settings.WORKER_HEARTBEAT_SECONDS)),
                     name="liverec-heartbeat", daemon=True).start()


@worker_shutdown.connect
def _leave(sender=None, **kwargs) -> None:
    _stop.set()
    if sender is not None:
        try:
            leave(sender.hostname)
        except Exception:  # noqa: BLE001 - missing until its registration expires
            pass

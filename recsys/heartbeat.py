"""Worker heartbeats in the broker's Redis, so health can name a worker that is gone.

Each Celery worker's main process records its queues and the time in the ``liverec:workers``
hash (one field per worker hostname) every ``LIVEREC["WORKER_HEARTBEAT_SECONDS"]``, from a
daemon thread. A worker silent for ``MISSED_BEATS`` intervals is reported missing by
``recsys.health`` until it (a restart under the same name) beats again; a clean shutdown
removes its field. A round trip through a queue cannot tell this: a killed worker's queue
still takes tasks, which wait until a restarted worker drains them. The hash lives beside the
Celery queues, not in the cache: clearing the cache (operators, tests) must not make every
worker look gone. Only a Redis/Valkey broker is supported; with another, ``workers()`` is empty.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

from celery.signals import worker_ready, worker_shutdown

from .conf import settings

logger = logging.getLogger(__name__)

HASH_KEY = "liverec:workers"
# Beats missed before a worker counts as missing.
MISSED_BEATS = 3
# Beats (and health's read) give up after this: a stalled server must not hold the thread.
TIMEOUT_SECONDS = 0.5

_stop = threading.Event()


def _client():
    """A redis-py client on the broker, or None when the broker is not Redis/Valkey."""
    import redis
    from celery import current_app

    url = current_app.conf.broker_url or ""
    if not url.startswith(("redis://", "rediss://", "valkey://")):
        return None
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return redis.Redis.from_url(url.replace("valkey://", "redis://", 1), socket_timeout=TIMEOUT_SECONDS,
                                socket_connect_timeout=TIMEOUT_SECONDS, retry=Retry(NoBackoff(), 0))


def beat(hostname: str, queues: list[str], client=None) -> None:
    """Record that ``hostname`` (consuming ``queues``) is alive now."""
    client = client or _client()
    if client is not None:
        client.hset(HASH_KEY, hostname, json.dumps({"queues": sorted(queues), "at": time.time()}))


def leave(hostname: str) -> None:
    client = _client()
    if client is not None:
        client.hdel(HASH_KEY, hostname)


def workers() -> dict[str, dict[str, Any]] | None:
    """Every registered worker: ``{hostname: {"queues": [...], "age_s": seconds since its beat}}``
    (None: the broker is not Redis/Valkey, so nothing is recorded)."""
    client = _client()
    if client is None:
        return None
    try:
        raw = client.hgetall(HASH_KEY)
    finally:
        client.close()
    now = time.time()
    out = {}
    for name, value in raw.items():
        record = json.loads(value)
        out[name.decode()] = {"queues": record["queues"], "age_s": round(now - record["at"], 1)}
    return out


def _run(hostname: str, queues: list[str], interval: float) -> None:
    client = _client()
    if client is None:
        return
    while not _stop.is_set():
        try:
            beat(hostname, queues, client)
        except Exception as exc:  # noqa: BLE001 - the cache is down: health says so on its own
            logger.warning("recsys: worker heartbeat failed (%s)", exc)
        _stop.wait(interval)


@worker_ready.connect
def _start(sender=None, **kwargs) -> None:
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

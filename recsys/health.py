"""Readiness probes of every component LiveRec needs; shared by the health view and system checks."""
from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import connection

from . import heartbeat
from .conf import settings
from .encoders import get_encoder
from .summaries import get_summarizer


def database() -> dict[str, Any]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            version = cursor.fetchone()[0]
            cursor.execute("SELECT installed_version, default_version FROM pg_available_extensions WHERE name = 'vector'")
            row = cursor.fetchone()
    except Exception as exc:
        return {"ok": False, "error": str(exc)}
    if row is None:
        return {"ok": False, "postgres": version,
                "error": "this PostgreSQL server has no pgvector extension available"}
    # Available but not yet created is fine: the first migration runs CREATE EXTENSION.
    return {"ok": True, "postgres": version, "pgvector": row[0] or row[1], "pgvector_installed": row[0] is not None}


# Health answers within this long, whatever is stalled: each probe runs in its own thread,
# and one that has not answered by then is reported as stalled (a SIGSTOPped Valkey accepts
# connections and never replies; health used to hang for the whole stall, then say ok).
DEADLINE_SECONDS = 1.6
# A PING (broker, cache) or a round trip (channel layer, worker) slower than this is a fault.
PING_TIMEOUT_SECONDS = 0.3
ROUND_TRIP_TIMEOUT_SECONDS = 1.2


def _redact(url: str) -> str:
    return url.split("@")[-1]


def _ping(url: str, what: str) -> dict[str, Any]:
    import redis

    start = time.perf_counter()
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    # No retry: redis-py's default retries three times with up to seconds of backoff.
    client = redis.Redis.from_url(url, socket_timeout=PING_TIMEOUT_SECONDS,
                                  socket_connect_timeout=PING_TIMEOUT_SECONDS, retry=Retry(NoBackoff(), 0))
    try:
        client.ping()
    except Exception as exc:
        return {"ok": False, "url": _redact(url),
                "error": f"{what} at {_redact(url)} did not answer PING within "
                         f"{PING_TIMEOUT_SECONDS * 1000:.0f} ms: {exc}"}
    finally:
        client.close()
    return {"ok": True, "url": _redact(url), "ping_ms": round((time.perf_counter() - start) * 1000, 1)}


def broker() -> dict[str, Any]:
    from celery import current_app

    url = current_app.conf.broker_url or ""
    if url.startswith(("redis://", "rediss://", "valkey://")):
        return _ping(url.replace("valkey://", "redis://", 1), "broker")
    try:
        with current_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=PING_TIMEOUT_SECONDS)
        return {"ok": True, "url": _redact(url)}
    except Exception as exc:
        return {"ok": False, "error": f"broker unreachable: {exc}"}


def cache() -> dict[str, Any]:
    """The cache (push state, presence, rate counters, coalescing flags)."""
    from django.core.cache import caches

    backend = getattr(caches["default"], "_cache", None)
    servers = getattr(backend, "_servers", None)
    if not servers:  # not a Redis cache: a set/get round trip
        try:
            caches["default"].set("liverec:health", 1, 10)
            return {"ok": caches["default"].get("liverec:health") == 1}
        except Exception as exc:
            return {"ok": False, "error": f"cache unreachable: {exc}"}
    return _ping(str(servers[0]), "cache")


def worker(timeout: float = ROUND_TRIP_TIMEOUT_SECONDS) -> dict[str, Any]:
    """A real round trip through the realtime queue; also reports the worker's encoder."""
    # Imported here: the tasks bring every model's code (torch), which the system checks that
    # import this module at start-up do not need.
    from .tasks import health_probe

    start = time.perf_counter()
    try:
        result = health_probe.apply_async(expires=timeout).get(timeout=timeout)
    except Exception as exc:
        return {"ok": False, "error": f"no worker answered on the realtime queue within {timeout:.1f} s: {exc!r}"}
    return {"ok": True, "round_trip_ms": round((time.perf_counter() - start) * 1000, 1), **result}


def workers() -> dict[str, Any]:
    """Every worker that registered a heartbeat (``recsys.heartbeat``): which are missing, and
    whether each queue the site needs has a live worker."""
    from .tasks import BATCH, REALTIME, SUMMARIES  # Imported here: as in ``worker``

    stale_after = heartbeat.MISSED_BEATS * float(settings.WORKER_HEARTBEAT_SECONDS)
    known = heartbeat.workers()
    if known is None:
        return {"ok": True, "note": "worker heartbeats need a Redis/Valkey broker"}
    alive = {name: w for name, w in known.items() if w["age_s"] <= stale_after}
    missing = {name: f"no heartbeat for {w['age_s']:.0f} s" for name, w in known.items() if name not in alive}
    needed = [REALTIME, BATCH] + ([SUMMARIES] if get_summarizer().enabled else [])
    queues = {q: sum(q in w["queues"] for w in alive.values()) for q in needed}
    out: dict[str, Any] = {"ok": not missing and all(queues.values()), "alive": sorted(alive),
                           "missing": missing, "queues": queues}
    if not out["ok"]:
        gaps = [f"worker {n} missing ({why})" for n, why in sorted(missing.items())]
        gaps += [f"no live worker consumes {q}" for q, n in queues.items() if not n]
        out["error"] = "; ".join(gaps)
    return out


async def channel_layer_async(timeout: float = ROUND_TRIP_TIMEOUT_SECONDS) -> dict[str, Any]:
    """A message round trip through the channel layer, on the caller's event loop (the ASGI
    server's: channels_redis serves one loop's receivers per process)."""
    import asyncio

    layer = get_channel_layer()
    if layer is None:
        return {"ok": False, "error": "CHANNEL_LAYERS is not configured"}

    async def exchange() -> bool:
        channel = await layer.new_channel()
        token = uuid.uuid4().hex
        await layer.send(channel, {"type": "health.ping", "token": token})
        msg = await layer.receive(channel)
        return msg.get("token") == token

    start = time.perf_counter()
    try:
        # The whole exchange, the send included: a stalled server blocks the send too.
        ok = await asyncio.wait_for(exchange(), timeout)
    except Exception as exc:
        return {"ok": False, "error": f"channel layer round trip failed within {timeout:.1f} s: {exc!r}"}
    return {"ok": ok, "round_trip_ms": round((time.perf_counter() - start) * 1000, 1)}


def channel_layer(timeout: float = ROUND_TRIP_TIMEOUT_SECONDS) -> dict[str, Any]:
    return async_to_sync(channel_layer_async)(timeout)


def model_files() -> dict[str, Any]:
    encoder = get_encoder()
    error = encoder.check()
    return {"ok": error is None, "encoder": encoder.name, **({"error": error} if error else {})}


def _closing_connection(fn: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
    def run() -> dict[str, Any]:
        try:
            return fn()
        finally:
            connection.close()  # this thread's database connection (back to the pool)
    return run


async def report_async() -> dict[str, Any]:
    """Every probe at once, answered within ``DEADLINE_SECONDS``; a probe still waiting then is
    reported as stalled. ``ok`` only if every probe is. Blocking probes run in threads of their
    own; the channel layer's runs on the caller's loop."""
    import asyncio

    pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="liverec-health")

    def in_thread(fn: Callable[[], dict[str, Any]]) -> asyncio.Future:
        return asyncio.wrap_future(pool.submit(fn))

    async def after(gate: asyncio.Future, fn: Callable[[], dict[str, Any]], reason: str) -> dict[str, Any]:
        # A probe whose server is known to be stalled would only wait on it (a Celery publish
        # or a cache read has no short timeout).
        if not (await asyncio.shield(gate)).get("ok"):
            return {"ok": False, "error": reason}
        return await in_thread(fn)

    tasks: dict[str, asyncio.Future] = {"database": in_thread(_closing_connection(database)), "broker": in_thread(broker),
                                        "cache": in_thread(cache), "model": in_thread(model_files),
                                        "channel_layer": asyncio.ensure_future(channel_layer_async())}
    tasks["worker"] = asyncio.ensure_future(after(tasks["broker"], worker, "broker unreachable"))
    tasks["workers"] = asyncio.ensure_future(after(tasks["broker"], workers, "broker unreachable"))
    try:
        await asyncio.wait(tasks.values(), timeout=DEADLINE_SECONDS)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)  # a stalled probe's thread ends with its timeout
    checks: dict[str, dict[str, Any]] = {}
    for name, task in tasks.items():
        if not task.done():
            task.cancel()
            checks[name] = {"ok": False, "error": f"{name} gave no answer within {DEADLINE_SECONDS:.1f} s (stalled)"}
        elif task.exception() is not None:
            checks[name] = {"ok": False, "error": repr(task.exception())}
        else:
            checks[name] = task.result()
    # "model loaded" is proven where the model runs: the worker encoded a text.
    checks["model"]["loaded"] = bool(checks["worker"].get("ok") and checks["worker"].get("dim"))
    checks["model"]["ok"] = checks["model"]["ok"] and checks["model"]["loaded"]
    faults = [f"{name}: {c['error']}" for name, c in checks.items() if not c["ok"] and c.get("error")]
    return {"ok": all(c["ok"] for c in checks.values()), **({"faults": faults} if faults else {}), **checks}


def report() -> dict[str, Any]:
    return async_to_sync(report_async)()

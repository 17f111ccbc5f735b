"""Readiness probes of every component LiveRec needs; shared by the health view and system checks."""
from __future__ import annotations

import time
import uuid
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import connection


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


def broker() -> dict[str, Any]:
    from celery import current_app

    try:
        with current_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return {"ok": True, "url": current_app.conf.broker_url.split("@")[-1]}
    except Exception as exc:
        return {"ok": False, "error": f"broker unreachable: {exc}"}


def worker(timeout: float = 10.0) -> dict[str, Any]:
    """A real round trip through the realtime queue; also reports the worker's encoder."""
    from .tasks import health_probe

    start = time.perf_counter()
    try:
        result = health_probe.apply_async().get(timeout=timeout)
    except Exception as exc:
        return {"ok": False, "error": f"no worker answered on the realtime queue: {exc!r}"}
    return {"ok": True, "round_trip_ms": round((time.perf_counter() - start) * 1000, 1), **result}


def channel_layer(timeout: float = 3.0) -> dict[str, Any]:
    layer = get_channel_layer()
    if layer is None:
        return {"ok": False, "error": "CHANNEL_LAYERS is not configured"}

    async def round_trip():
        import asyncio

        channel = await layer.new_channel()
        token = uuid.uuid4().hex
        await layer.send(channel, {"type": "health.ping", "token": token})
        msg = await asyncio.wait_for(layer.receive(channel), timeout)
        return msg.get("token") == token

    start = time.perf_counter()
    try:
        ok = async_to_sync(round_trip)()
    except Exception as exc:
        return {"ok": False, "error": f"channel layer round trip failed: {exc!r}"}
    return {"ok": ok, "round_trip_ms": round((time.perf_counter() - start) * 1000, 1)}


def model_files() -> dict[str, Any]:
    from .encoders import get_encoder

    encoder = get_encoder()
    error = encoder.check()
    return {"ok": error is None, "encoder": encoder.name, **({"error": error} if error else {})}


def report() -> dict[str, Any]:
    checks = {"database": database(), "broker": broker(), "channel_layer": channel_layer(), "model": model_files()}
    checks["worker"] = worker() if checks["broker"]["ok"] else {"ok": False, "error": "broker unreachable"}
    # "model loaded" is proven where the model runs: the worker encoded a text.
    checks["model"]["loaded"] = bool(checks["worker"].get("ok") and checks["worker"].get("dim"))
    checks["model"]["ok"] = checks["model"]["ok"] and checks["model"]["loaded"]
    return {"ok": all(c["ok"] for c in checks.values()), **checks}

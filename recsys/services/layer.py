"""Channel-layer sends from synchronous code (Celery workers).

A layer declaring the ``group_send_many`` extension (``recsys.channel_layer``, the demo's
``CHANNEL_LAYERS`` backend) sends a batch in a few round trips, from this thread when it
offers ``group_send_many_blocking``. Any other layer gets plain ``group_send`` per group,
started together on a loop thread and waited for once (a fold's pushes to dozens of visitors
cost one hand-off, not one each).

The loop thread: ``async_to_sync(layer.group_send)`` runs each call on a fresh event loop,
and channels_redis keeps its Redis connections per loop, so every push paid a new connection
and its teardown (12 ms median per send on a shared 2-core machine, against well under a
millisecond for the send itself). A daemon thread owns one loop for the life of the process
(created lazily, and again after a fork), so the layer's connection pool is reused.
"""
from __future__ import annotations

import asyncio
import os
import threading
from typing import Any

from channels.layers import get_channel_layer

SEND_TIMEOUT_SECONDS = 5.0
EXTENSION = "group_send_many"

_lock = threading.Lock()
_state: dict[str, Any] = {"pid": None, "loop": None}


def _loop() -> asyncio.AbstractEventLoop:
    with _lock:
        if _state["pid"] != os.getpid() or _state["loop"] is None or not _state["loop"].is_running():
            loop = asyncio.new_event_loop()
            started = threading.Event()

            def run() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(started.set)
                loop.run_forever()

            threading.Thread(target=run, name="liverec-channel-layer", daemon=True).start()
            started.wait(5)
            _state.update(pid=os.getpid(), loop=loop)
        return _state["loop"]


def group_send(group: str, message: dict[str, Any]) -> None:
    """Send ``message`` to ``group`` and wait for the layer to accept it."""
    group_send_many([(group, message)])


def group_send_many(sends: list[tuple[str, dict[str, Any]]]) -> None:
    """``group_send`` of each (group, message), through the layer's extension where it has one."""
    if not sends:
        return
    layer = get_channel_layer()
    if EXTENSION in getattr(layer, "extensions", ()):
        blocking = getattr(layer, "group_send_many_blocking", None)
        if blocking is not None:
            try:
                return blocking(sends)
            except NotImplementedError:  # raised before sending (hosts it has no clients for)
                pass

        async def send_all() -> None:
            await layer.group_send_many(sends)
    else:
        async def send_all() -> None:
            await asyncio.gather(*(layer.group_send(group, message) for group, message in sends))

    asyncio.run_coroutine_threadsafe(send_all(), _loop()).result(timeout=SEND_TIMEOUT_SECONDS)

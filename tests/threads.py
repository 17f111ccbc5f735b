"""Database work on a helper thread in tests.

A thread that ends while holding a pooled connection never gives it back, and each
``asyncio.to_thread`` under a new event loop is a new thread: the test process's pool
(``LIVEREC_DB_POOL_SIZE``) then runs dry and later requests wait for a connection in vain.
``in_thread`` returns the thread's connections to the pool when the work is done.
"""
from __future__ import annotations

import asyncio
from typing import Any, Callable

from django.db import connections


async def in_thread(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    def run() -> Any:
        try:
            return fn(*args, **kwargs)
        finally:
            connections.close_all()

    return await asyncio.to_thread(run)

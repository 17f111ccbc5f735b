"""Run a request's database-bound reads concurrently with its CPU-bound work.

A for-you request at 100,000 items spends ~5 ms waiting on PostgreSQL (HNSW scans for the
interest centroids, the association scan) and ~7 ms computing the sequence model's
distribution over the catalogue. The two need different cores (the database server's and
this process's), so each database-bound strategy runs on a small per-process thread pool,
on its own pooled connection, while the calling thread computes the rest.

Only when it is safe and cheap:
- Django's connection pool is on (``DATABASES[...]["OPTIONS"]["pool"]``): a pool thread
  borrows a connection and returns it after each call. Without a pool every call would open a
  PostgreSQL session (milliseconds), more than the overlap saves.
- The caller is not inside a transaction: another connection cannot see its uncommitted
  rows (a test's transaction, an import in progress), so such callers run everything inline.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable

from django.db import connection

from .conf import settings

_lock = threading.Lock()
_executor: tuple[int, ThreadPoolExecutor] | None = None


def _pool() -> ThreadPoolExecutor:
    """This process's executor (a forked Celery child makes its own: threads do not survive fork)."""
    global _executor
    pid = os.getpid()
    if _executor is None or _executor[0] != pid:
        with _lock:
            if _executor is None or _executor[0] != pid:
                _executor = (pid, ThreadPoolExecutor(max_workers=int(settings.STRATEGY_THREADS),
                                                     thread_name_prefix="liverec-overlap"))
    return _executor[1]


def enabled() -> bool:
    return (int(settings.STRATEGY_THREADS) > 0 and not connection.in_atomic_block
            and bool((connection.settings_dict.get("OPTIONS") or {}).get("pool")))


def _borrowing(fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return fn(*args)
    finally:
        connection.close()  # back to the pool: the next call may run on another thread


class _Done:
    """A result computed inline, with the interface of a Future."""

    def __init__(self, fn: Callable[..., Any], *args: Any):
        self._value = fn(*args)

    def result(self) -> Any:
        return self._value


def submit(fn: Callable[..., Any], *args: Any, overlap: bool) -> Future | _Done:
    """``fn(*args)`` on the pool when ``overlap`` (see ``enabled``), else now, inline."""
    if overlap:
        return _pool().submit(_borrowing, fn, *args)
    return _Done(fn, *args)

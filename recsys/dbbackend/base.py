"""Django's PostgreSQL backend, with a connection pool that hands out the connection returned last.

    DATABASES["default"]["ENGINE"] = "recsys.dbbackend"   # instead of django.db.backends.postgresql

psycopg_pool gives out the connection that has waited longest (first in, first out), so a
process rotates through every connection its pool holds, and each PostgreSQL backend sits idle
for as many turns as there are connections before its next query. On the machine of the
fourteenth session a process's first memory accesses after tens of milliseconds of idleness
were slow (``bench/machine_wake.py``: a NumPy sum over 64 KB 6 us back to back, 0.4 ms after
50 ms of sleep), and a backend that was just used is warm in every cache anyway. Taking the
most recently returned connection keeps the few backends a process actually needs busy and
lets the others idle out (the pool's ``max_idle``). Measured with ``bench/ab_freshness.py``,
three pairs on equal data: p50 47.6 / 55.3 / 52.6 ms against 51.9 / 56.6 / 56.7, PostgreSQL's
CPU per push 6.8 against 7.2-7.3 ms in a full run.

Everything else is Django's backend; without a pool (``OPTIONS["pool"]``) nothing changes.
"""
from __future__ import annotations

from django.db.backends.postgresql.base import DatabaseWrapper as PostgresDatabaseWrapper
from psycopg_pool import ConnectionPool


class LastInFirstOutPool(ConnectionPool):
    """A psycopg pool that gives out the connection returned last (pinned psycopg-pool: the
    ready connections are a deque, taken from its left and returned to its right; a test
    checks the order)."""

    def _get_ready_connection(self, timeout):
        # Called with the pool's lock held. The newest connection moves to the left, where the
        # pool takes from; the others keep their order, so the pool's shrinking (from the
        # left) still closes the one idle longest.
        if self._pool:
            self._pool.rotate(1)
        return super()._get_ready_connection(timeout)


class DatabaseWrapper(PostgresDatabaseWrapper):
    @property
    def pool(self):
        pool = super().pool
        # Django builds the pool itself (its options, configure and check callbacks); it is not
        # open until the first connection, so giving it this class here changes only the
        # order connections are handed out in (the subclass adds no state).
        if pool is not None and type(pool) is ConnectionPool:
            pool.__class__ = LastInFirstOutPool
        return pool
